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
    BankCall,
    BankRejected,
    PaymentOrder,
    RefundOrder,
)
from gateways.protocols import SignatureInvalid, StaleMessage
from gateways.protocols import restbank as rb
from gateways.sandbox import SandboxFleet, SandboxSettings
from gateways.sandbox.restbank import RestBankSandbox
from tests.gateways.inbox import Inbox

pytestmark = pytest.mark.asyncio(loop_scope="module")

FAST = SandboxSettings(hang_seconds=1.0, late_notify_seconds=30, slow_seconds=1.0,
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
        status = await self.adapter.query_payment(BankCall.of(order))
        assert status.bank_txn_id is not None
        return order, status.bank_txn_id

    def refund_order(self, order: PaymentOrder, bank_txn_id: str, amount: str) -> RefundOrder:
        return RefundOrder(refund_id=uuid.uuid4().hex, attempt_id=order.attempt_id,
                           original_bank_txn_id=bank_txn_id, amount=Money(amount, "CNY"),
                           reason="returned", notify_url=self.inbox.url("restbank"),
                           created_at=dt.datetime.now(dt.UTC))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> AsyncIterator[Env]:
    inbox = Inbox()
    await inbox.start()
    async with SandboxFleet.start(["restbank"], settings=FAST) as fleet:
        yield Env(fleet, inbox)
    await inbox.stop()


async def test_create_is_idempotent_per_attempt(env: Env) -> None:
    order = env.order()
    first = await env.adapter.create_payment(order)
    again = await env.adapter.create_payment(order)
    assert first.bank_payment_id == again.bank_payment_id


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


async def test_a_refund_id_reused_for_another_amount_is_refused(env: Env) -> None:
    order, txn = await env.paid("10.00")
    refund = env.refund_order(order, txn, "1.00")
    first = await env.adapter.refund(refund)
    assert (await env.adapter.refund(refund)).bank_txn_id == first.bank_txn_id  # replay
    with pytest.raises(BankRejected) as refused:
        await env.adapter.refund(RefundOrder(**{**refund.__dict__, "amount": Money("2.00", "CNY")}))
    assert refused.value.code == "idempotency_conflict"


async def test_a_currency_the_account_does_not_hold_is_refused(env: Env) -> None:
    order = env.order()
    usd = PaymentOrder(**{**order.__dict__, "amount": Money("10.00", "USD")})
    with pytest.raises(BankRejected) as refused:
        await env.adapter.create_payment(usd)
    assert refused.value.code == "currency_not_supported"
