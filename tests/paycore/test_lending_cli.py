"""The lending commands end to end on an SQLite file: register, import, credit line, apply,
queue and decide, disburse, accrue (progress bar), statement, extend, repay, portfolio,
settle (twice: the second run is a replay), and bad input as one red line with exit 2."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from paycore.cli import app

runner = CliRunner()
DAY = dt.date(2026, 3, 2)


@pytest.fixture
def sqlite_url(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite"
    monkeypatch.setenv("PAYCORE_DATABASE_URL", url)
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    return url


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def ok_as(env: dict[str, str], *args: str) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def d(n: int) -> str:
    return (DAY + dt.timedelta(days=n)).isoformat()


def test_lending_commands(sqlite_url, tmp_path):
    ok("db", "upgrade")
    ok("borrowers", "register", "sup-9", "Test Supplier", "--onboarded", "2024-01-01")
    csv = tmp_path / "trade.csv"
    rows = ["borrower_id,kind,ref,date,buyer,amount,currency"]
    rows += [f"sup-9,sale,s{m},2025-{m:02d}-15,,100000.00,CNY" for m in range(9, 13)]
    rows += [f"sup-9,sale,t{m},2026-{m:02d}-15,,100000.00,CNY" for m in (1, 2)]
    rows += [f"sup-9,purchase_order,po{i},2026-02-2{i},b{i},10000.00,CNY" for i in range(4)]
    csv.write_text("\n".join(rows) + "\n")
    assert "10 new record(s)" in ok("borrowers", "import", str(csv), "--on", d(0))
    assert "0 new record(s)" in ok("borrowers", "import", str(csv), "--on", d(0))
    assert "line 50,000.00 CNY" in ok("borrowers", "line", "sup-9", "--on", d(0))

    # the applicant and the officer are risk staff users who prove it; a typed name alone
    # applies for and decides nothing
    staff = {"PAYCORE_STAFF_PASSWORD": "risk-li-passphrase-1"}
    applicant = {"PAYCORE_STAFF_PASSWORD": "risk-zhou-passphrase-3"}
    assert runner.invoke(app, ["staff", "add", "risk.li", "--role", "risk"],
                         env=staff).exit_code == 0
    assert runner.invoke(app, ["staff", "add", "risk.zhou", "--role", "risk"],
                         env=applicant).exit_code == 0
    assert runner.invoke(app, ["staff", "add", "pay.wu", "--role", "payments"],
                         env={"PAYCORE_STAFF_PASSWORD": "pay-wu-passphrase-22"}).exit_code == 0
    by_zhou = ["--as", "risk.zhou"]
    out = ok_as(applicant, "loans", "apply", "sup-9", "20000", "30", "--id", "L1", "--on", d(0),
                *by_zhou)
    assert "approve" in out and "within-line" in out
    out = ok_as(applicant, "loans", "apply", "sup-9", "20000", "30", "--id", "L2", "--on",
                d(10), *by_zhou)
    assert "manual_review" in out and "data-stale" in out
    assert "L2" in ok("loans", "queue")
    # who applied does not decide it
    own = runner.invoke(app, ["loans", "decide", "L2", "approve", "--comment", "mine",
                              "--on", d(10), "--as", "risk.zhou"], env=applicant)
    assert own.exit_code != 0 and "another officer must decide it" in own.output, own.output
    decide = ["loans", "decide", "L2", "decline", "--comment", "stale figures", "--on", d(10)]
    wrong = runner.invoke(app, [*decide, "--officer", "risk.li"],
                          env={"PAYCORE_STAFF_PASSWORD": "not-her-password"})
    assert wrong.exit_code == 2 and "risk.li" in wrong.output
    not_risk = runner.invoke(app, [*decide, "--officer", "pay.wu"],
                             env={"PAYCORE_STAFF_PASSWORD": "pay-wu-passphrase-22"})
    assert not_risk.exit_code == 2 and "risk" in not_risk.output
    assert "L2" in ok("loans", "queue")
    # `--as`, as every other command that takes a staff user (`--officer` is its old name)
    result = runner.invoke(app, [*decide, "--as", "risk.li"], env=staff)
    assert result.exit_code == 0, result.output
    assert "declined" in result.output
    out = ok("loans", "decisions", "L2", "--inputs")
    assert "manual_review by underwriting" in out and "decline by user:risk.li" in out
    assert "monthly_settled_sales_minor" in out

    assert "active" in ok("loans", "disburse", "L1", "--on", d(0))
    out = ok("accrue", "--through", d(20))
    assert "1 loan(s), 21 entries" in out  # 20 loan-days and the funding line's interest
    assert "0 loan(s)" in ok("accrue", "--through", d(20))
    assert "matures " + d(60) in ok("loans", "extend", "L1", "--on", d(20))
    out = ok("loans", "statement", "L1", "--on", d(20))
    assert "109.59 CNY" in out and "extended" in out  # 20 days on 20,000.00
    out = ok("loans", "repay", "L1", "5000.00", "--on", d(25), "--id", "r1")
    assert "not_due_interest" in out and "extended" in out
    assert "loan book = ledger: yes" in ok("loans", "portfolio", "--on", d(25))

    out = ok("settle", "--id", "S1", "--on", d(60))
    assert "sup-9" in out
    assert "replayed" in ok("settle", "--id", "S1", "--on", d(60))
    assert "verify: OK" in ok("verify")

    bad = runner.invoke(app, ["loans", "apply", "sup-9", "20000", "10", "--on", d(0), *by_zhou],
                        env=applicant)
    assert bad.exit_code == 2 and "TermOutOfRange" in bad.output
    bad = runner.invoke(app, ["loans", "repay", "L1", "12,5", "--on", d(30)])
    assert bad.exit_code == 2 and "must be a decimal string" in bad.output  # the API's words
    bad = runner.invoke(app, ["accrue", "--through", "yesterday"])
    assert bad.exit_code == 2 and "not a date" in bad.output


def test_a_borrowers_own_loan_does_not_raise_their_line(sqlite_url, tmp_path):
    """Issue #15 §1, as reported: six months of sales make a 100,000.00 line; after drawing
    it all, `borrowers line` shows nothing available and a second draw is declined."""
    ok("db", "upgrade")
    applicant = {"PAYCORE_STAFF_PASSWORD": "risk-zhou-passphrase-3"}
    assert runner.invoke(app, ["staff", "add", "risk.zhou", "--role", "risk"],
                         env=applicant).exit_code == 0
    by_zhou = ["--as", "risk.zhou"]
    ok("borrowers", "register", "sup-7", "Line Supplier", "--onboarded", "2024-01-01")
    csv = tmp_path / "sales.csv"
    rows = ["borrower_id,kind,ref,date,buyer,amount,currency"]
    rows += [f"sup-7,sale,s{m},2025-{m:02d}-15,,200000.00,CNY" for m in range(9, 13)]
    rows += [f"sup-7,sale,t{m},2026-{m:02d}-15,,200000.00,CNY" for m in (1, 2)]
    csv.write_text("\n".join(rows) + "\n")
    ok("borrowers", "import", str(csv), "--on", d(0))
    out = ok("borrowers", "line", "sup-7", "--on", d(0))
    assert "line 100,000.00 CNY, exposure 0.00 CNY, available 100,000.00 CNY" in out

    assert "approve" in ok_as(applicant, "loans", "apply", "sup-7", "100000", "30", "--id", "B1",
                              "--on", d(0), *by_zhou)
    assert "active" in ok("loans", "disburse", "B1", "--on", d(0))
    out = ok("borrowers", "line", "sup-7", "--on", d(0))
    assert "line 100,000.00 CNY, exposure 100,000.00 CNY, available 0.00 CNY" in out

    out = ok_as(applicant, "loans", "apply", "sup-7", "80000", "30", "--id", "B2", "--on", d(0),
                *by_zhou)
    assert "decline" in out and "over-line" in out
    assert "exceeds the available credit line of 0.00 CNY" in out
    assert "verify: OK" in ok("verify")
