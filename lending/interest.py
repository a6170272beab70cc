"""Exact interest, and the daily accrual rule that never loses a fraction of a cent.

Conventions (each has a test):

* **Days are nights.** A loan disbursed on `start` earns interest for each night from
  `start` up to, not including, the day it is repaid: disbursed on Jan 1 and repaid on
  Jan 8 is 7 days. The *loan-day* `D` is the calendar date on which the night before it is
  accrued, so a 30-day loan has loan-days `start + 1` .. `start + 30`.
* **Rounded once.** Interest for a period is `round(principal-days x rate / basis)`, where
  *principal-days* is the sum, night by night, of the principal outstanding that night. With
  an unchanged principal this is `principal x days`; a partial principal repayment simply
  makes later nights count for less. Nothing is rounded per day.
* **Accrual = target(D) - target(D - 1).** target(D) is the period's interest through
  loan-day D, rounded once. A day's accrual is the difference, so the rounding residue is
  carried forward instead of lost, the sum of any run of daily accruals is exactly the
  interest of that run's period, and catching up a missed week gives the same total as
  accruing day by day. Because the target only grows, no accrual is ever negative.
* **Contractual interest runs to maturity** (an extension moves maturity, and the target
  simply continues: a 30-day loan extended to 60 days earns the 60-day interest rounded
  once). After maturity, overdue principal earns **penalty interest** at the product's
  penalty rate instead, for at most `non_performing_after_days` days past due; beyond
  that the loan is non-performing and nothing more accrues.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from lending.daycount import DayCount
from lending.errors import InvalidDate, InvalidInput
from lending.money import (
    RoundingMode,
    check_currency,
    check_minor,
    check_rate,
    prorate,
    round_to_minor,
)

__all__ = [
    "AccrualTerms",
    "DailyAccrual",
    "PrincipalChange",
    "accrual_for",
    "accrual_schedule",
    "days_past_due",
    "interest_accrued_through",
    "interest_for",
    "interest_on_principal_days",
    "is_non_performing",
    "penalty_accrued_through",
    "principal_days",
    "principal_on",
]

_ONE_DAY = dt.timedelta(days=1)


def interest_on_principal_days(
    principal_days: int,
    rate: Decimal,
    day_count: DayCount,
    rounding: RoundingMode = RoundingMode.HALF_EVEN,
) -> int:
    """`principal_days x rate / basis`, rounded once to whole minor units.

    `principal_days` is principal x `day_count.units` (for ACT/365 and ACT/360 simply
    principal x nights)."""
    check_minor(principal_days, "principal-days")
    check_rate(rate, "rate")
    return round_to_minor(prorate(principal_days, rate, day_count.basis), rounding)


def interest_for(
    principal_minor: int,
    rate: Decimal,
    days: int,
    day_count: DayCount,
    currency: str,
    rounding: RoundingMode = RoundingMode.HALF_EVEN,
    *,
    start: dt.date | None = None,
) -> int:
    """Interest in minor units of `currency` on a constant principal for `days` days.

    10,000.00 CNY at 10 % ACT/365 for 30 days: `interest_for(1_000_000, Decimal("0.10"),
    30, DayCount.ACT_365, "CNY")` == 8219, i.e. 82.19 CNY. ACT/ACT and the 30/360 bases
    depend on the dates: they need `start` (the first night).
    """
    check_currency(currency)
    check_minor(principal_minor, "principal")
    check_minor(days, "days")
    if start is not None:
        units = day_count.units(start, start + dt.timedelta(days=days))
    elif day_count.needs_dates:
        raise InvalidInput(f"interest on the {day_count.value} basis needs the start date")
    else:
        units = days
    return interest_on_principal_days(principal_minor * units, rate, day_count, rounding)


@dataclass(frozen=True)
class PrincipalChange:
    """From the night of `effective` on, `principal_minor` is outstanding."""

    effective: dt.date
    principal_minor: int


@dataclass(frozen=True)
class AccrualTerms:
    """What accrual needs to know about one loan; built from the loan and its product."""

    currency: str
    #: value date of the disbursement: the first night that earns interest
    start: dt.date
    #: current maturity (an extension moves it); the last night earning contractual
    #: interest is the one before it
    maturity: dt.date
    principal_minor: int
    rate: Decimal
    day_count: DayCount
    rounding: RoundingMode = RoundingMode.HALF_EVEN
    penalty_rate: Decimal = Decimal(0)
    #: penalty accrues for days past due 1..N; None means it never stops
    non_performing_after_days: int | None = None
    #: days past due without penalty: penalty runs from maturity + grace (the loan is
    #: past due, and counted so, from the day after maturity all the same)
    grace_days: int = 0
    #: later changes of the outstanding principal (partial repayments), by date
    principal_changes: tuple[PrincipalChange, ...] = ()

    def __post_init__(self) -> None:
        check_currency(self.currency)
        check_minor(self.principal_minor, "principal")
        check_rate(self.rate, "rate")
        check_rate(self.penalty_rate, "penalty rate")
        if self.maturity <= self.start:
            raise InvalidDate(f"maturity {self.maturity} must be after start {self.start}")
        if self.non_performing_after_days is not None:
            check_minor(self.non_performing_after_days, "non-performing threshold")
        check_minor(self.grace_days, "grace days")
        previous = self.start
        for change in self.principal_changes:
            check_minor(change.principal_minor, "principal after a change")
            if change.effective <= previous:
                raise InvalidDate(
                    f"principal changes must come after {previous} and in date order; "
                    f"got one effective {change.effective}"
                )
            previous = change.effective


def principal_on(terms: AccrualTerms, night: dt.date) -> int:
    """The principal outstanding on the night of `night`."""
    principal = terms.principal_minor
    for change in terms.principal_changes:
        if change.effective > night:
            break
        principal = change.principal_minor
    return principal


def _segments(terms: AccrualTerms) -> Iterator[tuple[dt.date, dt.date | None, int]]:
    """(from, to or open, principal) for each stretch of constant principal."""
    begin, principal = terms.start, terms.principal_minor
    for change in terms.principal_changes:
        yield begin, change.effective, principal
        begin, principal = change.effective, change.principal_minor
    yield begin, None, principal


def principal_days(terms: AccrualTerms, start: dt.date, end: dt.date) -> int:
    """The sum of the principal outstanding on each night in [start, end), each stretch
    of constant principal counted in its day count's units (lending.daycount)."""
    total = 0
    dated = terms.day_count.needs_dates
    units = terms.day_count.units
    for seg_start, seg_end, principal in _segments(terms):
        lo = max(start, seg_start)
        hi = end if seg_end is None else min(end, seg_end)
        if hi > lo:
            # ACT/365 and ACT/360 count nights: the accrual run's hot path stays a subtraction
            total += principal * (units(lo, hi) if dated else (hi - lo).days)
    return total


def interest_accrued_through(terms: AccrualTerms, loan_day: dt.date) -> int:
    """target(D): contractual interest for the nights before `loan_day`, rounded once.

    This is also the interest owed on early repayment on `loan_day`: only the days used.
    """
    end = min(loan_day, terms.maturity)
    if end <= terms.start:
        return 0
    return interest_on_principal_days(
        principal_days(terms, terms.start, end), terms.rate, terms.day_count, terms.rounding
    )


def days_past_due(terms: AccrualTerms, on: dt.date) -> int:
    """0 up to maturity; 1 on the day after an unpaid maturity, and so on."""
    return max(0, (on - terms.maturity).days)


def is_non_performing(terms: AccrualTerms, on: dt.date) -> bool:
    threshold = terms.non_performing_after_days
    return threshold is not None and days_past_due(terms, on) > threshold


def _last_accruing_day(terms: AccrualTerms) -> dt.date | None:
    if terms.non_performing_after_days is None:
        return None
    return terms.maturity + dt.timedelta(days=terms.non_performing_after_days)


def penalty_accrued_through(terms: AccrualTerms, loan_day: dt.date) -> int:
    """Penalty interest on overdue principal for the nights from maturity (after any grace
    days) to `loan_day`, up to the non-performing threshold, rounded once."""
    end = loan_day
    last = _last_accruing_day(terms)
    if last is not None:
        end = min(end, last)
    begin = terms.maturity + dt.timedelta(days=terms.grace_days)
    if end <= begin:
        return 0
    return interest_on_principal_days(
        principal_days(terms, begin, end),
        terms.penalty_rate,
        terms.day_count,
        terms.rounding,
    )


@dataclass(frozen=True)
class DailyAccrual:
    """One loan-day's accrual: what to post for `loan_day`, and the running totals.

    An amount may be 0 (a small loan's target does not move every day); the day still
    counts as accrued, so a re-run knows it is done.
    """

    loan_day: dt.date
    #: nights since the start through this loan-day
    day: int
    days_past_due: int
    interest_minor: int
    penalty_minor: int
    interest_to_date_minor: int
    penalty_to_date_minor: int


def accrual_for(terms: AccrualTerms, loan_day: dt.date) -> DailyAccrual:
    """The accrual for one loan-day, independent of any other day having been run."""
    before = loan_day - _ONE_DAY
    interest, penalty = (
        interest_accrued_through(terms, loan_day),
        penalty_accrued_through(terms, loan_day),
    )
    return DailyAccrual(
        loan_day=loan_day,
        day=(loan_day - terms.start).days,
        days_past_due=days_past_due(terms, loan_day),
        interest_minor=interest - interest_accrued_through(terms, before),
        penalty_minor=penalty - penalty_accrued_through(terms, before),
        interest_to_date_minor=interest,
        penalty_to_date_minor=penalty,
    )


def accrual_schedule(
    terms: AccrualTerms, through: dt.date, *, after: dt.date | None = None
) -> tuple[DailyAccrual, ...]:
    """The accruals for loan-days after `after` (default: the start) through `through`.

    A catch-up run is the same call with the last accrued day as `after`; its days are the
    very ones a day-by-day run would have produced. Loan-days past the non-performing
    threshold accrue nothing and are left out.
    """
    if after is not None and after < terms.start:
        raise InvalidInput(f"`after` ({after}) is before the loan's start ({terms.start})")
    first = terms.start if after is None else after
    last = through
    threshold_day = _last_accruing_day(terms)
    if threshold_day is not None:
        last = min(last, threshold_day)
    rows: list[DailyAccrual] = []
    interest_before = interest_accrued_through(terms, first)
    penalty_before = penalty_accrued_through(terms, first)
    day = first + _ONE_DAY
    while day <= last:
        interest = interest_accrued_through(terms, day)
        penalty = penalty_accrued_through(terms, day)
        rows.append(DailyAccrual(
            loan_day=day,
            day=(day - terms.start).days,
            days_past_due=days_past_due(terms, day),
            interest_minor=interest - interest_before,
            penalty_minor=penalty - penalty_before,
            interest_to_date_minor=interest,
            penalty_to_date_minor=penalty,
        ))
        interest_before, penalty_before = interest, penalty
        day += _ONE_DAY
    return tuple(rows)
