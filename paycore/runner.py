"""Running CLI work: one engine per command, logging configured, ledger errors as messages.

Shared by `paycore.cli` and the domain command modules in `paycore.commands`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import gateways
import ledger
import lending
import reconciliation
from paycore import db, lazy_imports
from paycore.logging import configure_logging
from paycore.settings import Settings

T = TypeVar("T")

def user_errors() -> tuple[type[Exception], ...]:
    """Errors a person caused and can act on: one red line on stderr, exit code 2.
    Each domain adds its base error here. A function, read when an error is raised, so
    that the CLI does not import every domain (see `paycore.lazy_imports`) to start."""
    found: tuple[type[Exception], ...] = (
        ledger.LedgerError, lending.LendingError, reconciliation.StatementError,
        reconciliation.ReconciliationError,
    )
    # a command that never loaded gateways cannot have raised its errors: asking for its
    # base class would import every bank adapter to print a ledger error
    if lazy_imports.loaded("gateways"):
        found += (gateways.PaymentError,)
    return found

# a pipe or a CI log gets wide tables rather than rich's 80-column default
console = Console(width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)


def run(work: Callable[[AsyncEngine], Awaitable[T]], url: str | None = None,
         quiet: bool = False) -> T:
    settings = Settings.from_env()
    level = "WARNING" if quiet and "PAYCORE_LOG_LEVEL" not in os.environ else settings.log_level
    configure_logging(settings.log_format, level)
    if os.environ.get("PAYCORE_ACCOUNT_KEYS"):
        # imported only then: it imports gateways (every bank adapter), which most
        # commands never touch (see paycore.lazy_imports); without the variable it
        # installs nothing anyway
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


