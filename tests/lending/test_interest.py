"""Interest vectors, computed independently of the code under test.

The oracle below uses exact `Fraction` arithmetic and its own half-even rounding, so a
mistake in `lending`'s Decimal handling cannot hide behind itself.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lending import (
    AccrualTerms,
    DayCount,
    InvalidAmount,
    InvalidDate,
    InvalidInput,
    InvalidRate,
    PrincipalChange,
    RoundingMode,
    accrual_for,
    accrual_schedule,
    interest_accrued_through,
    interest_for,
    is_non_performing,
    penalty_accrued_through,
)

ACT_365, ACT_360 = DayCount.ACT_365, DayCount.ACT_360
TEN = Decimal("0.10")
P = 1_000_000  # 10,000.00 CNY
JAN1 = dt.date(2023, 1, 1)


def oracle(principal_days: int, rate: Decimal, basis: int) -> int:
    """round-half-even(principal_days x rate / basis), in exact rational arithmetic."""
    exact = Fraction(principal_days) * Fraction(rate) / basis
    floor = exact.numerator // exact.denominator
    rest = exact - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2):
        return floor + 1
    return floor


def terms(start: dt.date = JAN1, days: int = 30, **kw: object) -> AccrualTerms:
    base: dict[str, object] = dict(currency="CNY", start=start,
                                   maturity=start + dt.timedelta(days=days),
                                   principal_minor=P, rate=TEN, day_count=ACT_365)
    base.update(kw)
    return AccrualTerms(**base)  # type: ignore[arg-type]


# -- the issue's vectors ---------------------------------------------------------------


@pytest.mark.parametrize(("days", "day_count", "expected"), [
    (30, ACT_365, 8219),    # 82.19
    (90, ACT_365, 24658),   # 246.58
    (30, ACT_360, 8333),    # 83.33
    (7, ACT_365, 1918),     # early repayment on day 7: 19.18
    (60, ACT_365, 16438),   # extended to day 60: 164.38
    (0, ACT_365, 0),
])
def test_issue_vectors(days: int, day_count: DayCount, expected: int) -> None:
    assert interest_for(P, TEN, days, day_count, "CNY") == expected
    assert oracle(P * days, TEN, day_count.basis) == expected


def test_daily_accruals_of_a_30_day_loan_sum_to_the_period_interest_exactly() -> None:
    schedule = accrual_schedule(terms(), JAN1 + dt.timedelta(days=30))
    assert [r.day for r in schedule] == list(range(1, 31))
    # 273.97... a day: each day posts 273 or 274, and the residue is carried, not lost
    assert {r.interest_minor for r in schedule} <= {273, 274}
    assert sum(r.interest_minor for r in schedule) == 8219
    assert schedule[-1].interest_to_date_minor == 8219
    assert all(r.penalty_minor == 0 and r.days_past_due == 0 for r in schedule)


def test_each_day_is_target_minus_previous_target() -> None:
    t = terms()
    for d in range(1, 31):
        row = accrual_for(t, JAN1 + dt.timedelta(days=d))
        assert row.interest_minor == oracle(P * d, TEN, 365) - oracle(P * (d - 1), TEN, 365)


def test_missed_week_catches_up_to_the_same_days_and_total() -> None:
    t = terms()
    day_by_day = accrual_schedule(t, JAN1 + dt.timedelta(days=30))
    first = accrual_schedule(t, JAN1 + dt.timedelta(days=10))
    caught_up = accrual_schedule(t, JAN1 + dt.timedelta(days=17), after=first[-1].loan_day)
    rest = accrual_schedule(t, JAN1 + dt.timedelta(days=30), after=caught_up[-1].loan_day)
    assert first + caught_up + rest == day_by_day
    assert len(caught_up) == 7


def test_rerunning_a_day_gives_the_same_accrual() -> None:
    t = terms()
    day = JAN1 + dt.timedelta(days=12)
    assert accrual_for(t, day) == accrual_for(t, day)
    assert accrual_schedule(t, day, after=day) == ()


def test_early_repayment_pays_only_the_days_used() -> None:
    t = terms(days=30)
    assert interest_accrued_through(t, JAN1 + dt.timedelta(days=7)) == 1918
    assert interest_accrued_through(t, JAN1) == 0  # repaid the day it was lent


def test_extension_continues_the_same_target_to_the_new_maturity() -> None:
    original = terms(days=30)
    extended = terms(days=60)
    schedule = accrual_schedule(extended, JAN1 + dt.timedelta(days=60))
    assert schedule[:30] == accrual_schedule(original, JAN1 + dt.timedelta(days=30))
    # rounded once over 60 days, not 82.19 + 82.19 = 164.38 by luck: check the split
    assert sum(r.interest_minor for r in schedule[30:]) == 16438 - 8219
    assert schedule[-1].interest_to_date_minor == 16438


# -- leap years (ACT/365 Fixed: the basis is 365 even in a leap year) ---------------------


def test_leap_february_counts_feb_29_as_a_day() -> None:
    leap = terms(start=dt.date(2024, 2, 1), days=29)      # Feb 1 -> Mar 1 2024
    common = terms(start=dt.date(2023, 2, 1), days=28)    # Feb 1 -> Mar 1 2023
    assert leap.maturity == common.maturity.replace(year=2024) == dt.date(2024, 3, 1)
    assert interest_accrued_through(leap, leap.maturity) == 7945     # 29/365 of 1,000.00
    assert interest_accrued_through(common, common.maturity) == 7671  # 28/365


def test_thirty_days_across_feb_29_is_the_same_as_any_thirty_days() -> None:
    t = terms(start=dt.date(2024, 2, 15), days=30)
    assert t.maturity == dt.date(2024, 3, 16)
    assert sum(r.interest_minor for r in accrual_schedule(t, t.maturity)) == 8219


def test_a_whole_leap_year_earns_366_over_365_of_the_annual_rate() -> None:
    start, end = dt.date(2024, 1, 1), dt.date(2025, 1, 1)
    t = terms(start=start, days=366)
    assert interest_accrued_through(t, end) == 100274           # 1,002.74, not 1,000.00
    assert interest_for(P, TEN, 366, ACT_360, "CNY") == 101667  # 366/360


# -- rounding ---------------------------------------------------------------------------


def test_rounding_mode_decides_exact_ties() -> None:
    # 1825 x 0.10 x 1 / 365 = 0.5 exactly; 5475 x ... = 1.5 exactly
    assert interest_for(1825, TEN, 1, ACT_365, "CNY") == 0
    assert interest_for(1825, TEN, 1, ACT_365, "CNY", RoundingMode.HALF_UP) == 1
    assert interest_for(5475, TEN, 1, ACT_365, "CNY") == 2
    assert interest_for(5475, TEN, 1, ACT_365, "CNY", RoundingMode.DOWN) == 1


def test_currencies_without_cents_round_to_whole_units() -> None:
    # 1,000,000 JPY at 10 % for 30 days = 8,219.178... JPY
    assert interest_for(1_000_000, TEN, 30, ACT_365, "JPY") == 8219


# -- partial repayment, penalty, non-performing -----------------------------------------


def test_partial_principal_repayment_reduces_later_nights() -> None:
    t = terms(principal_changes=(PrincipalChange(JAN1 + dt.timedelta(days=10), 400_000),))
    through = JAN1 + dt.timedelta(days=30)
    expected = oracle(10 * 1_000_000 + 20 * 400_000, TEN, 365)
    assert expected == 4932
    assert interest_accrued_through(t, through) == expected
    assert sum(r.interest_minor for r in accrual_schedule(t, through)) == expected


def test_penalty_accrues_on_overdue_principal_after_maturity() -> None:
    t = terms(penalty_rate=Decimal("0.15"), non_performing_after_days=90)
    maturity = t.maturity
    rows = accrual_schedule(t, maturity + dt.timedelta(days=10))
    overdue = rows[30:]
    assert [r.days_past_due for r in overdue] == list(range(1, 11))
    assert all(r.interest_minor == 0 for r in overdue)  # contractual interest stops
    assert sum(r.penalty_minor for r in rows) == oracle(P * 10, Decimal("0.15"), 365) == 4110


def test_accrual_stops_at_the_non_performing_threshold() -> None:
    t = terms(penalty_rate=Decimal("0.15"), non_performing_after_days=90)
    far = t.maturity + dt.timedelta(days=200)
    rows = accrual_schedule(t, far)
    assert rows[-1].days_past_due == 90
    assert penalty_accrued_through(t, far) == oracle(P * 90, Decimal("0.15"), 365) == 36986
    assert not is_non_performing(t, t.maturity + dt.timedelta(days=90))
    assert is_non_performing(t, t.maturity + dt.timedelta(days=91))
    beyond = accrual_for(t, t.maturity + dt.timedelta(days=91))
    assert beyond.interest_minor == beyond.penalty_minor == 0


# -- bad input --------------------------------------------------------------------------


def test_float_rate_is_refused_not_coerced() -> None:
    with pytest.raises(InvalidRate):
        interest_for(P, 0.1, 30, ACT_365, "CNY")  # type: ignore[arg-type]


@pytest.mark.parametrize("principal", [-1, 1.5, True, Decimal(100)])
def test_principal_must_be_non_negative_integer_minor_units(principal: object) -> None:
    with pytest.raises(InvalidAmount):
        interest_for(principal, TEN, 30, ACT_365, "CNY")  # type: ignore[arg-type]


def test_unknown_currency_and_bad_dates_are_refused() -> None:
    with pytest.raises(InvalidInput):
        interest_for(P, TEN, 30, ACT_365, "XXY")
    with pytest.raises(InvalidDate):
        terms(days=0)
    with pytest.raises(InvalidDate):
        terms(principal_changes=(PrincipalChange(JAN1, 5),))
    with pytest.raises(InvalidInput):
        accrual_schedule(terms(), JAN1 + dt.timedelta(days=3), after=JAN1 - dt.timedelta(days=1))


# -- properties -------------------------------------------------------------------------

rates = st.decimals(min_value=0, max_value=Decimal("0.50"), places=4)
modes = st.sampled_from(list(RoundingMode))
# the bases that count nights alone (the dated ones: tests/lending/test_daycount.py)
day_counts = st.sampled_from([d for d in DayCount if not d.needs_dates])
principals = st.integers(min_value=0, max_value=10**12)


@settings(max_examples=150, deadline=None)
@given(principal=principals, rate=rates, days=st.integers(1, 400), day_count=day_counts,
       mode=modes)
def test_sum_of_daily_accruals_is_the_interest_rounded_once(
    principal: int, rate: Decimal, days: int, day_count: DayCount, mode: RoundingMode
) -> None:
    t = terms(days=days, principal_minor=principal, rate=rate, day_count=day_count,
              rounding=mode)
    rows = accrual_schedule(t, t.maturity)
    assert len(rows) == days
    assert all(r.interest_minor >= 0 for r in rows)
    assert sum(r.interest_minor for r in rows) == interest_for(
        principal, rate, days, day_count, "CNY", mode)


@settings(max_examples=200, deadline=None)
@given(principal=principals, rate=rates, days=st.integers(0, 1000), day_count=day_counts)
def test_interest_matches_the_exact_rational_oracle(
    principal: int, rate: Decimal, days: int, day_count: DayCount
) -> None:
    assert interest_for(principal, rate, days, day_count, "CNY") == oracle(
        principal * days, rate, day_count.basis)


@settings(max_examples=100, deadline=None)
@given(days=st.integers(2, 120), data=st.data())
def test_catch_up_from_any_day_equals_day_by_day(days: int, data: st.DataObject) -> None:
    t = terms(days=days, penalty_rate=Decimal("0.18"), non_performing_after_days=30)
    through = t.maturity + dt.timedelta(days=40)
    cut = data.draw(st.integers(0, days + 39))
    split_day = JAN1 + dt.timedelta(days=cut)
    whole = accrual_schedule(t, through)
    assert accrual_schedule(t, split_day) + accrual_schedule(t, through, after=split_day) == whole
