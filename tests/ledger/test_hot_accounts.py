"""Hot accounts split into lanes (#16.1, migration 0022): 32 writers posting at once to one
unlimited account keep every promise — verify(), balances as of any instant, statements
with an exact running balance; a limit-checked account cannot have lanes; a checkpoint
still finds a cut in one lane; holds keep to lane 0; on PostgreSQL a writer in another
lane does not wait for one holding its lane open. Both databases, real concurrency."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from ledger import AccountSpec, AccountType, BalanceLimit, EntryRequest, Posting, signing, store
from ledger import chain as ledger_chain
from ledger.checkpoints import take_checkpoint
from ledger.schema import LANE_STRIDE
from tests.conftest import drop_database, make_migrated_engine
from tests.ledger.chart import cny
from tests.ledger.test_checkpoints import insider

HOT = "6001.income.commission"
WRITERS = 32
POSTS = {"postgresql": 4, "sqlite": 3}


def _units(amount: int) -> Any:
    return cny(f"{amount // 100}.{amount % 100:02d}")


def _fee(key: str, payer: str, amount: int) -> EntryRequest:
    return EntryRequest(key, "payment.commission", [
        Posting(payer, debit=_units(amount)), Posting(HOT, credit=_units(amount))])


async def _open(engine: AsyncEngine, lanes: int, payers: int) -> None:
    async with engine.begin() as conn:
        await ledger.open_account(conn, AccountSpec(HOT, "Commission", AccountType.INCOME,
                                                    "CNY", lanes=lanes))
        for n in range(payers):
            await ledger.open_account(conn, AccountSpec(f"1102.clearing.w{n}", f"Clearing {n}",
                                                        AccountType.ASSET, "CNY"))


@pytest.fixture(params=["sqlite", "postgresql"])
async def wide_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated database with a pool wider than the writers."""
    engine, schema = await make_migrated_engine(request.param, tmp_path, pool_size=WRITERS + 8,
                                       max_overflow=8)
    try:
        yield engine
    finally:
        await engine.dispose()
        if schema:
            await drop_database(schema)


@asynccontextmanager
async def in_lane(engine: AsyncEngine, lane: int,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AsyncConnection]:
    """A transaction whose writes go to `lane` of every laned account: PostgreSQL, the
    session's lane slot set for this transaction; SQLite, the lane draw fixed."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql(
                f"SELECT set_config('paycore.ledger_lane_slot', '{lane}', true)")
            yield conn
        else:
            with monkeypatch.context() as m:
                m.setattr(store._draw, "randrange", lambda n: lane % n)
                yield conn


def _hot_legs(entries: list[ledger.JournalEntry]) -> list[tuple[dt.datetime, int, int]]:
    """(booked at, sequence number, signed amount) of every posting to the hot account."""
    return [(e.booked_at, p.account_seq, p.amount)
            for e in entries for p in e.postings if p.account_code == HOT]


async def test_32_writers_on_one_laned_hot_account_keep_every_promise(wide_db):
    engine = wide_db
    posts = POSTS[engine.dialect.name]
    await _open(engine, lanes=16, payers=WRITERS)
    start = asyncio.Event()

    async def writer(n: int) -> list[ledger.JournalEntry]:
        out = []
        await start.wait()
        for i in range(posts):
            request = _fee(f"w{n}-{i}", f"1102.clearing.w{n}", 100 * n + i + 1)
            out.append(await ledger.transact(engine, lambda c, r=request: ledger.post(c, r),
                                             attempts=10))
        return out

    tasks = [asyncio.create_task(writer(n)) for n in range(WRITERS)]
    start.set()
    entries = [e for batch in await asyncio.gather(*tasks) for e in batch]
    legs = sorted(_hot_legs(entries))
    assert len(legs) == WRITERS * posts

    async with engine.connect() as conn:
        report = await ledger.verify(conn)
        now = await ledger.balance(conn, HOT)
        lanes_used = {seq // LANE_STRIDE for _, seq, _ in legs}
        # the balance as of several instants is the sum of what was booked up to then
        instants = [legs[0][0] - dt.timedelta(microseconds=1),
                    *(legs[i][0] for i in range(0, len(legs), 17)), legs[-1][0]]
        for at in instants:
            then = await ledger.balance(conn, HOT, as_of=at)
            assert then.posted_net == sum(a for b, _, a in legs if b <= at), at
        st = await ledger.statement(conn, HOT, legs[0][0].date(), legs[-1][0].date())

    assert report.ok, report.discrepancies
    assert report.postings == 2 * WRITERS * posts
    assert len(lanes_used) > 1, lanes_used  # the writers did spread over lanes
    assert now.posted_net == sum(a for _, _, a in legs)
    # the statement: every posting once, the running balance exact, closing = balance
    assert st.opening_net == 0 and len(st.lines) == len(legs)
    assert {line.entry_id for line in st.lines} == {e.id for e in entries}
    running = st.opening_net
    for line in st.lines:
        running += line.amount
        assert line.balance_after == running
        assert line.lane == line.account_seq // LANE_STRIDE
    assert st.closing_net == running == now.posted_net
    # merged by booking time, each lane in its own sequence order
    assert [line.booked_at for line in st.lines] == sorted(line.booked_at for line in st.lines)
    for lane in lanes_used:
        seqs = [line.account_seq for line in st.lines if line.lane == lane]
        assert seqs == sorted(seqs) == list(range(lane * LANE_STRIDE + 1,
                                                  lane * LANE_STRIDE + 1 + len(seqs)))


async def test_a_limit_checked_account_cannot_have_lanes(db):
    limited = AccountSpec("2202.payable.s1", "Supplier", AccountType.LIABILITY, "CNY",
                          balance_limit=BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS, lanes=4)
    async with db.begin() as conn:
        with pytest.raises(ledger.InvalidRequest, match="balance limit .* keeps one lane"):
            await ledger.open_account(conn, limited)
        account = await ledger.open_account(conn, AccountSpec(
            limited.code, limited.name, limited.type, limited.currency, limited.balance_limit))
        with pytest.raises(ledger.InvalidRequest, match="keeps one lane"):
            await ledger.add_lanes(conn, account.id, 2)
    assert account.lanes == 1
    # and the database refuses it whoever asks
    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            await conn.execute(sa.text("UPDATE accounts SET lanes = 2 WHERE id = :a"),
                               {"a": account.id})
    async with db.begin() as conn:
        with pytest.raises(ledger.InvalidRequest, match="whole number from 1"):
            await ledger.open_account(conn, AccountSpec("x", "x", AccountType.ASSET, "CNY",
                                                        lanes=0))


async def test_lanes_are_added_never_removed_and_new_lanes_take_postings(db, monkeypatch):
    await _open(db, lanes=1, payers=1)
    async with db.begin() as conn:
        await ledger.post(conn, _fee("before", "1102.clearing.w0", 500))
        raised = await ledger.add_lanes(conn, HOT, 4)
        assert raised.lanes == 4
        with pytest.raises(ledger.InvalidRequest, match="never removed"):
            await ledger.add_lanes(conn, HOT, 2)
    async with in_lane(db, 3, monkeypatch) as conn:
        after = await ledger.post(conn, _fee("after", "1102.clearing.w0", 250))
    [hot] = [p for p in after.postings if p.account_code == HOT]
    assert hot.account_seq == 3 * LANE_STRIDE + 1 and hot.balance_after == -250
    async with db.connect() as conn:
        report = await ledger.verify(conn)
        assert (await ledger.balance(conn, HOT)).posted_net == -750
        trial = await ledger.trial_balance(conn)
    assert report.ok, report.discrepancies
    assert [r.credit for r in trial.rows if r.code == HOT] == [750]


async def test_holds_on_a_laned_account_keep_to_lane_zero(db, monkeypatch):
    await _open(db, lanes=4, payers=1)
    async with in_lane(db, 2, monkeypatch) as conn:
        held = await ledger.hold(conn, ledger.HoldRequest(
            "h-1", "payment.auth", [Posting("1102.clearing.w0", debit=cny("3.00")),
                                    Posting(HOT, credit=cny("3.00"))],
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)))
        assert (await ledger.balance(conn, HOT)).pending_credits == 300
        posted = await ledger.post_hold(conn, held.id)
    [hot] = [p for p in posted.postings if p.account_code == HOT]
    assert hot.account_seq == 1  # lane 0, whatever the writer's own lane
    async with db.connect() as conn:
        report = await ledger.verify(conn)
        now = await ledger.balance(conn, HOT)
    assert report.ok, report.discrepancies
    assert (now.posted_net, now.pending_credits) == (-300, 0)


async def test_a_checkpoint_finds_a_cut_in_one_lane(db, monkeypatch):
    await _open(db, lanes=4, payers=4)
    posted = []
    for n, lane in enumerate([0, 2, 2, 1]):  # each from a payer of its own
        async with in_lane(db, lane, monkeypatch) as conn:
            posted.append(await ledger.post(conn, _fee(f"f-{n}", f"1102.clearing.w{n}", 100 + n)))
    key = signing.SigningKey.generate()
    async with db.begin() as conn:
        checkpoint = await take_checkpoint(conn, key)
    hot_leaves = [leaf for leaf in checkpoint.leaves if leaf.code == HOT]
    assert [(leaf.lane, leaf.seq) for leaf in hot_leaves] == [
        (0, 1), (1, LANE_STRIDE + 1), (2, 2 * LANE_STRIDE + 2), (3, 3 * LANE_STRIDE)]
    assert ledger.prove(checkpoint, HOT, lane=2).leaf == hot_leaves[2]

    # the insider cuts lane 2's newest posting (entry f-2) and winds both rows back
    cut = posted[2]
    async with insider(db) as conn:
        entry_id = cut.id.hex if conn.dialect.name == "sqlite" else cut.id
        await conn.execute(sa.text("DELETE FROM ledger_checkpoints"))
        await conn.execute(sa.text("DELETE FROM postings WHERE entry_id = :e"), {"e": entry_id})
        await conn.execute(sa.text("DELETE FROM journal_entries WHERE id = :e"), {"e": entry_id})
        for leg in cut.postings:
            prev = (await conn.execute(sa.text(
                "SELECT hash, booked_at FROM postings WHERE account_id = :a AND account_seq = :s"),
                {"a": leg.account_id, "s": leg.account_seq - 1})).first()
            d, c = (leg.amount, 0) if leg.amount > 0 else (0, -leg.amount)
            await conn.execute(sa.text(
                "UPDATE account_balances SET seq = seq - 1, posted_debits = posted_debits - :d,"
                " posted_credits = posted_credits - :c, head_hash = :h, last_booked_at = :t"
                " WHERE account_id = :a AND lane = :l"),
                {"d": d, "c": c, "h": prev.hash if prev else ledger_chain.GENESIS,
                 "t": prev.booked_at if prev else None, "a": leg.account_id,
                 "l": leg.account_seq // LANE_STRIDE})
    async with db.connect() as conn:
        plain = await ledger.verify(conn)
        report = await ledger.verify(conn, checkpoints=[checkpoint])
    assert plain.ok, plain.discrepancies  # the books agree with themselves after the cut
    gone = [d for d in report.discrepancies if "cut or rewound" in d]
    assert any(d.startswith(f"account '{HOT}' lane 2 posting #{2 * LANE_STRIDE + 2}")
               for d in gone), report.discrepancies


async def test_verify_names_a_lane_whose_row_was_changed(db, monkeypatch):
    await _open(db, lanes=2, payers=1)
    async with in_lane(db, 1, monkeypatch) as conn:
        await ledger.post(conn, _fee("f", "1102.clearing.w0", 100))
    async with db.begin() as conn:
        await conn.execute(sa.text(
            "UPDATE account_balances SET posted_credits = posted_credits + 1"
            " WHERE lane = 1 AND account_id = (SELECT id FROM accounts WHERE code = :c)"),
            {"c": HOT})
    async with db.connect() as conn:
        report = await ledger.verify(conn)
    assert any(d.startswith(f"account '{HOT}' lane 1: stored balance")
               for d in report.discrepancies), report.discrepancies


async def test_a_writer_in_another_lane_does_not_wait_for_one_holding_its_lane(tmp_path):
    """PostgreSQL (SQLite has one writer at a time): while one transaction that posted to
    the hot account stays open, another in another lane posts and commits; with one lane
    the second waits for the first (here: its lock wait times out)."""
    engine, schema = await make_migrated_engine("postgresql", tmp_path)
    try:
        await _open(engine, lanes=2, payers=2)
        async with engine.begin() as conn:
            await ledger.open_account(conn, AccountSpec("6001.income.cold", "One lane",
                                                        AccountType.INCOME, "CNY"))

        async def post_in(conn: AsyncConnection, lane: int, request: EntryRequest) -> None:
            await conn.exec_driver_sql(
                f"SELECT set_config('paycore.ledger_lane_slot', '{lane}', true)")
            await conn.exec_driver_sql("SET LOCAL lock_timeout = '300ms'")
            await ledger.post(conn, request)

        async with engine.begin() as holder:
            await post_in(holder, 0, _fee("held", "1102.clearing.w0", 100))
            async with engine.begin() as other:  # lane 1: no wait
                await post_in(other, 1, _fee("other", "1102.clearing.w1", 200))
        cold = [Posting("1102.clearing.w0", debit=cny("1.00")),
                Posting("6001.income.cold", credit=cny("1.00"))]
        async with engine.begin() as holder:
            await post_in(holder, 0, EntryRequest("cold-1", "t", cold))
            with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
                async with engine.begin() as other:  # one lane: it queues behind the holder
                    await post_in(other, 1, EntryRequest("cold-2", "t", [
                        Posting("1102.clearing.w1", debit=cny("1.00")),
                        Posting("6001.income.cold", credit=cny("1.00"))]))
        async with engine.connect() as conn:
            report = await ledger.verify(conn)
            assert (await ledger.balance(conn, HOT)).posted_net == -300
        assert report.ok, report.discrepancies
        assert report.entries == 3
    finally:
        await engine.dispose()
        if schema:
            await drop_database(schema)


async def test_each_session_keeps_one_lane_slot_of_its_own(tmp_path):
    """PostgreSQL: concurrent sessions get distinct slots, and a session keeps its slot
    across transactions, also after one that rolled back (and took the setting with it)."""
    engine, schema = await make_migrated_engine("postgresql", tmp_path)
    try:
        conns = [await engine.connect() for _ in range(6)]
        slots = []
        for conn in conns:
            slots.append(await conn.scalar(sa.text("SELECT ledger_lane_slot()")))
            await conn.rollback()  # the setting goes with the transaction, the slot stays
        assert len(set(slots)) == 6
        for conn, slot in zip(conns, slots, strict=True):
            assert await conn.scalar(sa.text("SELECT ledger_lane_slot()")) == slot
            await conn.commit()
            assert await conn.scalar(sa.text("SELECT ledger_lane_slot()")) == slot
            await conn.close()
    finally:
        await engine.dispose()
        if schema:
            await drop_database(schema)

