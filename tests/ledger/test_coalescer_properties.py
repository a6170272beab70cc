"""Property: whatever mix of requests is submitted together (valid, unbalanced, naming an
unknown account, a currency its account is not kept in, past a balance limit, a key twice
with the same or another request), the coalescer answers each exactly as posting them one
by one with `ledger.post` in the same order does, with one writer or several at once, and
stores the same entries (postings, sequence numbers, running balances, request hashes'
inputs) byte for byte.

Both sides run on one database per test (hypothesis does not run async tests: one event
loop, `asyncio.Runner`), each example on accounts and keys of its own, told apart by a
prefix that the comparison takes out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
from ledger import AccountSpec, AccountType, BalanceLimit, EntryRequest, Posting
from tests.conftest import drop_database, make_migrated_engine
from tests.ledger.chart import cny

T = TypeVar("T")
VALUE_DATE = dt.date(2026, 11, 2)

#: (suffix, type, currency, limit)
ACCOUNTS = [
    ("cash", AccountType.ASSET, "CNY", None),
    ("wallet.1", AccountType.LIABILITY, "CNY", BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS),
    ("wallet.2", AccountType.LIABILITY, "CNY", BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS),
    ("fees", AccountType.INCOME, "CNY", None),
    ("usd", AccountType.ASSET, "USD", None),
]

#: one request: (what, wallet 1 or 2, amount in fen, key number, description number)
Op = tuple[str, int, int, int, int]
ops = st.tuples(
    st.sampled_from(["fund", "fund", "spend", "spend", "spend", "fee", "unbalanced",
                     "unknown", "mismatch", "repeat"]),
    st.integers(1, 2), st.integers(1, 400), st.integers(0, 11), st.integers(0, 1),
)


def fen(units: int) -> Money:
    return cny(f"{units // 100}.{units % 100:02d}")


def build(prefix: str, mix: list[Op]) -> list[EntryRequest]:
    """The requests of a mix, on the accounts and keys of `prefix`."""
    out: list[EntryRequest] = []
    for what, wallet, units, key_no, desc in mix:
        if what == "repeat":
            if out:  # the very request again: a replay if it was posted
                out.append(out[key_no % len(out)])
            continue
        cash, purse = f"{prefix}.cash", f"{prefix}.wallet.{wallet}"
        legs = {
            "fund": [Posting(cash, debit=fen(units)), Posting(purse, credit=fen(units))],
            "spend": [Posting(purse, debit=fen(units)), Posting(cash, credit=fen(units))],
            "fee": [Posting(purse, debit=fen(units)), Posting(f"{prefix}.fees", credit=fen(units))],
            "unbalanced": [Posting(cash, debit=fen(units + 1)), Posting(purse, credit=fen(units))],
            "unknown": [Posting(cash, debit=fen(units)), Posting(f"{prefix}.nowhere",
                                                                credit=fen(units))],
            "mismatch": [Posting(f"{prefix}.usd", debit=fen(units)), Posting(cash,
                                                                           credit=fen(units))],
        }[what]
        out.append(EntryRequest(f"{prefix}:k{key_no}", f"test.{what}", legs,
                                effective_date=VALUE_DATE, description=f"d{desc}"))
    return out


def outcome(x: Any, prefix: str) -> tuple[Any, ...]:
    if isinstance(x, ledger.LedgerError):
        return ("refused", type(x).__name__, str(x).replace(prefix, "P"))
    assert isinstance(x, ledger.JournalEntry), repr(x)
    return ("replayed" if x.replayed else "posted", x.idempotency_key.replace(prefix, "P"),
            tuple((p.account_code.replace(prefix, "P"), p.amount, p.account_seq,
                   p.balance_after) for p in x.postings))


async def stored(engine: AsyncEngine, prefix: str) -> str:
    """A digest of what `prefix`'s side stored: its entries with their postings, and its
    accounts' balance rows, the prefix taken out."""
    async with engine.connect() as conn:
        entries = (await conn.execute(sa.text(
            "SELECT e.idempotency_key, e.kind, e.description, e.effective_date, e.external_ref,"
            " p.leg_no, a.code, p.amount, p.currency, p.account_seq, p.balance_after,"
            " p.effective_date"
            " FROM journal_entries e JOIN postings p ON p.entry_id = e.id"
            " JOIN accounts a ON a.id = p.account_id"
            " WHERE e.idempotency_key LIKE :like ORDER BY e.idempotency_key, p.leg_no"),
            {"like": prefix + ":%"})).all()
        balances = (await conn.execute(sa.text(
            "SELECT a.code, b.posted_debits, b.posted_credits, b.pending_debits,"
            " b.pending_credits, b.seq FROM account_balances b"
            " JOIN accounts a ON a.id = b.account_id WHERE a.code LIKE :like ORDER BY a.code"),
            {"like": prefix + ".%"})).all()
    text = json.dumps([[str(v) for v in row] for row in [*entries, *balances]])
    return hashlib.sha256(text.replace(prefix, "P").encode()).hexdigest()


async def one_by_one(engine: AsyncEngine, requests: list[EntryRequest]) -> list[Any]:
    out: list[Any] = []
    for request in requests:
        try:
            async with engine.begin() as conn:
                out.append(await ledger.post(conn, request))
        except ledger.LedgerError as exc:
            out.append(exc)
    return out


async def coalesced(engine: AsyncEngine, requests: list[EntryRequest], max_batch: int,
                    writers: int) -> list[Any]:
    coalescer = ledger.Coalescer(engine, max_batch=max_batch, writers=writers)
    try:
        return await asyncio.gather(*(coalescer.submit(r) for r in requests),
                                    return_exceptions=True)
    finally:
        await coalescer.close()


async def open_accounts(engine: AsyncEngine, prefix: str) -> None:
    async with engine.begin() as conn:
        for suffix, kind, currency, limit in ACCOUNTS:
            await ledger.open_account(conn, AccountSpec(
                f"{prefix}.{suffix}", suffix, kind, currency, balance_limit=limit))


class Harness:
    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.loop = asyncio.Runner()
        self.engine, self.schema = self.run(make_migrated_engine(backend, tmp_path, pool_size=4))

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run(awaitable)  # type: ignore[arg-type]

    def close(self) -> None:
        async def drop() -> None:
            await self.engine.dispose()
            if self.schema:
                await drop_database(self.schema)

        try:
            self.run(drop())
        finally:
            self.loop.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_coalesced_mixes_answer_and_store_as_one_by_one_posts(backend: str,
                                                             tmp_path: Path) -> None:
    harness = Harness(backend, tmp_path)
    seen: dict[str, int] = {}

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(mix=st.lists(ops, min_size=1, max_size=24),
           max_batch=st.sampled_from([1, 2, 5, 500]), writers=st.sampled_from([1, 3]))
    def check(mix: list[Op], max_batch: int, writers: int) -> None:
        run = uuid.uuid4().hex[:10]
        alone, together = f"a{run}", f"b{run}"

        async def example() -> None:
            await open_accounts(harness.engine, alone)
            await open_accounts(harness.engine, together)
            expected = await one_by_one(harness.engine, build(alone, mix))
            got = await coalesced(harness.engine, build(together, mix), max_batch, writers)
            assert [outcome(x, together) for x in got] == [outcome(x, alone) for x in expected]
            assert await stored(harness.engine, together) == await stored(harness.engine, alone)
            for x in expected:
                name = type(x).__name__ if isinstance(x, ledger.LedgerError) else (
                    "replayed" if x.replayed else "posted")
                seen[name] = seen.get(name, 0) + 1

        harness.run(example())

    try:
        check()
        async def proof() -> ledger.VerifyReport:
            async with harness.engine.connect() as conn:
                return await ledger.verify(conn)
        report = harness.run(proof())
        assert report.ok, report.discrepancies
    finally:
        harness.close()
    # the mixes reached every kind of outcome
    assert {"posted", "replayed", "BalanceLimitExceeded", "UnbalancedEntry", "UnknownAccount",
            "CurrencyMismatch", "IdempotencyConflict"} <= seen.keys(), seen
