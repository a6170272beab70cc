"""`paycore --help` and `paycore balance` start without importing the heavy packages
that only some commands use (#18 §5): the web stack, the bank adapters' crypto and XML,
the statement parsers, the test and profiling tools. Asserted on the modules a fresh
process holds, not on time (bench/cli_startup_bench.py measures the time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

#: (not pydantic: typer itself imports it to run a command with parameters)
HEAVY = ("fastapi", "uvicorn", "starlette", "lxml", "ofxparse", "bs4", "mt940",
         "bai2", "gmssl", "httpx", "alembic", "schemathesis", "hypothesis", "pyinstrument")

#: runs the CLI in this process, then prints which of HEAVY it imported
PROBE = """
import json, sys
from paycore.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
else:
    code = 0
print(json.dumps({"code": code, "heavy": sorted(
    m for m in HEAVY if m in sys.modules and type(sys.modules[m]).__name__ != "_Deferred")}))
"""


def _paycore(args: list[str], env: dict[str, str], *, probe: bool) -> dict[str, object]:
    code = f"HEAVY = {HEAVY!r}\n{PROBE}" if probe else \
        "from paycore.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, check=False)
    if not probe:
        assert done.returncode == 0, done.stdout + done.stderr
        return {}
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stdout + done.stderr
    return result


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    environ = {**os.environ, "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/s.sqlite",
               "PAYCORE_LOG_LEVEL": "WARNING"}
    environ.pop("PAYCORE_ACCOUNT_KEYS", None)
    return environ


def test_help_imports_no_heavy_package(env) -> None:
    assert _paycore(["--help"], env, probe=True)["heavy"] == []


def test_balance_imports_no_heavy_package(env) -> None:
    _paycore(["db", "upgrade"], env, probe=False)
    _paycore(["accounts", "open", "1001.bank.x", "Bank", "asset", "CNY"], env, probe=False)
    assert _paycore(["balance", "1001.bank.x"], env, probe=True)["heavy"] == []


def test_a_command_that_needs_them_still_gets_them(env) -> None:
    # the stand-in loads the real package on first use: statement parsing and the bank
    # side work as before
    _paycore(["db", "upgrade"], env, probe=False)
    result = _paycore(["payments", "--help"], env, probe=True)
    assert result["code"] == 0
    code = ("import paycore.commands, sys, gateways\n"
            "assert type(sys.modules['gateways']).__name__ == '_Deferred'\n"
            "assert gateways.PaymentError.__module__.startswith('gateways')\n"
            "assert type(sys.modules['gateways']).__name__ == 'module'\n"
            "import gateways as again\n"
            "assert again.PaymentError is gateways.PaymentError\n"
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=False)
    assert done.stdout.strip() == "ok", done.stderr
