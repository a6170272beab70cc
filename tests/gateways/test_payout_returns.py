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
        await gateways.request_payout(conn, request(pid, amount))


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
