"""One `StatementParser` per format, each wrapping the library made for it.

The parser modules (and the libraries they wrap: lxml, ofxparse, mt-940, bai2) are
imported when a file of their format is read, not when `reconciliation` is: a CLI call
or a worker that reads no statement does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from reconciliation.parsers.base import StatementParser
from reconciliation.parsers.csv_profile import CsvProfile

if TYPE_CHECKING:
    from reconciliation.parsers.bai2_parser import Bai2Parser
    from reconciliation.parsers.camt import CamtParser
    from reconciliation.parsers.csv_parser import CsvParser
    from reconciliation.parsers.mt940_parser import Mt940Parser
    from reconciliation.parsers.ofx_parser import OfxParser

#: the formats that need nothing but the file; CSV also needs a `CsvProfile`
FORMATS = ("camt.053", "camt.054", "mt940", "bai2", "ofx", "csv")

#: class name -> the module that defines it, loaded on first use
_PARSERS = {
    "Bai2Parser": "reconciliation.parsers.bai2_parser",
    "CamtParser": "reconciliation.parsers.camt",
    "CsvParser": "reconciliation.parsers.csv_parser",
    "Mt940Parser": "reconciliation.parsers.mt940_parser",
    "OfxParser": "reconciliation.parsers.ofx_parser",
}


def __getattr__(name: str) -> Any:
    if name in _PARSERS:
        return getattr(importlib.import_module(_PARSERS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parser_for(format: str, profile: CsvProfile | None = None) -> StatementParser:
    if format == "csv":
        if profile is None:
            raise ValueError("reading a CSV statement needs a CsvProfile")
        from reconciliation.parsers.csv_parser import CsvParser
        return CsvParser(profile)
    if format in ("camt.053", "camt.054"):
        from reconciliation.parsers.camt import CamtParser
        return CamtParser(format)
    if format == "mt940":
        from reconciliation.parsers.mt940_parser import Mt940Parser
        return Mt940Parser()
    if format == "bai2":
        from reconciliation.parsers.bai2_parser import Bai2Parser
        return Bai2Parser()
    if format == "ofx":
        from reconciliation.parsers.ofx_parser import OfxParser
        return OfxParser()
    raise ValueError(f"unknown statement format {format!r}; known: {', '.join(FORMATS)}")


__all__ = [
    "FORMATS", "Bai2Parser", "CamtParser", "CsvParser", "CsvProfile", "Mt940Parser",
    "OfxParser", "StatementParser", "parser_for",
]
