"""Periodic schedules, in the business's time zone (Asia/Shanghai unless
`PAYCORE_TIMEZONE` says otherwise), from configuration.

A schedule is either `every: <seconds>` (janitor, payout submission, webhook dispatch) or
`at: "HH:MM"` once a day in that zone (the nightly accrual, the daily settlement run, the
checkpoint). Each worker computes the latest occurrence due and queues it under the dedupe
key `<name>:<occurrence>`: however many workers do this, an occurrence is one job, and a
worker that starts after an occurrence was missed (all workers down at 00:30) runs it then.

`PAYCORE_SCHEDULES` names a YAML file replacing the defaults (`none`: no schedules, e.g. a
worker that only serves queued jobs):

    timezone: Asia/Shanghai
    schedules:
      janitor:          {every: 60}
      accrual:          {at: "00:30", payload: {chunk_size: 5000}}
      settlement:       {at: "18:00", enabled: false}
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULT_SCHEDULES", "DEFAULT_TIMEZONE", "Occurrence", "Schedule",
           "ScheduleConfig", "due_occurrence", "load_schedules"]

DEFAULT_TIMEZONE = "Asia/Shanghai"


class InvalidSchedule(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    name: str
    kind: str
    every: dt.timedelta | None = None
    at: dt.time | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    max_attempts: int = 10

    def __post_init__(self) -> None:
        if (self.every is None) == (self.at is None):
            raise InvalidSchedule(f"schedule {self.name!r}: give either every or at")
        if self.every is not None and self.every < dt.timedelta(seconds=1):
            raise InvalidSchedule(f"schedule {self.name!r}: every must be at least 1 second")


@dataclass(frozen=True)
class Occurrence:
    schedule: Schedule
    at: dt.datetime  # aware, in the business's zone
    #: the business day it belongs to (a daily schedule's date; an interval's local date)
    business_date: dt.date

    @property
    def dedupe_key(self) -> str:
        return f"{self.schedule.name}:{self.at.isoformat()}"

    def payload(self) -> dict[str, Any]:
        return {**self.schedule.payload, "business_date": self.business_date.isoformat(),
                "scheduled_at": self.at.isoformat()}


def _s(seconds: int) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


DEFAULT_SCHEDULES: tuple[Schedule, ...] = (
    Schedule("janitor", "janitor", every=_s(60)),
    Schedule("holds.expire", "holds.expire", every=_s(300)),
    Schedule("payouts.submit", "payouts.submit", every=_s(60)),
    Schedule("webhooks.dispatch", "webhooks.dispatch", every=_s(5), max_attempts=3),
    Schedule("checkpoint", "checkpoint", at=dt.time(0, 10)),
    Schedule("accrual", "accrual", at=dt.time(0, 30)),
    Schedule("statements.fetch", "statements.fetch", at=dt.time(7, 0)),
    Schedule("payouts.check_returns", "payouts.check_returns", at=dt.time(9, 0)),
    Schedule("settlement", "settlement", at=dt.time(18, 0)),
    Schedule("jobs.purge", "jobs.purge", at=dt.time(3, 0)),
)


@dataclass(frozen=True)
class ScheduleConfig:
    timezone: zoneinfo.ZoneInfo
    schedules: tuple[Schedule, ...]


def _parse(name: str, spec: Mapping[str, Any]) -> Schedule | None:
    unknown = set(spec) - {"kind", "every", "at", "payload", "enabled", "max_attempts"}
    if unknown:
        raise InvalidSchedule(f"schedule {name!r}: unknown key(s) {sorted(unknown)}")
    if not spec.get("enabled", True):
        return None
    at = None
    if "at" in spec:
        try:
            at = dt.time.fromisoformat(str(spec["at"]))
        except ValueError:
            raise InvalidSchedule(f"schedule {name!r}: at must be HH:MM, not {spec['at']!r}") from None
    every = _s(int(spec["every"])) if "every" in spec else None
    return Schedule(name, str(spec.get("kind", name)), every=every, at=at,
                    payload=dict(spec.get("payload") or {}),
                    max_attempts=int(spec.get("max_attempts", 10)))


def load_schedules(env: Mapping[str, str] | None = None) -> ScheduleConfig:
    env = os.environ if env is None else env
    zone_name = env.get("PAYCORE_TIMEZONE", DEFAULT_TIMEZONE)
    source = env.get("PAYCORE_SCHEDULES", "")
    schedules: Sequence[Schedule] = DEFAULT_SCHEDULES
    if source.lower() == "none":
        schedules = ()
    elif source:
        doc = yaml.safe_load(Path(source).read_text()) or {}
        zone_name = str(doc.get("timezone", zone_name))
        parsed = [_parse(str(name), spec or {}) for name, spec in (doc.get("schedules") or {}).items()]
        schedules = [s for s in parsed if s is not None]
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"unknown time zone {zone_name!r}") from None
    return ScheduleConfig(zone, tuple(schedules))


def due_occurrence(schedule: Schedule, now: dt.datetime, zone: dt.tzinfo) -> Occurrence:
    """The latest occurrence of `schedule` at or before `now`."""
    local = now.astimezone(zone)
    if schedule.every is not None:
        step = int(schedule.every.total_seconds())
        # intervals counted from local midnight, so "every 300 s" falls on :00, :05, ...
        midnight = dt.datetime.combine(local.date(), dt.time(0), tzinfo=zone)
        since = int((local - midnight).total_seconds())
        at = midnight + dt.timedelta(seconds=since - since % step)
        return Occurrence(schedule, at, at.date())
    assert schedule.at is not None
    today = dt.datetime.combine(local.date(), schedule.at, tzinfo=zone)
    at = today if today <= local else today - dt.timedelta(days=1)
    return Occurrence(schedule, at, at.date())
