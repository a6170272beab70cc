"""The `paycore` command. A plain `paycore balance ACCOUNT` is answered on the database
driver alone (`paycore.balance_lookup`, ~0.2 s from a fresh process instead of ~1.6 s,
#18 §5); every other command line, and any balance that lookup steps aside from, runs the
full CLI (`paycore.cli`), which imports typer, SQLAlchemy and logging."""

from __future__ import annotations

import sys


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "balance" and not args[1].startswith("-"):
        from paycore.balance_lookup import balance_line, current_balance
        from paycore.settings import Settings

        found = current_balance(Settings.from_env().database_url, args[1])
        if found is not None:
            sys.stdout.write(balance_line(found) + "\n")
            return
    from paycore.cli import main as full_cli

    full_cli()
