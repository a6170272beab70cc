"""Business-day calendars and rolled maturities: a loan never falls due on a closed day.

China's 2026 dates are the State Council's (published November 2025), as the `holidays`
package carries them: National Day 1-7 October with 10 October (a Saturday) worked, and
14 February (a Saturday) worked before the Spring Festival.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import MappingProxyType

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import lending
from lending import InvalidInput
from lending.calendar import (
    BusinessCalendar,
    RollConvention,
    build_calendar,
    load_calendar,
    load_official_year,
    parse_official_list,
)
from tests.lending.book import CONFIG, disbursed, good_borrower

D = dt.date
CN_2026 = build_calendar("CN", [2026])

ROLLING = dataclasses.replace(lending.SUPPLY_CHAIN_LOAN, code="sc_roll",
                              maturity_roll=RollConvention.FOLLOWING)
ROLL_CONFIG = dataclasses.replace(CONFIG, products=MappingProxyType(
    {**CONFIG.products, ROLLING.code: ROLLING}))


def test_china_holidays_and_make_up_working_days() -> None:
    assert not CN_2026.is_business_day(D(2026, 10, 1))   # National Day
    assert not CN_2026.is_business_day(D(2026, 10, 7))   # bridging day off
    assert CN_2026.is_business_day(D(2026, 10, 10))      # Saturday, worked (调休)
    assert CN_2026.is_business_day(D(2026, 2, 14))       # Saturday, worked
    assert not CN_2026.is_business_day(D(2026, 2, 17))   # Spring Festival
    assert not CN_2026.is_business_day(D(2026, 2, 15))   # an ordinary Sunday
    assert CN_2026.why_closed(D(2026, 10, 1)) == "National Day"


@pytest.mark.parametrize(("day", "convention", "expected"), [
    (D(2026, 10, 1), RollConvention.NONE, D(2026, 10, 1)),
    (D(2026, 10, 1), RollConvention.FOLLOWING, D(2026, 10, 8)),
    (D(2026, 10, 1), RollConvention.MODIFIED_FOLLOWING, D(2026, 10, 8)),
    # Saturday 31 January: following crosses into February, modified following stays
    (D(2026, 1, 31), RollConvention.FOLLOWING, D(2026, 2, 2)),
    (D(2026, 1, 31), RollConvention.MODIFIED_FOLLOWING, D(2026, 1, 30)),
    # a worked Saturday is a business day: nothing to roll
    (D(2026, 10, 10), RollConvention.FOLLOWING, D(2026, 10, 10)),
])
def test_roll_conventions(day: dt.date, convention: RollConvention, expected: dt.date) -> None:
    assert CN_2026.roll(day, convention) == expected


def test_an_official_list_decides_its_year() -> None:
    listed = parse_official_list(
        "# 2027, as published\n2027-02-06,working,Spring Festival make-up\n"
        "2027-02-08,holiday,Spring Festival\n2027-02-09,holiday\n", 2027)
    cal = build_calendar("CN", [2027], {2027: listed})
    assert cal.is_business_day(D(2027, 2, 6))            # a Saturday, worked
    assert not cal.is_business_day(D(2027, 2, 9))
    # the package's estimate for the year is not used once the year is loaded
    assert cal.is_business_day(D(2027, 10, 4))


@pytest.mark.parametrize(("text", "message"), [
    ("2027-13-01,holiday", "not a date"),
    ("2026-10-01,holiday", "not in 2027"),
    ("2027-10-01,closed", "kind must be"),
    ("2027-10-01,holiday\n2027-10-01,holiday", "listed twice"),
    ("# nothing\n", "names no day"),
    ("2027-10-01", "expected"),
])
def test_bad_official_lists_are_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_official_list(text, 2027)


async def test_loaded_year_is_stored_and_replaces_the_package(db: AsyncEngine) -> None:
    days = parse_official_list("2027-10-11,holiday,extra day off\n2027-10-09,working\n", 2027)
    async with db.begin() as conn:
        assert await load_official_year(conn, "cn", 2027, days, actor="ops:li") == 2
    async with db.connect() as conn:
        cal = await load_calendar(conn, "CN", [2027])
    assert not cal.is_business_day(D(2027, 10, 11))
    assert cal.is_business_day(D(2027, 10, 9))
    async with db.begin() as conn:
        with pytest.raises(InvalidInput, match="no holiday calendar"):
            await load_official_year(conn, "XX", 2027, days, actor="ops:li")


async def test_maturity_on_a_holiday_is_rolled_and_not_overdue_before_it(db: AsyncEngine) -> None:
    async with db.begin() as conn:
        await good_borrower(conn, on=D(2026, 9, 1), imported_on=D(2026, 9, 1))
        record = await disbursed(conn, "L-roll", on=D(2026, 9, 1), product="sc_roll",
                                 config=ROLL_CONFIG)
    # 1 Sep + 30 days = 1 Oct, National Day: due on the next business day, 8 Oct
    assert record.loan.contractual_maturity == D(2026, 10, 1)
    assert record.loan.maturity == D(2026, 10, 8)
    async with db.begin() as conn:
        record = await lending.accrue_loan(conn, record, D(2026, 10, 8), ROLL_CONFIG)
    assert record.status is not lending.LoanStatus.OVERDUE
    assert record.penalty_accrued_minor == 0
    # interest runs to the rolled date: 37 nights
    assert record.interest_accrued_minor == ROLLING.interest_for(1_000_000, 37)
    async with db.begin() as conn:
        record = await lending.accrue_loan(conn, record, D(2026, 10, 9), ROLL_CONFIG)
    assert record.status is lending.LoanStatus.OVERDUE
    async with db.connect() as conn:
        stored = await lending.load_loan(conn, "L-roll", ROLL_CONFIG)
    assert (stored.loan.contractual_maturity, stored.loan.maturity) == (
        D(2026, 10, 1), D(2026, 10, 8))


async def test_without_a_roll_the_loan_is_due_on_the_holiday(db: AsyncEngine) -> None:
    async with db.begin() as conn:
        await good_borrower(conn, on=D(2026, 9, 1), imported_on=D(2026, 9, 1))
        record = await disbursed(conn, "L-fixed", on=D(2026, 9, 1), config=CONFIG)
    assert record.loan.maturity == record.loan.contractual_maturity == D(2026, 10, 1)


def test_calendar_is_a_value() -> None:
    cal = BusinessCalendar("XX")
    assert cal.roll(D(2026, 1, 3), RollConvention.FOLLOWING) == D(2026, 1, 5)
