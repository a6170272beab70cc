"""Balances and account statements, answered from index look-ups on postings: a booking
time is found by a binary search over each lane's sequence numbers (`_lanes_before`), the
lines of a period are a range of them per lane; an account's figure is its lanes' sum."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.accounts import get_account
from ledger.errors import InvalidRequest, LedgerError
from ledger.schema import LANE_STRIDE, account_balances, journal_entries, postings
from ledger.types import AccountRef, AccountStatement, Balance, StatementLine


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _lanes_before(account_id: int, cutoff: dt.datetime, *, inclusive: bool) -> sa.Select[Any]:
    """Per lane of the account: (lane, the sequence number of its last posting booked
    before (or at) `cutoff` (the lane's base when none), that posting's running balance
    (NULL when none)). Each lane is a binary search over `(account_id, account_seq)` in its
    own range, one index probe per step, which holds because a lane's postings are booked
    in sequence order (migration 0012: every writer books no earlier than the lane's last
    posting). A lane whose search met a gap answers no row."""
    p = postings.alias("p")
    base = sa.cast(account_balances.c.lane, sa.BigInteger) * sa.literal(LANE_STRIDE, sa.BigInteger)
    search = (
        sa.select(account_balances.c.lane.label("lane"), base.label("lo"),
                  account_balances.c.seq.label("hi"))
        .where(account_balances.c.account_id == account_id)
        .cte("seq_search", recursive=True)
    )
    # the upper middle, so that each step narrows [lo, hi] until lo = hi
    mid = (search.c.lo + search.c.hi + 1) // 2
    booked = p.c.booked_at <= cutoff if inclusive else p.c.booked_at < cutoff
    search = search.union_all(
        sa.select(search.c.lane, sa.case((booked, mid), else_=search.c.lo),
                  sa.case((booked, search.c.hi), else_=mid - 1))
        .select_from(search.join(p, sa.and_(p.c.account_id == account_id,
                                            p.c.account_seq == mid)))
        .where(search.c.lo < search.c.hi)
    )
    found = sa.select(search.c.lane, search.c.lo).where(search.c.lo >= search.c.hi).subquery()
    return (
        sa.select(found.c.lane, found.c.lo.label("seq"), postings.c.balance_after)
        .select_from(found.outerjoin(postings, sa.and_(postings.c.account_id == account_id,
                                                       postings.c.account_seq == found.c.lo)))
    )


async def _before(conn: AsyncConnection, account_id: int, cutoff: dt.datetime,
                  *, inclusive: bool) -> tuple[dict[int, int], int]:
    """({lane: sequence number of its last posting booked before (or at) `cutoff`}, the
    account's posted balance then: the sum of those postings' lane balances)."""
    lanes = await conn.scalar(sa.select(sa.func.count()).select_from(account_balances)
                              .where(account_balances.c.account_id == account_id))
    rows = (await conn.execute(_lanes_before(account_id, cutoff, inclusive=inclusive))).all()
    if len(rows) != lanes:  # a search met a gap: a posting is missing, which verify() names
        raise LedgerError(f"account {account_id}'s postings are not a gapless sequence, so its "
                          "history cannot be searched; run verify() to find what was changed")
    return ({int(r.lane): int(r.seq) for r in rows},
            sum(int(r.balance_after or 0) for r in rows))


async def balance(
    conn: AsyncConnection, ref: AccountRef, *, as_of: dt.datetime | dt.date | None = None
) -> Balance:
    """The current balance (posted, pending, available), or the posted balance as the books
    stood at booking time `as_of` (a date means the end of that day, UTC). Pending amounts
    are not historical: an `as_of` balance has none."""
    account = await get_account(conn, ref)
    debit_normal = account.type.debit_normal
    if as_of is None:  # the sum of the account's lanes
        b = account_balances.c
        # added up here: each lane's sums are 64-bit, their sum over several lanes need
        # not be (SQLite's sum() raised 'integer overflow')
        lanes = (await conn.execute(
            sa.select(b.posted_debits, b.posted_credits, b.pending_debits, b.pending_credits)
            .where(b.account_id == account.id)
        )).all()
        return Balance(account.id, account.code, account.currency, debit_normal,
                       sum(r.posted_debits - r.posted_credits for r in lanes),
                       sum(r.pending_debits for r in lanes),
                       sum(r.pending_credits for r in lanes))
    if isinstance(as_of, dt.datetime):
        if as_of.tzinfo is None:
            raise InvalidRequest("as_of must be timezone-aware")
        _, net = await _before(conn, account.id, as_of, inclusive=True)
        cutoff = as_of
    else:
        cutoff = _start_of(as_of + dt.timedelta(days=1))
        _, net = await _before(conn, account.id, cutoff, inclusive=False)
    return Balance(account.id, account.code, account.currency, debit_normal, net, 0, 0,
                   as_of=cutoff)


async def statement(
    conn: AsyncConnection, ref: AccountRef, start: dt.date, end: dt.date
) -> AccountStatement:
    """Opening balance, every posting booked from `start` to `end` (inclusive, UTC days)
    with the account's running balance, and the closing balance. An account's lanes are
    merged by booking time (then sequence number, so each lane keeps its own order), and
    the running balance is the opening balance plus the lines so far: exact for any
    number of lanes, and for one lane each line's stored running balance."""
    if end < start:
        raise InvalidRequest(f"statement period ends ({end}) before it starts ({start})")
    account = await get_account(conn, ref)
    lo, hi = _start_of(start), _start_of(end + dt.timedelta(days=1))
    first, opening = await _before(conn, account.id, lo, inclusive=False)
    last, _ = await _before(conn, account.id, hi, inclusive=False)
    ranges = [sa.and_(postings.c.account_seq > first[lane], postings.c.account_seq <= seq)
              for lane, seq in last.items() if seq > first.get(lane, seq)]
    lines: list[StatementLine] = []
    running = opening
    if ranges:
        rows = await conn.execute(
            sa.select(postings.c.entry_id, postings.c.account_seq, postings.c.booked_at,
                      postings.c.effective_date, postings.c.amount,
                      journal_entries.c.kind, journal_entries.c.description,
                      journal_entries.c.external_ref)
            .join(journal_entries, journal_entries.c.id == postings.c.entry_id)
            .where(postings.c.account_id == account.id, sa.or_(*ranges))
            .order_by(postings.c.booked_at, postings.c.account_seq)
        )
        for r in rows:
            running += r.amount
            lines.append(StatementLine(r.entry_id, r.account_seq, r.booked_at,
                                       r.effective_date, r.kind, r.description,
                                       r.external_ref, r.amount, running,
                                       r.account_seq // LANE_STRIDE))
    closing = running
    return AccountStatement(account, start, end, opening, closing, tuple(lines))
