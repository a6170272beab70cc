"""Every adapter against its own sandbox bank, over real HTTP on loopback, signed with
the bank's and the merchant's real keys: pay, notify, query, refund, payout, and each
injected fault. Bank-specific checks live in test_<bank>_sandbox.py."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from moneyed import Money

from gateways.bank import (
    BankCall,
    BankGateway,
    BankOutcome,
    BankRejected,
    BankUnavailable,
    Beneficiary,
    NotificationKind,
    OutcomeUnknown,
    PaymentInstruction,
    PaymentOrder,
    PayoutOrder,
    RefundOrder,
    whole_seconds,
)
from gateways.protocols import SignatureInvalid
from gateways.sandbox import Fault, SandboxBank, SandboxFleet, SandboxSettings
from tests.gateways.inbox import Inbox

pytestmark = pytest.mark.asyncio(loop_scope="module")

BANKS = ["unionpay", "restbank", "smbank"]
FAST = SandboxSettings(hang_seconds=1.0, late_notify_seconds=30, slow_seconds=1.0,
                       retry_delays=(0.02, 0.05, 0.1), opening_balance_minor=1_000_000)
TIMEOUT = 0.4
#: banks whose payment creation is a server call (UnionPay's is a browser form)
CREATE_CALLS = {"restbank", "smbank"}


class World:
    def __init__(self, fleet: SandboxFleet, inbox: Inbox) -> None:
        self.fleet = fleet
        self.inbox = inbox
        for code in fleet.banks:
            inbox.adapters[code] = fleet.adapter(code, timeout=TIMEOUT)


class Env:
    def __init__(self, world: World, code: str) -> None:
        self.code = code
        self.fleet = world.fleet
        self.inbox = world.inbox
        self.bank: SandboxBank = world.fleet.bank(code)
        self.adapter: BankGateway = world.inbox.adapters[code]

    def order(self, amount: str = "123.45") -> PaymentOrder:
        return PaymentOrder(
            attempt_id=uuid.uuid4().hex, amount=Money(amount, "CNY"), description="2 mugs",
            return_url="http://127.0.0.1:9/return", notify_url=self.inbox.url(self.code),
            created_at=dt.datetime.now(dt.UTC),
        )

    async def pay(self, order: PaymentOrder) -> PaymentInstruction:
        instruction = await self.adapter.create_payment(order)
        assert (await self.bank.customer_pays(instruction)).paid
        return instruction

    async def paid(self, amount: str = "123.45") -> tuple[PaymentOrder, str]:
        order = self.order(amount)
        await self.pay(order)
        await self.fleet.drain()
        status = await self.adapter.query_payment(BankCall.of(order))
        assert status.outcome is BankOutcome.SUCCEEDED and status.bank_txn_id
        return order, status.bank_txn_id

    def refund_order(self, order: PaymentOrder, txn: str, amount: str) -> RefundOrder:
        return RefundOrder(refund_id=uuid.uuid4().hex, attempt_id=order.attempt_id,
                           original_bank_txn_id=txn, amount=Money(amount, "CNY"),
                           reason="returned", notify_url=self.inbox.url(self.code),
                           created_at=whole_seconds(dt.datetime.now(dt.UTC)))

    def payout_order(self, amount: str) -> PayoutOrder:
        return PayoutOrder(payout_id=uuid.uuid4().hex,
                           beneficiary=Beneficiary("Supplier Ltd", "6222020200112233", "ICBC"),
                           amount=Money(amount, "CNY"), description="supplier settlement",
                           notify_url=self.inbox.url(self.code),
                           created_at=whole_seconds(dt.datetime.now(dt.UTC)))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world() -> AsyncIterator[World]:
    inbox = Inbox()
    await inbox.start()
    async with SandboxFleet.start(BANKS, settings=FAST) as fleet:
        yield World(fleet, inbox)
    await inbox.stop()


@pytest.fixture(params=BANKS)
def env(world: World, request: pytest.FixtureRequest) -> Env:
    return Env(world, request.param)


async def test_pay_notify_query(env: Env) -> None:
    order = env.order()
    instruction = await env.adapter.create_payment(order)
    assert instruction.url.startswith(env.bank.base_url)
    if env.code in CREATE_CALLS:
        unpaid = await env.adapter.query_payment(BankCall.of(order))
        assert unpaid.outcome is BankOutcome.PROCESSING
    before = env.bank.default_customer.balance_minor
    assert (await env.bank.customer_pays(instruction)).paid
    await env.fleet.drain()
    [note] = env.inbox.valid(order.attempt_id)
    assert note.kind is NotificationKind.PAYMENT and note.outcome is BankOutcome.SUCCEEDED
    assert note.amount == Money("123.45", "CNY") and note.merchant_id == env.adapter.merchant_id
    assert note.bank == env.code
    status = await env.adapter.query_payment(BankCall.of(order))
    assert status.outcome is BankOutcome.SUCCEEDED and status.bank_txn_id == note.bank_txn_id
    assert status.amount == Money("123.45", "CNY")
    assert env.bank.default_customer.balance_minor == before - 12345
    [movement] = [m for m in env.bank.book.movements if m.reference == order.attempt_id]
    assert movement.bank_txn_id == note.bank_txn_id and movement.amount_minor == 12345


async def test_declined_and_never_seen_payments(env: Env) -> None:
    order = env.order()
    instruction = await env.adapter.create_payment(order)
    assert not (await env.bank.customer_pays(instruction, decline=True)).paid
    assert (await env.adapter.query_payment(BankCall.of(order))).outcome is BankOutcome.FAILED
    never = env.order()
    if env.code == "unionpay":
        await env.adapter.create_payment(never)  # signed, but the browser never went
    assert (await env.adapter.query_payment(BankCall.of(never))).outcome is BankOutcome.NOT_FOUND


async def test_partial_refunds_never_more_than_paid(env: Env) -> None:
    order, txn = await env.paid("100.00")
    customer = env.bank.default_customer.balance_minor
    refunds = [env.refund_order(order, txn, "30.00"), env.refund_order(order, txn, "70.00")]
    for refund in refunds:
        status = await env.adapter.refund(refund)
        assert status.outcome in (BankOutcome.SUCCEEDED, BankOutcome.PROCESSING)
        assert status.bank_txn_id
    with pytest.raises(BankRejected):
        await env.adapter.refund(env.refund_order(order, txn, "0.01"))
    await env.fleet.drain()
    for refund in refunds:
        [note] = env.inbox.valid(refund.refund_id)
        assert note.kind is NotificationKind.REFUND and note.outcome is BankOutcome.SUCCEEDED
        assert note.amount == refund.amount
        queried = await env.adapter.query_refund(BankCall.of(refund))
        assert queried.outcome is BankOutcome.SUCCEEDED
        assert queried.bank_txn_id == note.bank_txn_id
    assert env.bank.default_customer.balance_minor == customer + 10000


async def test_refund_of_an_unknown_payment_is_refused(env: Env) -> None:
    order = env.order()
    with pytest.raises(BankRejected):
        await env.adapter.refund(env.refund_order(order, "77777777777777777777", "1.00"))


async def test_payout_out_of_the_settlement_account(env: Env) -> None:
    before = env.bank.book.merchant_balance()
    payout = env.payout_order("50.00")
    status = await env.adapter.payout(payout)
    assert status.outcome in (BankOutcome.SUCCEEDED, BankOutcome.PROCESSING)
    assert env.bank.book.merchant_balance() == before - 5000
    await env.fleet.drain()
    [note] = env.inbox.valid(payout.payout_id)
    assert note.kind is NotificationKind.PAYOUT and note.outcome is BankOutcome.SUCCEEDED
    queried = await env.adapter.query_payout(BankCall.of(payout))
    assert queried.outcome is BankOutcome.SUCCEEDED and queried.bank_txn_id == note.bank_txn_id
    [movement] = [m for m in env.bank.book.movements if m.reference == payout.payout_id]
    assert movement.bank_txn_id == note.bank_txn_id
    with pytest.raises(BankRejected):
        await env.adapter.payout(env.payout_order("99999999.00"))
    assert env.bank.book.merchant_balance() == before - 5000


async def test_forged_notification_is_refused(env: Env) -> None:
    order, _ = await env.paid()
    delivery = next(d for d in env.bank.notifier.deliveries
                    if d.reference == order.attempt_id and d.acknowledged)
    assert env.adapter.parse_notification(delivery.headers, delivery.body).reference == (
        order.attempt_id)
    needle = b"123.45" if env.code == "smbank" else b"12345"
    assert needle in delivery.body
    with pytest.raises(SignatureInvalid):
        env.adapter.parse_notification(delivery.headers, delivery.body.replace(needle, b"1", 1)
                                       if env.code != "smbank"
                                       else delivery.body.replace(needle, b"123.46"))


# ---------------------------------------------------------------------------- faults


async def test_fault_timeout_after_create(env: Env) -> None:
    order = env.order()
    env.bank.faults.set(order.attempt_id, Fault.TIMEOUT)
    if env.code not in CREATE_CALLS:
        # UnionPay's payment starts in the customer's browser: creating it calls no server,
        # so a hanging bank cannot make it time out; the form is built all the same
        instruction = await env.adapter.create_payment(order)
        assert instruction.method == "POST" and instruction.fields
        assert (await env.adapter.query_payment(BankCall.of(order))).outcome is BankOutcome.NOT_FOUND
        return
    with pytest.raises(OutcomeUnknown):
        await env.adapter.create_payment(order)
    assert (await env.adapter.query_payment(BankCall.of(order))).outcome is BankOutcome.PROCESSING


async def test_fault_timeout_after_payment_debit_late_notification(env: Env) -> None:
    order = env.order()
    env.bank.faults.set(order.attempt_id, Fault.TIMEOUT_AFTER_DEBIT)
    await env.pay(order)
    assert not env.inbox.valid(order.attempt_id)  # not yet: it comes late
    assert (await env.adapter.query_payment(BankCall.of(order))).outcome is BankOutcome.SUCCEEDED
    await env.fleet.drain()
    assert env.inbox.valid(order.attempt_id)


async def test_fault_timeout_after_refund_debit(env: Env) -> None:
    order, txn = await env.paid("20.00")
    refund = env.refund_order(order, txn, "5.00")
    env.bank.faults.set(refund.refund_id, Fault.TIMEOUT_AFTER_DEBIT)
    with pytest.raises(OutcomeUnknown):
        await env.adapter.refund(refund)
    assert (await env.adapter.query_refund(BankCall.of(refund))).outcome is BankOutcome.SUCCEEDED
    await env.fleet.drain()
    assert env.inbox.valid(refund.refund_id)


async def test_fault_timeout_after_payout_debit(env: Env) -> None:
    payout = env.payout_order("2.00")
    env.bank.faults.set(payout.payout_id, Fault.TIMEOUT_AFTER_DEBIT)
    before = env.bank.book.merchant_balance()
    with pytest.raises(OutcomeUnknown):
        await env.adapter.payout(payout)
    assert env.bank.book.merchant_balance() == before - 200
    assert (await env.adapter.query_payout(BankCall.of(payout))).outcome is BankOutcome.SUCCEEDED


async def test_fault_5xx_then_slowness_on_refund(env: Env) -> None:
    order, txn = await env.paid("20.00")
    refund = env.refund_order(order, txn, "3.00")
    env.bank.faults.set(refund.refund_id, Fault.SERVER_ERROR, Fault.SLOW, server_errors=1,
                        slow_seconds=TIMEOUT * 2)
    customer = env.bank.default_customer.balance_minor
    with pytest.raises(BankUnavailable):
        await env.adapter.refund(refund)
    assert env.bank.default_customer.balance_minor == customer  # the 5xx took nothing
    with pytest.raises(OutcomeUnknown):
        await env.adapter.refund(refund)
    await env.bank._sleep(TIMEOUT * 2)  # the bank finishes what it was slow about
    assert (await env.adapter.query_refund(BankCall.of(refund))).outcome is BankOutcome.SUCCEEDED


async def test_fault_5xx_on_payout_then_retry(env: Env) -> None:
    payout = env.payout_order("1.00")
    env.bank.faults.set(payout.payout_id, Fault.SERVER_ERROR, server_errors=2)
    before = env.bank.book.merchant_balance()
    for _ in range(2):
        with pytest.raises(BankUnavailable):
            await env.adapter.payout(payout)
    assert env.bank.book.merchant_balance() == before
    assert (await env.adapter.payout(payout)).bank_txn_id
    assert env.bank.book.merchant_balance() == before - 100


async def test_fault_no_notify_only_inquiry(env: Env) -> None:
    order = env.order()
    env.bank.faults.set(order.attempt_id, Fault.NO_NOTIFY)
    await env.pay(order)
    await env.fleet.drain()
    assert not env.inbox.valid(order.attempt_id)
    assert (await env.adapter.query_payment(BankCall.of(order))).outcome is BankOutcome.SUCCEEDED


async def test_fault_duplicate_and_bad_signature(env: Env) -> None:
    order = env.order()
    env.bank.faults.set(order.attempt_id, Fault.DUPLICATE_NOTIFY, Fault.BAD_SIGNATURE)
    errors_before = len(env.inbox.errors())
    await env.pay(order)
    await env.fleet.drain()
    notes = env.inbox.valid(order.attempt_id)
    assert len(notes) == 2 and notes[0].bank_txn_id == notes[1].bank_txn_id
    assert isinstance(env.inbox.errors()[errors_before], SignatureInvalid)
    assert [d.acknowledged for d in env.bank.notifier.deliveries
            if d.reference == order.attempt_id] == [False, True, True]


async def test_fault_mismatches_and_unknown_order(env: Env) -> None:
    amount, currency, merchant = env.order(), env.order(), env.order()
    env.bank.faults.set(amount.attempt_id, Fault.AMOUNT_MISMATCH, Fault.UNKNOWN_ORDER)
    env.bank.faults.set(currency.attempt_id, Fault.CURRENCY_MISMATCH)
    env.bank.faults.set(merchant.attempt_id, Fault.MERCHANT_MISMATCH)
    for order in (amount, currency, merchant):
        await env.pay(order)
    await env.fleet.drain()
    assert env.inbox.valid(amount.attempt_id)[0].amount == Money("124.45", "CNY")
    assert env.inbox.valid(currency.attempt_id)[0].amount.currency.code != "CNY"
    assert env.inbox.valid(merchant.attempt_id)[0].merchant_id != env.adapter.merchant_id
    [stranger] = [d for d in env.bank.notifier.deliveries
                  if d.note == "unknown order" and d.reference not in
                  (amount.attempt_id, currency.attempt_id, merchant.attempt_id)][-1:]
    parsed = env.adapter.parse_notification(stranger.headers, stranger.body)
    assert parsed.reference == stranger.reference and parsed.merchant_id == env.adapter.merchant_id


async def test_fault_out_of_order_and_processing_inquiry(env: Env) -> None:
    late, other = env.order(), env.order()
    env.bank.faults.set(late.attempt_id, Fault.OUT_OF_ORDER_NOTIFY, Fault.QUERY_PROCESSING,
                        processing_polls=2)
    await env.pay(late)
    assert env.bank.notifier.held == 1
    await env.pay(other)
    await env.fleet.drain()
    seen = [r.notification.reference for r in env.inbox.received if r.notification
            and r.notification.reference in (late.attempt_id, other.attempt_id)]
    assert seen == [other.attempt_id, late.attempt_id]
    outcomes = [(await env.adapter.query_payment(BankCall.of(late))).outcome for _ in range(3)]
    assert outcomes == [BankOutcome.PROCESSING, BankOutcome.PROCESSING, BankOutcome.SUCCEEDED]


async def test_faults_through_the_control_endpoint(env: Env) -> None:
    order = env.order()
    async with httpx.AsyncClient(trust_env=False) as client:
        answer = await client.post(f"{env.bank.base_url}/_sandbox/faults",
                                   json={"reference": order.attempt_id,
                                         "faults": ["no_notify", "query_processing"],
                                         "processing_polls": 1})
        assert answer.status_code == 200
        book = (await client.get(f"{env.bank.base_url}/_sandbox/book")).json()
        bad = await client.post(f"{env.bank.base_url}/_sandbox/faults",
                                json={"reference": "x", "faults": ["no_such_fault"]})
    assert bad.status_code == 400
    assert env.bank.faults.has(order.attempt_id, Fault.NO_NOTIFY)
    assert book["bank"] == env.code
    await env.pay(order)
    await env.fleet.drain()
    assert not env.inbox.valid(order.attempt_id)
    assert (await env.adapter.query_payment(BankCall.of(order))).outcome is BankOutcome.PROCESSING
    assert (await env.adapter.query_payment(BankCall.of(order))).outcome is BankOutcome.SUCCEEDED


async def test_connection_refused_is_bank_unavailable(env: Env) -> None:
    dead = env.bank.adapter(timeout=TIMEOUT, base_url="http://127.0.0.1:9")
    try:
        order, txn = env.order(), "1234567890"
        with pytest.raises(BankUnavailable):
            await dead.refund(env.refund_order(order, txn, "1.00"))
    finally:
        await dead.aclose()
