"""The database enforces the ledger's rules on its own, against any writer."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

import ledger
from ledger.schema import journal_entries, postings
from tests.ledger.chart import capture, open_chart

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


async def _posted(db):
    chart = await open_chart(db)
    async with db.begin() as conn:
        entry = await ledger.post(conn, capture("cap-1", "100.00", "3.00"))
    return chart, entry


@pytest.mark.parametrize("sql", [
    "UPDATE journal_entries SET description = 'edited'",
    "DELETE FROM journal_entries",
    "UPDATE postings SET amount = amount + 1",
    "DELETE FROM postings",
])
async def test_append_only_rejects_update_and_delete(db, sql):
    await _posted(db)
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin() as conn:
            await conn.execute(sa.text(sql))
    async with db.connect() as conn:
        assert (await ledger.verify(conn)).ok


async def test_truncate_or_wholesale_delete_is_rejected(db):
    await _posted(db)
    statement = "TRUNCATE postings" if db.dialect.name == "postgresql" else "DELETE FROM postings"
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin() as conn:
            await conn.execute(sa.text(statement))


def _raw_entry(entry_id: uuid.UUID, key: str) -> dict:
    return dict(id=entry_id, idempotency_key=key, request_hash="r", kind="raw", description="",
                effective_date=NOW.date(), booked_at=NOW, reverses_entry_id=None,
                external_ref=None, metadata={}, hash="h")


def _raw_posting(entry_id: uuid.UUID, account_id: int, amount: int, seq: int,
                 currency: str = "CNY") -> dict:
    return dict(entry_id=entry_id, account_id=account_id, amount=amount, currency=currency,
                account_seq=seq, balance_after=amount, booked_at=NOW,
                effective_date=NOW.date(), hash="h")


async def test_unbalanced_entry_written_by_hand_is_rejected(db):
    chart, _ = await _posted(db)
    e = uuid.uuid4()
    with pytest.raises(DBAPIError, match="balance"):
        async with db.begin() as conn:
            await conn.execute(postings.insert(), [
                _raw_posting(e, chart["1001.bank.icbc"].id, 500, 1),
                _raw_posting(e, chart["3001.equity.capital"].id, -499, 1),
            ])
            await conn.execute(journal_entries.insert().values(**_raw_entry(e, "raw-1")))


async def test_single_posting_entry_written_by_hand_is_rejected(db):
    chart, _ = await _posted(db)
    e = uuid.uuid4()
    with pytest.raises(DBAPIError, match="two postings"):
        async with db.begin() as conn:
            await conn.execute(postings.insert(), [_raw_posting(e, chart["1001.bank.icbc"].id, 0 + 1, 1)])
            await conn.execute(journal_entries.insert().values(**_raw_entry(e, "raw-2")))


async def test_posting_in_another_currency_than_its_account_is_rejected(db):
    chart, _ = await _posted(db)
    e = uuid.uuid4()
    with pytest.raises(DBAPIError, match="currency"):
        async with db.begin() as conn:
            await conn.execute(postings.insert(), [
                _raw_posting(e, chart["1001.bank.icbc"].id, 500, 1, currency="USD"),
                _raw_posting(e, chart["2202.payable.usd"].id, -500, 1, currency="USD"),
            ])


async def test_postings_cannot_be_added_to_a_written_entry(db):
    chart, entry = await _posted(db)
    with pytest.raises(DBAPIError, match="existing journal entry"):
        async with db.begin() as conn:
            await conn.execute(postings.insert(), [
                _raw_posting(entry.id, chart["1001.bank.icbc"].id, 500, 1),
                _raw_posting(entry.id, chart["3001.equity.capital"].id, -500, 1),
            ])


async def test_balance_limit_is_a_database_check_too(db):
    await _posted(db)
    with pytest.raises(DBAPIError, match="ck_account_balances_limit"):
        async with db.begin() as conn:
            await conn.execute(sa.text(
                "UPDATE account_balances SET posted_debits = posted_credits + 1 WHERE account_id ="
                " (SELECT id FROM accounts WHERE code = '2202.payable.s1')"))


async def test_an_entry_is_reversed_at_most_once_in_the_database(db):
    chart, entry = await _posted(db)
    async with db.begin() as conn:
        await ledger.reverse(conn, entry.id)
    e = uuid.uuid4()
    with pytest.raises(DBAPIError):
        async with db.begin() as conn:
            await conn.execute(postings.insert(), [
                _raw_posting(e, chart["1001.bank.icbc"].id, 500, 1),
                _raw_posting(e, chart["3001.equity.capital"].id, -500, 1),
            ])
            await conn.execute(journal_entries.insert().values(
                **{**_raw_entry(e, "raw-rev"), "reverses_entry_id": entry.id}))


async def test_the_books_are_untouched_after_every_rejection(db):
    await _posted(db)
    for sql in ("UPDATE postings SET amount = 0", "DELETE FROM journal_entries"):
        with pytest.raises(DBAPIError):
            async with db.begin() as conn:
                await conn.execute(sa.text(sql))
    async with db.connect() as conn:
        report = await ledger.verify(conn)
    assert report.ok and report.entries == 1 and report.postings == 3
