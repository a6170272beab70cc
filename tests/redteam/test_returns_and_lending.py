"""Red team (issue #15 review): a returned loan disbursement, between its return and its
unwinding. Both findings are closed: the return unwinds the loan as it is booked, every
supplier payout unwinds (or is refused) first, and an unwind that cannot be done is one
loan's matter for a person, never the accrual's or the settlement run's. SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

import gateways
import ledger
import lending
from paycore import settlement
from paycore.jobs.handlers import unwind_returned_loans
from tests.lending.book import (
    CONFIG,
    approved,
    cny,
    credit_payable,
    days,
    good_borrower,
    posted,
    verify_ok,
)
from tests.paycore.test_payout_safety import (
    CONTROLS,
    PAYABLE,
    PAYOUT_CONFIG,
    _disbursed_by_payout,
    _lending_config_of_the_process,  # noqa: F401 - autouse: the process's lending config
    _loan,
    _paid_and_returned,
    at,
)
from tests.paycore.test_settlement import ONBOARDED, verified_account

__all__: list[str] = []


async def _returned_proceeds_paid_out_again(db, monkeypatch) -> str:
    """A disbursement goes out and comes back (the account it went to is suspended); a
    person asks to pay the payable's money to the borrower's other verified account (the
    API's, console's or CLI's manual payout) and a second person approves: the returned
    proceeds leave again. Today neither can happen (the return unwinds the loan, the
    payout unwinds first); it is what a process without paycore's hooks did — the books
    of a release before them — so the hooks are taken away for the setup."""
    from gateways import payout_hooks

    monkeypatch.setattr(payout_hooks, "_return_hooks", [])
    monkeypatch.setattr(payout_hooks, "_checks", [])
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
    monkeypatch.undo()
    return payout.id


async def test_the_unwind_survives_returned_proceeds_paid_out_again(db, monkeypatch):
    payout_id = await _returned_proceeds_paid_out_again(db, monkeypatch)
    # the job that runs before each night's accrual: a borrower the unwind cannot handle
    # is left to a person, the others' loans go on
    assert await unwind_returned_loans(db, CONFIG) == []
    loan = await _loan(db, "RT1")
    assert loan.status is lending.LoanStatus.ACTIVE and loan.payout_id == payout_id
    async with db.connect() as conn:
        reviews = await gateways.list_payout_reviews(conn)
        assert await ledger.find_entry(
            conn, f"loan.disbursement.returned:RT1:{payout_id}") is None
    assert any(r.payout_id == payout_id and r.kind == gateways.ReviewKind.RETURNED
               for r in reviews)
    # and nothing more leaves that payable until a person has settled the loan
    async with db.begin() as conn:
        other = next(a for a in await gateways.list_accounts(conn, "sup-001")
                     if a.status is gateways.AccountState.VERIFIED)
        await credit_payable(conn, "sup-001", "500.00", "capture:sup-001:after")
    with pytest.raises(gateways.PayoutBlocked, match=r"loan RT1 \(payout disb-RT1\)"):
        async with db.begin() as conn:
            await gateways.request_supplier_payout(conn, gateways.SupplierPayoutRequest(
                payout_id="po-blocked", supplier_id="sup-001", account_id=other.id,
                amount=cny("500.00"),
                requested_by="user:merchant-ops", manual=True),
                CONTROLS, now=ONBOARDED + dt.timedelta(days=31))
    async with db.connect() as conn:
        assert await gateways.find_supplier_payout(conn, "po-blocked") is None
    await verify_ok(db)


async def _returned_disbursement_of(db, supplier: str, loan_id: str, number: str) -> None:
    """Another borrower whose disbursement came back, booked (as before the return hooks)
    without its loan being unwound yet."""
    from gateways import payout_hooks
    from paycore import disbursement

    async with db.begin() as conn:
        await good_borrower(conn, supplier, receivables="", config=PAYOUT_CONFIG)
        await verified_account(conn, supplier, number=number)
        await approved(conn, loan_id, supplier=supplier, config=PAYOUT_CONFIG)
        out = await disbursement.disburse(conn, loan_id, days(0), PAYOUT_CONFIG,
                                          controls=CONTROLS)
    assert out.payout is not None
    hooks = payout_hooks._return_hooks[:]
    payout_hooks._return_hooks.clear()
    try:
        await _paid_and_returned(db, out.payout.id, at(2), "account closed")
    finally:
        payout_hooks._return_hooks.extend(hooks)


async def test_one_unwind_that_cannot_be_done_stops_neither_the_accrual_nor_the_settlement(
        db, monkeypatch):
    await _returned_proceeds_paid_out_again(db, monkeypatch)      # sup-001: RT1, stuck
    await _returned_disbursement_of(db, "sup-002", "RT3", "6222020200555544443")
    async with db.begin() as conn:
        await credit_payable(conn, "sup-002", "3000.00", "capture:sup-002:later", on=days(3))
        # sup-002's account, suspended by the return, is verified again by a second person
        [account] = await gateways.list_accounts(conn, "sup-002")
        await gateways.verify_account(conn, account.id, actor="user:compliance",
                                      now=ONBOARDED + dt.timedelta(days=1))
    # the night's first step unwinds RT3 and leaves RT1 to a person; the accrual goes on
    assert await unwind_returned_loans(db, CONFIG) == ["RT3"]
    assert (await _loan(db, "RT3")).status is lending.LoanStatus.APPROVED
    result = await lending.run_accrual(db, days(5), CONFIG)
    assert result.interest_minor > 0             # RT1 is still running: it accrues
    # the settlement run leaves sup-001 unsettled, saying why, and settles sup-002
    run = await settlement.run_settlement(db, "set-rt", days(6), PAYOUT_CONFIG,
                                          suppliers=["sup-001", "sup-002"], controls=CONTROLS)
    by = {s.supplier_id: s for s in run.suppliers}
    assert (by["sup-001"].offset_minor, by["sup-001"].payout_minor) == (0, 0)
    assert "loan RT1" in by["sup-001"].note and "not settled" in by["sup-001"].note
    assert (by["sup-002"].available_minor, by["sup-002"].payout_minor) == (300_000, 300_000)
    assert by["sup-002"].payout_id is not None
    await verify_ok(db)


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
