"""Business-day calendars per market, and the roll conventions a product names.

A loan that would mature on a public holiday is due on a day the borrower can pay: the
product names a roll convention and the market whose calendar applies, and the loan is
booked with both dates — the contractual maturity (start + term) and the rolled one it is
due, accrues to and goes overdue after.

Where the days come from:

* the `holidays` package for the market's public holidays and, for China, the make-up
  working days (调休: a Saturday or Sunday worked to bridge a holiday) as far as the State
  Council has published them and the package carries them (`weekend_workdays`);
* an **official list loaded for a year** (`paycore calendar load CN 2027 FILE`), stored
  in `lending_calendar_days`: once a market's year is loaded, that list alone decides the
  year (the package's estimate for a year not yet announced is then ignored).

A market's calendar is a pure value (`BusinessCalendar`); `load_calendar` reads the loaded
years from the database and builds it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from lending.errors import InvalidInput
from lending.schema import calendar_days

__all__ = ["CURRENCY_MARKETS", "BusinessCalendar", "CalendarDay", "RollConvention", "build_calendar",
           "calendar_for_roll",
           "load_calendar", "load_official_year", "parse_official_list"]

_ONE_DAY = dt.timedelta(days=1)

#: the market whose calendar a currency's loans follow unless the product names another
CURRENCY_MARKETS: Mapping[str, str] = {"CNY": "CN", "HKD": "HK", "USD": "US", "EUR": "DE",
                                       "GBP": "GB", "JPY": "JP", "SGD": "SG"}


class RollConvention(enum.StrEnum):
    #: no roll: the loan is due on its contractual date, holiday or not
    NONE = "none"
    #: the next business day
    FOLLOWING = "following"
    #: the next business day, unless that is in the next month: then the previous one
    MODIFIED_FOLLOWING = "modified_following"


@dataclass(frozen=True)
class CalendarDay:
    day: dt.date
    business_day: bool
    name: str = ""


@dataclass(frozen=True)
class BusinessCalendar:
    market: str
    #: weekdays that are not business days (public holidays, bridging days off)
    holidays: frozenset[dt.date] = frozenset()
    #: weekend days that are business days (China's make-up working days)
    working_weekends: frozenset[dt.date] = frozenset()
    names: Mapping[dt.date, str] = field(default_factory=dict)

    def is_business_day(self, day: dt.date) -> bool:
        if day in self.working_weekends:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def why_closed(self, day: dt.date) -> str:
        if self.is_business_day(day):
            return ""
        return self.names.get(day) or ("weekend" if day.weekday() >= 5 else "holiday")

    def roll(self, day: dt.date, convention: RollConvention) -> dt.date:
        if convention is RollConvention.NONE or self.is_business_day(day):
            return day
        following = day
        while not self.is_business_day(following):
            following += _ONE_DAY
        if convention is RollConvention.FOLLOWING or following.month == day.month:
            return following
        preceding = day
        while not self.is_business_day(preceding):
            preceding -= _ONE_DAY
        return preceding


def _package_days(market: str, years: Iterable[int]) -> tuple[dict[dt.date, str], set[dt.date]]:
    import holidays  # the package's country data is large: loaded only when a calendar is

    try:
        data = holidays.country_holidays(market, years=list(years))
    except NotImplementedError:
        raise InvalidInput(f"no holiday calendar for market {market!r}") from None
    named = {day: str(name) for day, name in data.items()}
    working = set(getattr(data, "weekend_workdays", ()))
    return named, working


def build_calendar(market: str, years: Iterable[int],
                   loaded: Mapping[int, list[CalendarDay]] | None = None) -> BusinessCalendar:
    """The calendar of `market` over `years`: the package's data, except for a year whose
    official list is in `loaded`, which that list alone decides."""
    loaded = loaded or {}
    package_years = [y for y in years if y not in loaded]
    names, working = _package_days(market, package_years) if package_years else ({}, set())
    holidays_ = {d for d in names if d.weekday() < 5}
    for days in loaded.values():
        for d in days:
            if d.business_day:
                if d.day.weekday() >= 5:
                    working.add(d.day)
                holidays_.discard(d.day)
            else:
                holidays_.add(d.day)
                names[d.day] = d.name
    return BusinessCalendar(market=market, holidays=frozenset(holidays_),
                            working_weekends=frozenset(working), names=names)


async def load_calendar(conn: AsyncConnection, market: str, years: Iterable[int]
                        ) -> BusinessCalendar:
    """The calendar of `market` over `years`, with any official lists loaded for them."""
    wanted = sorted(set(years))
    rows = await conn.execute(
        sa.select(calendar_days).where(calendar_days.c.market == market,
                                       calendar_days.c.year.in_(wanted)))
    loaded: dict[int, list[CalendarDay]] = {}
    for r in rows:
        loaded.setdefault(r.year, []).append(CalendarDay(r.day, r.business_day, r.name))
    return build_calendar(market, wanted, loaded)


def parse_official_list(text: str, year: int) -> list[CalendarDay]:
    """`YYYY-MM-DD,holiday|working[,name]` per line ('#' comments, blank lines skipped):
    the year's public holidays and make-up working days as the government published them."""
    days: list[CalendarDay] = []
    seen: set[dt.date] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",", 2)]
        if len(parts) < 2:
            raise InvalidInput(f"line {number}: expected 'YYYY-MM-DD,holiday|working[,name]', "
                               f"got {raw.strip()!r}")
        try:
            day = dt.date.fromisoformat(parts[0])
        except ValueError:
            raise InvalidInput(f"line {number}: {parts[0]!r} is not a date (YYYY-MM-DD)") from None
        if day.year != year:
            raise InvalidInput(f"line {number}: {day} is not in {year}")
        if day in seen:
            raise InvalidInput(f"line {number}: {day} is listed twice")
        kind = parts[1].lower()
        if kind not in ("holiday", "working"):
            raise InvalidInput(f"line {number}: kind must be 'holiday' or 'working', "
                               f"got {parts[1]!r}")
        seen.add(day)
        days.append(CalendarDay(day, kind == "working", parts[2] if len(parts) > 2 else ""))
    if not days:
        raise InvalidInput(f"the list for {year} names no day")
    return days


async def load_official_year(conn: AsyncConnection, market: str, year: int,
                             days: list[CalendarDay], *, actor: str) -> int:
    """Store `market`'s official list for `year`, replacing a list loaded before (the
    calendar rows are reference data, not books: a corrected list replaces the old one;
    the ledger is never touched). Loans already booked keep the maturity they were booked
    with."""
    market = market.upper()
    _package_days(market, [year])  # an unknown market is refused before anything is stored
    now = dt.datetime.now(dt.UTC)
    await conn.execute(sa.delete(calendar_days).where(calendar_days.c.market == market,
                                                      calendar_days.c.year == year))
    await conn.execute(sa.insert(calendar_days), [
        dict(market=market, year=year, day=d.day, business_day=d.business_day, name=d.name,
             loaded_by=actor, loaded_at=now) for d in days])
    return len(days)


async def calendar_for_roll(conn: AsyncConnection, market: str, convention: RollConvention,
                            first: dt.date, last: dt.date) -> BusinessCalendar | None:
    """The calendar a roll between `first` and `last` needs (a month's margin after: a
    roll can carry into the next year); None when the convention rolls nothing."""
    if convention is RollConvention.NONE:
        return None
    return await load_calendar(conn, market,
                               range(first.year, (last + dt.timedelta(days=31)).year + 1))
