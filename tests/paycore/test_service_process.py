"""paycore run as a service, end to end (#17 "Done means"), on PostgreSQL: `paycore serve`
and two `paycore worker` processes as real subprocesses on one schema, the three sandbox
banks on loopback (in this process, where the test sets their faults), checkouts driven
over HTTP with faults on, the janitor, payout submission and webhook dispatch running as
the workers' scheduled jobs, and one worker SIGKILLed in the middle of a job.

Faults: payment creations whose answer times out after the bank registered them (the
customer pays anyway; no notification) — unknown; a refund timing out after the bank
debited, and one answered with a bare 500 after booking — unknown; a payout answered 500
after booking — unknown; notifications delivered twice. The merchant's webhook receiver
holds its first request unanswered (the worker sending it is the one killed), then refuses
a few, then accepts.

Afterwards: every unknown is settled as the bank booked it, by the workers alone; the
ledger's clearing and payout accounts equal the banks' own books, so each capture, refund
and payout was applied once; `verify` is clean; the killed worker's job was taken again
and finished; every event of the merchant reached the receiver, each with a valid
signature, each object's events in order."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import signal
import socket
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa

import gateways
from gateways import PayoutRequest, PayoutState, RefundState
from gateways.bank import PaymentInstruction
from gateways.payout_records import record_payout  # the bank mechanics, under the controls
from gateways.sandbox import Fault, SandboxFleet, SandboxSettings, TxnKind
from gateways.sandbox.faults import FaultBook
from gateways.states import AttemptState, IntentState
from paycore import db as paycore_db
from paycore import jobs
from paycore.api import create_api_key
from paycore.api.app import load_routers
from paycore.api.payments import derived_id
from paycore.jobs import JobStatus
from tests.gateways.core_env import Env
from tests.gateways.core_helpers import cny, open_payable
from tests.gateways.sandbox_directory import ENV, NOTIFY_ENV, TIMEOUT_ENV, write_credentials

from ..conftest import PG_URL, drop_schema, make_engine
from .service_helpers import Receiver

ROOT = Path(__file__).resolve().parents[2]
PAYCORE = Path(sys.executable).with_name("paycore")
BANKS = ("unionpay", "restbank", "smbank")
#: banks whose payment creation is a server call (UnionPay's starts in the browser)
CREATE_CALLS = ("restbank", "smbank")
MERCHANT, SUPPLIER = "m-1", "sup-001"
#: the adapters' read time-out (in the server and workers) is below the sandbox's hang
SETTINGS = SandboxSettings(hang_seconds=6.0, late_notify_seconds=0.2, slow_seconds=1.0,
                           retry_delays=(0.05, 0.2, 0.5, 1.0, 2.0),
                           opening_balance_minor=100_000_000)
ADAPTER_TIMEOUT = "3000"  # ms
KEY_RING = "test1:" + base64.b64encode(bytes(range(32))).decode()  # tests/conftest.py's
SCHEDULES = ("schedules:\n  janitor: {every: 1}\n  payouts.submit: {every: 1}\n"
             "  webhooks.dispatch: {every: 1, max_attempts: 5}\n")


class NextPaymentFaults(FaultBook):
    """The sandbox's faults by reference, and faults for the next payment a bank is asked
    to create, whose attempt id the API makes up: the first unseen attempt takes them."""

    def __init__(self) -> None:
        super().__init__()
        self.next: list[tuple[Fault, ...]] = []

    def plan(self, reference: str):  # type: ignore[no-untyped-def]
        if reference not in self._plans and reference.startswith("at") and self.next:
            self.set(reference, *self.next.pop(0))
        return super().plan(reference)


@pytest.fixture
async def pg(tmp_path):
    engine, schema = await make_engine("postgresql", tmp_path)
    try:
        await paycore_db.upgrade(engine)
        yield engine, PG_URL + "?options=" + quote(f"-csearch_path={schema}")
    finally:
        await engine.dispose()
        if schema:
            await drop_schema(schema)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(url: str, credentials: Path, api_base: str, tmp_path: Path) -> dict[str, str]:
    schedules = tmp_path / "schedules.yaml"
    schedules.write_text(SCHEDULES)
    return {**os.environ, "PAYCORE_DATABASE_URL": url, "PYTHONPATH": str(ROOT),
            "PAYCORE_BANKS": "tests.gateways.sandbox_directory:banks", ENV: str(credentials),
            NOTIFY_ENV: f"{api_base}/v1/notifications", TIMEOUT_ENV: ADAPTER_TIMEOUT,
            "PAYCORE_ACCOUNT_KEYS": KEY_RING, "PAYCORE_SCHEDULES": str(schedules),
            "PAYCORE_JOB_LEASE_SECONDS": "2", "PAYCORE_WORKER_POLL_MS": "200",
            "PAYCORE_WEBHOOK_BACKOFF": ",".join(["1"] * 12), "PAYCORE_WEBHOOK_TIMEOUT": "2",
            "PAYCORE_WEBHOOK_ALLOW_PRIVATE": "1", "PAYCORE_LOG_LEVEL": "INFO",
            "PAYCORE_LOG_FORMAT": "json"}


async def _start(args: list[str], env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    out = log.open("wb")
    try:
        return await asyncio.create_subprocess_exec(
            str(PAYCORE), *args, cwd=str(ROOT), env=env, stdout=out, stderr=out)
    finally:
        out.close()  # the child holds its own descriptor


async def _wait(predicate, what: str, within: float = 240.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.25)


class Shop:
    """The merchant's side: checkouts over HTTP, customers paying at the banks."""

    def __init__(self, api: httpx.AsyncClient, key: str, fleet: SandboxFleet) -> None:
        self.api, self.key, self.fleet = api, key, fleet
        self.intents: list[str] = []

    def headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}",
                "Idempotency-Key": idempotency_key or uuid.uuid4().hex}

    async def checkout(self, bank: str, amount: str) -> dict:
        answer = await self.api.post("/v1/payment-intents", headers=self.headers(), json={
            "order_id": f"ord-{uuid.uuid4().hex[:12]}", "supplier_id": SUPPLIER,
            "amount": {"amount": amount, "currency": "CNY"}, "bank": bank})
        assert answer.status_code == 201, answer.text
        intent = answer.json()
        self.intents.append(intent["id"])
        return intent

    async def pay(self, intent: dict, *faults: Fault) -> None:
        bank = self.fleet.bank(intent["attempt"]["bank"])
        if faults:
            bank.faults.set(intent["attempt"]["id"], *faults)
        action = intent["next_action"]
        paid = await bank.customer_pays(PaymentInstruction(action["method"], action["url"],
                                                           action["fields"]))
        assert paid.status_code == 200, paid.text

    async def intent(self, intent_id: str) -> dict:
        answer = await self.api.get(f"/v1/payment-intents/{intent_id}", headers=self.headers())
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def succeeded(self, intent_id: str) -> None:
        async def done() -> bool:
            return (await self.intent(intent_id))["status"] == "succeeded"
        await _wait(done, f"{intent_id} to succeed", 60)

    async def refund(self, intent_id: str, amount: str, bank: str, *faults: Fault) -> dict:
        idem = uuid.uuid4().hex
        # the refund's id, as the API derives it from the merchant's Idempotency-Key
        refund_id = derived_id("rf", f"api:{MERCHANT}:{idem}")
        self.fleet.bank(bank).faults.set(refund_id, *faults)
        answer = await self.api.post(f"/v1/payment-intents/{intent_id}/refunds",
                                     headers=self.headers(idem),
                                     json={"amount": {"amount": amount, "currency": "CNY"}})
        assert answer.status_code == 201, answer.text
        refund = answer.json()
        assert refund["id"] == refund_id
        return refund


async def test_api_and_two_workers_one_killed_settle_everything_once(pg, tmp_path):
    engine, url = pg
    receiver = Receiver(refuse=4, gate=asyncio.Event())
    hook = await receiver.start()
    processes: list[asyncio.subprocess.Process] = []
    async with SandboxFleet.start(BANKS, settings=SETTINGS) as fleet:
        for code in CREATE_CALLS:
            fleet.bank(code).faults = NextPaymentFaults()
        credentials = write_credentials(fleet, tmp_path / "banks.json")
        async with engine.begin() as conn:
            await gateways.set_supplier_terms(conn, gateways.SupplierTerms(
                SUPPLIER, Decimal("0.03"), gateways.RefundCommission.PROPORTIONAL))
            await open_payable(conn, SUPPLIER, funded="1000.00")
            load_routers()  # each router declares its scopes
            issued = await create_api_key(conn, MERCHANT, [
                "payments:write", "payments:read", "refunds:write", "webhooks:write",
                "events:read"])
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = _env(url, credentials, base, tmp_path)
        try:
            processes.append(await _start(["serve", "--port", str(port)], env,
                                          tmp_path / "api.log"))
            async with httpx.AsyncClient(base_url=base, timeout=30) as api:
                async def ready() -> bool:
                    try:
                        return (await api.get("/readyz")).status_code == 200
                    except httpx.TransportError:
                        return False
                await _wait(ready, "the API server", 90)
                shop = Shop(api, issued.secret, fleet)
                made = await api.post("/v1/webhook-endpoints", headers=shop.headers(),
                                      json={"url": hook, "topics": ["*"]})
                assert made.status_code == 201, made.text
                receiver.secret = made.json()["secret"]

                workers = [await _start(["worker", "--concurrency", "2"], env,
                                        tmp_path / f"worker{n}.log") for n in range(2)]
                processes.extend(workers)

                # -- checkouts with faults on -----------------------------------------------
                paid: dict[str, dict] = {}
                for code in BANKS:
                    paid[code] = await shop.checkout(code, "120.00")
                    await shop.pay(paid[code], Fault.DUPLICATE_NOTIFY)
                    await shop.pay(await shop.checkout(code, "35.50"))
                unknown_payments: dict[str, dict] = {}
                for code in CREATE_CALLS:
                    faults = fleet.bank(code).faults
                    assert isinstance(faults, NextPaymentFaults)
                    faults.next.append((Fault.TIMEOUT, Fault.NO_NOTIFY))
                    intent = await shop.checkout(code, "41.00")
                    assert intent["status"] == "unknown", intent
                    txn = fleet.bank(code).find(TxnKind.PAYMENT, intent["attempt"]["id"])
                    assert txn is not None  # the bank registered it; the customer pays
                    fleet.bank(code).pay(txn, fleet.bank(code).default_customer.number)
                    unknown_payments[code] = intent
                for intent in paid.values():
                    await shop.succeeded(intent["id"])
                unknown_refunds = {
                    "restbank": await shop.refund(paid["restbank"]["id"], "25.00", "restbank",
                                                  Fault.TIMEOUT_AFTER_DEBIT, Fault.NO_NOTIFY),
                    "smbank": await shop.refund(paid["smbank"]["id"], "20.00", "smbank",
                                                Fault.SERVER_ERROR_AFTER_BOOKING,
                                                Fault.NO_NOTIFY),
                }
                for refund in unknown_refunds.values():
                    assert refund["status"] == "unknown", refund
                await shop.refund(paid["unionpay"]["id"], "10.00", "unionpay")
                # payouts, requested as the settlement run does; the workers submit them
                payout_ids = {code: f"po{code}{uuid.uuid4().hex[:8]}" for code in BANKS}
                fleet.bank("restbank").faults.set(payout_ids["restbank"],
                                                  Fault.SERVER_ERROR_AFTER_BOOKING,
                                                  Fault.NO_NOTIFY)
                async with engine.begin() as conn:
                    for code, payout_id in payout_ids.items():
                        await record_payout(conn, PayoutRequest(
                            payout_id=payout_id, beneficiary_ref=f"supplier:{SUPPLIER}",
                            beneficiary=gateways.Beneficiary("Hangzhou Silk Co.",
                                                             "6222020200112233445",
                                                             "ICBC Hangzhou"),
                            amount=cny("30.00"), debit_account=f"2202.payable.{SUPPLIER}",
                            purpose="settlement", banks=(code,)))

                # -- one worker killed in the middle of a job ---------------------------------
                victim: dict[str, object] = {}

                async def sending() -> bool:
                    if receiver.held == 0:
                        return False
                    async with engine.connect() as conn:
                        rows = (await conn.execute(sa.text(
                            "SELECT id, lease_owner FROM jobs WHERE kind = 'webhooks.dispatch' "
                            "AND status = 'running'"))).all()
                    for job_id, owner in rows:
                        for w in workers:
                            if owner and f":{w.pid}:" in owner:
                                victim.update(job=job_id, process=w)
                                return True
                    return False

                await _wait(sending, "a worker sending a webhook", 120)
                killed = victim["process"]
                assert isinstance(killed, asyncio.subprocess.Process)
                killed.send_signal(signal.SIGKILL)
                await killed.wait()
                receiver.gate.set()  # type: ignore[union-attr]

                # -- the survivor finishes everything -------------------------------------------
                async def settled() -> bool:
                    async with engine.connect() as conn:
                        open_ = await conn.scalar(sa.text(
                            "SELECT (SELECT count(*) FROM payment_intents WHERE status IN "
                            "('unknown', 'pending', 'created')) + (SELECT count(*) FROM refunds "
                            "WHERE status IN ('unknown', 'pending', 'requested')) + (SELECT "
                            "count(*) FROM payouts WHERE status IN ('requested', 'submitted', "
                            "'unknown'))"))
                        unsequenced = await conn.scalar(sa.text(
                            "SELECT count(*) FROM outbox_events WHERE seq IS NULL"))
                        undelivered = await conn.scalar(sa.text(
                            "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'"))
                        retaken = await jobs.find_job(conn, int(victim["job"]))  # type: ignore[call-overload]
                    return (open_ == 0 and unsequenced == 0 and undelivered == 0
                            and retaken is not None and retaken.status is JobStatus.SUCCEEDED)

                await _wait(settled, "every outcome settled and every event delivered", 240)
                breakers = (await api.get("/metrics")).text
        finally:
            for p in processes:
                if p.returncode is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(p.wait(), 60)
                    except TimeoutError:
                        p.kill()
                        await p.wait()
            await receiver.stop()

        # -- every unknown settled as the bank booked it --------------------------------------
        async with engine.connect() as conn:
            for code, intent in unknown_payments.items():
                settled_intent = await gateways.get_intent(conn, intent["id"])
                [attempt] = await gateways.list_attempts(conn, intent["id"])
                assert (code, settled_intent.status, attempt.status) == (
                    code, IntentState.SUCCEEDED, AttemptState.SUCCEEDED)
                booked = fleet.bank(code).find(TxnKind.PAYMENT, attempt.id)
                assert booked is not None and attempt.bank_txn_id == booked.bank_txn_id
            for code, refund in unknown_refunds.items():
                found = await gateways.get_refund(conn, refund["id"])
                booked = fleet.bank(code).find(TxnKind.REFUND, refund["id"])
                assert (code, found.status) == (code, RefundState.SUCCEEDED)
                assert booked is not None and found.bank_txn_id == booked.bank_txn_id
            for code, payout_id in payout_ids.items():
                payout = await gateways.get_payout(conn, payout_id)
                booked = fleet.bank(code).find(TxnKind.PAYOUT, payout_id)
                assert (code, payout.status) == (code, PayoutState.SUCCEEDED)
                assert booked is not None and payout.bank_txn_id == booked.bank_txn_id
            for intent_id in shop.intents:
                assert (await gateways.get_intent(conn, intent_id)).status is IntentState.SUCCEEDED
            retaken = await jobs.find_job(conn, int(victim["job"]))  # type: ignore[call-overload]
            events = (await conn.execute(sa.text(
                "SELECT id, seq, object_type, object_id FROM outbox_events "
                "WHERE audience = :m ORDER BY seq"), {"m": MERCHANT})).all()
        # every job's effect once: the books equal the banks' books (a capture, refund or
        # payout applied twice, or not at all, would not), every entry balances, verify holds
        await Env(engine, fleet, None, [dt.timedelta(0)]).assert_agrees_with_banks()  # type: ignore[arg-type]
        assert retaken is not None and retaken.attempts >= 2

        # -- every event delivered, signed, each object's in order ----------------------------
        assert receiver.held >= 1 and receiver.refused == 4 and receiver.bad_signatures == 0
        assert len(events) >= len(shop.intents) + 3  # captures, refunds
        assert receiver.event_ids == {e.id for e in events}
        of = {e.id: (f"{e.object_type}:{e.object_id}", e.seq) for e in events}
        by_object: dict[str, list[int]] = {}
        for e in receiver.accepted:
            key, seq = of[e["id"]]
            if seq not in by_object.setdefault(key, []):
                by_object[key].append(seq)
        for key, seqs in by_object.items():
            assert seqs == sorted(seqs), (key, seqs)
        assert 'paycore_bank_breaker_open{bank="restbank"}' in breakers
