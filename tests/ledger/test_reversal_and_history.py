from __future__ import annotations

import datetime as dt

import pytest

import ledger
from tests.ledger.chart import capture, cny, open_chart


async def test_reverse_posts_the_mirror_once(db):
    await open_chart(db)
    async with db.begin() as conn:
        original = await ledger.post(conn, capture("cap-1", "100.00", "3.00"))
    async with db.begin() as conn:
        reversal = await ledger.reverse(conn, original.id)
    assert reversal.reverses_entry_id == original.id
    assert [p.amount for p in reversal.postings] == [-p.amount for p in original.postings]
    assert reversal.kind == "payment.capture.reversal"
    async with db.connect() as conn:
        for code in ("1102.clearing.icbc", "2202.payable.s1", "6001.income.commission"):
            assert (await ledger.balance(conn, code)).posted == cny(0)
    async with db.begin() as conn:
        replay = await ledger.reverse(conn, original.id)
    assert replay.replayed and replay.id == reversal.id
    with pytest.raises(ledger.AlreadyReversed):
        async with db.begin() as conn:
            await ledger.reverse(conn, original.id, idempotency_key="another-key")


async def test_reverse_unknown_entry(db):
    import uuid

    await open_chart(db)
    with pytest.raises(ledger.EntryNotFound):
        async with db.begin() as conn:
            await ledger.reverse(conn, uuid.uuid4())


async def test_statement_has_opening_running_and_closing(db):
    await open_chart(db)
    for i, amount in enumerate(["10.00", "20.00", "30.00"]):
        async with db.begin() as conn:
            await ledger.post(conn, capture(f"cap-{i}", amount, "1.00"))
    today = dt.datetime.now(dt.UTC).date()
    async with db.connect() as conn:
        st = await ledger.statement(conn, "2202.payable.s1", today, today)
        before = await ledger.statement(conn, "2202.payable.s1", today - dt.timedelta(days=3),
                                        today - dt.timedelta(days=1))
        after = await ledger.statement(conn, "2202.payable.s1", today + dt.timedelta(days=1),
                                       today + dt.timedelta(days=2))
    assert st.opening == cny(0)
    assert [line.amount for line in st.lines] == [-900, -1900, -2900]
    assert [line.balance_after for line in st.lines] == [-900, -2800, -5700]
    assert st.closing == cny("57.00")
    assert before.lines == () and before.closing == cny(0)
    assert after.opening == cny("57.00") and after.lines == ()


async def test_balance_as_of_answers_from_history(db):
    await open_chart(db)
    async with db.begin() as conn:
        first = await ledger.post(conn, capture("cap-1", "10.00", "1.00"))
    async with db.begin() as conn:
        await ledger.post(conn, capture("cap-2", "20.00", "1.00"))
    async with db.connect() as conn:
        at_first = await ledger.balance(conn, "1102.clearing.icbc", as_of=first.booked_at)
        before = await ledger.balance(conn, "1102.clearing.icbc",
                                      as_of=first.booked_at - dt.timedelta(microseconds=1))
        end_of_day = await ledger.balance(conn, "1102.clearing.icbc",
                                          as_of=first.booked_at.date())
        now = await ledger.balance(conn, "1102.clearing.icbc")
    assert at_first.posted == cny("10.00")
    assert before.posted == cny(0)
    assert end_of_day.posted == cny("30.00")
    assert now.posted == cny("30.00")


async def test_as_of_must_be_aware(db):
    await open_chart(db)
    with pytest.raises(ledger.InvalidRequest):
        async with db.connect() as conn:
            await ledger.balance(conn, "1102.clearing.icbc", as_of=dt.datetime(2026, 1, 1))


async def test_history_lookup_uses_the_account_index(db):
    """The history queries are index look-ups on postings, not scans."""
    await open_chart(db)
    query = ("SELECT balance_after FROM postings WHERE account_id = 1 AND booked_at <= "
             "'2030-01-01' ORDER BY booked_at DESC, account_seq DESC LIMIT 1")
    async with db.begin() as conn:
        await ledger.post(conn, capture("cap-1", "10.00", "1.00"))
        if db.dialect.name == "postgresql":
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = await conn.exec_driver_sql("EXPLAIN " + query)
        else:
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + query)
        plan = " ".join(str(r[-1]) for r in rows)
    assert "ix_postings_account_booked" in plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan
