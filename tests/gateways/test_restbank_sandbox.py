"""The REST bank adapter against its sandbox bank, over real HTTP on loopback."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from moneyed import Money

from gateways.adapters.restbank import RestBankAdapter
from gateways.bank import (
    BankOutcome,
    BankRejected,
    BankUnavailable,
    Beneficiary,
    NotificationKind,
    OutcomeUnknown,
    PaymentOrder,
    PayoutOrder,
    RefundOrder,
)
from gateways.protocols import SignatureInvalid, StaleMessage
from gateways.protocols import restbank as rb
from gateways.sandbox import Fault, SandboxFleet, SandboxSettings
from gateways.sandbox.restbank import RestBankSandbox
from tests.gateways.inbox import Inbox

pytestmark = pytest.mark.asyncio(loop_scope="module")

FAST = SandboxSettings(hang_seconds=1.0, late_notify_seconds=0.2, slow_seconds=1.0,
                       retry_delays=(0.02, 0.05, 0.1), opening_balance_minor=1_000_000)
TIMEOUT = 0.4


class Env:
    def __init__(self, fleet: SandboxFleet, inbox: Inbox) -> None:
        self.fleet = fleet
        self.inbox = inbox
        bank = fleet.bank("restbank")
        assert isinstance(bank, RestBankSandbox)
        self.bank = bank
        adapter = fleet.adapter("restbank", timeout=TIMEOUT)
        assert isinstance(adapter, RestBankAdapter)
        self.adapter = adapter
        inbox.adapters["restbank"] = adapter

    def order(self, amount: str = "123.45") -> PaymentOrder:
        return PaymentOrder(
            attempt_id=uuid.uuid4().hex, amount=Money(amount, "CNY"), description="2 mugs",
            return_url="http://127.0.0.1:9/return", notify_url=self.inbox.url("restbank"),
            created_at=dt.datetime.now(dt.UTC),
        )

    async def paid(self, amount: str = "123.45") -> tuple[PaymentOrder, str]:
        order = self.order(amount)
        instruction = await self.adapter.create_payment(order)
        result = await self.bank.customer_pays(instruction)
        assert result.paid
        await self.fleet.drain()
        status = await self.adapter.query_payment(order.attempt_id)
        assert status.bank_txn_id is not None
        return order, status.bank_txn_id

    def refund_order(self, order: PaymentOrder, bank_txn_id: str, amount: str) -> RefundOrder:
        return RefundOrder(refund_id=uuid.uuid4().hex, attempt_id=order.attempt_id,
                           original_bank_txn_id=bank_txn_id, amount=Money(amount, "CNY"),
                           reason="returned", notify_url=self.inbox.url("restbank"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> AsyncIterator[Env]:
    inbox = Inbox()
    await inbox.start()
    async with SandboxFleet.start(["restbank"], settings=FAST) as fleet:
        yield Env(fleet, inbox)
    await inbox.stop()


async def test_pay_notify_query(env: Env) -> None:
    order = env.order()
    instruction = await env.adapter.create_payment(order)
    assert instruction.method == "GET" and instruction.url.startswith(env.bank.base_url)
    assert (await env.adapter.query_payment(order.attempt_id)).outcome is BankOutcome.PROCESSING
    before = env.bank.default_customer.balance_minor
    assert (await env.bank.customer_pays(instruction)).paid
    await env.fleet.drain()
    [note] = env.inbox.valid(order.attempt_id)
    assert note.kind is NotificationKind.PAYMENT and note.outcome is BankOutcome.SUCCEEDED
    assert note.amount == Money("123.45", "CNY") and note.merchant_id == env.adapter.merchant_id
    assert note.bank_txn_id == instruction.bank_payment_id
    status = await env.adapter.query_payment(order.attempt_id)
    assert status.outcome is BankOutcome.SUCCEEDED and status.bank_txn_id == note.bank_txn_id
    assert env.bank.default_customer.balance_minor == before - 12345
    assert env.bank.book.captured_minor(order.attempt_id) == 12345


async def test_unknown_order_is_not_found_and_declined_payment_fails(env: Env) -> None:
    assert (await env.adapter.query_payment("neverseen123")).outcome is BankOutcome.NOT_FOUND
    order = env.order()
    result = await env.bank.customer_pays(await env.adapter.create_payment(order), decline=True)
    assert not result.paid
    await env.fleet.drain()
    assert env.inbox.valid(order.attempt_id)[0].outcome is BankOutcome.FAILED
    assert (await env.adapter.query_payment(order.attempt_id)).outcome is BankOutcome.FAILED


async def test_create_is_idempotent_per_attempt(env: Env) -> None:
    order = env.order()
    first = await env.adapter.create_payment(order)
    again = await env.adapter.create_payment(order)
    assert first.bank_payment_id == again.bank_payment_id


async def test_partial_refunds_never_more_than_paid(env: Env) -> None:
    order, txn = await env.paid("100.00")
    first = await env.adapter.refund(env.refund_order(order, txn, "30.00"))
    assert first.outcome is BankOutcome.SUCCEEDED and first.bank_txn_id
    second = await env.adapter.refund(env.refund_order(order, txn, "70.00"))
    assert second.outcome is BankOutcome.SUCCEEDED
    with pytest.raises(BankRejected) as refused:
        await env.adapter.refund(env.refund_order(order, txn, "0.01"))
    assert refused.value.code == "amount_exceeds_refundable"
    await env.fleet.drain()
    refunds = [n for n in env.inbox.valid() if n.kind is NotificationKind.REFUND
               and n.details.get("payment_id") == txn]
    assert sorted(n.amount for n in refunds) == [Money("30.00", "CNY"), Money("70.00", "CNY")]
    status = await env.adapter.query_refund(refunds[0].reference)
    assert status.outcome is BankOutcome.SUCCEEDED


async def test_payout_debits_the_settlement_account(env: Env) -> None:
    before = env.bank.book.merchant_balance()
    payout = PayoutOrder(payout_id=uuid.uuid4().hex,
                         beneficiary=Beneficiary("Supplier Ltd", "6222020200112233", "ICBC"),
                         amount=Money("50.00", "CNY"), description="settlement",
                         notify_url=env.inbox.url("restbank"))
    status = await env.adapter.payout(payout)
    assert status.outcome is BankOutcome.SUCCEEDED and status.bank_txn_id
    assert env.bank.book.merchant_balance() == before - 5000
    await env.fleet.drain()
    [note] = env.inbox.valid(payout.payout_id)
    assert note.kind is NotificationKind.PAYOUT and note.bank_txn_id == status.bank_txn_id
    assert (await env.adapter.query_payout(payout.payout_id)).outcome is BankOutcome.SUCCEEDED
    too_much = PayoutOrder(payout_id=uuid.uuid4().hex, beneficiary=payout.beneficiary,
                           amount=Money("99999999.00", "CNY"), description="too much")
    with pytest.raises(BankRejected):
        await env.adapter.payout(too_much)


async def test_forged_and_replayed_webhooks_are_refused(env: Env) -> None:
    order, _ = await env.paid()
    delivery = next(d for d in env.bank.notifier.deliveries if d.reference == order.attempt_id)
    assert env.adapter.parse_notification(delivery.headers, delivery.body).reference == (
        order.attempt_id)
    forged = delivery.body.replace(b"12345", b"99999")
    with pytest.raises(SignatureInvalid):
        env.adapter.parse_notification(delivery.headers, forged)
    wrong_key = rb.sign_webhook(b"k" * 32, delivery.body, now=dt.datetime.now(dt.UTC))
    with pytest.raises(SignatureInvalid):
        env.adapter.parse_notification(wrong_key, delivery.body)
    # The very same delivery, replayed after the five-minute window.
    later = RestBankAdapter(env.bank.credentials(),
                            clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6))
    with pytest.raises(StaleMessage):
        later.parse_notification(delivery.headers, delivery.body)
    await later.aclose()


async def test_requests_signed_with_a_wrong_secret_are_refused(env: Env) -> None:
    creds = env.bank.credentials()
    intruder = RestBankAdapter(type(creds)(base_url=creds.base_url, merchant_id=creds.merchant_id,
                                           api_key=creds.api_key, secret=b"x" * 32))
    with pytest.raises(BankRejected) as refused:
        await intruder.create_payment(env.order())
    assert refused.value.code == "authentication_failed"
    await intruder.aclose()


# ---------------------------------------------------------------------------- faults


async def test_timeout_after_create_is_outcome_unknown(env: Env) -> None:
    order = env.order()
    env.bank.faults.set(order.attempt_id, Fault.TIMEOUT_AFTER_DEBIT)
    with pytest.raises(OutcomeUnknown):
        await env.adapter.create_payment(order)
    # The bank has the order: the inquiry says so, and a retry returns the same payment.
    assert (await env.adapter.query_payment(order.attempt_id)).outcome is BankOutcome.PROCESSING


async def test_timeout_after_refund_debit_then_inquiry(env: Env) -> None:
    order, txn = await env.paid("20.00")
    refund = env.refund_order(order, txn, "5.00")
    env.bank.faults.set(refund.refund_id, Fault.TIMEOUT_AFTER_DEBIT)
    with pytest.raises(OutcomeUnknown):
        await env.adapter.refund(refund)
    status = await env.adapter.query_refund(refund.refund_id)
    assert status.outcome is BankOutcome.SUCCEEDED
    await env.fleet.drain()
    assert env.inbox.valid(refund.refund_id)  # late, but it came


async def test_server_error_then_slow_payout(env: Env) -> None:
    payout = PayoutOrder(payout_id=uuid.uuid4().hex,
                         beneficiary=Beneficiary("Supplier Ltd", "6222020200112233"),
                         amount=Money("1.00", "CNY"), description="x")
    env.bank.faults.set(payout.payout_id, Fault.SERVER_ERROR, Fault.SLOW, server_errors=1,
                        slow_seconds=TIMEOUT * 3)
    before = env.bank.book.merchant_balance()
    with pytest.raises(BankUnavailable):
        await env.adapter.payout(payout)
    assert env.bank.book.merchant_balance() == before  # a 5xx took nothing
    with pytest.raises(OutcomeUnknown):
        await env.adapter.payout(payout)  # slow: the answer is lost, the bank goes on
    await env.bank._sleep(TIMEOUT * 3)
    assert (await env.adapter.query_payout(payout.payout_id)).outcome is BankOutcome.SUCCEEDED
    assert env.bank.book.merchant_balance() == before - 100


async def test_connection_refused_is_bank_unavailable(env: Env) -> None:
    creds = env.bank.credentials()
    dead = RestBankAdapter(type(creds)(base_url="http://127.0.0.1:9", merchant_id=creds.merchant_id,
                                       api_key=creds.api_key, secret=creds.secret), timeout=TIMEOUT)
    with pytest.raises(BankUnavailable):
        await dead.create_payment(env.order())
    await dead.aclose()


async def test_no_notify_only_inquiry(env: Env) -> None:
    order = env.order()
    env.bank.faults.set(order.attempt_id, Fault.NO_NOTIFY)
    assert (await env.bank.customer_pays(await env.adapter.create_payment(order))).paid
    await env.fleet.drain()
    assert not env.inbox.valid(order.attempt_id)
    assert (await env.adapter.query_payment(order.attempt_id)).outcome is BankOutcome.SUCCEEDED


async def test_duplicate_and_bad_signature_then_good(env: Env) -> None:
    order = env.order()
    env.bank.faults.set(order.attempt_id, Fault.DUPLICATE_NOTIFY, Fault.BAD_SIGNATURE)
    errors_before = len(env.inbox.errors())
    assert (await env.bank.customer_pays(await env.adapter.create_payment(order))).paid
    await env.fleet.drain()
    notes = env.inbox.valid(order.attempt_id)
    assert len(notes) == 2 and notes[0].bank_txn_id == notes[1].bank_txn_id
    assert isinstance(env.inbox.errors()[errors_before], SignatureInvalid)


async def test_mismatches_and_unknown_order(env: Env) -> None:
    amount, currency, merchant = env.order(), env.order(), env.order()
    env.bank.faults.set(amount.attempt_id, Fault.AMOUNT_MISMATCH, Fault.UNKNOWN_ORDER)
    env.bank.faults.set(currency.attempt_id, Fault.CURRENCY_MISMATCH)
    env.bank.faults.set(merchant.attempt_id, Fault.MERCHANT_MISMATCH)
    known = {amount.attempt_id, currency.attempt_id, merchant.attempt_id}
    for order in (amount, currency, merchant):
        assert (await env.bank.customer_pays(await env.adapter.create_payment(order))).paid
    await env.fleet.drain()
    assert env.inbox.valid(amount.attempt_id)[0].amount == Money("124.45", "CNY")
    assert env.inbox.valid(currency.attempt_id)[0].amount.currency.code != "CNY"
    assert env.inbox.valid(merchant.attempt_id)[0].merchant_id != env.adapter.merchant_id
    strangers = [d for d in env.bank.notifier.deliveries if d.note == "unknown order"]
    assert strangers and strangers[0].reference not in known


async def test_out_of_order_and_processing_inquiry(env: Env) -> None:
    late, other = env.order(), env.order()
    env.bank.faults.set(late.attempt_id, Fault.OUT_OF_ORDER_NOTIFY, Fault.QUERY_PROCESSING,
                        processing_polls=2)
    assert (await env.bank.customer_pays(await env.adapter.create_payment(late))).paid
    assert env.bank.notifier.held == 1
    assert (await env.bank.customer_pays(await env.adapter.create_payment(other))).paid
    await env.fleet.drain()
    order_seen = [r.notification.reference for r in env.inbox.received if r.notification
                  and r.notification.reference in (late.attempt_id, other.attempt_id)]
    assert order_seen == [other.attempt_id, late.attempt_id]
    outcomes = [(await env.adapter.query_payment(late.attempt_id)).outcome for _ in range(3)]
    assert outcomes == [BankOutcome.PROCESSING, BankOutcome.PROCESSING, BankOutcome.SUCCEEDED]


async def test_faults_through_the_control_endpoint(env: Env) -> None:
    import httpx
    order = env.order()
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{env.bank.base_url}/_sandbox/faults",
                                   json={"reference": order.attempt_id, "faults": ["no_notify"]})
        assert answer.status_code == 200
        book = (await client.get(f"{env.bank.base_url}/_sandbox/book")).json()
    assert env.bank.faults.has(order.attempt_id, Fault.NO_NOTIFY)
    assert book["bank"] == "restbank"
