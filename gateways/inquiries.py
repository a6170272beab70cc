"""The janitor's schedule: which attempt, refund or payout to ask its bank about, and
when. Back-off doubles from `BASE_DELAY` up to `MAX_DELAY`; the janitor hands a subject
to manual review after `max_tries` unanswered inquiries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from gateways.schema import inquiries

BASE_DELAY = dt.timedelta(seconds=30)
MAX_DELAY = dt.timedelta(hours=1)


class Subject(StrEnum):
    ATTEMPT = "attempt"
    REFUND = "refund"
    PAYOUT = "payout"


@dataclass(frozen=True)
class Inquiry:
    id: int
    subject: Subject
    subject_id: str
    bank: str
    status: str
    tries: int
    next_check_at: dt.datetime
    last_outcome: str | None


def backoff(tries: int) -> dt.timedelta:
    """The wait after `tries` unanswered inquiries: 30 s, 1 min, 2 min, ... at most 1 h."""
    wait: dt.timedelta = BASE_DELAY * 2 ** min(tries, 16)
    return min(wait, MAX_DELAY)


async def schedule(conn: AsyncConnection, subject: Subject, subject_id: str, bank: str,
                   at: dt.datetime, now: dt.datetime) -> None:
    """Ask about `subject_id` at `at` (or sooner, if it was already due sooner); reopens a
    closed inquiry with its tries reset."""
    row = (await conn.execute(sa.select(inquiries).where(
        inquiries.c.subject == subject.value, inquiries.c.subject_id == subject_id))).first()
    if row is None:
        await conn.execute(inquiries.insert().values(
            subject=subject.value, subject_id=subject_id, bank=bank, status="open", tries=0,
            next_check_at=at, created_at=now, updated_at=now))
        return
    if row.status == "open":
        at = min(at, row.next_check_at)
        tries = row.tries
    else:
        tries = 0
    await conn.execute(inquiries.update().where(inquiries.c.id == row.id).values(
        bank=bank, status="open", tries=tries, next_check_at=at, updated_at=now))


async def schedule_new(conn: AsyncConnection, subject: Subject, subject_id: str, bank: str,
                       at: dt.datetime, now: dt.datetime) -> None:
    """`schedule` for a subject that has just been made (a new attempt): one INSERT that
    does nothing if an inquiry exists after all (then `schedule` reopens it as usual)."""
    insert = (postgresql.insert(inquiries) if conn.dialect.name == "postgresql"
              else sqlite.insert(inquiries))
    made = (await conn.execute(insert.values(
        subject=subject.value, subject_id=subject_id, bank=bank, status="open", tries=0,
        next_check_at=at, created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["subject", "subject_id"])
        .returning(inquiries.c.id))).first()
    if made is None:
        await schedule(conn, subject, subject_id, bank, at, now)


async def close(conn: AsyncConnection, subject: Subject, subject_id: str, now: dt.datetime,
                status: str = "done", outcome: str | None = None) -> None:
    values: dict[str, object] = {"status": status, "updated_at": now}
    if outcome is not None:
        values["last_outcome"] = outcome
    await conn.execute(inquiries.update().where(
        inquiries.c.subject == subject.value, inquiries.c.subject_id == subject_id,
        inquiries.c.status == "open").values(**values))


async def due(conn: AsyncConnection, now: dt.datetime, limit: int) -> list[Inquiry]:
    rows = await conn.execute(
        sa.select(inquiries).where(inquiries.c.status == "open",
                                   inquiries.c.next_check_at <= now)
        .order_by(inquiries.c.next_check_at, inquiries.c.id).limit(limit))
    return [Inquiry(r.id, Subject(r.subject), r.subject_id, r.bank, r.status, r.tries,
                    r.next_check_at, r.last_outcome) for r in rows]


async def postpone(conn: AsyncConnection, inquiry: Inquiry, outcome: str,
                   now: dt.datetime) -> None:
    """The bank gave no final answer: try again later, one more try counted."""
    tries = inquiry.tries + 1
    await conn.execute(inquiries.update().where(
        inquiries.c.id == inquiry.id, inquiries.c.status == "open").values(
        tries=tries, last_outcome=outcome, next_check_at=now + backoff(tries), updated_at=now))


async def list_open(conn: AsyncConnection) -> list[Inquiry]:
    rows = await conn.execute(sa.select(inquiries).where(inquiries.c.status != "done")
                              .order_by(inquiries.c.next_check_at))
    return [Inquiry(r.id, Subject(r.subject), r.subject_id, r.bank, r.status, r.tries,
                    r.next_check_at, r.last_outcome) for r in rows]
