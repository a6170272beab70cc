"""The job queue on paycore's own `jobs` table (see `paycore.schema.jobs`).

Every change of a job's state is one conditional UPDATE, so two workers can never both
take, finish or fail the same job:

- `claim`: the oldest due `queued` job becomes `running` under this worker's lease, with
  `FOR UPDATE SKIP LOCKED` on PostgreSQL (workers skip each other's candidates instead of
  queueing behind them) and in one statement on SQLite (whose writers are serialized);
- `heartbeat`: the lease is renewed while the job runs; False means the job was taken
  away (canceled, or the lease lapsed and another worker took it) and the work must stop;
- `complete` / `fail`: only by the lease's holder (`lease_owner`), in the caller's
  transaction, so a job's last write and its completion can commit together;
- `reap`: jobs whose lease lapsed (a worker killed mid-job) are queued again, or failed
  once they have used up their attempts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.schema import jobs

__all__ = ["Job", "JobStatus", "backoff", "cancel", "claim", "complete", "enqueue", "fail",
           "find_job", "heartbeat", "list_jobs", "queue_depth", "reap", "retry", "utcnow"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    #: a parent whose chunks are queued or running: it finishes with its last chunk
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    dedupe_key: str | None
    payload: dict[str, Any]
    status: JobStatus
    run_after: dt.datetime
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    parent_id: int | None
    progress_done: int
    progress_total: int | None
    result: dict[str, Any] | None
    last_error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    #: the API request that queued it (or queued the job that queued it)
    request_id: str | None = None


def job_from_row(r: Any) -> Job:
    return Job(r.id, r.kind, r.dedupe_key, dict(r.payload or {}), JobStatus(r.status),
               r.run_after, r.attempts, r.max_attempts, r.lease_owner, r.lease_expires_at,
               r.parent_id, r.progress_done, r.progress_total,
               None if r.result is None else dict(r.result), r.last_error, r.created_at,
               r.started_at, r.finished_at, r.request_id)


def backoff(attempts: int, *, base: int = 10, cap: int = 3600) -> dt.timedelta:
    """How long a failed job waits before its next attempt: 10 s, 20 s, 40 s, ... ≤ 1 h."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


async def enqueue(conn: AsyncConnection, kind: str, payload: Mapping[str, Any] | None = None, *,
                  dedupe_key: str | None = None, run_after: dt.datetime | None = None,
                  max_attempts: int = 10, parent_id: int | None = None,
                  status: JobStatus = JobStatus.QUEUED,
                  request_id: str | None = None) -> int | None:
    """Queue a job in the caller's transaction; its id, or None when a job with the same
    `dedupe_key` exists already (an occurrence scheduled twice is one job). The job
    carries `request_id`, by default the one bound in the logging context: the API
    request being served, or the request of the job being run."""
    now = utcnow()
    if request_id is None:
        bound = structlog.contextvars.get_contextvars().get("request_id")
        request_id = str(bound)[:128] if bound else None
    values = dict(kind=kind, dedupe_key=dedupe_key, payload=dict(payload or {}),
                  status=status.value, run_after=run_after or now, attempts=0,
                  max_attempts=max_attempts, parent_id=parent_id, progress_done=0,
                  created_at=now, request_id=request_id)
    if dedupe_key is None:
        return int((await conn.execute(jobs.insert().values(**values)
                                       .returning(jobs.c.id))).scalar_one())
    insert = (postgresql.insert(jobs) if conn.dialect.name == "postgresql"
              else sqlite.insert(jobs))
    done = await conn.execute(insert.values(**values)
                              .on_conflict_do_nothing(index_elements=["dedupe_key"])
                              .returning(jobs.c.id))
    found = done.scalar_one_or_none()
    return None if found is None else int(found)


async def claim(conn: AsyncConnection, worker: str, lease: dt.timedelta, *,
                kinds: Sequence[str] | None = None) -> Job | None:
    """Take the oldest due queued job for `worker` (commit the caller's transaction at
    once: the lease starts now)."""
    now = utcnow()
    pick = (sa.select(jobs.c.id)
            .where(jobs.c.status == JobStatus.QUEUED.value, jobs.c.run_after <= now)
            .order_by(jobs.c.run_after, jobs.c.id).limit(1))
    if kinds:
        pick = pick.where(jobs.c.kind.in_(list(kinds)))
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    row = (await conn.execute(
        jobs.update().where(jobs.c.id == pick.scalar_subquery(),
                            jobs.c.status == JobStatus.QUEUED.value)
        .values(status=JobStatus.RUNNING.value, lease_owner=worker,
                lease_expires_at=now + lease, attempts=jobs.c.attempts + 1,
                started_at=now)
        .returning(*jobs.c))).first()
    return None if row is None else job_from_row(row)


def _held(job_id: int, worker: str) -> list[sa.ColumnElement[bool]]:
    return [jobs.c.id == job_id, jobs.c.status == JobStatus.RUNNING.value,
            jobs.c.lease_owner == worker]


async def heartbeat(conn: AsyncConnection, job_id: int, worker: str, lease: dt.timedelta, *,
                    progress_done: int | None = None,
                    progress_total: int | None = None) -> bool:
    """Renew the lease (and record progress); False: the job is no longer ours."""
    values: dict[str, Any] = {"lease_expires_at": utcnow() + lease}
    if progress_done is not None:
        values["progress_done"] = progress_done
    if progress_total is not None:
        values["progress_total"] = progress_total
    done = await conn.execute(jobs.update().where(*_held(job_id, worker)).values(**values))
    return done.rowcount == 1


async def complete(conn: AsyncConnection, job_id: int, worker: str,
                   result: Mapping[str, Any] | None = None, *,
                   status: JobStatus = JobStatus.SUCCEEDED) -> bool:
    """Finish the job (or leave it `waiting` for its chunks), in the caller's
    transaction; False: it was not ours any more, and the caller's transaction must roll
    back (another worker owns its effect now)."""
    finished = status in FINISHED
    done = await conn.execute(jobs.update().where(*_held(job_id, worker)).values(
        status=status.value, result=dict(result) if result is not None else None,
        lease_owner=None if finished else worker, lease_expires_at=None,
        finished_at=utcnow() if finished else None, last_error=None))
    return done.rowcount == 1


async def fail(conn: AsyncConnection, job: Job, worker: str, error: str) -> JobStatus | None:
    """A failed attempt: queued again after `backoff`, or `failed` when out of attempts.
    None when the job was not ours any more."""
    now = utcnow()
    final = job.attempts >= job.max_attempts
    status = JobStatus.FAILED if final else JobStatus.QUEUED
    done = await conn.execute(jobs.update().where(*_held(job.id, worker)).values(
        status=status.value, lease_owner=None, lease_expires_at=None,
        run_after=now if final else now + backoff(job.attempts),
        finished_at=now if final else None, last_error=error[:4000]))
    return status if done.rowcount == 1 else None


async def reap(conn: AsyncConnection) -> int:
    """Jobs whose worker stopped renewing its lease (killed, frozen, cut off) are queued
    again at once, or `failed` if that was their last attempt. Returns how many."""
    now = utcnow()
    lapsed = [jobs.c.status == JobStatus.RUNNING.value, jobs.c.lease_expires_at < now]
    out = await conn.execute(jobs.update().where(*lapsed, jobs.c.attempts >= jobs.c.max_attempts)
                             .values(status=JobStatus.FAILED.value, lease_owner=None,
                                     lease_expires_at=None, finished_at=now,
                                     last_error="the worker stopped (lease lapsed) on the "
                                                "last attempt"))
    back = await conn.execute(jobs.update().where(*lapsed)
                              .values(status=JobStatus.QUEUED.value, lease_owner=None,
                                      lease_expires_at=None, run_after=now,
                                      last_error="the worker stopped (lease lapsed): retried"))
    return int(out.rowcount + back.rowcount)


async def find_job(conn: AsyncConnection, job_id: int) -> Job | None:
    row = (await conn.execute(sa.select(jobs).where(jobs.c.id == job_id))).first()
    return None if row is None else job_from_row(row)


async def list_jobs(conn: AsyncConnection, *, status: str | None = None,
                    kind: str | None = None, parent_id: int | None = None,
                    limit: int = 50) -> list[Job]:
    query = sa.select(jobs).order_by(jobs.c.id.desc()).limit(limit)
    if status:
        query = query.where(jobs.c.status == status)
    if kind:
        query = query.where(jobs.c.kind == kind)
    if parent_id is not None:
        query = query.where(jobs.c.parent_id == parent_id)
    return [job_from_row(r) for r in await conn.execute(query)]


async def retry(conn: AsyncConnection, job_id: int) -> Job | None:
    """A failed or canceled job queued again now, with its attempts counted afresh."""
    done = await conn.execute(
        jobs.update().where(jobs.c.id == job_id,
                            jobs.c.status.in_([JobStatus.FAILED.value, JobStatus.CANCELED.value]))
        .values(status=JobStatus.QUEUED.value, attempts=0, run_after=utcnow(),
                finished_at=None, last_error=None).returning(*jobs.c))
    row = done.first()
    return None if row is None else job_from_row(row)


async def cancel(conn: AsyncConnection, job_id: int) -> Job | None:
    """Cancel a queued, waiting or running job (a running one stops at its next
    heartbeat: its lease is gone); its chunks with it."""
    open_states = [JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.WAITING.value]
    values = dict(status=JobStatus.CANCELED.value, lease_owner=None, lease_expires_at=None,
                  finished_at=utcnow())
    done = await conn.execute(jobs.update().where(jobs.c.id == job_id,
                                                  jobs.c.status.in_(open_states))
                              .values(**values).returning(*jobs.c))
    row = done.first()
    if row is None:
        return None
    await conn.execute(jobs.update().where(jobs.c.parent_id == job_id,
                                           jobs.c.status.in_(open_states)).values(**values))
    return job_from_row(row)


async def queue_depth(conn: AsyncConnection) -> list[tuple[str, int, int]]:
    """Per kind: jobs queued and due, and the age in whole seconds of the oldest of them."""
    now = utcnow()
    rows = await conn.execute(
        sa.select(jobs.c.kind, sa.func.count(), sa.func.min(jobs.c.run_after))
        .where(jobs.c.status == JobStatus.QUEUED.value, jobs.c.run_after <= now)
        .group_by(jobs.c.kind))
    return [(kind, int(n), max(0, (now - oldest) // dt.timedelta(seconds=1)))
            for kind, n, oldest in rows]
