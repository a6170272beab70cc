"""Red team (issue #15 review): four eyes on the register and on payouts, attacked as an
insider would. Each test is a finding that fails on today's main (marked xfail strict, with
the finding as its reason) or a control that held. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

import gateways
from gateways import PayoutControls, PayoutState, SupplierPayoutRequest
from tests.gateways.core_helpers import assert_books_prove, balance_minor, cny, open_payable

NUMBER = "6222020200112233445"
MALLORY_NUMBER = "6222999988887777"
T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(days=2)
CONTROLS = PayoutControls(cooling_off=dt.timedelta(hours=24), approval_above={"CNY": 100_000})


def ask(pid: str, account_id: str, amount: str = "300.00", *, by: str = "user:alice",
        manual: bool = True) -> SupplierPayoutRequest:
    return SupplierPayoutRequest(payout_id=pid, supplier_id="sup-001", account_id=account_id,
                                 amount=cny(amount), requested_by=by, manual=manual)


@pytest.mark.parametrize("change", [{"bank_name": "ICBC Hangzhou"}, {}],
                         ids=["bank-name-fixed", "empty-change"])
async def test_whoever_entered_the_number_never_verifies_it(db, change):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        # mallory, an insider, registers her own account for the supplier
        account = await gateways.add_account(conn, "sup-001", holder_name="Hangzhou Silk Co.",
                                             account_number=MALLORY_NUMBER,
                                             bank_name="ICBC Hangzho", actor="user:mallory",
                                             now=T0)
    async with db.begin() as conn:
        # bob, in good faith, corrects the bank's name (or saves the form unchanged)
        await gateways.change_account(conn, account.id, actor="user:bob", now=T0, **change)
    # the number mallory typed has been checked by nobody but mallory: were she let verify
    # it, the settlement run would pay the supplier's money to her (below the threshold
    # nobody else looks)
    with pytest.raises(gateways.FourEyesViolation):
        async with db.begin() as conn:
            await gateways.verify_account(conn, account.id, actor="user:mallory", now=T0)


async def test_a_name_in_another_case_is_the_same_person_when_verifying(db):
    async with db.begin() as conn:
        account = await gateways.add_account(conn, "sup-001", holder_name="Hangzhou Silk Co.",
                                             account_number=NUMBER, actor="user:alice", now=T0)
    with pytest.raises(gateways.FourEyesViolation):
        async with db.begin() as conn:
            await gateways.verify_account(conn, account.id, actor="user:Alice", now=T0)


async def test_a_name_in_another_case_is_the_same_person_when_approving(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        account = await gateways.add_account(conn, "sup-001", holder_name="Hangzhou Silk Co.",
                                             account_number=NUMBER, actor="user:carol", now=T0)
        await gateways.verify_account(conn, account.id, actor="user:bob", now=T0)
        p = await gateways.request_supplier_payout(conn, ask("po-1", account.id), CONTROLS,
                                                   now=LATER)
    assert p.status is PayoutState.PENDING_APPROVAL
    with pytest.raises(gateways.FourEyesViolation):
        async with db.begin() as conn:
            await gateways.approve_payout(conn, "po-1", actor="user:ALICE", controls=CONTROLS,
                                          now=LATER)


async def test_held_approval_rechecks_the_account_and_the_requester(db):
    """Held: the requester cannot approve; an account changed after the request (even
    changed back to the same number and verified again) stops the approval."""
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        account = await gateways.add_account(conn, "sup-001", holder_name="Hangzhou Silk Co.",
                                             account_number=NUMBER, actor="user:carol", now=T0)
        await gateways.verify_account(conn, account.id, actor="user:bob", now=T0)
        await gateways.request_supplier_payout(conn, ask("po-1", account.id), CONTROLS,
                                               now=LATER)
    with pytest.raises(gateways.FourEyesViolation):
        async with db.begin() as conn:
            await gateways.approve_payout(conn, "po-1", actor="user:alice", controls=CONTROLS,
                                          now=LATER)
    async with db.begin() as conn:
        # change then revert, and verified again long ago enough for the cooling-off
        await gateways.change_account(conn, account.id, account_number=MALLORY_NUMBER,
                                      actor="user:mallory", now=LATER)
        await gateways.change_account(conn, account.id, account_number=NUMBER,
                                      actor="user:carol", now=LATER)
        await gateways.verify_account(conn, account.id, actor="user:bob", now=LATER)
    with pytest.raises(gateways.AccountNotUsable, match="changed after"):
        async with db.begin() as conn:
            await gateways.approve_payout(conn, "po-1", actor="user:dave", controls=CONTROLS,
                                          now=LATER + dt.timedelta(days=3))
    async with db.begin() as conn:
        # the same payout id asked again for another amount is a conflict, not a second hold
        with pytest.raises(gateways.PayoutConflict):
            await gateways.request_supplier_payout(conn, ask("po-1", account.id, "400.00"),
                                                   CONTROLS, now=LATER + dt.timedelta(days=3))
    assert await balance_minor(db, "2202.payable.sup-001") == (-50000, 30000, 0)
    await assert_books_prove(db)


async def test_an_iban_in_lower_case_is_the_same_account(db):
    async with db.begin() as conn:
        await gateways.add_account(conn, "sup-001", holder_name="Silk", actor="user:alice",
                                   account_number="GB82WEST12345698765432", now=T0)
    with pytest.raises(gateways.DuplicateAccount):
        async with db.begin() as conn:
            await gateways.add_account(conn, "sup-002", holder_name="Silk",
                                       account_number="gb82west12345698765432",
                                       actor="user:carol", now=T0)


async def test_held_approve_and_reject_at_once_leave_one_decision(db):
    """Held: an approval and a rejection racing (two sessions) leave exactly one decision,
    and the reservation agrees with it (pending if approved, released if rejected)."""
    import asyncio

    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        account = await gateways.add_account(conn, "sup-001", holder_name="Hangzhou Silk Co.",
                                             account_number=NUMBER, actor="user:carol", now=T0)
        await gateways.verify_account(conn, account.id, actor="user:bob", now=T0)
        await gateways.request_supplier_payout(conn, ask("po-race", account.id), CONTROLS,
                                               now=LATER)

    async def approve() -> object:
        async with db.begin() as conn:
            return await gateways.approve_payout(conn, "po-race", actor="user:dave",
                                                 controls=CONTROLS, now=LATER)

    async def reject() -> object:
        async with db.begin() as conn:
            return await gateways.reject_payout(conn, "po-race", actor="user:erin",
                                                reason="race", now=LATER)

    outcomes = await asyncio.gather(approve(), reject(), return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], gateways.PaymentError), outcomes
    async with db.connect() as conn:
        payout = await gateways.get_payout(conn, "po-race")
        record = await gateways.find_supplier_payout(conn, "po-race")
    assert record is not None
    if payout.status is PayoutState.REQUESTED:
        assert record.decision == "approved"
        assert await balance_minor(db, "2202.payable.sup-001") == (-50000, 30000, 0)
    else:
        assert payout.status is PayoutState.CANCELED and record.decision == "rejected"
        assert await balance_minor(db, "2202.payable.sup-001") == (-50000, 0, 0)
    await assert_books_prove(db)
