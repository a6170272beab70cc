"""Read-only look-ups for domains that follow the books rather than write them (e.g.
reconciliation): postings of an account in sequence order with their entry's reference,
and balances by value date.

Everything here is an index look-up: postings are read by `(account_id, account_seq)`,
the unique key every posting has, so a follower can resume from the last sequence number
it saw without scanning what it has already read.

An account split into lanes (migration 0022) numbers each lane's postings in its own
range, and its lanes commit independently: lane 0's posting 7 may commit after lane 3's
posting 3*2^40+2 was read. A follower therefore keeps one position per lane
(`lane_heads`, `lane_postings_query`); within one lane postings commit in sequence order
(a writer holds the lane's balance row until it commits), so a lane read up to its head
has no gap that fills in later.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.schema import LANE_STRIDE, account_balances, journal_entries, postings


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
    at most `limit` of them (page with the last one's `account_seq`). On an account of
    several lanes that order is lane by lane, not booking order (see `lane_heads`)."""
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


async def lane_heads(conn: AsyncConnection, account_id: int) -> dict[int, int]:
    """Each lane of the account with its last posting's sequence number (`lane * 2^40`
    for a lane with no posting yet), all read in one statement, i.e. as of one moment:
    every posting of a lane numbered up to its head is committed and visible."""
    rows = await conn.execute(
        sa.select(account_balances.c.lane, account_balances.c.seq)
        .where(account_balances.c.account_id == account_id))
    return {int(r.lane): int(r.seq) for r in rows}


def lane_start(lane: int) -> int:
    """The position before a lane's first posting (its sequence numbers follow it)."""
    return lane * LANE_STRIDE


def lane_postings_query(account_id: int, after: Mapping[int, int],
                        through: Mapping[int, int]) -> sa.Select[Any]:
    """The account's postings with `after[lane] < account_seq <= through[lane]` in each
    lane of `through` (a lane missing from `after` from its start), as one SELECT with
    `postings_after_query`'s columns. Empty ranges are left out; with none, no rows."""
    ranges = [(after.get(lane, lane_start(lane)), head) for lane, head in sorted(through.items())
              if head > after.get(lane, lane_start(lane))]
    query = _booked_postings(account_id, min((lo for lo, _ in ranges), default=0))
    if not ranges:
        return query.where(sa.false())
    return query.where(sa.or_(*(postings.c.account_seq.between(lo + 1, hi) for lo, hi in ranges)))


async def last_sequence(conn: AsyncConnection, account_id: int) -> int:
    """The account's highest posting sequence number (0 when it has none). On an account
    of several lanes this is the top lane's: a follower must use `lane_heads`, since
    lower lanes keep committing below it."""
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
