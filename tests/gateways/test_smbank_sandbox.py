"""SM bank specifics: SM2 keys, SendTime window, signed acknowledgements, replayed
requests (common flows and faults are in test_sandbox_banks.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from moneyed import Money

from gateways.adapters import SmBankAdapter
from gateways.adapters.smbank import GATEWAY_PATH, SmBankCredentials
from gateways.bank import BankCall, BankOutcome, BankRejected, PaymentOrder
from gateways.protocols import SignatureInvalid, StaleMessage, generate_sm2_private_key
from gateways.protocols import smbank as sm
from gateways.sandbox import SandboxFleet, SandboxSettings
from gateways.sandbox.smbank import BANK_KEY_ID, SmBankSandbox
from tests.gateways.inbox import Inbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Env:
    def __init__(self, fleet: SandboxFleet, inbox: Inbox) -> None:
        self.fleet = fleet
        self.inbox = inbox
        bank = fleet.bank("smbank")
        assert isinstance(bank, SmBankSandbox)
        self.bank = bank
        adapter = fleet.adapter("smbank", timeout=2.0)
        assert isinstance(adapter, SmBankAdapter)
        self.adapter = adapter
        inbox.adapters["smbank"] = adapter

    def order(self) -> PaymentOrder:
        return PaymentOrder(
            attempt_id=uuid.uuid4().hex, amount=Money("66.60", "CNY"), description="silk",
            return_url="http://127.0.0.1:9/return", notify_url=self.inbox.url("smbank"),
            created_at=dt.datetime.now(dt.UTC),
        )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> AsyncIterator[Env]:
    inbox = Inbox()
    await inbox.start()
    settings = SandboxSettings(retry_delays=(0.02, 0.05))
    async with SandboxFleet.start(["smbank"], settings=settings) as fleet:
        yield Env(fleet, inbox)
    await inbox.stop()


async def test_notification_signed_with_another_key_or_stale_is_refused(env: Env) -> None:
    order = env.order()
    await env.bank.customer_pays(await env.adapter.create_payment(order))
    await env.fleet.drain()
    delivery = next(d for d in env.bank.notifier.deliveries if d.reference == order.attempt_id)
    note = env.adapter.parse_notification(delivery.headers, delivery.body)
    assert note.amount == Money("66.60", "CNY")
    message = sm.decode(delivery.body, sm.PayNotify, sm.SmVerifier(
        {BANK_KEY_ID: env.bank.bank_key.public_key})).message
    forger = sm.SmSigner(generate_sm2_private_key(), BANK_KEY_ID)
    forged = sm.encode(message, forger, now=dt.datetime.now(dt.UTC))
    with pytest.raises(SignatureInvalid):
        env.adapter.parse_notification({}, forged)
    later = SmBankAdapter(env.bank.credentials(),
                          clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6))
    with pytest.raises(StaleMessage):
        later.parse_notification({}, delivery.body)
    await later.aclose()


async def test_the_ack_must_name_the_notification_and_be_signed(env: Env) -> None:
    order = env.order()
    env.inbox.refuse_next = 1  # the first valid delivery is answered "9999 send again"
    await env.bank.customer_pays(await env.adapter.create_payment(order))
    await env.fleet.drain()
    deliveries = [d for d in env.bank.notifier.deliveries if d.reference == order.attempt_id]
    assert [d.acknowledged for d in deliveries] == [False, True]
    first, second = (sm.decode(d.body, sm.PayNotify, sm.SmVerifier(
        {BANK_KEY_ID: env.bank.bank_key.public_key})) for d in deliveries)
    assert first.msg_id != second.msg_id  # each redelivery is a fresh message
    assert first.message.bank_serial_no == second.message.bank_serial_no


async def test_a_replayed_request_is_refused_by_the_bank(env: Env) -> None:
    creds = env.bank.credentials()
    request = sm.encode(sm.QueryRequest(merchant_id=creds.merchant_id, order_id="abc12345"),
                        sm.SmSigner(creds.merchant_key, creds.merchant_key_id),
                        now=dt.datetime.now(dt.UTC))
    async with httpx.AsyncClient(trust_env=False) as client:
        first = await client.post(env.bank.base_url + GATEWAY_PATH, content=request)
        again = await client.post(env.bank.base_url + GATEWAY_PATH, content=request)
    assert first.status_code == 200 and again.status_code == 400


async def test_a_merchant_key_the_bank_does_not_know_is_refused(env: Env) -> None:
    creds = env.bank.credentials()
    intruder = SmBankAdapter(SmBankCredentials(
        base_url=creds.base_url, merchant_id=creds.merchant_id,
        merchant_key=generate_sm2_private_key(), merchant_key_id=creds.merchant_key_id,
        bank_public_keys=creds.bank_public_keys))
    with pytest.raises(BankRejected):
        await intruder.create_payment(env.order())
    await intruder.aclose()
    never = BankCall("never12345", dt.datetime.now(dt.UTC))
    assert (await env.adapter.query_payment(never)).outcome is BankOutcome.NOT_FOUND
