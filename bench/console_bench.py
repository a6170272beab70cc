"""Console benchmark (issue #19): the main list pages of the operations console on a big
ledger and loan book, p95 server time per page (aim: under 200 ms).

Seeds PostgreSQL (its own schema): `--postings` postings (two-leg entries written by
`ledger.post_many` in large batches, every entry touching one hot account, so its postings
page walks the biggest account) and `--loans` loans (written straight into the loan table as
bench/accrual_bench.py does). Then signs a controller in and asks each page `--requests`
times through the real application (ASGI in-process: the server's time, no network), and
prints p50 and p95 per page.

The issue's figures are the full run:  .venv/bin/python bench/console_bench.py \\
    --postings 1000000 --loans 100000       (seeding takes several minutes on 2 cores)
The defaults are smaller, for a quick look: 200,000 postings and 20,000 loans.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
from paycore import db as paycore_db
from paycore.api import ApiSettings, create_app
from paycore.console import staff
from paycore.logging import configure_logging

sys.path.insert(0, str(Path(__file__).parent))
from accrual_bench import seed as seed_loans

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_console"
PASSWORD = "bench-password-2026"
PAGES = [
    "/console/books/journal",
    "/console/books/journal?page=200",
    "/console/books/accounts/9901.bench.hot",
    "/console/books/accounts/9901.bench.hot?page=500",
    "/console/books/accounts?sort=balance&dir=desc",
    "/console/risk/loans",
    "/console/risk/loans?view=overdue&sort=amount&dir=desc",
    "/console/risk/loans?view=due",
    "/console/risk/queue",
    "/console/finance/exceptions",
    "/console/payments",
    "/console/payments/approvals/queue",
    "/console/audit",
]


async def seed_postings(engine: AsyncEngine, postings: int, batch: int) -> float:
    async with engine.begin() as conn:
        await ledger.ensure_account(conn, ledger.AccountSpec(
            "9901.bench.hot", "Hot clearing", ledger.AccountType.ASSET, "CNY"))
        for i in range(100):
            await ledger.ensure_account(conn, ledger.AccountSpec(
                f"2202.bench.s{i:03d}", f"Supplier {i}", ledger.AccountType.LIABILITY, "CNY"))
    entries = postings // 2
    t0 = time.perf_counter()
    for start in range(0, entries, batch):
        requests = [ledger.EntryRequest(
            f"bench:{i}", "payment.capture", description=f"order {i}", postings=[
                ledger.Posting("9901.bench.hot", debit=Money(Decimal(1 + i % 500), "CNY")),
                ledger.Posting(f"2202.bench.s{i % 100:03d}",
                               credit=Money(Decimal(1 + i % 500), "CNY"))])
            for i in range(start, min(entries, start + batch))]
        async with engine.begin() as conn:
            await ledger.post_many(conn, requests)
        done = min(entries, start + batch) * 2
        if done % 100_000 < batch * 2:
            print(f"  {done:,} postings", flush=True)
    return time.perf_counter() - t0


async def measure(engine: AsyncEngine, requests: int) -> list[dict[str, object]]:
    async with engine.begin() as conn:
        if await staff.get_user(conn, "bench.controller") is None:
            await staff.add_user(conn, "bench.controller", "controller", PASSWORD)
    app = create_app(engine, settings=ApiSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://bench.test") as client:
        page = await client.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        await client.post("/console/login", data={"username": "bench.controller",
                                                  "password": PASSWORD,
                                                  "csrf_token": token.group(1)})
        out = []
        for path in PAGES:
            times = []
            for _ in range(requests):
                t0 = time.perf_counter()
                response = await client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            times.sort()
            p95 = times[min(len(times) - 1, len(times) * 95 // 100)]
            out.append({"page": path, "p50_ms": round(statistics.median(times), 1),
                        "p95_ms": round(p95, 1), "under_200ms": p95 < 200})
            print(f"  {path:60s} p50 {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms",
                  flush=True)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postings", type=int, default=200_000)
    parser.add_argument("--loans", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=20, help="requests per page")
    parser.add_argument("--batch", type=int, default=5000, help="entries per post_many")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--keep", action="store_true", help="keep the schema (and reuse it)")
    args = parser.parse_args()
    configure_logging("console", "WARNING")
    dsn = args.pg_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    admin = await asyncpg.connect(dsn)
    exists = await admin.fetchval("SELECT count(*) FROM information_schema.schemata "
                                  "WHERE schema_name = $1", SCHEMA)
    reuse = args.keep and exists
    if not reuse:
        await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    engine = paycore_db.create_engine(
        args.pg_url, connect_args={"server_settings": {"search_path": SCHEMA}})
    try:
        result: dict[str, object] = {"postings": args.postings, "loans": args.loans}
        if not reuse:
            await paycore_db.upgrade(engine)
            print(f"seeding {args.postings:,} postings and {args.loans:,} loans", flush=True)
            result["seed_postings_s"] = round(await seed_postings(engine, args.postings,
                                                                  args.batch), 1)
            t0 = time.perf_counter()
            await seed_loans(engine, args.loans)
            result["seed_loans_s"] = round(time.perf_counter() - t0, 1)
            await admin.execute(f"ANALYZE {SCHEMA}.postings, {SCHEMA}.journal_entries, "
                                f"{SCHEMA}.lending_loans")
        print(f"server time per page, {args.requests} requests each "
              f"({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC):", flush=True)
        result["pages"] = await measure(engine, args.requests)
        worst = max(p["p95_ms"] for p in result["pages"])  # type: ignore[union-attr]
        print(f"worst p95: {worst} ms (aim < 200 ms)")
        print(json.dumps(result))
    finally:
        await engine.dispose()
        if not args.keep:
            await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
