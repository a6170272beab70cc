"""OFX bank and credit-card statements (SGML v1 and XML v2), read with `ofxparse` (MIT).

Two things `ofxparse` does not do the way a ledger needs, handled here through its own
extension points (it is a class of classmethods meant to be subclassed):
- it converts dates to UTC (a posting at 00:30 in Beijing lands on the previous day):
  `parseOfxDateTime` is overridden to keep the date as the bank wrote it;
- it drops DTAVAIL, REFNUM, BANKACCTTO and the line currency: `parseTransaction` keeps
  them from the element it was given.
And, parsing with a forgiving HTML parser, it accepts a document that never closes: a
structure check first names the element a truncated file stops in.

OFX states no opening balance. The opening balance here is derived (closing minus the
lines) and marked so; only continuity with the previous statement can prove it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import re
import warnings
from typing import Any

import ofxparse

from reconciliation.amounts import Reader
from reconciliation.statement import Balance, Statement, StatementLine, new_statement

FORMAT = "ofx"

#: OFX aggregates a bank statement uses: in SGML (v1) only these have end tags, so a
#: file in which one of them never closes was cut short
_AGGREGATES = frozenset({
    "OFX", "SIGNONMSGSRSV1", "SONRS", "STATUS", "FI", "BANKMSGSRSV1", "CREDITCARDMSGSRSV1",
    "STMTTRNRS", "CCSTMTTRNRS", "STMTRS", "CCSTMTRS", "BANKACCTFROM", "CCACCTFROM",
    "BANKTRANLIST", "STMTTRN", "LEDGERBAL", "AVAILBAL", "BANKACCTTO", "CCACCTTO", "PAYEE",
    "CURRENCY", "ORIGCURRENCY",
})
_TAG = re.compile(rb"<(/?)([A-Za-z0-9.]+)>")


class _AsWritten(ofxparse.OfxParser):  # type: ignore[misc]
    @classmethod
    def parseOfxDateTime(cls, ofxDateTime: str) -> dt.datetime:
        # the date as the bank wrote it, before any time-zone conversion
        digits = ofxDateTime.strip()[:8]
        return dt.datetime(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))  # noqa: DTZ001

    @classmethod
    def parseTransaction(cls, txn_ofx: Any) -> Any:
        transaction = super().parseTransaction(txn_ofx)
        transaction.raw = {
            "dtavail": _text(txn_ofx, "dtavail"),
            "refnum": _text(txn_ofx, "refnum"),
            "trnamt": _text(txn_ofx, "trnamt"),
            "dtposted": _text(txn_ofx, "dtposted"),
            "cursym": _text(txn_ofx.find("currency") or txn_ofx.find("origcurrency"), "cursym"),
            "acctto": _text(txn_ofx.find("bankacctto") or txn_ofx.find("ccacctto"), "acctid"),
        }
        return transaction


def _text(tag: Any, name: str) -> str | None:
    if tag is None:
        return None
    found = tag.find(name)
    if found is None or not found.contents:
        return None
    value = str(found.contents[0]).strip()
    return value or None


class OfxParser:
    format = FORMAT

    def parse(self, data: bytes, *, source_name: str) -> list[Statement]:
        reader = Reader(FORMAT, source_name)
        _check_structure(data, reader)
        try:
            with warnings.catch_warnings():
                # ofxparse still calls BeautifulSoup's deprecated findAll
                warnings.simplefilter("ignore", DeprecationWarning)
                document = _AsWritten.parse(io.BytesIO(data))
        except ofxparse.OfxParserException as exc:
            raise reader.unreadable("the OFX body", str(exc)) from None
        except (ValueError, TypeError, AttributeError, IndexError, KeyError,
                decimal.InvalidOperation) as exc:
            # ofxparse reports malformed headers and values as whatever Python raised
            raise reader.unreadable("the OFX body", f"{type(exc).__name__}: {exc}") from None
        accounts = [a for a in document.accounts if getattr(a, "statement", None) is not None]
        if not accounts:
            raise reader.unreadable("element OFX", "no STMTRS or CCSTMTRS statement in the file")
        return [_read_statement(account, reader, data, source_name) for account in accounts]


def _check_structure(data: bytes, reader: Reader) -> None:
    """Every aggregate opened is closed; otherwise name the innermost one left open."""
    body = data.find(b"<OFX>")
    if body < 0:
        body = data.find(b"<OFX ")
    if body < 0:
        raise reader.unreadable("line 1 (OFX header)", "no <OFX> element")
    closed = {m.group(2).upper() for m in _TAG.finditer(data, body) if m.group(1)}
    open_tags: list[tuple[str, int]] = []
    for match in _TAG.finditer(data, body):
        name = match.group(2).decode("ascii", "replace").upper()
        if name not in _AGGREGATES and name.encode() not in closed:
            continue
        if not match.group(1):
            open_tags.append((name, match.start()))
        elif any(tag == name for tag, _ in open_tags):
            while open_tags and open_tags.pop()[0] != name:
                pass
    if open_tags:
        name, position = open_tags[-1]
        line = data.count(b"\n", 0, position) + 1
        raise reader.unreadable(f"element {name} (line {line})",
                                f"<{name}> is never closed; the file is truncated")


def _date(value: dt.datetime | None, text: str | None, reader: Reader, where: str) -> dt.date:
    if value is not None:
        return value.date()
    try:
        digits = (text or "")[:8]
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise reader.unreadable(where, f"{text!r} is not an OFX date") from None


def _read_statement(account: Any, reader: Reader, data: bytes, source_name: str) -> Statement:
    statement = account.statement
    tag = "CCSTMTRS" if account.type == ofxparse.AccountType.CreditCard else "STMTRS"
    currency = reader.currency(getattr(statement, "currency", None) or account.curdef,
                               f"element {tag}/CURDEF")
    lines = [_read_transaction(trn, index, currency, reader)
             for index, trn in enumerate(statement.transactions, start=1)]
    where = f"element {tag}/LEDGERBAL"
    if getattr(statement, "balance", None) is None:
        raise reader.unreadable(f"element {tag}", "no LEDGERBAL closing balance")
    closing_amount = reader.exact(decimal.Decimal(statement.balance), currency, where)
    closing_date = _date(getattr(statement, "balance_date", None), None, reader, where)
    start: dt.datetime | None = getattr(statement, "start_date", None)
    end: dt.datetime | None = getattr(statement, "end_date", None)
    opening_date = start.date() if start else closing_date
    total = sum((line.amount for line in lines), closing_amount * 0)
    return new_statement(
        statement_id=(f"{account.account_id}:{start:%Y%m%d}-{end:%Y%m%d}" if start and end
                      else f"{account.account_id}:{closing_date:%Y%m%d}"),
        account=account.account_id or "",
        currency=currency,
        opening=Balance(closing_amount - total, opening_date, derived=True),
        closing=Balance(closing_amount, closing_date),
        lines=lines,
        source_format=FORMAT,
        data=data,
        source_name=source_name,
    )


def _read_transaction(trn: Any, index: int, currency: str, reader: Reader) -> StatementLine:
    where = f"element STMTTRN[{index}]"
    raw: dict[str, str | None] = getattr(trn, "raw", {})
    line_currency = reader.currency(raw.get("cursym") or currency, f"{where}/CURRENCY")
    if trn.amount is None:
        raise reader.unreadable(f"{where}/TRNAMT", "no amount")
    amount = reader.exact(decimal.Decimal(trn.amount), line_currency, f"{where}/TRNAMT")
    posted = _date(trn.date, raw.get("dtposted"), reader, f"{where}/DTPOSTED")
    available = raw.get("dtavail")
    return StatementLine(
        amount=amount,
        value_date=_date(None, available, reader, f"{where}/DTAVAIL") if available else posted,
        booking_date=posted,
        bank_reference=(trn.id or "").strip() or None,
        customer_reference=raw.get("refnum") or (trn.checknum or "").strip() or None,
        counterparty_name=(trn.payee or "").strip() or None,
        counterparty_account=raw.get("acctto"),
        description=" ".join((trn.memo or "").split()),
        transaction_code=(trn.type or "").upper() or None,
    )
