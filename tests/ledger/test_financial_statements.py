"""The books as of any moment (#19): the trial balance, balance sheet and income statement
at a booking time in the past equal the books as they stood then, on both databases."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
from tests.ledger.chart import cny, open_chart


def _capture(key: str, amount: str, fee: str) -> ledger.EntryRequest:
    net = str(cny(amount).amount - cny(fee).amount)
    return ledger.EntryRequest(idempotency_key=key, kind="payment.capture", postings=[
        ledger.Posting("1102.clearing.icbc", debit=cny(amount)),
        ledger.Posting("2202.payable.s1", credit=cny(net)),
        ledger.Posting("6001.income.commission", credit=cny(fee))])


async def test_statements_as_of_a_past_moment(db: AsyncEngine) -> None:
    await open_chart(db)
    async with db.begin() as conn:
        first = await ledger.post(conn, _capture("c1", "100.00", "3.00"))
        await ledger.post(conn, ledger.EntryRequest(
            idempotency_key="capital", kind="capital", postings=[
                ledger.Posting("1001.bank.icbc", debit=cny("1000.00")),
                ledger.Posting("3001.equity.capital", credit=cny("1000.00"))]))
    async with db.connect() as conn:
        [line] = (await ledger.statement(conn, "6001.income.commission",
                                         first.effective_date, first.effective_date)).lines
    cutoff = line.booked_at
    await asyncio.sleep(0.01)  # the later entries are booked after the cutoff
    async with db.begin() as conn:
        await ledger.post(conn, _capture("c2", "50.00", "1.50"))
        await ledger.post(conn, ledger.EntryRequest(
            idempotency_key="fee", kind="bank.fee", postings=[
                ledger.Posting("6602.expense.bank_fees", debit=cny("0.50")),
                ledger.Posting("1102.clearing.icbc", credit=cny("0.50"))]))

    async with db.connect() as conn:
        then = await ledger.trial_balance_as_of(conn, cutoff)
        now = await ledger.trial_balance_as_of(conn, None)
        [sheet_then] = await ledger.balance_sheet(conn, cutoff)
        [sheet_now] = await ledger.balance_sheet(conn)
        [period] = await ledger.income_statement(conn, cutoff, None)
        [to_then] = await ledger.income_statement(conn, None, cutoff)

    commission = {r.code: r for r in then.rows}["6001.income.commission"]
    assert commission.credit == 300 and commission.debit == 0
    assert {r.code: r for r in now.rows}["6001.income.commission"].credit == 450
    assert then.balanced and now.balanced
    # the current trial balance and the as-of-now one agree account by account
    assert {(r.code, r.debit, r.credit) for r in now.rows if r.debit or r.credit} == {
        (r.code, r.debit, r.credit) for r in (await _as_of_far_future(db)).rows
        if r.debit or r.credit}
    assert sheet_then.balanced and sheet_now.balanced
    assert sheet_then.assets.total == 10000 and sheet_then.current_earnings == 300
    assert sheet_now.assets.total == 100000 + 10000 + 5000 - 50
    assert sheet_now.current_earnings == 450 - 50
    assert period.income.total == 150 and period.expenses.total == 50
    assert period.net_income == 100
    assert to_then.net_income == 300


async def _as_of_far_future(db: AsyncEngine) -> ledger.TrialBalance:
    import datetime as dt

    async with db.connect() as conn:
        return await ledger.trial_balance_as_of(conn, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
