"""The books as of any moment: the trial balance, the balance sheet and the income
statement at a booking time (issue #19). Each account's balance then is a binary search
over its postings' sequence numbers (`balance(as_of=)`), so the cost is per account, not
per posting, however long the ledger.

The balance sheet carries the period's profit (income less expenses, not yet closed into
equity) as "current earnings", so assets = liabilities + equity holds at any moment.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.accounts import list_accounts
from ledger.proof import trial_balance
from ledger.queries import balance
from ledger.types import AccountType, TrialBalance, TrialBalanceRow


async def trial_balance_as_of(conn: AsyncConnection,
                              as_of: dt.datetime | dt.date | None = None) -> TrialBalance:
    """The trial balance as the books stood at booking time `as_of` (aware datetime,
    inclusive; a date is the end of that UTC day); None: now."""
    if as_of is None:
        return await trial_balance(conn)
    out: list[TrialBalanceRow] = []
    by_type: dict[tuple[AccountType, str], int] = defaultdict(int)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for account in sorted(await list_accounts(conn), key=lambda a: (a.currency, a.code)):
        net = (await balance(conn, account.id, as_of=as_of)).posted_net
        out.append(TrialBalanceRow(account.id, account.code, account.name, account.type,
                                   account.currency, max(net, 0), max(-net, 0)))
        by_type[(account.type, account.currency)] += net
        totals[account.currency][0] += max(net, 0)
        totals[account.currency][1] += max(-net, 0)
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


async def balance_sheet(conn: AsyncConnection, as_of: dt.datetime | dt.date | None = None
                        ) -> list[BalanceSheet]:
    """One balance sheet per currency, as of `as_of` (None: now)."""
    tb = await trial_balance_as_of(conn, as_of)
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
                           end: dt.datetime | dt.date | None = None) -> list[IncomeStatement]:
    """Income and expenses booked after `start` (None: since the beginning) up to `end`
    (None: now), one statement per currency: the balances at `end` less those at `start`."""
    closing = await trial_balance_as_of(conn, end)
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
