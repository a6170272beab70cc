"""The coalescing write path (`ledger.Coalescer`, `ledger.post_each`) on both databases:
refusals inside a batch, limits entry by entry, keys twice in a batch, the bounded queue,
cancelled callers, COMMIT failures (before and after the commit happened), an entry that
fails with an error that is no refusal, and two processes' coalescers on one ledger."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from ledger import EntryRequest, Posting
from tests.ledger.chart import capture, cny, open_chart, usd

S1 = "2202.payable.s1"  # debits must not exceed credits
CLEARING = "1102.clearing.icbc"


def payout(key: str, amount: str, supplier: str = S1) -> EntryRequest:
    """Pay a supplier out of its payable: refused when the payable would go into debit."""
    return EntryRequest(key, "supplier.payout", [
        Posting(supplier, debit=cny(amount)), Posting(CLEARING, credit=cny(amount))])


async def submit_all(coalescer: ledger.Coalescer, requests: list[EntryRequest]) -> list[Any]:
    """Every request submitted at once, queued in list order; each outcome or error."""
    return await asyncio.gather(*(coalescer.submit(r) for r in requests), return_exceptions=True)


async def keys_stored(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.scalars(sa.text(
            "SELECT idempotency_key FROM journal_entries ORDER BY idempotency_key"))).all())


async def verified(engine: AsyncEngine) -> ledger.VerifyReport:
    async with engine.connect() as conn:
        report = await ledger.verify(conn)
    assert report.ok, report.discrepancies
    return report


MIXED = [
    capture("c-1", "100.00", "3.00"),                                   # posted: s1 97.00
    capture("c-bad", "10.00", "1.00", metadata={"n": 1}),               # posted
    EntryRequest("unbalanced", "x", [Posting(CLEARING, debit=cny("1.00")),
                                     Posting(S1, credit=cny("2.00"))]),  # refused up front
    EntryRequest("nowhere", "x", [Posting(CLEARING, debit=cny("1.00")),
                                  Posting("9999.nowhere", credit=cny("1.00"))]),  # unknown
    payout("p-1", "60.00"),                                             # s1 97+9 -> 46.00
    payout("p-2", "50.00"),                                             # refused: short 4.00
    payout("p-3", "46.00"),                                             # s1 exactly 0
    capture("c-1", "100.00", "3.00"),                                   # replay of c-1
    capture("c-bad", "10.00", "2.00", metadata={"n": 1}),               # key reused: conflict
    EntryRequest("usd", "x", [Posting(CLEARING, debit=usd("1.00")),
                              Posting("2202.payable.usd", credit=usd("1.00"))]),  # mismatch
    payout("p-2", "0.01"),                                              # refused p-2 key: free
]


def summary(outcomes: list[Any]) -> list[tuple[str, str]]:
    out = []
    for o in outcomes:
        if isinstance(o, BaseException):
            out.append((type(o).__name__, str(o)))
        else:
            out.append(("replayed" if o.replayed else "posted", o.idempotency_key))
    return out


EXPECTED = [
    ("posted", "c-1"), ("posted", "c-bad"), ("UnbalancedEntry", ""), ("UnknownAccount", ""),
    ("posted", "p-1"), ("BalanceLimitExceeded", ""), ("posted", "p-3"), ("replayed", "c-1"),
    ("IdempotencyConflict", ""), ("CurrencyMismatch", ""), ("BalanceLimitExceeded", ""),
]


def kinds(outcomes: list[Any]) -> list[tuple[str, str]]:
    return [(k, v if k in ("posted", "replayed") else "") for k, v in summary(outcomes)]


async def test_post_each_answers_each_entry_as_posting_them_one_by_one_would(db):
    await open_chart(db)
    async with db.begin() as conn:
        outcomes = await ledger.post_each(conn, MIXED)
    assert kinds(outcomes) == EXPECTED
    limit = outcomes[5]
    assert isinstance(limit, ledger.BalanceLimitExceeded)
    assert limit.shortfall == "4.00 CNY" and limit.idempotency_key == "p-2"
    assert outcomes[7].id == outcomes[0].id
    assert isinstance(outcomes[3], ledger.UnknownAccount) and outcomes[3].refs == ["9999.nowhere"]
    # the last entry: s1 is at 0.00 after p-3, so even 0.01 breaks its limit
    assert isinstance(outcomes[10], ledger.BalanceLimitExceeded)
    assert outcomes[10].shortfall == "0.01 CNY"
    assert await keys_stored(db) == ["c-1", "c-bad", "p-1", "p-3"]
    async with db.connect() as conn:
        assert (await ledger.balance(conn, S1)).posted == cny("0.00")
    await verified(db)


async def test_refusals_inside_one_batch_refuse_those_entries_alone(db):
    await open_chart(db)
    coalescer = ledger.Coalescer(db, max_batch=100)
    outcomes = await submit_all(coalescer, MIXED)
    await coalescer.close()
    assert coalescer.batches == 1  # all of them in one transaction
    assert kinds(outcomes) == EXPECTED
    assert summary(outcomes)[5][1] == str(ledger.BalanceLimitExceeded(
        S1, "debits_must_not_exceed_credits", "4.00 CNY", "p-2"))
    assert await keys_stored(db) == ["c-1", "c-bad", "p-1", "p-3"]
    await verified(db)


async def test_the_same_key_twice_in_a_batch_is_one_entry_and_a_replay(db):
    await open_chart(db)
    coalescer = ledger.Coalescer(db)
    first, again, other = await submit_all(coalescer, [
        capture("k", "5.00", "0.50"), capture("k", "5.00", "0.50"), capture("k", "5.00", "1.00")])
    await coalescer.close()
    assert not first.replayed and again.replayed and again.id == first.id
    assert isinstance(other, ledger.IdempotencyConflict)
    async with db.connect() as conn:
        assert (await ledger.balance(conn, CLEARING)).posted == cny("5.00")
    await verified(db)


async def test_a_full_queue_refuses_at_once_and_queues_nothing(db):
    await open_chart(db)
    coalescer = ledger.Coalescer(db, max_queue=2)
    outcomes = await submit_all(coalescer, [capture(f"q-{n}", "1.00", "0") for n in range(5)])
    await coalescer.close()
    assert [type(o).__name__ for o in outcomes] == (
        ["JournalEntry"] * 2 + ["SubmitQueueFull"] * 3)
    assert "queue is full (2 entries waiting)" in str(outcomes[2])
    assert await keys_stored(db) == ["q-0", "q-1"]
    with pytest.raises(ledger.CoalescerClosed):
        await coalescer.submit(capture("late", "1.00", "0"))


async def test_a_cancelled_caller_s_entry_is_posted_once_and_its_retry_replays(db):
    await open_chart(db)
    coalescer = ledger.Coalescer(db, max_batch=3)
    tasks = [asyncio.create_task(coalescer.submit(capture(f"c-{n}", "1.00", "0")))
             for n in range(10)]
    await asyncio.sleep(0)  # every caller has queued its entry
    assert coalescer.queued == 10
    for task in tasks[::2]:
        task.cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(d, asyncio.CancelledError) for d in done[::2])
    await coalescer.close()
    assert await keys_stored(db) == sorted(f"c-{n}" for n in range(10))
    coalescer.start()
    retry = await coalescer.submit(capture("c-0", "1.00", "0"))
    assert retry.replayed
    await coalescer.close()
    report = await verified(db)
    assert report.entries == 10


class FlakyCommits:
    """The real engine, with a connection that breaks at COMMIT for the first `times`
    transactions: before the server committed (`committed=False`), or after it did (the
    client never hears back)."""

    def __init__(self, engine: AsyncEngine, *, times: int, committed: bool) -> None:
        self.engine, self.times, self.committed = engine, times, committed

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            transaction = await conn.begin()
            yield conn
            if self.times > 0:
                self.times -= 1
                if self.committed:
                    await transaction.commit()
                else:
                    await transaction.rollback()
                raise ConnectionResetError("connection lost during COMMIT")
            await transaction.commit()


class LostAnswers:
    """PostgreSQL, where each call of the write function commits before it answers (no
    transaction block): the first `times` calls lose their connection after the server
    committed (`committed=True`), or before it ran them."""

    def __init__(self, times: int, *, committed: bool) -> None:
        self.times, self.committed = times, committed
        self.post_each = ledger.fastpath.post_each

    async def __call__(self, raw: Any, drafts: Any, entry_ids: Any = None) -> Any:
        if self.times > 0:
            self.times -= 1
            if self.committed:
                await self.post_each(raw, drafts, entry_ids)
            raise ConnectionResetError("connection lost before the answer")
        return await self.post_each(raw, drafts, entry_ids)


def flaky(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, *, times: int,
          committed: bool) -> Any:
    """The engine for a coalescer whose first `times` transactions commit (or not) and
    lose their answer: at COMMIT on SQLite, at the write function's call on PostgreSQL."""
    if engine.dialect.name == "postgresql":
        monkeypatch.setattr(ledger.fastpath, "post_each", LostAnswers(times, committed=committed))
        return engine
    return FlakyCommits(engine, times=times, committed=committed)


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "not-committed"])
async def test_a_commit_whose_outcome_was_lost_is_settled_by_the_retry(db, committed,
                                                                       monkeypatch):
    await open_chart(db)
    coalescer = ledger.Coalescer(flaky(db, monkeypatch, times=1, committed=committed),
                                 base_delay_ms=1)
    outcomes = await submit_all(coalescer, [capture(f"c-{n}", "1.00", "0") for n in range(4)]
                                + [payout("p", "99.00")])
    await coalescer.close()
    # the retry found the entries an attempt had committed: they are the callers' own posts
    assert [type(o).__name__ for o in outcomes] == ["JournalEntry"] * 4 + ["BalanceLimitExceeded"]
    assert not any(o.replayed for o in outcomes[:4])
    assert await keys_stored(db) == [f"c-{n}" for n in range(4)]
    assert (await verified(db)).entries == 4


async def test_a_commit_that_keeps_failing_acknowledges_nothing(db, monkeypatch):
    await open_chart(db)
    coalescer = ledger.Coalescer(flaky(db, monkeypatch, times=3, committed=True), attempts=3,
                                 base_delay_ms=1)
    outcomes = await submit_all(coalescer, [capture(f"c-{n}", "1.00", "0") for n in range(3)])
    await coalescer.close()
    # committed, but the writer never heard so: no caller is told it was posted
    assert all(isinstance(o, ledger.SubmitOutcomeUnknown) for o in outcomes)
    assert "submit it again with the same idempotency key" in str(outcomes[0])
    assert await keys_stored(db) == ["c-0", "c-1", "c-2"]
    coalescer.start()
    again = await coalescer.submit(capture("c-1", "1.00", "0"))
    assert again.replayed  # the retry the error asks for
    await coalescer.close()
    await verified(db)


async def test_an_entry_failing_with_no_refusal_fails_alone(db):
    """A request the write path cannot even hash (a bug in the caller) fails its own
    caller; the batch is split until the others post without it."""
    await open_chart(db)
    coalescer = ledger.Coalescer(db)
    requests = [capture(f"c-{n}", "1.00", "0") for n in range(6)]
    requests[3] = capture("poison", "1.00", "0", metadata={"what": object()})
    outcomes = await submit_all(coalescer, requests)
    await coalescer.close()
    assert isinstance(outcomes[3], TypeError)
    assert all(isinstance(o, ledger.JournalEntry) for n, o in enumerate(outcomes) if n != 3)
    assert await keys_stored(db) == ["c-0", "c-1", "c-2", "c-4", "c-5"]
    await verified(db)


async def second_engine(engine: AsyncEngine) -> AsyncEngine:
    """Another engine on the same database, as another process would have."""
    if engine.dialect.name == "sqlite":
        return ledger.create_engine(engine.url)
    async with engine.connect() as conn:
        search_path = await conn.scalar(sa.text("SHOW search_path"))
    return ledger.create_engine(engine.url, connect_args={
        "server_settings": {"search_path": search_path}})


async def test_two_processes_coalescers_post_each_key_once(db):
    await open_chart(db)
    other = await second_engine(db)
    try:
        one, two = ledger.Coalescer(db, max_batch=7), ledger.Coalescer(other, max_batch=5)
        requests = [capture(f"c-{n}", "1.00", "0.10") for n in range(40)]
        got = await asyncio.gather(submit_all(one, requests), submit_all(two, requests[::-1]))
        await one.close()
        await two.close()
    finally:
        await other.dispose()
    mine, theirs = got[0], got[1][::-1]
    for a, b in zip(mine, theirs, strict=True):
        assert isinstance(a, ledger.JournalEntry) and isinstance(b, ledger.JournalEntry)
        assert a.id == b.id and a.replayed != b.replayed  # one posted it, the other replayed
    report = await verified(db)
    assert report.entries == 40
    async with db.connect() as conn:
        assert (await ledger.balance(conn, CLEARING)).posted == cny("40.00")


# -- several writers at once ------------------------------------------------------------


async def test_several_writers_answer_each_entry_as_one_by_one(db):
    """The mixed batch over four writers of two-entry batches: the same outcomes as one
    writer (and as `post` one by one), in queue order."""
    await open_chart(db)
    coalescer = ledger.Coalescer(db, max_batch=2, writers=4)
    outcomes = await submit_all(coalescer, MIXED)
    await coalescer.close()
    assert coalescer.batches >= 5  # (they went in several batches)
    assert kinds(outcomes) == EXPECTED
    assert await keys_stored(db) == ["c-1", "c-bad", "p-1", "p-3"]
    await verified(db)


async def test_several_writers_check_an_account_s_limit_in_queue_order(db):
    """Payouts from one limited payable, one a batch over four writers: the first ten fit
    and post in queue order (sequence numbers and running balances rise with the queue),
    the other five are refused."""
    await open_chart(db)
    coalescer = ledger.Coalescer(db, max_batch=1, writers=4)
    requests = [capture("fund", "10.00", "0")] + [payout(f"p-{n:02d}", "1.00") for n in range(15)]
    outcomes = await submit_all(coalescer, requests)
    await coalescer.close()
    assert [type(o).__name__ for o in outcomes] == (
        ["JournalEntry"] * 11 + ["BalanceLimitExceeded"] * 5)
    s1 = [next(p for p in o.postings if p.account_code == S1) for o in outcomes[:11]]
    assert [p.account_seq for p in s1] == sorted(p.account_seq for p in s1)
    assert [p.balance_after for p in s1] == list(range(-1000, 1, 100))
    await verified(db)


async def test_the_same_key_in_two_writers_is_one_entry_and_a_replay(db):
    """A key whose entry another writer is posting waits for it: one entry, then a replay
    (or a conflict), never a second entry."""
    await open_chart(db)
    coalescer = ledger.Coalescer(db, max_batch=1, writers=4)
    first, other, again, conflict = await submit_all(coalescer, [
        capture("k", "5.00", "0.50"), capture("x", "1.00", "0"), capture("k", "5.00", "0.50"),
        capture("k", "5.00", "1.00")])
    await coalescer.close()
    assert not first.replayed and not other.replayed
    assert again.replayed and again.id == first.id
    assert isinstance(conflict, ledger.IdempotencyConflict)
    assert await keys_stored(db) == ["k", "x"]
    async with db.connect() as conn:
        assert (await ledger.balance(conn, CLEARING)).posted == cny("6.00")
    await verified(db)


async def test_several_writers_post_to_a_laned_account_and_one_lane_accounts(db):
    """Captures crediting a commission account of four lanes (writers take no order there)
    and debiting the one-lane clearing account, named by code and by id, over three
    writers: every entry once, balances exact, the books verify."""
    await open_chart(db)
    async with db.begin() as conn:
        hot = await ledger.open_account(conn, ledger.AccountSpec(
            "6001.income.hot", "Hot commission", ledger.AccountType.INCOME, "CNY", lanes=4))
    coalescer = ledger.Coalescer(db, max_batch=4, writers=3)
    requests = [EntryRequest(f"h-{n}", "test.hot", [
        Posting(CLEARING if n % 2 else (await account_id(db, CLEARING)), debit=cny("1.00")),
        Posting(hot.id if n % 3 else hot.code, credit=cny("1.00"))]) for n in range(40)]
    outcomes = await submit_all(coalescer, requests)
    await coalescer.close()
    assert all(isinstance(o, ledger.JournalEntry) and not o.replayed for o in outcomes)
    async with db.connect() as conn:
        assert (await ledger.balance(conn, hot.id)).posted == cny("40.00")
        assert (await ledger.balance(conn, CLEARING)).posted == cny("40.00")
    assert (await verified(db)).entries == 40


async def account_id(engine: AsyncEngine, code: str) -> int:
    async with engine.connect() as conn:
        return (await ledger.get_account(conn, code)).id
