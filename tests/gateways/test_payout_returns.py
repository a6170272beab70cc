"""Payouts that come back (退票) and payout notifications that do not add up, against the
real sandbox banks: a return is booked once (Dr 1103.clearing.payout, Cr the account the
payout was paid from), the payout is `returned` and a review item carries the bank's
reason; a return for a payout that had not succeeded, or for another amount, and a
mismatched or contradicting notification, change no books and go to review."""

from __future__ import annotations

import datetime as dt

import pytest

import gateways
import ledger
from gateways import Beneficiary, PayoutRequest, PayoutState
from gateways.payout_records import record_payout  # the bank mechanics, under the controls
from gateways.sandbox import Fault, NoticeFacts, TxnKind

from .core_env import Env, available_banks, checkout_env
from .core_helpers import assert_books_prove, balance_minor, cny, open_payable

BEN = Beneficiary("Hangzhou Silk Co.", "6222020200112233445", "ICBC Hangzhou")
PAYABLE = "2202.payable.sup-001"


def request(pid: str, amount: str = "100.00") -> PayoutRequest:
    return PayoutRequest(payout_id=pid, beneficiary_ref="supplier:sup-001", beneficiary=BEN,
                         amount=cny(amount), debit_account=PAYABLE, purpose="settlement",
                         description=f"settlement {pid}")


async def _request(db, pid: str, amount: str = "100.00") -> None:
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="10000.00")
        await record_payout(conn, request(pid, amount))


async def _payout(db, pid: str) -> gateways.Payout:
    async with db.connect() as conn:
        return await gateways.get_payout(conn, pid)


async def _reviews(db, pid: str) -> list[gateways.PayoutReview]:
    async with db.connect() as conn:
        return [r for r in await gateways.list_payout_reviews(conn) if r.payout_id == pid]


async def _hand_over(env: Env, code: str, reference: str, *, last: bool = True) -> None:
    """Give the bank's (undelivered) notification about `reference` to the core."""
    found = [d for d in env.fleet.bank(code).notifier.deliveries if d.reference == reference]
    delivery = found[-1] if last else found[0]
    await gateways.handle_notification(env.engine, env.banks, code, delivery.headers,
                                       delivery.body)


async def _paid(env: Env, code: str, pid: str, amount: str = "100.00") -> gateways.Payout:
    await _request(env.engine, pid, amount)
    await gateways.submit_payouts(env.engine, env.banks, payout_ids=[pid])
    await env.fleet.drain()
    payout = await _payout(env.engine, pid)
    assert payout.status is PayoutState.SUCCEEDED, payout
    return payout


# ------------------------------------------------------------- mismatches and conflicts


async def test_a_payout_notification_stating_another_amount_puts_the_payout_in_review(db):
    async with checkout_env(db, ("unionpay",), receiver=False) as env:
        await _request(db, "poMismatch01")
        env.fleet.bank("unionpay").faults.set("poMismatch01", Fault.AMOUNT_MISMATCH)
        [payout] = await gateways.submit_payouts(db, env.banks)
        assert payout.status is PayoutState.SUBMITTED
        await env.fleet.drain()
        await _hand_over(env, "unionpay", "poMismatch01")
        payout = await _payout(db, "poMismatch01")
        assert payout.status is PayoutState.REVIEW
        assert "amount 101.00 is not 100.00" in (payout.failure_reason or "")
        [review] = await _reviews(db, "poMismatch01")
        assert review.kind == "mismatch" and review.status == "open"
        # nothing posted, the reservation still stands
        assert await env.entries("payout") == []
        assert await balance_minor(db, "1103.clearing.payout") == (0, 0, 10000)
        await assert_books_prove(db)


async def test_a_failure_notified_after_the_payout_succeeded_goes_to_review(db):
    async with checkout_env(db, ("unionpay",)) as env:
        payout = await _paid(env, "unionpay", "poConflict01")
        bank = env.fleet.bank("unionpay")
        txn = bank.find(TxnKind.PAYOUT, "poConflict01")
        assert txn is not None
        # the bank contradicts itself: same transaction id, now "failed"; then a failure
        # under another transaction id
        for bank_txn_id in (txn.bank_txn_id, bank.new_bank_txn_id(TxnKind.PAYOUT)):
            facts = NoticeFacts(txn=txn, reference=txn.reference, bank_txn_id=bank_txn_id,
                                amount_minor=txn.amount_minor, currency=txn.currency,
                                merchant_id=bank.merchant_id, succeeded=False,
                                at=dt.datetime.now(dt.UTC))
            outgoing = bank.encode_notice(facts, False)
            reply = await gateways.handle_notification(db, env.banks, "unionpay",
                                                       outgoing.headers, outgoing.body)
            assert reply.status_code == 200
        after = await _payout(db, "poConflict01")
        assert after.status is PayoutState.SUCCEEDED and after.entry_id == payout.entry_id
        reviews = await _reviews(db, "poConflict01")
        assert [r.kind for r in reviews] == ["conflict", "conflict"]
        assert all("failed" in r.detail for r in reviews)
        assert len(await env.entries("payout")) == 1
        assert await env.rejections() == ["conflict", "conflict"]
        await env.assert_agrees_with_banks()


# ------------------------------------------------------------- returns (退票)

BANKS = available_banks()


async def _returned_entry(env: Env, pid: str) -> ledger.JournalEntry:
    [entry] = [e for e in await env.entries("payout.return") if e.external_ref == pid]
    return entry


@pytest.mark.parametrize("code", BANKS)
async def test_a_returned_payout_is_booked_back_once_from_the_banks_notification(db, code):
    async with checkout_env(db, (code,)) as env:
        pid = f"poReturn{code}01"
        # the bank delivers each of its notifications twice
        env.fleet.bank(code).faults.set(pid, Fault.DUPLICATE_NOTIFY)
        payout = await _paid(env, code, pid, "250.00")
        owed_before = await balance_minor(db, PAYABLE)
        txn = env.fleet.bank(code).return_payout(pid, "account closed")
        await env.fleet.drain()
        after = await _payout(db, pid)
        assert after.status is PayoutState.RETURNED
        assert "account closed" in (after.failure_reason or "")
        entry = await _returned_entry(env, pid)
        assert entry.kind == "payout.return" and entry.idempotency_key == f"payout-return:{pid}"
        assert entry.reverses_entry_id is None  # a new movement, not an undo of the payout
        assert {p.account_code: p.amount for p in entry.postings} == {
            "1103.clearing.payout": 25000, PAYABLE: -25000}
        assert entry.metadata["bank_return_id"] == txn.return_id
        # the supplier is owed the money again
        assert (await balance_minor(db, PAYABLE))[0] == owed_before[0] - 25000
        [review] = await _reviews(db, pid)
        assert review.kind == "returned" and review.entry_id == entry.id
        assert "account closed" in review.detail and review.bank_txn_id == txn.return_id
        assert payout.entry_id is not None and len(await env.entries("payout.return")) == 1
        assert "duplicate" in await env.rejections()
        # the bank's statement shows the payout going out and coming back
        assert [m.reference for m in env.fleet.bank(code).book.movements
                if m.kind.value == "return"] == [pid]
        await env.assert_agrees_with_banks()


@pytest.mark.parametrize("code", BANKS)
async def test_a_return_found_by_the_status_inquiry_is_booked_once(db, code):
    async with checkout_env(db, (code,)) as env:
        pid = f"poInquiry{code}01"
        await _paid(env, code, pid)
        env.fleet.bank(code).faults.set(pid, Fault.NO_NOTIFY)  # only the inquiry tells
        env.fleet.bank(code).return_payout(pid, "beneficiary name does not match")
        await env.fleet.drain()
        assert (await _payout(db, pid)).status is PayoutState.SUCCEEDED
        report = await gateways.check_payout_returns(db, env.banks, payout_ids=[pid])
        assert report.asked == 1 and report.booked == [pid] and report.errors == []
        assert (await _payout(db, pid)).status is PayoutState.RETURNED
        [review] = await _reviews(db, pid)
        assert "beneficiary name does not match" in review.detail
        # asked again: a returned payout is not asked about, nothing more is booked
        again = await gateways.check_payout_returns(db, env.banks, payout_ids=[pid])
        assert again.asked == 0 and again.booked == []
        assert len(await env.entries("payout.return")) == 1
        await env.assert_agrees_with_banks()


async def test_a_return_for_a_payout_not_succeeded_here_goes_to_review(db):
    # no receiver: the bank's "paid" never reaches us, so the payout is still submitted
    async with checkout_env(db, ("unionpay",), receiver=False) as env:
        await _request(db, "poEarlyReturn01")
        [payout] = await gateways.submit_payouts(db, env.banks)
        assert payout.status is PayoutState.SUBMITTED
        env.fleet.bank("unionpay").return_payout("poEarlyReturn01", "account closed")
        await env.fleet.drain()
        await _hand_over(env, "unionpay", "poEarlyReturn01")  # the return's notification
        after = await _payout(db, "poEarlyReturn01")
        assert after.status is PayoutState.REVIEW
        [review] = await _reviews(db, "poEarlyReturn01")
        assert review.kind == "return_not_booked" and "submitted here" in review.detail
        assert await env.entries("payout.return") == [] and await env.entries("payout") == []
        assert await env.rejections() == ["return_not_booked"]
        await assert_books_prove(db)


async def test_a_return_stating_another_amount_books_nothing_and_goes_to_review(db):
    async with checkout_env(db, ("smbank",)) as env:
        await _paid(env, "smbank", "poOddReturn01")
        env.fleet.bank("smbank").faults.set("poOddReturn01", Fault.AMOUNT_MISMATCH)
        env.fleet.bank("smbank").return_payout("poOddReturn01", "account closed")
        await env.fleet.drain()
        assert (await _payout(db, "poOddReturn01")).status is PayoutState.SUCCEEDED
        [review] = await _reviews(db, "poOddReturn01")
        assert review.kind == "mismatch" and "amount 101.00 is not 100.00" in review.detail
        assert review.amount_minor == 10100
        assert await env.entries("payout.return") == []


async def test_a_payout_review_is_resolved_once_with_a_name_and_a_note(db):
    async with checkout_env(db, ("restbank",)) as env:
        await _paid(env, "restbank", "poResolve01")
        env.fleet.bank("restbank").return_payout("poResolve01", "account closed")
        await env.fleet.drain()
        [review] = await _reviews(db, "poResolve01")
        async with db.begin() as conn:
            with pytest.raises(gateways.InvalidPaymentRequest):
                await gateways.resolve_payout_review(conn, review.id, by="", note="x")
            done = await gateways.resolve_payout_review(
                conn, review.id, by="ops.zhang", note="supplier sent the new account")
        assert done.status == "resolved" and done.resolved_by == "ops.zhang"
        async with db.begin() as conn:
            with pytest.raises(gateways.InvalidPaymentRequest, match="already resolved"):
                await gateways.resolve_payout_review(conn, review.id, by="b", note="again")
        assert await _reviews(db, "poResolve01") == []
