""""Ask the bank now" on the payments pages, in a real browser, against the sandbox banks.

The sandbox bank (restbank) runs as real HTTP servers on loopback in a thread of this
process; it books a payment, a refund and a payout whose answers were lost (a time-out
after the bank acted, no notification), so each is `unknown` here. `paycore serve` runs as
its own process with the deployment's bank directory (`PAYCORE_BANKS`), on SQLite and on
PostgreSQL. A payments operator asks the bank about each from its page: the janitor's own
inquiry runs, the record is settled as the bank booked it, the inquiry history shows it
and the audit trail says who asked, when, and what the bank said. A viewer is refused
(and has no button), a form without its CSRF token is refused, a record not in `unknown`
is refused; the page passes axe and is photographed."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import gateways
from gateways import Beneficiary, PayoutRequest, PayoutState, RefundState
from gateways.payout_records import record_payout
from gateways.sandbox import Fault, TxnKind
from gateways.states import IntentState
from paycore import db as paycore_db
from tests.conftest import CI, PG_URL, drop_schema, pg_unreachable_reason
from tests.console.seed import PASSWORD, seed
from tests.console.test_console_browser import (
    BROWSER_ARGS,
    CHROMIUM,
    KEY,
    TODAY,
    _create_schema,
    _free_port,
    _wait_for,
    shot,
)
from tests.gateways.core_env import checkout_env
from tests.gateways.core_helpers import cny, open_payable
from tests.gateways.sandbox_directory import ENV, write_credentials

sync_api = pytest.importorskip("playwright.sync_api") if not CI else __import__(
    "playwright.sync_api", fromlist=["sync_playwright"])
ROOT = Path(__file__).resolve().parents[2]
BEN = Beneficiary("Hangzhou Silk Co.", "6222020200112233445", "ICBC Hangzhou")


@dataclass(eq=False)
class Banks(threading.Thread):
    """The sandbox bank on loopback, in a thread with its own event loop, and the unknown
    records it booked, kept up until `stop` is set."""

    url: str
    credentials: Path
    ready: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    records: dict[str, str] = field(default_factory=dict)
    booked: dict[str, str] = field(default_factory=dict)
    failure: BaseException | None = None

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the test
            self.failure = exc
            self.ready.set()

    async def _main(self) -> None:
        engine = paycore_db.create_engine(self.url)
        try:
            await paycore_db.upgrade(engine)
            await seed(engine, TODAY)
            async with checkout_env(engine, ("restbank",)) as env:
                await env.terms()
                async with engine.begin() as conn:
                    await open_payable(conn, "sup-001", funded="1000.00")
                bank = env.fleet.bank("restbank")
                # a payment: the creation's answer lost after the bank registered it, then
                # the customer paid; no notification
                attempt_id = f"atcon{uuid.uuid4().hex[:8]}"
                bank.faults.set(attempt_id, Fault.TIMEOUT, Fault.NO_NOTIFY)
                checkout = await gateways.create_intent(env.engine, env.banks,
                                                        gateways.IntentRequest(
                    merchant_id="m-1", order_id=f"ord-{attempt_id}", supplier_id="sup-001",
                    amount=cny("41.00"), bank="restbank", attempt_id=attempt_id))
                assert checkout.intent.status is IntentState.UNKNOWN
                txn = bank.find(TxnKind.PAYMENT, attempt_id)
                assert txn is not None
                bank.pay(txn, bank.default_customer.number)
                # a refund the bank paid whose answer was lost
                paid = await env.checkout("60.00", bank="restbank")
                await env.pay(paid)
                await env.fleet.drain()
                refund_id = f"rfcon{uuid.uuid4().hex[:8]}"
                bank.faults.set(refund_id, Fault.TIMEOUT_AFTER_DEBIT, Fault.NO_NOTIFY)
                refund = await gateways.refund_payment(env.engine, env.banks, paid.intent.id,
                                                       cny("25.00"), refund_id=refund_id)
                assert refund.status is RefundState.UNKNOWN
                # a payout the bank made whose answer was lost
                payout_id = f"pocon{uuid.uuid4().hex[:8]}"
                async with engine.begin() as conn:
                    await record_payout(conn, PayoutRequest(
                        payout_id=payout_id, beneficiary_ref="supplier:sup-001",
                        beneficiary=BEN, amount=cny("30.00"),
                        debit_account="2202.payable.sup-001", purpose="settlement",
                        banks=("restbank",)))
                bank.faults.set(payout_id, Fault.TIMEOUT_AFTER_DEBIT, Fault.NO_NOTIFY)
                [payout] = await gateways.submit_payouts(env.engine, env.banks,
                                                         payout_ids=[payout_id])
                assert payout.status is PayoutState.UNKNOWN
                self.records = {"attempts": attempt_id, "refunds": refund_id,
                                "payouts": payout_id}
                for kind, ref, key in ((TxnKind.PAYMENT, attempt_id, "attempts"),
                                       (TxnKind.REFUND, refund_id, "refunds"),
                                       (TxnKind.PAYOUT, payout_id, "payouts")):
                    found = bank.find(kind, ref)
                    assert found is not None  # the bank booked it
                    self.booked[key] = found.bank_txn_id
                write_credentials(env.fleet, self.credentials)
                self.ready.set()
                # serve the bank (this loop) until the test is done
                await asyncio.to_thread(self.stop.wait)
        finally:
            await engine.dispose()


@dataclass(frozen=True)
class Served:
    base: str
    backend: str
    banks: Banks


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (apt-get install chromium; .ci/run "
                    "installs it)")
    folder = tmp_path_factory.mktemp("inquiry")
    schema = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{folder}/console.sqlite"
    else:
        reason = pg_unreachable_reason()
        if reason:
            if CI:
                pytest.fail(reason)
            pytest.skip(reason)
        schema = f"t_{uuid.uuid4().hex[:16]}"
        asyncio.run(_create_schema(schema))
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    gateways.use_account_keys(gateways.AccountKeys([("test1", KEY)]))
    banks = Banks(url, folder / "banks.json")
    banks.start()
    server = None
    try:
        assert banks.ready.wait(180), "the sandbox bank did not come up"
        if banks.failure is not None:
            raise banks.failure
        port = _free_port()
        env = {**os.environ, "PAYCORE_DATABASE_URL": url, "PAYCORE_TIMEZONE": "UTC",
               "PAYCORE_PAYOUT_COOLING_OFF_HOURS": "0", "PAYCORE_LOG_LEVEL": "WARNING",
               "PAYCORE_ACCOUNT_KEYS": f"test1:{base64.b64encode(KEY).decode()}",
               "PAYCORE_BANKS": "tests.gateways.sandbox_directory:banks",
               ENV: str(banks.credentials), "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen([str(Path(sys.executable).parent / "paycore"), "serve",
                                   "--host", "127.0.0.1", "--port", str(port)], env=env,
                                  cwd=str(ROOT), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        base = f"http://localhost:{port}"
        _wait_for(base, server)
        yield Served(base, request.param, banks)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        banks.stop.set()
        banks.join(timeout=30)
        if schema:
            asyncio.run(drop_schema(schema))


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield chromium
        chromium.close()


def _open_as(browser, served: Served, user: str):
    context = browser.new_context(base_url=served.base)
    page = context.new_page()
    page.goto("/console/login")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console")
    return context, page


def _post_from_page(page, action: str, token: bool) -> None:
    """Send the ask form as the page's own user (a viewer has no button to press)."""
    page.evaluate("""([action, token]) => {
        const form = document.createElement('form');
        form.method = 'post'; form.action = action;
        const value = document.querySelector('input[name=csrf_token]').value;
        if (token) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = 'csrf_token'; input.value = value;
            form.appendChild(input);
        }
        document.body.appendChild(form); form.submit();
    }""", [action, token])
    page.wait_for_load_state()


def test_a_payments_operator_asks_the_bank_and_each_record_is_settled(browser, served) -> None:
    from axe_playwright_python.sync_playwright import Axe

    records = served.banks.records
    viewer_context, viewer = _open_as(browser, served, "view1")
    viewer.goto(f"/console/payments/records/attempts/{records['attempts']}")
    assert viewer.locator("#record-status").inner_text() == "unknown"
    assert viewer.get_by_role("button", name="Ask the bank now").count() == 0
    _post_from_page(viewer, f"/console/payments/records/attempts/{records['attempts']}/inquire",
                    token=True)
    assert "a viewer can read, not act" in viewer.get_by_role("alert").inner_text()
    viewer_context.close()

    context, page = _open_as(browser, served, "pay1")
    page.goto(f"/console/payments/records/attempts/{records['attempts']}")
    _post_from_page(page, f"/console/payments/records/attempts/{records['attempts']}/inquire",
                    token=False)
    assert "no valid CSRF token" in page.get_by_role("alert").inner_text()

    axe = Axe()
    final = {"attempts": "succeeded", "refunds": "succeeded", "payouts": "succeeded"}
    for kind, record_id in records.items():
        page.goto(f"/console/payments?kind={kind}")
        page.get_by_role("link", name=record_id, exact=True).click()
        assert page.locator("#record-status").inner_text() == "unknown"
        if kind == "attempts":
            shot(page, served, "payments-record-unknown")
            results = axe.run(page)
            assert not results.violations_count, [
                f"{v['id']}: {v['help']}" for v in results.response["violations"]]
        page.get_by_label("Why (stored with the inquiry in the audit trail)").fill(
            f"merchant asked about {kind}")
        page.get_by_role("button", name="Ask the bank now").click()
        page.wait_for_load_state()
        status = page.get_by_role("status").inner_text()
        assert "asked restbank" in status and f"is now {final[kind]}" in status, status
        assert page.locator("#record-status").inner_text() == final[kind]
        history = page.locator("table#inquiry-history").inner_text()
        assert "restbank" in history and "done" in history, history
        assert page.get_by_role("button", name="Ask the bank now").count() == 0
        shot(page, served, f"payments-record-asked-{kind}")
    # a record no longer unknown is not asked about again
    _post_from_page(page, f"/console/payments/records/attempts/{records['attempts']}/inquire",
                    token=True)
    assert "not unknown" in page.get_by_role("alert").inner_text()

    page.goto("/console/audit")
    trail = page.locator("table#console-audit").inner_text()
    for kind, record_id in records.items():
        assert record_id in trail and f"merchant asked about {kind}" in trail
    assert "payment.inquire" in trail and "user:pay1" in trail and "user:view1" in trail
    assert "status_after: succeeded" in trail
    shot(page, served, "payments-inquiry-audit")
    context.close()
