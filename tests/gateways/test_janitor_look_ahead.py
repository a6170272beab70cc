"""The janitor's `now` is how far ahead it looks (`paycore payments janitor --now`, "look
ahead to what falls due later, e.g. a catch-up run"), not how long a bank has had a
request. A payout or refund the bank is still working on answers "not found" to an early
inquiry; that proves it never arrived only once UNSEEN_AFTER of real time has passed since
it was sent. Measured against a look-ahead `now` it was proof at once: the payout failed
(its reservation released, the money free on the payable to be paid out again) and the
bank paid it all the same."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import gateways
import ledger
from gateways.payout_records import record_payout
from tests.lending.book import cny

PAYABLE = "2202.payable.sup-001"
AHEAD = dt.timedelta(minutes=10)


async def _until_the_bank_has(bank: Any, kind: Any, reference: str) -> None:
    """The slow bank acts in its own time: wait for it (a condition, never a duration)."""
    for _ in range(600):
        if bank.find(kind, reference) is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the bank never booked {reference}")


async def test_a_look_ahead_janitor_does_not_fail_a_payout_the_bank_is_still_processing(db):
    from gateways.sandbox import Fault, TxnKind
    from tests.gateways.core_env import ADAPTER_TIMEOUT, checkout_env
    from tests.gateways.core_helpers import open_payable

    async with checkout_env(db, ("restbank",), receiver=False) as env:
        async with db.begin() as conn:
            await open_payable(conn, "sup-001", funded="1000.00")
            await record_payout(conn, gateways.PayoutRequest(
                payout_id="po-ahead", beneficiary_ref="supplier:sup-001",
                beneficiary=gateways.Beneficiary("Hangzhou Silk Co.", "6222020200112233445"),
                amount=cny("300.00"), debit_account=PAYABLE, purpose="settlement",
                banks=("restbank",)))
        bank = env.fleet.bank("restbank")
        bank.faults.set("po-ahead", Fault.SLOW, Fault.NO_NOTIFY,
                        slow_seconds=ADAPTER_TIMEOUT * 3)
        [payout] = await gateways.submit_payouts(db, env.banks, payout_ids=["po-ahead"])
        assert payout.status is gateways.PayoutState.UNKNOWN
        # a catch-up pass looking ten minutes ahead, the bank not having acted yet
        await gateways.run_janitor(db, env.banks, now=dt.datetime.now(dt.UTC) + AHEAD)
        async with db.connect() as conn:
            payout = await gateways.get_payout(conn, "po-ahead")
            available = (await ledger.balance(conn, PAYABLE)).available
        assert payout.status is not gateways.PayoutState.FAILED, payout.failure_reason
        assert ledger.to_minor(available) == 70_000   # still reserved
        await _until_the_bank_has(bank, TxnKind.PAYOUT, "po-ahead")
        await gateways.run_janitor(db, env.banks, now=dt.datetime.now(dt.UTC) + 2 * AHEAD)
        async with db.connect() as conn:
            assert (await gateways.get_payout(conn, "po-ahead")).status is \
                gateways.PayoutState.SUCCEEDED
        await env.assert_agrees_with_banks()


async def test_a_look_ahead_janitor_does_not_fail_a_refund_the_bank_is_still_processing(db):
    from gateways.sandbox import Fault, TxnKind
    from tests.gateways.core_env import ADAPTER_TIMEOUT, checkout_env

    async with checkout_env(db, ("restbank",)) as env:
        await env.terms()
        paid = await env.checkout("50.00")
        await env.pay(paid)
        await env.fleet.drain()
        bank = env.fleet.bank("restbank")
        bank.faults.set("rf-ahead", Fault.SLOW, Fault.NO_NOTIFY,
                        slow_seconds=ADAPTER_TIMEOUT * 3)
        refund = await gateways.refund_payment(db, env.banks, paid.intent.id, cny("50.00"),
                                               refund_id="rf-ahead")
        assert refund.status is gateways.RefundState.UNKNOWN
        await gateways.run_janitor(db, env.banks, now=dt.datetime.now(dt.UTC) + AHEAD)
        async with db.connect() as conn:
            refund = await gateways.get_refund(conn, "rf-ahead")
        assert refund.status is not gateways.RefundState.FAILED, refund.failure_reason
        try:   # the reservation stands: the whole amount cannot be refunded again
            again = await gateways.refund_payment(db, env.banks, paid.intent.id,
                                                  cny("50.00"), refund_id="rf-again")
        except gateways.RefundExceedsCaptured:
            again = None
        assert again is None, again
        await _until_the_bank_has(bank, TxnKind.REFUND, "rf-ahead")
        await gateways.run_janitor(db, env.banks, now=dt.datetime.now(dt.UTC) + 2 * AHEAD)
        async with db.connect() as conn:
            assert (await gateways.get_refund(conn, "rf-ahead")).status is \
                gateways.RefundState.SUCCEEDED
        await env.assert_agrees_with_banks()
