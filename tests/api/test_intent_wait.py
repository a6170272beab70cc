"""`GET /v1/payment-intents/{id}?wait=N`: the shop's return page asks once and is answered
when the bank's notification moves the intent, in whichever worker process it lands; on
SQLite and PostgreSQL. On PostgreSQL the move wakes the waiter through LISTEN/NOTIFY (the
trigger of migration 0035), heard by another engine's listener as by another process's."""

from __future__ import annotations

import asyncio

import pytest

import gateways
from gateways.schema import payment_intents
from tests.api.conftest import bearer, is_problem
from tests.api.test_payments import order, shop


async def test_the_return_page_is_answered_when_the_notification_lands(db, issue_key):
    key = await issue_key("shop-a", "payments:read", "payments:write")
    other = await issue_key("shop-b", "payments:read")
    async with shop(db) as s:
        r = await s.post("/v1/payment-intents", key, "c-1", order(1, "restbank"))
        assert r.status_code == 201 and r.json()["status"] == "pending", r.text
        intent = r.json()
        path = f"/v1/payment-intents/{intent['id']}"
        waiting = asyncio.create_task(s.client.get(path, params={"wait": 30},
                                                   headers=bearer(key), timeout=60))
        # not answered while the customer is still at the bank
        done, _ = await asyncio.wait({waiting}, timeout=0.5)
        assert not done
        await s.pay(intent)
        answered = await asyncio.wait_for(waiting, 20)  # far less than the 30 s asked
        assert answered.status_code == 200
        assert answered.json()["status"] == "succeeded", answered.json()
        # a final intent is answered at once, waiting or not; another merchant's is a 404
        r = await s.client.get(path, params={"wait": 30}, headers=bearer(key))
        assert r.json()["status"] == "succeeded"
        is_problem(await s.client.get(path, params={"wait": 5}, headers=bearer(other)), 404,
                   "intent-not-found")
        # a pending intent no one pays is answered as it is once the wait is over
        r = await s.post("/v1/payment-intents", key, "c-2", order(2, "restbank"))
        r = await s.client.get(f"/v1/payment-intents/{r.json()['id']}", params={"wait": 1},
                               headers=bearer(key))
        assert r.status_code == 200 and r.json()["status"] == "pending"
        for bad in ("31", "-1", "soon"):
            is_problem(await s.client.get(path, params={"wait": bad}, headers=bearer(key)),
                       422, "validation-failed")


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_a_status_change_committed_elsewhere_wakes_the_waiter_at_once(db, issue_key):
    """The waiter re-reads only every 60 s here: only the notification can wake it."""
    key = await issue_key("shop-a", "payments:read", "payments:write")
    async with shop(db) as s:
        ids = []
        for n in (1, 2):
            r = await s.post("/v1/payment-intents", key, f"c-{n}", order(n, "restbank"))
            ids.append(r.json()["id"])
    changes = gateways.IntentChanges(db, recheck=60)
    listener = None
    try:
        async with changes.watching(ids[0]) as moved:
            waiting = asyncio.create_task(moved.wait(60))
            listener = changes._driver  # the listening connection, to look at after close
            # another intent moving, and a move rolled back, wake no one
            async with db.begin() as conn:
                await conn.execute(payment_intents.update().where(
                    payment_intents.c.id == ids[1]).values(status="expired"))
            conn_ = await db.connect()
            tx = await conn_.begin()
            await conn_.execute(payment_intents.update().where(
                payment_intents.c.id == ids[0]).values(status="expired"))
            await tx.rollback()
            await conn_.close()
            done, _ = await asyncio.wait({waiting}, timeout=1)
            assert not done
            # the same change committed (here by another connection, as by another process)
            async with db.begin() as conn:
                await conn.execute(payment_intents.update().where(
                    payment_intents.c.id == ids[0]).values(status="expired"))
            await asyncio.wait_for(waiting, 20)
    finally:
        await changes.close()
    # the listening connection went back to the pool, no longer listening
    assert listener is not None and not listener.is_closed()
    assert await listener.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
