from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

import ledger
from ledger import queries
from ledger.schema import account_balances
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
    """A booking time is found by a binary search over each lane's sequence numbers: each
    step is a look-up of the unique (account_id, account_seq) index, never a scan of the
    postings or a sort of them."""
    await open_chart(db)
    cutoff = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    search = queries._lanes_before(1, cutoff, inclusive=True)
    sql = str(search.compile(dialect=db.dialect, compile_kwargs={"literal_binds": True}))
    async with db.begin() as conn:
        await ledger.post(conn, capture("cap-1", "10.00", "1.00"))
        if db.dialect.name == "postgresql":
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = await conn.exec_driver_sql("EXPLAIN " + sql)
            index = "uq_postings_account_seq"
        else:
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
            index = "(account_id=? AND account_seq=?)"
        plan = " ".join(str(r[-1]) for r in rows)
    assert index in plan and "INDEX" in plan.upper(), plan
    assert "Seq Scan on postings" not in plan and "SCAN p " not in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan


async def test_balance_as_of_every_moment_of_a_history(db):
    """For every entry of a history with many booking times (entries of one batch share
    one), the balance as of its booking time is the running balance after it, and a
    microsecond earlier the one before it; a statement of the day lists them all."""
    await open_chart(db)
    posted: list[ledger.JournalEntry] = []
    for n in range(23):
        async with db.begin() as conn:
            if n % 5 == 4:  # a batch: three entries booked at the same moment
                posted += await ledger.post_many(conn, [
                    capture(f"cap-{n}-{i}", f"{n + i + 1}.00", "0.10") for i in range(3)])
            else:
                posted.append(await ledger.post(conn, capture(f"cap-{n}", f"{n + 1}.00", "0.10")))
    running, before = [], 0
    for entry in posted:
        [leg] = [p for p in entry.postings if p.account_code == "1102.clearing.icbc"]
        running.append((entry.booked_at, before, leg.balance_after))
        before = leg.balance_after
    async with db.connect() as conn:
        for booked_at, _, _ in running:
            at = await ledger.balance(conn, "1102.clearing.icbc", as_of=booked_at)
            earlier = await ledger.balance(conn, "1102.clearing.icbc",
                                           as_of=booked_at - dt.timedelta(microseconds=1))
            last_at_that_moment = max(a for b, _, a in running if b == booked_at)
            first_before = min(p for b, p, _ in running if b == booked_at)
            assert at.posted.amount * 100 == last_at_that_moment
            assert earlier.posted.amount * 100 == first_before
        day = posted[0].booked_at.date()
        st = await ledger.statement(conn, "1102.clearing.icbc", day, posted[-1].booked_at.date())
    assert [line.entry_id for line in st.lines] == [e.id for e in posted]
    assert st.opening == cny(0) and st.closing.amount * 100 == running[-1][2]


async def test_a_writer_whose_clock_is_behind_books_after_the_accounts_last_posting(db):
    """Another writer's clock ran ahead (here: the account's last booking time is an hour
    in the future): the next entry on that account is booked no earlier, so the account's
    postings stay in booking order and its history stays searchable."""
    await open_chart(db)
    async with db.begin() as conn:
        first = await ledger.post(conn, capture("cap-1", "10.00", "1.00"))
    ahead = first.booked_at + dt.timedelta(hours=1)
    async with db.begin() as conn:
        await conn.execute(sa.update(account_balances)
                           .where(account_balances.c.account_id == first.postings[1].account_id)
                           .values(last_booked_at=ahead))
    async with db.begin() as conn:
        second = await ledger.post(conn, ledger.EntryRequest("pay-1", "payout", [
            ledger.Posting("2202.payable.s1", debit=cny("2.00")),
            ledger.Posting("1102.clearing.icbc", credit=cny("2.00"))]))
        reversed_ = await ledger.reverse(conn, second.id)  # the Python write path
    # the write function's clock and the Python write path's are both behind: both book then
    assert second.booked_at == ahead and reversed_.booked_at == ahead
    async with db.connect() as conn:
        payable_then = await ledger.balance(conn, "2202.payable.s1",
                                            as_of=ahead - dt.timedelta(microseconds=1))
        payable_after = await ledger.balance(conn, "2202.payable.s1", as_of=ahead)
        clearing = await ledger.balance(conn, "1102.clearing.icbc", as_of=ahead)
        st = await ledger.statement(conn, "2202.payable.s1", first.booked_at.date(), ahead.date())
        report = await ledger.verify(conn)
    assert payable_then.posted == cny("9.00")
    assert payable_after.posted == cny("9.00")  # the payout and its reversal
    assert clearing.posted == cny("10.00")
    assert [line.entry_id for line in st.lines] == [first.id, second.id, reversed_.id]
    assert [line.balance_after for line in st.lines] == [-900, -700, -900]
    assert report.ok, report.discrepancies
