"""The books as of any moment: the trial balance, the balance sheet and the income
statement at a booking time (issue #19). Each lane's balance then is a binary search over
its postings' sequence numbers (as `balance(as_of=)` does for one account), all lanes of
all accounts in one recursive query: ~log2(postings) index probes per lane, so the cost is
per lane, not per posting, however long the ledger.

The balance sheet carries the period's profit (income less expenses, not yet closed into
equity) as "current earnings", so assets = liabilities + equity holds at any moment.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.errors import InvalidRequest, LedgerError
from ledger.proof import trial_balance
from ledger.schema import LANE_STRIDE, account_balances, accounts, postings
from ledger.types import AccountType, TrialBalance, TrialBalanceRow


def _all_lanes_before(cutoff: dt.datetime, *, inclusive: bool) -> sa.Select[Any]:
    """Every lane of every account: (account, lane, the running balance of its last posting
    booked before (or at) `cutoff`, NULL when none). The binary search of
    `ledger.queries._lanes_before` over each lane's `(account_id, account_seq)` range, for
    all lanes at once; a lane whose search met a gap answers no row."""
    p = postings.alias("p")
    b = account_balances.c
    base = sa.cast(b.lane, sa.BigInteger) * sa.literal(LANE_STRIDE, sa.BigInteger)
    search = (sa.select(b.account_id.label("account_id"), b.lane.label("lane"),
                        base.label("lo"), b.seq.label("hi"))
              .cte("all_seq_search", recursive=True))
    mid = (search.c.lo + search.c.hi + 1) // 2
    booked = p.c.booked_at <= cutoff if inclusive else p.c.booked_at < cutoff
    search = search.union_all(
        sa.select(search.c.account_id, search.c.lane,
                  sa.case((booked, mid), else_=search.c.lo),
                  sa.case((booked, search.c.hi), else_=mid - 1))
        .select_from(search.join(p, sa.and_(p.c.account_id == search.c.account_id,
                                            p.c.account_seq == mid)))
        .where(search.c.lo < search.c.hi))
    found = (sa.select(search.c.account_id, search.c.lane, search.c.lo)
             .where(search.c.lo >= search.c.hi).subquery())
    return (sa.select(found.c.account_id, found.c.lane, postings.c.balance_after)
            .select_from(found.outerjoin(postings, sa.and_(
                postings.c.account_id == found.c.account_id,
                postings.c.account_seq == found.c.lo))))


async def trial_balance_as_of(conn: AsyncConnection,
                              as_of: dt.datetime | dt.date | None = None) -> TrialBalance:
    """The trial balance as the books stood at booking time `as_of` (aware datetime,
    inclusive; a date is the end of that UTC day); None: now."""
    if as_of is None:
        return await trial_balance(conn)
    if isinstance(as_of, dt.datetime):
        if as_of.tzinfo is None:
            raise InvalidRequest("as_of must be timezone-aware")
        lanes = _all_lanes_before(as_of, inclusive=True)
    else:
        lanes = _all_lanes_before(dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min,
                                                      tzinfo=dt.UTC), inclusive=False)
    found = (await conn.execute(lanes)).all()
    expected = await conn.scalar(sa.select(sa.func.count()).select_from(account_balances))
    if len(found) != expected:  # a search met a gap: a posting is missing (verify names it)
        raise LedgerError("an account's postings are not a gapless sequence, so the books "
                          "as of a moment cannot be searched; run verify() to find what was "
                          "changed")
    nets: dict[int, int] = defaultdict(int)
    for r in found:
        nets[int(r.account_id)] += int(r.balance_after or 0)
    out: list[TrialBalanceRow] = []
    by_type: dict[tuple[AccountType, str], int] = defaultdict(int)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rows = await conn.execute(sa.select(accounts.c.id, accounts.c.code, accounts.c.name,
                                        accounts.c.type, accounts.c.currency)
                              .order_by(accounts.c.currency, accounts.c.code))
    for a in rows:
        net = nets.get(int(a.id), 0)
        kind = AccountType(a.type)
        out.append(TrialBalanceRow(a.id, a.code, a.name, kind, a.currency, max(net, 0),
                                   max(-net, 0)))
        by_type[(kind, a.currency)] += net
        totals[a.currency][0] += max(net, 0)
        totals[a.currency][1] += max(-net, 0)
    return TrialBalance(tuple(out), dict(by_type), {c: (d, k) for c, (d, k) in totals.items()})


@dataclass(frozen=True)
class StatementSection:
    """One heading (assets, income, ...) of one currency: accounts and their amounts on the
    section's normal side (positive: the usual direction)."""

    title: str
    currency: str
    lines: tuple[tuple[str, str, int], ...]  # (code, name, amount minor units)

    @property
    def total(self) -> int:
        return sum(amount for _, _, amount in self.lines)


@dataclass(frozen=True)
class BalanceSheet:
    as_of: dt.datetime | dt.date | None
    currency: str
    assets: StatementSection
    liabilities: StatementSection
    equity: StatementSection
    #: income less expenses not yet closed into equity
    current_earnings: int

    @property
    def balanced(self) -> bool:
        return self.assets.total == (self.liabilities.total + self.equity.total
                                     + self.current_earnings)


@dataclass(frozen=True)
class IncomeStatement:
    start: dt.datetime | dt.date | None
    end: dt.datetime | dt.date | None
    currency: str
    income: StatementSection
    expenses: StatementSection

    @property
    def net_income(self) -> int:
        return self.income.total - self.expenses.total


def _section(tb: TrialBalance, title: str, kind: AccountType, currency: str) -> StatementSection:
    sign = 1 if kind.debit_normal else -1
    return StatementSection(title, currency, tuple(
        (r.code, r.name, sign * (r.debit - r.credit)) for r in tb.rows
        if r.type is kind and r.currency == currency and r.debit != r.credit))


def _currencies(tb: TrialBalance) -> list[str]:
    """The currencies with a balance: a chart's unused currency is no statement."""
    return sorted({r.currency for r in tb.rows if r.debit or r.credit})


async def balance_sheet(conn: AsyncConnection, as_of: dt.datetime | dt.date | None = None,
                        *, trial: TrialBalance | None = None) -> list[BalanceSheet]:
    """One balance sheet per currency, as of `as_of` (None: now); `trial`: the trial
    balance as of that moment, if the caller has it already."""
    tb = trial if trial is not None else await trial_balance_as_of(conn, as_of)
    sheets = []
    for cur in _currencies(tb):
        income = _section(tb, "Income", AccountType.INCOME, cur).total
        expenses = _section(tb, "Expenses", AccountType.EXPENSE, cur).total
        sheets.append(BalanceSheet(as_of, cur, _section(tb, "Assets", AccountType.ASSET, cur),
                                   _section(tb, "Liabilities", AccountType.LIABILITY, cur),
                                   _section(tb, "Equity", AccountType.EQUITY, cur),
                                   income - expenses))
    return sheets


async def income_statement(conn: AsyncConnection, start: dt.datetime | dt.date | None,
                           end: dt.datetime | dt.date | None = None, *,
                           closing: TrialBalance | None = None) -> list[IncomeStatement]:
    """Income and expenses booked after `start` (None: since the beginning) up to `end`
    (None: now), one statement per currency: the balances at `end` less those at `start`;
    `closing`: the trial balance at `end`, if the caller has it already."""
    closing = closing if closing is not None else await trial_balance_as_of(conn, end)
    opening = await trial_balance_as_of(conn, start) if start is not None else None
    before = {r.account_id: r.debit - r.credit for r in opening.rows} if opening else {}
    period = TrialBalance(tuple(
        TrialBalanceRow(r.account_id, r.code, r.name, r.type, r.currency,
                        max(r.debit - r.credit - before.get(r.account_id, 0), 0),
                        max(-(r.debit - r.credit - before.get(r.account_id, 0)), 0))
        for r in closing.rows), closing.by_type, closing.totals)
    return [IncomeStatement(start, end, cur, _section(period, "Income", AccountType.INCOME, cur),
                            _section(period, "Expenses", AccountType.EXPENSE, cur))
            for cur in _currencies(period)]
