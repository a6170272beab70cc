"""The console in a real browser: Debian's Chromium, headless, driven by Playwright, against
`paycore serve` running as its own process on loopback, on SQLite and on PostgreSQL.

A risk officer approves an application from the queue and the loan is disbursed; a finance
user resolves an exception and the report then explains every cent; a payments operator
approves a payout another requested, and the requester cannot; a viewer's action is
refused; a form without its CSRF token is refused; sign-in works from the keyboard alone;
axe-core (shipped inside the axe-playwright-python package, nothing fetched) finds no
violation on any page; a screenshot of every page is written to SCREENSHOTS."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import gateways
from paycore import db as paycore_db
from tests.conftest import CI, PG_URL, drop_schema, pg_unreachable_reason
from tests.console.seed import PASSWORD, Seeded, seed

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
KEY = bytes(range(32))
TODAY = dt.datetime.now(dt.UTC).date()
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync"]

sync_api = pytest.importorskip("playwright.sync_api") if not CI else __import__(
    "playwright.sync_api", fromlist=["sync_playwright"])


@dataclass(frozen=True)
class Console:
    base: str
    seeded: Seeded
    backend: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _prepare(url: str) -> Seeded:
    engine = paycore_db.create_engine(url)
    try:
        await paycore_db.upgrade(engine)
        return await seed(engine, TODAY)
    finally:
        await engine.dispose()


async def _create_schema(schema: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    await admin.execute(f"CREATE SCHEMA {schema}")
    await admin.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def console(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Console]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (apt-get install chromium; .ci/run "
                    "installs it)")
    schema = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('console')}/console.sqlite"
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
    seeded = asyncio.run(_prepare(url))
    port = _free_port()
    env = {**os.environ, "PAYCORE_DATABASE_URL": url, "PAYCORE_TIMEZONE": "UTC",
           "PAYCORE_PAYOUT_COOLING_OFF_HOURS": "0", "PAYCORE_LOG_LEVEL": "WARNING",
           "PAYCORE_ACCOUNT_KEYS": f"test1:{base64.b64encode(KEY).decode()}"}
    env.pop("PAYCORE_BANKS", None)
    server = subprocess.Popen([str(Path(sys.executable).parent / "paycore"), "serve", "--host",
                               "127.0.0.1", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://localhost:{port}"
    try:
        _wait_for(base, server)
        yield Console(base, seeded, request.param)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        if schema:
            asyncio.run(drop_schema(schema))


def _wait_for(base: str, server: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"paycore serve exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("paycore serve did not come up in 60 s")


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_as(browser, console: Console):
    contexts = []

    def open_as(user: str):
        context = browser.new_context(base_url=console.base)
        contexts.append(context)
        page = context.new_page()
        page.goto("/console/login")
        page.get_by_label("Username").fill(user)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/console")
        return page

    yield open_as
    for context in contexts:
        context.close()


def shot(page, console: Console, name: str) -> None:
    folder = SCREENSHOTS / console.backend
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_risk_officer_approves_from_the_queue_and_the_loan_is_disbursed(open_as, console) -> None:
    page = open_as("risk1")
    page.get_by_role("link", name="Risk", exact=True).click()
    shot(page, console, "risk-queue")
    page.get_by_role("link", name=console.seeded.loan_id).click()
    assert page.locator("#loan-status").inner_text() == "manual_review"
    shot(page, console, "risk-application")
    page.get_by_label("Approve", exact=True).check()
    page.get_by_label("Reason (stored with the decision)").fill("spike is a promotion; POs seen")
    page.get_by_role("button", name="Record the decision").click()
    page.wait_for_load_state()
    assert page.locator("#loan-status").inner_text() == "active"
    assert "is now active" in page.get_by_role("status").inner_text()
    page.goto("/console/risk/loans?view=running")
    assert console.seeded.loan_id in page.locator("table#loans-running").inner_text()
    shot(page, console, "risk-loan-book")


def test_finance_resolves_an_exception_and_the_report_explains_every_cent(open_as, console) -> None:
    page = open_as("fin1")
    page.goto(f"/console/finance/report?account={console.seeded.bank}&day={console.seeded.day}")
    assert "no —" in page.locator("#explained").inner_text() or \
        "1 lines" in page.locator("#open-exceptions").inner_text()
    page.get_by_role("link", name="Exceptions", exact=True).click()
    shot(page, console, "finance-exceptions")
    page.get_by_role("link", name=str(console.seeded.exception_id), exact=True).click()
    shot(page, console, "finance-exception")
    page.get_by_label("Adjustment entry against").check()
    page.get_by_label("account", exact=True).fill("6602.expense.bank_fees")
    page.get_by_label("Reason (stored)").fill("SMS notification fee for the month")
    page.get_by_role("button", name="Resolve").click()
    page.wait_for_load_state()
    assert page.locator("#exception-status").inner_text().startswith("resolved")
    page.goto(f"/console/finance/report?account={console.seeded.bank}&day={console.seeded.day}")
    assert "every cent of the difference is explained" in page.locator("#explained").inner_text()
    assert page.locator("#open-exceptions").inner_text() == "0 lines, 0 book items"
    shot(page, console, "finance-report")


def test_the_requester_cannot_approve_and_another_operator_can(open_as, console) -> None:
    payout = console.seeded.payout_id
    requester = open_as("pay1")
    requester.goto("/console/payments/approvals/queue")
    requester.get_by_role("button", name=f"Approve payout {payout}").click()
    requester.wait_for_load_state()
    assert "someone else must approve it" in requester.get_by_role("alert").inner_text()
    assert payout in requester.locator("#pending-payouts").inner_text()
    shot(requester, console, "payments-four-eyes-refused")
    approver = open_as("pay2")
    approver.goto("/console/payments/approvals/queue")
    approver.get_by_role("button", name=f"Approve payout {payout}").click()
    approver.wait_for_load_state()
    assert f"payout {payout} approved" in approver.get_by_role("status").inner_text()
    assert payout not in approver.locator("#pending-payouts").inner_text()
    shot(approver, console, "payments-approvals")
    approver.goto("/console/audit")
    trail = approver.locator("table#console-audit").inner_text()
    assert "user:pay1" in trail and "user:pay2" in trail and "refused" in trail


def test_a_viewers_action_is_refused(open_as, console) -> None:
    page = open_as("view1")
    page.goto("/console/payments/approvals/queue")
    page.get_by_role("button", name=f"Verify account {console.seeded.unverified_account}").click()
    page.wait_for_load_state()
    assert "a viewer can read, not act" in page.get_by_role("alert").inner_text()
    shot(page, console, "viewer-refused")


def test_a_form_without_its_csrf_token_is_refused(open_as, console) -> None:
    page = open_as("ctl1")
    page.goto("/console/books")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    page.get_by_role("button", name="Run verify now").click()
    page.wait_for_load_state()
    assert "no valid CSRF token" in page.get_by_role("alert").inner_text()
    shot(page, console, "csrf-refused")


def test_sign_in_from_the_keyboard_alone(browser, console) -> None:
    context = browser.new_context(base_url=console.base)
    page = context.new_page()
    page.goto("/console/login")
    # the name field has the focus on arrival (autofocus); then Tab, type, Enter
    assert page.evaluate("document.activeElement.id") == "username"
    page.keyboard.type("ctl1")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console")
    context.close()


PAGES = ["/console", "/console/risk/queue", "/console/risk/loans", "/console/risk/exposure",
         "/console/finance", "/console/finance/exceptions?status=resolved",
         "/console/finance/report", "/console/payments", "/console/payments?kind=payouts",
         "/console/payments/approvals/queue", "/console/payments/banks/health",
         "/console/books", "/console/books/accounts", "/console/books/journal",
         "/console/books/accounts/2202.payable.sup-p", "/console/charts", "/console/audit",
         "/console/risk/products"]


def test_every_page_passes_axe_and_is_photographed(open_as, browser, console) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    page = open_as("ctl1")
    found: dict[str, list[str]] = {}
    for path in [*PAGES, f"/console/risk/applications/{console.seeded.loan_id}",
                 f"/console/finance/exceptions/{console.seeded.exception_id}",
                 f"/console/payments/records/payouts/{console.seeded.payout_id}"]:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        shot(page, console, path.strip("/").replace("/", "_").replace("?", "_") or "home")
        results = axe.run(page)
        if results.violations_count:
            found[path] = [f"{v['id']}: {v['help']} ({len(v['nodes'])})"
                           for v in results.response["violations"]]
    risk = open_as("risk1")  # the products page's define/change/retire forms
    risk.goto("/console/risk/products")
    shot(risk, console, "console_risk_products_forms")
    results = axe.run(risk)
    if results.violations_count:
        found["/console/risk/products (risk)"] = [v["id"] for v in results.response["violations"]]
    context = browser.new_context(base_url=console.base)
    login = context.new_page()
    login.goto("/console/login")
    shot(login, console, "login")
    results = axe.run(login)
    if results.violations_count:
        found["/console/login"] = [v["id"] for v in results.response["violations"]]
    context.close()
    assert not found, found
