"""Jobs benchmark (#17): the nightly accrual over N loans run by 1 and then by 2
`paycore worker` processes (same invocation, each on a fresh PostgreSQL schema), and
webhook delivery throughput to a loopback receiver. Prints the figures.

Usage: .venv/bin/python bench/jobs_bench.py [--loans 100000] [--events 5000] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ledger
from paycore import db as paycore_db
from paycore import jobs, webhooks
from paycore.jobs import JobStatus
from paycore.logging import configure_logging
from tests.paycore.service_helpers import Receiver, seed_loans

ROOT = Path(__file__).resolve().parents[1]
PAYCORE = Path(sys.executable).with_name("paycore")
START = dt.date(2026, 11, 1)


async def _schema(url: str) -> tuple[str, str]:
    name = f"bench_jobs_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    await conn.execute(f"CREATE SCHEMA {name}")
    await conn.close()
    return name, url + "?options=" + quote(f"-csearch_path={name}")


async def _drop(url: str, name: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    await conn.execute(f"DROP SCHEMA {name} CASCADE")
    await conn.close()


async def accrual(pg_url: str, loans: int, workers: int, chunk: int) -> float:
    name, url = await _schema(pg_url)
    engine = paycore_db.create_engine(url)
    try:
        await paycore_db.upgrade(engine)
        await seed_loans(engine, loans, START)
        env = {**os.environ, "PAYCORE_DATABASE_URL": url, "PAYCORE_SCHEDULES": "none",
               "PAYCORE_LOG_LEVEL": "WARNING", "PAYCORE_WORKER_POLL_MS": "100",
               "PYTHONPATH": str(ROOT)}
        procs = [await asyncio.create_subprocess_exec(
            str(PAYCORE), "worker", "--concurrency", "1", env=env, cwd=str(ROOT))
            for _ in range(workers)]
        await asyncio.sleep(3)  # the workers are up (their start is not the run's time)
        t0 = time.perf_counter()
        async with engine.begin() as conn:
            run_id = await jobs.enqueue(conn, "accrual", {
                "through": (START + dt.timedelta(days=1)).isoformat(), "chunk_size": chunk,
                "batch_size": 2000})
        while True:
            async with engine.connect() as conn:
                run = await jobs.find_job(conn, run_id)  # type: ignore[arg-type]
            if run is not None and run.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
                break
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - t0
        for p in procs:
            p.send_signal(signal.SIGTERM)
            await p.wait()
        assert run.status is JobStatus.SUCCEEDED and run.result and run.result["loans"] == loans
        return elapsed
    finally:
        await engine.dispose()
        await _drop(pg_url, name)


async def delivery(pg_url: str, events: int) -> float:
    name, url = await _schema(pg_url)
    engine = paycore_db.create_engine(url)
    receiver = Receiver()
    hook = await receiver.start()
    settings = webhooks.WebhookSettings(allow_private=True, concurrency=32, batch=1000)
    import gateways  # the signing secret is sealed under the account key ring

    gateways.use_account_keys(gateways.AccountKeys([("bench", os.urandom(32))]))
    try:
        await paycore_db.upgrade(engine)
        async with engine.begin() as conn:
            _, receiver.secret = await webhooks.create_endpoint(conn, "m-1", hook,
                                                                settings=settings)
            for n in range(events):
                await ledger.record_event(conn, topic="payment.captured",
                                          object_type="payment_intent", object_id=f"pi_{n}",
                                          audience="m-1", payload={"n": n})
        t0 = time.perf_counter()
        while len(receiver.accepted) < events:
            await webhooks.dispatch(engine, settings)
        elapsed = time.perf_counter() - t0
        assert receiver.bad_signatures == 0
        return elapsed
    finally:
        await receiver.stop()
        await engine.dispose()
        await _drop(pg_url, name)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=5_000)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--pg-url", default=os.environ.get(
        "PAYCORE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    configure_logging("json", "WARNING")
    one = await accrual(args.pg_url, args.loans, 1, args.chunk)
    print(f"accrual {args.loans} loans, 1 worker : {one:8.2f} s  {args.loans / one:10.0f} loans/s")
    two = await accrual(args.pg_url, args.loans, 2, args.chunk)
    print(f"accrual {args.loans} loans, 2 workers: {two:8.2f} s  {args.loans / two:10.0f} loans/s")
    print(f"ratio accrual_2_workers_over_1 {one / two:.2f}")
    took = await delivery(args.pg_url, args.events)
    print(f"webhooks {args.events} deliveries: {took:8.2f} s  {args.events / took:10.0f} /s")


if __name__ == "__main__":
    asyncio.run(main())
