"""structlog, configured once: JSON in production, readable in a terminal, and secrets and
account numbers never written out."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(secret|password|passwd|token|api_key|apikey|private_key|signature"
                          r"|authorization|cookie)", re.I)
_ACCOUNT_KEYS = re.compile(r"(account_number|acct_no|iban|card_number|pan|bank_account)", re.I)

_configured = False


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
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _configured = True
