"""Prometheus metrics (`/metrics`). Request latency is counted by the process that serves;
everything else is read from the database at scrape time, so any API process shows the
whole deployment's state (the workers' queue, every bank, every delivery)."""

from __future__ import annotations

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

REGISTRY = CollectorRegistry()
REQUEST_LATENCY = Histogram("paycore_http_request_seconds", "HTTP request latency",
                            ["method", "route", "status"], registry=REGISTRY)
_G = {
    "entries": Gauge("paycore_ledger_entries", "journal entries posted (PostgreSQL: the "
                     "planner's estimate, kept by ANALYZE)", registry=REGISTRY),
    "queue_depth": Gauge("paycore_jobs_queued", "due jobs waiting, by kind", ["kind"],
                         registry=REGISTRY),
    "queue_age": Gauge("paycore_jobs_oldest_seconds", "age of the oldest due job, by kind",
                       ["kind"], registry=REGISTRY),
    "jobs_failed": Gauge("paycore_jobs_failed", "jobs that failed for good, by kind", ["kind"],
                         registry=REGISTRY),
    "unknown": Gauge("paycore_payments_unsettled", "payments, refunds and payouts in unknown "
                     "or review, by bank and status", ["bank", "kind", "status"], registry=REGISTRY),
    "breaker": Gauge("paycore_bank_breaker_open", "1 when the bank's circuit breaker is open "
                     "(0.5 half-open)", ["bank"], registry=REGISTRY),
    "webhooks_failed": Gauge("paycore_webhook_deliveries_failed", "deliveries given up on",
                             registry=REGISTRY),
    "webhooks_pending": Gauge("paycore_webhook_deliveries_pending", "deliveries not yet made",
                              registry=REGISTRY),
    "recon_open": Gauge("paycore_reconciliation_exceptions_open", "open reconciliation "
                        "exceptions", registry=REGISTRY),
}


async def _scalar(conn: AsyncConnection, sql: str) -> int:
    return int(await conn.scalar(sa.text(sql)) or 0)


async def collect(engine: AsyncEngine) -> bytes:
    from paycore.jobs import queue_depth

    async with engine.connect() as conn:
        _G["entries"].set(await _scalar(conn, (
            "SELECT greatest(reltuples, 0)::bigint FROM pg_class "
            "WHERE oid = to_regclass('journal_entries')")
            if conn.dialect.name == "postgresql" else "SELECT count(*) FROM journal_entries"))
        for g in ("queue_depth", "queue_age", "jobs_failed", "unknown", "breaker"):
            _G[g].clear()
        for kind, n, age in await queue_depth(conn):
            _G["queue_depth"].labels(kind).set(n)
            _G["queue_age"].labels(kind).set(age)
        for kind, n in await conn.execute(sa.text(
                "SELECT kind, count(*) FROM jobs WHERE status = 'failed' GROUP BY kind")):
            _G["jobs_failed"].labels(kind).set(n)
        for table, kind in (("payment_intents", "payment"), ("refunds", "refund"),
                            ("payouts", "payout")):
            for bank, status, n in await conn.execute(sa.text(
                    f"SELECT coalesce(bank, ''), status, count(*) FROM {table} "
                    "WHERE status IN ('unknown', 'review') GROUP BY 1, 2")):
                _G["unknown"].labels(bank, kind, status).set(n)
        for bank, state in await conn.execute(sa.text("SELECT bank, state FROM bank_health")):
            _G["breaker"].labels(bank).set({"open": 1.0, "half_open": 0.5}.get(state, 0.0))
        _G["webhooks_failed"].set(await _scalar(
            conn, "SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'"))
        _G["webhooks_pending"].set(await _scalar(
            conn, "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"))
        _G["recon_open"].set(await _scalar(
            conn, "SELECT count(*) FROM recon_exceptions WHERE status = 'open'"))
    return generate_latest(REGISTRY)
