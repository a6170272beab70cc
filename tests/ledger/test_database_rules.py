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


async def _write_by_hand(conn, entry: dict | None, rows: list[dict]) -> None:
    """What a hand-written SQL writer would send. PostgreSQL takes an entry and its postings
    in one statement (migration 0008: the triggers check both at its end); SQLite, row by
    row, takes the postings first and the entry after them. Legs are numbered in the order
    given, per entry, unless a row names its own."""
    legs: dict[object, int] = {}
    for row in rows:
        legs[row["entry_id"]] = row.setdefault("leg_no", legs.get(row["entry_id"], 0) + 1)
    if conn.dialect.name == "postgresql":
        if entry is None:
            await conn.execute(postings.insert(), rows)
            return
        written = journal_entries.insert().values(**entry).cte("written_entry")
        await conn.execute(postings.insert().values(rows).add_cte(written))
        return
    await conn.execute(postings.insert(), rows)
    if entry is not None:
        await conn.execute(journal_entries.insert().values(**entry))


async def test_unbalanced_entry_written_by_hand_is_rejected(db):
    chart, _ = await _posted(db)
    e = uuid.uuid4()
    with pytest.raises(DBAPIError, match="balance"):
        async with db.begin() as conn:
            await _write_by_hand(conn, _raw_entry(e, "raw-1"), [
                _raw_posting(e, chart["1001.bank.icbc"].id, 500, 1),
                _raw_posting(e, chart["3001.equity.capital"].id, -499, 1),
            ])


async def test_single_posting_entry_written_by_hand_is_rejected(db):
    chart, _ = await _posted(db)
    e = uuid.uuid4()
    with pytest.raises(DBAPIError, match="two postings"):
        async with db.begin() as conn:
            await _write_by_hand(conn, _raw_entry(e, "raw-2"),
                                 [_raw_posting(e, chart["1001.bank.icbc"].id, 0 + 1, 1)])


async def test_an_entry_written_without_postings_is_rejected(db):
    await _posted(db)
    e = uuid.uuid4()
    with pytest.raises(DBAPIError, match="two postings"):
        async with db.begin() as conn:
            await conn.execute(journal_entries.insert().values(**_raw_entry(e, "raw-bare")))
    async with db.connect() as conn:
        assert (await ledger.verify(conn)).ok


async def test_an_entry_with_unbalanced_currencies_names_each_difference(db):
    """Balanced in total, not per currency: still refused (PostgreSQL names the differences)."""
    chart, _ = await _posted(db)
    e = uuid.uuid4()
    with pytest.raises(DBAPIError, match="balance") as refused:
        async with db.begin() as conn:
            await _write_by_hand(conn, _raw_entry(e, "raw-mixed"), [
                _raw_posting(e, chart["1001.bank.icbc"].id, 500, 1),
                _raw_posting(e, chart["2202.payable.usd"].id, -500, 1, currency="USD"),
            ])
    if db.dialect.name == "postgresql":
        assert "CNY 500" in str(refused.value) and "USD -500" in str(refused.value)


async def test_posting_in_another_currency_than_its_account_is_rejected(db):
    chart, _ = await _posted(db)
    e = uuid.uuid4()
    with pytest.raises(DBAPIError, match="currency"):
        async with db.begin() as conn:
            await _write_by_hand(conn, _raw_entry(e, "raw-usd"), [
                _raw_posting(e, chart["1001.bank.icbc"].id, 500, 1, currency="USD"),
                _raw_posting(e, chart["2202.payable.usd"].id, -500, 1, currency="USD"),
            ])


async def test_postings_cannot_be_added_to_a_written_entry(db):
    chart, entry = await _posted(db)
    after = len(entry.postings)
    with pytest.raises(DBAPIError, match="existing journal entry"):
        async with db.begin() as conn:
            await _write_by_hand(conn, None, [
                _raw_posting(entry.id, chart["1001.bank.icbc"].id, 500, 1) | {"leg_no": after + 1},
                _raw_posting(entry.id, chart["3001.equity.capital"].id, -500, 1)
                | {"leg_no": after + 2},
            ])
    # a leg number the entry already has: refused as well (by the primary key on
    # PostgreSQL, whose trigger runs after the statement; SQLite's runs before each row)
    with pytest.raises(DBAPIError, match="postings_pkey|existing journal entry"):
        async with db.begin() as conn:
            await _write_by_hand(conn, None, [
                _raw_posting(entry.id, chart["1001.bank.icbc"].id, 500, 1),
                _raw_posting(entry.id, chart["3001.equity.capital"].id, -500, 1),
            ])


async def test_a_balanced_entry_written_by_hand_is_accepted(db):
    """The rules above refuse what is wrong, not hand-written SQL as such."""
    chart, _ = await _posted(db)
    e = uuid.uuid4()
    async with db.begin() as conn:
        await _write_by_hand(conn, _raw_entry(e, "raw-ok"), [
            _raw_posting(e, chart["1001.bank.icbc"].id, 500, 9),
            _raw_posting(e, chart["3001.equity.capital"].id, -500, 9),
        ])
    async with db.connect() as conn:
        count = await conn.scalar(sa.text("SELECT count(*) FROM postings WHERE entry_id = :e"),
                                  {"e": e if db.dialect.name == "postgresql" else e.hex})
    assert count == 2


async def test_a_posting_to_an_account_that_does_not_exist_is_rejected(db):
    chart, _ = await _posted(db)
    e = uuid.uuid4()
    expected = "does not exist" if db.dialect.name == "postgresql" else "FOREIGN KEY"
    with pytest.raises(DBAPIError, match=expected):
        async with db.begin() as conn:
            await _write_by_hand(conn, _raw_entry(e, "raw-ghost"), [
                _raw_posting(e, chart["1001.bank.icbc"].id, 500, 1),
                _raw_posting(e, 987_654, -500, 1),
            ])
    async with db.connect() as conn:
        assert (await ledger.verify(conn)).ok


async def test_postings_without_their_entry_are_rejected(db):
    chart, _ = await _posted(db)
    e = uuid.uuid4()
    expected = "have no entry" if db.dialect.name == "postgresql" else "FOREIGN KEY"
    with pytest.raises(DBAPIError, match=expected):
        async with db.begin() as conn:
            await _write_by_hand(conn, None, [
                _raw_posting(e, chart["1001.bank.icbc"].id, 500, 1),
                _raw_posting(e, chart["3001.equity.capital"].id, -500, 1),
            ])
    async with db.connect() as conn:
        assert (await ledger.verify(conn)).ok


async def test_accounts_are_never_deleted(db):
    chart, _ = await _posted(db)
    unused = chart["2202.payable.usd"].id
    with pytest.raises(DBAPIError, match="never deleted"):
        async with db.begin() as conn:
            await conn.execute(sa.text("DELETE FROM accounts WHERE id = :i"), {"i": unused})
    async with db.connect() as conn:
        assert await ledger.get_account(conn, unused)


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
            await _write_by_hand(conn, {**_raw_entry(e, "raw-rev"), "reverses_entry_id": entry.id}, [
                _raw_posting(e, chart["1001.bank.icbc"].id, 500, 1),
                _raw_posting(e, chart["3001.equity.capital"].id, -500, 1),
            ])


async def test_the_books_are_untouched_after_every_rejection(db):
    await _posted(db)
    for sql in ("UPDATE postings SET amount = 0", "DELETE FROM journal_entries"):
        with pytest.raises(DBAPIError):
            async with db.begin() as conn:
                await conn.execute(sa.text(sql))
    async with db.connect() as conn:
        report = await ledger.verify(conn)
    assert report.ok and report.entries == 1 and report.postings == 3
