"""Day-count conventions: how many days make the year an annual rate is quoted for.

Both conventions count the actual days elapsed (Feb 29 included); they differ only in the
denominator. ACT/365 here is **ACT/365 Fixed**: the basis is 365 in leap years too, so a
full leap year earns 366/365 of the annual rate. That is the market convention for
short-dated CNY, GBP and HKD lending, and it keeps interest a function of the number of
days alone (ACT/ACT would need the calendar dates, and would make day 30 of a loan worth a
different amount depending on which year it falls in).
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal


class DayCount(enum.StrEnum):
    ACT_365 = "ACT/365"
    ACT_360 = "ACT/360"

    @property
    def basis(self) -> int:
        """Days in the year the annual rate is quoted for."""
        return 365 if self is DayCount.ACT_365 else 360

    def year_fraction(self, start: dt.date, end: dt.date) -> Decimal:
        """The fraction of a year from `start` to `end` (unrounded, for display)."""
        return Decimal((end - start).days) / Decimal(self.basis)
