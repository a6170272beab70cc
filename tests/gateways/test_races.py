"""Two racing writers cannot both win: the same notification delivered twice at once is
applied once, and two compare-and-set transitions of one record let exactly one through.
On PostgreSQL the racers are truly concurrent (row locks); SQLite serializes writers."""

from __future__ import annotations

import asyncio

import pytest

import gateways
from gateways import AttemptState, IntentState
from gateways.sandbox import TxnKind
from gateways.store import transition

from .core_env import checkout_env


async def test_the_same_notification_racing_itself_is_applied_once(db):
    # no receiver: the bank's deliveries fail, and we hold the signed notification
    async with checkout_env(db, receiver=False) as env:
        await env.terms()
        co = await env.checkout("42.00")
        await env.pay(co)
        await env.fleet.drain()
        bank = env.fleet.bank("restbank")
        delivery = next(d for d in bank.notifier.deliveries if d.reference == co.attempt.id)
        replies = await asyncio.gather(*[
            gateways.handle_notification(db, env.banks, "restbank", delivery.headers,
                                         delivery.body) for _ in range(4)])
        assert [r.status_code for r in replies] == [200] * 4
        assert len(await env.entries("payment.capture")) == 1
        assert sorted(await env.rejections()) == ["duplicate"] * 3
        intent = await env.intent(co.intent.id)
        assert intent.status is IntentState.SUCCEEDED and intent.captured_minor == 4200
        assert bank.find(TxnKind.PAYMENT, co.attempt.id).amount_minor == 4200
        await env.assert_agrees_with_banks()


async def test_two_compare_and_sets_of_one_record_one_wins(db):
    async with checkout_env(db, receiver=False) as env:
        await env.terms()
        co = await env.checkout("1.00")
        gate = asyncio.Event()

        async def racer(target: AttemptState) -> str:
            async with db.begin() as conn:
                await gate.wait()
                try:
                    await transition(conn, co.attempt.id, AttemptState.PENDING, target)
                except gateways.ConcurrentTransition:
                    return "lost"
                return "won"

        if db.dialect.name == "sqlite":
            # one writer at a time: the second begins after the first committed
            gate.set()
            results = [await racer(AttemptState.SUCCEEDED), await racer(AttemptState.FAILED)]
        else:
            tasks = [asyncio.create_task(racer(t))
                     for t in (AttemptState.SUCCEEDED, AttemptState.FAILED)]
            await asyncio.sleep(0)
            gate.set()
            results = await asyncio.gather(*tasks)
        assert sorted(results) == ["lost", "won"]


async def test_illegal_transition_is_refused_before_any_write(db):
    async with checkout_env(db, receiver=False) as env:
        await env.terms()
        co = await env.checkout("1.00")
        with pytest.raises(gateways.IllegalTransition) as caught:
            async with db.begin() as conn:
                await transition(conn, co.intent.id, IntentState.PENDING, IntentState.CAPTURED)
        assert caught.value.current == "pending" and caught.value.target == "captured"
        assert (await env.intent(co.intent.id)).status is IntentState.PENDING
