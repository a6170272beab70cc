"""An unknown outcome is settled by a janitor in another process (#15 §3).

At each of the three sandbox banks a payment, a refund and a payout are left without an
outcome after the bank booked them (a time-out after the bank acted, no notification),
by this process; then the janitor runs as production runs it — the `paycore payments
janitor` CLI, a process of its own, with the deployment's bank directory
(`PAYCORE_BANKS`) and the same database (the SQLite file, or the PostgreSQL schema named
in its URL) — and knows nothing but what the database holds. Each record must be settled
as the bank booked it, the books must equal the banks' own, and `verify` stay clean.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

import gateways
from gateways import Beneficiary, IntentRequest, PayoutRequest, PayoutState, RefundState
from gateways.calls import latest_call
from gateways.inquiries import Subject
from gateways.payout_records import record_payout  # the bank mechanics, under the controls
from gateways.protocols import unionpay as up
from gateways.sandbox import Fault, TxnKind
from gateways.states import AttemptState, IntentState
from paycore import db as paycore_db

from ..conftest import PG_URL, drop_schema, make_engine
from .core_env import checkout_env
from .core_helpers import cny, open_payable
from .sandbox_directory import ENV, write_credentials

BANKS = ("unionpay", "restbank", "smbank")
ROOT = Path(__file__).resolve().parents[2]
PAYCORE = Path(sys.executable).with_name("paycore")
BEN = Beneficiary("Hangzhou Silk Co.", "6222020200112233445", "ICBC Hangzhou")
#: the payment creation of these banks is a server call (UnionPay's starts in the browser)
CREATE_CALLS = {"restbank", "smbank"}


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path):
    """A migrated database and the URL another process reaches it by: the SQLite file, or
    the PostgreSQL test schema named in the URL as libpq's `options` (paycore.db)."""
    engine, schema = await make_engine(request.param, tmp_path)
    url = (f"sqlite+aiosqlite:///{tmp_path}/paycore.sqlite" if schema is None
           else PG_URL + "?options=" + quote(f"-csearch_path={schema}"))
    try:
        await paycore_db.upgrade(engine)
        yield engine, url
    finally:
        await engine.dispose()
        if schema:
            await drop_schema(schema)


async def _run_janitor(url: str, credentials: Path, now: dt.datetime) -> tuple[int, str]:
    env = {**os.environ, "PAYCORE_DATABASE_URL": url,
           "PAYCORE_BANKS": "tests.gateways.sandbox_directory:banks", ENV: str(credentials),
           "PYTHONPATH": str(ROOT), "PAYCORE_LOG_LEVEL": "WARNING"}
    # asyncio's subprocess: this event loop keeps serving the sandbox banks meanwhile
    process = await asyncio.create_subprocess_exec(
        str(PAYCORE), "payments", "janitor", "--now", now.isoformat(), cwd=str(ROOT),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def _unknown_payment(env, code: str) -> gateways.Checkout:
    """A payment the bank booked while we know nothing: REST/SM bank — the creation's
    answer is lost (time-out after the bank registered it), then the customer pays;
    UnionPay — its payment starts in the customer's browser (no server call to lose), so
    its case is the payment paid with no notification ever coming: pending until the
    janitor asks after expiry. No notification either way."""
    attempt_id = f"atproc{code}{os.urandom(4).hex()}"
    bank = env.fleet.bank(code)
    if code in CREATE_CALLS:
        bank.faults.set(attempt_id, Fault.TIMEOUT, Fault.NO_NOTIFY)
    else:
        bank.faults.set(attempt_id, Fault.NO_NOTIFY)
    checkout = await gateways.create_intent(env.engine, env.banks, IntentRequest(
        merchant_id="m-1", order_id=f"ord-{attempt_id}", supplier_id="sup-001",
        amount=cny("41.00"), bank=code, attempt_id=attempt_id))
    if code in CREATE_CALLS:
        assert checkout.intent.status is IntentState.UNKNOWN
        txn = bank.find(TxnKind.PAYMENT, attempt_id)
        assert txn is not None
        bank.pay(txn, bank.default_customer.number)  # the customer got there anyway
    else:
        assert checkout.intent.status is IntentState.PENDING
        await env.pay(checkout)
    return checkout


async def _unknown_refund(env, code: str) -> str:
    paid = await env.checkout("60.00", bank=code)
    await env.pay(paid)
    await env.fleet.drain()
    assert (await env.intent(paid.intent.id)).status is IntentState.SUCCEEDED
    refund_id = f"rfproc{code}{os.urandom(4).hex()}"
    env.fleet.bank(code).faults.set(refund_id, Fault.TIMEOUT_AFTER_DEBIT, Fault.NO_NOTIFY)
    refund = await gateways.refund_payment(env.engine, env.banks, paid.intent.id,
                                           cny("25.00"), refund_id=refund_id)
    assert refund.status is RefundState.UNKNOWN
    assert env.fleet.bank(code).find(TxnKind.REFUND, refund_id) is not None  # booked
    return refund_id


async def _unknown_payout(env, code: str) -> str:
    payout_id = f"poproc{code}{os.urandom(4).hex()}"
    async with env.engine.begin() as conn:
        await record_payout(conn, PayoutRequest(
            payout_id=payout_id, beneficiary_ref="supplier:sup-001", beneficiary=BEN,
            amount=cny("30.00"), debit_account="2202.payable.sup-001", purpose="settlement",
            banks=(code,)))
    env.fleet.bank(code).faults.set(payout_id, Fault.TIMEOUT_AFTER_DEBIT, Fault.NO_NOTIFY)
    [payout] = await gateways.submit_payouts(env.engine, env.banks, payout_ids=[payout_id])
    assert payout.status is PayoutState.UNKNOWN and payout.bank == code
    assert env.fleet.bank(code).find(TxnKind.PAYOUT, payout_id) is not None  # booked
    return payout_id


async def test_a_janitor_process_settles_what_another_process_left_unknown(database, tmp_path):
    engine, url = database
    async with checkout_env(engine, BANKS) as env:
        await env.terms()
        async with engine.begin() as conn:
            await open_payable(conn, "sup-001", funded="1000.00")
        left = {code: (await _unknown_payment(env, code), await _unknown_refund(env, code),
                       await _unknown_payout(env, code)) for code in BANKS}
        assert await env.entries("payout") == []
        credentials = write_credentials(env.fleet, tmp_path / "banks.json")
        # past every intent's expiry: the pending UnionPay payment is due for its inquiry
        latest = max(checkout.intent.expires_at for checkout, _, _ in left.values())
        code, output = await _run_janitor(url, credentials, latest + dt.timedelta(minutes=5))
        assert code == 0, output
        assert "9 settled" in output, output
        async with engine.connect() as conn:
            for bank, (checkout, refund_id, payout_id) in left.items():
                intent = await gateways.get_intent(conn, checkout.intent.id)
                [attempt] = await gateways.list_attempts(conn, checkout.intent.id)
                assert (bank, intent.status, attempt.status) == (
                    bank, IntentState.SUCCEEDED, AttemptState.SUCCEEDED)
                booked = env.fleet.bank(bank)
                assert attempt.bank_txn_id == booked.find(TxnKind.PAYMENT,
                                                          attempt.id).bank_txn_id
                refund = await gateways.get_refund(conn, refund_id)
                assert (bank, refund.status) == (bank, RefundState.SUCCEEDED)
                assert refund.bank_txn_id == booked.find(TxnKind.REFUND, refund_id).bank_txn_id
                payout = await gateways.get_payout(conn, payout_id)
                assert (bank, payout.status) == (bank, PayoutState.SUCCEEDED)
                assert payout.bank_txn_id == booked.find(TxnKind.PAYOUT, payout_id).bank_txn_id
                # what the janitor named is what was recorded before sending, which is
                # what the bank holds: UnionPay's orderId + txnTime
                for subject, kind, ref in ((Subject.ATTEMPT, TxnKind.PAYMENT, attempt.id),
                                           (Subject.REFUND, TxnKind.REFUND, refund_id),
                                           (Subject.PAYOUT, TxnKind.PAYOUT, payout_id)):
                    call = await latest_call(conn, subject, ref, bank)
                    txn = booked.find(kind, ref)
                    assert call is not None and txn is not None and call.attempt_no == 1
                    if bank == "unionpay":
                        assert (call.bank_order_id, up.format_txn_time(call.placed_at)) == (
                            txn.extra["orderId"], txn.extra["txnTime"])
        await env.assert_agrees_with_banks()
