"""Payment core benchmark: N concurrent checkouts end to end against the sandbox banks on
PostgreSQL, through the service functions (not the HTTP API: see bench/checkout_bench.py
for that, if present): create_intent -> the customer pays at the bank -> the bank's
notification over HTTP -> handle_notification (verify, dedupe, CAS, capture entry).

Prints throughput, p50/p99 latency of create_intent and of notification handling, and the
share of notification handling spent in `ledger.post`. The last line is JSON.

Usage: .venv/bin/python bench/payments_core_bench.py [--checkouts N] [--concurrency C]
       [--banks restbank,unionpay,smbank] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
from moneyed import Money

import gateways
import ledger
from gateways import BankDirectory, IntentRequest, NotificationReceiver, SupplierTerms
from gateways.sandbox import SandboxFleet, SandboxSettings
from gateways.sandbox.server import LoopbackServer
from paycore import db as paycore_db

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


async def main(args: argparse.Namespace) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    plain = args.pg_url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(plain)
    await admin.execute(f"CREATE SCHEMA {schema}")
    engine = paycore_db.create_engine(
        args.pg_url, pool_size=20, max_overflow=40,
        connect_args={"server_settings": {"search_path": schema}})
    post_seconds = [0.0]
    real_post = ledger.post

    async def timed_post(conn: Any, request: Any) -> Any:
        t = time.perf_counter()
        try:
            return await real_post(conn, request)
        finally:
            post_seconds[0] += time.perf_counter() - t

    ledger.post = timed_post  # type: ignore[assignment]  # the core calls ledger.post
    notify_times: list[float] = []
    try:
        await paycore_db.upgrade(engine)
        async with engine.begin() as conn:
            await gateways.set_supplier_terms(conn, SupplierTerms("sup-001", Decimal("0.03")))
        banks_codes = tuple(args.banks.split(","))
        settings = SandboxSettings(retry_delays=(0.05, 0.2, 0.5, 1.0))
        async with SandboxFleet.start(banks_codes, settings=settings, client_timeout=30) as fleet:
            adapters = [fleet.adapter(c, timeout=30) for c in banks_codes]
            receiver = NotificationReceiver(engine, BankDirectory(adapters), prefix="/notify")

            async def timed_app(scope: Any, receive: Any, send: Any) -> None:
                t = time.perf_counter()
                await receiver(scope, receive, send)
                if scope["type"] == "http":
                    notify_times.append(time.perf_counter() - t)

            server = LoopbackServer(timed_app, name="receiver")
            base = await server.start()
            banks = BankDirectory(adapters, notify_base_url=f"{base}/notify")
            receiver.banks = banks
            gate = asyncio.Semaphore(args.concurrency)
            create_times: list[float] = []

            async def checkout(i: int) -> None:
                async with gate:
                    bank = banks_codes[i % len(banks_codes)]
                    t = time.perf_counter()
                    co = await gateways.create_intent(engine, banks, IntentRequest(
                        merchant_id="m-bench", order_id=f"b-{i}", supplier_id="sup-001",
                        amount=Money(Decimal(100 + i % 900) / 100 + 1, "CNY"), bank=bank))
                    create_times.append(time.perf_counter() - t)
                    assert co.instruction is not None
                    await fleet.bank(bank).customer_pays(co.instruction)

            started = time.perf_counter()
            await asyncio.gather(*(checkout(i) for i in range(args.checkouts)))
            await fleet.drain()
            elapsed = time.perf_counter() - started
            await server.stop()
        async with engine.connect() as conn:
            paid = len(await gateways.list_intents(conn, "m-bench", status=gateways.IntentState.SUCCEEDED,
                                                   limit=args.checkouts + 1))
            report = await ledger.verify(conn)
        handling = sum(notify_times)
        figures = {
            "checkouts": args.checkouts, "concurrency": args.concurrency, "banks": banks_codes,
            "paid": paid, "seconds": round(elapsed, 3),
            "checkouts_per_second": round(args.checkouts / elapsed, 1),
            "create_p50_ms": round(pct(create_times, 0.5) * 1000, 1),
            "create_p99_ms": round(pct(create_times, 0.99) * 1000, 1),
            "notify_p50_ms": round(pct(notify_times, 0.5) * 1000, 1),
            "notify_p99_ms": round(pct(notify_times, 0.99) * 1000, 1),
            "notify_mean_ms": round(statistics.fmean(notify_times) * 1000, 1) if notify_times else 0,
            "ledger_post_share_of_notify": round(post_seconds[0] / handling, 3) if handling else 0,
            "verify_ok": report.ok,
        }
    finally:
        ledger.post = real_post  # type: ignore[assignment]
        await engine.dispose()
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkouts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--banks", default="restbank,unionpay,smbank")
    parser.add_argument("--pg-url", default=PG_URL)
    figures = asyncio.run(main(parser.parse_args()))
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(json.dumps(figures))
