"""The console's routes over HTTP on SQLite and PostgreSQL (the same flows the browser
tests drive on one database): sign-in and lock-out, sessions, CSRF, roles, four eyes,
decisions with their audit rows, exports, and that a merchant's API key opens nothing."""

from __future__ import annotations

import datetime as dt
import io
import re

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
import lending
import reconciliation
from paycore.api import ApiSettings, create_api_key, create_app
from paycore.schema import console_audit
from tests.console.seed import PASSWORD, Seeded, seed

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYCORE_TIMEZONE", "UTC")
    monkeypatch.setenv("PAYCORE_PAYOUT_COOLING_OFF_HOURS", "0")
    # httpx's test transport speaks plain http: cookies marked Secure would not be sent back
    monkeypatch.setenv("PAYCORE_CONSOLE_INSECURE_COOKIES", "1")


@pytest.fixture
async def console(db: AsyncEngine) -> tuple[AsyncEngine, Seeded, httpx.AsyncClient]:
    seeded = await seed(db, TODAY)
    app = create_app(db, settings=ApiSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        yield db, seeded, client


async def login(client: httpx.AsyncClient, user: str, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return await client.post("/console/login", data={
        "username": user, "password": password, "csrf_token": token, "next": "/console"})


def csrf(page: httpx.Response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


async def audit_rows(engine: AsyncEngine) -> list[dict]:
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(
            sa.select(console_audit).order_by(console_audit.c.id))]


async def test_pages_need_a_session_and_a_merchant_key_gets_nothing(console) -> None:
    engine, _, client = console
    async with engine.begin() as conn:
        issued = await create_api_key(conn, "m-1", ["payments:read", "payouts:approve"])
    for path in ("/console", "/console/risk/queue", "/console/books"):
        response = await client.get(path, headers={"Authorization": f"Bearer {issued.secret}"})
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login")
    response = await client.post("/console/payments/payouts/po-console-1/approve",
                                 headers={"Authorization": f"Bearer {issued.secret}"},
                                 data={"csrf_token": "x"})
    assert response.status_code == 303 and "/console/login" in response.headers["location"]


async def test_sign_in_sets_a_secure_http_only_cookie_and_locks_after_failures(
        console, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, _, client = console
    monkeypatch.delenv("PAYCORE_CONSOLE_INSECURE_COOKIES")
    app = create_app(engine, settings=ApiSettings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://console.test") as secure:
        ok = await login(secure, "risk1")
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    for _ in range(5):
        refused = await login(client, "view1", "wrong password here")
        assert refused.status_code == 401
    # locked now: even the right password is refused, and says nothing about which
    locked = await login(client, "view1")
    assert locked.status_code == 401 and "locked" in locked.text
    rows = [r for r in await audit_rows(engine) if r["action"] == "login"]
    assert [r["outcome"] for r in rows][-6:] == ["refused"] * 6
    assert rows[-1]["details"]["why"] == "locked"


async def test_a_form_without_its_csrf_token_is_refused(console) -> None:
    engine, seeded, client = console
    await login(client, "risk1")
    response = await client.post(f"/console/risk/applications/{seeded.loan_id}/decide",
                                 data={"decision": "approve", "reason": "looks fine"})
    assert response.status_code == 403 and "CSRF" in response.text
    async with engine.connect() as conn:
        assert (await reconciliation_free_status(conn, seeded.loan_id)) == "manual_review"
    [row] = [r for r in await audit_rows(engine) if r["action"] == "form.csrf"]
    assert row["outcome"] == "refused" and row["actor"] == "user:risk1"


async def reconciliation_free_status(conn, loan_id: str) -> str:
    import lending

    return (await lending.load_loan(conn, loan_id, lending.DEFAULT_CONFIG)).status.value


async def test_risk_officer_approves_and_the_loan_is_disbursed(console) -> None:
    engine, seeded, client = console
    await login(client, "risk1")
    queue = await client.get("/console/risk/queue")
    assert seeded.loan_id in queue.text
    page = await client.get(f"/console/risk/applications/{seeded.loan_id}")
    assert "manual_review" in page.text and "Similar past decisions" in page.text
    response = await client.post(f"/console/risk/applications/{seeded.loan_id}/decide", data={
        "csrf_token": csrf(page), "decision": "approve", "reason": "spike is a promotion",
        "disburse": "yes"})
    assert response.status_code == 303
    async with engine.connect() as conn:
        assert await reconciliation_free_status(conn, seeded.loan_id) == "active"
        assert (await ledger.verify(conn)).ok
    [row] = [r for r in await audit_rows(engine) if r["action"] == "loan.approve"]
    assert (row["actor"], row["reason"], row["outcome"]) == (
        "user:risk1", "spike is a promotion", "done")


async def test_viewer_reads_but_cannot_act(console) -> None:
    engine, seeded, client = console
    await login(client, "view1")
    page = await client.get(f"/console/risk/applications/{seeded.loan_id}")
    assert page.status_code == 200
    response = await client.post(f"/console/risk/applications/{seeded.loan_id}/decide", data={
        "csrf_token": csrf(page), "decision": "approve", "reason": "me too"})
    assert response.status_code == 403 and "viewer can read, not act" in response.text
    async with engine.connect() as conn:
        assert await reconciliation_free_status(conn, seeded.loan_id) == "manual_review"
    [row] = [r for r in await audit_rows(engine) if r["action"] == "loan.approve"]
    assert row["outcome"] == "refused" and row["actor"] == "user:view1"


async def test_requester_cannot_approve_their_payout_and_another_operator_can(console) -> None:
    engine, seeded, client = console
    await login(client, "pay1")
    page = await client.get("/console/payments/approvals/queue")
    assert seeded.payout_id in page.text
    refused = await client.post(f"/console/payments/payouts/{seeded.payout_id}/approve",
                                data={"csrf_token": csrf(page), "reason": "mine"})
    assert refused.status_code == 303 and "error=" in refused.headers["location"]
    async with engine.connect() as conn:
        import gateways
        assert (await gateways.get_payout(conn, seeded.payout_id)).status.value == "pending_approval"
    client.cookies.clear()
    await login(client, "pay2")
    page = await client.get("/console/payments/approvals/queue")
    done = await client.post(f"/console/payments/payouts/{seeded.payout_id}/approve",
                             data={"csrf_token": csrf(page), "reason": "invoice checked"})
    assert done.status_code == 303 and "error=" not in done.headers["location"]
    async with engine.connect() as conn:
        assert (await gateways.get_payout(conn, seeded.payout_id)).status.value == "requested"
    rows = [r for r in await audit_rows(engine) if r["action"] == "payout.approve"]
    assert [(r["actor"], r["outcome"]) for r in rows] == [("user:pay1", "refused"),
                                                          ("user:pay2", "done")]
    # pay1 entered the second account: pay2 verifies it
    page = await client.get("/console/payments/approvals/queue")
    await client.post(f"/console/payments/accounts/{seeded.unverified_account}/verify",
                      data={"csrf_token": csrf(page), "reason": "called back"})
    async with engine.connect() as conn:
        assert (await gateways.get_account(conn, seeded.unverified_account)).status.value == "verified"


async def test_finance_resolves_an_exception_and_the_report_explains_every_cent(console) -> None:
    engine, seeded, client = console
    await login(client, "fin1")
    before = await client.get(f"/console/finance/report?account={seeded.bank}&day={seeded.day}")
    assert "1 lines" in before.text
    page = await client.get(f"/console/finance/exceptions/{seeded.exception_id}")
    response = await client.post(f"/console/finance/exceptions/{seeded.exception_id}/resolve",
                                 data={"csrf_token": csrf(page), "how": "adjust",
                                       "counter_account": "6602.expense.bank_fees",
                                       "reason": "SMS fee"})
    assert response.status_code == 303 and "error=" not in response.headers["location"]
    after = await client.get(f"/console/finance/report?account={seeded.bank}&day={seeded.day}")
    assert "every cent of the difference is explained" in after.text
    assert "0 lines, 0 book items" in after.text
    async with engine.connect() as conn:
        bank = await reconciliation.get_bank_account(conn, seeded.bank)
        report = await reconciliation.build_report(conn, bank, seeded.day)
        assert report.explained and report.open_line_exceptions == 0
        assert (await ledger.verify(conn)).ok


async def test_tables_export_as_csv_and_xlsx_with_exact_money(console) -> None:
    _, _, client = console
    await login(client, "ctl1")
    csv = await client.get("/console/books/accounts?format=csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert "2202.payable.sup-p,Payable to sup-p,liability,5000.00,CNY,open" in csv.text
    xlsx = await client.get("/console/finance/exceptions?format=xlsx")
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert "Amount" in header and "Amount currency" in header


async def test_every_page_answers_and_the_books_as_of_a_day(console) -> None:
    _, seeded, client = console
    await login(client, "ctl1")
    for path in ("/console", "/console/risk/queue", "/console/risk/loans",
                 "/console/risk/loans?view=overdue", "/console/risk/exposure",
                 "/console/finance", "/console/finance/exceptions",
                 f"/console/finance/exceptions/{seeded.exception_id}",
                 "/console/finance/report", "/console/payments",
                 "/console/payments?kind=payouts", "/console/payments/approvals/queue",
                 "/console/payments/banks/health", f"/console/payments/records/payouts/{seeded.payout_id}",
                 "/console/books", f"/console/books?as_of={TODAY - dt.timedelta(days=30)}",
                 "/console/books/accounts", "/console/books/accounts/2202.payable.sup-p",
                 "/console/books/journal", "/console/charts", "/console/audit",
                 "/console/risk/products"):
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
    books = await client.get("/console/books")
    assert "5,000.00 CNY" in books.text and "balanced" in books.text


async def test_the_audit_trail_cannot_be_edited(console) -> None:
    engine, _, client = console
    await login(client, "risk1")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(sa.update(console_audit).values(reason="nothing happened"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(sa.delete(console_audit))


async def test_the_products_page_shows_every_version_with_who_and_why(console) -> None:
    engine, _, client = console
    async with engine.begin() as conn:
        await lending.define_product(conn, "short_sc", {
            "name": "Short", "currency": "CNY", "min_amount_minor": 100_000,
            "max_amount_minor": 2_000_000, "min_term_days": 7, "max_term_days": 45,
            "annual_rate": "0.09", "maturity_roll": "following"}, effective_from=TODAY,
            actor="user:risk.wang", reason="pilot", config=lending.DEFAULT_CONFIG)
    await login(client, "risk1")
    page = await client.get("/console/risk/products")
    assert page.status_code == 200
    assert "short_sc" in page.text and "user:risk.wang" in page.text and "pilot" in page.text
    assert "following" in page.text and "supply_chain" in page.text


async def test_a_flood_of_sign_ins_cannot_hold_the_pool_the_payments_use(
        console, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each sign-in holds a database connection, in a transaction, for its argon2 work;
    anybody can send sign-in forms, and a flood of them held every connection of the
    pool the API's checkouts and bank notifications share. Past MAX_SIGN_INS_AT_ONCE
    checked at once, a sign-in is answered 429 (Retry-After) at once: no connection
    taken, no password hashed, nothing recorded; a place freed is used again."""
    import asyncio

    from paycore.console import staff

    engine, _, client = console
    monkeypatch.setattr(staff, "MAX_SIGN_INS_AT_ONCE", 1, raising=False)
    token = csrf(await client.get("/console/login"))
    hashing, release = asyncio.Event(), asyncio.Event()
    hashed: list[str] = []
    real_hash = staff._hash

    async def held_hash(password: str) -> str:
        hashed.append(password)
        if len(hashed) == 1:  # the first sign-in is being checked when the next comes
            hashing.set()
            await release.wait()
        return await real_hash(password)

    monkeypatch.setattr(staff, "_hash", held_hash)

    def form(user: str) -> dict[str, str]:
        return {"username": user, "password": f"{user} password", "csrf_token": token,
                "next": "/console"}

    first = asyncio.create_task(client.post("/console/login", data=form("ghost.one")))
    try:
        await asyncio.wait_for(hashing.wait(), 120)  # (a guard against a hang, no timing)
        busy = await client.post("/console/login", data=form("ghost.two"))
    finally:
        release.set()
    assert (await first).status_code == 401  # the first is checked as ever
    assert busy.status_code == 429, busy.status_code
    assert busy.headers["retry-after"] == "5"
    assert "too many sign-ins" in busy.text
    assert hashed == ["ghost.one password"]  # the second hashed nothing
    assert (await login(client, "risk1")).status_code == 303  # its place is free again
    logins = [r["subject"] for r in await audit_rows(engine) if r["action"] == "login"]
    assert logins == ["staff:ghost.one", "staff:risk1"]  # the refused one never got in
