"""Loan statement and schedule, the portfolio by days-past-due bucket, and the proof that
the loan book equals the ledger's lending accounts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from lending import store
from lending.accrual import terms_for
from lending.config import LendingConfig
from lending.interest import interest_accrued_through
from lending.lifecycle import LoanStatus
from lending.postings import Accounts
from lending.schema import book_cohorts, loan_events, loans, repayments
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

    The loans come grouped by what their bucket on any day depends on (product version,
    currency, maturity, disbursement, closing, write-off and last extension dates), each
    day then summed from the groups. The groups are the book's cohorts, kept by the loans'
    own writes (lending_book_cohorts, migration 0033: their principal and write-off now),
    so no loan is read for them; then the few loans whose events place them elsewhere (a
    write-off event on another day than their status says, an extension after the first
    day) are read and moved to their group, and the principal repaid after the first day
    is read from the repayments of those days. Loans closed before the first day are not
    read."""
    if not days:
        return []
    points = sorted(set(days))
    since, until = points[0], points[-1]
    groups, moved = await _cohorts(conn, since, until)
    later = await _repaid_later(conn, since, until, moved)
    from lending.catalogue import product_versions

    wanted = {(k[0], k[1]) for k in groups if k[1]}
    versions = await product_versions(conn, wanted) if wanted else {}
    fallback = next(iter(config.products.values()))
    out: dict[dt.date, dict[str, dict[str, list[int]]]] = {d: {} for d in points}
    for key, (n, principal, written_off) in groups.items():
        (code, version, currency, maturity, disbursed_on, closed_on, written_on,
         extended_on) = key
        product = (versions.get((code, version)) if version is not None else None) \
            or config.products.get(code) or fallback
        labels = ["current", *(b.label for b in product.dpd_buckets), "written off"]
        after = _repaid_after_each(later.get(key, []), points)
        for day in points:
            if disbursed_on > day or (closed_on is not None and closed_on <= day):
                continue
            book = out[day].setdefault(currency, {})
            for label in labels:
                book.setdefault(label, [0, 0])
            if written_on is not None and written_on <= day:
                label, amount = "written off", written_off
            else:
                amount = principal + after[day]
                ahead = extended_on is not None and extended_on > day
                dpd = 0 if ahead or maturity is None else max(0, (day - maturity).days)
                bucket = product.dpd_bucket(dpd)
                label = "current" if bucket is None else bucket.label
            book[label][0] += n
            book[label][1] += amount
    return [BookPoint(day, {cur: {k: (v[0], v[1]) for k, v in b.items()}
                            for cur, b in books.items()}) for day, books in out.items()]


def _repaid_after_each(repaid: list[tuple[dt.date, int]], points: list[dt.date]
                       ) -> dict[dt.date, int]:
    """day -> the principal repaid after it, for each of `points` (ascending): one pass
    over the repayments from the latest, not one per day."""
    out: dict[dt.date, int] = {}
    ordered = sorted(repaid, reverse=True)
    total, i = 0, 0
    for day in reversed(points):
        while i < len(ordered) and ordered[i][0] > day:
            total += ordered[i][1]
            i += 1
        out[day] = total
    return out


#: a group of the book's history: product code and version, currency, maturity,
#: disbursement, closing, write-off and last extension (after the first day) dates
_Key = tuple[str, int | None, str, dt.date | None, dt.date, dt.date | None, dt.date | None,
             dt.date | None]
_NEVER = dt.date(9999, 12, 31)  # the cohorts' "none" in a key column (no NULL in a key)


def _none(day: dt.date) -> dt.date | None:
    return None if day == _NEVER else day


def _plain_key(row: Any) -> _Key:
    """The group of a loan as its row alone says (no events)."""
    return (row.product_code, row.product_version, row.currency, row.maturity,
            row.disbursed_on, row.status_on if row.status in _CLOSED else None,
            row.status_on if row.status == LoanStatus.WRITTEN_OFF.value else None, None)


def _in_history(since: dt.date, until: dt.date) -> list[sa.ColumnElement[bool]]:
    l = loans.c  # noqa: E741
    return [l.disbursed_on.is_not(None), l.disbursed_on <= until,
            sa.or_(l.status.in_([*(s.value for s in RUNNING), LoanStatus.WRITTEN_OFF.value]),
                   sa.and_(l.status.in_(_CLOSED), l.status_on > since))]


async def _moved_by_events(conn: AsyncConnection, since: dt.date, until: dt.date
                           ) -> dict[str, tuple[_Key, _Key, int, int]]:
    """The loans whose events put them in another group than their row says: loan id ->
    (the group by the row, the group by the events, principal now, written off)."""
    l, e = loans.c, loan_events.c  # noqa: E741
    written = (sa.select(e.loan_id, sa.func.min(e.event_on).label("on"))
               .where(e.to_status == LoanStatus.WRITTEN_OFF.value)
               .group_by(e.loan_id).subquery("written_off_on"))
    extended = (sa.select(e.loan_id, sa.func.max(e.event_on).label("last"))
                .where(e.to_status == LoanStatus.EXTENDED.value, e.event_on > since)
                .group_by(e.loan_id).subquery("extended_after"))
    ids = sa.union(sa.select(written.c.loan_id), sa.select(extended.c.loan_id)).subquery("ids")
    rows = await conn.execute(
        sa.select(l.id, l.product_code, l.product_version, l.currency, l.maturity,
                  l.disbursed_on, l.status, l.status_on, l.amount_minor,
                  l.principal_repaid_minor, l.written_off_minor,
                  written.c.on.label("written_on"), extended.c.last.label("extended_on"))
        .select_from(ids.join(loans, l.id == ids.c.loan_id)
                     .outerjoin(written, written.c.loan_id == l.id)
                     .outerjoin(extended, extended.c.loan_id == l.id))
        .where(*_in_history(since, until)))
    moved: dict[str, tuple[_Key, _Key, int, int]] = {}
    for row in rows:
        plain = _plain_key(row)
        by_events = (*plain[:6], row.written_on if row.written_on is not None else plain[6],
                     row.extended_on)
        if by_events != plain:
            moved[row.id] = (plain, by_events, row.amount_minor - row.principal_repaid_minor,
                             row.written_off_minor)
    return moved


async def _cohorts(conn: AsyncConnection, since: dt.date, until: dt.date
                   ) -> tuple[dict[_Key, list[int]], dict[str, tuple[_Key, _Key, int, int]]]:
    """group -> [loans, principal outstanding now, written off] of the loans disbursed by
    `until` and not closed by `since`; and the loans moved by their events."""
    c = book_cohorts.c
    groups: dict[_Key, list[int]] = {}
    for row in await conn.execute(
            sa.select(book_cohorts).where(c.closed_on > since, c.disbursed_on <= until,
                                          c.loans > 0)):
        key: _Key = (row.product_code, None if row.product_version == -1 else row.product_version,
                     row.currency, _none(row.maturity), row.disbursed_on, _none(row.closed_on),
                     _none(row.written_off_on), None)
        groups[key] = [row.loans, row.principal_minor, row.written_off_minor]
    moved = await _moved_by_events(conn, since, until)
    for plain, by_events, principal, written_off in moved.values():
        figures = groups[plain]
        figures[0] -= 1
        figures[1] -= principal
        figures[2] -= written_off
        if not figures[0]:
            del groups[plain]
        into = groups.setdefault(by_events, [0, 0, 0])
        into[0] += 1
        into[1] += principal
        into[2] += written_off
    return groups, moved


async def _repaid_later(conn: AsyncConnection, since: dt.date, until: dt.date,
                        moved: dict[str, tuple[_Key, _Key, int, int]]
                        ) -> dict[_Key, list[tuple[dt.date, int]]]:
    """group -> (value date, principal repaid) of the repayments after `since`."""
    l, r = loans.c, repayments.c  # noqa: E741
    later: dict[_Key, list[tuple[dt.date, int]]] = {}
    columns = [l.product_code, l.product_version, l.currency, l.maturity, l.disbursed_on,
               l.status, l.status_on, r.paid_on]
    for row in await conn.execute(
            sa.select(*columns, sa.func.sum(r.principal_minor).label("repaid"))
            .select_from(repayments.join(loans, l.id == r.loan_id))
            .where(*_in_history(since, until), r.paid_on > since, r.principal_minor != 0)
            .group_by(*columns)):
        later.setdefault(_plain_key(row), []).append((row.paid_on, int(row.repaid)))
    ids = sorted(moved)  # the moved loans' repayments go with them
    for start in range(0, len(ids), 5000):
        for each in await conn.execute(
                sa.select(r.loan_id, r.paid_on, sa.func.sum(r.principal_minor).label("repaid"))
                .where(r.loan_id.in_(ids[start:start + 5000]), r.paid_on > since,
                       r.principal_minor != 0)
                .group_by(r.loan_id, r.paid_on)):
            plain, by_events, _, _ = moved[each.loan_id]
            later[plain].append((each.paid_on, -int(each.repaid)))
            later.setdefault(by_events, []).append((each.paid_on, int(each.repaid)))
    return later


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
