"""The loan book by bucket as it stood on past days (`lending.portfolio_history`, the
console's "loan book by bucket over time" chart): loans that are disbursed later, fall
overdue, are extended, repaid in part and in full, and written off each sit in the bucket
they were in on that day with the principal they had then — not today's book aged again."""

from __future__ import annotations

import ledger
import lending
from lending import LoanStatus

from .book import CONFIG, cny, days, disbursed, good_borrower


def _book(point: lending.BookPoint) -> dict[str, tuple[int, int]]:
    """bucket -> (loans, principal) of the CNY book, empty buckets left out."""
    return {label: figures for label, figures in point.buckets.get("CNY", {}).items()
            if figures[0]}


async def test_each_past_day_is_the_book_as_it_stood_that_day(db):
    five = 1_000_000
    async with db.begin() as conn:
        await good_borrower(conn)
        for loan_id in ("A", "B", "C", "E"):  # all due on day 30
            await disbursed(conn, loan_id, amount="10000.00", term=30)
    async with db.begin() as conn:
        extended = await lending.extend_loan(conn, "C", days(20), CONFIG)
    assert extended.loan.maturity == days(60)
    async with db.begin() as conn:  # due on day 55, to another borrower (fresh data)
        await good_borrower(conn, "sup-002", on=days(25), imported_on=days(25))
        await disbursed(conn, "D", amount="10000.00", term=30, on=days(25), supplier="sup-002")
    await lending.run_accrual(db, days(35), CONFIG)
    async with db.begin() as conn:
        part = await lending.repay_loan(conn, "B", cny("2000.00"), days(35), CONFIG,
                                        repayment_id="b-part")
    assert 0 < part.principal_minor < five
    await lending.run_accrual(db, days(45), CONFIG)
    async with db.connect() as conn:
        owed = sum(lending.outstanding_buckets(await lending.load_loan(conn, "B", CONFIG),
                                               days(45)).values())
    async with db.begin() as conn:
        rest = await lending.repay_loan(conn, "B", ledger.from_minor(owed, "CNY"), days(45),
                                        CONFIG, repayment_id="b-rest")
    assert rest.loan.status is LoanStatus.REPAID
    await lending.run_accrual(db, days(50), CONFIG)
    async with db.begin() as conn:
        off = await lending.write_off_loan(conn, "E", days(50), CONFIG, note="unreachable")
    assert off.status is LoanStatus.WRITTEN_OFF

    points = [days(10), days(34), days(40), days(50), days(55)]
    async with db.connect() as conn:
        history = await lending.portfolio_history(conn, points, CONFIG)
        today = await lending.portfolio_report(conn, days(55), CONFIG)
    assert [p.day for p in history] == points
    by_day = {p.day: _book(p) for p in history}
    # day 10: the four loans of day 0, all current; D is not disbursed yet
    assert by_day[days(10)] == {"current": (4, 4 * five)}
    # day 34: A, B, E four days past due; C (extended on day 20) and D current
    assert by_day[days(34)] == {"current": (2, 2 * five), "1-15": (3, 3 * five)}
    # day 40: B has repaid part of its principal on day 35
    assert by_day[days(40)] == {"current": (2, 2 * five),
                                "1-15": (3, 3 * five - part.principal_minor)}
    # day 50: A 20 days past due; B repaid on day 45 is gone; E written off that day
    assert by_day[days(50)] == {"current": (2, 2 * five), "16-30": (1, five),
                                "written off": (1, off.written_off_minor)}
    # day 55: D falls due that day (still current); A 25 days past due
    assert by_day[days(55)] == {"current": (2, 2 * five), "16-30": (1, five),
                                "written off": (1, off.written_off_minor)}
    # the last point agrees with the report of that day's book, bucket by bucket
    report = {r.bucket: (r.loans, r.principal_minor) for r in today["CNY"] if r.loans}
    assert by_day[days(55)] == report


async def test_a_day_before_any_loan_is_an_empty_book(db):
    async with db.begin() as conn:
        await good_borrower(conn, on=days(5), imported_on=days(5))
        await disbursed(conn, "A", amount="10000.00", term=30, on=days(5))
    async with db.connect() as conn:
        [before, after] = await lending.portfolio_history(conn, [days(1), days(6)], CONFIG)
        assert await lending.portfolio_history(conn, [], CONFIG) == []
    assert _book(before) == {} and _book(after) == {"current": (1, 1_000_000)}
