from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

import ledger
from ledger import EntryRequest, Posting
from tests.ledger.chart import capture, cny, open_chart, usd


async def test_capture_posts_three_legs_and_moves_balances(db):
    await open_chart(db)
    async with db.begin() as conn:
        entry = await ledger.post(conn, capture("cap-1", "100.00", "3.00",
                                                external_ref="order-1", metadata={"order": 1}))
    assert [p.amount for p in entry.postings] == [10000, -9700, -300]
    assert not entry.replayed
    async with db.connect() as conn:
        clearing = await ledger.balance(conn, "1102.clearing.icbc")
        payable = await ledger.balance(conn, "2202.payable.s1")
        income = await ledger.balance(conn, "6001.income.commission")
        stored = await ledger.get_entry(conn, entry.id)
    assert clearing.posted == cny("100.00")
    assert payable.posted == cny("97.00")
    assert income.posted == cny("3.00")
    assert stored.external_ref == "order-1" and stored.metadata == {"order": 1}
    assert [(p.account_code, p.amount, p.account_seq, p.balance_after) for p in stored.postings] == [
        ("1102.clearing.icbc", 10000, 1, 10000),
        ("2202.payable.s1", -9700, 1, -9700),
        ("6001.income.commission", -300, 1, -300),
    ]


async def test_same_key_same_request_replays_without_posting(db):
    await open_chart(db)
    async with db.begin() as conn:
        first = await ledger.post(conn, capture("cap-1", "10.00", "1.00"))
    async with db.begin() as conn:
        again = await ledger.post(conn, capture("cap-1", "10.00", "1.00"))
    assert again.replayed and again.id == first.id
    async with db.connect() as conn:
        assert (await ledger.balance(conn, "1102.clearing.icbc")).posted == cny("10.00")
        assert await conn.scalar(sa.text("SELECT count(*) FROM journal_entries")) == 1


async def test_same_key_different_request_is_a_conflict_naming_the_key(db):
    await open_chart(db)
    async with db.begin() as conn:
        await ledger.post(conn, capture("cap-1", "10.00", "1.00"))
    with pytest.raises(ledger.IdempotencyConflict, match="cap-1"):
        async with db.begin() as conn:
            await ledger.post(conn, capture("cap-1", "10.00", "2.00"))
    async with db.connect() as conn:
        assert (await ledger.balance(conn, "6001.income.commission")).posted == cny("1.00")


async def test_unbalanced_entry_names_the_difference_and_posts_nothing(db):
    await open_chart(db)
    bad = EntryRequest("bad-1", "test", [
        Posting("1102.clearing.icbc", debit=cny("10.00")),
        Posting("2202.payable.s1", credit=cny("9.99")),
    ])
    with pytest.raises(ledger.UnbalancedEntry) as err:
        async with db.begin() as conn:
            await ledger.post(conn, bad)
    assert err.value.differences == {"CNY": "0.01"}
    assert "CNY debits exceed credits by 0.01" in str(err.value)
    async with db.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM postings")) == 0


async def test_balances_per_currency_not_in_total(db):
    await open_chart(db)
    mixed = EntryRequest("fx-bad", "test", [
        Posting("1102.clearing.icbc", debit=cny("10.00")),
        Posting("2202.payable.usd", credit=usd("10.00")),
    ])
    with pytest.raises(ledger.UnbalancedEntry) as err:
        async with db.begin() as conn:
            await ledger.post(conn, mixed)
    assert set(err.value.differences) == {"CNY", "USD"}


async def test_wrong_currency_for_account_is_refused(db):
    await open_chart(db)
    req = EntryRequest("cur-1", "test", [
        Posting("1102.clearing.icbc", debit=usd("5.00")),
        Posting("2202.payable.usd", credit=usd("5.00")),
    ])
    with pytest.raises(ledger.CurrencyMismatch, match="1102.clearing.icbc.*CNY"):
        async with db.begin() as conn:
            await ledger.post(conn, req)


async def test_unknown_account_is_named(db):
    await open_chart(db)
    req = EntryRequest("unk-1", "test", [
        Posting("1102.clearing.nowhere", debit=cny(1)),
        Posting(999_999, credit=cny(1)),
    ])
    with pytest.raises(ledger.UnknownAccount) as err:
        async with db.begin() as conn:
            await ledger.post(conn, req)
    assert set(err.value.refs) == {"1102.clearing.nowhere", 999_999}


@pytest.mark.parametrize("amount", ["0", "-5.00", "1.001"])
async def test_zero_negative_or_too_precise_amounts_are_refused(db, amount):
    await open_chart(db)
    req = EntryRequest("amt-1", "test", [
        Posting("1102.clearing.icbc", debit=cny(amount)),
        Posting("2202.payable.s1", credit=cny(amount)),
    ])
    with pytest.raises(ledger.InvalidAmount):
        async with db.begin() as conn:
            await ledger.post(conn, req)


async def test_one_posting_is_not_an_entry(db):
    await open_chart(db)
    with pytest.raises(ledger.InvalidRequest, match="at least two"):
        async with db.begin() as conn:
            await ledger.post(conn, EntryRequest("one", "t", [Posting("1102.clearing.icbc", debit=cny(1))]))


async def test_balance_limit_names_account_and_shortfall(db):
    await open_chart(db)
    async with db.begin() as conn:
        await ledger.post(conn, capture("cap-1", "100.00", "3.00"))
    payout = EntryRequest("payout-1", "payout", [
        Posting("2202.payable.s1", debit=cny("100.00")),
        Posting("1102.clearing.icbc", credit=cny("100.00")),
    ])
    with pytest.raises(ledger.BalanceLimitExceeded) as err:
        async with db.begin() as conn:
            await ledger.post(conn, payout)
    assert err.value.account_code == "2202.payable.s1"
    assert err.value.shortfall == "3.00 CNY"
    async with db.connect() as conn:
        assert (await ledger.balance(conn, "2202.payable.s1")).posted == cny("97.00")


async def test_closed_account_refuses_postings(db):
    await open_chart(db)
    async with db.begin() as conn:
        await ledger.close_account(conn, "2202.payable.s2")
    with pytest.raises(ledger.AccountClosed, match="2202.payable.s2"):
        async with db.begin() as conn:
            await ledger.post(conn, capture("cap-x", "1.00", "0.10", supplier="2202.payable.s2"))


async def test_account_with_balance_cannot_close(db):
    await open_chart(db)
    async with db.begin() as conn:
        await ledger.post(conn, capture("cap-1", "1.00", "0.10"))
    with pytest.raises(ledger.AccountNotEmpty):
        async with db.begin() as conn:
            await ledger.close_account(conn, "2202.payable.s1")


async def test_post_many_is_all_or_nothing(db):
    await open_chart(db)
    good = [capture(f"cap-{i}", "10.00", "1.00") for i in range(5)]
    bad = EntryRequest("payout-too-much", "payout", [
        Posting("2202.payable.s1", debit=cny("1000.00")),
        Posting("1102.clearing.icbc", credit=cny("1000.00")),
    ])
    with pytest.raises(ledger.BalanceLimitExceeded):
        async with db.begin() as conn:
            await ledger.post_many(conn, [*good, bad])
    async with db.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM journal_entries")) == 0
    async with db.begin() as conn:
        entries = await ledger.post_many(conn, good)
    assert [e.idempotency_key for e in entries] == [f"cap-{i}" for i in range(5)]
    assert [e.postings[0].account_seq for e in entries] == [1, 2, 3, 4, 5]
    async with db.connect() as conn:
        assert (await ledger.balance(conn, "1102.clearing.icbc")).posted == cny("50.00")


async def test_post_many_replays_and_conflicts_inside_one_batch(db):
    await open_chart(db)
    async with db.begin() as conn:
        a, b = await ledger.post_many(conn, [capture("k", "1.00", "0.10")] * 2)
    assert a.id == b.id and b.replayed
    with pytest.raises(ledger.IdempotencyConflict):
        async with db.begin() as conn:
            await ledger.post_many(conn, [capture("k2", "1.00", "0.10"), capture("k2", "2.00", "0.10")])


async def test_effective_date_and_booking_time(db):
    await open_chart(db)
    async with db.begin() as conn:
        entry = await ledger.post(conn, capture("cap-1", "1.00", "0.10",
                                                effective_date=dt.date(2026, 11, 1)))
    assert entry.effective_date == dt.date(2026, 11, 1)
    assert entry.booked_at.tzinfo is not None
    async with db.connect() as conn:
        assert (await ledger.get_entry(conn, entry.id)).booked_at == entry.booked_at


async def test_every_ledger_log_line_names_the_entry_and_its_key(db):
    from structlog.testing import capture_logs

    await open_chart(db)
    with capture_logs() as logs:
        async with db.begin() as conn:
            entry = await ledger.post(conn, capture("cap-log", "10.00", "1.00"))
            await ledger.post(conn, capture("cap-log", "10.00", "1.00"))
    events = [e for e in logs if e["event"].startswith("journal_entry.")]
    assert [e["event"] for e in events] == ["journal_entry.posted", "journal_entry.replayed"]
    assert all(e["entry_id"] == str(entry.id) and e["idempotency_key"] == "cap-log"
               for e in events)
