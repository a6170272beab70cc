"""Running CLI work: one engine per command, logging configured, ledger errors as messages.

Shared by `paycore.cli` and the domain command modules in `paycore.commands`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console

import ledger
from paycore.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")

#: (package, its base errors) of each domain whose errors a person caused and can act on
DOMAIN_ERRORS = (
    ("lending", ("LendingError",)),
    ("reconciliation", ("StatementError", "ReconciliationError")),
    ("gateways", ("PaymentError",)),
)


def user_errors() -> tuple[type[Exception], ...]:
    """Errors a person caused and can act on: one red line on stderr, exit code 2.
    Each domain adds its base error here. Read when an error is raised, and only from the
    domains already imported: a command imports the domain it uses (`paycore balance`
    imports neither lending, reconciliation nor gateways' bank adapters), and a domain
    never imported cannot have raised its errors."""
    found: tuple[type[Exception], ...] = (ledger.LedgerError,)
    for package, names in DOMAIN_ERRORS:
        module = sys.modules.get(package)
        found += tuple(cls for cls in (getattr(module, name, None) for name in names)
                       if isinstance(cls, type) and issubclass(cls, Exception))
    return found

# a pipe or a CI log gets wide tables rather than rich's 80-column default
console = Console(width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)


def run(work: Callable[[AsyncEngine], Awaitable[T]], url: str | None = None,
         quiet: bool = False) -> T:
    # the engine (SQLAlchemy) and logging (structlog) load when a command runs, not when
    # `paycore --help` lists the commands (#18 §5)
    from paycore import db
    from paycore.logging import configure_logging

    settings = Settings.from_env()
    level = "WARNING" if quiet and "PAYCORE_LOG_LEVEL" not in os.environ else settings.log_level
    configure_logging(settings.log_format, level)
    if os.environ.get("PAYCORE_ACCOUNT_KEYS"):
        # imported only then: it imports gateways (every bank adapter), which most
        # commands never touch; without the variable it installs nothing anyway
        from paycore.payout_controls import install_account_keys

        install_account_keys()

    async def main() -> T:
        engine = db.create_engine(url or settings.database_url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        errors.print(f"[red]{type(exc).__name__}[/red]: {exc}")
        raise typer.Exit(2) from None


def in_transaction(work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    return run(lambda engine: ledger.transact(engine, work))


def read_only(work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    async def go(engine: AsyncEngine) -> T:
        async with engine.connect() as conn:
            return await work(conn)
    return run(go)


