"""Red team: many processes and many people at once. Each test forces an interleaving of
two writers on separate connections (as two API or worker processes would be) and checks
what the books and the registers say afterwards.

`interleave(db, first, second)`: `first` runs in transaction A and stays uncommitted;
`second` then runs in transaction B on another connection until it finishes or is seen
waiting for a lock held by A (PostgreSQL's pg_stat_activity: no timing); A commits, then B.
That is the worst order for a check-then-write: B's checks read before A's write is
visible. SQLite serializes its writers (BEGIN IMMEDIATE): B runs after A committed."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import gateways
from gateways.schema import beneficiary_accounts

Work = Callable[[AsyncConnection], Awaitable[Any]]

T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


async def _waiting_on_lock(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return bool((await conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"))).scalar_one())


async def _run(engine: AsyncEngine, work: Work) -> Any:
    try:
        async with engine.begin() as conn:
            return await work(conn)
    except Exception as exc:  # the outcome is what the test looks at
        return exc


async def interleave(engine: AsyncEngine, first: Work, second: Work) -> tuple[Any, Any]:
    """(first's outcome, second's outcome): each a result or the exception it raised."""
    if engine.dialect.name == "sqlite":
        return await _run(engine, first), await _run(engine, second)
    async with engine.connect() as a:
        tx = await a.begin()
        try:
            one: Any = await first(a)
        except Exception as exc:
            await tx.rollback()
            one = exc
        b = asyncio.create_task(_run(engine, second))
        while not await _waiting_on_lock(engine):
            # B finished (it never waited for A), or is still on its way to a lock
            await asyncio.wait([b], timeout=0.01)
            if b.done():
                break
        if tx.is_active:
            await tx.commit()
    return one, await b


# -- the register: one account number, one supplier --------------------------------------


async def test_one_account_number_registered_for_two_suppliers_at_once(db):
    """Two people (two API workers) register the same IBAN at the same moment, one for
    each of two suppliers: the duplicate check of each read the register before the
    other's row was committed, and both rows stood — one bank account paid for two
    suppliers, the control `_refuse_duplicate` exists for."""
    number = "GB82WEST12345698765432"

    def register(supplier: str, actor: str) -> Work:
        return lambda conn: gateways.add_account(conn, supplier, holder_name="Silk",
                                                 account_number=number, actor=actor, now=T0)

    one, two = await interleave(db, register("sup-001", "user:alice"),
                                register("sup-002", "user:carol"))
    assert isinstance(one, gateways.BeneficiaryAccount)
    assert isinstance(two, gateways.DuplicateAccount), two
    async with db.connect() as conn:
        rows = (await conn.execute(sa.select(beneficiary_accounts.c.supplier_id))).scalars()
        assert sorted(rows) == ["sup-001"]


async def test_one_number_typed_into_two_suppliers_accounts_at_once(db):
    """The same race through a change of details: two existing accounts of two suppliers
    changed to one number at once."""
    number = "GB82WEST12345698765432"
    async with db.begin() as conn:
        a = await gateways.add_account(conn, "sup-001", holder_name="Silk", actor="user:alice",
                                       account_number="6222020200112233445", now=T0)
        b = await gateways.add_account(conn, "sup-002", holder_name="Silk", actor="user:alice",
                                       account_number="6222999988887777", now=T0)

    def change(account_id: str) -> Work:
        return lambda conn: gateways.change_account(conn, account_id, account_number=number,
                                                    actor="user:mallory", now=T0)

    one, two = await interleave(db, change(a.id), change(b.id))
    assert isinstance(one, gateways.BeneficiaryAccount)
    assert isinstance(two, gateways.DuplicateAccount), two
