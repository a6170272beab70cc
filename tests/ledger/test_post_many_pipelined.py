"""`post_many` of more entries than `fastpath.PIPELINE_CHUNK`: on PostgreSQL it is posted in
parts whose client and server work overlap, under one savepoint; the outcome is the one
call's: all of them, or none and the very error one call raises, with the caller's
transaction still usable. SQLite posts the same batches in Python (the standard)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import ledger
from ledger import EntryRequest, Posting, fastpath
from ledger.schema import journal_entries
from tests.ledger.chart import capture, cny, open_chart

N = fastpath.PIPELINE_CHUNK * 2 + 17  # three parts, the last a short one


@pytest.fixture
def parts(monkeypatch):
    """What each pipelined call returned (None: it gave the batch back to one call)."""
    seen: list[object] = []
    real = fastpath.post_pipelined

    async def spy(*args, **kwargs):
        result = await real(*args, **kwargs)
        seen.append(result)
        return result

    monkeypatch.setattr(fastpath, "post_pipelined", spy)
    return seen


async def _entries(db) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(journal_entries)))


async def test_a_large_batch_is_posted_whole_in_order(db, parts):
    await open_chart(db)
    requests = [capture(f"big-{i}", "10.00", "0.50") for i in range(N)]
    requests.insert(N - 5, requests[3])  # the same key again, two parts later: a replay
    async with db.begin() as conn:
        posted = await ledger.post_many(conn, requests)
    if db.dialect.name == "postgresql":
        assert len(parts) == 1 and parts[0] is not None and len(parts[0]) == N + 1
    else:
        assert parts == []
    assert len(posted) == N + 1
    replay = posted[N - 5]
    assert replay.replayed and replay.id == posted[3].id
    fresh = [e for e in posted if not e.replayed]
    assert [e.idempotency_key for e in fresh] == [f"big-{i}" for i in range(N)]
    assert len({e.id for e in fresh}) == N
    # parts are booked in order, each under its own locks
    assert all(a.booked_at <= b.booked_at for a, b in zip(fresh, fresh[1:]))
    # one account's sequence numbers follow the batch's order, with no gap
    seqs = [p.account_seq for e in fresh for p in e.postings
            if p.account_code == "6001.income.commission"]
    assert seqs == list(range(seqs[0], seqs[0] + N))
    async with db.connect() as conn:
        balance = await ledger.balance(conn, "1102.clearing.icbc")
        report = await ledger.verify(conn)
    assert balance.posted == cny("10.00") * N
    assert report.ok, report.discrepancies
    assert await _entries(db) == N


def _unbalanced(requests):
    requests[N - 3] = EntryRequest("bad-unbalanced", "payment.capture", [
        Posting("1102.clearing.icbc", debit=cny("5.00")),
        Posting("2202.payable.s1", credit=cny("4.00"))])
    return ledger.UnbalancedEntry, "bad-unbalanced"


def _unknown_accounts(requests):
    requests[N - 200] = capture("bad-unknown-1", "1.00", "0", supplier="2202.payable.nobody")
    requests[N - 3] = capture("bad-unknown-2", "1.00", "0", supplier="2202.payable.nobody2")
    return ledger.UnknownAccount, "2202.payable.nobody2"


def _over_the_limit(requests):
    # the supplier's payable may not go into debit: paying out more than was captured
    requests[N - 3] = EntryRequest("bad-limit", "payout", [
        Posting("2202.payable.s1", debit=cny("1000000.00")),
        Posting("1001.bank.icbc", credit=cny("1000000.00"))])
    return ledger.BalanceLimitExceeded, "bad-limit"


def _conflict(requests):
    requests[N - 3] = capture("big-7", "99.00", "0.50")  # big-7's key, another request
    return ledger.IdempotencyConflict, "big-7"


@pytest.mark.parametrize("spoil", [_unbalanced, _unknown_accounts, _over_the_limit, _conflict])
async def test_one_bad_entry_in_a_late_part_writes_nothing(db, parts, spoil):
    await open_chart(db)
    requests = [capture(f"big-{i}", "10.00", "0.50") for i in range(N)]
    error, named = spoil(requests)
    async with db.begin() as conn:
        with pytest.raises(error) as refused:
            await ledger.post_many(conn, requests)
        assert named in str(refused.value)
        if error is ledger.UnknownAccount:  # every unknown account of the batch, as one call
            assert "2202.payable.nobody" in refused.value.refs
        # the transaction is still usable, and holds nothing of the batch
        await ledger.post(conn, capture("after", "1.00", "0"))
    if db.dialect.name == "postgresql" and error is not ledger.UnbalancedEntry:
        assert len(parts) == 1 and parts[0] is None  # given back to one call, which refused
    assert await _entries(db) == 1
    async with db.connect() as conn:
        assert (await ledger.verify(conn)).ok
