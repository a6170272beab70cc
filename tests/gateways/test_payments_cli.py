"""`paycore payments ...` on an SQLite file: terms, listing, review queue, health, the
janitor's wiring to the deployment's banks (PAYCORE_BANKS)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gateways import BankDirectory
from paycore.cli import app

runner = CliRunner()


def no_banks() -> BankDirectory:
    """A deployment with no banks configured (what PAYCORE_BANKS points at here)."""
    return BankDirectory([])


@pytest.fixture(autouse=True)
def keep_logging_out_of_the_runner(monkeypatch):
    # configure_logging binds structlog, once per process, to the sys.stderr of the moment:
    # inside CliRunner that is a buffer closed after the call, and every later test's log
    # line (the sandbox banks' notifier included) would hit a closed file
    monkeypatch.setattr("paycore.logging.configure_logging", lambda *args, **kwargs: None)


@pytest.fixture
def sqlite_url(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite"
    monkeypatch.setenv("PAYCORE_DATABASE_URL", url)
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    return url


def test_terms_list_review_health(sqlite_url):
    done = runner.invoke(app, ["payments", "terms", "sup-001", "0.025",
                               "--refund-commission", "keep"])
    assert done.exit_code == 0, done.output
    assert "sup-001: commission 0.025, refunds keep" in done.output
    bad = runner.invoke(app, ["payments", "terms", "sup-001", "1.5"])
    assert bad.exit_code == 2 and "InvalidPaymentRequest" in bad.output
    for command in (["list", "--merchant", "m-1"], ["review"], ["inquiries"], ["rejections"],
                    ["health"], ["payouts"], ["expire"]):
        result = runner.invoke(app, ["payments", *command])
        assert result.exit_code == 0, (command, result.output)
    assert "0 intents and 0 payouts in review" in runner.invoke(app, ["payments", "review"]).output
    missing = runner.invoke(app, ["payments", "show", "pi_nope"])
    assert missing.exit_code == 2 and "IntentNotFound" in missing.output


def test_janitor_needs_the_deployments_banks(sqlite_url, monkeypatch):
    monkeypatch.delenv("PAYCORE_BANKS", raising=False)
    refused = runner.invoke(app, ["payments", "janitor"])
    assert refused.exit_code == 2 and "PAYCORE_BANKS" in refused.output
    monkeypatch.setenv("PAYCORE_BANKS", "tests.gateways.test_payments_cli:no_banks")
    ran = runner.invoke(app, ["payments", "janitor"])
    assert ran.exit_code == 0, ran.output
    assert "janitor: 0 inquiries" in ran.output
    assert runner.invoke(app, ["payments", "submit-payouts"]).exit_code == 0
