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

    Two statements whatever the number of days: the loans grouped by what their bucket on
    any day depends on (product version, currency, maturity, disbursement, closing,
    write-off and last extension dates), and the principal repaid after the first day by
    the same groups and value date; each day is then summed from the groups. Loans closed
    before the first day are not read."""
    if not days:
        return []
    points = sorted(set(days))
    since, until = points[0], points[-1]
    l, e = loans.c, loan_events.c  # noqa: E741
    running = [s.value for s in RUNNING]
    written = (sa.select(e.loan_id, sa.func.min(e.event_on).label("on"))
               .where(e.to_status == LoanStatus.WRITTEN_OFF.value)
               .group_by(e.loan_id).subquery("written_off_on"))
    extended = (sa.select(e.loan_id, sa.func.max(e.event_on).label("last"))
                .where(e.to_status == LoanStatus.EXTENDED.value, e.event_on > since)
                .group_by(e.loan_id).subquery("extended_after"))
    keys = [l.product_code, l.product_version, l.currency, l.maturity, l.disbursed_on,
            sa.case((l.status.in_(_CLOSED), l.status_on), else_=None).label("closed_on"),
            sa.func.coalesce(written.c.on, sa.case(
                (l.status == LoanStatus.WRITTEN_OFF.value, l.status_on), else_=None))
            .label("written_on"),
            extended.c.last.label("extended_on")]
    source = (loans.outerjoin(written, written.c.loan_id == l.id)
              .outerjoin(extended, extended.c.loan_id == l.id))
    where = [l.disbursed_on.is_not(None), l.disbursed_on <= until,
             sa.or_(l.status.in_([*running, LoanStatus.WRITTEN_OFF.value]),
                    sa.and_(l.status.in_(_CLOSED), l.status_on > since))]
    groups = (await conn.execute(
        sa.select(*keys, sa.func.count().label("n"),
                  sa.func.sum(l.amount_minor - l.principal_repaid_minor).label("principal"),
                  sa.func.sum(l.written_off_minor).label("written_off"))
        .select_from(source).where(*where).group_by(*keys))).all()
    r = repayments.c
    later: dict[tuple[object, ...], list[tuple[dt.date, int]]] = {}
    for row in await conn.execute(
            sa.select(*keys, r.paid_on, sa.func.sum(r.principal_minor).label("repaid"))
            .select_from(source.join(repayments, r.loan_id == l.id))
            .where(*where, r.paid_on > since, r.principal_minor != 0)
            .group_by(*keys, r.paid_on)):
        later.setdefault(tuple(row[:len(keys)]), []).append((row.paid_on, int(row.repaid)))
    from lending.catalogue import product_versions

    wanted = {(g.product_code, g.product_version) for g in groups if g.product_version}
    versions = await product_versions(conn, wanted) if wanted else {}
    fallback = next(iter(config.products.values()))
    out: dict[dt.date, dict[str, dict[str, list[int]]]] = {d: {} for d in points}
    for g in groups:
        product = (versions.get((g.product_code, g.product_version))
                   or config.products.get(g.product_code) or fallback)
        labels = ["current", *(b.label for b in product.dpd_buckets), "written off"]
        repaid_later = later.get(tuple(g[:len(keys)]), [])
        for day in points:
            if g.disbursed_on > day or (g.closed_on is not None and g.closed_on <= day):
                continue
            book = out[day].setdefault(g.currency, {})
            for label in labels:
                book.setdefault(label, [0, 0])
            if g.written_on is not None and g.written_on <= day:
                label, amount = "written off", int(g.written_off or 0)
            else:
                amount = int(g.principal or 0) + sum(v for on, v in repaid_later if on > day)
                ahead = g.extended_on is not None and g.extended_on > day
                dpd = 0 if ahead or g.maturity is None else max(0, (day - g.maturity).days)
                bucket = product.dpd_bucket(dpd)
                label = "current" if bucket is None else bucket.label
            book[label][0] += int(g.n)
            book[label][1] += amount
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
