"""Bank statement import: camt.053/camt.054, MT940, BAI2, OFX and CSV read into one
`Statement` type and checked before anything is stored.

    statements = parse_statement(data, source_name="icbc-2026-11-22.xml")

Matching, the exceptions queue and storage build on these values.
"""

from __future__ import annotations

from reconciliation.detect import detect_format
from reconciliation.errors import (
    StatementCurrencyMismatch,
    StatementError,
    UnbalancedStatement,
    UnknownStatementFormat,
    UnreadableStatement,
)
from reconciliation.parsers import FORMATS, CsvProfile, StatementParser, parser_for
from reconciliation.schema import metadata
from reconciliation.statement import (
    Balance,
    BatchDetails,
    Statement,
    StatementKind,
    StatementLine,
    file_hash,
)
from reconciliation.validation import validate_statement


def parse_statement(
    data: bytes,
    *,
    format: str | None = None,
    profile: CsvProfile | None = None,
    source_name: str = "<bytes>",
    account_currency: str | None = None,
) -> list[Statement]:
    """Every statement in the file, read and validated; raises a `StatementError`
    naming what is wrong otherwise, and then nothing from the file may be used.

    `format` defaults to what `detect_format` finds (CSV when a `profile` is given);
    `account_currency`, when the caller knows the account, refuses a statement in
    another currency.
    """
    chosen = format or ("csv" if profile is not None else detect_format(data))
    if chosen is None:
        raise UnknownStatementFormat(
            f"{source_name}: not a camt.053, camt.054, MT940, BAI2 or OFX file; "
            f"name the format, or give a CsvProfile for CSV"
        )
    if chosen not in FORMATS:
        raise UnknownStatementFormat(f"unknown statement format {chosen!r}")
    if chosen == "csv" and profile is None:
        raise UnknownStatementFormat("reading a CSV statement needs a CsvProfile")
    statements = parser_for(chosen, profile).parse(data, source_name=source_name)
    for statement in statements:
        validate_statement(statement, account_currency=account_currency)
    return statements


__all__ = [
    "FORMATS",
    "Balance",
    "BatchDetails",
    "CsvProfile",
    "Statement",
    "StatementCurrencyMismatch",
    "StatementError",
    "StatementKind",
    "StatementLine",
    "StatementParser",
    "UnbalancedStatement",
    "UnknownStatementFormat",
    "UnreadableStatement",
    "detect_format",
    "file_hash",
    "metadata",
    "parse_statement",
    "validate_statement",
]
