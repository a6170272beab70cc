"""Money that arrives late: a repayment value-dated before accrual already ran is taken,
the accruals after its value date reversed (new entries) and re-accrued on the new balance;
the loan ends exactly where it would have, had the money come in time. Both databases."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import lending
from lending import InvalidDate, LendingConfig
from tests.lending.book import CONFIG, FUNDED, cny, days, disbursed, entry_count, good_borrower, verify_ok

FIGURES = ("status", "accrued_through", "principal_repaid_minor", "interest_accrued_minor",
           "interest_paid_minor", "penalty_accrued_minor", "penalty_paid_minor",
           "overpaid_minor", "funding_interest_minor")


def figures(record: lending.LoanRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in FIGURES}


async def book(engine: AsyncEngine, loan_id: str, supplier: str,
               config: LendingConfig) -> lending.LoanRecord:
    async with engine.begin() as conn:
        await good_borrower(conn, supplier, config=config)
        return await disbursed(conn, loan_id, supplier=supplier, config=config)


async def accrue(engine: AsyncEngine, loan_id: str, through: dt.date,
                 config: LendingConfig) -> lending.LoanRecord:
    async with engine.begin() as conn:
        record = await lending.load_loan(conn, loan_id, config)
        return await lending.accrue_loan(conn, record, through, config)


async def repay(engine: AsyncEngine, loan_id: str, amount: str, on: dt.date, rid: str,
                config: LendingConfig) -> lending.Repayment:
    async with engine.begin() as conn:
        return await lending.repay_loan(conn, loan_id, cny(amount), on, config,
                                        repayment_id=rid)


async def kinds(engine: AsyncEngine, loan_id: str) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text(
            "SELECT kind, count(*) FROM journal_entries WHERE metadata LIKE :m GROUP BY kind")
            .bindparams(m=f'%"loan_id": "{loan_id}"%')) if conn.dialect.name == "sqlite" else \
            await conn.execute(sa.text(
                "SELECT kind, count(*) FROM journal_entries WHERE metadata->>'loan_id' = :m "
                "GROUP BY kind").bindparams(m=loan_id))
        return {k: n for k, n in rows}


@pytest.mark.parametrize("config", [CONFIG, FUNDED], ids=["unfunded", "funded"])
async def test_late_repayment_ends_where_a_timely_one_would(db: AsyncEngine,
                                                            config: LendingConfig) -> None:
    await book(db, "ON-TIME", "sup-a", config)
    await book(db, "LATE", "sup-b", config)
    # on time: accrue to day 10, 5,000.00 arrives, accrue on to day 20
    await accrue(db, "ON-TIME", days(10), config)
    await repay(db, "ON-TIME", "5000.00", days(10), "r-on-time", config)
    on_time = await accrue(db, "ON-TIME", days(20), config)
    # late: accrual ran to day 20 before the statement showed the money of day 10
    before = await accrue(db, "LATE", days(20), config)
    assert before.interest_accrued_minor > on_time.interest_accrued_minor
    n_before = await entry_count(db)
    late = await repay(db, "LATE", "5000.00", days(10), "r-late", config)
    assert figures(late.loan) == figures(on_time)
    assert late.allocation == (await repay(db, "ON-TIME", "5000.00", days(10), "r-on-time",
                                           config)).allocation
    # days 11..20 reversed by 10 new entries, re-accrued by 10 more; nothing updated
    counted = await kinds(db, "LATE")
    assert counted["loan.accrual.reversal"] == 10
    assert counted["loan.accrual"] == 20 + 10
    assert (await entry_count(db)) > n_before
    await verify_ok(db, config)

    # a replay changes nothing
    n_after = await entry_count(db)
    again = await repay(db, "LATE", "5000.00", days(10), "r-late", config)
    assert again.entry is not None and again.entry.replayed
    assert await entry_count(db) == n_after

    async with db.connect() as conn:
        st = await lending.loan_statement(conn, "LATE", days(20), config)
    notes = [e.note for e in st.events if e.actor == "back-value"]
    assert any(n.startswith("correction 1: repayment r-late value-dated") and
               "reversed (10 entries" in n for n in notes)
    assert any(n.startswith("re-accrued") for n in notes)


async def test_a_late_repayment_undoes_an_overdue_mark_and_its_penalty(db: AsyncEngine) -> None:
    await book(db, "L", "sup-a", CONFIG)
    overdue = await accrue(db, "L", days(40), CONFIG)
    assert overdue.status is lending.LoanStatus.OVERDUE and overdue.penalty_accrued_minor > 0
    interest30 = lending.SUPPLY_CHAIN_LOAN.interest_for(1_000_000, 30)
    # paid in full on the maturity day; the bank's statement came ten days later
    rep = await repay(db, "L", "10100.00", days(30), "r-maturity", CONFIG)
    assert rep.loan.status is lending.LoanStatus.REPAID
    assert rep.loan.penalty_accrued_minor == 0 and rep.loan.interest_accrued_minor == interest30
    assert rep.loan.overpaid_minor == 1_010_000 - 1_000_000 - interest30
    assert rep.loan.max_dpd == 0
    await verify_ok(db, CONFIG)


async def test_two_corrections_reverse_whichever_accrual_stands(db: AsyncEngine) -> None:
    await book(db, "ON-TIME", "sup-a", CONFIG)
    await book(db, "LATE", "sup-b", CONFIG)
    await repay(db, "ON-TIME", "2000.00", days(5), "a1", CONFIG)
    await repay(db, "ON-TIME", "3000.00", days(12), "a2", CONFIG)
    on_time = await accrue(db, "ON-TIME", days(25), CONFIG)

    await accrue(db, "LATE", days(20), CONFIG)
    await repay(db, "LATE", "2000.00", days(5), "b1", CONFIG)      # days 6..20 re-accrued :c1
    await accrue(db, "LATE", days(25), CONFIG)                      # days 21..25 plain
    late = await repay(db, "LATE", "3000.00", days(12), "b2", CONFIG)  # reverses c1 and plain
    assert figures(late.loan) == figures(on_time)
    assert (await kinds(db, "LATE"))["loan.accrual.reversal"] == 15 + 13
    await verify_ok(db, CONFIG)


async def test_money_before_a_repayment_already_applied_is_refused(db: AsyncEngine) -> None:
    await book(db, "L", "sup-a", CONFIG)
    await accrue(db, "L", days(20), CONFIG)
    await repay(db, "L", "1000.00", days(15), "later", CONFIG)
    n = await entry_count(db)
    with pytest.raises(InvalidDate, match="repayment value-dated .* after"):
        await repay(db, "L", "1000.00", days(10), "earlier", CONFIG)
    assert await entry_count(db) == n
    # other money than a repayment is not value-dated back: a settlement offset, say
    async with db.begin() as conn:
        with pytest.raises(InvalidDate, match="taken only as a repayment"):
            await lending.servicing._prepare(conn, "L", days(10), CONFIG)


@pytest.mark.parametrize("config", [CONFIG, FUNDED], ids=["unfunded", "funded"])
@pytest.mark.parametrize("shift", [-3, 2])
async def test_a_disbursement_value_date_corrected_ends_where_the_right_date_would(
    db: AsyncEngine, config: LendingConfig, shift: int
) -> None:
    """Booked on day 3; the bank's statement says the money left on day 3 + shift."""
    async with db.begin() as conn:
        await good_borrower(conn, "sup-a", config=config, on=days(3), imported_on=days(3))
        await good_borrower(conn, "sup-b", config=config, on=days(3), imported_on=days(3))
        await disbursed(conn, "RIGHT", supplier="sup-a", on=days(3 + shift), config=config)
        await disbursed(conn, "WRONG", supplier="sup-b", on=days(3), config=config)
    right = await accrue(db, "RIGHT", days(20), config)
    await accrue(db, "WRONG", days(20), config)
    async with db.begin() as conn:
        fixed = await lending.correct_disbursement_date(
            conn, "WRONG", days(3 + shift), reason="bank value date", config=config)
    assert fixed.loan.disbursed_on == right.loan.disbursed_on
    assert fixed.loan.maturity == right.loan.maturity
    assert figures(fixed) == figures(right)
    counted = await kinds(db, "WRONG")
    assert counted["loan.disbursement.reversal"] == 1 and counted["loan.disbursement"] == 2
    await verify_ok(db, config)
    async with db.begin() as conn:   # again: nothing to do
        same = await lending.correct_disbursement_date(
            conn, "WRONG", days(3 + shift), reason="bank value date", config=config)
    assert same.version == fixed.version
