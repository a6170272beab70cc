"""Storing statements: idempotent re-import, overlap dedupe, nothing from a refused file."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

import reconciliation
from reconciliation.schema import statement_lines, statements
from tests.reconciliation.builders import IBAN, L, camt053, setup_bank
from tests.reconciliation.conftest import fixture_bytes

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)


async def _counts(conn) -> tuple[int, int]:
    s = await conn.scalar(sa.select(sa.func.count()).select_from(statements))
    n = await conn.scalar(sa.select(sa.func.count()).select_from(statement_lines))
    return int(s or 0), int(n or 0)


async def test_reimporting_the_same_file_adds_nothing(db) -> None:
    data = camt053([L(10_000, D1, "CAP-1", "B1"), L(-2_500, D1, "PO-1", "B2"),
                    L(-2_500, D1, "PO-2", "B3")], opening=50_000)
    async with db.begin() as conn:
        bank = await setup_bank(conn)
        first = await reconciliation.import_statement(conn, bank, data, source_name="a.xml")
    assert (first.already_imported, first.lines, first.new_lines) == (False, 3, 3)
    async with db.begin() as conn:
        again = await reconciliation.import_statement(conn, bank, data, source_name="a-again.xml")
        assert (again.already_imported, again.new_lines) == (True, 0)
        assert await _counts(conn) == (1, 3)


async def test_an_overlapping_statement_adds_only_new_lines(db) -> None:
    day1 = [L(10_000, D1, "CAP-1", "B1"), L(-300, D1, None, None, "FEE"),
            L(-300, D1, None, None, "FEE")]
    day2 = [L(7_000, D2, "CAP-2", "B4")]
    async with db.begin() as conn:
        bank = await setup_bank(conn)
        await reconciliation.import_statement(conn, bank, camt053(day1, opening=1_000))
        # the bank re-sends day 1 inside a two-day statement: identical fee lines on one
        # day are told apart by their order, so both are recognised, none added twice
        both = camt053(day1 + day2, opening=1_000)
        result = await reconciliation.import_statement(conn, bank, both)
        assert (result.already_imported, result.lines, result.new_lines) == (False, 4, 1)
        assert await _counts(conn) == (2, 4)


async def test_an_unbalanced_statement_stores_nothing(db) -> None:
    data = camt053([L(10_000, D1, "CAP-1", "B1")], opening=0, closing=9_999)
    async with db.begin() as conn:
        bank = await setup_bank(conn)
    with pytest.raises(reconciliation.UnbalancedStatement, match="difference 0.01 CNY"):
        async with db.begin() as conn:
            await reconciliation.import_statement(conn, bank, data)
    async with db.connect() as conn:
        assert await _counts(conn) == (0, 0)


async def test_a_statement_in_another_currency_is_refused_clearly(db) -> None:
    data = camt053([L(10_000, D1, "CAP-1", "B1")], currency="USD")
    async with db.begin() as conn:
        bank = await setup_bank(conn)
    with pytest.raises(reconciliation.StatementCurrencyMismatch,
                       match="is in USD, but the account is kept in CNY"):
        async with db.begin() as conn:
            await reconciliation.import_statement(conn, bank, data)
    async with db.connect() as conn:
        assert await _counts(conn) == (0, 0)


async def test_a_statement_of_another_account_is_refused(db) -> None:
    data = camt053([L(10_000, D1, "CAP-1", "B1")], iban="CN0000000000000000009999")
    async with db.begin() as conn:
        bank = await setup_bank(conn)
    with pytest.raises(reconciliation.StatementForAnotherAccount, match=IBAN):
        async with db.begin() as conn:
            await reconciliation.import_statement(conn, bank, data)


async def test_a_truncated_file_stores_nothing(db) -> None:
    data = camt053([L(10_000, D1, "CAP-1", "B1"), L(5_000, D1, "CAP-2", "B2")])
    async with db.begin() as conn:
        bank = await setup_bank(conn)
    with pytest.raises(reconciliation.UnreadableStatement):
        async with db.begin() as conn:
            await reconciliation.import_statement(conn, bank, data[: len(data) // 2])
    async with db.connect() as conn:
        assert await _counts(conn) == (0, 0)


async def test_real_world_fixture_is_stored_with_its_batch_details(db) -> None:
    data = fixture_bytes("camt053_v02_icbc.xml")
    [parsed] = reconciliation.parse_statement(data)
    config = reconciliation.BankAccountConfig.for_bank("icbc", "CNY",
                                                       bank_account_number=parsed.account)
    async with db.begin() as conn:
        bank = await reconciliation.configure_bank_account(conn, config)
        result = await reconciliation.import_statement(conn, bank, data, source_name="icbc.xml")
        assert result.new_lines == len(parsed.lines)
        batch = await conn.scalar(sa.select(statement_lines.c.batch)
                                  .where(statement_lines.c.batch.is_not(None)))
        assert batch["item_count"] == 42 and batch["gross_minor"] == 1_250_000
        assert batch["fees_minor"] == 18_750
        row = (await conn.execute(sa.select(statements))).one()
        assert row.format == "camt.053" and row.line_count == len(parsed.lines)
        assert row.closing_minor == (await conn.scalar(
            sa.select(sa.func.sum(statement_lines.c.amount_minor)))) + row.opening_minor


async def test_progress_is_reported_for_every_line(db) -> None:
    seen: list[int] = []
    data = camt053([L(100 + i, D3, f"CAP-{i}", f"B{i}") for i in range(12)])
    async with db.begin() as conn:
        bank = await setup_bank(conn)
        await reconciliation.import_statement(conn, bank, data, progress=seen.append)
    assert sum(seen) == 12
