"""A sandbox bank's statement of the merchant's settlement account for one day, written
from the bank's own book in a real statement format:

- `camt053`: ISO 20022 camt.053.001.08 (BkToCstmrStmt), the day's captures as ONE
  batch entry (`NtryDtls/Btch` with NbOfTxs and gross TtlAmt, the fee in `Chrgs`, one
  `TxDtls` per payment whose `Refs/AcctSvcrRef` is the bank's transaction id);
- `mt940`: SWIFT MT940, the batch as one `:61:` line whose `:86:` carries the batch id,
  count, gross, fee (`/CHGS/`) and as many payment ids as the 6x65 field holds;
- `bai2`: BAI Cash Management Balance Reporting v2, the batch as one 165 detail with the
  item list in 88 continuation records;
- `csv`: an online-banking transaction export (交易明细) as Chinese banks give it, UTF-8
  with BOM, debit and credit columns, the running balance after each line, and the batch
  items in the remark; read it with this profile (reconciliation.CsvProfile):
  `CsvProfile(name=..., account=<account>, date_column="交易日期", date_format="%Y%m%d",
  debit_column="借方发生额", credit_column="贷方发生额", balance_column="余额",
  currency_column="币种", reference_column="交易流水号", end_to_end_id_column="业务参考号",
  counterparty_name_column="对方户名", description_columns=("摘要", "附言"))` (see
  `CSV_PROFILE_COLUMNS`).

In every format: refunds are their own debit lines (bank reference = the bank's refund
id, end-to-end id = the merchant's refund id), payouts are debit lines whose end-to-end
id is the merchant's payout id, bank charges are debit lines nobody asked for, and
opening balance + lines = closing balance.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from lxml import etree

from gateways.sandbox.book import Book, Movement, MovementKind
from ledger import minor_exponent

__all__ = ["CSV_PROFILE_COLUMNS", "FORMATS", "DayStatement", "Entry", "day_statement", "render"]

FORMATS = ("camt.053", "mt940", "bai2", "csv")

#: the CSV export's columns, named as a `reconciliation.CsvProfile` wants them
#: (its `description_columns` are ("摘要", "附言"))
CSV_PROFILE_COLUMNS: dict[str, str] = {
    "date_column": "交易日期", "date_format": "%Y%m%d", "debit_column": "借方发生额",
    "credit_column": "贷方发生额", "balance_column": "余额", "currency_column": "币种",
    "reference_column": "交易流水号", "end_to_end_id_column": "业务参考号",
    "counterparty_name_column": "对方户名",
}


@dataclass(frozen=True)
class BatchItem:
    bank_txn_id: str
    reference: str
    amount_minor: int
    fee_minor: int


@dataclass(frozen=True)
class Entry:
    """One statement line, signed from the account holder's side (credit > 0)."""

    kind: MovementKind
    amount_minor: int
    bank_reference: str
    end_to_end_id: str | None
    counterparty: str
    description: str
    batch: tuple[BatchItem, ...] = ()

    @property
    def gross_minor(self) -> int:
        return sum(i.amount_minor for i in self.batch)

    @property
    def fee_minor(self) -> int:
        return sum(i.fee_minor for i in self.batch)


@dataclass(frozen=True)
class DayStatement:
    bank_code: str
    bank_name: str
    account: str
    account_name: str
    currency: str
    day: dt.date
    opening_minor: int
    closing_minor: int
    entries: tuple[Entry, ...]
    created_at: dt.datetime

    @property
    def statement_id(self) -> str:
        return f"{self.bank_code.upper()}-{self.day:%Y%m%d}"

    @property
    def batch_id(self) -> str:
        return f"STL{self.day:%Y%m%d}{self.bank_code[:3].upper()}"


def day_statement(book: Book, day: dt.date, *, bank_name: str,
                  created_at: dt.datetime | None = None) -> DayStatement:
    movements = book.movements_on(day)
    opening = book.merchant_balance(before=day)
    entries: list[Entry] = []
    captures = [m for m in movements if m.kind is MovementKind.CAPTURE]
    batch_id = f"STL{day:%Y%m%d}{book.bank_code[:3].upper()}"
    if captures:
        items = tuple(BatchItem(m.bank_txn_id, m.reference, m.amount_minor, m.fee_minor)
                      for m in captures)
        entries.append(Entry(
            kind=MovementKind.CAPTURE,
            amount_minor=sum(m.effect_minor for m in captures),
            bank_reference=batch_id, end_to_end_id=None, counterparty=book.bank_code.upper(),
            description=f"MERCHANT SETTLEMENT {batch_id}", batch=items,
        ))
    entries.extend(_single(m) for m in movements if m.kind is not MovementKind.CAPTURE)
    closing = opening + sum(e.amount_minor for e in entries)
    assert closing == book.merchant_balance(before=day + dt.timedelta(days=1))
    return DayStatement(
        bank_code=book.bank_code, bank_name=bank_name, account=book.merchant_account,
        account_name=book.merchant_name, currency=book.currency, day=day,
        opening_minor=opening, closing_minor=closing, entries=tuple(entries),
        created_at=created_at or dt.datetime.combine(
            day + dt.timedelta(days=1), dt.time(6, 0), dt.UTC),
    )


def _single(m: Movement) -> Entry:
    if m.kind is MovementKind.REFUND:
        return Entry(m.kind, -m.amount_minor, m.bank_txn_id, m.reference, "CUSTOMER REFUND",
                     f"REFUND {m.original_bank_txn_id or ''}".strip())
    if m.kind is MovementKind.PAYOUT:
        return Entry(m.kind, -m.amount_minor, m.bank_txn_id, m.reference, m.counterparty,
                     f"PAYOUT {m.description}".strip())
    if m.kind is MovementKind.RETURN:
        return Entry(m.kind, m.amount_minor, m.bank_txn_id, m.reference, m.counterparty,
                     f"PAYOUT {m.description}".strip())
    return Entry(m.kind, -m.amount_minor, m.bank_txn_id, None, "", m.description)


def render(statement: DayStatement, format: str) -> tuple[str, bytes]:
    """(file name, bytes) of the statement in `format` (one of `FORMATS`)."""
    stem = f"{statement.bank_code}-{statement.account[-4:]}-{statement.day:%Y%m%d}"
    if format == "camt.053":
        return f"{stem}.camt053.xml", camt053(statement)
    if format == "mt940":
        return f"{stem}.mt940", mt940(statement)
    if format == "bai2":
        return f"{stem}.bai2", bai2(statement)
    if format == "csv":
        return f"{stem}.csv", csv_export(statement)
    raise ValueError(f"unknown statement format {format!r}; known: {', '.join(FORMATS)}")


def _decimal(minor: int, currency: str) -> Decimal:
    exponent = minor_exponent(currency)
    return Decimal(abs(minor)).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


# ---------------------------------------------------------------------------- camt.053

_CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
_BTC = {
    MovementKind.CAPTURE: ("PMNT", "MCRD", "POSP"),  # merchant card transactions, POS payment
    MovementKind.REFUND: ("PMNT", "MCRD", "OTHR"),
    MovementKind.PAYOUT: ("PMNT", "ICDT", "DMCT"),  # issued domestic credit transfer
    MovementKind.CHARGE: ("ACMT", "MDOP", "CHRG"),  # account management charges
    MovementKind.RETURN: ("PMNT", "ICDT", "RRTN"),  # issued credit transfer, returned
}


def camt053(s: DayStatement) -> bytes:
    def el(parent: etree._Element, tag: str, text: str | None = None,
           **attrs: str) -> etree._Element:
        child = etree.SubElement(parent, f"{{{_CAMT_NS}}}{tag}", attrs)
        if text is not None:
            child.text = text
        return child

    def amount(parent: etree._Element, tag: str, minor: int) -> None:
        el(parent, tag, str(_decimal(minor, s.currency)), Ccy=s.currency)

    def indicator(parent: etree._Element, minor: int) -> None:
        el(parent, "CdtDbtInd", "CRDT" if minor >= 0 else "DBIT")

    def balance(parent: etree._Element, code: str, minor: int) -> None:
        bal = el(parent, "Bal")
        el(el(el(bal, "Tp"), "CdOrPrtry"), "Cd", code)
        amount(bal, "Amt", minor)
        indicator(bal, minor)
        el(el(bal, "Dt"), "Dt", s.day.isoformat())

    created = s.created_at.isoformat(timespec="seconds")
    root = etree.Element(f"{{{_CAMT_NS}}}Document", nsmap={None: _CAMT_NS})
    message = el(root, "BkToCstmrStmt")
    header = el(message, "GrpHdr")
    el(header, "MsgId", f"{s.statement_id}-MSG")
    el(header, "CreDtTm", created)
    stmt = el(message, "Stmt")
    el(stmt, "Id", s.statement_id)
    el(stmt, "ElctrncSeqNb", str(s.day.toordinal()))
    el(stmt, "CreDtTm", created)
    period = el(stmt, "FrToDt")
    el(period, "FrDtTm", f"{s.day.isoformat()}T00:00:00+00:00")
    el(period, "ToDtTm", f"{s.day.isoformat()}T23:59:59+00:00")
    acct = el(stmt, "Acct")
    el(el(el(acct, "Id"), "Othr"), "Id", s.account)
    el(acct, "Ccy", s.currency)
    el(acct, "Nm", s.account_name)
    el(el(el(acct, "Svcr"), "FinInstnId"), "Nm", s.bank_name)
    balance(stmt, "OPBD", s.opening_minor)
    balance(stmt, "CLBD", s.closing_minor)
    summary = el(el(stmt, "TxsSummry"), "TtlNtries")
    el(summary, "NbOfNtries", str(len(s.entries)))
    el(summary, "Sum", str(_decimal(sum(abs(e.amount_minor) for e in s.entries), s.currency)))
    net = sum(e.amount_minor for e in s.entries)
    net_el = el(summary, "TtlNetNtry")
    amount(net_el, "Amt", net)
    indicator(net_el, net)
    for number, entry in enumerate(s.entries, start=1):
        ntry = el(stmt, "Ntry")
        el(ntry, "NtryRef", str(number))
        amount(ntry, "Amt", entry.amount_minor)
        indicator(ntry, entry.amount_minor)
        el(el(ntry, "Sts"), "Cd", "BOOK")
        el(el(ntry, "BookgDt"), "Dt", s.day.isoformat())
        el(el(ntry, "ValDt"), "Dt", s.day.isoformat())
        el(ntry, "AcctSvcrRef", entry.bank_reference)
        domain, family, sub = _BTC[entry.kind]
        dom = el(el(ntry, "BkTxCd"), "Domn")
        el(dom, "Cd", domain)
        fam = el(dom, "Fmly")
        el(fam, "Cd", family)
        el(fam, "SubFmlyCd", sub)
        details = el(ntry, "NtryDtls") if entry.batch or entry.end_to_end_id else None
        if entry.batch:
            charges = el(ntry, "Chrgs")
            amount(charges, "TtlChrgsAndTaxAmt", entry.fee_minor)
            record = el(charges, "Rcrd")
            amount(record, "Amt", entry.fee_minor)
            el(record, "CdtDbtInd", "DBIT")
            el(record, "ChrgInclInd", "true")
            # Chrgs must precede NtryDtls in the schema's sequence
            ntry.remove(charges)
            assert details is not None
            details.addprevious(charges)
            batch = el(details, "Btch")
            el(batch, "PmtInfId", s.batch_id)
            el(batch, "NbOfTxs", str(len(entry.batch)))
            amount(batch, "TtlAmt", entry.gross_minor)
            el(batch, "CdtDbtInd", "CRDT")
            for item in entry.batch:
                tx = el(details, "TxDtls")
                refs = el(tx, "Refs")
                el(refs, "AcctSvcrRef", item.bank_txn_id)
                el(refs, "EndToEndId", item.reference or "NOTPROVIDED")
                amount(tx, "Amt", item.amount_minor)
                el(tx, "CdtDbtInd", "CRDT")
                fee = el(el(tx, "Chrgs"), "Rcrd")
                amount(fee, "Amt", item.fee_minor)
                el(fee, "CdtDbtInd", "DBIT")
                el(el(tx, "RmtInf"), "Ustrd", f"PAYMENT {item.bank_txn_id} FEE "
                   f"{_decimal(item.fee_minor, s.currency)}")
        elif details is not None:
            tx = el(details, "TxDtls")
            refs = el(tx, "Refs")
            el(refs, "AcctSvcrRef", entry.bank_reference)
            el(refs, "EndToEndId", entry.end_to_end_id or "NOTPROVIDED")
            amount(tx, "Amt", entry.amount_minor)
            indicator(tx, entry.amount_minor)
            if entry.counterparty:
                parties = el(tx, "RltdPties")
                party = "Cdtr" if entry.amount_minor < 0 else "Dbtr"
                el(el(el(parties, party), "Pty"), "Nm", entry.counterparty)
            el(el(tx, "RmtInf"), "Ustrd", entry.description)
        if entry.batch or details is None:
            # A single transaction says it in its remittance information already.
            el(ntry, "AddtlNtryInf", entry.description)
    document: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                     pretty_print=True)
    return document


# ---------------------------------------------------------------------------- MT940

_MT940_TYPE = {MovementKind.CAPTURE: "NMSC", MovementKind.REFUND: "NTRF",
               MovementKind.PAYOUT: "NTRF", MovementKind.CHARGE: "NCHG",
               MovementKind.RETURN: "NRTI"}
_LINE = 65


def _mt_amount(minor: int, currency: str) -> str:
    return str(_decimal(minor, currency)).replace(".", ",")


def _mt_balance(tag: str, minor: int, day: dt.date, currency: str) -> str:
    mark = "C" if minor >= 0 else "D"
    return f":{tag}:{mark}{day:%y%m%d}{currency}{_mt_amount(minor, currency)}"


def _wrap86(text: str) -> list[str]:
    # Field 86: at most 6 lines of 65 characters.
    lines = [text[i:i + _LINE] for i in range(0, len(text), _LINE)]
    return lines[:6]


def _swift_text(text: str) -> str:
    # The SWIFT x character set: letters, digits and a few marks.
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/-?:().,'+ ")
    return "".join(c if c in allowed else " " for c in text)


def mt940(s: DayStatement) -> bytes:
    lines = [
        f":20:{s.statement_id[:16]}",
        f":25:{s.account}",
        f":28C:{s.day.timetuple().tm_yday:05d}/001",
        _mt_balance("60F", s.opening_minor, s.day, s.currency),
    ]
    for entry in s.entries:
        mark = "C" if entry.amount_minor >= 0 else "D"
        customer = (entry.end_to_end_id or "NONREF")[:16]
        lines.append(
            f":61:{s.day:%y%m%d}{s.day:%m%d}{mark}{_mt_amount(entry.amount_minor, s.currency)}"
            f"{_MT940_TYPE[entry.kind]}{customer}//{entry.bank_reference[:23]}"
        )
        lines.extend(_field86(entry, s))
    lines.append(_mt_balance("62F", s.closing_minor, s.day, s.currency))
    lines.append(_mt_balance("64", s.closing_minor, s.day, s.currency))
    return ("\r\n".join(lines) + "\r\n-").encode("ascii")


def _field86(entry: Entry, s: DayStatement) -> list[str]:
    if entry.batch:
        head = (f"/TRTP/MERCHANT SETTLEMENT/EREF/{s.batch_id}/REMI/BATCH {s.batch_id} "
                f"{len(entry.batch)} TXNS GROSS {s.currency}"
                f"{_mt_amount(entry.gross_minor, s.currency)} IDS")
        tail = f"/CHGS/{s.currency}{_mt_amount(entry.fee_minor, s.currency)}"
        room = 6 * _LINE - len(head) - len(tail)
        ids = ""
        for index, item in enumerate(entry.batch):
            more = f" +{len(entry.batch) - index} MORE"
            if len(ids) + 1 + len(item.bank_txn_id) + len(more) > room:
                ids += more
                break
            ids += " " + item.bank_txn_id
        text = head + ids + tail
    else:
        parts = []
        if entry.end_to_end_id:
            parts.append(f"/EREF/{entry.end_to_end_id}")
        if entry.counterparty:
            parts.append(f"/NAME/{_swift_text(entry.counterparty)}")
        parts.append(f"/REMI/{_swift_text(entry.description)}")
        text = "".join(parts)
    wrapped = _wrap86(text)
    return [f":86:{wrapped[0]}", *wrapped[1:]]


# ---------------------------------------------------------------------------- BAI2

_BAI2_TYPE = {MovementKind.CAPTURE: "165", MovementKind.REFUND: "469",
              MovementKind.PAYOUT: "495", MovementKind.CHARGE: "698",
              MovementKind.RETURN: "195"}


def bai2(s: DayStatement) -> bytes:
    sender, receiver = s.bank_code.upper()[:8], "PAYCORE"
    stamp = s.created_at
    account_records: list[str] = [
        f"03,{s.account},{s.currency},010,{s.opening_minor},,,015,{s.closing_minor},,/",
    ]
    for entry in s.entries:
        text = _bai_text(entry.description)
        account_records.append(
            f"16,{_BAI2_TYPE[entry.kind]},{abs(entry.amount_minor)},0,"
            f"{entry.bank_reference},{entry.end_to_end_id or ''},{text}"
        )
        if entry.batch:
            account_records.append(
                f"88,BATCH {s.batch_id} ITEMS {len(entry.batch)} GROSS {entry.gross_minor} "
                f"FEE {entry.fee_minor}")
            for item in entry.batch:
                account_records.append(
                    f"88,ITEM {item.bank_txn_id} AMT {item.amount_minor} FEE {item.fee_minor}")
    control = s.opening_minor + s.closing_minor + sum(
        abs(e.amount_minor) for e in s.entries)
    account_records.append(f"49,{control},{len(account_records) + 1}/")
    group = [
        f"02,{receiver},{sender},1,{s.day:%y%m%d},2400,{s.currency},2/",
        *account_records,
        f"98,{control},1,{len(account_records) + 2}/",
    ]
    records = [
        f"01,{sender},{receiver},{stamp:%y%m%d},{stamp:%H%M},{s.day.toordinal() % 10**6},,,2/",
        *group,
        f"99,{control},1,{len(group) + 2}/",
    ]
    return ("\n".join(records) + "\n").encode("ascii")


def _bai_text(text: str) -> str:
    # The text field runs to the end of the record; keep it to plain ASCII words.
    return "".join(c if c.isascii() and (c.isalnum() or c in " -.:") else " " for c in text)


def entries_total(entries: Sequence[Entry]) -> int:
    return sum(e.amount_minor for e in entries)


# ---------------------------------------------------------------------------- CSV

_CSV_HEADER = ("交易日期", "交易流水号", "业务参考号", "借方发生额", "贷方发生额", "余额",
               "币种", "对方户名", "摘要", "附言")


def csv_export(s: DayStatement) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_CSV_HEADER)
    balance = s.opening_minor
    for entry in s.entries:
        balance += entry.amount_minor
        debit = str(_decimal(entry.amount_minor, s.currency)) if entry.amount_minor < 0 else ""
        credit = str(_decimal(entry.amount_minor, s.currency)) if entry.amount_minor >= 0 else ""
        remark = ""
        if entry.batch:
            remark = (f"批量结算 {len(entry.batch)}笔 总额 {_decimal(entry.gross_minor, s.currency)}"
                      f" 手续费 {_decimal(entry.fee_minor, s.currency)} " + " ".join(
                          f"{i.bank_txn_id}:{_decimal(i.amount_minor, s.currency)}"
                          f"/{_decimal(i.fee_minor, s.currency)}" for i in entry.batch))
        signed_balance = ("-" if balance < 0 else "") + str(_decimal(balance, s.currency))
        writer.writerow((f"{s.day:%Y%m%d}", entry.bank_reference, entry.end_to_end_id or "",
                         debit, credit, signed_balance, s.currency, entry.counterparty,
                         entry.description, remark))
    return ("\ufeff" + out.getvalue()).encode("utf-8")
