"""OFX bank and credit-card statements (SGML v1 and XML v2), read with `ofxtools`.

`ofxtools` parses and validates the document, but its typed values are not what a
ledger wants: dates come back converted to UTC (a posting at 00:30 in Beijing lands on
the previous day) and a closed document is not required. So its model is used to
validate, and amounts and dates are read from the raw element text.

OFX states no opening balance. The opening balance here is derived (closing minus the
lines) and marked so; only continuity with the previous statement can prove it.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import xml.etree.ElementTree as ET
from typing import Any

from ofxtools.header import OFXHeaderError
from ofxtools.Parser import OFXTree, ParseError, TreeBuilder

from reconciliation.amounts import Reader
from reconciliation.statement import Balance, Statement, StatementLine, new_statement

FORMAT = "ofx"
_STATEMENTS = {"STMTRS": "BANKACCTFROM", "CCSTMTRS": "CCACCTFROM"}


class _TrackingBuilder(TreeBuilder):
    """Remembers which elements are still open, so a truncated file names where it
    stopped; `ofxtools` itself accepts a document that never closes."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, int]] = []
        self._seen: dict[str, int] = {}

    def start(self, tag: str, attrs: Any, *args: Any) -> Any:
        self._seen[tag] = self._seen.get(tag, 0) + 1
        self.open.append((tag, self._seen[tag]))
        return super().start(tag, attrs, *args)

    def end(self, tag: str) -> Any:
        if self.open and self.open[-1][0] == tag:
            self.open.pop()
        return super().end(tag)


class OfxParser:
    format = FORMAT

    def parse(self, data: bytes, *, source_name: str) -> list[Statement]:
        reader = Reader(FORMAT, source_name)
        root = _parse_tree(data, reader)
        found = [(el, _STATEMENTS[el.tag]) for el in root.iter() if el.tag in _STATEMENTS]
        if not found:
            raise reader.unreadable("element OFX", "no STMTRS or CCSTMTRS statement in the file")
        return [_read_statement(el, account_tag, reader, data, source_name)
                for el, account_tag in found]


def _parse_tree(data: bytes, reader: Reader) -> ET.Element:
    logging.getLogger("ofxtools").setLevel(logging.CRITICAL)
    tree = OFXTree()
    builder = _TrackingBuilder()
    try:
        tree.parse(io.BytesIO(data), parser=builder)
    except OFXHeaderError as exc:
        raise reader.unreadable("line 1 (OFX header)", str(exc)) from None
    except (ParseError, ValueError) as exc:
        raise reader.unreadable("the OFX body", str(exc)) from None
    if builder.open:
        tag, occurrence = builder.open[-1]
        line = _line_of(data, tag, occurrence)
        raise reader.unreadable(
            f"element {tag} (line {line})",
            f"<{tag}> is never closed; the file is truncated",
        )
    try:
        tree.convert()  # the library's schema validation; its values are not used
    except (ValueError, TypeError) as exc:
        raise reader.unreadable("the OFX body", str(exc)) from None
    root = tree.getroot()
    assert root is not None
    return root


def _line_of(data: bytes, tag: str, occurrence: int) -> int:
    needle, position = f"<{tag}>".encode(), -1
    for _ in range(occurrence):
        position = data.find(needle, position + 1)
    return data.count(b"\n", 0, max(position, 0)) + 1


def _text(element: ET.Element | None, path: str) -> str | None:
    if element is None:
        return None
    found = element.find(path)
    if found is None or found.text is None or not found.text.strip():
        return None
    return found.text.strip()


def _date(text: str | None, reader: Reader, where: str) -> dt.date:
    # the date as the bank wrote it, before any time-zone conversion
    try:
        digits = (text or "")[:8]
        return dt.date.fromisoformat(f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}")
    except ValueError:
        raise reader.unreadable(where, f"{text!r} is not an OFX date") from None


def _amount_text(text: str | None) -> str | None:
    # OFX allows a comma as decimal separator; there is never a thousands separator
    return text.replace(",", ".") if text and "." not in text else text


def _read_statement(
    statement: ET.Element, account_tag: str, reader: Reader, data: bytes, source_name: str
) -> Statement:
    currency = reader.currency(_text(statement, "CURDEF"), f"element {statement.tag}/CURDEF")
    account = _text(statement, f"{account_tag}/ACCTID") or ""
    tranlist = statement.find("BANKTRANLIST")
    lines = [
        _read_transaction(trn, index, currency, reader)
        for index, trn in enumerate(tranlist.findall("STMTTRN") if tranlist is not None else [],
                                    start=1)
    ]
    ledger = statement.find("LEDGERBAL")
    if ledger is None:
        raise reader.unreadable(f"element {statement.tag}", "no LEDGERBAL closing balance")
    where = f"element {statement.tag}/LEDGERBAL"
    closing_amount = reader.money(_amount_text(_text(ledger, "BALAMT")), currency, where)
    closing_date = _date(_text(ledger, "DTASOF"), reader, where)
    start = _text(tranlist, "DTSTART")
    end = _text(tranlist, "DTEND")
    opening_date = _date(start, reader, "element BANKTRANLIST/DTSTART") if start else closing_date
    total = sum((line.amount for line in lines), closing_amount * 0)
    return new_statement(
        statement_id=f"{account}:{(start or '')[:8]}-{(end or '')[:8]}",
        account=account,
        currency=currency,
        opening=Balance(closing_amount - total, opening_date, derived=True),
        closing=Balance(closing_amount, closing_date),
        lines=lines,
        source_format=FORMAT,
        data=data,
        source_name=source_name,
    )


def _read_transaction(
    trn: ET.Element, index: int, currency: str, reader: Reader
) -> StatementLine:
    where = f"element STMTTRN[{index}]"
    line_currency = _text(trn, "CURRENCY/CURSYM") or currency
    amount = reader.money(_amount_text(_text(trn, "TRNAMT")), line_currency, f"{where}/TRNAMT")
    posted = _date(_text(trn, "DTPOSTED"), reader, f"{where}/DTPOSTED")
    available = _text(trn, "DTAVAIL")
    return StatementLine(
        amount=amount,
        value_date=_date(available, reader, f"{where}/DTAVAIL") if available else posted,
        booking_date=posted,
        bank_reference=_text(trn, "FITID"),
        customer_reference=_text(trn, "REFNUM") or _text(trn, "CHECKNUM"),
        counterparty_name=_text(trn, "NAME") or _text(trn, "PAYEE/NAME"),
        counterparty_account=_text(trn, "BANKACCTTO/ACCTID") or _text(trn, "CCACCTTO/ACCTID"),
        description=" ".join((_text(trn, "MEMO") or "").split()),
        transaction_code=_text(trn, "TRNTYPE"),
    )
