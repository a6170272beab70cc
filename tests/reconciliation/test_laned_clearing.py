"""Reconciliation follows a clearing account split into lanes (#16.1): the follower that
copies the ledger's postings into book items keeps a cursor per (account, lane), so no
posting in any lane is skipped or copied twice — also when a lower lane's posting commits
after a higher lane's was already copied — and a statement against a laned clearing
account matches every line. Both databases; on PostgreSQL real sessions in real lanes."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
import reconciliation
from ledger import store
from ledger.schema import LANE_STRIDE, postings
from reconciliation.schema import book_items, sync_cursors
from tests.conftest import drop_database, make_migrated_engine
from tests.reconciliation.builders import (
    L,
    balance_of,
    camt053,
    capture,
    cny,
    refund,
    setup_bank,
)

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)
CLEARING = "1102.clearing.icbc"
LANES = 4


@asynccontextmanager
async def in_lane(engine: AsyncEngine, lane: int,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AsyncConnection]:
    """A transaction whose writes go to `lane` of every laned account (PostgreSQL: the
    session's lane slot for this transaction; SQLite: the lane draw fixed)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql(
                f"SELECT set_config('paycore.ledger_lane_slot', '{lane}', true)")
            yield conn
        else:
            with monkeypatch.context() as m:
                m.setattr(store._draw, "randrange", lambda n: lane % n)
                yield conn


async def _laned_bank(db: AsyncEngine, lanes: int = LANES) -> reconciliation.BankAccount:
    async with db.begin() as conn:
        bank = await setup_bank(conn)
        account = await ledger.get_account(conn, CLEARING)
        if account.lanes < lanes:
            await ledger.add_lanes(conn, CLEARING, lanes)
    return bank


async def _sync(db: AsyncEngine, bank: reconciliation.BankAccount) -> int:
    return await ledger.transact(db, lambda c: reconciliation.sync_book_items(c, bank),
                                 attempts=20)


async def _copied_exactly_once(db: AsyncEngine, bank: reconciliation.BankAccount) -> set[int]:
    """Every non-reconciliation posting on the clearing account is one book item, and no
    book item is anything else; returns the lanes the postings used."""
    async with db.connect() as conn:
        posted = (await conn.scalars(sa.select(postings.c.account_seq).where(
            postings.c.account_id == bank.clearing_id))).all()
        copied = (await conn.scalars(sa.select(book_items.c.account_seq).where(
            book_items.c.account_id == bank.clearing_id))).all()
    assert Counter(copied) == Counter(posted), (sorted(posted), sorted(copied))
    return {seq // LANE_STRIDE for seq in posted}


async def test_a_lower_lane_posted_after_a_higher_one_was_copied_is_not_skipped(
        db, monkeypatch) -> None:
    bank = await _laned_bank(db)
    added = []
    for i, lane in enumerate([3, 0, 2, 1, 3, 0, 1]):
        async with in_lane(db, lane, monkeypatch) as conn:
            await ledger.post(conn, capture("icbc", f"TXN-{i}", 1_000 * (i + 1), D1))
        added.append(await _sync(db, bank))
    assert added == [1] * 7  # each run copies exactly the posting made since the last
    assert await _sync(db, bank) == 0
    assert await _copied_exactly_once(db, bank) == {0, 1, 2, 3}
    async with db.connect() as conn:
        cursors = {(r.lane, r.last_seq) for r in await conn.execute(
            sa.select(sync_cursors).where(sync_cursors.c.account_id == bank.clearing_id))}
    # one cursor per lane, each at its lane's last posting
    assert cursors == {(0, 2), (1, LANE_STRIDE + 2), (2, 2 * LANE_STRIDE + 1),
                       (3, 3 * LANE_STRIDE + 2)}


async def test_a_reversal_in_another_lane_voids_its_original(db, monkeypatch) -> None:
    bank = await _laned_bank(db)
    async with in_lane(db, 2, monkeypatch) as conn:
        original = await ledger.post(conn, capture("icbc", "TXN-R", 7_700, D1))
    async with in_lane(db, 0, monkeypatch) as conn:
        await ledger.reverse(conn, original.id, idempotency_key="rev:TXN-R",
                             effective_date=D1)
    assert await _sync(db, bank) == 2  # both in one run
    # the original copied first (lane 3), its reversal in a lower lane in a later run
    async with in_lane(db, 3, monkeypatch) as conn:
        second = await ledger.post(conn, capture("icbc", "TXN-S", 8_800, D1))
    assert await _sync(db, bank) == 1
    async with in_lane(db, 1, monkeypatch) as conn:
        await ledger.reverse(conn, second.id, idempotency_key="rev:TXN-S", effective_date=D1)
    assert await _sync(db, bank) == 1
    async with db.connect() as conn:
        statuses = (await conn.scalars(sa.select(book_items.c.status).where(
            book_items.c.account_id == bank.clearing_id))).all()
    assert sorted(statuses) == ["void"] * 4


def _sale(txn: str, minor: int, supplier: str) -> ledger.EntryRequest:
    """A capture credited to one supplier alone (the concurrent writers below must not
    share a one-lane account, or the second would wait for the first)."""
    return ledger.EntryRequest(
        idempotency_key=f"capture:{txn}", kind="payment.capture", effective_date=D1,
        external_ref=txn, postings=[
            ledger.Posting(CLEARING, debit=cny(minor)),
            ledger.Posting(f"2202.payable.{supplier}", credit=cny(minor))])


async def test_a_posting_committed_late_in_a_lower_lane_is_copied_later(tmp_path) -> None:
    """PostgreSQL (SQLite has one writer at a time: nothing commits out of order there):
    session X posts in lane 0 and keeps its transaction open while session Y posts in
    lane 1 and commits; a run copies Y's posting; X commits; the next run copies X's."""
    engine, schema = await make_migrated_engine("postgresql", tmp_path)
    try:
        bank = await _laned_bank(engine)
        async with engine.begin() as conn:
            await ledger.open_account(conn, ledger.AccountSpec(
                "2202.payable.sup-2", "Supplier 2", ledger.AccountType.LIABILITY, "CNY"))
        async with engine.connect() as x:
            await x.begin()
            await x.exec_driver_sql("SELECT set_config('paycore.ledger_lane_slot', '0', true)")
            late = await ledger.post(x, _sale("TXN-LATE", 3_000, "sup-1"))
            async with engine.begin() as y:
                await y.exec_driver_sql(
                    "SELECT set_config('paycore.ledger_lane_slot', '1', true)")
                early = await ledger.post(y, _sale("TXN-EARLY", 5_000, "sup-2"))
            assert await _sync(engine, bank) == 1  # Y's: X's is not committed yet
            await x.commit()
        assert await _sync(engine, bank) == 1  # X's, in the lower lane, now committed
        assert await _sync(engine, bank) == 0
        assert await _copied_exactly_once(engine, bank) == {0, 1}
        assert [p.account_seq for p in late.postings if p.account_code == CLEARING] == [1]
        assert [p.account_seq for p in early.postings if p.account_code == CLEARING] == [
            LANE_STRIDE + 1]
    finally:
        await engine.dispose()
        if schema:
            await drop_database(schema)


async def test_many_sessions_writing_while_the_follower_runs_copy_each_posting_once(db) -> None:
    """Writers on their own connections (PostgreSQL: each session its own lane slot;
    SQLite: a random lane per write) and a follower copying while they write."""
    bank = await _laned_bank(db, lanes=8)
    writers, each = 6, 5
    done = asyncio.Event()

    async def writer(n: int) -> None:
        for i in range(each):
            request = capture("icbc", f"W{n}-{i}", 100 * (n + 1) + i, D1)
            await ledger.transact(db, lambda c, r=request: ledger.post(c, r), attempts=20)

    async def follower() -> None:
        while not done.is_set():
            await _sync(db, bank)
            await asyncio.sleep(0)

    following = asyncio.create_task(follower())
    await asyncio.gather(*(writer(n) for n in range(writers)))
    done.set()
    await following
    await _sync(db, bank)
    lanes = await _copied_exactly_once(db, bank)
    async with db.connect() as conn:
        n = await conn.scalar(sa.select(sa.func.count()).select_from(book_items).where(
            book_items.c.account_id == bank.clearing_id))
    assert n == writers * each
    if db.dialect.name == "postgresql":
        assert len(lanes) > 1, lanes  # the sessions did write in several lanes


async def test_a_statement_against_a_laned_clearing_account_matches_every_line(
        db, monkeypatch) -> None:
    bank = await _laned_bank(db)
    # day 1: a capture in the top lane, reconciled (the follower reads up to lane 3)
    async with in_lane(db, 3, monkeypatch) as conn:
        await ledger.post(conn, capture("icbc", "TXN-1", 10_000, D1))
    async with db.begin() as conn:
        await reconciliation.import_statement(conn, bank, camt053([L(10_000, D1, "TXN-1", "B1")]))
        first = await reconciliation.reconcile(conn, bank, D1)
    assert first.matched_lines == 1
    # day 2: captures and a refund in lower lanes, after the top lane was read
    book = [(0, capture("icbc", "TXN-2", 20_000, D2)), (1, capture("icbc", "TXN-3", 30_000, D2)),
            (2, refund("icbc", "RF-1", 4_000, D2)), (0, capture("icbc", "TXN-4", 5_000, D2))]
    for lane, request in book:
        async with in_lane(db, lane, monkeypatch) as conn:
            await ledger.post(conn, request)
    lines = [L(20_000, D3, "TXN-2", "B2"), L(30_000, D3, "TXN-3", "B3"),
             L(-4_000, D3, "RF-1", "B4"), L(5_000, D3, "TXN-4", "B5")]
    async with db.begin() as conn:
        await reconciliation.import_statement(conn, bank, camt053(lines, opening=10_000))
        second = await reconciliation.reconcile(conn, bank, D3)
    assert second.matched_lines == 4, second
    assert (second.open_line_exceptions, second.open_item_exceptions) == (0, 0)
    async with db.connect() as conn:
        assert await balance_of(conn, CLEARING) == 0
        assert await balance_of(conn, "1001.bank.icbc") == 61_000
        report = await ledger.verify(conn)
    assert report.ok, report.summary()
    await _copied_exactly_once_outside_recon(db, bank)


async def _copied_exactly_once_outside_recon(db: AsyncEngine,
                                             bank: reconciliation.BankAccount) -> None:
    """After a reconciliation the clearing account also holds its own settlement postings,
    which are never items: every other posting is one item."""
    async with db.connect() as conn:
        rows = (await conn.execute(
            sa.text("SELECT p.account_seq, e.kind FROM postings p JOIN journal_entries e"
                    " ON e.id = p.entry_id WHERE p.account_id = :a"),
            {"a": bank.clearing_id})).all()
        copied = (await conn.scalars(sa.select(book_items.c.account_seq).where(
            book_items.c.account_id == bank.clearing_id))).all()
    assert Counter(copied) == Counter(r.account_seq for r in rows
                                      if not r.kind.startswith("recon."))
