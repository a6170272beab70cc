"""Red team (issue #15 review): a returned loan disbursement, between its return and its
unwinding. Findings fail on today's main (xfail strict, the finding as reason). SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

import gateways
import ledger
import lending
from paycore.jobs.handlers import unwind_returned_loans
from tests.lending.book import CONFIG, posted, verify_ok
from tests.paycore.test_payout_safety import (
    CONTROLS,
    PAYABLE,
    _disbursed_by_payout,
    _loan,
    _paid_and_returned,
    at,
)
from tests.paycore.test_settlement import ONBOARDED, verified_account

__all__: list[str] = []


async def _returned_proceeds_paid_out_again(db) -> str:
    """A disbursement goes out and comes back (the account it went to is suspended); before
    any unwinding runs, a person asks to pay the payable's money to the borrower's other
    verified account (the API's, console's or CLI's manual payout) and a second person
    approves: the returned proceeds leave again."""
    payout = await _disbursed_by_payout(db, "RT1")
    await _paid_and_returned(db, payout.id, at(2), "account closed")
    async with db.begin() as conn:
        other = await verified_account(conn, number="6222020200999988887")
        available = (await gateways.get_payout(conn, payout.id)).amount
        asked = await gateways.request_supplier_payout(conn, gateways.SupplierPayoutRequest(
            payout_id="po-again", supplier_id="sup-001", account_id=other.id,
            amount=available, requested_by="user:merchant-ops", manual=True), CONTROLS,
            now=ONBOARDED + dt.timedelta(days=30))
        await gateways.approve_payout(conn, asked.id, actor="user:merchant-boss",
                                      controls=CONTROLS, now=ONBOARDED + dt.timedelta(days=30))
    return payout.id


@pytest.mark.xfail(strict=True, reason=(
    "FINDING (money can leave / robustness): a returned disbursement's proceeds sit on the "
    "payable, available, until the next unwind (settlement, check-returns job, nightly "
    "accrual): a manual payout takes them out meanwhile (paycore.disbursement's 'can "
    "neither be paid out again' does not hold). The unwind then fails with the ledger's "
    "BalanceLimitExceeded, not CannotUnwind: unwind_returned_disbursements raises, and "
    "with it the nightly accrual job (its first step) for every loan, and every "
    "settlement of the supplier, night after night"))
async def test_the_unwind_survives_returned_proceeds_paid_out_again(db):
    await _returned_proceeds_paid_out_again(db)
    # the job that runs before each night's accrual: a borrower the unwind cannot handle
    # is left to a person, the others' loans go on
    await unwind_returned_loans(db, CONFIG)


@pytest.mark.xfail(strict=True, reason=(
    "FINDING (money can leave): between a disbursement's return and its unwind, the "
    "returned proceeds on the payable are available to any manual payout (API, console, "
    "CLI); the payout path does not unwind first, as the settlement run does"))
async def test_returned_proceeds_are_not_paid_out_before_the_unwind(db):
    payout = await _disbursed_by_payout(db, "RT2")
    await _paid_and_returned(db, payout.id, at(2), "account closed")
    async with db.begin() as conn:
        other = await verified_account(conn, number="6222020200999988887")
    try:
        async with db.begin() as conn:
            await gateways.request_supplier_payout(conn, gateways.SupplierPayoutRequest(
                payout_id="po-again", supplier_id="sup-001", account_id=other.id,
                amount=payout.amount, requested_by="user:merchant-ops", manual=True),
                CONTROLS, now=ONBOARDED + dt.timedelta(days=30))
    except (gateways.PaymentError, ledger.LedgerError):
        pass  # refused, or the loan was unwound first and nothing is left to pay
    async with db.connect() as conn:
        assert await gateways.find_supplier_payout(conn, "po-again") is None
    assert (await _loan(db, "RT2")).status is lending.LoanStatus.APPROVED
    assert await posted(db, PAYABLE) == 0
    await verify_ok(db)
