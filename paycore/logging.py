"""structlog, configured once: JSON in production, readable in a terminal, and secrets and
account numbers never written out."""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(secret|password|passwd|token|api_key|apikey|private_key|signature"
                          r"|authorization|cookie)", re.I)
_ACCOUNT_KEYS = re.compile(r"(account_number|acct_no|iban|card_number|pan|bank_account)", re.I)

_configured = False

#: structlog caches each logger's configuration at its first use: fast in production (a
#: process configures once). The test suite turns it off (tests/conftest.py): there a
#: logger first used under one test's configuration (a CLI test's level and renderer)
#: would ignore every later one, `structlog.testing.capture_logs` included.
CACHE_LOGGERS = True


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the moment of writing: a test runner (typer's
    CliRunner, pytest's capture) swaps the stream and closes it afterwards, and a logger
    bound to the old one would fail on every later write."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Secrets vanish; account numbers keep their last four characters."""
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key):
            event[key] = "***"
        elif _ACCOUNT_KEYS.search(key) and value is not None:
            text = str(value)
            event[key] = "***" + text[-4:] if len(text) > 4 else "***"
    return event


def _is_database_error(exc: BaseException) -> bool:
    # by module, not by class: asyncpg's, sqlite3's and SQLAlchemy's errors all carry the
    # statement's values (SQLAlchemy's "[parameters: ...]", PostgreSQL's DETAIL "Failing
    # row contains (...)" / "Key (...)=(...)"), and paycore imports none of the drivers
    module = type(exc).__module__ or ""
    return module.split(".", 1)[0] in {"sqlalchemy", "asyncpg", "sqlite3", "aiosqlite",
                                       "psycopg", "psycopg2"}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__
                                        else current.__context__)


def _withheld(exc: BaseException) -> str:
    """The traceback of `exc` and its causes, each database error named by its class and
    statement only: its message, which quotes the statement's values, is left out."""
    parts: list[str] = []
    for link in reversed(list(_chain(exc))):
        if parts:
            parts.append("\nwhich led to:\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_list(traceback.extract_tb(link.__traceback__)))
        name = f"{type(link).__module__}.{type(link).__qualname__}"
        if _is_database_error(link):
            statement = getattr(link, "statement", None)
            parts.append(f"{name}: [message withheld: it may quote the statement's values]")
            if isinstance(statement, str):
                parts.append(f"\n[SQL: {statement.strip()[:2000]}]")
            parts.append("\n")
        else:
            parts.append("".join(traceback.format_exception_only(type(link), link)))
    return "".join(parts)


def withhold_database_values(_logger: Any, _method: str,
                             event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """An exception from the database is logged without its message (SQLAlchemy's carries
    the statement's parameters, PostgreSQL's the failing row: an account number, a name),
    keeping its class, the statement and the traceback. Runs before `format_exc_info`."""
    info = event.get("exc_info")
    if not info:
        return event
    if isinstance(info, BaseException):
        exc: BaseException | None = info
    elif isinstance(info, tuple):
        exc = info[1]
    else:
        exc = sys.exc_info()[1]
    if exc is not None and any(_is_database_error(link) for link in _chain(exc)):
        del event["exc_info"]
        event["exception"] = _withheld(exc)
    return event


def configure_logging(fmt: str = "auto", level: str = "INFO", *, force: bool = False) -> None:
    global _configured
    if _configured and not force:
        return
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: Any = (structlog.dev.ConsoleRenderer() if fmt == "console"
                     else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            withhold_database_values,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=CACHE_LOGGERS,
    )
    _configured = True
