"""Products as data: defined, changed and retired at run time; a loan keeps its version."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import lending
from lending import InvalidInput, InvalidProduct, LoanApplication
from lending import catalogue as cat
from tests.lending.book import CONFIG, DAY, cny, days, good_borrower, verify_ok

SHORT = {
    "name": "Short supply-chain loan", "currency": "CNY",
    "min_amount_minor": 100_000, "max_amount_minor": 20_000_000,
    "min_term_days": 7, "max_term_days": 45, "annual_rate": "0.09",
    "penalty_annual_rate": "0.135", "day_count": "ACT/ACT-ISDA",
    "maturity_roll": "modified_following",
    "origination_fee": {"rate": "0.002", "minimum_minor": 100},
    "extension": {"max_extensions": 1, "days": 15},
}


async def define(engine: AsyncEngine, code: str = "short_sc", **changes: object
                 ) -> cat.ProductVersion:
    async with engine.begin() as conn:
        return await cat.define_product(conn, code, {**SHORT, **changes}, effective_from=DAY,
                                        actor="risk:wang", reason="pilot", config=CONFIG)


async def apply(engine: AsyncEngine, loan_id: str, on: dt.date = DAY,
                product: str = "short_sc") -> lending.LoanRecord:
    async with engine.begin() as conn:
        result = await lending.apply_for_loan(conn, LoanApplication(
            "sup-001", product, cny("10000.00"), 30, on, loan_id=loan_id), CONFIG)
    return result.loan


async def test_a_product_defined_at_run_time_books_loans(db: AsyncEngine) -> None:
    async with db.begin() as conn:
        await good_borrower(conn)
    v1 = await define(db)
    assert v1.product.version == 1 and v1.product.day_count is lending.DayCount.ACT_ACT_ISDA
    record = await apply(db, "L-1")
    assert record.loan.product.version == 1
    async with db.begin() as conn:
        out = await lending.disburse_loan(conn, "L-1", DAY, CONFIG)
    assert out.loan.loan.product.code == "short_sc"
    assert out.loan.fees_charged_minor == 2_000  # 0.2 % of 10,000.00
    async with db.begin() as conn:
        accrued = await lending.accrue_loan(conn, out.loan, days(10), CONFIG)
    assert accrued.interest_accrued_minor == v1.product.interest_for(1_000_000, 10, start=DAY)
    await verify_ok(db)


async def test_a_change_applies_to_new_loans_only_and_is_audited(db: AsyncEngine) -> None:
    async with db.begin() as conn:
        await good_borrower(conn)
    await define(db)
    await apply(db, "L-old")
    async with db.begin() as conn:
        v2 = await cat.change_product(conn, "short_sc", {"annual_rate": "0.11"},
                                      effective_from=days(1), actor="risk:li",
                                      reason="funding cost up", config=CONFIG)
    assert v2.product.version == 2
    # applied for the day before the change takes effect: still version 1
    assert (await apply(db, "L-same-day")).loan.product.version == 1
    new = await apply(db, "L-new", on=days(1))
    assert new.loan.product.version == 2
    async with db.connect() as conn:
        old = await lending.load_loan(conn, "L-old", CONFIG)
        again = await lending.load_loan(conn, "L-new", CONFIG)
        history = await cat.product_history(conn, "short_sc")
    assert str(old.loan.product.annual_rate) == "0.09" and old.loan.product.version == 1
    assert str(again.loan.product.annual_rate) == "0.11"
    assert [(h.product.version, h.changed_by, h.reason) for h in history] == [
        (1, "risk:wang", "pilot"), (2, "risk:li", "funding cost up")]


async def test_the_version_in_force_is_the_one_effective_on_the_application_day(
    db: AsyncEngine
) -> None:
    async with db.begin() as conn:
        await good_borrower(conn)
    await define(db)
    async with db.begin() as conn:
        await cat.change_product(conn, "short_sc", {"annual_rate": "0.11"},
                                 effective_from=days(5), actor="risk:li", reason="r",
                                 config=CONFIG)
    assert (await apply(db, "L-before")).loan.product.version == 1


async def test_retired_products_take_no_new_loans_but_their_loans_run_on(db: AsyncEngine) -> None:
    async with db.begin() as conn:
        await good_borrower(conn)
    await define(db)
    await apply(db, "L-1")
    async with db.begin() as conn:
        await lending.disburse_loan(conn, "L-1", DAY, CONFIG)
        with pytest.raises(InvalidInput, match="needs a reason"):
            await cat.retire_product(conn, "short_sc", effective_from=days(1), actor="risk:li",
                                     reason=" ", config=CONFIG)
        await cat.retire_product(conn, "short_sc", effective_from=days(1), actor="risk:li",
                                 reason="pilot over", config=CONFIG)
    with pytest.raises(InvalidInput, match="retired"):
        await apply(db, "L-2", on=days(1))
    async with db.begin() as conn:
        record = await lending.load_loan(conn, "L-1", CONFIG)
        record = await lending.accrue_loan(conn, record, days(3), CONFIG)
        assert record.interest_accrued_minor > 0
        with pytest.raises(InvalidInput, match="retired"):
            await cat.change_product(conn, "short_sc", {"annual_rate": "0.1"},
                                     effective_from=days(2), actor="x", reason="",
                                     config=CONFIG)


@pytest.mark.parametrize(("changes", "message"), [
    ({"annual_rate": "0.9"}, "above 0.36"),
    ({"annual_rate": "-0.01"}, "zero or more"),
    ({"annual_rate": 0.1}, "not a binary float"),
    ({"min_term_days": 50, "max_term_days": 45}, "minimum term 50 days exceeds"),
    ({"min_amount_minor": 0}, "minimum amount"),
    ({"day_count": "ACT/999"}, "unknown day count"),
    ({"maturity_roll": "preceding"}, "unknown maturity roll"),
    ({"waterfall": ["principal"]}, "waterfall"),
    ({"colour": "red"}, "unknown product field"),
])
async def test_a_product_that_cannot_work_is_refused(db: AsyncEngine, changes: dict[str, object],
                                                    message: str) -> None:
    with pytest.raises(InvalidProduct, match=message):
        await define(db, **changes)
    async with db.connect() as conn:
        assert await cat.product_history(conn, "short_sc") == []


async def test_define_refuses_an_existing_code_and_change_refuses_the_currency(
    db: AsyncEngine
) -> None:
    await define(db)
    with pytest.raises(InvalidInput, match="exists"):
        await define(db)
    async with db.begin() as conn:
        with pytest.raises(InvalidInput, match="exists"):
            await cat.define_product(conn, "supply_chain", SHORT, effective_from=DAY,
                                     actor="x", reason="", config=CONFIG)
        with pytest.raises(InvalidProduct, match="cannot change currency"):
            await cat.change_product(conn, "short_sc", {"currency": "USD"},
                                     effective_from=DAY, actor="x", reason="", config=CONFIG)


async def test_a_built_in_product_changed_at_run_time(db: AsyncEngine) -> None:
    async with db.begin() as conn:
        await good_borrower(conn)
        v1 = await cat.change_product(conn, "supply_chain", {"max_term_days": 120},
                                      effective_from=DAY, actor="risk:li", reason="longer",
                                      config=CONFIG)
        listed = {p.product.code: p for p in await cat.products_now(conn, CONFIG, DAY)}
    assert v1.product.version == 1
    assert listed["supply_chain"].product.max_term_days == 120
    assert listed["merchant_micro"].product.version == 0
    record = await apply(db, "L-sc", product="supply_chain")
    assert record.loan.product.version == 1


async def test_grace_days_hold_off_penalty_but_not_past_due(db: AsyncEngine) -> None:
    async with db.begin() as conn:
        await good_borrower(conn)
    v = await define(db, grace_days=3, maturity_roll="none", day_count="ACT/365")
    await apply(db, "L-g")
    async with db.begin() as conn:
        record = (await lending.disburse_loan(conn, "L-g", DAY, CONFIG)).loan
        record = await lending.accrue_loan(conn, record, days(33), CONFIG)
    # three days past due, in grace: overdue, no penalty
    assert record.status is lending.LoanStatus.OVERDUE and record.penalty_accrued_minor == 0
    async with db.begin() as conn:
        record = await lending.accrue_loan(conn, record, days(35), CONFIG)
    # two nights of penalty after the grace: 10,000.00 at 13.5 % ACT/365
    assert record.penalty_accrued_minor == lending.interest_for(
        1_000_000, v.product.penalty_annual_rate, 2, lending.DayCount.ACT_365, "CNY")
    with pytest.raises(InvalidProduct, match="grace days leave no penalty"):
        await define(db, code="g2", grace_days=90)
