"""The reconciliation commands end to end on an SQLite file."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from paycore.cli import app
from tests.reconciliation.builders import IBAN, L, camt053

runner = CliRunner()
D = dt.date(2026, 11, 21)


@pytest.fixture
def cli_db(tmp_path, monkeypatch):
    monkeypatch.setenv("PAYCORE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite")
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    # the finance clerk who resolves exceptions: a console staff user with a password
    monkeypatch.setenv("PAYCORE_STAFF_PASSWORD", "li-wei-long-passphrase")
    assert runner.invoke(app, ["staff", "add", "li.wei", "--role", "finance"]).exit_code == 0


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_import_reconcile_resolve_report(cli_db, tmp_path) -> None:
    _ok(["recon", "configure", "icbc", "--currency", "CNY", "--tolerance", "5.00",
         "--account-number", IBAN])
    statement = tmp_path / "icbc-2026-11-21.xml"
    statement.write_bytes(camt053([L(10_000, D, "TXN-1", "B1"),
                                   L(-300, D, None, "B2", "SMS FEE")], opening=5_000))
    assert "2 new" in _ok(["statement", "import", str(statement), "--account", "icbc"])
    assert "already imported" in _ok(["statement", "import", str(statement), "--account", "icbc"])
    assert "open exceptions" in _ok(["reconcile", "--account", "icbc", "--date", str(D)])
    listed = json.loads(_ok(["exceptions", "list", "--account", "icbc", "--json"]))
    assert sorted(e["amount_minor"] for e in listed) == [-300, 10_000]
    fee = next(e for e in listed if e["amount_minor"] == -300)
    out = _ok(["exceptions", "resolve", str(fee["id"]), "--as", "li.wei", "--reason", "SMS fee",
               "--write-off"])
    assert "resolved" in out and "by user:li.wei" in out
    report = json.loads(_ok(["recon", "report", "--account", "icbc", "--date", str(D),
                             "--format", "json"]))
    # bank 147.00; books know only the written-off fee (-3.00)
    assert report["difference_minor"] == 15_000 and report["explained"]
    csv_out = _ok(["recon", "report", "--account", "icbc", "--date", str(D), "--format", "csv"])
    assert csv_out.startswith("section,label,amount")
    assert "fully explained" in _ok(["recon", "report", "--account", "icbc", "--date", str(D)])


def test_a_refused_file_is_one_clear_error(cli_db, tmp_path) -> None:
    _ok(["recon", "configure", "icbc", "--currency", "CNY"])
    statement = tmp_path / "bad.xml"
    statement.write_bytes(camt053([L(10_000, D, "TXN-1", "B1")], closing=1))
    result = runner.invoke(app, ["statement", "import", str(statement), "--account", "icbc"])
    assert result.exit_code == 2
    assert "UnbalancedStatement" in result.output
    result = runner.invoke(app, ["reconcile", "--account", "nosuchbank", "--date", str(D)])
    assert result.exit_code == 2 and "UnknownBankAccount" in result.output
