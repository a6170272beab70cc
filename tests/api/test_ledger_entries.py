"""POST /v1/ledger/entries (scope ledger:write): internal services post entries through
the app's coalescing write path (`ledger.Coalescer`), on SQLite and PostgreSQL. The
domains' own kinds are refused, and accounts are the services' own (9xxx) and the
prefixes the operator allows (here, for most tests, clearing and payables)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import ledger
from paycore.api.ledger import coalescer_of
from tests.api.conftest import bearer, is_problem, make_app
from tests.ledger.chart import cny, open_chart

URL = "/v1/ledger/entries"
#: what the operator of these tests lets the internal service post to
ALLOWED = ("1102.clearing.", "2202.payable.")


@pytest.fixture
async def app(db):
    await open_chart(db)
    return make_app(db, ledger_accounts=ALLOWED)


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


@pytest.mark.parametrize("kind", ["payment.capture", "payment.capture.reversal", "payout.return",
                                  "payout", "loan.accrual", "recon.write_off", "bank.fee",
                                  "settlement.supplier", "refund:x"])
async def test_the_domains_own_kinds_are_refused(api, db, issue_key, kind):
    key = await issue_key("treasury", "ledger:write")
    r = await api.post(URL, json=transfer("1.00") | {"kind": kind}, headers=headers(key, kind))
    body = is_problem(r, 422, "reserved-kind")
    family = kind.replace(":", ".").split(".")[0]
    assert body["reserved_prefix"] == family + "." and f"'{family}.*'" in body["detail"]
    async with db.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM journal_entries")) == 0


async def test_by_default_only_the_services_own_accounts_take_entries(db, issue_key):
    await open_chart(db)
    async with db.begin() as conn:
        for code in ("9101.service.float", "9102.service.suspense"):
            await ledger.open_account(conn, ledger.AccountSpec(code, code, ledger.AccountType.ASSET,
                                                               "CNY"))
    transport = httpx.ASGITransport(app=make_app(db))  # no PAYCORE_LEDGER_API_ACCOUNTS
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        key = await issue_key("treasury", "ledger:write")
        r = await client.post(URL, json=transfer("1.00"), headers=headers(key, "payable"))
        body = is_problem(r, 403, "account-not-allowed")
        assert body["accounts"] == ["1102.clearing.icbc", "2202.payable.s1"]
        r = await client.post(URL, json=transfer("1.00", debit="9101.service.float",
                                                 credit="9102.service.suspense"),
                              headers=headers(key, "own"))
        assert r.status_code == 201, r.text
    async with db.connect() as conn:
        assert (await ledger.balance(conn, "2202.payable.s1")).posted == cny("0.00")
        assert (await ledger.balance(conn, "9101.service.float")).posted == cny("1.00")


def test_the_allowed_accounts_come_from_the_environment(monkeypatch):
    from paycore.api import ApiSettings

    monkeypatch.setenv("PAYCORE_LEDGER_API_ACCOUNTS", " 1102.clearing., 2202.payable.s1 ,")
    assert ApiSettings.from_env().ledger_accounts == ("1102.clearing.", "2202.payable.s1")
    monkeypatch.delenv("PAYCORE_LEDGER_API_ACCOUNTS")
    assert ApiSettings.from_env().ledger_accounts == ()


@pytest.mark.parametrize("text", ["\\ud83d\\ude00 mugs", "\\\\ud800 is how JSON escapes it"],
                         ids=["surrogate-pair", "escaped-backslash"])
async def test_text_that_only_looks_like_a_lone_surrogate_is_taken(api, issue_key, text):
    """The guard refuses lone surrogates (tests/redteam), not a pair, nor a literal
    backslash-u in the text."""
    key = await issue_key("treasury", "ledger:write")
    body = transfer("1.00")
    raw = json.dumps(body | {"metadata": {"note": "@"}}).replace('"@"', f'"{text}"')
    r = await api.post(URL, content=raw.encode(), headers=headers(key, text[:8]) | {
        "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["metadata"]["note"] == json.loads(f'"{text}"')


async def test_each_merchants_entry_key_is_its_own(api, issue_key):
    """`api:<merchant>:<key>` is kept for merchant ids without ':' (keys of records made
    before stay the same); a merchant id with ':' is written with its length."""
    plain = await issue_key("m", "ledger:write")
    coloned = await issue_key("m:x", "ledger:write")
    first = await api.post(URL, json=transfer("1.00"), headers=headers(plain, "x:k1"))
    second = await api.post(URL, json=transfer("1.00"), headers=headers(coloned, "k1"))
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert first.json()["idempotency_key"] == "api:m:x:k1"
    assert second.json()["idempotency_key"] == "api#3:m:x:k1"
