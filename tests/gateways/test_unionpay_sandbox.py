"""UnionPay-specific behaviour of the adapter and its sandbox bank (the common flows
and faults are in test_sandbox_banks.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from moneyed import Money

from gateways.adapters import UnionPayAdapter, unionpay_order_id
from gateways.bank import BankCall, BankOutcome, PaymentOrder, RefundOrder
from gateways.protocols import SignatureInvalid, generate_rsa_identity
from gateways.protocols import unionpay as up
from gateways.sandbox import SandboxFleet, SandboxSettings
from gateways.sandbox.unionpay import UnionPaySandbox
from tests.gateways.inbox import Inbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Env:
    def __init__(self, fleet: SandboxFleet, inbox: Inbox) -> None:
        self.fleet = fleet
        self.inbox = inbox
        bank = fleet.bank("unionpay")
        assert isinstance(bank, UnionPaySandbox)
        self.bank = bank
        adapter = fleet.adapter("unionpay", timeout=0.5)
        assert isinstance(adapter, UnionPayAdapter)
        self.adapter = adapter
        inbox.adapters["unionpay"] = adapter

    def order(self, attempt_id: str | None = None, amount: str = "88.00") -> PaymentOrder:
        return PaymentOrder(
            attempt_id=attempt_id or uuid.uuid4().hex, amount=Money(amount, "CNY"),
            description="tea", return_url="http://127.0.0.1:9/return",
            notify_url=self.inbox.url("unionpay"), created_at=dt.datetime.now(dt.UTC),
        )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> AsyncIterator[Env]:
    inbox = Inbox()
    await inbox.start()
    settings = SandboxSettings(retry_delays=(0.02, 0.05), opening_balance_minor=100_000)
    async with SandboxFleet.start(["unionpay"], settings=settings) as fleet:
        yield Env(fleet, inbox)
    await inbox.stop()


async def test_the_front_form_is_signed_with_the_merchant_certificate(env: Env) -> None:
    order = env.order()
    instruction = await env.adapter.create_payment(order)
    assert instruction.method == "POST" and instruction.url.endswith(up.FRONT_TRANS_PATH)
    fields = dict(instruction.fields)
    assert fields["certId"] == env.bank.merchant_identity.cert_id
    assert fields["txnAmt"] == "8800" and fields["currencyCode"] == "156"
    assert fields["backUrl"] == order.notify_url and fields["reqReserved"] == order.attempt_id
    up.Verifier(certificates=[env.bank.merchant_identity.certificate]).verify(fields)
    html = up.front_form_html(instruction.url, fields)
    assert 'name="signature"' in html


async def test_the_bank_refuses_a_tampered_front_form(env: Env) -> None:
    order = env.order()
    instruction = await env.adapter.create_payment(order)
    tampered = type(instruction)(method="POST", url=instruction.url,
                                 fields={**instruction.fields, "txnAmt": "1"})
    result = await env.bank.customer_pays(tampered)
    assert result.status_code == 400 and not result.paid
    assert (await env.adapter.query_payment(BankCall.of(order))).outcome is BankOutcome.NOT_FOUND


async def test_a_notification_signed_outside_the_unionpay_pki_is_refused(env: Env) -> None:
    order = env.order()
    await env.bank.customer_pays(await env.adapter.create_payment(order))
    await env.fleet.drain()
    delivery = next(d for d in env.bank.notifier.deliveries if d.reference == order.attempt_id)
    fields = up.decode_form(delivery.body)
    forger = up.Signer(generate_rsa_identity("not UnionPay"), embed_certificate=True)
    forged = up.encode_form(forger.sign(fields)).encode()
    with pytest.raises(SignatureInvalid):
        env.adapter.parse_notification({}, forged)


async def test_ids_that_are_not_order_ids_travel_in_req_reserved(env: Env) -> None:
    attempt_id = f"att_{uuid.uuid4()}"  # underscores and dashes: not a UnionPay orderId
    order = env.order(attempt_id)
    instruction = await env.adapter.create_payment(order)
    assert instruction.fields["orderId"] == unionpay_order_id(attempt_id) != attempt_id
    await env.bank.customer_pays(instruction)
    await env.fleet.drain()
    [note] = env.inbox.valid(attempt_id)
    assert note.details["orderId"] == unionpay_order_id(attempt_id)
    status = await env.adapter.query_payment(BankCall.of(order))
    # the orderId as recorded is what the inquiry names
    assert env.adapter.bank_order_id(attempt_id) == unionpay_order_id(attempt_id)
    assert status.outcome is BankOutcome.SUCCEEDED and status.bank_txn_id == note.bank_txn_id


async def test_refund_references_the_original_query_id(env: Env) -> None:
    order = env.order()
    await env.bank.customer_pays(await env.adapter.create_payment(order))
    await env.fleet.drain()
    [payment] = env.inbox.valid(order.attempt_id)
    refund = RefundOrder(refund_id=uuid.uuid4().hex, attempt_id=order.attempt_id,
                         original_bank_txn_id=payment.bank_txn_id, amount=Money("8.00", "CNY"),
                         reason="broken cup", notify_url=env.inbox.url("unionpay"),
                         created_at=dt.datetime.now(dt.UTC))
    accepted = await env.adapter.refund(refund)
    assert accepted.outcome is BankOutcome.PROCESSING  # asynchronous at UnionPay
    await env.fleet.drain()
    [note] = env.inbox.valid(refund.refund_id)
    assert note.details["origQryId"] == payment.bank_txn_id
    assert note.bank_txn_id == accepted.bank_txn_id


async def test_query_names_the_recorded_txn_time(env: Env) -> None:
    order = env.order()
    await env.bank.customer_pays(await env.adapter.create_payment(order))
    fresh = env.bank.adapter(timeout=0.5)  # another process: only the record to go by
    try:
        status = await fresh.query_payment(BankCall.of(order))
        assert status.outcome is BankOutcome.SUCCEEDED
        wrong_time = order.created_at - dt.timedelta(seconds=5)
        missed = await fresh.query_payment(BankCall(order.attempt_id, wrong_time))
        assert missed.outcome is BankOutcome.NOT_FOUND
    finally:
        await fresh.aclose()


async def test_refund_inquiry_after_a_restart_uses_the_refund_creation_time(env: Env) -> None:
    order = env.order()
    await env.bank.customer_pays(await env.adapter.create_payment(order))
    paid = await env.adapter.query_payment(BankCall.of(order))
    assert paid.bank_txn_id
    created = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    refund = RefundOrder(refund_id=uuid.uuid4().hex, attempt_id=order.attempt_id,
                         original_bank_txn_id=paid.bank_txn_id, amount=Money("1.00", "CNY"),
                         reason="x", notify_url=env.inbox.url("unionpay"), created_at=created)
    await env.adapter.refund(refund)
    fresh = env.bank.adapter(timeout=0.5)
    try:
        status = await fresh.query_refund(BankCall(refund.refund_id, created))
        assert status.outcome is BankOutcome.SUCCEEDED
    finally:
        await fresh.aclose()


async def test_payout_account_travels_encrypted_and_arrives(env: Env) -> None:
    from gateways.bank import Beneficiary, PayoutOrder

    payout = PayoutOrder(payout_id=uuid.uuid4().hex,
                         beneficiary=Beneficiary("Tea Supplier", "6222020200998877"),
                         amount=Money("12.00", "CNY"), description="settlement",
                         created_at=dt.datetime.now(dt.UTC))
    status = await env.adapter.payout(payout)
    assert status.outcome is BankOutcome.PROCESSING and status.bank_txn_id
    assert env.bank.book.paid_out["6222020200998877"] == 1200


async def test_expired_order_cannot_be_paid(env: Env) -> None:
    now = dt.datetime.now(dt.UTC)
    order = PaymentOrder(attempt_id=uuid.uuid4().hex, amount=Money("1.00", "CNY"),
                         description="late", return_url="http://127.0.0.1:9/r",
                         notify_url=env.inbox.url("unionpay"), created_at=now,
                         expires_at=now - dt.timedelta(seconds=1))
    result = await env.bank.customer_pays(await env.adapter.create_payment(order))
    assert not result.paid
    assert (await env.adapter.query_payment(BankCall.of(order))).outcome is BankOutcome.FAILED
