"""Balances and account statements, answered from index look-ups on postings: a booking
time is found by a binary search over each account's sequence numbers (`_last_booked_seq`),
the lines of a period are a range of them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.accounts import get_account
from ledger.errors import InvalidRequest, LedgerError
from ledger.schema import account_balances, journal_entries, postings
from ledger.types import AccountRef, AccountStatement, Balance, StatementLine


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _last_booked_seq(account_id: int, cutoff: dt.datetime, *, inclusive: bool) -> sa.ScalarSelect[Any]:
    """The sequence number of the account's last posting booked before (or at) `cutoff`, 0
    if none: a binary search over `(account_id, account_seq)`, one index probe per step,
    which holds because an account's postings are booked in sequence order (migration
    0012: every writer books no earlier than the account's last posting)."""
    p = postings.alias("p")
    search = (
        sa.select(sa.cast(sa.literal(0), sa.BigInteger).label("lo"),
                  account_balances.c.seq.label("hi"))
        .where(account_balances.c.account_id == account_id)
        .cte("seq_search", recursive=True)
    )
    # the upper middle, so that each step narrows [lo, hi] until lo = hi
    mid = (search.c.lo + search.c.hi + 1) // 2
    booked = p.c.booked_at <= cutoff if inclusive else p.c.booked_at < cutoff
    search = search.union_all(
        sa.select(sa.case((booked, mid), else_=search.c.lo),
                  sa.case((booked, search.c.hi), else_=mid - 1))
        .select_from(search.join(p, sa.and_(p.c.account_id == account_id,
                                            p.c.account_seq == mid)))
        .where(search.c.lo < search.c.hi)
    )
    return sa.select(search.c.lo).where(search.c.lo >= search.c.hi).scalar_subquery()


async def _seq_before(conn: AsyncConnection, account_id: int, cutoff: dt.datetime,
                      *, inclusive: bool) -> int:
    """The sequence number of the account's last posting booked before (or at) `cutoff`;
    0 when there is none."""
    seq = await conn.scalar(sa.select(_last_booked_seq(account_id, cutoff, inclusive=inclusive)))
    if seq is None:  # the search met a gap: a posting is missing, which verify() names
        raise LedgerError(f"account {account_id}'s postings are not a gapless sequence, so its "
                          "history cannot be searched; run verify() to find what was changed")
    return int(seq)


async def _before(conn: AsyncConnection, account_id: int, cutoff: dt.datetime,
                  *, inclusive: bool) -> tuple[int, int]:
    """(sequence number, running posted balance) of the account's last posting booked
    before (or at) `cutoff`; (0, 0) when there is none."""
    seq = await _seq_before(conn, account_id, cutoff, inclusive=inclusive)
    if not seq:
        return 0, 0
    net = await conn.scalar(
        sa.select(postings.c.balance_after)
        .where(postings.c.account_id == account_id, postings.c.account_seq == seq)
    )
    return int(seq), int(net or 0)


async def balance(
    conn: AsyncConnection, ref: AccountRef, *, as_of: dt.datetime | dt.date | None = None
) -> Balance:
    """The current balance (posted, pending, available), or the posted balance as the books
    stood at booking time `as_of` (a date means the end of that day, UTC). Pending amounts
    are not historical: an `as_of` balance has none."""
    account = await get_account(conn, ref)
    debit_normal = account.type.debit_normal
    if as_of is None:
        row = (await conn.execute(
            sa.select(account_balances).where(account_balances.c.account_id == account.id)
        )).one()
        return Balance(account.id, account.code, account.currency, debit_normal,
                       row.posted_debits - row.posted_credits, row.pending_debits,
                       row.pending_credits)
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
    with its running balance, and the closing balance."""
    if end < start:
        raise InvalidRequest(f"statement period ends ({end}) before it starts ({start})")
    account = await get_account(conn, ref)
    lo, hi = _start_of(start), _start_of(end + dt.timedelta(days=1))
    first, opening = await _before(conn, account.id, lo, inclusive=False)
    last = await _seq_before(conn, account.id, hi, inclusive=False)
    rows = await conn.execute(
        sa.select(postings.c.entry_id, postings.c.account_seq, postings.c.booked_at,
                  postings.c.effective_date, postings.c.amount, postings.c.balance_after,
                  journal_entries.c.kind, journal_entries.c.description,
                  journal_entries.c.external_ref)
        .join(journal_entries, journal_entries.c.id == postings.c.entry_id)
        .where(postings.c.account_id == account.id, postings.c.account_seq > first,
               postings.c.account_seq <= last)
        .order_by(postings.c.account_seq)
    )
    lines = tuple(
        StatementLine(r.entry_id, r.account_seq, r.booked_at, r.effective_date, r.kind,
                      r.description, r.external_ref, r.amount, r.balance_after)
        for r in rows
    )
    closing = lines[-1].balance_after if lines else opening
    return AccountStatement(account, start, end, opening, closing, lines)
