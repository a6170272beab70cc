"""Booked bank items: the postings on the ledger accounts a bank account reconciles
against, copied from the ledger in sequence order so that matching can index them its
own way (open items by amount, by date, by reference).

The copy follows each account's postings by `(account_id, account_seq)` from where it
stopped last time (`recon_sync_cursors`), so a run reads only what was posted since. An
account split into lanes (a hot clearing account) is followed lane by lane, one cursor
per (account, lane): its lanes commit independently, so a lower lane's posting can commit
after a higher lane's was copied, and one position per account would skip it. Within a
lane postings commit in sequence order, so each cursor is exact and gap-free.
Reconciliation's own entries (`recon.*`) are not items: they are the explanation.
An entry and its reversal cancel out; neither is something a bank will ever show.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from reconciliation.config import BankAccount
from reconciliation.schema import book_items, sync_cursors

_NOT_ALNUM = re.compile(r"[^0-9A-Z]")
OWN_KINDS = "recon."


def normalize_ref(text: str | None) -> str:
    """References compare without case, spaces or punctuation: `PI-2026/001` = `pi2026001`."""
    return _NOT_ALNUM.sub("", text.upper()) if text else ""


ItemKey = tuple[int, int]


@dataclass(slots=True)
class Item:
    """An open booked item; `amount` is signed as posted (debit > 0)."""

    account_id: int
    account_seq: int
    entry_id: uuid.UUID
    amount: int
    effective_date: dt.date
    kind: str
    ref: str
    external_ref: str | None
    description: str

    @property
    def key(self) -> ItemKey:
        return (self.account_id, self.account_seq)


def item_from_row(row: Any) -> Item:
    return Item(row.account_id, row.account_seq, row.entry_id, row.amount_minor,
                row.effective_date, row.kind, normalize_ref(row.external_ref),
                row.external_ref, row.description)


async def sync_book_items(conn: AsyncConnection, bank: BankAccount) -> int:
    """Copy every posting on the bank account's item accounts that is new since the last
    run; returns how many items were added."""
    added = 0
    for account_id in bank.item_account_ids:
        added += await _sync_account(conn, account_id)
    return added


async def _sync_account(conn: AsyncConnection, account_id: int) -> int:
    cursors = {int(r.lane): int(r.last_seq) for r in await conn.execute(
        sa.select(sync_cursors.c.lane, sync_cursors.c.last_seq)
        .where(sync_cursors.c.account_id == account_id))}
    # every lane's head as of one moment: an entry committed by then is whole in them
    # (a reversal's original committed before it, whichever lanes the two are in)
    heads = await ledger.lane_heads(conn, account_id)
    moved = {lane: head for lane, head in heads.items()
             if head > cursors.get(lane, ledger.lane_start(lane))}
    if not moved:
        return 0
    # copied inside the database: a million postings never travel through Python
    source = ledger.lane_postings_query(account_id, cursors, moved).subquery()
    new_items = sa.select(
        source.c.account_id, source.c.account_seq, source.c.entry_id, source.c.amount,
        source.c.currency, source.c.effective_date, source.c.kind, source.c.external_ref,
        source.c.description, sa.literal("open"),
    ).where(source.c.kind.not_like(f"{OWN_KINDS}%"))
    insert: Any = (postgresql.insert(book_items) if conn.dialect.name == "postgresql"
                   else sqlite.insert(book_items))
    result = await conn.execute(insert.from_select(
        ["account_id", "account_seq", "entry_id", "amount_minor", "currency",
         "effective_date", "kind", "external_ref", "description", "status"],
        new_items).on_conflict_do_nothing())
    added = max(int(result.rowcount or 0), 0)
    # after every lane's items are in: a reversal may sit in another lane than its original
    reversals = (await conn.execute(
        sa.select(source.c.account_seq, source.c.amount, source.c.reverses_entry_id)
        .where(source.c.reverses_entry_id.is_not(None),
               source.c.kind.not_like(f"{OWN_KINDS}%")))).all()
    await _void_reversals(conn, account_id, reversals)
    pg = conn.dialect.name == "postgresql"
    stmt: Any = postgresql.insert(sync_cursors) if pg else sqlite.insert(sync_cursors)
    # never backwards: a concurrent run that read older heads may commit after this one
    further = (sa.func.greatest if pg else sa.func.max)(sync_cursors.c.last_seq,
                                                       stmt.excluded.last_seq)
    await conn.execute(stmt.values([{"account_id": account_id, "lane": lane, "last_seq": head}
                                    for lane, head in sorted(moved.items())])
                       .on_conflict_do_update(index_elements=["account_id", "lane"],
                                              set_={"last_seq": further}))
    return added


async def _void_reversals(conn: AsyncConnection, account_id: int,
                          reversals: Sequence[Any]) -> None:
    """A reversal and the posting it reverses cancel out; neither waits for the bank.
    (A reversal of an item already matched stays open: the bank will show it.)"""
    for p in reversals:
        original = (await conn.execute(
            sa.select(book_items.c.account_seq, book_items.c.amount_minor)
            .where(book_items.c.account_id == account_id,
                   book_items.c.entry_id == p.reverses_entry_id,
                   book_items.c.status == "open")
        )).first()
        if original is None or original.amount_minor != -p.amount:
            continue
        await conn.execute(
            book_items.update()
            .where(book_items.c.account_id == account_id,
                   book_items.c.account_seq.in_([original.account_seq, p.account_seq]))
            .values(status="void"))


def _open_items_of(bank: BankAccount) -> Any:
    return sa.select(book_items).where(book_items.c.account_id.in_(bank.item_account_ids),
                                       book_items.c.status == "open")


async def items_by_refs(conn: AsyncConnection, bank: BankAccount,
                        refs: Iterable[str]) -> dict[str, list[Item]]:
    """Open items whose entry's external reference is one of `refs` (raw strings as the
    bank printed them, matched exactly and in normalised form)."""
    wanted = sorted({r for r in refs if r})
    found: dict[str, list[Item]] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start:start + 1000]
        rows = await conn.execute(_open_items_of(bank)
                                  .where(book_items.c.external_ref.in_(chunk)))
        for row in rows:
            item = item_from_row(row)
            found.setdefault(item.ref, []).append(item)
    return found


async def items_by_amounts(conn: AsyncConnection, bank: BankAccount, amounts: Iterable[int],
                           lo: dt.date, hi: dt.date) -> dict[int, list[Item]]:
    wanted = sorted(set(amounts))
    found: dict[int, list[Item]] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start:start + 1000]
        rows = await conn.execute(
            _open_items_of(bank).where(book_items.c.amount_minor.in_(chunk),
                                       book_items.c.effective_date.between(lo, hi)))
        for row in rows:
            item = item_from_row(row)
            found.setdefault(item.amount, []).append(item)
    return found


async def items_in_window(conn: AsyncConnection, bank: BankAccount, account_id: int,
                          lo: dt.date, hi: dt.date, *, credit: bool, limit: int) -> list[Item]:
    """Open items of one account and one side in a date range, oldest first, at most
    `limit` (a bound on what a batch's subset search considers)."""
    side = book_items.c.amount_minor > 0 if credit else book_items.c.amount_minor < 0
    rows = await conn.execute(
        sa.select(book_items).where(book_items.c.account_id == account_id,
                                    book_items.c.status == "open", side,
                                    book_items.c.effective_date.between(lo, hi))
        .order_by(book_items.c.effective_date, book_items.c.account_seq).limit(limit))
    return [item_from_row(r) for r in rows]


async def load_items(conn: AsyncConnection, keys: Sequence[ItemKey]) -> list[tuple[Item, str]]:
    """The items with these keys that exist, each with its status."""
    found = []
    for account_id, seq in keys:
        row = (await conn.execute(sa.select(book_items).where(
            book_items.c.account_id == account_id, book_items.c.account_seq == seq))).first()
        if row is not None:
            found.append((item_from_row(row), str(row.status)))
    return found
