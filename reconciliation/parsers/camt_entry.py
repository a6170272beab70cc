"""One camt `Ntry` (a booked movement) as a `StatementLine`.

Versions differ in small ways this reader absorbs: `Sts` is text up to 001.06 and a
`Cd` choice from 001.07; a related party's name sits in `Dbtr/Nm` up to 001.07 and in
`Dbtr/Pty/Nm` from 001.08; charges are a list of `Chrgs/Amt` in 001.02 and
`Chrgs/Rcrd/Amt` from 001.03.
"""

from __future__ import annotations

from moneyed import Money

from reconciliation.parsers.camt_batch import contradictions
from reconciliation.parsers.camt_xml import CamtDocument, Element
from reconciliation.statement import BatchDetails, StatementLine

_NOT_PROVIDED = "NOTPROVIDED"


def is_booked(doc: CamtDocument, entry: Element) -> bool:
    # Pending and information-only entries do not move the booked balance.
    status = doc.text(entry, "Sts/Cd", "Sts/Prtry", "Sts")
    return status in (None, "BOOK")


def read_entry(doc: CamtDocument, entry: Element) -> StatementLine:
    amount = doc.amount(entry, "Amt", indicator_path="CdtDbtInd")
    stated_booking = doc.date(entry, "BookgDt")
    stated_value = doc.date(entry, "ValDt")
    booking_date = stated_booking or stated_value
    value_date = stated_value or stated_booking
    if booking_date is None or value_date is None:
        raise doc.reader.unreadable(doc.where(entry), "entry has neither BookgDt nor ValDt")
    details = doc.findall(entry, "NtryDtls/TxDtls")
    single = details[0] if len(details) == 1 else None
    credit = amount.amount > 0
    party = "Dbtr" if credit else "Cdtr"
    description = " ".join(
        t for t in (
            doc.text(entry, "AddtlNtryInf"),
            _remittance(doc, single),
        ) if t
    )
    return StatementLine(
        amount=amount,
        value_date=value_date,
        booking_date=booking_date,
        # not NtryRef: that only numbers entries within one statement
        bank_reference=doc.text(entry, "AcctSvcrRef") or doc.text(single, "Refs/AcctSvcrRef"),
        end_to_end_id=_provided(doc.text(single, "Refs/EndToEndId")),
        customer_reference=_provided(
            doc.text(single, "Refs/InstrId", "Refs/PmtInfId", "Refs/MsgId")
        ),
        counterparty_name=doc.text(
            single, f"RltdPties/{party}/Nm", f"RltdPties/{party}/Pty/Nm"
        ),
        counterparty_account=doc.text(
            single, f"RltdPties/{party}Acct/Id/IBAN", f"RltdPties/{party}Acct/Id/Othr/Id"
        ),
        description=description,
        transaction_code=_transaction_code(doc, entry),
        reversal=doc.text(entry, "RvslInd") in ("true", "1"),
        batch=_batch(doc, entry, details, amount),
    )


def _provided(value: str | None) -> str | None:
    return None if value is None or value.upper() == _NOT_PROVIDED else value


def _remittance(doc: CamtDocument, details: Element | None) -> str | None:
    if details is None:
        return None
    lines = [
        (e.text or "").strip() for e in doc.findall(details, "RmtInf/Ustrd")
    ]
    return " ".join(line for line in lines if line) or None


def _transaction_code(doc: CamtDocument, entry: Element) -> str | None:
    code = doc.find(entry, "BkTxCd")
    if code is None:
        return None
    domain = [
        doc.text(code, "Domn/Cd"),
        doc.text(code, "Domn/Fmly/Cd"),
        doc.text(code, "Domn/Fmly/SubFmlyCd"),
    ]
    if all(domain):
        return "/".join(d for d in domain if d)
    return doc.text(code, "Prtry/Cd")


def _batch(
    doc: CamtDocument, entry: Element, details: list[Element], net: Money
) -> BatchDetails | None:
    batch = doc.find(entry, "NtryDtls/Btch")
    fees = _charges(doc, entry)
    if batch is None and len(details) <= 1:
        return None
    count_text = doc.text(batch, "NbOfTxs") if batch is not None else None
    # without NbOfTxs the listed details are the count; with neither, it is unknown
    count = (len(details) or None) if count_text is None else _count(doc, batch, count_text)
    gross: Money | None = None
    if batch is not None and doc.find(batch, "TtlAmt") is not None:
        gross = doc.amount(batch, "TtlAmt", indicator_path=None)
        if net.amount < 0:
            gross = -gross
    elif doc.find(entry, "AmtDtls/TxAmt/Amt") is not None:
        gross = doc.amount(entry, "AmtDtls/TxAmt/Amt", indicator_path=None)
        if net.amount < 0:
            gross = -gross
    batch_id = (
        doc.text(batch, "PmtInfId", "MsgId") if batch is not None else None
    )
    references: list[str] = []
    for detail in details:
        for path in ("Refs/AcctSvcrRef", "Refs/TxId", "Refs/EndToEndId", "Refs/InstrId"):
            ref = _provided(doc.text(detail, path))
            if ref and ref not in references:
                references.append(ref)
    return BatchDetails(item_count=count, gross_amount=gross, fees=fees, batch_id=batch_id,
                        item_references=tuple(references),
                        contradictions=contradictions(doc, entry, batch, details, net, count,
                                                      gross, fees))


def _count(doc: CamtDocument, batch: Element | None, text: str) -> int:
    if not text.isdigit():
        where = doc.where(batch, "NbOfTxs") if batch is not None else "NbOfTxs"
        raise doc.reader.unreadable(where, f"{text!r} is not a number of transactions")
    return int(text)


def _charges(doc: CamtDocument, entry: Element) -> Money | None:
    holders = doc.findall(entry, "Chrgs")
    if not holders:
        return None
    if doc.find(holders[0], "TtlChrgsAndTaxAmt") is not None:
        return doc.amount(holders[0], "TtlChrgsAndTaxAmt", indicator_path=None)
    # 001.02 repeats `Chrgs` itself; later versions list `Chrgs/Rcrd`
    records = doc.findall(holders[0], "Rcrd") or holders
    total: Money | None = None
    for record in records:
        if doc.find(record, "Amt") is None:
            continue
        fee = doc.amount(record, "Amt", indicator_path=None)
        total = fee if total is None else total + fee
    return total
