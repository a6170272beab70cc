"""Loan statement and schedule, the portfolio by days-past-due bucket, and the proof that
the loan book equals the ledger's lending accounts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from lending import store
from lending.accrual import terms_for
from lending.config import LendingConfig
from lending.interest import interest_accrued_through
from lending.lifecycle import LoanStatus
from lending.postings import Accounts
from lending.schema import loan_events, loans, repayments
from lending.store import RUNNING, LoanRecord

__all__ = ["BookPoint", "LedgerCheck", "LoanStatement", "PortfolioRow", "loan_statement",
           "portfolio_history", "portfolio_report", "reconcile_with_ledger"]


@dataclass(frozen=True)
class RepaymentLine:
    repayment_id: str
    source: str
    paid_on: dt.date
    amount_minor: int
    principal_minor: int
    interest_minor: int
    penalty_minor: int
    fees_minor: int
    excess_minor: int


@dataclass(frozen=True)
class EventLine:
    event_on: dt.date
    from_status: str | None
    to_status: str
    actor: str
    note: str


@dataclass(frozen=True)
class LoanStatement:
    loan: LoanRecord
    on: dt.date
    #: nights of interest so far (through the last accrued loan-day)
    days_accrued: int
    days_to_maturity: int | None
    days_past_due: int
    bucket: str
    #: interest for the whole term to maturity, rounded once (what is due then)
    interest_to_maturity_minor: int
    #: what paying everything at maturity would cost (principal, interest, fees)
    due_at_maturity_minor: int
    repayments: tuple[RepaymentLine, ...]
    events: tuple[EventLine, ...]


async def loan_statement(conn: AsyncConnection, loan_id: str, on: dt.date,
                         config: LendingConfig) -> LoanStatement:
    record = await store.load(conn, loan_id, config)
    loan = record.loan
    changes = (await store.principal_changes(conn, [loan_id])).get(loan_id, ())
    to_maturity = 0
    if loan.disbursed_on is not None and loan.maturity is not None:
        to_maturity = interest_accrued_through(terms_for(record, changes), loan.maturity)
    due = 0
    if record.status in RUNNING:
        due = (record.principal_outstanding_minor + record.fees_outstanding_minor
               + record.penalty_outstanding_minor + to_maturity - record.interest_paid_minor)
    reps = await conn.execute(sa.select(repayments).where(repayments.c.loan_id == loan_id)
                              .order_by(repayments.c.paid_on, repayments.c.recorded_at))
    evs = await conn.execute(sa.select(loan_events).where(loan_events.c.loan_id == loan_id)
                             .order_by(loan_events.c.id))
    dpd = record.days_past_due(on)
    bucket = _bucket_label(record, on)
    days_accrued = 0
    if loan.disbursed_on is not None and record.accrued_through is not None:
        days_accrued = (record.accrued_through - loan.disbursed_on).days
    return LoanStatement(
        loan=record, on=on, days_accrued=days_accrued,
        days_to_maturity=None if loan.maturity is None else (loan.maturity - on).days,
        days_past_due=dpd, bucket=bucket, interest_to_maturity_minor=to_maturity,
        due_at_maturity_minor=due,
        repayments=tuple(RepaymentLine(r.id, r.source, r.paid_on, r.amount_minor,
                                       r.principal_minor, r.interest_minor, r.penalty_minor,
                                       r.fees_minor, r.excess_minor) for r in reps),
        events=tuple(EventLine(e.event_on, e.from_status, e.to_status, e.actor, e.note)
                     for e in evs),
    )


def _bucket_label(record: LoanRecord, on: dt.date) -> str:
    if record.status in (LoanStatus.WRITTEN_OFF, LoanStatus.RECOVERED):
        return "written off"
    if record.status not in RUNNING:
        return record.status.value
    dpd = record.days_past_due(on)
    bucket = record.loan.product.dpd_bucket(dpd)
    return "current" if bucket is None else bucket.label


@dataclass
class PortfolioRow:
    bucket: str
    loans: int = 0
    principal_minor: int = 0
    interest_minor: int = 0
    penalty_minor: int = 0
    fees_minor: int = 0

    @property
    def total_minor(self) -> int:
        return self.principal_minor + self.interest_minor + self.penalty_minor + self.fees_minor


async def portfolio_report(conn: AsyncConnection, on: dt.date,
                           config: LendingConfig) -> dict[str, list[PortfolioRow]]:
    """Outstanding per currency and days-past-due bucket ("current", "1-15", ...,
    "written off"), in the buckets' order."""
    records = await store.load_many(
        conn, [loans.c.status.in_([*(s.value for s in RUNNING), "written_off"])], config)
    out: dict[str, dict[str, PortfolioRow]] = {}
    for record in records:
        labels = ["current", *(b.label for b in record.loan.product.dpd_buckets), "written off"]
        rows = out.setdefault(record.currency, {})
        for label in labels:
            rows.setdefault(label, PortfolioRow(label))
        row = rows[_bucket_label(record, on)]
        row.loans += 1
        if record.status is LoanStatus.WRITTEN_OFF:
            row.principal_minor += record.written_off_minor
            continue
        row.principal_minor += record.principal_outstanding_minor
        row.interest_minor += record.interest_outstanding_minor
        row.penalty_minor += record.penalty_outstanding_minor
        row.fees_minor += record.fees_outstanding_minor
    return {cur: list(rows.values()) for cur, rows in out.items()}


@dataclass(frozen=True)
class BookPoint:
    """The loan book on one past day, as it stood that day: per currency and bucket, the
    loans and their principal outstanding then."""

    day: dt.date
    #: currency -> bucket label -> (loans, principal outstanding minor units), buckets in
    #: their order ("current", the products' buckets, "written off")
    buckets: Mapping[str, Mapping[str, tuple[int, int]]]


_CLOSED = ("repaid", "recovered")


def _history_select(day: dt.date, since: dt.date, later_repaid: sa.CTE, extended: sa.CTE,
                    written: sa.CTE) -> sa.Select[tuple[object, ...]]:
    """One day's book grouped by what its bucket depends on (product version, currency,
    written off or not, maturity then): the loans disbursed by `day` and not closed by it,
    each with its principal then = principal now + principal repaid after `day`."""
    l = loans.c  # noqa: E741
    off = sa.and_(written.c.on.is_not(None), written.c.on <= day)
    # a maturity moved by an extension after `day` was still ahead of `day` (extensions are
    # granted before maturity): current then, whatever the maturity now
    maturity = sa.case((sa.and_(extended.c.last.is_not(None), extended.c.last > day), None),
                       else_=l.maturity)
    repaid_after = (sa.select(later_repaid.c.loan_id,
                              sa.func.sum(later_repaid.c.principal).label("after"))
                    .where(later_repaid.c.paid_on > day).group_by(later_repaid.c.loan_id)
                    .subquery())
    amount = sa.case((off, l.written_off_minor),
                     else_=l.amount_minor - l.principal_repaid_minor
                     + sa.func.coalesce(repaid_after.c.after, 0))
    flag = sa.case((off, 1), else_=0)
    return (sa.select(sa.literal(day, sa.Date).label("day"), l.product_code, l.product_version,
                      l.currency, flag.label("written_off"), maturity.label("maturity"),
                      sa.func.count().label("n"), sa.func.sum(amount).label("principal"))
            .select_from(loans.outerjoin(repaid_after, repaid_after.c.loan_id == l.id)
                         .outerjoin(extended, extended.c.loan_id == l.id)
                         .outerjoin(written, written.c.loan_id == l.id))
            .where(l.disbursed_on <= day,
                   sa.or_(l.status.in_([s.value for s in RUNNING]),
                          l.status == LoanStatus.WRITTEN_OFF.value,
                          sa.and_(l.status.in_(_CLOSED), l.status_on > day)),
                   sa.or_(l.status.in_([s.value for s in RUNNING]), l.status_on >= since))
            .group_by(l.product_code, l.product_version, l.currency, flag, maturity))


async def portfolio_history(conn: AsyncConnection, days: list[dt.date],
                            config: LendingConfig) -> list[BookPoint]:
    """The book by days-past-due bucket on each of `days` (past days; a few, e.g. weekly
    over the last 90 days), each day as it stood then — not today's book aged again:

    - a loan counts from its disbursement, and stops counting the day it was repaid or
      recovered (its status date); one written off shows as written off from that day;
    - its principal then is today's plus the principal repaid after that day (the
      repayments' value dates);
    - its days past due are counted from the maturity it had then: a maturity moved by an
      extension granted after that day was still ahead (extensions come before maturity).

    One statement for all days; the loans closed before the first day are not read."""
    if not days:
        return []
    since = min(days)
    r = repayments.c
    later_repaid = (sa.select(r.loan_id, r.paid_on, r.principal_minor.label("principal"))
                    .where(r.paid_on > since, r.principal_minor != 0).cte("later_repaid"))
    e = loan_events.c
    extended = (sa.select(e.loan_id, sa.func.max(e.event_on).label("last"))
                .where(e.to_status == LoanStatus.EXTENDED.value, e.event_on > since)
                .group_by(e.loan_id).cte("extended_after"))
    written = (sa.select(e.loan_id, sa.func.min(e.event_on).label("on"))
               .where(e.to_status == LoanStatus.WRITTEN_OFF.value)
               .group_by(e.loan_id).cte("written_off_on"))
    query = sa.union_all(*[_history_select(day, since, later_repaid, extended, written)
                           for day in sorted(set(days))])
    rows = (await conn.execute(query)).all()
    from lending.catalogue import product_versions

    keys = {(row.product_code, row.product_version) for row in rows if row.product_version}
    versions = await product_versions(conn, keys) if keys else {}
    fallback = next(iter(config.products.values()))
    out: dict[dt.date, dict[str, dict[str, list[int]]]] = {d: {} for d in sorted(set(days))}
    for row in rows:
        day = row.day if isinstance(row.day, dt.date) else dt.date.fromisoformat(str(row.day))
        product = (versions.get((row.product_code, row.product_version))
                   or config.products.get(row.product_code) or fallback)
        labels = ["current", *(b.label for b in product.dpd_buckets), "written off"]
        book = out[day].setdefault(row.currency, {})
        for label in labels:
            book.setdefault(label, [0, 0])
        if row.written_off:
            label = "written off"
        else:
            dpd = max(0, (day - row.maturity).days) if row.maturity is not None else 0
            bucket = product.dpd_bucket(dpd)
            label = "current" if bucket is None else bucket.label
        book[label][0] += int(row.n)
        book[label][1] += int(row.principal or 0)
    return [BookPoint(day, {cur: {k: (v[0], v[1]) for k, v in b.items()}
                            for cur, b in books.items()}) for day, books in out.items()]


@dataclass(frozen=True)
class LedgerCheck:
    #: account code -> (what the loan rows say, what the ledger says)
    accounts: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(a == b for a, b in self.accounts.values())

    @property
    def differences(self) -> dict[str, tuple[int, int]]:
        return {k: v for k, v in self.accounts.items() if v[0] != v[1]}


async def reconcile_with_ledger(conn: AsyncConnection, config: LendingConfig) -> LedgerCheck:
    """The loan book (sum of the loans' outstanding figures, per product) against the
    posted balances of the product's receivable and overpayment accounts."""
    records = await store.load_many(conn, [loans.c.disbursed_on.is_not(None)], config)
    expected: dict[str, int] = {}
    for record in records:
        acc = Accounts(record, config)
        for code, units in ((acc.portfolio, record.principal_outstanding_minor),
                            (acc.interest_receivable, record.interest_outstanding_minor),
                            (acc.penalty_receivable, record.penalty_outstanding_minor),
                            (acc.fee_receivable, record.fees_outstanding_minor),
                            (acc.overpayment, record.overpaid_minor)):
            expected[code] = expected.get(code, 0) + units
    result: dict[str, tuple[int, int]] = {}
    for code, units in sorted(expected.items()):
        account = await ledger.find_account(conn, code)
        actual = 0
        if account is not None:
            actual = ledger.to_minor((await ledger.balance(conn, code)).posted)
        result[code] = (units, actual)
    return LedgerCheck(result)
