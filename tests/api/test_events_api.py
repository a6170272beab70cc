"""The events API and webhook endpoints (#17 §2), health and metrics (§3), both databases."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

import ledger

from .conftest import bearer, is_problem

ROOT = Path(__file__).resolve().parents[2]
PAYCORE = Path(sys.executable).with_name("paycore")


def _post(key: str) -> dict[str, str]:
    return {**bearer(key), "Idempotency-Key": uuid.uuid4().hex}


async def test_a_merchant_pages_through_its_own_events_only(api, db, issue_key):
    key = await issue_key("m-1", "events:read")
    async with db.begin() as conn:
        for n in range(3):
            await ledger.record_event(conn, topic="payment.captured", object_type="payment_intent",
                                      object_id=f"pi_{n}", audience="m-1", payload={"n": n})
        await ledger.record_event(conn, topic="payment.captured", object_type="payment_intent",
                                  object_id="pi_other", audience="m-2", payload={})
    first = await api.get("/v1/events", params={"limit": 2}, headers=bearer(key))
    assert first.status_code == 200, first.text
    page = first.json()
    assert [e["object"]["n"] for e in page["data"]] == [0, 1]
    rest = (await api.get("/v1/events", params={"after": page["next_after"]},
                          headers=bearer(key))).json()
    assert [e["object"]["n"] for e in rest["data"]] == [2]
    empty = (await api.get("/v1/events", params={"after": rest["next_after"]},
                           headers=bearer(key))).json()
    assert empty["data"] == [] and empty["next_after"] == rest["next_after"]


async def test_endpoints_are_registered_listed_rotated_and_disabled(api, issue_key):
    key = await issue_key("m-1", "webhooks:write", "events:read")
    made = await api.post("/v1/webhook-endpoints", headers=_post(key),
                          json={"url": "https://hooks.example.com/paycore",
                                "topics": ["payment.*"]})
    assert made.status_code == 201, made.text
    endpoint = made.json()
    assert endpoint["secret"].startswith("whsec_")
    listed = (await api.get("/v1/webhook-endpoints", headers=bearer(key))).json()
    assert [e["id"] for e in listed] == [endpoint["id"]] and listed[0]["secret"] is None
    rotated = await api.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
                             headers=_post(key))
    assert rotated.json()["secret"] != endpoint["secret"]
    assert rotated.json()["previous_secret_until"] is not None
    off = await api.post(f"/v1/webhook-endpoints/{endpoint['id']}/disable", headers=_post(key))
    assert off.json()["status"] == "disabled"
    other = await issue_key("m-2", "webhooks:write")
    assert is_problem(await api.post(f"/v1/webhook-endpoints/{endpoint['id']}/enable",
                                     headers=_post(other)), 404)
    assert is_problem(await api.post("/v1/webhook-endpoints", headers=_post(key),
                                     json={"url": "http://169.254.169.254/latest"}), 422)


async def test_ready_and_metrics(api):
    ready = await api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "queue": "ok"}
    assert (await api.get("/healthz")).status_code == 200
    metrics = await api.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    for name in ("paycore_http_request_seconds", "paycore_ledger_entries",
                 "paycore_webhook_deliveries_failed", "paycore_reconciliation_exceptions_open"):
        assert name in text
    assert 'route="/readyz"' in text


async def test_a_job_queued_by_a_request_logs_the_request_id_beside_its_own(api, db, issue_key):
    """#17 §3: a redelivery asked for through the API queues a dispatch job carrying the
    request's id; `paycore worker --once`, a process of its own logging as production does
    (JSON lines), runs it and logs both ids on the job's lines."""
    from paycore import jobs, webhooks
    from tests.paycore.service_helpers import Receiver

    receiver = Receiver()
    hook = await receiver.start()
    try:
        key = await issue_key("m-1", "webhooks:write")
        async with db.begin() as conn:
            _, receiver.secret = await webhooks.create_endpoint(
                conn, "m-1", hook, settings=webhooks.WebhookSettings(allow_private=True))
            event_id = await ledger.record_event(conn, topic="payment.captured",
                                                 object_type="payment_intent",
                                                 object_id="pi_1", audience="m-1", payload={})
            await webhooks.fan_out(conn)
        answer = await api.post(f"/v1/events/{event_id}/redeliver",
                                headers={**_post(key), "X-Request-ID": "req-redeliver-17"})
        assert answer.status_code == 200, answer.text
        job_id = answer.json()["job_id"]
        async with db.connect() as conn:
            job = await jobs.find_job(conn, job_id)
        assert job is not None and job.kind == "webhooks.dispatch"
        assert job.request_id == "req-redeliver-17"
        lines = [line for line in await _worker_once(db) if line.get("job_id") == job_id]
    finally:
        await receiver.stop()
    assert {e["event"] for e in lines} >= {"job.started", "job.succeeded"}
    assert all(e.get("request_id") == "req-redeliver-17" for e in lines), lines
    assert receiver.event_ids == {event_id} and receiver.bad_signatures == 0


async def _worker_once(db) -> list[dict]:
    """Run `paycore worker --once` on `db` (the SQLite file, or the PostgreSQL test schema
    named in the URL) and return its log lines."""
    if db.dialect.name == "sqlite":
        url = db.url.render_as_string(hide_password=False)
    else:
        async with db.connect() as conn:
            schema = (await conn.execute(sa.text("SHOW search_path"))).scalar()
        url = (db.url.render_as_string(hide_password=False) + "?options="
               + quote(f"-csearch_path={schema}"))
    root = ROOT
    env = {**os.environ, "PAYCORE_DATABASE_URL": url, "PAYCORE_LOG_FORMAT": "json",
           "PAYCORE_LOG_LEVEL": "INFO", "PAYCORE_WEBHOOK_ALLOW_PRIVATE": "1",
           "PAYCORE_ACCOUNT_KEYS": "test1:" + base64.b64encode(bytes(range(32))).decode(),
           "PYTHONPATH": str(root)}
    process = await asyncio.create_subprocess_exec(
        str(PAYCORE), "worker", "--once", "--no-schedules",
        "--kind", "webhooks.dispatch", cwd=str(root), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, (out + err).decode()
    found = []
    for line in (out + err).decode().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found
