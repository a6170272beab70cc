"""One `StatementParser` per format, each wrapping the library made for it."""

from __future__ import annotations

from reconciliation.parsers.bai2_parser import Bai2Parser
from reconciliation.parsers.base import StatementParser
from reconciliation.parsers.camt import CamtParser
from reconciliation.parsers.csv_parser import CsvParser
from reconciliation.parsers.csv_profile import CsvProfile
from reconciliation.parsers.mt940_parser import Mt940Parser
from reconciliation.parsers.ofx_parser import OfxParser

#: the formats that need nothing but the file; CSV also needs a `CsvProfile`
FORMATS = ("camt.053", "camt.054", "mt940", "bai2", "ofx", "csv")


def parser_for(format: str, profile: CsvProfile | None = None) -> StatementParser:
    if format == "csv":
        if profile is None:
            raise ValueError("reading a CSV statement needs a CsvProfile")
        return CsvParser(profile)
    if format in ("camt.053", "camt.054"):
        return CamtParser(format)
    if format == "mt940":
        return Mt940Parser()
    if format == "bai2":
        return Bai2Parser()
    if format == "ofx":
        return OfxParser()
    raise ValueError(f"unknown statement format {format!r}; known: {', '.join(FORMATS)}")


__all__ = [
    "FORMATS", "Bai2Parser", "CamtParser", "CsvParser", "CsvProfile", "Mt940Parser",
    "OfxParser", "StatementParser", "parser_for",
]
