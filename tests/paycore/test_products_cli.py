"""The risk team's commands on SQLite and PostgreSQL: products define|change|retire|list|show,
calendar load|show, a loan booked under a run-time product with its maturity rolled past a
holiday, and every bad input as the API's message (one line, exit 2, no traceback)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paycore.cli import app
from tests.conftest import drop_database, make_migrated_engine, url_of

runner = CliRunner()
DAY = dt.date(2026, 9, 1)
RISK_PASSWORD = "risk-team-long-passphrase"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    engine, database = asyncio.run(make_migrated_engine(request.param, tmp_path))
    url = url_of(engine)
    asyncio.run(engine.dispose())
    monkeypatch.setenv("PAYCORE_DATABASE_URL", url)
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    # the risk team's staff users, who prove who they are (one password for the test's)
    monkeypatch.setenv("PAYCORE_STAFF_PASSWORD", RISK_PASSWORD)
    for name in ("risk.wang", "risk.li"):
        assert runner.invoke(app, ["staff", "add", name, "--role", "risk"]).exit_code == 0
    try:
        yield url
    finally:
        if database:
            asyncio.run(drop_database(database))


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def refused(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


TERMS = {"name": "Short supply-chain loan", "currency": "CNY", "min_amount_minor": 100000,
         "max_amount_minor": 20000000, "min_term_days": 7, "max_term_days": 45,
         "annual_rate": "0.09", "maturity_roll": "following"}


def borrower(tmp_path: Path) -> None:
    ok("borrowers", "register", "sup-9", "Test Supplier", "--onboarded", "2024-01-01")
    csv = tmp_path / "trade.csv"
    rows = ["borrower_id,kind,ref,date,buyer,amount,currency"]
    rows += [f"sup-9,sale,s{m},2026-{m:02d}-15,,100000.00,CNY" for m in range(3, 9)]
    rows += [f"sup-9,purchase_order,po{i},2026-08-2{i},b{i},10000.00,CNY" for i in range(4)]
    csv.write_text("\n".join(rows) + "\n")
    ok("borrowers", "import", str(csv), "--on", DAY.isoformat())


def test_products_at_run_time_and_a_rolled_maturity(database: str, tmp_path: Path) -> None:
    terms = tmp_path / "short.json"
    terms.write_text(json.dumps(TERMS))
    out = ok("products", "define", "short", "--file", str(terms), "--as", "risk.wang",
             "--reason", "pilot", "--from", "2026-01-01")
    assert "short v1" in out
    out = ok("products", "change", "short", "--set", "annual_rate=0.11", "--set",
             "day_count=ACT/ACT-ISDA", "--as", "risk.li", "--reason", "cost of funds",
             "--from", "2026-08-01")
    assert "short v2" in out and "0.11" in out
    listed = ok("products", "list", "--on", DAY.isoformat())
    assert "short" in listed and "ACT/ACT-ISDA" in listed and "supply_chain" in listed
    shown = ok("products", "show", "short")
    assert "by user:risk.wang" in shown and "pilot" in shown and "by user:risk.li" in shown

    borrower(tmp_path)
    out = ok("loans", "apply", "--as", "risk.wang", "sup-9", "10000", "30", "--product", "short",
             "--id", "L1",
             "--on", DAY.isoformat())
    assert "approve" in out
    ok("loans", "disburse", "L1", "--on", DAY.isoformat())
    statement = " ".join(ok("loans", "statement", "L1").split())
    # 1 Sep + 30 days = 1 Oct (National Day): due on 8 Oct, the next business day
    assert "2026-10-08" in statement and "2026-10-01" in statement

    ok("products", "retire", "short", "--as", "risk.li", "--reason", "pilot over",
       "--from", "2026-09-02")
    assert "retired" in refused("loans", "apply", "--as", "risk.wang", "sup-9", "10000", "30", "--product",
                                "short", "--on", "2026-09-03")


def test_calendar_load_and_show(database: str, tmp_path: Path) -> None:
    official = tmp_path / "cn2027.csv"
    official.write_text("# State Council list\n2027-02-06,working,make-up day\n"
                        "2027-02-08,holiday,Spring Festival\n")
    assert "2 day(s) loaded" in ok("calendar", "load", "CN", "2027", str(official), "--as",
                                   "risk.li")
    shown = ok("calendar", "show", "CN", "2027")
    assert "2027-02-06" in shown and "worked weekend" in shown and "Spring Festival" in shown
    official.write_text("2027-02-30,holiday\n")
    assert "line 1: '2027-02-30' is not a date" in refused("calendar", "load", "CN", "2027",
                                                          str(official), "--as", "risk.li")


def test_bad_input_gets_the_apis_message(database: str, tmp_path: Path) -> None:
    borrower(tmp_path)
    out = refused("loans", "apply", "--as", "risk.wang", "sup-9", "10000", "30", "--product", "nope")
    assert "unknown loan product 'nope'" in out
    # the API's words for an amount (paycore.amounts), never minor units
    out = refused("loans", "apply", "--as", "risk.wang", "sup-9", "--", "-10000", "30")
    assert "must be a decimal string of ASCII digits" in out and "no sign" in out
    assert "must be positive" in refused("loans", "apply", "--as", "risk.wang", "sup-9", "0", "30")
    assert "more decimal places than CNY allows" in refused("loans", "apply", "--as", "risk.wang", "sup-9",
                                                           "100.001", "30")
    assert "no loan 'L-none'" in refused("loans", "repay", "L-none", "100")
    terms = tmp_path / "bad.json"
    terms.write_text(json.dumps({**TERMS, "min_term_days": 60}))
    assert "minimum term 60 days exceeds maximum 45" in refused(
        "products", "define", "bad", "--file", str(terms), "--as", "risk.wang")
    terms.write_text(json.dumps({**TERMS, "annual_rate": "1.5"}))
    assert "above 0.36" in refused("products", "define", "bad", "--file", str(terms),
                                   "--as", "risk.wang")
    assert "unknown loan product 'bad'" in refused("products", "show", "bad")
    assert "cannot read" in refused("products", "define", "x", "--file",
                                    str(tmp_path / "missing.json"), "--as", "a")
    assert "cannot read" in refused("borrowers", "import", str(tmp_path / "missing.csv"))
    terms.write_text("not,a,trade,file\n")
    assert "lacks column(s)" in refused("borrowers", "import", str(terms))
    assert "ABC is not an ISO 4217 currency" in refused(
        "borrowers", "register", "x", "X", "--onboarded", "2024-01-01", "--currency", "ABC")
    # a refund is a payout request: its requester is a staff user who gives their password
    staff = {"PAYCORE_STAFF_PASSWORD": "li-secret-passphrase"}
    assert runner.invoke(app, ["staff", "add", "li", "--role", "finance"], env=staff
                         ).exit_code == 0
    assert "NotAuthenticated" in refused("loans", "refund-overpayment", "nope", "10",
                                         "--as", "user:li")
    result = runner.invoke(app, ["loans", "refund-overpayment", "nope", "10", "--as", "li"],
                           env=staff)
    assert result.exit_code == 2 and "no loan 'nope'" in result.output, result.output
    result = runner.invoke(app, ["loans", "correct-disbursement", "nope", "--value-date",
                                 "2026-09-01", "--reason", "bank", "--as", "li"], env=staff)
    assert result.exit_code == 2 and "no loan 'nope'" in result.output, result.output


def test_a_yaml_terms_file_keeps_its_rates_as_written(database: str, tmp_path: Path) -> None:
    # YAML read `annual_rate: 0.0912345678901234567` as a binary float, which the catalogue
    # refuses (a rate is an exact decimal); the JSON path kept the text. Now both do, and a
    # broken YAML file is the command's message, not a traceback (found by review).
    terms = tmp_path / "precise.yaml"
    lines = [f"{k}: {json.dumps(v)}" for k, v in TERMS.items() if k != "annual_rate"]
    terms.write_text("\n".join([*lines, "annual_rate: 0.0912345678901234567"]) + "\n")
    out = ok("products", "define", "precise", "--file", str(terms), "--as", "risk.wang",
             "--reason", "exact", "--from", "2026-01-01")
    assert "precise v1" in out
    assert "0.0912345678901234567" in ok("products", "show", "precise")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    said = refused("products", "define", "broken", "--file", str(broken), "--as", "risk.wang",
                   "--reason", "x")
    assert "is not valid YAML" in said
