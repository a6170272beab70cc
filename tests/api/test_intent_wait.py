"""`GET /v1/payment-intents/{id}?wait=N`: the shop's return page asks once and is answered
when the bank's notification moves the intent, in whichever worker process it lands; on
SQLite and PostgreSQL. The notification handler announces the move after its commit
(`gateways.intent_changes.announce`): this process's waiters directly, other processes'
through PostgreSQL's LISTEN/NOTIFY, heard here by another engine's listener as by another
process's."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

import gateways
from gateways.intent_changes import announce
from paycore import db as paycore_db
from tests.api.conftest import bearer, is_problem
from tests.api.test_payments import order, shop
from tests.conftest import url_of


async def _watch_with(s, changes: gateways.IntentChanges) -> None:
    """The app's watch replaced (the one it had closed first)."""
    old = getattr(s.app.state, "intent_changes", None)
    if old is not None:
        await old.close()
    s.app.state.intent_changes = changes


async def test_the_return_page_is_answered_when_the_notification_lands(db, issue_key):
    key = await issue_key("shop-a", "payments:read", "payments:write")
    other = await issue_key("shop-b", "payments:read")
    async with shop(db) as s:
        # waiters read again only every 60 s here: only the announcement can wake them
        await _watch_with(s, gateways.IntentChanges(db, recheck=dt.timedelta(seconds=60)))
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
        await _watch_with(s, gateways.IntentChanges(db, recheck=dt.timedelta(seconds=0.2)))
        r = await s.post("/v1/payment-intents", key, "c-2", order(2, "restbank"))
        pending = r.json()["id"]
        r = await s.client.get(f"/v1/payment-intents/{pending}", params={"wait": 1},
                               headers=bearer(key))
        assert r.status_code == 200 and r.json()["status"] == "pending"
        # a process that keeps as many waiters as it takes answers at once
        await _watch_with(s, gateways.IntentChanges(db, max_waiters=0))
        r = await asyncio.wait_for(s.client.get(
            f"/v1/payment-intents/{pending}", params={"wait": 30}, headers=bearer(key)), 10)
        assert r.status_code == 200 and r.json()["status"] == "pending"
        for bad in ("31", "-1", "soon"):
            is_problem(await s.client.get(path, params={"wait": bad}, headers=bearer(key)),
                       422, "validation-failed")


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_a_move_announced_by_another_process_wakes_the_waiter_at_once(db):
    """The waiter re-reads only every 60 s here: only the NOTIFY can wake it. Its listener
    is a connection of its own, not one of the engine's pool, and stops when closed."""
    elsewhere = paycore_db.create_engine(url_of(db))  # another process's engine
    changes = gateways.IntentChanges(db, recheck=dt.timedelta(seconds=60))
    try:
        async with changes.watching("pi-watched") as moved:
            assert moved is not None
            assert db.pool.checkedout() == 0  # the listener took no slot of the pool
            waiting = asyncio.create_task(moved.wait(dt.timedelta(seconds=60)))
            await announce(elsewhere, "pi-other")  # another intent wakes no one
            done, _ = await asyncio.wait({waiting}, timeout=1)
            assert not done
            await announce(elsewhere, "pi-watched")
            await asyncio.wait_for(waiting, 20)
            listener = changes._driver  # the listening connection, to look at after close
    finally:
        await changes.close()
        await elsewhere.dispose()
    assert listener is not None and listener.is_closed()


async def test_one_merchant_cannot_take_every_waiter(db):
    """Waits are capped per process and per merchant: one merchant's key holding its
    share of open waits does not turn every other merchant's waits into instant answers."""
    changes = gateways.IntentChanges(db, max_per_owner=1)
    try:
        async with changes.watching("pi-a", "m1") as first:
            assert first is not None
            async with changes.watching("pi-b", "m1") as second:
                assert second is None  # answered at once
            async with changes.watching("pi-b", "m2") as other:
                assert other is not None
        async with changes.watching("pi-c", "m1") as again:  # its share was given back
            assert again is not None
    finally:
        await changes.close()
