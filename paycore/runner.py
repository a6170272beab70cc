"""Running CLI work: one engine per command, logging configured, ledger errors as messages.

Shared by `paycore.cli` and the domain command modules in `paycore.commands`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import typer

import ledger
from paycore.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console
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

class _ConsoleOnFirstUse:
    """rich's Console, made when a command first prints: rich (~50 ms) is not imported by
    `paycore --help`, which typer prints without it (#18 §5)."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def _made(self) -> Console:
        if self._console is None:
            from rich.console import Console

            # a pipe or a CI log gets wide tables rather than rich's 80-column default
            width = None if self._stderr or sys.stdout.isatty() else 120
            self._console = Console(stderr=self._stderr, width=width)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._made(), name)

    # rich's Live and Progress hold the console as a context manager (special methods are
    # looked up on the type, past __getattr__)
    def __enter__(self) -> Console:
        return self._made().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._made().__exit__(*exc)


console = cast("Console", _ConsoleOnFirstUse())
errors = cast("Console", _ConsoleOnFirstUse(stderr=True))


def command_group(help: str, **options: Any) -> typer.Typer:
    """A `paycore` command group. Help is plain text: typer's rich help imports rich and
    its Markdown parser (~200 ms of a ~600 ms `paycore --help`, #18 §5), and
    `rich_markup_mode=None` is also what a pipe or a screen reader reads best."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None,
                       pretty_exceptions_enable=False, **options)


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

    import asyncio

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
        from rich.markup import escape  # the message may quote what a person typed

        errors.print(f"[red]{type(exc).__name__}[/red]: {escape(str(exc))}")
        raise typer.Exit(2) from None


def in_transaction(work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    return run(lambda engine: ledger.transact(engine, work))


def read_only(work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    async def go(engine: AsyncEngine) -> T:
        async with engine.connect() as conn:
            return await work(conn)
    return run(go)


