"""`paycore accounts open --lanes N` and `paycore accounts add-lanes` (#16.1)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from paycore.cli import app

runner = CliRunner()


@pytest.fixture
def sqlite_url(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite"
    monkeypatch.setenv("PAYCORE_DATABASE_URL", url)
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    return url


def test_a_hot_account_opens_in_lanes_and_gains_more_never_fewer(sqlite_url):
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, ["accounts", "open", "6001.income.commission", "Commission",
                                 "income", "CNY", "--lanes", "8"])
    assert result.exit_code == 0, result.output
    assert "8 lanes" in result.output
    result = runner.invoke(app, ["accounts", "add-lanes", "6001.income.commission", "12"])
    assert result.exit_code == 0, result.output
    assert "6001.income.commission has 12 lanes" in result.output
    result = runner.invoke(app, ["accounts", "add-lanes", "6001.income.commission", "4"])
    assert result.exit_code == 2 and "never removed" in result.output
    result = runner.invoke(app, ["accounts", "open", "1001.bank", "Bank", "asset", "CNY",
                                 "--limit", "credits_must_not_exceed_debits", "--lanes", "2"])
    assert result.exit_code == 2 and "keeps one lane" in result.output
    assert runner.invoke(app, ["verify"]).exit_code == 0
