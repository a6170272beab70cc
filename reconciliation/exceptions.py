"""The exceptions queue: what a run leaves unmatched, each with suggested counterparts.

- a `statement_line` exception: the bank shows a movement the books do not explain;
- a `book_item` exception: the books expect a movement no statement has shown.

A run refreshes the queue (new exceptions, fresher suggestions); a match closes an
exception on its own; a person closes the rest (`reconciliation.resolution`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from reconciliation.config import BankAccount
from reconciliation.items import Item, item_from_row, items_by_refs
from reconciliation.matching import Line, line_from_row, reference_score
from reconciliation.schema import book_items, exceptions, statement_lines

MAX_CANDIDATES = 5


@dataclass(frozen=True)
class Candidate:
    kind: str  # "book_item" (for a line) or "statement_line" (for an item)
    #: a line id, or "account_id:account_seq" for an item
    id: str
    amount_minor: int
    date: dt.date
    reference: str | None
    score: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "amount_minor": self.amount_minor,
                "date": self.date.isoformat(), "reference": self.reference,
                "score": self.score}


@dataclass(frozen=True)
class ExceptionRecord:
    id: int
    bank_account_id: int | None
    kind: str
    line_id: int | None
    item_key: tuple[int, int] | None
    amount_minor: int
    currency: str
    date: dt.date
    reference: str | None
    description: str
    candidates: tuple[dict[str, Any], ...]
    status: str
    opened_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by: str | None
    resolution: str | None
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "line_id": self.line_id,
            "item": f"{self.item_key[0]}:{self.item_key[1]}" if self.item_key else None,
            "amount_minor": self.amount_minor, "currency": self.currency,
            "date": self.date.isoformat(), "reference": self.reference,
            "description": self.description, "candidates": list(self.candidates),
            "status": self.status, "resolution": self.resolution,
            "resolved_by": self.resolved_by, "reason": self.reason,
        }


def _record(row: Any) -> ExceptionRecord:
    key = (row.item_account_id, row.item_account_seq) if row.item_account_id is not None else None
    return ExceptionRecord(row.id, row.bank_account_id, row.kind, row.line_id, key,
                           row.amount_minor, row.currency, row.date, row.reference,
                           row.description, tuple(row.candidates or ()), row.status,
                           row.opened_at, row.resolved_at, row.resolved_by, row.resolution,
                           row.reason)


def _score(line: Line, item: Item, window: int) -> int:
    """0-100: amount agreement weighs most, then reference, then date."""
    amount = 50 if line.amount == item.amount else (
        25 if line.amount and abs(line.amount - item.amount) * 100 <= abs(line.amount) else 0)
    days = line.days_from(item.effective_date)
    date = max(0, 20 - 20 * days // max(window + 1, 1))
    return amount + date + reference_score(line, item) * 30 // 100


async def _line_candidates(conn: AsyncConnection, bank: BankAccount, line: Line) -> list[Candidate]:
    window = bank.config.rules.date_window_days
    span = dt.timedelta(days=window)
    rows = await conn.execute(
        sa.select(book_items).where(
            book_items.c.account_id.in_(bank.item_account_ids), book_items.c.status == "open",
            book_items.c.amount_minor == line.amount,
            book_items.c.effective_date.between(line.booking_date - span, line.booking_date + span))
        .limit(MAX_CANDIDATES * 2))
    found = {item.key: item for item in (item_from_row(r) for r in rows)}
    for items in (await items_by_refs(conn, bank, line.raw_refs)).values():
        found.update({i.key: i for i in items})
    scored = sorted(((_score(line, i, window), i) for i in found.values()),
                    key=lambda t: -t[0])[:MAX_CANDIDATES]
    return [Candidate("book_item", f"{i.account_id}:{i.account_seq}", i.amount,
                      i.effective_date, i.external_ref, s) for s, i in scored if s > 0]


async def _item_candidates(conn: AsyncConnection, bank: BankAccount, item: Item) -> list[Candidate]:
    window = bank.config.rules.date_window_days
    span = dt.timedelta(days=window)
    where = [statement_lines.c.status == "open"]
    if bank.role_of(item.account_id) != "payout":
        where.append(statement_lines.c.bank_account_id == bank.id)
    by_amount = sa.and_(statement_lines.c.amount_minor == item.amount,
                        statement_lines.c.booking_date.between(item.effective_date - span,
                                                               item.effective_date + span))
    by_ref = (statement_lines.c.end_to_end_id == item.external_ref
              if item.external_ref else sa.false())
    rows = await conn.execute(sa.select(statement_lines).where(*where, sa.or_(by_amount, by_ref))
                              .limit(MAX_CANDIDATES * 2))
    lines = [line_from_row(r) for r in rows]
    scored = sorted(((_score(line, item, window), line) for line in lines),
                    key=lambda t: -t[0])[:MAX_CANDIDATES]
    return [Candidate("statement_line", str(line.id), line.amount, line.booking_date,
                      (line.raw_refs or (None,))[0], s) for s, line in scored if s > 0]


async def refresh_exceptions(conn: AsyncConnection, bank: BankAccount,
                             up_to: dt.date) -> tuple[int, int]:
    """File every open line booked by `up_to` and every open item dated by `up_to` less
    the grace days; refresh suggestions of those already filed. Returns the numbers of
    open line and item exceptions of the bank account."""
    now = dt.datetime.now(dt.UTC)
    line_rows = (await conn.execute(
        sa.select(statement_lines).where(statement_lines.c.bank_account_id == bank.id,
                                         statement_lines.c.status == "open",
                                         statement_lines.c.booking_date <= up_to))).all()
    filed = {r.line_id: r.id for r in await conn.execute(
        sa.select(exceptions.c.line_id, exceptions.c.id).where(
            exceptions.c.bank_account_id == bank.id, exceptions.c.kind == "statement_line",
            exceptions.c.status == "open"))}
    for row in line_rows:
        line = line_from_row(row)
        candidates = [c.to_json() for c in await _line_candidates(conn, bank, line)]
        if row.id in filed:
            await conn.execute(exceptions.update().where(exceptions.c.id == filed[row.id])
                               .values(candidates=candidates))
            continue
        reference = (row.end_to_end_id or row.bank_reference or row.customer_reference)
        description = " ".join(t for t in (row.counterparty_name, row.description) if t)
        if row.review_flag:
            # a person must see why no rule took the line
            description = f"REVIEW: {row.review_flag}. {description}".strip()
        await conn.execute(exceptions.insert().values(
            bank_account_id=bank.id, kind="statement_line", line_id=row.id,
            amount_minor=row.amount_minor, currency=row.currency, date=row.booking_date,
            reference=reference, description=description, candidates=candidates,
            status="open", opened_at=now))
    cutoff = up_to - dt.timedelta(days=bank.config.rules.item_grace_days)
    item_rows = (await conn.execute(
        sa.select(book_items).where(book_items.c.account_id.in_(bank.item_account_ids),
                                    book_items.c.status == "open",
                                    book_items.c.effective_date <= cutoff))).all()
    filed_items = {(r.item_account_id, r.item_account_seq): r.id for r in await conn.execute(
        sa.select(exceptions.c.item_account_id, exceptions.c.item_account_seq, exceptions.c.id)
        .where(exceptions.c.kind == "book_item", exceptions.c.status == "open",
               exceptions.c.item_account_id.in_(bank.item_account_ids)))}
    for row in item_rows:
        item = item_from_row(row)
        candidates = [c.to_json() for c in await _item_candidates(conn, bank, item)]
        if item.key in filed_items:
            await conn.execute(exceptions.update().where(exceptions.c.id == filed_items[item.key])
                               .values(candidates=candidates))
            continue
        shared = bank.role_of(item.account_id) == "payout"
        await conn.execute(exceptions.insert().values(
            bank_account_id=None if shared else bank.id, kind="book_item",
            item_account_id=item.account_id, item_account_seq=item.account_seq,
            amount_minor=item.amount, currency=row.currency, date=item.effective_date,
            reference=item.external_ref, description=f"{item.kind}: {item.description}",
            candidates=candidates, status="open", opened_at=now))
    return await open_counts(conn, bank)


async def open_counts(conn: AsyncConnection, bank: BankAccount) -> tuple[int, int]:
    counts: dict[str, int] = dict((await conn.execute(
        sa.select(exceptions.c.kind, sa.func.count()).where(
            exceptions.c.status == "open", _of_bank(bank)).group_by(exceptions.c.kind))).all())
    return int(counts.get("statement_line", 0)), int(counts.get("book_item", 0))


def _of_bank(bank: BankAccount) -> Any:
    """A bank account's exceptions, and those on the payout clearing account it uses."""
    return sa.or_(exceptions.c.bank_account_id == bank.id,
                  sa.and_(exceptions.c.bank_account_id.is_(None),
                          exceptions.c.item_account_id == bank.payout_clearing_id))


async def list_exceptions(conn: AsyncConnection, bank: BankAccount | None = None, *,
                          status: str | None = "open", limit: int = 1000) -> list[ExceptionRecord]:
    query = sa.select(exceptions).order_by(exceptions.c.date, exceptions.c.id).limit(limit)
    if bank is not None:
        query = query.where(_of_bank(bank))
    if status is not None:
        query = query.where(exceptions.c.status == status)
    return [_record(r) for r in await conn.execute(query)]


async def get_exception(conn: AsyncConnection, exception_id: int) -> ExceptionRecord | None:
    row = (await conn.execute(sa.select(exceptions).where(exceptions.c.id == exception_id))).first()
    return _record(row) if row is not None else None
