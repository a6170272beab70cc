"""The exceptions queue and its resolutions (with their audit trail), and the report that
explains the bank-vs-book difference exactly."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
import sqlalchemy as sa

import ledger
import reconciliation
from reconciliation.schema import audit, matches
from tests.reconciliation.builders import (
    L,
    balance_of,
    camt053,
    capture,
    cny,
    payout,
    setup_bank,
)

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)
BANK, CLEARING, FEES = "1001.bank.icbc", "1102.clearing.icbc", "6602.expense.bank_fees"


async def _scenario(db, *, tolerance: int = 500):
    """Two captures and a payout booked; the bank shows one capture, an unknown fee, a
    capture under a reference nobody can read, and the payout."""
    async with db.begin() as conn:
        bank = await setup_bank(conn, tolerance=tolerance)
        await ledger.post_many(conn, [capture("icbc", "TXN-1", 10_000, D1),
                                      capture("icbc", "TXN-2", 7_000, D1),
                                      payout("PO-1", 4_000, D1)])
        lines = [L(10_000, D2, "TXN-1", "B1"), L(-300, D2, None, "B2", "SMS NOTIFICATION FEE"),
                 L(7_000, D2, None, "B3", "CUSTOMER DEPOSIT ZZZ"), L(-4_000, D2, "PO-1", "B4")]
        await reconciliation.import_statement(conn, bank, camt053(lines, opening=20_000,
                                                                  start=D2))
        await reconciliation.reconcile(conn, bank, D2)
    return bank


async def _open(db, bank):
    async with db.connect() as conn:
        return await reconciliation.list_exceptions(conn, bank)


async def test_unmatched_lines_and_items_are_queued_with_scored_candidates(db) -> None:
    bank = await _scenario(db)
    queue = await _open(db, bank)
    assert sorted((e.kind, e.amount_minor) for e in queue) == [
        ("book_item", 7_000), ("statement_line", -300), ("statement_line", 7_000)]
    deposit = next(e for e in queue if e.kind == "statement_line" and e.amount_minor == 7_000)
    item = next(e for e in queue if e.kind == "book_item")
    # the capture of the same amount is suggested for the deposit, and the other way round
    assert deposit.candidates[0]["id"] == f"{item.item_key[0]}:{item.item_key[1]}"
    assert deposit.candidates[0]["score"] >= 50
    assert item.candidates[0]["id"] == str(deposit.line_id)


async def test_resolve_by_manual_match(db) -> None:
    bank = await _scenario(db)
    queue = await _open(db, bank)
    deposit = next(e for e in queue if e.kind == "statement_line" and e.amount_minor == 7_000)
    async with db.begin() as conn:
        await reconciliation.resolve_by_match(
            conn, deposit.id, counterparts=[deposit.candidates[0]["id"]], actor="li.wei",
            reason="customer paid TXN-2 by bank transfer")
    queue = await _open(db, bank)
    assert [(e.kind, e.amount_minor) for e in queue] == [("statement_line", -300)]
    async with db.connect() as conn:
        assert await balance_of(conn, CLEARING) == 0
        [trail] = await reconciliation.audit_trail(conn, exception_id=deposit.id)
        assert (trail["actor"], trail["action"]) == ("li.wei", "manual_match")
        assert trail["reason"] == "customer paid TXN-2 by bank transfer"
        [done] = [e for e in await reconciliation.list_exceptions(conn, bank, status="resolved")
                  if e.id == deposit.id]
        assert (done.resolution, done.resolved_by) == ("manual_match", "li.wei")
        assert (await ledger.verify(conn)).ok


async def test_resolve_by_adjustment_entry_linked_to_the_line(db) -> None:
    bank = await _scenario(db, tolerance=0)
    fee = next(e for e in await _open(db, bank) if e.amount_minor == -300)
    async with db.begin() as conn:
        match_id = await reconciliation.post_adjustment(
            conn, fee.id, counter_account=FEES, actor="li.wei", reason="SMS fee for November")
    async with db.connect() as conn:
        assert await balance_of(conn, FEES) == 300
        entry_id = await conn.scalar(sa.select(matches.c.entry_id).where(matches.c.id == match_id))
        entry = await ledger.get_entry(conn, entry_id)
        assert entry.kind == "recon.adjustment"
        assert entry.metadata["line_id"] == fee.line_id
        assert entry.metadata["exception_id"] == fee.id
        assert (await ledger.verify(conn)).ok


async def test_an_adjustment_never_moves_a_payable_or_another_balance_sheet_account(db) -> None:
    # an unexplained credit on the statement "adjusted" onto a supplier's payable would be
    # paid out by the next settlement run: one person (who also imports the statements)
    # could send the marketplace's money out. An adjustment is against income or expense
    bank = await _scenario(db, tolerance=0)
    deposit = next(e for e in await _open(db, bank) if e.amount_minor == 7_000)
    async with db.begin() as conn:
        await ledger.open_account(conn, ledger.AccountSpec(
            "2202.payable.sup-9", "Supplier 9", ledger.AccountType.LIABILITY, "CNY"))
        await ledger.open_account(conn, ledger.AccountSpec(
            "1001.bank.boc", "Another bank", ledger.AccountType.ASSET, "CNY"))
        await ledger.open_account(conn, ledger.AccountSpec(
            "4001.equity.capital", "Capital", ledger.AccountType.EQUITY, "CNY"))
    for counter, kind in (("2202.payable.sup-9", "a liability"), (CLEARING, "an asset"),
                          ("1001.bank.boc", "an asset"), ("4001.equity.capital", "an equity")):
        async with db.begin() as conn:
            entries_before = await conn.scalar(sa.text("SELECT count(*) FROM journal_entries"))
            with pytest.raises(reconciliation.InvalidResolution) as refused:
                await reconciliation.post_adjustment(
                    conn, deposit.id, counter_account=counter, actor="li.wei",
                    reason="supplier says it is theirs")
            assert f"{counter} is {kind} account" in str(refused.value)
            assert "income or expense" in str(refused.value)
            assert await conn.scalar(sa.text("SELECT count(*) FROM journal_entries")) == entries_before
    assert deposit.id in {e.id for e in await _open(db, bank)}
    async with db.connect() as conn:
        assert await balance_of(conn, "2202.payable.sup-9") == 0
    # income explains it (interest the bank paid, say)
    async with db.begin() as conn:
        await ledger.open_account(conn, ledger.AccountSpec(
            "6051.income.interest", "Interest", ledger.AccountType.INCOME, "CNY"))
        await reconciliation.post_adjustment(conn, deposit.id,
                                             counter_account="6051.income.interest",
                                             actor="li.wei", reason="deposit interest")
    assert deposit.id not in {e.id for e in await _open(db, bank)}


async def test_write_off_only_within_tolerance(db) -> None:
    bank = await _scenario(db, tolerance=500)
    queue = await _open(db, bank)
    fee = next(e for e in queue if e.amount_minor == -300)
    deposit = next(e for e in queue if e.amount_minor == 7_000 and e.kind == "statement_line")
    async with db.begin() as conn:
        with pytest.raises(reconciliation.InvalidResolution, match="above the write-off tolerance"):
            await reconciliation.write_off(conn, deposit.id, actor="li.wei", reason="too big")
    async with db.begin() as conn:
        with pytest.raises(reconciliation.InvalidResolution, match="needs a reason"):
            await reconciliation.write_off(conn, fee.id, actor="li.wei", reason=" ")
        await reconciliation.write_off(conn, fee.id, actor="li.wei", reason="immaterial")
    async with db.begin() as conn:
        with pytest.raises(reconciliation.ExceptionNotOpen):
            await reconciliation.write_off(conn, fee.id, actor="li.wei", reason="again")
    async with db.connect() as conn:
        assert await balance_of(conn, "6609.expense.reconciliation_differences") == 300
        actions = (await conn.scalars(sa.select(audit.c.action))).all()
        assert actions == ["write_off"]
        assert (await ledger.verify(conn)).ok


async def test_a_manual_match_must_agree_within_tolerance(db) -> None:
    bank = await _scenario(db, tolerance=0)
    fee = next(e for e in await _open(db, bank) if e.amount_minor == -300)
    item = next(e for e in await _open(db, bank) if e.kind == "book_item")
    async with db.begin() as conn:
        with pytest.raises(reconciliation.InvalidResolution, match="more than the tolerance"):
            await reconciliation.resolve_by_match(
                conn, fee.id, counterparts=[f"{item.item_key[0]}:{item.item_key[1]}"],
                actor="li.wei", reason="wrong")


async def test_report_explains_the_difference_exactly(db) -> None:
    bank = await _scenario(db)
    async with db.connect() as conn:
        report = await reconciliation.build_report(conn, bank, D2)
    # bank: 20,000 + 10,000 - 300 + 7,000 - 4,000 = 32,700; books know 10,000 - 4,000
    assert report.bank_opening_minor == 20_000
    assert report.bank_closing_minor == 32_700
    assert report.book_closing_minor == 6_000
    assert report.difference_minor == 26_700
    assert report.brought_forward_minor == 20_000
    assert report.unmatched_lines_minor == 6_700
    assert report.timing_minor == 0 and report.explained
    assert sum(v for _, v in report.explanation()) == report.difference_minor
    assert report.matched_lines == 2 and report.matched_amount_minor == 6_000
    assert (report.open_line_exceptions, report.open_item_exceptions) == (2, 1)
    assert (report.in_transit_count, report.in_transit_minor) == (1, 7_000)
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["difference_minor"] == 26_700 and doc["explained"] is True
    rows = list(csv.reader(io.StringIO(report.to_csv())))
    assert ["balance", "difference", "267.00", "CNY", "2026-11-21", ""] in rows
    assert sum(r[0] == "unmatched line" for r in rows) == 2


async def test_report_after_everything_is_resolved_has_no_difference_but_brought_forward(db) -> None:
    bank = await _scenario(db, tolerance=500)
    async with db.begin() as conn:
        await ledger.post(conn, ledger.EntryRequest(
            idempotency_key="opening", kind="opening.balance", effective_date=D1,
            postings=[ledger.Posting(BANK, debit=cny(20_000)),
                      ledger.Posting("3001.equity.capital", credit=cny(20_000))]))
        queue = await reconciliation.list_exceptions(conn, bank)
        fee = next(e for e in queue if e.amount_minor == -300)
        deposit = next(e for e in queue if e.kind == "statement_line" and e.amount_minor == 7_000)
        await reconciliation.write_off(conn, fee.id, actor="a", reason="fee")
        await reconciliation.resolve_by_match(conn, deposit.id,
                                              counterparts=[deposit.candidates[0]["id"]],
                                              actor="a", reason="same payment")
        await reconciliation.reconcile(conn, bank, D2)
        report = await reconciliation.build_report(conn, bank, D2)
    # the opening entry is a book item on the bank account no statement line explains,
    # dated before the first statement: it is in the brought-forward figure
    assert report.difference_minor == 0
    assert report.brought_forward_minor == 0 and report.explained
    assert report.in_transit_minor == 0
