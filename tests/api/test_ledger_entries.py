"""POST /v1/ledger/entries (scope ledger:write): internal services post entries through
the app's coalescing write path (`ledger.Coalescer`), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import ledger
from paycore.api.ledger import coalescer_of
from tests.api.conftest import bearer, is_problem
from tests.ledger.chart import cny

URL = "/v1/ledger/entries"


def leg(account: str, side: str, amount: str) -> dict[str, Any]:
    return {"account": account, "side": side, "amount": {"amount": amount, "currency": "CNY"}}


def transfer(amount: str, *, debit: str = "1102.clearing.icbc",
             credit: str = "2202.payable.s1") -> dict[str, Any]:
    return {"kind": "transfer.internal", "description": "settlement sweep",
            "effective_date": "2026-11-30", "metadata": {"batch": 7},
            "postings": [leg(debit, "debit", amount), leg(credit, "credit", amount)]}


def headers(key: str, idem: str) -> dict[str, str]:
    return bearer(key) | {"Idempotency-Key": idem}


async def test_an_entry_posts_once_and_a_retry_returns_it(api, db, issue_key):
    key = await issue_key("treasury", "ledger:write")
    first = await api.post(URL, json=transfer("25.00"), headers=headers(key, "sweep-1"))
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["idempotency_key"] == "api:treasury:sweep-1"
    assert body["kind"] == "transfer.internal" and body["effective_date"] == "2026-11-30"
    assert body["metadata"] == {"batch": 7}
    assert [(p["account"], p["side"], p["amount"]["amount"]) for p in body["postings"]] == [
        ("1102.clearing.icbc", "debit", "25.00"), ("2202.payable.s1", "credit", "25.00")]
    again = await api.post(URL, json=transfer("25.00"), headers=headers(key, "sweep-1"))
    assert again.status_code == 201 and again.json() == body
    assert again.headers["idempotent-replayed"] == "true"
    async with db.connect() as conn:
        assert (await ledger.balance(conn, "2202.payable.s1")).posted == cny("25.00")
        assert (await ledger.find_entry(conn, "api:treasury:sweep-1")) is not None


async def test_the_scope_is_ledger_write(api, issue_key):
    reader = await issue_key("finance", "ledger:read")
    r = await api.post(URL, json=transfer("1.00"), headers=headers(reader, "x"))
    body = is_problem(r, 403, "insufficient-scope")
    assert body["required_scope"] == "ledger:write"


async def test_each_entry_gets_its_own_refusal(api, db, issue_key):
    key = await issue_key("treasury", "ledger:write")
    bodies = {
        "ok-1": transfer("10.00"),
        "short": transfer("30.00", debit="2202.payable.s1", credit="1102.clearing.icbc"),
        "nowhere": transfer("1.00", credit="9999.nowhere"),
        "unbalanced": transfer("1.00") | {"postings": [leg("1102.clearing.icbc", "debit", "2.00"),
                                                       leg("2202.payable.s1", "credit", "1.00")]},
        "ok-2": transfer("5.00", debit="2202.payable.s1", credit="1102.clearing.icbc"),
    }
    answers = await asyncio.gather(*(api.post(URL, json=b, headers=headers(key, k))
                                     for k, b in bodies.items()))
    got = dict(zip(bodies, answers, strict=True))
    assert got["ok-1"].status_code == 201
    is_problem(got["nowhere"], 404, "unknown-account")
    is_problem(got["unbalanced"], 422, "unbalanced-entry")
    # s1 holds at most 10.00 whatever order the two debits took: 30.00 is refused alone
    limit = is_problem(got["short"], 422, "balance-limit-exceeded")
    assert limit["idempotency_key"] == "api:treasury:short"
    assert got["ok-2"].status_code in (201, 422)
    async with db.connect() as conn:
        report = await ledger.verify(conn)
        keys = set((await conn.scalars(sa.text("SELECT idempotency_key FROM journal_entries"))).all())
    assert report.ok
    assert "api:treasury:ok-1" in keys and "api:treasury:short" not in keys


async def test_a_closed_write_queue_is_503_with_retry_after_and_the_key_stays_free(
        api, app, db, issue_key):
    key = await issue_key("treasury", "ledger:write")
    coalescer = coalescer_of(app)
    await coalescer.close()
    r = await api.post(URL, json=transfer("3.00"), headers=headers(key, "later"))
    body = is_problem(r, 503, "coalescer-closed")
    assert r.headers["retry-after"] == "1"
    assert "retry with the same idempotency key" in body["detail"]
    coalescer.start()
    r = await api.post(URL, json=transfer("3.00"), headers=headers(key, "later"))
    assert r.status_code == 201, r.text


async def test_a_key_too_long_for_the_ledger_is_422(api, issue_key):
    key = await issue_key("treasury", "ledger:write")
    r = await api.post(URL, json=transfer("1.00"), headers=headers(key, "k" * 250))
    body = is_problem(r, 422, "idempotency-key-too-long")
    assert "at most 187 characters" in body["detail"]  # 200 less "api:treasury:"
    r = await api.post(URL, json=transfer("1.00"), headers=headers(key, "k" * 187))
    assert r.status_code == 201, r.text


async def test_the_app_lifespan_opens_and_settles_the_write_queue(app, db, issue_key):
    key = await issue_key("treasury", "ledger:write")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers = await asyncio.gather(*(
                client.post(URL, json=transfer("1.00"), headers=headers(key, f"l-{n}"))
                for n in range(12)))
        assert [a.status_code for a in answers] == [201] * 12
        assert coalescer_of(app).entries == 12
    with pytest.raises(ledger.CoalescerClosed):
        await coalescer_of(app).submit(ledger.EntryRequest("after", "x", []))
