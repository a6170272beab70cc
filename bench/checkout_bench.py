"""Checkout through the HTTP API: N concurrent checkouts end to end against the sandbox
banks on PostgreSQL — POST /v1/payment-intents (API key, Idempotency-Key) -> the customer
pays at the bank -> the bank's notification to POST /v1/notifications/{bank} -> the
capture entry. The API runs under uvicorn on loopback, as deployed.

Prints throughput, p50/p99 latency of create (client side) and of notification handling
(server side), of an idempotent replay and of a GET, and the share of notification
handling spent in `ledger.post`. Compare with bench/payments_core_bench.py (the same
checkouts through the service functions) for the API's own cost. The last line is JSON.

Usage: .venv/bin/python bench/checkout_bench.py [--checkouts N] [--concurrency C]
       [--banks restbank,unionpay,smbank] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

import gateways
import ledger
from gateways.sandbox import SandboxFleet, SandboxSettings
from gateways.sandbox.server import LoopbackServer
from paycore import db as paycore_db
from paycore.api import ApiSettings, create_api_key, create_app

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def ms(value: float) -> float:
    return round(value * 1000, 1)


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
            await gateways.set_supplier_terms(conn, gateways.SupplierTerms("sup-001", Decimal("0.03")))
            key = (await create_api_key(conn, "m-bench", ["payments:read", "payments:write"])).secret
        codes = tuple(args.banks.split(","))
        settings = SandboxSettings(retry_delays=(0.05, 0.2, 0.5, 1.0))
        async with SandboxFleet.start(codes, settings=settings, client_timeout=30) as fleet:
            app = create_app(engine, settings=ApiSettings(log_level="WARNING"))

            async def timed_app(scope: Any, receive: Any, send: Any) -> None:
                t = time.perf_counter()
                await app(scope, receive, send)
                if scope["type"] == "http" and scope["path"].startswith("/v1/notifications/"):
                    notify_times.append(time.perf_counter() - t)

            server = LoopbackServer(timed_app, name="api")
            base = await server.start()
            app.state.banks = gateways.BankDirectory(
                [fleet.adapter(c, timeout=30) for c in codes],
                notify_base_url=f"{base}/v1/notifications")
            gate = asyncio.Semaphore(args.concurrency)
            create_times: list[float] = []
            created: list[tuple[str, dict[str, Any], str]] = []
            limits = httpx.Limits(max_connections=args.concurrency)
            async with httpx.AsyncClient(base_url=base, trust_env=False, limits=limits,
                                         timeout=60) as client:
                auth = {"Authorization": f"Bearer {key}"}

                async def checkout(i: int) -> None:
                    async with gate:
                        bank = codes[i % len(codes)]
                        body = {"order_id": f"b-{i}", "supplier_id": "sup-001", "bank": bank,
                                "amount": {"amount": str(Decimal(100 + i % 900) / 100 + 1),
                                           "currency": "CNY"}}
                        t = time.perf_counter()
                        r = await client.post("/v1/payment-intents", json=body,
                                              headers=auth | {"Idempotency-Key": f"k-{i}"})
                        create_times.append(time.perf_counter() - t)
                        assert r.status_code == 201, r.text
                        intent = r.json()
                        created.append((f"k-{i}", body, intent["id"]))
                        action = intent["next_action"]
                        await fleet.bank(bank).customer_pays(gateways.PaymentInstruction(
                            method=action["method"], url=action["url"], fields=action["fields"]))

                started = time.perf_counter()
                await asyncio.gather(*(checkout(i) for i in range(args.checkouts)))
                await fleet.drain()
                elapsed = time.perf_counter() - started

                replay_times, get_times = [], []
                for idem, body, intent_id in created[: min(100, len(created))]:
                    t = time.perf_counter()
                    r = await client.post("/v1/payment-intents", json=body,
                                          headers=auth | {"Idempotency-Key": idem})
                    replay_times.append(time.perf_counter() - t)
                    assert r.headers.get("idempotent-replayed") == "true"
                    t = time.perf_counter()
                    r = await client.get(f"/v1/payment-intents/{intent_id}", headers=auth)
                    get_times.append(time.perf_counter() - t)
                    assert r.status_code == 200
            await server.stop()
        async with engine.connect() as conn:
            paid = len(await gateways.list_intents(conn, "m-bench", status=gateways.IntentState.SUCCEEDED,
                                                   limit=args.checkouts + 1))
            report = await ledger.verify(conn)
        handling = sum(notify_times)
        figures = {
            "checkouts": args.checkouts, "concurrency": args.concurrency, "banks": codes,
            "paid": paid, "seconds": round(elapsed, 3),
            "checkouts_per_second": round(args.checkouts / elapsed, 1),
            "create_p50_ms": ms(pct(create_times, 0.5)), "create_p99_ms": ms(pct(create_times, 0.99)),
            "notify_p50_ms": ms(pct(notify_times, 0.5)), "notify_p99_ms": ms(pct(notify_times, 0.99)),
            "replay_p50_ms": ms(pct(replay_times, 0.5)), "replay_p99_ms": ms(pct(replay_times, 0.99)),
            "get_p50_ms": ms(pct(get_times, 0.5)), "get_p99_ms": ms(pct(get_times, 0.99)),
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
    for name, value in figures.items():
        print(f"{name}: {value}")
    print(json.dumps(figures))
