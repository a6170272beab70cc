"""Two `paycore worker` processes on one PostgreSQL schema, as production runs them: the
nightly accrual in chunks shared between them, one worker SIGKILLed in the middle of a
chunk, and events delivered to a loopback receiver that refuses for a while. Afterwards
each loan-day is posted once, the run reports one result covering every loan, the books
verify, and every event arrived with a valid signature."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import signal
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

import ledger
from paycore import db as paycore_db
from paycore import jobs, webhooks
from paycore.jobs import JobStatus

from ..conftest import PG_URL, drop_schema, make_engine
from .service_helpers import Receiver, expected_interest, seed_loans

ROOT = Path(__file__).resolve().parents[2]
PAYCORE = Path(sys.executable).with_name("paycore")
LOANS, START = 3000, dt.date(2026, 11, 1)
THROUGH = START + dt.timedelta(days=2)


@pytest.fixture
async def pg(tmp_path):
    engine, schema = await make_engine("postgresql", tmp_path)
    try:
        await paycore_db.upgrade(engine)
        yield engine, PG_URL + "?options=" + quote(f"-csearch_path={schema}")
    finally:
        await engine.dispose()
        if schema:
            await drop_schema(schema)


async def _start_worker(url: str, schedules: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "PAYCORE_DATABASE_URL": url, "PAYCORE_SCHEDULES": str(schedules),
           "PAYCORE_JOB_LEASE_SECONDS": "2", "PAYCORE_WORKER_POLL_MS": "200",
           "PAYCORE_WEBHOOK_BACKOFF": "1,1,1,1,1,1,1,1", "PAYCORE_WEBHOOK_ALLOW_PRIVATE": "1",
           "PAYCORE_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
           # the tests' key ring (tests/conftest.py): the endpoint's secret is sealed by it
           "PAYCORE_ACCOUNT_KEYS": "test1:" + base64.b64encode(bytes(range(32))).decode()}
    env.pop("PAYCORE_BANKS", None)
    return await asyncio.create_subprocess_exec(
        str(PAYCORE), "worker", "--concurrency", "2", cwd=str(ROOT), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def _wait(predicate, within: float = 240.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_two_workers_one_killed_mid_chunk_every_effect_once(pg, tmp_path):
    engine, url = pg
    await seed_loans(engine, LOANS, START)
    receiver = Receiver(refuse=5)
    hook = await receiver.start()
    schedules = tmp_path / "schedules.yaml"
    schedules.write_text("schedules:\n  webhooks.dispatch: {every: 1}\n")
    async with engine.begin() as conn:
        _, receiver.secret = await webhooks.create_endpoint(
            conn, "m-1", hook, settings=webhooks.WebhookSettings(allow_private=True))
        run_id = await jobs.enqueue(conn, "accrual", {
            "through": THROUGH.isoformat(), "chunk_size": 300, "batch_size": 25},
            dedupe_key=f"accrual:{THROUGH}")
    event_ids = []
    async with engine.begin() as conn:
        for n in range(20):
            event_ids.append(await ledger.record_event(
                conn, topic="payment.captured", object_type="payment_intent",
                object_id=f"pi_{n % 7}", audience="m-1", payload={"n": n}))
    workers = [await _start_worker(url, schedules) for _ in range(2)]
    try:
        # kill the worker holding a chunk that has committed some of its batches
        victim: dict[str, object] = {}

        async def chunk_in_progress() -> bool:
            async with engine.connect() as conn:
                rows = (await conn.execute(sa.text(
                    "SELECT id, lease_owner FROM jobs WHERE kind = 'accrual.chunk' "
                    "AND status = 'running' AND progress_done > 0"))).all()
            for job_id, owner in rows:
                for w in workers:
                    if owner and f":{w.pid}:" in owner:
                        victim.update(job=job_id, process=w)
                        return True
            return False

        await _wait(chunk_in_progress)
        killed = victim["process"]
        assert isinstance(killed, asyncio.subprocess.Process)
        killed.send_signal(signal.SIGKILL)
        await killed.wait()

        async def finished() -> bool:
            async with engine.connect() as conn:
                run = await jobs.find_job(conn, run_id)
                pending = await conn.scalar(sa.text(
                    "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'"))
                made = await conn.scalar(sa.text("SELECT count(*) FROM webhook_deliveries"))
            return (run is not None and run.status is JobStatus.SUCCEEDED
                    and made == len(event_ids) and pending == 0)

        await _wait(finished)
    finally:
        for w in workers:
            if w.returncode is None:
                w.send_signal(signal.SIGTERM)
                await asyncio.wait_for(w.wait(), 60)
        await receiver.stop()

    async with engine.connect() as conn:
        run = await jobs.find_job(conn, run_id)
        retaken = await jobs.find_job(conn, int(victim["job"]))  # type: ignore[call-overload]
        entries = await conn.scalar(sa.text(
            "SELECT count(*) FROM journal_entries WHERE kind = 'loan.accrual'"))
        income = ledger.to_minor((await ledger.balance(
            conn, "6011.income.loan_interest.supply_chain")).posted)
        report = await ledger.verify(conn)
    assert retaken is not None and retaken.status is JobStatus.SUCCEEDED and retaken.attempts >= 2
    assert report.ok, report.summary()
    assert entries == LOANS * 2
    assert abs(income) == expected_interest(LOANS, 2)
    assert run is not None and run.result is not None
    assert run.result["loans"] == LOANS and run.result["interest_minor"] == abs(income)
    assert receiver.refused == 5 and receiver.bad_signatures == 0
    assert receiver.event_ids == set(event_ids)
    # each object's events arrived in the order they were written
    for obj in {f"pi_{n % 7}" for n in range(20)}:
        ns = [e["object"]["n"] for e in receiver.accepted if e["object"]["n"] % 7 == int(obj[3:])]
        first_seen = list(dict.fromkeys(ns))
        assert first_seen == sorted(first_seen)
