"""ISO 20022 camt.053 (account statement) and camt.054 (debit/credit notification),
versions 001.02 to 001.08, read with lxml."""

from __future__ import annotations

import datetime as dt

from lxml import etree

from reconciliation.amounts import Reader
from reconciliation.parsers.camt_entry import is_booked, read_entry
from reconciliation.parsers.camt_xml import CamtDocument, Element, message_of, parse_xml
from reconciliation.statement import Balance, Statement, StatementKind, new_statement

SUPPORTED_VERSIONS = range(2, 9)

#: balance type codes that open and close a statement; a page of a paginated
#: statement opens and closes with interim booked balances (ITBD)
_OPENING_CODES = ("OPBD", "PRCD", "ITBD")
_CLOSING_CODES = ("CLBD", "ITBD")

_CONTAINERS = {
    "camt.053": ("BkToCstmrStmt", "Stmt", StatementKind.STATEMENT),
    "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn", StatementKind.NOTIFICATION),
}


class CamtParser:
    def __init__(self, message: str = "camt.053") -> None:
        if message not in _CONTAINERS:
            raise ValueError(f"not a camt message we read: {message!r}")
        self.format = message

    def parse(self, data: bytes, *, source_name: str) -> list[Statement]:
        reader = Reader(self.format, source_name)
        root = parse_xml(data, reader)
        message, version, number = message_of(root, reader)
        if message != self.format:
            raise reader.unreadable(
                "element Document", f"this is a {message}.{version} document, not {self.format}"
            )
        if number not in SUPPORTED_VERSIONS:
            raise reader.unreadable(
                "element Document", f"{message}.{version} is not a version we read "
                f"(001.02 to 001.08)"
            )
        doc = CamtDocument(etree.QName(root).namespace or "", reader)
        container_name, report_name, kind = _CONTAINERS[message]
        container = doc.require(root, container_name)
        created_at = doc.text(container, "GrpHdr/CreDtTm")
        reports = doc.findall(container, report_name)
        if not reports:
            raise reader.unreadable(doc.where(container), f"no {report_name} in the message")
        return [
            _read_report(doc, report, kind, data, source_name, version, created_at)
            for report in reports
        ]


def _read_report(
    doc: CamtDocument,
    report: Element,
    kind: StatementKind,
    data: bytes,
    source_name: str,
    version: str,
    created_at: str | None,
) -> Statement:
    account_el = doc.require(report, "Acct")
    account = doc.text(account_el, "Id/IBAN", "Id/Othr/Id")
    if account is None:
        raise doc.reader.unreadable(doc.where(account_el, "Id"), "account has no IBAN or Id")
    balances = doc.findall(report, "Bal")
    entries = [e for e in doc.findall(report, "Ntry") if is_booked(doc, e)]
    currency = doc.text(account_el, "Ccy") or _first_currency(doc, balances + entries)
    currency = doc.reader.currency(currency, doc.where(account_el, "Ccy"))
    opening = closing = None
    if kind is StatementKind.STATEMENT:
        opening = _balance(doc, report, balances, _OPENING_CODES, first=True)
        closing = _balance(doc, report, balances, _CLOSING_CODES, first=False)
    return new_statement(
        statement_id=doc.text(report, "Id") or doc.text(report, "ElctrncSeqNb") or account,
        account=account,
        currency=currency,
        opening=opening,
        closing=closing,
        lines=[read_entry(doc, entry) for entry in entries],
        source_format=doc.reader.format,
        data=data,
        source_name=source_name,
        format_version=version,
        kind=kind,
        created_at=_timestamp(doc.text(report, "CreDtTm") or created_at),
    )


def _first_currency(doc: CamtDocument, elements: list[Element]) -> str | None:
    for element in elements:
        amt = doc.find(element, "Amt")
        if amt is not None and amt.get("Ccy"):
            return str(amt.get("Ccy"))
    return None


def _balance(
    doc: CamtDocument, report: Element, balances: list[Element], codes: tuple[str, ...],
    *, first: bool,
) -> Balance:
    for code in codes:
        found = [b for b in balances if doc.text(b, "Tp/CdOrPrtry/Cd") == code]
        if found:
            element = found[0] if first else found[-1]
            date = doc.date(element, "Dt")
            if date is None:
                raise doc.reader.unreadable(doc.where(element, "Dt"), "balance has no date")
            amount = doc.amount(element, "Amt", indicator_path="CdtDbtInd")
            return Balance(amount=amount, date=date)
    which = "opening" if first else "closing"
    raise doc.reader.unreadable(
        doc.where(report), f"statement has no {which} booked balance ({'/'.join(codes)})"
    )


def _timestamp(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None
