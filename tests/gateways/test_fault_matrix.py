"""Faults that could charge or pay twice (#15 §4), at each sandbox bank: a refund or a
payout the bank booked and then answered 500 or 502 is `unknown` — never failed, never
failed over — until the janitor's inquiry settles it; UnionPay's A6 ("success with
defects") is a success flagged for a person. After each: the bank's books equal ours."""

from __future__ import annotations

import pytest

import gateways
from gateways import Beneficiary, PayoutRequest, PayoutState, RefundState
from gateways.payout_records import record_payout  # the bank mechanics, under the controls
from gateways.sandbox import Fault, TxnKind
from gateways.sandbox.book import MovementKind

from .core_env import checkout_env
from .core_helpers import cny, open_payable

BANKS = ("unionpay", "restbank", "smbank")
BEN = Beneficiary("Hangzhou Silk Co.", "6222020200112233445", "ICBC Hangzhou")
AFTER_BOOKING = (Fault.SERVER_ERROR_AFTER_BOOKING, Fault.BAD_GATEWAY_AFTER_BOOKING)


@pytest.mark.parametrize("fault", AFTER_BOOKING, ids=["500", "502"])
async def test_5xx_after_booking_is_unknown_never_failed_over(db, fault):
    async with checkout_env(db, BANKS, payout_order=BANKS) as env:
        await env.terms()
        async with db.begin() as conn:
            await open_payable(conn, "sup-001", funded="1000.00")
        for code in BANKS:
            paid = await env.checkout("50.00", bank=code)
            await env.pay(paid)
            await env.fleet.drain()
            refund_id, payout_id = f"rf{fault.value[:6]}{code}", f"po{fault.value[:6]}{code}"
            bank = env.fleet.bank(code)
            bank.faults.set(refund_id, fault, Fault.NO_NOTIFY)
            bank.faults.set(payout_id, fault, Fault.NO_NOTIFY)
            refund = await gateways.refund_payment(db, env.banks, paid.intent.id, cny("20.00"),
                                                   refund_id=refund_id)
            assert (code, refund.status) == (code, RefundState.UNKNOWN)
            async with db.begin() as conn:
                await record_payout(conn, PayoutRequest(
                    payout_id=payout_id, beneficiary_ref="supplier:sup-001", beneficiary=BEN,
                    amount=cny("30.00"), debit_account="2202.payable.sup-001",
                    purpose="settlement", banks=(code, *[b for b in BANKS if b != code])))
            [payout] = await gateways.submit_payouts(db, env.banks, payout_ids=[payout_id])
            # the bank booked it: no failover to the next bank, whatever the 5xx said
            assert (code, payout.status, payout.bank) == (code, PayoutState.UNKNOWN, code)
            assert [m.reference for b in BANKS if b != code
                    for m in env.fleet.bank(b).book.by_kind(MovementKind.PAYOUT)
                    if m.reference == payout_id] == []
            assert bank.find(TxnKind.PAYOUT, payout_id) is not None
        report = await gateways.run_janitor(db, env.banks)
        assert report.settled == 2 * len(BANKS)
        async with db.connect() as conn:
            for code in BANKS:
                refund = await gateways.get_refund(conn, f"rf{fault.value[:6]}{code}")
                payout = await gateways.get_payout(conn, f"po{fault.value[:6]}{code}")
                assert (refund.status, payout.status) == (RefundState.SUCCEEDED,
                                                          PayoutState.SUCCEEDED)
        await env.assert_agrees_with_banks()


async def test_unionpay_a6_is_a_success_flagged_for_review(db):
    async with checkout_env(db, ("unionpay",)) as env:
        await env.terms()
        async with db.begin() as conn:
            await open_payable(conn, "sup-001", funded="1000.00")
        bank = env.fleet.bank("unionpay")
        paid = await env.checkout("80.00", bank="unionpay")
        await env.pay(paid)
        await env.fleet.drain()
        bank.faults.set("rfa6unionpay", Fault.SUCCESS_WITH_DEFECTS)
        refund = await gateways.refund_payment(db, env.banks, paid.intent.id, cny("10.00"),
                                               refund_id="rfa6unionpay")
        assert refund.status is RefundState.SUCCEEDED  # never failed: the money moved
        bank.faults.set("poa6unionpay", Fault.SUCCESS_WITH_DEFECTS)
        async with db.begin() as conn:
            await record_payout(conn, PayoutRequest(
                payout_id="poa6unionpay", beneficiary_ref="supplier:sup-001", beneficiary=BEN,
                amount=cny("30.00"), debit_account="2202.payable.sup-001",
                purpose="settlement", banks=("unionpay",)))
        [payout] = await gateways.submit_payouts(db, env.banks, payout_ids=["poa6unionpay"])
        assert payout.status is PayoutState.SUCCEEDED and payout.review_reason
        await env.fleet.drain()  # the A6 notifications change nothing more
        async with db.connect() as conn:
            intents, held = await gateways.list_in_review(conn)
        assert [i.id for i in intents] == [paid.intent.id]
        assert "A6" in (intents[0].review_reason or "")
        assert [p.id for p in held] == ["poa6unionpay"]
        await env.assert_agrees_with_banks()
