"""Reading a statement file: detect the format, parse, validate."""

from __future__ import annotations

import dataclasses
import warnings

import structlog

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
    with warnings.catch_warnings(record=True) as raised:
        # a parser library's own warnings go to the statement (and so to the person
        # importing it) in a sentence, or nowhere, never raw onto the terminal
        warnings.simplefilter("always")
        statements = parser_for(chosen, profile).parse(data, source_name=source_name)
    said = _about_the_file(raised)
    if said:
        statements = [dataclasses.replace(s, warnings=(*s.warnings, *said)) for s in statements]
    for statement in statements:
        validate_statement(statement, account_currency=account_currency)
    return statements


#: warnings about how a library is written or called, not about the file: the bs4 parser
#: ofxparse uses says an XML document (OFX 2) is read as HTML, which is how ofxparse
#: works and is checked by the structure check; deprecations are the libraries' own
_NOT_ABOUT_THE_FILE = frozenset({
    "DeprecationWarning", "PendingDeprecationWarning", "ResourceWarning",
    "XMLParsedAsHTMLWarning", "MarkupResemblesLocatorWarning",
})

log = structlog.get_logger("reconciliation")


def _about_the_file(raised: list[warnings.WarningMessage]) -> tuple[str, ...]:
    kept: list[str] = []
    for warning in raised:
        category = warning.category.__name__
        first = str(warning.message).strip().split("\n")[0]
        if category in _NOT_ABOUT_THE_FILE:
            log.debug("statement.parser_warning_dropped", category=category, message=first)
            continue
        module = warning.category.__module__.split(".")[0]
        text = f"the {module} parser warned: {first}"
        if text not in kept:
            kept.append(text)
    return tuple(kept)
