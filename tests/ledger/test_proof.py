from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

import ledger
from ledger import AccountType
from ledger.schema import UTCDateTime
from tests.ledger.chart import capture, cny, open_chart


async def _day(db) -> ledger.JournalEntry:
    await open_chart(db)
    async with db.begin() as conn:
        await ledger.post(conn, capture("cap-1", "100.00", "3.00"))
        second = await ledger.post(conn, capture("cap-2", "50.00", "1.50", supplier="2202.payable.s2"))
        await ledger.post(conn, ledger.EntryRequest("fee-1", "bank.fee", [
            ledger.Posting("6602.expense.bank_fees", debit=cny("0.60")),
            ledger.Posting("1102.clearing.icbc", credit=cny("0.60")),
        ]))
    return second


async def test_trial_balance_sums_by_account_and_type(db):
    await _day(db)
    async with db.connect() as conn:
        tb = await ledger.trial_balance(conn)
    assert tb.balanced
    assert tb.totals["CNY"] == (15000, 15000)
    assert tb.by_type[(AccountType.ASSET, "CNY")] == 14940
    assert tb.by_type[(AccountType.LIABILITY, "CNY")] == -(9700 + 4850)
    assert tb.by_type[(AccountType.INCOME, "CNY")] == -450
    assert tb.by_type[(AccountType.EXPENSE, "CNY")] == 60
    row = next(r for r in tb.rows if r.code == "2202.payable.s1")
    assert (row.debit, row.credit) == (0, 9700)


async def test_verify_ok_on_honest_books(db):
    await _day(db)
    async with db.connect() as conn:
        report = await ledger.verify(conn)
    assert report.ok, report.discrepancies
    assert (report.entries, report.postings, report.accounts) == (3, 8, 9)
    assert report.summary() == "verify: OK — 3 entries, 8 postings, 9 accounts, chains intact"


async def tamper(conn, sql: str, params: dict | None = None) -> None:
    """What an intruder with database access could do: switch the triggers off and edit."""
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    else:
        for table in ("postings", "journal_entries"):
            for op in ("update", "delete"):
                await conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
    await conn.execute(sa.text(sql), params or {})


async def test_the_triggers_really_are_off_in_tamper(db):
    await _day(db)
    async with db.begin() as conn:
        await tamper(conn, "UPDATE postings SET hash = 'x' WHERE account_seq = 1")
        assert await conn.scalar(sa.text("SELECT count(*) FROM postings WHERE hash = 'x'")) > 0


async def test_verify_names_a_posting_edited_behind_the_triggers(db):
    await _day(db)
    move = ("UPDATE postings SET amount = amount + :d, balance_after = balance_after + :d "
            "WHERE account_id = (SELECT id FROM accounts WHERE code = :c) AND account_seq = 1")
    async with db.begin() as conn:
        # move one fen from the commission to supplier 1, keeping the entry balanced
        await tamper(conn, move, {"d": 1, "c": "2202.payable.s1"})
        await tamper(conn, move, {"d": -1, "c": "6001.income.commission"})
    async with db.connect() as conn:
        report = await ledger.verify(conn)
    assert not report.ok
    assert report.first_discrepancy is not None
    assert "'2202.payable.s1' posting #1" in report.first_discrepancy
    assert "hash chain" in report.first_discrepancy
    assert any("6001.income.commission" in d for d in report.discrepancies)


async def test_verify_names_an_entry_whose_description_was_edited(db):
    second = await _day(db)
    async with db.begin() as conn:
        await tamper(
            conn, "UPDATE journal_entries SET description = 'nothing to see' WHERE id = :i",
            {"i": second.id.hex if conn.dialect.name == "sqlite" else second.id},
        )
    async with db.connect() as conn:
        report = await ledger.verify(conn)
    assert report.first_discrepancy is not None
    assert str(second.id) in report.first_discrepancy
    assert "changed after it was written" in report.first_discrepancy
    assert report.summary().startswith("verify: FAILED")


async def test_verify_finds_a_stored_balance_out_of_step(db):
    await _day(db)
    async with db.begin() as conn:
        # account_balances is not append-only: it is derived state verify() recomputes
        await conn.execute(sa.text(
            "UPDATE account_balances SET posted_credits = posted_credits + 100 "
            "WHERE account_id = (SELECT id FROM accounts WHERE code = '2202.payable.s2')"))
    async with db.connect() as conn:
        report = await ledger.verify(conn)
    assert any("'2202.payable.s2': stored balance" in d for d in report.discrepancies)
    assert any("total posted debits" in d for d in report.discrepancies)


async def test_verify_after_a_deleted_posting(db):
    await _day(db)
    async with db.begin() as conn:
        await tamper(conn, "DELETE FROM postings WHERE account_seq = 2 AND account_id = "
                     "(SELECT id FROM accounts WHERE code = '1102.clearing.icbc')")
    async with db.connect() as conn:
        report = await ledger.verify(conn)
    assert any("does not balance" in d for d in report.discrepancies)
    assert any("'1102.clearing.icbc'" in d and "missing" in d for d in report.discrepancies)


async def _rebook(conn, sql: str, at: dt.datetime, key: str) -> None:
    await tamper(conn, "SELECT 1")  # the triggers off, as in tamper()
    await conn.execute(sa.text(sql).bindparams(sa.bindparam("t", type_=UTCDateTime()),
                                               sa.bindparam("k")), {"t": at, "k": key})


async def test_verify_names_a_posting_booked_apart_from_its_entry(db):
    second = await _day(db)
    async with db.begin() as conn:
        await _rebook(conn, "UPDATE postings SET booked_at = :t WHERE entry_id IN (SELECT id FROM "
                      "journal_entries WHERE idempotency_key = :k)",
                      second.booked_at + dt.timedelta(seconds=1), "cap-2")
    async with db.connect() as conn:
        report = await ledger.verify(conn)
    assert report.first_discrepancy is not None
    assert "but its entry was booked at" in report.first_discrepancy
    assert str(second.id) in report.first_discrepancy


async def test_verify_names_postings_booked_out_of_sequence_order(db):
    """balance(as_of=) and statement() search an account's booking times by sequence
    number: an entry moved back in time behind the triggers (its hash breaks too) is named
    on each account where it now comes before its predecessor."""
    second = await _day(db)
    for table, column in (("journal_entries", "idempotency_key"), ("postings", None)):
        where = (f"{column} = :k" if column else
                 "entry_id IN (SELECT id FROM journal_entries WHERE idempotency_key = :k)")
        async with db.begin() as conn:
            await _rebook(conn, f"UPDATE {table} SET booked_at = :t WHERE {where}",
                          second.booked_at - dt.timedelta(days=1), "cap-2")
    async with db.connect() as conn:
        report = await ledger.verify(conn)
    assert any(str(second.id) in d and "changed after it was written" in d
               for d in report.discrepancies)
    out_of_order = [d for d in report.discrepancies if "booked in sequence order" in d]
    assert len(out_of_order) == 2, report.discrepancies  # clearing and commission: seq 2
    assert any("'1102.clearing.icbc' posting #2" in d for d in out_of_order)


async def test_history_of_an_account_with_a_deleted_posting_is_refused_not_guessed(db):
    """balance(as_of=) searches an account's sequence numbers: a posting deleted behind the
    triggers leaves a gap, and the answer is an error that points at verify(), never a
    balance read from the wrong posting."""
    second = await _day(db)
    async with db.begin() as conn:
        await tamper(conn, "DELETE FROM postings WHERE account_seq = 2 AND account_id = "
                     "(SELECT id FROM accounts WHERE code = '1102.clearing.icbc')")
    async with db.connect() as conn:
        with pytest.raises(ledger.LedgerError, match="run verify"):
            await ledger.balance(conn, "1102.clearing.icbc", as_of=second.booked_at)
        untouched = await ledger.balance(conn, "2202.payable.s1", as_of=second.booked_at)
    assert untouched.posted == cny("97.00")
