"""Many writers over a handful of accounts, so that they collide on every lock."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections import Counter
from decimal import Decimal

import sqlalchemy as sa

import ledger
from ledger import AccountSpec, AccountType, BalanceLimit, EntryRequest, HoldRequest, Posting
from paycore import db as paycore_db
from tests.conftest import drop_schema, make_engine
from tests.ledger.chart import cny

WRITERS = 32
ROUNDS = 12
LIMITED = BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS


async def _run(backend: str, tmp_path) -> None:
    engine, schema = await make_engine(backend, tmp_path, pool_size=WRITERS + 8, max_overflow=0)
    try:
        await paycore_db.upgrade(engine)
        async with engine.begin() as conn:
            funding = await ledger.open_account(
                conn, AccountSpec("3001.capital", "Capital", AccountType.EQUITY, "CNY"))
            wallets = [await ledger.open_account(conn, AccountSpec(
                f"2202.wallet.{i}", f"Wallet {i}", AccountType.LIABILITY, "CNY",
                balance_limit=LIMITED)) for i in range(5)]
            await ledger.post_many(conn, [EntryRequest(f"fund-{w.id}", "fund", [
                Posting(funding.id, debit=cny("100.00")), Posting(w.id, credit=cny("100.00"))])
                for w in wallets])
        acknowledged: list[object] = []
        rejected = Counter[str]()

        async def writer(n: int) -> None:
            rng = random.Random(n)
            for r in range(ROUNDS):
                a, b = rng.sample(wallets, 2)
                amount = cny(str(Decimal(rng.randint(1, 4000)).scaleb(-2)))
                key = f"w{n}-r{r}"
                choice = rng.random()
                try:
                    if choice < 0.7:
                        request = EntryRequest(key, "transfer", [Posting(a.id, debit=amount),
                                                                 Posting(b.id, credit=amount)])

                        async def post(conn, request=request):
                            return await ledger.post(conn, request)
                        entry = await ledger.transact(engine, post)
                        acknowledged.append(entry.id)
                        if rng.random() < 0.3:  # a client retrying after a lost reply
                            again = await ledger.transact(engine, post)
                            assert again.replayed and again.id == entry.id
                    else:
                        hold_request = HoldRequest(key, "transfer.hold", [
                            Posting(a.id, debit=amount), Posting(b.id, credit=amount)],
                            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))

                        async def reserve(conn, hold_request=hold_request):
                            return await ledger.hold(conn, hold_request)
                        held = await ledger.transact(engine, reserve)
                        if choice < 0.85:
                            async def settle(conn, hold_id=held.id):
                                return await ledger.post_hold(conn, hold_id)
                            acknowledged.append((await ledger.transact(engine, settle)).id)
                        else:
                            async def release(conn, hold_id=held.id):
                                return await ledger.void_hold(conn, hold_id)
                            await ledger.transact(engine, release)
                except ledger.BalanceLimitExceeded:
                    rejected["limit"] += 1

        await asyncio.gather(*(writer(n) for n in range(WRITERS)))

        async with engine.connect() as conn:
            per_account = dict((await conn.execute(sa.text(
                "SELECT account_id, sum(amount) FROM postings GROUP BY account_id"))).all())
            balances = (await conn.execute(sa.text(
                "SELECT account_id, posted_debits, posted_credits, pending_debits, pending_credits"
                " FROM account_balances"))).all()
            per_currency = (await conn.execute(sa.text(
                "SELECT currency, sum(amount) FROM postings GROUP BY currency"))).all()
            # SQLite's raw rows carry the id as hex text
            stored_ids = Counter(uuid.UUID(str(i)) for i in (await conn.execute(sa.text(
                "SELECT id FROM journal_entries WHERE kind LIKE 'transfer%'"))).scalars())
            report = await ledger.verify(conn)
        for account_id, debits, credits, pending_debits, pending_credits in balances:
            assert debits - credits == per_account.get(account_id, 0)
            assert pending_debits == pending_credits == 0
            if account_id != funding.id:
                assert debits <= credits, f"limit broken on account {account_id}"
        assert all(total == 0 for _, total in per_currency)
        assert Counter(acknowledged) == stored_ids, "an acknowledged entry is missing or doubled"
        assert all(n == 1 for n in stored_ids.values())
        assert report.ok, report.discrepancies
        # the run really collided with the limits and really posted
        assert rejected["limit"] > 0 and len(stored_ids) > WRITERS * ROUNDS // 3
    finally:
        await engine.dispose()
        if schema:
            await drop_schema(schema)


async def test_32_writers_on_postgresql(tmp_path):
    await _run("postgresql", tmp_path)


async def test_32_writers_on_sqlite(tmp_path):
    await _run("sqlite", tmp_path)
