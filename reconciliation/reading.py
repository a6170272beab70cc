"""Reading a statement file: detect the format, parse, validate."""

from __future__ import annotations

from reconciliation.detect import detect_format
from reconciliation.errors import UnknownStatementFormat
from reconciliation.parsers import FORMATS, CsvProfile, parser_for
from reconciliation.statement import Statement
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
