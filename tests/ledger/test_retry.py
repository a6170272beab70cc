from __future__ import annotations

import asyncio
import contextlib

import pytest
import sqlalchemy as sa

import ledger
from tests.ledger.chart import cny, open_chart


async def test_transact_retries_a_deadlocked_unit_of_work(db):
    """Two units of work that lock two accounts in opposite orders: on PostgreSQL one is
    chosen as the deadlock victim and `transact` runs it again; on SQLite the write lock
    serializes them. Either way both commit, each exactly once."""
    chart = await open_chart(db)
    a, b = chart["1001.bank.icbc"].id, chart["3001.equity.capital"].id
    attempts = {"first": 0, "second": 0}
    locked = {"first": asyncio.Event(), "second": asyncio.Event()}

    def unit(name: str, first: int, second: int, other: str):
        async def work(conn):
            attempts[name] += 1
            lock = "SELECT 1 FROM account_balances WHERE account_id = :i" + (
                " FOR UPDATE" if conn.dialect.name == "postgresql" else "")
            await conn.execute(sa.text(lock), {"i": first})
            locked[name].set()
            if attempts[name] == 1:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(locked[other].wait(), 1)
            await conn.execute(sa.text(lock), {"i": second})
            return await ledger.post(conn, ledger.EntryRequest(
                f"unit-{name}", "test", [ledger.Posting(a, debit=cny(1)),
                                         ledger.Posting(b, credit=cny(1))]))
        return work

    one, two = await asyncio.gather(
        ledger.transact(db, unit("first", a, b, "second")),
        ledger.transact(db, unit("second", b, a, "first")),
    )
    assert not one.replayed and not two.replayed
    async with db.connect() as conn:
        assert (await ledger.balance(conn, a)).posted == cny(2)
        assert await conn.scalar(sa.text("SELECT count(*) FROM journal_entries")) == 2
    if db.dialect.name == "postgresql":
        assert sorted(attempts.values()) == [1, 2]


async def test_transact_does_not_retry_a_ledger_error(db):
    await open_chart(db)
    calls = 0

    async def work(conn):
        nonlocal calls
        calls += 1
        raise ledger.InvalidRequest("nope")

    with pytest.raises(ledger.InvalidRequest):
        await ledger.transact(db, work)
    assert calls == 1
