"""Each matching rule, what it posts, and that the books still prove out."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

import ledger
import reconciliation
from reconciliation.schema import match_items, matches
from tests.reconciliation.builders import (
    L,
    balance_of,
    camt053,
    capture,
    payout,
    refund,
    setup_bank,
)

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)
BANK, CLEARING, PAYOUTS = "1001.bank.icbc", "1102.clearing.icbc", "1103.clearing.payout"
FEES, DIFFS = "6602.expense.bank_fees", "6609.expense.reconciliation_differences"


async def _run(db, book, lines, *, up_to=D3, tolerance=0, rules=None, opening=0):
    async with db.begin() as conn:
        bank = await setup_bank(conn, tolerance=tolerance, rules=rules)
        if book:
            await ledger.post_many(conn, book)
        await reconciliation.import_statement(conn, bank, camt053(lines, opening=opening))
        result = await reconciliation.reconcile(conn, bank, up_to)
    return bank, result


async def _verified(db) -> None:
    async with db.connect() as conn:
        report = await ledger.verify(conn)
    assert report.ok, report.summary()


async def _rules_used(db) -> list[str]:
    async with db.connect() as conn:
        return sorted((await conn.scalars(sa.select(matches.c.rule))).all())


async def test_exact_reference_matches_captures_refunds_and_payouts(db) -> None:
    book = [capture("icbc", "TXN-1", 10_000, D1), capture("icbc", "TXN-2", 5_000, D1),
            refund("icbc", "RF-1", 2_000, D2), payout("PO-1", 6_000, D2)]
    lines = [L(10_000, D2, "TXN-1", "B1"), L(5_000, D2, "TXN-2", "B2"),
             L(-2_000, D2, "RF-1", "B3"), L(-6_000, D3, "PO-1", "B4")]
    _, result = await _run(db, book, lines)
    assert result.matched_lines == 4 and result.by_rule == {"exact_reference": 4}
    assert (result.open_line_exceptions, result.open_item_exceptions) == (0, 0)
    async with db.connect() as conn:
        assert await balance_of(conn, CLEARING) == 0
        assert await balance_of(conn, PAYOUTS) == 0
        assert await balance_of(conn, BANK) == 7_000
        # plain matches of a booking day share one settlement entry
        entry_ids = set((await conn.scalars(sa.select(matches.c.entry_id))).all())
        assert len(entry_ids) == 2
    await _verified(db)


async def test_amount_date_and_fuzzy_reference(db) -> None:
    book = [capture("icbc", "PI-2026-000731", 150_000, D1)]
    # no end-to-end id; the reference is only in the remittance text, written differently,
    # and the bank books it two days later
    lines = [L(150_000, D3, None, "B1", "ORDER PI 2026000731 HANGZHOU LIANHUA")]
    _, result = await _run(db, book, lines)
    assert result.by_rule == {"amount_date_reference": 1}
    async with db.connect() as conn:
        assert await balance_of(conn, CLEARING) == 0
    await _verified(db)


async def test_same_amount_without_a_similar_reference_is_not_matched(db) -> None:
    book = [capture("icbc", "PI-2026-000731", 150_000, D1)]
    lines = [L(150_000, D2, None, "B1", "UNRELATED CUSTOMER DEPOSIT")]
    _, result = await _run(db, book, lines)
    assert result.matched_lines == 0
    assert (result.open_line_exceptions, result.open_item_exceptions) == (1, 1)


async def test_batch_settlement_by_listed_references_posts_the_fee(db) -> None:
    book = [capture("icbc", f"CAP-{i}", amount, D1)
            for i, amount in enumerate((40_000, 35_000, 25_000), start=1)]
    lines = [L(99_550, D2, None, "B1", "ACQUIRER SETTLEMENT 3 TRX NET OF FEES",
               batch_refs=("CAP-1", "CAP-2", "CAP-3"), batch_gross=100_000, batch_fee=450,
               batch_count=3)]
    _, result = await _run(db, book, lines)
    assert result.by_rule == {"batch": 1} and result.matched_items == 3
    assert result.fees_minor == 450
    async with db.connect() as conn:
        assert await balance_of(conn, CLEARING) == 0  # clearing emptied
        assert await balance_of(conn, FEES) == 450  # the fee entry posted
        assert await balance_of(conn, BANK) == 99_550  # the bank holds the net
        [entry_id] = (await conn.scalars(sa.select(matches.c.entry_id))).all()
        entry = await ledger.get_entry(conn, entry_id)
        assert entry.kind == "recon.settlement"
        legs = sorted((p.account_code, p.amount) for p in entry.postings)
        assert legs == [(BANK, 99_550), (CLEARING, -100_000), (FEES, 450)]
    await _verified(db)


async def test_batch_settlement_without_references_by_subset_of_amounts(db) -> None:
    book = [capture("icbc", f"CAP-{i}", amount, D1)
            for i, amount in enumerate((12_000, 30_000, 8_000, 50_000, 7_000), start=1)]
    # the bank settles three of the five (gross 45,000 less 1% fee); only the gross is given
    lines = [L(44_550, D2, None, "B1", "CARD SETTLEMENT 20261120", batch_gross=45_000)]
    _, result = await _run(db, book, lines)
    assert result.by_rule == {"batch": 1} and result.matched_items in (2, 3)
    async with db.connect() as conn:
        assert await balance_of(conn, FEES) == 450
        assert await balance_of(conn, CLEARING) == 107_000 - 45_000
    await _verified(db)


async def test_batch_settlement_of_a_whole_day_without_details(db) -> None:
    book = [capture("icbc", f"CAP-{i}", 10_000, D1) for i in range(4)]
    book.append(capture("icbc", "CAP-LATER", 99_999, D3))
    lines = [L(39_800, D2, None, "B1", "WECHAT PAY SETTLEMENT 4 ITEMS NET OF FEES")]
    _, result = await _run(db, book, lines, up_to=D2)
    assert result.by_rule == {"batch": 1} and result.matched_items == 4
    async with db.connect() as conn:
        assert await balance_of(conn, FEES) == 200
        assert await balance_of(conn, CLEARING) == 99_999
    await _verified(db)


async def test_many_lines_to_one_item(db) -> None:
    # the bank pays one payout in two tranches under the same end-to-end id
    book = [payout("PO-77", 50_000, D1)]
    lines = [L(-30_000, D2, "PO-77", "B1"), L(-20_000, D2, "PO-77", "B2")]
    _, result = await _run(db, book, lines, opening=100_000)
    assert result.by_rule == {"many_to_one": 2}
    async with db.connect() as conn:
        assert await balance_of(conn, PAYOUTS) == 0
        assert await balance_of(conn, BANK) == -50_000
    await _verified(db)


async def test_tolerance_write_off_to_the_differences_account(db) -> None:
    book = [capture("icbc", "TXN-9", 10_000, D1), capture("icbc", "TXN-10", 10_000, D1)]
    lines = [L(9_950, D2, "TXN-9", "B1"), L(9_000, D2, "TXN-10", "B2")]
    _, result = await _run(db, book, lines, tolerance=100)
    # within 1.00: written off; 10.00 apart: an exception for a person
    assert result.by_rule == {"tolerance": 1}
    assert result.written_off_minor == 50
    assert (result.open_line_exceptions, result.open_item_exceptions) == (1, 1)
    async with db.connect() as conn:
        assert await balance_of(conn, DIFFS) == 50
        assert await balance_of(conn, CLEARING) == 10_000
    await _verified(db)


async def test_rules_can_be_switched_off(db) -> None:
    book = [capture("icbc", "TXN-1", 10_000, D1)]
    rules = reconciliation.MatchingRules(enabled=("batch",))
    _, result = await _run(db, book, [L(10_000, D2, "TXN-1", "B1")], rules=rules)
    assert result.matched_lines == 0


async def test_a_second_run_matches_nothing_twice(db) -> None:
    book = [capture("icbc", "TXN-1", 10_000, D1)]
    bank, _ = await _run(db, book, [L(10_000, D2, "TXN-1", "B1"), L(10_000, D2, "TXN-1", "B9")])
    async with db.begin() as conn:
        again = await reconciliation.reconcile(conn, bank, D3)
    # the duplicate bank line stays an exception; the capture is used once
    assert again.matched_lines == 0 and again.open_line_exceptions == 1
    async with db.connect() as conn:
        assert await balance_of(conn, BANK) == 10_000
    await _verified(db)


async def test_a_posting_is_reconciled_at_most_once(db) -> None:
    book = [capture("icbc", "TXN-1", 10_000, D1)]
    await _run(db, book, [L(10_000, D2, "TXN-1", "B1")])
    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            row = (await conn.execute(sa.select(match_items))).one()
            await conn.execute(match_items.insert().values(
                match_id=row.match_id, account_id=row.account_id, account_seq=row.account_seq))


async def test_items_posted_later_are_picked_up_by_the_next_run(db) -> None:
    bank, first = await _run(db, [], [L(10_000, D2, "TXN-LATE", "B1")])
    assert first.open_line_exceptions == 1
    async with db.begin() as conn:
        await ledger.post(conn, capture("icbc", "TXN-LATE", 10_000, D2))
        second = await reconciliation.reconcile(conn, bank, D3)
        assert second.items_added == 1 and second.matched_lines == 1
        [resolved] = await reconciliation.list_exceptions(conn, bank, status="resolved")
        assert resolved.resolution == "auto_match"
    await _verified(db)


async def test_a_reversed_capture_is_not_waiting_for_the_bank(db) -> None:
    async with db.begin() as conn:
        bank = await setup_bank(conn)
        entry = await ledger.post(conn, capture("icbc", "TXN-X", 10_000, D1))
        await ledger.reverse(conn, entry.id, idempotency_key="rev:TXN-X")
        result = await reconciliation.reconcile(conn, bank, D3)
    assert result.open_item_exceptions == 0


async def test_many_to_one_across_chunks(db, monkeypatch) -> None:
    import reconciliation.engine
    monkeypatch.setattr(reconciliation.engine, "CHUNK", 1)  # every line a chunk of its own
    book = [payout("PO-78", 50_000, D1), capture("icbc", "TXN-5", 700, D1)]
    lines = [L(-30_000, D1, "PO-78", "B1"), L(700, D2, "TXN-5", "B2"),
             L(-20_000, D3, "PO-78", "B3")]
    _, result = await _run(db, book, lines, opening=100_000)
    assert result.by_rule == {"many_to_one": 2, "exact_reference": 1}
    assert result.open_line_exceptions == 0
    await _verified(db)
