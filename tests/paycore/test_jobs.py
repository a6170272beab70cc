"""The job queue and workers on both databases: one job per scheduled occurrence, a dead
worker's job retaken after its lease, retries with back-off, and the accrual split into
chunks that two workers share, finishing once with one result."""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo

import sqlalchemy as sa

import ledger
from paycore import jobs
from paycore.jobs import JobStatus, Schedule, ScheduleConfig, Worker
from paycore.jobs.worker import HANDLERS, handler

from .service_helpers import expected_interest, seed_loans

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def test_occurrences_fall_in_the_business_time_zone():
    nightly = Schedule("accrual", "accrual", at=dt.time(0, 30))
    # 2026-12-06 17:00 UTC is 2026-12-07 01:00 in Shanghai: tonight's 00:30 has passed
    o = jobs.due_occurrence(nightly, dt.datetime(2026, 12, 6, 17, 0, tzinfo=dt.UTC), SHANGHAI)
    assert o.at == dt.datetime(2026, 12, 7, 0, 30, tzinfo=SHANGHAI)
    assert o.business_date == dt.date(2026, 12, 7)
    # 16:00 UTC is 00:00 in Shanghai: the last occurrence is the night before
    o = jobs.due_occurrence(nightly, dt.datetime(2026, 12, 6, 16, 0, tzinfo=dt.UTC), SHANGHAI)
    assert o.business_date == dt.date(2026, 12, 6)
    every = Schedule("janitor", "janitor", every=dt.timedelta(minutes=5))
    o = jobs.due_occurrence(every, dt.datetime(2026, 12, 6, 17, 7, 30, tzinfo=dt.UTC), SHANGHAI)
    assert o.at == dt.datetime(2026, 12, 7, 1, 5, tzinfo=SHANGHAI)
    assert o.dedupe_key == "janitor:2026-12-07T01:05:00+08:00"


async def test_an_occurrence_is_one_job_however_many_workers_schedule_it(db):
    config = ScheduleConfig(SHANGHAI, (Schedule("janitor", "janitor", every=dt.timedelta(60)),
                                       Schedule("accrual", "accrual", at=dt.time(0, 30))))
    workers = [Worker(db, schedules=config) for _ in range(3)]
    queued = await asyncio.gather(*(w.schedule_due() for w in workers))
    assert sorted(len(q) for q in queued) == [0, 0, 2] or sum(len(q) for q in queued) == 2
    async with db.connect() as conn:
        listed = await jobs.list_jobs(conn)
    assert sorted(j.kind for j in listed) == ["accrual", "janitor"]
    assert all(j.status is JobStatus.QUEUED for j in listed)


async def test_a_dead_workers_job_is_taken_again_once_its_lease_lapses(db):
    async with db.begin() as conn:
        job_id = await jobs.enqueue(conn, "noop", {"n": 1})
    lease = dt.timedelta(milliseconds=200)
    async with db.begin() as conn:
        first = await jobs.claim(conn, "worker-a", lease)
    assert first is not None and first.id == job_id and first.attempts == 1
    async with db.begin() as conn:
        assert await jobs.claim(conn, "worker-b", lease) is None  # held
        assert await jobs.reap(conn) == 0  # the lease still runs
    await asyncio.sleep(0.3)  # worker-a "died": no heartbeat
    async with db.begin() as conn:
        assert await jobs.reap(conn) == 1
        second = await jobs.claim(conn, "worker-b", lease * 50)
    assert second is not None and second.id == job_id and second.attempts == 2
    async with db.begin() as conn:
        # the dead worker's late completion is refused: the job is worker-b's
        assert not await jobs.complete(conn, job_id, "worker-a", {"by": "a"})
        assert not await jobs.heartbeat(conn, job_id, "worker-a", lease)
        assert await jobs.complete(conn, job_id, "worker-b", {"by": "b"})
    async with db.connect() as conn:
        done = await jobs.find_job(conn, job_id)
    assert done is not None and done.status is JobStatus.SUCCEEDED and done.result == {"by": "b"}


async def test_a_failing_job_is_retried_after_back_off_then_failed(db):
    calls: list[int] = []

    @handler("test.flaky")
    async def flaky(ctx: jobs.JobContext) -> None:
        calls.append(ctx.job.attempts)
        raise RuntimeError("the bank is down")

    try:
        async with db.begin() as conn:
            job_id = await jobs.enqueue(conn, "test.flaky", max_attempts=2)
        worker = Worker(db)
        assert await worker.drain() == 1
        async with db.connect() as conn:
            job = await jobs.find_job(conn, job_id)
        assert job is not None and job.status is JobStatus.QUEUED
        assert job.run_after > jobs.queue.utcnow() and "the bank is down" in (job.last_error or "")
        assert await worker.drain() == 0  # backing off
        async with db.begin() as conn:
            await conn.execute(sa.text("UPDATE jobs SET run_after = :t"),
                               {"t": dt.datetime(2000, 1, 1, tzinfo=dt.UTC)})
        assert await worker.drain() == 1
        async with db.connect() as conn:
            job = await jobs.find_job(conn, job_id)
        assert job is not None and job.status is JobStatus.FAILED and calls == [1, 2]
        async with db.begin() as conn:
            again = await jobs.retry(conn, job_id)
        assert again is not None and again.status is JobStatus.QUEUED and again.attempts == 0
        async with db.begin() as conn:
            canceled = await jobs.cancel(conn, job_id)
        assert canceled is not None and canceled.status is JobStatus.CANCELED
    finally:
        HANDLERS.pop("test.flaky", None)


async def test_a_canceled_running_job_stops_at_its_next_heartbeat(db):
    started = asyncio.Event()

    @handler("test.slow")
    async def slow(ctx: jobs.JobContext) -> None:
        started.set()
        await asyncio.sleep(30)

    try:
        async with db.begin() as conn:
            job_id = await jobs.enqueue(conn, "test.slow")
        worker = Worker(db, lease=dt.timedelta(seconds=0.6))
        job = await worker.take()
        assert job is not None
        running = asyncio.create_task(worker.run_job(job))
        await started.wait()
        async with db.begin() as conn:
            assert await jobs.cancel(conn, job_id) is not None
        assert await asyncio.wait_for(running, 10) is None  # lost: it stopped
        async with db.connect() as conn:
            found = await jobs.find_job(conn, job_id)
        assert found is not None and found.status is JobStatus.CANCELED
    finally:
        HANDLERS.pop("test.slow", None)


async def test_the_accrual_in_chunks_shared_by_two_workers_posts_each_loan_day_once(db):
    n, start = 120, dt.date(2026, 11, 1)
    through = start + dt.timedelta(days=3)
    await seed_loans(db, n, start)
    async with db.begin() as conn:
        run_id = await jobs.enqueue(conn, "accrual", {"through": through.isoformat(),
                                                      "chunk_size": 25, "batch_size": 10},
                                    dedupe_key=f"accrual:{through}")
    a, b = Worker(db, name="a"), Worker(db, name="b")
    assert await a.drain(max_jobs=1) == 1  # the run: five chunks queued, the run waits
    async with db.connect() as conn:
        run = await jobs.find_job(conn, run_id)
        chunks = await jobs.list_jobs(conn, parent_id=run_id)
    assert run is not None and run.status is JobStatus.WAITING and run.progress_total == 5
    assert len(chunks) == 5
    # a chunk dies after some of its batches committed: its worker never finishes it
    doomed = await a.take()
    assert doomed is not None and doomed.kind == "accrual.chunk"
    import lending

    from .service_helpers import CONFIG
    assert doomed.payload["after_id"] == "" and doomed.payload["last_id"] == "L0000024"
    await lending.run_accrual(db, through, CONFIG, batch_size=10, last_id="L0000009",
                              on_batch=lambda conn, part: _add(conn, run_id, part))
    await asyncio.gather(a.drain(), b.drain())
    async with db.begin() as conn:
        await conn.execute(sa.text("UPDATE jobs SET lease_expires_at = :t WHERE id = :id"),
                           {"t": dt.datetime(2000, 1, 1, tzinfo=dt.UTC), "id": doomed.id})
    await b.reap()
    await asyncio.gather(a.drain(), b.drain())
    async with db.connect() as conn:
        run = await jobs.find_job(conn, run_id)
        income = ledger.to_minor((await ledger.balance(
            conn, "6011.income.loan_interest.supply_chain")).posted)
        entries = await conn.scalar(sa.text(
            "SELECT count(*) FROM journal_entries WHERE kind = 'loan.accrual'"))
        report = await ledger.verify(conn)
    assert run is not None and run.status is JobStatus.SUCCEEDED and run.progress_done == 5
    assert report.ok, report.summary()
    assert entries == n * 3  # three loan-days each, once
    assert abs(income) == expected_interest(n, 3)
    # the run's one result counts what the dead chunk committed and what its retry did
    assert run.result is not None and run.result["loans"] == n
    assert run.result["interest_minor"] == abs(income)


async def _add(conn, run_id, part):
    from paycore.jobs.handlers import _add_to_parent
    await _add_to_parent(conn, run_id, part)
