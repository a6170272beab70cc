"""The book's summaries (migration 0033: lending_book_by_maturity, lending_book_cohorts,
lending_exposure), kept by triggers on lending_loans, always agree with the loan rows:
after each lifecycle move (approval, disbursement, extension, part and full repayment,
write-off, recovery, decline) and after raw INSERT, UPDATE and DELETE statements. And
`portfolio_history`, which now reads the cohorts, gives exactly what summing every loan
gave (the reference below is the previous implementation), and a past day's point stays
what it was after later repayments, extensions and write-offs. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
import lending
from lending import LoanStatus
from lending.schema import book_by_maturity, book_cohorts, exposure, loan_events, loans
from lending.schema import repayments as repayments_table

from .book import CONFIG, cny, days, disbursed, good_borrower

RUNNING = ("disbursed", "active", "extended", "overdue")
NEVER = dt.date(9999, 12, 31)


async def _from_loans(conn: AsyncConnection) -> tuple[dict, dict, dict]:
    """The three summaries summed from the loan rows, empty groups left out."""
    rows = (await conn.execute(sa.select(loans))).all()
    book: dict = {}
    cohorts: dict = {}
    open_: dict = {}

    def add(table: dict, key: tuple, *values: int) -> None:
        figures = table.setdefault(key, [0] * len(values))
        for i, v in enumerate(values):
            figures[i] += v

    for r in rows:
        principal = r.amount_minor - r.principal_repaid_minor
        if r.status in RUNNING:
            add(book, (r.product_code, r.currency, r.maturity or NEVER), 1, principal)
        if r.status in (*RUNNING, "approved"):
            add(open_, (r.borrower_id,), 1, principal if r.status in RUNNING else r.amount_minor)
        if r.disbursed_on is not None and r.status in (*RUNNING, "written_off", "repaid",
                                                        "recovered"):
            add(cohorts, (r.product_code, -1 if r.product_version is None else r.product_version,
                          r.currency, r.maturity or NEVER, r.disbursed_on,
                          r.status_on if r.status in ("repaid", "recovered") else NEVER,
                          r.status_on if r.status == "written_off" else NEVER),
                1, principal, r.written_off_minor)
    return book, cohorts, open_


async def _kept(conn: AsyncConnection) -> tuple[dict, dict, dict]:
    m, c, e = book_by_maturity.c, book_cohorts.c, exposure.c
    book = {(r.product_code, r.currency, r.maturity): [r.loans, r.principal_minor]
            for r in await conn.execute(sa.select(book_by_maturity).where(m.loans != 0))}
    cohorts = {(r.product_code, r.product_version, r.currency, r.maturity, r.disbursed_on,
                r.closed_on, r.written_off_on): [r.loans, r.principal_minor, r.written_off_minor]
               for r in await conn.execute(sa.select(book_cohorts).where(c.loans != 0))}
    open_ = {(r.borrower_id,): [r.loans, r.exposure_minor]
             for r in await conn.execute(sa.select(exposure).where(e.loans != 0))}
    # a group left empty keeps its row, with nothing in it
    for table, columns in ((book_by_maturity, [m.principal_minor]),
                           (book_cohorts, [c.principal_minor, c.written_off_minor]),
                           (exposure, [e.exposure_minor])):
        key = table.c.loans
        assert (await conn.execute(sa.select(sa.func.count()).select_from(table).where(
            key == 0, sa.or_(*(col != 0 for col in columns))))).scalar() == 0
    return book, cohorts, open_


async def _agree(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await _kept(conn) == await _from_loans(conn)


async def test_the_summaries_follow_every_lifecycle_move(db):
    async with db.begin() as conn:
        await good_borrower(conn)
        for loan_id in ("A", "B", "C", "E"):
            await disbursed(conn, loan_id, amount="10000.00", term=30)
        result = await lending.apply_for_loan(conn, lending.LoanApplication(
            "sup-001", "supply_chain", cny("10000.00"), 60, days(0), loan_id="F"), CONFIG)
        assert result.loan.status is LoanStatus.APPROVED
    await _agree(db)
    async with db.begin() as conn:
        await lending.extend_loan(conn, "C", days(20), CONFIG)
    await _agree(db)
    await lending.run_accrual(db, days(35), CONFIG)  # A, B, E fall overdue
    await _agree(db)
    async with db.begin() as conn:
        await lending.repay_loan(conn, "B", cny("2000.00"), days(35), CONFIG,
                                 repayment_id="b-part")
    await _agree(db)
    async with db.connect() as conn:
        owed = sum(lending.outstanding_buckets(await lending.load_loan(conn, "B", CONFIG),
                                               days(35)).values())
    async with db.begin() as conn:
        repaid = await lending.repay_loan(conn, "B", ledger.from_minor(owed, "CNY"), days(35),
                                          CONFIG, repayment_id="b-rest")
    assert repaid.loan.status is LoanStatus.REPAID
    await _agree(db)
    await lending.run_accrual(db, days(50), CONFIG)
    async with db.begin() as conn:
        await lending.write_off_loan(conn, "E", days(50), CONFIG, note="unreachable")
    await _agree(db)
    async with db.begin() as conn:
        await lending.recover_loan(conn, "E", cny("500.00"), days(52), CONFIG,
                                   recovery_id="e-rec")
    await _agree(db)
    async with db.connect() as conn:
        book, _, open_ = await _kept(conn)
    # what the test walked through: C running (extended); F approved; B repaid; E recovered
    assert open_[("sup-001",)][0] == 3  # A, C and F
    assert sum(n for n, _ in book.values()) == 2


async def test_the_summaries_follow_raw_statements(db):
    """Rows written by hand (a data fix, a bulk load) move the summaries too."""
    async with db.begin() as conn:
        await good_borrower(conn)
        await disbursed(conn, "A", amount="10000.00", term=30)
        await disbursed(conn, "B", amount="20000.00", term=60)
    await _agree(db)
    async with db.begin() as conn:
        row = (await conn.execute(sa.select(loans).where(loans.c.id == "A"))).one()
        values = {k: v for k, v in row._mapping.items() if k != "id"}
        await conn.execute(sa.insert(loans).values(id="Z", **values))
        await conn.execute(sa.update(loans).where(loans.c.id == "Z").values(
            maturity=days(90), principal_repaid_minor=100, product_version=None))
        await conn.execute(sa.update(loans).where(loans.c.id == "B").values(
            status="written_off", status_on=days(70), written_off_minor=5))
        await conn.execute(sa.update(loans).where(loans.c.id == "A").values(maturity=None))
    await _agree(db)
    async with db.begin() as conn:
        await conn.execute(sa.update(loans).where(loans.c.id == "Z").values(status="declined"))
        await conn.execute(sa.delete(loans).where(loans.c.id == "Z"))
    await _agree(db)


_CLOSED = ("repaid", "recovered")


async def _history_summed_from_every_loan(conn: AsyncConnection, days_: list[dt.date]
                                          ) -> list[lending.BookPoint]:
    """The previous portfolio_history (every loan read and grouped), as the reference."""
    points = sorted(set(days_))
    since, until = points[0], points[-1]
    l, e = loans.c, loan_events.c  # noqa: E741
    running = list(RUNNING)
    written = (sa.select(e.loan_id, sa.func.min(e.event_on).label("on"))
               .where(e.to_status == "written_off").group_by(e.loan_id).subquery())
    extended = (sa.select(e.loan_id, sa.func.max(e.event_on).label("last"))
                .where(e.to_status == "extended", e.event_on > since)
                .group_by(e.loan_id).subquery())
    keys = [l.product_code, l.product_version, l.currency, l.maturity, l.disbursed_on,
            sa.case((l.status.in_(_CLOSED), l.status_on), else_=None).label("closed_on"),
            sa.func.coalesce(written.c.on, sa.case((l.status == "written_off", l.status_on),
                                                   else_=None)).label("written_on"),
            extended.c.last.label("extended_on")]
    source = (loans.outerjoin(written, written.c.loan_id == l.id)
              .outerjoin(extended, extended.c.loan_id == l.id))
    where = [l.disbursed_on.is_not(None), l.disbursed_on <= until,
             sa.or_(l.status.in_([*running, "written_off"]),
                    sa.and_(l.status.in_(_CLOSED), l.status_on > since))]
    groups = (await conn.execute(
        sa.select(*keys, sa.func.count().label("n"),
                  sa.func.sum(l.amount_minor - l.principal_repaid_minor).label("principal"),
                  sa.func.sum(l.written_off_minor).label("written_off"))
        .select_from(source).where(*where).group_by(*keys))).all()
    r = repayments_table.c
    later: dict = {}
    for row in await conn.execute(
            sa.select(*keys, r.paid_on, sa.func.sum(r.principal_minor).label("repaid"))
            .select_from(source.join(repayments_table, r.loan_id == l.id))
            .where(*where, r.paid_on > since, r.principal_minor != 0)
            .group_by(*keys, r.paid_on)):
        later.setdefault(tuple(row[:len(keys)]), []).append((row.paid_on, int(row.repaid)))
    out: dict = {d: {} for d in points}
    for g in groups:
        product = CONFIG.products[g.product_code]
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
    return [lending.BookPoint(day, {cur: {k: (v[0], v[1]) for k, v in b.items()}
                                    for cur, b in books.items()}) for day, books in out.items()]


async def test_the_history_from_the_cohorts_is_the_history_of_every_loan_and_stays_true(db):
    async with db.begin() as conn:
        await good_borrower(conn)
        for loan_id, term in (("A", 30), ("B", 30), ("C", 30), ("E", 30), ("G", 60)):
            await disbursed(conn, loan_id, amount="10000.00", term=term)
    async with db.begin() as conn:
        await lending.extend_loan(conn, "C", days(20), CONFIG)
    await lending.run_accrual(db, days(35), CONFIG)
    async with db.begin() as conn:
        await lending.repay_loan(conn, "B", cny("2000.00"), days(35), CONFIG,
                                 repayment_id="b-part")
        await lending.repay_loan(conn, "C", cny("1000.00"), days(36), CONFIG,
                                 repayment_id="c-part")
    await lending.run_accrual(db, days(50), CONFIG)
    async with db.begin() as conn:
        await lending.write_off_loan(conn, "E", days(50), CONFIG, note="unreachable")
        await lending.repay_loan(conn, "A", cny("3000.00"), days(50), CONFIG,
                                 repayment_id="a-part")
    weekly = [days(7 * w) for w in range(9)]
    async with db.connect() as conn:
        first = await lending.portfolio_history(conn, weekly, CONFIG)
        assert first == await _history_summed_from_every_loan(conn, weekly)
    # later: E recovered, C repaid in part again and extended loans age; G written off
    await lending.run_accrual(db, days(60), CONFIG)
    async with db.begin() as conn:
        await lending.recover_loan(conn, "E", cny("500.00"), days(60), CONFIG,
                                   recovery_id="e-rec")
        await lending.repay_loan(conn, "C", cny("1000.00"), days(60), CONFIG,
                                 repayment_id="c-again")
    await lending.run_accrual(db, days(65), CONFIG)
    async with db.begin() as conn:
        await lending.write_off_loan(conn, "G", days(65), CONFIG, note="gone")
    later = [*weekly, days(63), days(66)]
    async with db.connect() as conn:
        again = await lending.portfolio_history(conn, later, CONFIG)
        assert again == await _history_summed_from_every_loan(conn, later)
    # the days before the later moves are still what they were
    assert [p for p in again if p.day in weekly] == first
