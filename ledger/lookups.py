"""Read-only look-ups for domains that follow the books rather than write them (e.g.
reconciliation): postings of an account in sequence order with their entry's reference,
and balances by value date.

Everything here is an index look-up: postings are read by `(account_id, account_seq)`,
the unique key every posting has, so a follower can resume from the last sequence number
it saw without scanning what it has already read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.schema import journal_entries, postings


@dataclass(frozen=True, slots=True)
class BookedPosting:
    """A posting with what its journal entry says about it; `(account_id, account_seq)`
    is its identity."""

    account_id: int
    account_seq: int
    entry_id: uuid.UUID
    #: signed minor units: debit > 0, credit < 0
    amount: int
    currency: str
    effective_date: dt.date
    kind: str
    external_ref: str | None
    description: str
    reverses_entry_id: uuid.UUID | None


def postings_after_query(account_id: int, after_seq: int, through_seq: int) -> sa.Select[Any]:
    """The account's postings with `after_seq < account_seq <= through_seq`, as a SELECT
    (columns named as `BookedPosting`'s fields) that a follower can copy from inside the
    database, `INSERT ... SELECT`, instead of fetching every row."""
    return _booked_postings(account_id, after_seq).where(postings.c.account_seq <= through_seq)


def _booked_postings(account_id: int, after_seq: int) -> sa.Select[Any]:
    """The account's postings after `after_seq`, with their entries' fields."""
    return (
        sa.select(
            postings.c.account_id, postings.c.account_seq, postings.c.entry_id,
            postings.c.amount, postings.c.currency, postings.c.effective_date,
            journal_entries.c.kind, journal_entries.c.external_ref,
            journal_entries.c.description, journal_entries.c.reverses_entry_id,
        )
        .join(journal_entries, journal_entries.c.id == postings.c.entry_id)
        .where(postings.c.account_id == account_id, postings.c.account_seq > after_seq)
    )


async def postings_after(
    conn: AsyncConnection, account_id: int, after_seq: int, *, limit: int = 10_000
) -> list[BookedPosting]:
    """The account's postings with sequence number above `after_seq`, in sequence order,
    at most `limit` of them (page with the last one's `account_seq`)."""
    rows = await conn.execute(
        _booked_postings(account_id, after_seq)
        .order_by(postings.c.account_seq)
        .limit(limit)
    )
    return [
        BookedPosting(r.account_id, r.account_seq, r.entry_id, r.amount, r.currency,
                      r.effective_date, r.kind, r.external_ref, r.description,
                      r.reverses_entry_id)
        for r in rows
    ]


async def last_sequence(conn: AsyncConnection, account_id: int) -> int:
    """The account's highest posting sequence number (0 when it has none)."""
    seq = await conn.scalar(
        sa.select(sa.func.max(postings.c.account_seq)).where(postings.c.account_id == account_id)
    )
    return int(seq or 0)


async def net_by_value_date(conn: AsyncConnection, account_id: int, day: dt.date) -> int:
    """Debits minus credits of every posting on the account with effective (value) date
    on or before `day`, in minor units. `balance(as_of=...)` answers by booking time;
    a bank statement is about value dates, so comparing with one needs this."""
    net = await conn.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(postings.c.amount), 0))
        .where(postings.c.account_id == account_id, postings.c.effective_date <= day)
    )
    return int(net or 0)
