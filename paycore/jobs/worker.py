"""`paycore worker`: takes jobs from the queue and runs them, renewing each job's lease
while it works; queues the schedules' occurrences as they fall due; queues again the jobs
of workers that died (`queue.reap`).

Any number of workers on any number of machines share the work through the database
alone. On SQLite (the demo, local use) the same code runs in-process: `Worker.drain()`
runs every due job until none is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from paycore.jobs import queue
from paycore.jobs.queue import Job, JobStatus
from paycore.jobs.schedules import ScheduleConfig, due_occurrence

__all__ = ["HANDLERS", "JobContext", "JobLost", "Worker", "handler", "worker_name"]

log = structlog.get_logger("paycore.worker")

Result = Mapping[str, Any] | None
Handler = Callable[["JobContext"], Awaitable[Result]]
#: job kind -> the function that does it (`paycore.jobs.handlers` fills it)
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn
    return register


class JobLost(Exception):
    """The job was taken from this worker (canceled, or its lease lapsed)."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class JobContext:
    engine: AsyncEngine
    job: Job
    worker: str
    lease: dt.timedelta
    #: what the handlers need that the worker holds for them (e.g. `banks`)
    services: dict[str, Any]
    progress_done: int | None = None
    progress_total: int | None = None
    completed: bool = False
    result: dict[str, Any] = field(default_factory=dict)

    def progress(self, done: int, total: int | None = None) -> None:
        """Recorded with the next heartbeat (`paycore jobs list` shows it)."""
        self.progress_done, self.progress_total = done, total

    async def progress_in(self, conn: AsyncConnection, done: int) -> None:
        """Record progress in the caller's transaction, with the work it counts (and renew
        the lease): a fast chunk's progress is exact even before any heartbeat runs."""
        self.progress_done = done
        if not await queue.heartbeat(conn, self.job.id, self.worker, self.lease,
                                     progress_done=done):
            raise JobLost(f"job {self.job.id} is no longer held by {self.worker}")

    async def complete_in(self, conn: AsyncConnection, result: Result = None, *,
                          status: JobStatus = JobStatus.SUCCEEDED) -> None:
        """Finish the job in the caller's transaction, so the job's last effect and its
        completion commit together: a worker killed before COMMIT left neither."""
        if not await queue.complete(conn, self.job.id, self.worker, result, status=status):
            raise JobLost(f"job {self.job.id} is no longer held by {self.worker}")
        self.completed = True


class Worker:
    def __init__(self, engine: AsyncEngine, *, name: str | None = None, concurrency: int = 4,
                 lease: dt.timedelta = dt.timedelta(seconds=30),
                 schedules: ScheduleConfig | None = None,
                 poll: dt.timedelta = dt.timedelta(milliseconds=500),
                 kinds: tuple[str, ...] | None = None,
                 services: dict[str, Any] | None = None,
                 clock: Callable[[], dt.datetime] = queue.utcnow) -> None:
        self.engine = engine
        self.name = name or worker_name()
        self.concurrency = concurrency
        self.lease = lease
        self.schedules = schedules
        self.poll = poll
        self.kinds = kinds
        self.services = services if services is not None else {}
        self.clock = clock
        self._scheduled: dict[str, str] = {}
        self._running: set[asyncio.Task[None]] = set()

    # -- scheduling ----------------------------------------------------------------------

    async def schedule_due(self) -> list[int]:
        """Queue each schedule's latest due occurrence (once per occurrence per process;
        the dedupe key makes it once in all)."""
        if self.schedules is None:
            return []
        now = self.clock()
        due = [due_occurrence(s, now, self.schedules.timezone) for s in self.schedules.schedules]
        fresh = [o for o in due if self._scheduled.get(o.schedule.name) != o.dedupe_key]
        if not fresh:
            return []
        queued: list[int] = []
        async with self.engine.begin() as conn:
            for o in fresh:
                job_id = await queue.enqueue(conn, o.schedule.kind, o.payload(),
                                             dedupe_key=o.dedupe_key,
                                             max_attempts=o.schedule.max_attempts)
                if job_id is not None:
                    queued.append(job_id)
        for o in fresh:
            self._scheduled[o.schedule.name] = o.dedupe_key
        return queued

    # -- running jobs --------------------------------------------------------------------

    async def take(self) -> Job | None:
        async with self.engine.begin() as conn:
            return await queue.claim(conn, self.name, self.lease, kinds=self.kinds)

    async def run_job(self, job: Job) -> JobStatus | None:
        """Run one claimed job to its end: completed, failed (retried later) or lost."""
        ctx = JobContext(self.engine, job, self.name, self.lease, self.services)
        # the request that queued the job, if any, beside the job's own id: a log search
        # for either finds the whole story
        context: dict[str, Any] = {"request_id": job.request_id} if job.request_id else {}
        with structlog.contextvars.bound_contextvars(job_id=job.id, job_kind=job.kind,
                                                     attempt=job.attempts, worker=self.name,
                                                     **context):
            fn = HANDLERS.get(job.kind)
            work = asyncio.create_task(self._call(fn, ctx))
            beat = asyncio.create_task(self._heartbeat(ctx, work))
            try:
                result = await work
            except asyncio.CancelledError:
                if beat.done() and beat.result() is False:
                    log.warning("job.lost", reason="canceled, or the lease lapsed")
                    return None
                raise
            except JobLost:
                log.warning("job.lost")
                return None
            except Exception as exc:
                log.warning("job.failed", error=f"{type(exc).__name__}: {exc}")
                error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                async with self.engine.begin() as conn:
                    status = await queue.fail(conn, job, self.name, error)
                return status
            finally:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await beat
            if ctx.completed:
                log.info("job.succeeded")
                return JobStatus.SUCCEEDED
            async with self.engine.begin() as conn:
                done = await queue.complete(conn, job.id, self.name, result)
            if not done:
                log.warning("job.lost", reason="taken away before it finished")
                return None
            log.info("job.succeeded", **{k: v for k, v in (result or {}).items()
                                         if isinstance(v, int | str)})
            return JobStatus.SUCCEEDED

    async def _call(self, fn: Handler | None, ctx: JobContext) -> Result:
        if fn is None:
            raise LookupError(f"no handler for job kind {ctx.job.kind!r}")
        log.info("job.started")
        return await fn(ctx)

    async def _heartbeat(self, ctx: JobContext, work: asyncio.Task[Result]) -> bool:
        interval = max(0.2, self.lease.total_seconds() / 3)
        while not work.done():
            await asyncio.sleep(interval)
            if work.done() or ctx.completed:
                return True
            try:
                async with self.engine.begin() as conn:
                    held = await queue.heartbeat(conn, ctx.job.id, self.name, self.lease,
                                                 progress_done=ctx.progress_done,
                                                 progress_total=ctx.progress_total)
            except Exception as exc:  # the database is away: try again next beat
                log.warning("job.heartbeat_failed", error=repr(exc))
                continue
            if not held and not ctx.completed:
                work.cancel()
                return False
        return True

    async def reap(self) -> int:
        async with self.engine.begin() as conn:
            found = await queue.reap(conn)
        if found:
            log.warning("jobs.reaped", jobs=found)
        return found

    async def drain(self, *, max_jobs: int = 10_000) -> int:
        """The in-process runner: schedule, then run due jobs one by one until none is
        left (SQLite, the demo, tests). Returns how many ran."""
        await self.schedule_due()
        ran = 0
        while ran < max_jobs:
            job = await self.take()
            if job is None:
                break
            await self.run_job(job)
            ran += 1
        return ran

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then let the jobs in hand finish (their leases would
        let others retake them, but finishing is cheaper)."""
        log.info("worker.started", concurrency=self.concurrency,
                 schedules=[s.name for s in (self.schedules.schedules if self.schedules else ())])
        last_reap = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                if loop.time() - last_reap > max(1.0, self.lease.total_seconds() / 3):
                    await self.reap()
                    last_reap = loop.time()
                await self.schedule_due()
                took = False
                while len(self._running) < self.concurrency and not stop.is_set():
                    job = await self.take()
                    if job is None:
                        break
                    took = True
                    task = asyncio.create_task(self.run_job_quietly(job))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
            except Exception as exc:  # the database restarting must not end the worker
                log.warning("worker.loop_error", error=repr(exc))
                took = False
            if not took:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll.total_seconds())
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        log.info("worker.stopped")

    async def run_job_quietly(self, job: Job) -> None:
        try:
            await self.run_job(job)
        except Exception:
            log.exception("job.crashed", job_id=job.id)
