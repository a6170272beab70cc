"""Red team (review of the 2026-12-07 changes: notification rate limit, long-poll intents,
bank calls recorded in the move into flight, four eyes for makers). Each test here fails
on the code as reviewed; its docstring says what goes wrong and why it matters.
SQLite and PostgreSQL unless a test says otherwise."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateways.schema import notification_rejections
from paycore.schema import api_rate_limits
from tests.api.test_payments import shop

# -- 1. the notification rate limit ---------------------------------------------------------


async def _rejections(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(
            sa.select(sa.func.count()).select_from(notification_rejections)))


async def _counted(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(api_rate_limits.c.hits), 0))))


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_a_forged_notification_that_breaks_the_rejection_insert_is_still_counted(db):
    """The address's count is now added to *after* the work (`ratelimit.hit` only when
    `reply.unverified`), so a forged notification whose handling raises is never counted.
    On PostgreSQL one such body is `%00=1&%00=1` to the UnionPay endpoint: the form decoder
    refuses the duplicate field with "field \\x00 appears more than once"
    (gateways/protocols/unionpay.py _unique, the name not repr'd), `_reject` writes that
    text to `notification_rejections.detail`, PostgreSQL refuses the NUL, the request is a
    500 — and nothing is counted. The guard's NUL check sees only a raw NUL or a JSON
    `\\u0000`, not a percent-encoded one. So anyone can send unverified notifications
    without limit (each a signature-less parse, a failed INSERT and an error log with a
    traceback), and none of them is kept for a person to see. Before this change the hit
    came first and counted every one."""
    async with shop(db, notification_rate_limit=2,
                    notification_rate_window_seconds=3600) as s:
        codes = []
        for _ in range(5):
            r = await s.client.post("/v1/notifications/unionpay", content=b"%00=1&%00=1",
                                    headers={"content-type":
                                             "application/x-www-form-urlencoded"})
            codes.append(r.status_code)
        # two count, then the address is refused unread, as for any other forged body
        assert codes[2:] == [429, 429, 429], (codes, await _counted(db))


async def test_concurrent_forged_notifications_are_held_to_the_limit(db):
    """`peek` (a read) before the work and `hit` after it are not one step: every forged
    notification that arrives while the others are still being verified reads the same
    count below the limit and goes on to a signature check and a rejection row. With the
    limit at 2, of thirty sent at once from one address 23 (SQLite) and 30 (PostgreSQL)
    got through, each a rejection row (before the change the upsert came first and
    counted each: two passed, the rest were 429). The overshoot is as large as the number
    of requests an attacker keeps in flight, every window."""
    import asyncio

    async with shop(db, notification_rate_limit=2,
                    notification_rate_window_seconds=3600) as s:
        replies = await asyncio.gather(*[
            s.client.post("/v1/notifications/restbank", content=b"garbage")
            for _ in range(30)])
        passed = sum(r.status_code != 429 for r in replies)
        assert await _rejections(db) <= 4 and passed <= 4, (passed, await _rejections(db))


# -- 2. long-poll GET /v1/payment-intents/{id}?wait=N -----------------------------------------


async def _pending_intent(db: AsyncEngine, merchant: str = "m-1") -> str:
    """A pending intent of `merchant` at the sandbox restbank that no one pays."""
    from tests.gateways.core_env import checkout_env

    async with checkout_env(db, ("restbank",)) as env:
        await env.terms()
        checkout = await env.checkout("12.00", merchant=merchant)
    assert checkout.intent.status.value == "pending", checkout.intent
    return checkout.intent.id


async def _key(db: AsyncEngine, merchant: str, *scopes: str) -> str:
    from paycore.api import create_api_key

    async with db.begin() as conn:
        return (await create_api_key(conn, merchant, scopes)).secret


async def test_a_long_poll_whose_client_hung_up_stops_waiting(db):
    """A waiter went on for the whole `wait` after its client had gone: get_intent
    (paycore/api/payments.py) never looked at the connection, and uvicorn does not cancel
    a handler when the connection drops. So a key holder could send `?wait=30` and hang up
    at once, over and over, for the cost of a request line each: every one left a waiter
    reading the intent every second (every 100 ms on SQLite) for 30 s, with no limit per
    key or per process. Here the waiter's own re-read comes only every 60 s and the wait
    asked is 30 s: only the hang-up can end the handler within the 20 s allowed."""
    import asyncio

    import gateways
    from tests.api.conftest import make_app

    intent_id = await _pending_intent(db)
    key = await _key(db, "m-1", "payments:read")
    app = make_app(db)
    app.state.intent_changes = gateways.IntentChanges(db, recheck=dt.timedelta(seconds=60))
    sent: list[dict[str, object]] = []
    asked = False
    gone = asyncio.Event()

    async def receive() -> dict[str, object]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}  # the client has gone

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": f"/v1/payment-intents/{intent_id}",
             "raw_path": f"/v1/payment-intents/{intent_id}".encode(),
             "query_string": b"wait=30", "root_path": "",
             "headers": [(b"host", b"paycore.test"),
                         (b"authorization", f"Bearer {key}".encode())],
             "client": ("203.0.113.9", 40000), "server": ("paycore.test", 80)}
    async with app.router.lifespan_context(app):
        handler = asyncio.create_task(app(scope, receive, send))
        done, _ = await asyncio.wait({handler}, timeout=0.5)
        assert not done  # waiting while the client is there
        gone.set()
        await asyncio.wait_for(handler, 20)
    assert sent and sent[0]["status"] == 200, sent


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_the_intent_listener_does_not_take_a_pool_slot_for_good(db):
    """The LISTEN connection is checked out of the API's own pool on the first wait and
    kept until shutdown (gateways/intent_changes.py `_listen`: `self._engine.connect()`).
    `paycore serve` sizes that pool with PAYCORE_DB_POOL_SIZE and no overflow: the
    listener permanently takes one of its slots, and with PAYCORE_DB_POOL_SIZE=1 the
    first `?wait=` request takes the only one — that request then waits for a connection
    it can never get, and so does every request after it: the worker is dead. (With the
    default 16 it is 1/16 of every worker's capacity.) The listener should have a
    connection of its own, outside the pool."""
    from paycore import db as paycore_db
    from tests.api.conftest import bearer, make_app
    from tests.conftest import url_of

    intent_id = await _pending_intent(db)
    key = await _key(db, "m-1", "payments:read")
    # a worker of `paycore serve` with PAYCORE_DB_POOL_SIZE=1 (pool_timeout short here)
    engine = paycore_db.create_engine(url_of(db), pool_size=1, max_overflow=0,
                                      pool_timeout=3)
    try:
        app = make_app(engine)
        async with (app.router.lifespan_context(app),
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                      base_url="http://paycore.test") as api):
            path = f"/v1/payment-intents/{intent_id}"
            r = await api.get(path, headers=bearer(key))
            assert r.status_code == 200, r.text
            waited = await api.get(path, params={"wait": 1}, headers=bearer(key))
            after = await api.get(path, headers=bearer(key))
        assert (waited.status_code, after.status_code) == (200, 200), (waited.text,
                                                                       after.text)
    finally:
        await engine.dispose()


# -- 4. four eyes -------------------------------------------------------------------------


async def test_an_overpayment_refund_asked_for_over_the_api_names_its_person(db, monkeypatch):
    """POST /v1/lending/loans/{id}/overpayment/refund asks for a manual supplier payout
    (above the threshold it waits for a second person) with `requested_by=key:<id>`
    (paycore/api/lending_overpayments.py: `actor=f"key:{principal.key_id}"`), whoever
    holds the key and whether or not the key names them — the maker-as-`key:<id>` hole
    e01e4bf closed for POST /v1/payouts, left open here. Carol asks for the refund with
    her lending:review key (holder "carol") and approves the payout herself as console
    (or `paycore payments approve --as carol`) user carol: four eyes see `key:…` and
    `user:carol`, two people, and the money goes. The route should take `person(...)`
    and pass `principal.actor`."""
    import gateways
    from paycore.api import create_api_key
    from paycore.payout_controls import controls_from_env
    from tests.api.conftest import bearer, make_app
    from tests.lending.book import days, good_borrower
    from tests.paycore.test_overpayments import overpaid
    from tests.paycore.test_settlement import verified_account

    monkeypatch.setenv("PAYCORE_PAYOUT_APPROVAL_ABOVE", "CNY:1.00")
    async with db.begin() as conn:
        await good_borrower(conn)
        await verified_account(conn)
    await overpaid(db)
    async with db.begin() as conn:
        carol = (await create_api_key(conn, "risk", ["lending:read", "lending:review"],
                                      holder="carol")).secret
    app = make_app(db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://paycore.test") as api:
        r = await api.post("/v1/lending/loans/L1/overpayment/refund",
                           headers=bearer(carol) | {"Idempotency-Key": "ovp-carol"},
                           json={"amount": {"amount": "10.00", "currency": "CNY"},
                                 "on": days(31).isoformat()})
    if r.status_code == 403:  # refused: a holder-less or a maker-only key, say — fine
        return
    assert r.status_code == 201, r.text
    payout_id = r.json()["payout_id"]
    assert r.json()["payout_status"] == "pending_approval", r.json()
    async with db.begin() as conn:
        record = await gateways.find_supplier_payout(conn, payout_id)
        assert record is not None
        try:
            await gateways.approve_payout(conn, payout_id, actor="user:carol",
                                          controls=controls_from_env())
        except gateways.FourEyesViolation:
            return  # held: the person who asked cannot approve
    raise AssertionError(f"carol asked for payout {payout_id} (recorded as "
                         f"{record.requested_by}) and approved it herself")
