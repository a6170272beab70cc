"""The command line's money decisions are taken by a proved person of the right role, on
SQLite and PostgreSQL: `exceptions resolve` (finance or controller), `products
define|change|retire` and `calendar load` (risk), `loans apply-overpayment` (finance),
`payments resolve-payout-review` (payments). An unknown, disabled or viewer user, a wrong
password, a wrong role or a system actor is refused with exit 2 and a line saying what to
do, and nothing is written; a decision taken is recorded as `user:<name>` in its domain's
trail and in the console's audit trail (role, action, subject, via the CLI)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from paycore import db as paycore_db
from paycore.cli import app
from paycore.schema import console_audit
from reconciliation.config import FEE_ACCOUNT
from tests.conftest import drop_database, make_migrated_engine, url_of
from tests.reconciliation.builders import IBAN, L, camt053

runner = CliRunner()
D = dt.date(2026, 11, 21)
#: (role, password) of each staff user of these tests
STAFF = {"li.wei": "finance", "zhao.ctl": "controller", "wang.risk": "risk",
         "wu.pay": "payments", "view.er": "viewer", "gone.user": "finance"}


def password(name: str) -> str:
    return f"{name}-long-passphrase"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    engine, database = asyncio.run(make_migrated_engine(request.param, tmp_path))
    url = url_of(engine)
    asyncio.run(engine.dispose())
    monkeypatch.setenv("PAYCORE_DATABASE_URL", url)
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    monkeypatch.delenv("PAYCORE_STAFF_PASSWORD", raising=False)
    # the console is read over httpx's plain-http test transport: no Secure cookies
    monkeypatch.setenv("PAYCORE_CONSOLE_INSECURE_COOKIES", "1")
    for name, role in STAFF.items():
        added = runner.invoke(app, ["staff", "add", name, "--role", role],
                              env={"PAYCORE_STAFF_PASSWORD": password(name)})
        assert added.exit_code == 0, added.output
    assert runner.invoke(app, ["staff", "disable", "gone.user"]).exit_code == 0
    try:
        yield url
    finally:
        if database:
            asyncio.run(drop_database(database))


def rows(url: str, query: Any) -> list[Any]:
    async def go() -> list[Any]:
        engine = paycore_db.create_engine(url)
        try:
            async with engine.connect() as conn:
                return list(await conn.execute(query))
        finally:
            await engine.dispose()
    return asyncio.run(go())


def audit_rows(url: str) -> list[Any]:
    return rows(url, sa.select(console_audit).order_by(console_audit.c.id))


def entries(url: str) -> int:
    return int(rows(url, sa.text("SELECT count(*) FROM journal_entries"))[0][0])


def ok(*args: str, as_: str | None = None) -> str:
    env = {"PAYCORE_STAFF_PASSWORD": password(as_)} if as_ else {}
    result = runner.invoke(app, [*args, *(["--as", as_] if as_ else [])], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def refused(*args: str, as_: str, given: str | None = None) -> str:
    """The command run --as `as_` with password `given` (theirs by default): refused."""
    result = runner.invoke(app, [*args, "--as", as_],
                           env={"PAYCORE_STAFF_PASSWORD": given or password(as_)})
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    out = " ".join(result.output.split())
    assert "NotAuthenticated" in out
    return out


def every_wrong_person(url: str, *args: str, role_words: str) -> None:
    """Who may not take this decision, each refused with what to do; nothing written."""
    before_entries, before_audit = entries(url), len(audit_rows(url))
    wrong_role = next(n for n, r in STAFF.items() if r not in role_words and r != "viewer")
    assert f"this is for {role_words} staff" in refused(*args, as_=wrong_role)
    assert "viewers read and change nothing" in refused(*args, as_="view.er")
    for who, given in (("li.wei", "not-her-password"), ("zhao.ctl", "not-his-password"),
                       ("wang.risk", "not-his-password"), ("wu.pay", "nope-nope-nope"),
                       ("no.such.user", "whatever-password"), ("gone.user", None)):
        out = refused(*args, as_=who, given=given)
        assert "paycore staff list" in out and "paycore staff reset" in out, out
    assert "is not a person" in refused(*args, as_="system:engine")
    assert "is not a person" in refused(*args, as_="key:k1")
    # no password and no terminal to ask on
    result = runner.invoke(app, [*args, "--as", "li.wei"], env={})
    assert result.exit_code == 2 and "PAYCORE_STAFF_PASSWORD" in result.output
    assert entries(url) == before_entries
    assert len(audit_rows(url)) == before_audit


def test_resolving_an_exception_takes_a_finance_user(database: str, tmp_path: Path) -> None:
    ok("recon", "configure", "icbc", "--currency", "CNY", "--tolerance", "5.00",
       "--account-number", IBAN)
    statement = tmp_path / "icbc.xml"
    statement.write_bytes(camt053([L(10_000, D, "TXN-1", "B1"),
                                   L(-300, D, None, "B2", "SMS FEE")], opening=5_000))
    ok("statement", "import", str(statement), "--account", "icbc")
    ok("reconcile", "--account", "icbc", "--date", str(D))
    listed = json.loads(ok("exceptions", "list", "--account", "icbc", "--json"))
    fee = next(e for e in listed if e["amount_minor"] == -300)
    resolve = ("exceptions", "resolve", str(fee["id"]), "--reason", "SMS fee", "--write-off")

    every_wrong_person(database, *resolve, role_words="controller or finance")
    still = json.loads(ok("exceptions", "list", "--account", "icbc", "--json"))
    assert {e["id"] for e in still} == {e["id"] for e in listed}  # all still open

    before = entries(database)
    assert "by user:li.wei: SMS fee" in ok(*resolve, as_="li.wei")
    assert entries(database) == before + 1  # the write-off, once
    done = json.loads(ok("exceptions", "list", "--account", "icbc", "--status", "resolved",
                         "--json"))
    assert [(e["id"], e["resolved_by"]) for e in done] == [(fee["id"], "user:li.wei")]
    [row] = audit_rows(database)
    assert (row.actor, row.role, row.action, row.subject, row.reason, row.outcome) == (
        "user:li.wei", "finance", "exception.write_off", f"recon-exception:{fee['id']}",
        "SMS fee", "done")
    assert row.details["via"] == "cli" and row.details["match_id"]

    # a controller acts on the finance area too (as on the console's finance pages)
    item = next(e for e in listed if e["amount_minor"] == 10_000)
    out = ok("exceptions", "resolve", str(item["id"]), "--reason", "customer deposit",
             "--adjust", FEE_ACCOUNT, as_="zhao.ctl")
    assert "by user:zhao.ctl" in out
    assert [(r.actor, r.role, r.action) for r in audit_rows(database)][-1] == (
        "user:zhao.ctl", "controller", "exception.adjust")


TERMS = {"name": "Short supply-chain loan", "currency": "CNY", "min_amount_minor": 100000,
         "max_amount_minor": 20000000, "min_term_days": 7, "max_term_days": 45,
         "annual_rate": "0.09", "maturity_roll": "following"}


def test_products_and_calendars_take_a_risk_user(database: str, tmp_path: Path) -> None:
    terms = tmp_path / "short.json"
    terms.write_text(json.dumps(TERMS))
    define = ("products", "define", "short", "--file", str(terms), "--reason", "pilot",
              "--from", "2026-01-01")
    every_wrong_person(database, *define, role_words="risk")
    result = runner.invoke(app, ["products", "show", "short"])
    assert result.exit_code == 2 and "unknown loan product 'short'" in result.output

    assert "short v1" in ok(*define, as_="wang.risk")
    change = ("products", "change", "short", "--set", "annual_rate=0.11", "--reason",
              "cost of funds", "--from", "2026-08-01")
    every_wrong_person(database, *change, role_words="risk")
    assert "short v2" in ok(*change, as_="wang.risk")
    retire = ("products", "retire", "short", "--reason", "pilot over", "--from", "2026-09-02")
    assert "this is for risk staff" in refused(*retire, as_="li.wei")
    assert "retired" in ok(*retire, as_="wang.risk")
    shown = ok("products", "show", "short")
    assert shown.count("by user:wang.risk") == 3

    official = tmp_path / "cn2027.csv"
    official.write_text("2027-02-06,working,make-up day\n2027-02-08,holiday,State Council day\n")
    load = ("calendar", "load", "CN", "2027", str(official))
    assert "this is for risk staff" in refused(*load, as_="li.wei")
    assert "State Council day" not in ok("calendar", "show", "CN", "2027")
    assert "2 day(s) loaded" in ok(*load, as_="wang.risk")
    assert "State Council day" in ok("calendar", "show", "CN", "2027")
    loaded_by = rows(database, sa.text("SELECT DISTINCT loaded_by FROM lending_calendar_days"))
    assert [r[0] for r in loaded_by] == ["user:wang.risk"]

    trail = [(r.actor, r.role, r.action, r.subject, r.reason) for r in audit_rows(database)]
    assert trail == [("user:wang.risk", "risk", "product.define", "product:short", "pilot"),
                     ("user:wang.risk", "risk", "product.change", "product:short",
                      "cost of funds"),
                     ("user:wang.risk", "risk", "product.retire", "product:short",
                      "pilot over"),
                     ("user:wang.risk", "risk", "calendar.load", "calendar:CN:2027", "")]
    assert audit_rows(database)[1].details["terms"]["annual_rate"] == "0.11"


def test_applying_an_overpayment_takes_a_finance_user(database: str, tmp_path: Path) -> None:
    day = dt.date(2026, 9, 1)
    ok("borrowers", "register", "sup-9", "Test Supplier", "--onboarded", "2024-01-01")
    csv = tmp_path / "trade.csv"
    lines = ["borrower_id,kind,ref,date,buyer,amount,currency"]
    lines += [f"sup-9,sale,s{m},2026-{m:02d}-15,,100000.00,CNY" for m in range(3, 9)]
    lines += [f"sup-9,purchase_order,po{i},2026-08-2{i},b{i},10000.00,CNY" for i in range(4)]
    csv.write_text("\n".join(lines) + "\n")
    ok("borrowers", "import", str(csv), "--on", str(day))
    for loan in ("L1", "L2"):
        assert "approve" in ok("loans", "apply", "sup-9", "10000", "30", "--id", loan,
                               "--on", str(day), as_="wang.risk")
        ok("loans", "disburse", loan, "--on", str(day))
    assert "overpayment" in ok("loans", "repay", "L1", "10500.00", "--on", str(day),
                               "--id", "r1")
    apply = ("loans", "apply-overpayment", "L1", "L2", "300.00", "--on", str(day),
             "--id", "move-1")
    every_wrong_person(database, *apply, role_words="controller or finance")
    held = rows(database, sa.text("SELECT count(*) FROM lending_overpayment_moves"))
    assert held[0][0] == 0

    assert "applied to L2" in ok(*apply, as_="li.wei")
    moves = rows(database, sa.text("SELECT actor, kind, amount_minor FROM "
                                   "lending_overpayment_moves"))
    assert [tuple(m) for m in moves] == [("user:li.wei", "apply", 30_000)]
    [row] = audit_rows(database)
    assert (row.actor, row.role, row.action, row.subject) == (
        "user:li.wei", "finance", "overpayment.apply", "loan:L1")
    assert row.details["target_loan_id"] == "L2" and row.details["amount_minor"] == 30_000
    # the same move again is a replay: no second move, no second audit row
    assert "applied to L2" in ok(*apply, as_="li.wei")
    assert len(audit_rows(database)) == 1


def test_writing_a_loan_off_takes_a_risk_user(database: str, tmp_path: Path) -> None:
    day = dt.date(2026, 9, 1)
    ok("borrowers", "register", "sup-9", "Test Supplier", "--onboarded", "2024-01-01")
    csv = tmp_path / "trade.csv"
    lines = ["borrower_id,kind,ref,date,buyer,amount,currency"]
    lines += [f"sup-9,sale,s{m},2026-{m:02d}-15,,100000.00,CNY" for m in range(3, 9)]
    csv.write_text("\n".join(lines) + "\n")
    ok("borrowers", "import", str(csv), "--on", str(day))
    assert "approve" in ok("loans", "apply", "sup-9", "10000", "30", "--id", "L1",
                           "--on", str(day), as_="wang.risk")
    ok("loans", "disburse", "L1", "--on", str(day))
    ok("accrue", "--through", "2026-11-20")  # long past its maturity: overdue
    before = entries(database)
    write_off = ("loans", "write-off", "L1", "--note", "supplier insolvent", "--on",
                 "2026-11-20")
    every_wrong_person(database, *write_off, role_words="risk")
    assert entries(database) == before
    assert "written off" in ok(*write_off, as_="wang.risk")
    assert entries(database) == before + 1
    [row] = audit_rows(database)
    assert (row.actor, row.role, row.action, row.subject, row.reason) == (
        "user:wang.risk", "risk", "loan.write_off", "loan:L1", "supplier insolvent")
    assert row.details["written_off_minor"] > 1_000_000 and row.details["via"] == "cli"
    [status] = rows(database, sa.text("SELECT status FROM lending_loans WHERE id = 'L1'"))
    assert status[0] == "written_off"


def test_a_payout_review_item_takes_a_payments_user(database: str) -> None:
    from gateways.schema import payout_reviews

    async def seed() -> int:
        engine = paycore_db.create_engine(database)
        try:
            async with engine.begin() as conn:
                done = await conn.execute(payout_reviews.insert().values(
                    payout_id="po-x", kind="returned", status="open", detail="returned by bank",
                    bank="icbc", created_at=dt.datetime.now(dt.UTC)))
                return int(done.inserted_primary_key[0])
        finally:
            await engine.dispose()
    review_id = asyncio.run(seed())
    resolve = ("payments", "resolve-payout-review", str(review_id), "--note",
               "supplier gave new details")
    every_wrong_person(database, *resolve, role_words="payments")
    [open_item] = rows(database, sa.select(payout_reviews.c.status))
    assert open_item.status == "open"

    assert "resolved by user:wu.pay" in ok(*resolve, as_="wu.pay")
    [item] = rows(database, sa.select(payout_reviews))
    assert (item.status, item.resolved_by) == ("resolved", "user:wu.pay")
    [row] = audit_rows(database)
    assert (row.actor, row.role, row.action, row.subject, row.reason) == (
        "user:wu.pay", "payments", "payout-review.resolve", f"payout-review:{review_id}",
        "supplier gave new details")
    # and the console's audit trail shows it, to anyone signed in
    page = console_page(database, "/console/audit", "view.er")
    assert "user:wu.pay" in page and "payout-review.resolve" in page and "via: cli" in page


def console_page(url: str, path: str, user: str) -> str:
    """`path` of the console, as staff user `user` signed in over HTTP sees it."""
    import re

    import httpx

    from paycore.api import ApiSettings, create_app

    async def go() -> str:
        engine = paycore_db.create_engine(url)
        try:
            transport = httpx.ASGITransport(app=create_app(engine, settings=ApiSettings()))
            async with httpx.AsyncClient(transport=transport,
                                         base_url="http://console.test") as client:
                form = await client.get("/console/login")
                token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
                signed = await client.post("/console/login", data={
                    "username": user, "password": password(user), "csrf_token": token,
                    "next": "/console"})
                assert signed.status_code in (302, 303), signed.text
                page = await client.get(path)
                assert page.status_code == 200, page.text
                return page.text
        finally:
            await engine.dispose()
    return asyncio.run(go())


def test_money_leaving_takes_the_role_the_console_asks(database: str) -> None:
    """A supplier's bank account, a payout's request, approval or rejection: payments staff,
    as on the console's payments pages; a loan overpayment's refund (a payout request):
    finance. A finance, risk or controller user is not the second person who lets money
    leave from the command line when the console would refuse them."""
    payments_commands = (
        ("beneficiaries", "add", "sup-1", "--holder", "Ningbo Tools Ltd.", "--bank", "ICBC"),
        ("beneficiaries", "verify", "acct-1"),
        ("payments", "request-payout", "sup-1", "10.00", "CNY", "--account", "acct-1"),
        ("payments", "approve", "po-1"),
        ("payments", "reject", "po-1", "--reason", "not ours"),
    )
    # every wrong person once (each wrong password counts towards a lock-out) ...
    every_wrong_person(database, *payments_commands[3], role_words="payments")
    every_wrong_person(database, "loans", "refund-overpayment", "no-loan", "10",
                       role_words="controller or finance")
    # ... and every other role, with its own right password, on every command
    before = entries(database)
    for args in payments_commands:
        for who in ("li.wei", "zhao.ctl", "wang.risk"):
            assert "this is for payments staff" in refused(*args, as_=who)
    for who in ("wu.pay", "wang.risk"):
        assert "this is for controller or finance staff" in refused(
            "loans", "refund-overpayment", "no-loan", "10", as_=who)
    assert entries(database) == before
    assert not [r for r in audit_rows(database)
                if r.action.startswith(("payout", "account", "beneficiar"))]
