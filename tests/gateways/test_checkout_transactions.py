"""How a checkout uses the database (#16): a bank's notification is verified (its
signature checked, CPU work) before any transaction opens, so no row lock waits on it;
creating an intent records the bank call in the same transaction as the attempt, and that
transaction has committed before the bank hears of the attempt. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from gateways import IntentState
from gateways.schema import bank_calls

from .core_env import available_banks, checkout_env


@contextmanager
def open_transactions(engine: AsyncEngine) -> Iterator[dict[str, int]]:
    """Counts of transactions begun, committed and rolled back on `engine` (and how many
    are open now: begun - committed - rolled back)."""
    seen = {"begun": 0, "committed": 0, "rolled_back": 0}

    def begun(*_: Any) -> None:
        seen["begun"] += 1

    def committed(*_: Any) -> None:
        seen["committed"] += 1

    def rolled_back(*_: Any) -> None:
        seen["rolled_back"] += 1

    target = engine.sync_engine
    hooks = (("begin", begun), ("commit", committed), ("rollback", rolled_back))
    for name, fn in hooks:
        event.listen(target, name, fn)
    try:
        yield seen
    finally:
        for name, fn in hooks:
            event.remove(target, name, fn)


def now_open(seen: dict[str, int]) -> int:
    return seen["begun"] - seen["committed"] - seen["rolled_back"]


@pytest.mark.parametrize("bank", available_banks())
async def test_a_notification_is_verified_before_any_transaction_opens(db, bank):
    async with checkout_env(db, (bank,)) as env:
        await env.terms()
        adapter: Any = env.banks.get(bank)
        verify = adapter.parse_notification
        open_at_verify: list[int] = []
        with open_transactions(db) as seen:
            def watched(headers: Any, body: bytes) -> Any:
                open_at_verify.append(now_open(seen))
                return verify(headers, body)

            adapter.parse_notification = watched
            co = await env.checkout("42.00", bank=bank)
            await env.pay(co)
            await env.fleet.drain()
        assert (await env.intent(co.intent.id)).status is IntentState.SUCCEEDED
        assert open_at_verify and set(open_at_verify) == {0}


@pytest.mark.parametrize("bank", available_banks())
async def test_the_bank_hears_of_an_attempt_after_its_call_record_committed(db, bank):
    async with checkout_env(db, (bank,)) as env:
        await env.terms()
        adapter: Any = env.banks.get(bank)
        create = adapter.create_payment
        recorded: list[int] = []

        async def watched(order: Any) -> Any:
            # another connection sees the call: it committed before the bank is asked
            async with db.connect() as conn:
                recorded.append(len((await conn.execute(sa.select(bank_calls).where(
                    bank_calls.c.subject_id == order.attempt_id))).all()))
            return await create(order)

        adapter.create_payment = watched
        with open_transactions(db) as seen:
            co = await env.checkout("42.00", bank=bank)
        assert co.intent.status is IntentState.PENDING
        assert recorded == [1]
        # one transaction records the intent, its attempt and the call; one more marks
        # the attempt sent (nothing else commits on the way)
        assert seen["committed"] == 2


@pytest.mark.parametrize("bank", available_banks())
async def test_the_capture_entry_is_the_last_statement_before_commit(db, bank, monkeypatch):
    """The capture locks the hot accounts (the bank's clearing, the commission): nothing
    else runs between it and COMMIT, so their rows are held for as short as can be."""
    import ledger

    async with checkout_env(db, (bank,)) as env:
        await env.terms()
        co = await env.checkout("42.00", bank=bank)
        trail: list[str] = []
        real_post = ledger.post

        async def post(conn: Any, request: Any) -> Any:
            entry = await real_post(conn, request)
            trail.append(f"post {request.kind}")
            return entry

        def statement(_conn: Any, _cursor: Any, text: str, *_: Any) -> None:
            if trail and not trail[-1].startswith("sql"):
                trail.append(f"sql {text.split()[0]}")

        def committed(*_: Any) -> None:
            trail.append("commit")

        monkeypatch.setattr(ledger, "post", post)
        event.listen(db.sync_engine, "before_cursor_execute", statement)
        event.listen(db.sync_engine, "commit", committed)
        try:
            await env.pay(co)
            await env.fleet.drain()
        finally:
            event.remove(db.sync_engine, "before_cursor_execute", statement)
            event.remove(db.sync_engine, "commit", committed)
        assert (await env.intent(co.intent.id)).status is IntentState.SUCCEEDED
        at = trail.index("post payment.capture")
        assert trail[at + 1] == "commit", trail
