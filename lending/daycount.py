"""Day-count conventions: how a stretch of nights becomes a fraction of the year.

Interest is `principal x rate x fraction`, rounded once, and every fraction here is exact:
each convention gives, for the nights in [start, end), an integer *count* over an integer
*denominator* (`units`), so a period's interest is one exact rational before it is rounded.

* **ACT/365** is **ACT/365 Fixed**: actual nights over 365, leap years too (a full leap
  year earns 366/365 of the rate). The market convention for short-dated CNY, GBP, HKD.
* **ACT/360**: actual nights over 360 (money-market convention for USD and EUR).
* **ACT/ACT-ISDA** (2006 ISDA Definitions §4.16(b)): nights falling in a leap year count
  1/366, the others 1/365: the period is split at each 31 Dec. paycore follows ISDA, not
  Apache Fineract's Actual/Actual for loans, whose test vectors differ from ISDA's for
  periods that cross a year end (as issue #20 reports; paycore's tests do not reproduce
  Fineract's figures, and we have not checked its source for the exact rule). The reason:
  ISDA's rule makes the interest a sum over nights, each night's weight fixed by its own
  date alone — which is what lets a daily accrual, a catch-up run and a back-valued
  re-accrual all sum to the same period interest, wherever the period starts or is cut.
* **30/360-US** (the SIA / "30U/360" variant of the bond basis, with the end-of-February
  rules): D1 the last day of February -> 30; D2 the last day of February and D1 was too ->
  30; D1 = 31 -> 30; D2 = 31 and D1 >= 30 -> 30. Without the February rules this is the
  2006 ISDA Definitions' §4.16(f) "30/360" (Bond Basis); the two differ only when a date
  is the last day of February.
* **30E/360** (2006 ISDA Definitions §4.16(g), Eurobond basis): D1 = 31 -> 30, D2 = 31 ->
  30, whatever the other date.

The 30/360 family counts 30-day months, so its count is a function of both dates (not
of the number of nights): interest for a loan on those bases needs the dates, and
`count_days` / `units` take them. For a fixed start the count never decreases as the end
moves on, so a daily accrual (target(D) - target(D - 1)) is never negative.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from decimal import Decimal

__all__ = ["ACT_ACT_DENOMINATOR", "DayCount", "days_30_360_us", "days_30e_360"]

#: ACT/ACT-ISDA's common denominator: a night in a leap year is 365/ACT_ACT_DENOMINATOR of
#: a year, any other 366/ACT_ACT_DENOMINATOR
ACT_ACT_DENOMINATOR = 365 * 366


def _last_of_february(d: dt.date) -> bool:
    return d.month == 2 and d.day == calendar.monthrange(d.year, 2)[1]


def _thirty(y1: int, m1: int, d1: int, y2: int, m2: int, d2: int) -> int:
    return 360 * (y2 - y1) + 30 * (m2 - m1) + (d2 - d1)


def days_30_360_us(start: dt.date, end: dt.date) -> int:
    """Days from `start` to `end` on the 30/360-US basis (SIA rules, February included)."""
    d1, d2 = start.day, end.day
    if _last_of_february(start) and _last_of_february(end):
        d2 = 30
    if _last_of_february(start):
        d1 = 30
    if d2 == 31 and d1 >= 30:
        d2 = 30
    if d1 == 31:
        d1 = 30
    return _thirty(start.year, start.month, d1, end.year, end.month, d2)


def days_30e_360(start: dt.date, end: dt.date) -> int:
    """Days from `start` to `end` on the 30E/360 (Eurobond) basis."""
    d1, d2 = min(start.day, 30), min(end.day, 30)
    return _thirty(start.year, start.month, d1, end.year, end.month, d2)


def _leap_nights(start: dt.date, end: dt.date) -> int:
    """How many of the nights in [start, end) fall in a leap year."""
    nights = 0
    for year in range(start.year, end.year + 1):
        if not calendar.isleap(year):
            continue
        lo = max(start, dt.date(year, 1, 1))
        hi = min(end, dt.date(year + 1, 1, 1))
        if hi > lo:
            nights += (hi - lo).days
    return nights


class DayCount(enum.StrEnum):
    ACT_365 = "ACT/365"
    ACT_360 = "ACT/360"
    ACT_ACT_ISDA = "ACT/ACT-ISDA"
    THIRTY_360_US = "30/360-US"
    THIRTY_E_360 = "30E/360"

    @property
    def needs_dates(self) -> bool:
        """Whether the fraction depends on the dates, not only on the number of nights."""
        return self not in (DayCount.ACT_365, DayCount.ACT_360)

    @property
    def basis(self) -> int:
        """The denominator `units` counts over (for ACT/365 and ACT/360, the days a year
        is taken to have; for ACT/ACT-ISDA, 365 x 366)."""
        if self is DayCount.ACT_365:
            return 365
        if self is DayCount.ACT_ACT_ISDA:
            return ACT_ACT_DENOMINATOR
        return 360

    def count_days(self, start: dt.date, end: dt.date) -> int:
        """The days from `start` to `end` this convention counts (ACT/ACT: actual days)."""
        if self is DayCount.THIRTY_360_US:
            return days_30_360_us(start, end)
        if self is DayCount.THIRTY_E_360:
            return days_30e_360(start, end)
        return (end - start).days

    def units(self, start: dt.date, end: dt.date) -> int:
        """The year fraction of [start, end) is exactly `units(start, end) / basis`."""
        if end <= start:
            return 0
        if self is DayCount.ACT_ACT_ISDA:
            leap = _leap_nights(start, end)
            common = (end - start).days - leap
            return common * 366 + leap * 365
        return self.count_days(start, end)

    def units_for_days(self, days: int) -> int:
        """`units` for a number of nights alone; only where the dates do not matter."""
        if self.needs_dates:
            raise ValueError(f"{self.value} needs the dates, not only the number of days")
        return days

    def year_fraction(self, start: dt.date, end: dt.date) -> Decimal:
        """The fraction of a year from `start` to `end` (unrounded, for display)."""
        return Decimal(self.units(start, end)) / Decimal(self.basis)
