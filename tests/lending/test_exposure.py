"""Issue #15 §1: a borrower's own loans never raise their credit line, and what a borrower
may draw is always the line less their outstanding exposure (principal, reserved approvals
and, as the policy says, interest, penalty and fees) — at application, at a risk officer's
approval and again at disbursement, under the borrower's lock. SQLite and PostgreSQL; every
test ends with `ledger.verify` OK and the loan book equal to the ledger."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa

import ledger
import lending
from ledger import EntryRequest, Posting
from lending import Borrower, LoanApplication, LoanStatus, Outcome, TradeRecord
from tests.lending.book import (
    CLEARING,
    CONFIG,
    DAY,
    cny,
    credit_payable,
    days,
    entry_count,
    verify_ok,
)

SUP = "sup-line"
PAYABLE = f"2202.payable.{SUP}"


async def sales_borrower(conn, supplier: str = SUP, *, monthly_sales: str = "200000.00",
                         config: lending.LendingConfig = CONFIG, on: dt.date = DAY) -> Borrower:
    """Two years on the marketplace and six months of settled sales: with no receivables
    yet, 50 % of 200,000.00 a month is a 100,000.00 line."""
    borrower = await lending.register_borrower(conn, Borrower(
        supplier, f"Supplier {supplier}", "CNY", onboarded_on=on - dt.timedelta(days=730),
    ), config)
    months = [(on.replace(day=15) - dt.timedelta(days=30 * k)).replace(day=15)
              for k in range(6, 0, -1)]
    await lending.import_trade_records(conn, supplier, [
        TradeRecord("sale", f"sales-{m:%Y-%m}", m, cny(monthly_sales)) for m in months], on)
    return borrower


async def line_of(db, supplier: str = SUP, on: dt.date = DAY,
                  config: lending.LendingConfig = CONFIG) -> lending.CreditLine:
    async with db.connect() as conn:
        return await lending.current_credit_line(conn, supplier, "supply_chain", on, config)


async def apply(db, loan_id: str, amount: str, *, supplier: str = SUP, on: dt.date = DAY,
                config: lending.LendingConfig = CONFIG) -> lending.ApplicationResult:
    async with db.begin() as conn:
        return await lending.apply_for_loan(conn, LoanApplication(
            supplier, "supply_chain", cny(amount), 30, on, loan_id=loan_id), config)


async def disburse(db, loan_id: str, on: dt.date = DAY,
                   config: lending.LendingConfig = CONFIG) -> lending.Disbursement:
    async with db.begin() as conn:
        return await lending.disburse_loan(conn, loan_id, on, config)


async def refund(conn, supplier: str, amount: str, key: str, on: dt.date = DAY) -> None:
    """What a settled refund does to the supplier payable (without the commission)."""
    await ledger.post(conn, EntryRequest(key, "payment.refund", effective_date=on, postings=[
        Posting(f"2202.payable.{supplier}", debit=cny(amount)),
        Posting(CLEARING, credit=cny(amount)),
    ]))


def codes(result: lending.ApplicationResult) -> list[str]:
    return [r.code for r in result.decision.reasons]


# -- the reproduction ------------------------------------------------------------


async def test_loan_proceeds_do_not_raise_the_line_and_a_second_draw_is_declined(db):
    async with db.begin() as conn:
        await sales_borrower(conn)
    line = await line_of(db)
    assert (line.limit_minor, line.available_minor) == (10_000_000, 10_000_000)

    assert (await apply(db, "D1", "100000.00")).decision.outcome is Outcome.APPROVE
    await disburse(db, "D1")
    line = await line_of(db)
    # the proceeds sit on the supplier payable, but they are the marketplace's own money
    assert line.limit_minor == 10_000_000 and line.available_minor == 0
    assert line.outstanding_minor == 10_000_000

    second = await apply(db, "D2", "80000.00")
    assert second.decision.outcome is Outcome.DECLINE and "over-line" in codes(second)
    assert second.decision.credit_line.available_minor == 0
    await verify_ok(db)


async def test_repeated_same_day_draws_never_exceed_the_line(db):
    async with db.begin() as conn:
        await sales_borrower(conn)
    drawn = 0
    for i in range(6):
        available = (await line_of(db)).available_minor
        if available < 1_000_000:  # the product's minimum
            break
        amount = lending.format_minor(available, "CNY").removesuffix(" CNY").replace(",", "")
        assert (await apply(db, f"R{i}", amount)).decision.outcome is Outcome.APPROVE
        await disburse(db, f"R{i}")
        drawn += available
    assert drawn == 10_000_000
    assert (await line_of(db)).available_minor == 0
    await verify_ok(db)


# -- what counts as receivables ----------------------------------------------------------


async def test_receivables_are_captures_net_of_refunds_not_yet_settled(db):
    async with db.begin() as conn:
        await sales_borrower(conn)
        await credit_payable(conn, SUP, "50000.00", "capture:line:1")
        await refund(conn, SUP, "10000.00", "refund:line:1")
    async with db.connect() as conn:
        data = await lending.borrower_data(conn, SUP, DAY, CONFIG)
    assert data.unsettled_receivables_minor == 4_000_000
    line = await line_of(db)
    assert line.limit_minor == 3_200_000 + 10_000_000  # 80 % of 40,000.00 + the sales part

    # a loan to the marketplace balance adds nothing to the receivables ...
    await apply(db, "P1", "20000.00")
    await disburse(db, "P1")
    async with db.connect() as conn:
        data = await lending.borrower_data(conn, SUP, DAY, CONFIG)
        payable = ledger.to_minor((await ledger.balance(conn, PAYABLE)).available)
    assert payable == 6_000_000 and data.unsettled_receivables_minor == 4_000_000
    # ... and paying some of the balance out takes the loan money first
    async with db.begin() as conn:
        await ledger.post(conn, EntryRequest("payout:line:1", "payout", effective_date=DAY,
                                             postings=[Posting(PAYABLE, debit=cny("25000.00")),
                                                       Posting(CLEARING, credit=cny("25000.00"))]))
    async with db.connect() as conn:
        data = await lending.borrower_data(conn, SUP, DAY, CONFIG)
    assert data.unsettled_receivables_minor == 3_500_000
    # a settlement that pays everything out leaves nothing unsettled
    async with db.begin() as conn:
        await ledger.post(conn, EntryRequest("payout:line:2", "payout", effective_date=DAY,
                                             postings=[Posting(PAYABLE, debit=cny("35000.00")),
                                                       Posting(CLEARING, credit=cny("35000.00"))]))
    async with db.connect() as conn:
        data = await lending.borrower_data(conn, SUP, DAY, CONFIG)
    assert data.unsettled_receivables_minor == 0
    await verify_ok(db)


# -- exposure: principal, and interest, penalty and fees if the policy says so ------------


async def test_exposure_counts_accrued_interest_and_fees_unless_the_policy_says_not(db):
    principal_only = dataclasses.replace(CONFIG, underwriting=dataclasses.replace(
        CONFIG.underwriting, line=dataclasses.replace(
            CONFIG.underwriting.line, exposure_includes_interest_and_fees=False)))
    async with db.begin() as conn:
        await sales_borrower(conn)
    await apply(db, "I1", "50000.00")
    await disburse(db, "I1")
    await lending.run_accrual(db, days(10), CONFIG)
    async with db.begin() as conn:
        await lending.extend_loan(conn, "I1", days(10), CONFIG)
        record = await lending.load_loan(conn, "I1", CONFIG)
    interest, fees = record.interest_outstanding_minor, record.fees_outstanding_minor
    assert interest == 13_699 and fees == 5_000  # 10 days at 10 % (136.99); 0.1 % ext. fee
    line = await line_of(db, on=days(10))
    assert line.outstanding_minor == 5_000_000 + interest + fees
    assert line.available_minor == 10_000_000 - 5_000_000 - interest - fees
    assert any(s.rule == "outstanding" and "interest" in s.detail for s in line.steps)
    plain = await line_of(db, on=days(10), config=principal_only)
    assert plain.available_minor == 5_000_000
    # the application is measured against the same figure the line shows (on fresh data)
    async with db.begin() as conn:
        await lending.import_trade_records(conn, SUP, [], days(10))
    over = await apply(db, "I2", "50000.00", on=days(10))
    assert over.decision.outcome is Outcome.DECLINE and "over-line" in codes(over)
    await verify_ok(db)


# -- the line is checked again at approval by a person and at disbursement ---------------


async def test_an_officer_cannot_approve_beyond_the_line(db):
    async with db.begin() as conn:
        await sales_borrower(conn)
    # a large amount is always reviewed by a person: two such applications queue up
    policy = dataclasses.replace(CONFIG.underwriting, review_amount_above_minor=5_000_000)
    config = dataclasses.replace(CONFIG, underwriting=policy)
    first = await apply(db, "M1", "60000.00", config=config)
    second = await apply(db, "M2", "60000.00", config=config)
    assert first.decision.outcome is second.decision.outcome is Outcome.MANUAL_REVIEW
    async with db.begin() as conn:
        await lending.review(conn, "M1", officer="risk.li", approve=True, comment="ok",
                             on=DAY, config=config)
    before = await entry_count(db)
    with pytest.raises(lending.CreditLineExceeded) as refused:
        async with db.begin() as conn:
            await lending.review(conn, "M2", officer="risk.wu", approve=True, comment="ok",
                                 on=DAY, config=config)
    assert "40,000.00 CNY" in str(refused.value)
    async with db.begin() as conn:  # a smaller amount that fits is fine
        saved = await lending.review(conn, "M2", officer="risk.wu", approve=True,
                                     comment="reduced to the line", on=DAY, config=config,
                                     amount=cny("40000.00"))
    assert saved.status is LoanStatus.APPROVED and await entry_count(db) == before
    assert (await line_of(db)).available_minor == 0
    await verify_ok(db)


async def blocked_or_done(db, task: asyncio.Task[object]) -> None:
    """Return once `task` waits for a lock another transaction holds (PostgreSQL: its
    backend waits on the borrower row; SQLite: its BEGIN IMMEDIATE waits for the writer)
    or has finished without waiting (no lock taken: the race this guards against)."""
    if db.dialect.name != "postgresql":
        await asyncio.sleep(0.1)  # aiosqlite's thread sits in BEGIN IMMEDIATE meanwhile
        return
    async with db.connect() as watcher:
        for _ in range(1000):  # a bound, so a missed sighting cannot hang the test
            if task.done():
                return
            waiting = await watcher.scalar(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query ILIKE '%lending_borrowers%FOR UPDATE%' "
                "AND datname = current_database()"))
            # pg_stat_activity is a snapshot per transaction: end it to look again
            await watcher.rollback()
            if waiting:
                return
            await asyncio.sleep(0.01)


async def test_two_officers_approving_at_once_cannot_both_fit_the_line(db):
    async with db.begin() as conn:
        await sales_borrower(conn)
    policy = dataclasses.replace(CONFIG.underwriting, review_amount_above_minor=5_000_000)
    config = dataclasses.replace(CONFIG, underwriting=policy)
    await apply(db, "C1", "60000.00", config=config)
    await apply(db, "C2", "60000.00", config=config)

    async def approve(loan_id: str) -> str:
        try:
            async with db.begin() as conn:
                await lending.review(conn, loan_id, officer=f"risk.{loan_id}", approve=True,
                                     comment="ok", on=DAY, config=config)
            return "approved"
        except lending.CreditLineExceeded:
            return "refused"
    # the first officer's approval is written and not yet committed when the second
    # one's starts: the second must wait for it, then see it, then be refused
    async with db.begin() as first:
        await lending.review(first, "C1", officer="risk.li", approve=True, comment="ok",
                             on=DAY, config=config)
        second = asyncio.create_task(approve("C2"))
        await blocked_or_done(db, second)  # type: ignore[arg-type]
    assert await second == "refused"
    line = await line_of(db, config=config)
    assert line.outstanding_minor == 6_000_000 <= line.limit_minor
    await verify_ok(db)


async def test_disbursement_rechecks_the_line_and_leaves_the_books_untouched(db):
    async with db.begin() as conn:
        await sales_borrower(conn)
        await credit_payable(conn, SUP, "50000.00", "capture:shrink:1")
    assert (await line_of(db)).limit_minor == 14_000_000
    assert (await apply(db, "S1", "140000.00")).decision.outcome is Outcome.APPROVE
    # before the money goes out, the goods the line was built on are refunded
    async with db.begin() as conn:
        await refund(conn, SUP, "50000.00", "refund:shrink:1")
    before = await entry_count(db)
    with pytest.raises(lending.CreditLineExceeded) as refused:
        await disburse(db, "S1")
    assert "100,000.00 CNY" in str(refused.value)
    assert await entry_count(db) == before
    async with db.connect() as conn:
        assert (await lending.load_loan(conn, "S1", CONFIG)).status is LoanStatus.APPROVED
    await verify_ok(db)


async def test_concurrent_applications_cannot_together_exceed_the_line(db):
    async with db.begin() as conn:
        await sales_borrower(conn)
    async with db.begin() as first:
        res = await lending.apply_for_loan(first, LoanApplication(
            SUP, "supply_chain", cny("60000.00"), 30, DAY, loan_id="A1"), CONFIG)
        assert res.decision.outcome is Outcome.APPROVE
        second = asyncio.create_task(apply(db, "A2", "60000.00"))
        await blocked_or_done(db, second)  # type: ignore[arg-type]
    late = await second
    assert late.decision.outcome is Outcome.DECLINE and "over-line" in codes(late)
    line = await line_of(db)
    assert line.outstanding_minor == 6_000_000 and line.available_minor == 4_000_000
    await verify_ok(db)
