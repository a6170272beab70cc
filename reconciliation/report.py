"""The daily reconciliation report of one bank account: the bank's balance against the
book balance of `1001.bank.<bank>` (by value date), and the difference explained.

Reconciliation posts every statement line it explains to the bank account at the line's
booking date, so the book balance differs from the bank's only by

    brought forward  bank opening - book balance when the first statement began
  + unmatched lines  what the bank shows and the books do not (yet)
  - unmatched items  what the books put straight on the bank account and no statement shows
  + missing lines    the bank's closing balance minus the lines we hold (a statement gap)
  + timing           items matched to a line on the other side of the report date

and the report proves it: `explained` is true when these add up to the difference.
Booked items still in clearing (captures the bank owes, payouts in flight) are not part of
the difference; they are listed as in transit.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from reconciliation.config import BankAccount
from reconciliation.exceptions import open_counts
from reconciliation.schema import book_items, statement_lines, statements

#: what makes a CSV cell a formula when a spreadsheet (Excel, LibreOffice, Google Sheets)
#: opens the file: '=', '+', '-', '@', and a tab or carriage return before one of them
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """Text for a CSV cell that a spreadsheet shows and never runs. A bank statement's
    description or reference, a payer's or merchant's name, comes from outside: written
    as it is, '=HYPERLINK(...)' or '=cmd|...' runs in the finance clerk's spreadsheet.
    Such text gets a leading apostrophe (OWASP's advice for CSV injection), which the
    spreadsheet reads as "this is text"; any other text is unchanged. For text only:
    amounts are written as numbers and never pass through here."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@dataclass(frozen=True)
class OpenLine:
    line_id: int
    date: dt.date
    amount_minor: int
    reference: str | None
    description: str


@dataclass(frozen=True)
class OpenItem:
    item: str
    account: str
    date: dt.date
    amount_minor: int
    reference: str | None
    kind: str


@dataclass
class ReconciliationReport:
    bank: str
    currency: str
    day: dt.date
    bank_opening_minor: int | None
    bank_closing_minor: int | None
    book_opening_minor: int
    book_closing_minor: int
    matched_lines: int
    matched_amount_minor: int
    open_line_exceptions: int
    open_item_exceptions: int
    brought_forward_minor: int
    unmatched_lines_minor: int
    unmatched_items_minor: int
    missing_lines_minor: int
    timing_minor: int
    in_transit_count: int
    in_transit_minor: int
    unmatched_lines: list[OpenLine] = field(default_factory=list)
    unmatched_items: list[OpenItem] = field(default_factory=list)

    @property
    def difference_minor(self) -> int:
        return (self.bank_closing_minor or 0) - self.book_closing_minor

    @property
    def explained(self) -> bool:
        return self.timing_minor == 0

    def money(self, minor: int | None) -> str:
        if minor is None:
            return "-"
        return f"{ledger.from_minor(minor, self.currency).amount:,}"

    def explanation(self) -> list[tuple[str, int]]:
        return [
            ("brought forward (bank opening - book, first statement)", self.brought_forward_minor),
            ("statement lines the books do not explain", self.unmatched_lines_minor),
            ("book items on the bank account no statement shows", -self.unmatched_items_minor),
            ("missing statement lines (gap in statements)", self.missing_lines_minor),
            ("timing / unexplained", self.timing_minor),
        ]

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["day"] = self.day.isoformat()
        doc["difference_minor"] = self.difference_minor
        doc["explained"] = self.explained
        for entry in (*doc["unmatched_lines"], *doc["unmatched_items"]):
            entry["date"] = entry["date"].isoformat()
        doc["amounts"] = {
            k: self.money(v) for k, v in doc.items() if k.endswith("_minor") and
            isinstance(v, int)
        }
        return doc

    def table(self) -> tuple[list[str], list[list[object]]]:
        """The report as rows (section, label, amount in minor units or None, currency,
        date, reference): what `to_csv` writes, for any export format."""
        header = ["section", "label", "amount", "currency", "date", "reference"]
        rows: list[list[object]] = []
        c, d = self.currency, self.day.isoformat()
        for label, value in (("bank opening", self.bank_opening_minor),
                             ("bank closing", self.bank_closing_minor),
                             ("book opening", self.book_opening_minor),
                             ("book closing", self.book_closing_minor),
                             ("difference", self.difference_minor),
                             ("matched amount", self.matched_amount_minor),
                             ("in transit", self.in_transit_minor)):
            rows.append(["balance", label, value, c, d, ""])
        for label, value in self.explanation():
            rows.append(["explanation", label, value, c, d, ""])
        for line in self.unmatched_lines:
            rows.append(["unmatched line", f"line {line.line_id}: {line.description}",
                         line.amount_minor, c, line.date.isoformat(), line.reference or ""])
        for item in self.unmatched_items:
            rows.append(["unmatched item", f"{item.account} {item.item} {item.kind}",
                         item.amount_minor, c, item.date.isoformat(), item.reference or ""])
        return header, rows

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        header, rows = self.table()
        writer.writerow(header)
        for row in rows:
            amount = row[2]
            writer.writerow([*(spreadsheet_text(str(v)) for v in row[:2]),
                             self.money(amount if isinstance(amount, int) else None),
                             *(spreadsheet_text(str(v)) for v in row[3:])])
        return out.getvalue()


async def _book(conn: AsyncConnection, bank: BankAccount, day: dt.date) -> int:
    return await ledger.net_by_value_date(conn, bank.bank_ledger_id, day)


async def build_report(conn: AsyncConnection, bank: BankAccount, day: dt.date,
                       *, list_limit: int = 200) -> ReconciliationReport:
    lines_of = statement_lines.c
    first = (await conn.execute(
        sa.select(statements.c.opening_minor, statements.c.opening_date,
                  statements.c.period_start)
        .where(statements.c.bank_account_id == bank.id, statements.c.opening_minor.is_not(None))
        .order_by(statements.c.opening_date, statements.c.id).limit(1))).first()
    start = first.opening_date if first else day
    if first and first.period_start and first.opening_date < first.period_start:
        # the opening balance is the previous day's close (camt PRCD, MT940 :60F:)
        start = first.opening_date + dt.timedelta(days=1)
    bank_b0 = int(first.opening_minor) if first else 0
    book_k0 = await _book(conn, bank, start - dt.timedelta(days=1))
    latest = (await conn.execute(
        sa.select(statements.c.closing_minor, statements.c.closing_date)
        .where(statements.c.bank_account_id == bank.id, statements.c.closing_minor.is_not(None),
               statements.c.closing_date <= day)
        .order_by(statements.c.closing_date.desc(), statements.c.id.desc()).limit(1))).first()
    of_day = (await conn.execute(
        sa.select(statements.c.opening_minor)
        .where(statements.c.bank_account_id == bank.id, statements.c.closing_date == day,
               statements.c.opening_minor.is_not(None))
        .order_by(statements.c.opening_date).limit(1))).first()
    in_range = sa.and_(lines_of.bank_account_id == bank.id, lines_of.booking_date >= start,
                       lines_of.booking_date <= day)
    all_lines = int(await conn.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(lines_of.amount_minor), 0)).where(in_range)) or 0)
    open_rows = (await conn.execute(
        sa.select(lines_of.id, lines_of.booking_date, lines_of.amount_minor,
                  lines_of.end_to_end_id, lines_of.bank_reference, lines_of.description,
                  lines_of.counterparty_name)
        .where(in_range, lines_of.status == "open").order_by(lines_of.booking_date, lines_of.id)
    )).all()
    matched = (await conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(lines_of.amount_minor), 0))
        .where(lines_of.bank_account_id == bank.id, lines_of.booking_date == day,
               lines_of.status != "open"))).one()
    items_of = book_items.c
    direct_rows = (await conn.execute(
        sa.select(items_of.account_id, items_of.account_seq, items_of.effective_date,
                  items_of.amount_minor, items_of.external_ref, items_of.kind)
        .where(items_of.account_id == bank.bank_ledger_id, items_of.status == "open",
               items_of.effective_date >= start, items_of.effective_date <= day)
        .order_by(items_of.effective_date))).all()
    transit = (await conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(items_of.amount_minor), 0))
        .where(items_of.account_id.in_([bank.clearing_id, bank.payout_clearing_id]),
               items_of.status == "open", items_of.effective_date <= day))).one()
    book_closing = await _book(conn, bank, day)
    bank_closing = int(latest.closing_minor) if latest else None
    unmatched_lines = sum(int(r.amount_minor) for r in open_rows)
    unmatched_items = sum(int(r.amount_minor) for r in direct_rows)
    missing = (bank_closing - (bank_b0 + all_lines)) if bank_closing is not None else 0
    difference = (bank_closing or 0) - book_closing
    explained = (bank_b0 - book_k0) + unmatched_lines - unmatched_items + missing
    counts = await open_counts(conn, bank)
    code = bank.config.bank_ledger_account
    return ReconciliationReport(
        bank=bank.code, currency=bank.currency, day=day,
        bank_opening_minor=int(of_day.opening_minor) if of_day else None,
        bank_closing_minor=bank_closing,
        book_opening_minor=await _book(conn, bank, day - dt.timedelta(days=1)),
        book_closing_minor=book_closing,
        matched_lines=int(matched[0]), matched_amount_minor=int(matched[1]),
        open_line_exceptions=counts[0], open_item_exceptions=counts[1],
        brought_forward_minor=bank_b0 - book_k0, unmatched_lines_minor=unmatched_lines,
        unmatched_items_minor=unmatched_items, missing_lines_minor=missing,
        timing_minor=difference - explained,
        in_transit_count=int(transit[0]), in_transit_minor=int(transit[1]),
        unmatched_lines=[
            OpenLine(r.id, r.booking_date, r.amount_minor, r.end_to_end_id or r.bank_reference,
                     " ".join(t for t in (r.counterparty_name, r.description) if t))
            for r in open_rows[:list_limit]],
        unmatched_items=[
            OpenItem(f"{r.account_id}:{r.account_seq}", code, r.effective_date, r.amount_minor,
                     r.external_ref, r.kind) for r in direct_rows[:list_limit]],
    )
