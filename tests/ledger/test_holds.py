from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

import ledger
from ledger import HoldRequest, HoldStatus, Posting
from tests.ledger.chart import capture, cny, open_chart


def soon(minutes: int = 30) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)


def payout_hold(key: str, amount: str, expires_at: dt.datetime | None = None) -> HoldRequest:
    return HoldRequest(key, "payout", [
        Posting("2202.payable.s1", debit=cny(amount)),
        Posting("1102.clearing.icbc", credit=cny(amount)),
    ], expires_at=expires_at or soon())


async def funded(db, amount: str = "100.00") -> None:
    await open_chart(db)
    async with db.begin() as conn:
        await ledger.post(conn, capture("cap-1", amount, "0.00"))


async def test_hold_reserves_and_reduces_available_not_posted(db):
    await funded(db)
    async with db.begin() as conn:
        h = await ledger.hold(conn, payout_hold("h-1", "60.00"))
    assert h.status is HoldStatus.PENDING
    async with db.connect() as conn:
        bal = await ledger.balance(conn, "2202.payable.s1")
    assert bal.posted == cny("100.00")
    assert bal.available == cny("40.00")
    assert bal.pending_debits == 6000


async def test_limits_count_pending_amounts(db):
    await funded(db)
    async with db.begin() as conn:
        await ledger.hold(conn, payout_hold("h-1", "60.00"))
    with pytest.raises(ledger.BalanceLimitExceeded) as err:
        async with db.begin() as conn:
            await ledger.hold(conn, payout_hold("h-2", "50.00"))
    assert err.value.shortfall == "10.00 CNY"
    with pytest.raises(ledger.BalanceLimitExceeded):
        async with db.begin() as conn:
            await ledger.post(conn, ledger.EntryRequest("p", "payout", [
                Posting("2202.payable.s1", debit=cny("41.00")),
                Posting("1102.clearing.icbc", credit=cny("41.00")),
            ]))


async def test_post_part_of_a_hold_releases_the_rest(db):
    await funded(db)
    async with db.begin() as conn:
        h = await ledger.hold(conn, payout_hold("h-1", "60.00"))
    async with db.begin() as conn:
        entry = await ledger.post_hold(conn, h.id, amount=cny("45.50"))
    assert [p.amount for p in entry.postings] == [4550, -4550]
    async with db.connect() as conn:
        bal = await ledger.balance(conn, "2202.payable.s1")
        [after] = await ledger.load_holds(conn, [h.id])
    assert bal.posted == cny("54.50") and bal.available == cny("54.50")
    assert bal.pending_debits == 0
    assert after.status is HoldStatus.POSTED and after.posted_entry_id == entry.id


async def test_post_hold_in_full_and_replay(db):
    await funded(db)
    async with db.begin() as conn:
        h = await ledger.hold(conn, payout_hold("h-1", "60.00"))
    async with db.begin() as conn:
        first = await ledger.post_hold(conn, h.id)
    async with db.begin() as conn:
        again = await ledger.post_hold(conn, h.id)
    assert again.replayed and again.id == first.id
    with pytest.raises(ledger.IdempotencyConflict):
        async with db.begin() as conn:
            await ledger.post_hold(conn, h.id, amount=cny("1.00"))
    with pytest.raises(ledger.HoldAlreadyResolved, match="posted"):
        async with db.begin() as conn:
            await ledger.void_hold(conn, h.id)


async def test_cannot_post_more_than_held(db):
    await funded(db)
    async with db.begin() as conn:
        h = await ledger.hold(conn, payout_hold("h-1", "60.00"))
    with pytest.raises(ledger.HoldAmountExceeded):
        async with db.begin() as conn:
            await ledger.post_hold(conn, h.id, amount=cny("60.01"))
    with pytest.raises(ledger.HoldAmountExceeded):
        async with db.begin() as conn:
            await ledger.post_hold(conn, h.id, postings=[
                Posting("2202.payable.s1", debit=cny("10.00")),
                Posting("6001.income.commission", credit=cny("10.00")),
            ])


async def test_multi_leg_hold_posts_part_with_postings(db):
    await funded(db)
    req = HoldRequest("h-3", "payout.with_fee", [
        Posting("2202.payable.s1", debit=cny("50.00")),
        Posting("1102.clearing.icbc", credit=cny("49.00")),
        Posting("6001.income.commission", credit=cny("1.00")),
    ], expires_at=soon())
    async with db.begin() as conn:
        h = await ledger.hold(conn, req)
    async with db.begin() as conn:
        entry = await ledger.post_hold(conn, h.id, postings=[
            Posting("2202.payable.s1", debit=cny("40.00")),
            Posting("1102.clearing.icbc", credit=cny("39.00")),
            Posting("6001.income.commission", credit=cny("1.00")),
        ])
    assert sum(p.amount for p in entry.postings) == 0
    async with db.connect() as conn:
        assert (await ledger.balance(conn, "2202.payable.s1")).available == cny("60.00")


async def test_void_releases_and_is_idempotent(db):
    await funded(db)
    async with db.begin() as conn:
        h = await ledger.hold(conn, payout_hold("h-1", "60.00"))
    async with db.begin() as conn:
        voided = await ledger.void_hold(conn, h.id)
    async with db.begin() as conn:
        again = await ledger.void_hold(conn, h.id)
    assert voided.status is HoldStatus.VOIDED and again.status is HoldStatus.VOIDED
    async with db.connect() as conn:
        bal = await ledger.balance(conn, "2202.payable.s1")
    assert bal.available == cny("100.00") and bal.pending_debits == 0
    with pytest.raises(ledger.HoldAlreadyResolved, match="voided"):
        async with db.begin() as conn:
            await ledger.post_hold(conn, h.id)


async def test_expired_hold_refuses_posting_and_the_sweep_releases_it(db):
    await funded(db)
    async with db.begin() as conn:
        h = await ledger.hold(conn, payout_hold("h-1", "60.00", expires_at=soon(1)))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    async with db.begin() as conn:
        # as the books stand two minutes later
        assert await ledger.expire_holds(conn, now=dt.datetime.now(dt.UTC)) == []
        assert await ledger.expire_holds(conn, now=later) == [h.id]
    async with db.connect() as conn:
        bal = await ledger.balance(conn, "2202.payable.s1")
        [swept] = await ledger.load_holds(conn, [h.id])
    assert swept.status is HoldStatus.EXPIRED and bal.pending_debits == 0
    with pytest.raises(ledger.HoldAlreadyResolved, match="expired"):
        async with db.begin() as conn:
            await ledger.post_hold(conn, h.id)


async def test_posting_after_the_deadline_is_refused_even_before_the_sweep(db):
    await funded(db)
    async with db.begin() as conn:
        h = await ledger.hold(conn, payout_hold("h-1", "60.00", expires_at=soon(1)))
        # make the deadline pass without waiting: holds are not append-only rows
        await conn.execute(sa.text("UPDATE holds SET expires_at = :t WHERE id = :i"),
                           {"t": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), "i": h.id.hex
                            if db.dialect.name == "sqlite" else h.id})
    with pytest.raises(ledger.HoldExpired):
        async with db.begin() as conn:
            await ledger.post_hold(conn, h.id)


async def test_hold_idempotency(db):
    await funded(db)
    async with db.begin() as conn:
        h = await ledger.hold(conn, payout_hold("h-1", "60.00", expires_at=soon(30)))
        again = await ledger.hold(conn, HoldRequest("h-1", "payout", [
            Posting("2202.payable.s1", debit=cny("60.00")),
            Posting("1102.clearing.icbc", credit=cny("60.00")),
        ], expires_at=h.expires_at))
    assert again.replayed and again.id == h.id
    with pytest.raises(ledger.IdempotencyConflict):
        async with db.begin() as conn:
            await ledger.hold(conn, payout_hold("h-1", "61.00", expires_at=h.expires_at))


async def test_hold_on_unknown_hold_id(db):
    import uuid

    await funded(db)
    with pytest.raises(ledger.HoldNotFound):
        async with db.begin() as conn:
            await ledger.post_hold(conn, uuid.uuid4())
