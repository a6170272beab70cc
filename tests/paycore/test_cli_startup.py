"""`paycore --help` and `paycore balance` start without importing what only some commands
use (#18 §5): the domains (gateways with every bank adapter, lending, reconciliation), the
checkpoint signing crypto, the console and the web stack, the statement parsers, YAML,
Alembic, the test and profiling tools. Each command imports the domain it uses when it
runs. Asserted on the modules a fresh process holds, not on time
(bench/cli_startup_bench.py measures the time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

#: never imported to parse `--help` or to run `balance` (not pydantic: typer itself imports
#: it to run a command with parameters; not sqlalchemy.orm: sqlalchemy.ext.asyncio, which
#: the ledger's AsyncEngine comes from, imports it in its package __init__)
HEAVY = (
    # the domains a balance does not touch, and what they import
    "gateways", "lending", "reconciliation", "cryptography", "gmssl", "httpx", "lxml",
    "ofxparse", "bs4", "mt940", "bai2", "yaml",
    # the ledger's modules a balance does not read (ledger's `_LAZY`)
    "ledger.checkpoints", "ledger.signing", "ledger.proof", "ledger.financial_statements",
    "ledger.holds", "ledger.lookups", "ledger.outbox", "ledger.coalescer",
    # paycore's modules for some commands only
    "paycore.console", "paycore.api", "paycore.demo", "paycore.disbursement",
    "paycore.settlement", "paycore.payout_controls", "paycore.supplier_bindings",
    "paycore.jobs", "paycore.webhooks", "paycore.render", "argon2", "rich.progress",
    # the web stack, migrations, test and profiling tools
    "fastapi", "uvicorn", "starlette", "alembic", "schemathesis", "hypothesis", "pyinstrument",
)

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
print(json.dumps({"code": code, "loaded": sorted(m for m in HEAVY if m in sys.modules)}))
"""


def _paycore(args: list[str], env: dict[str, str], *, probe: bool,
             heavy: tuple[str, ...] = HEAVY) -> dict[str, object]:
    code = f"HEAVY = {heavy!r}\n{PROBE}" if probe else \
        "from paycore.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, check=False)
    if not probe:
        assert done.returncode == 0, done.stdout + done.stderr
        return {"stdout": done.stdout}
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["stdout"], result["stderr"] = done.stdout, done.stderr
    return result


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    environ = {**os.environ, "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/s.sqlite",
               "PAYCORE_LOG_LEVEL": "WARNING"}
    environ.pop("PAYCORE_ACCOUNT_KEYS", None)
    return environ


#: never imported to list the commands: the database layer, logging, typer's coercion and
#: rich are for running one (the ledger's value types, errors and money need none of them)
HELP_HEAVY = (*HEAVY, "sqlalchemy", "aiosqlite", "asyncpg", "structlog", "pydantic",
              "paycore.db", "paycore.logging", "ledger.schema", "ledger.engine",
              "ledger.accounts", "ledger.entries", "ledger.queries",
              # the help is plain text (`command_group`): neither rich nor its Markdown
              # parser, nor asyncio, which only a command that runs needs
              "rich", "markdown_it", "asyncio")


def test_help_imports_no_heavy_module(env) -> None:
    result = _paycore(["--help"], env, probe=True, heavy=HELP_HEAVY)
    assert result["code"] == 0, result
    assert result["loaded"] == []
    # and every command is still listed: the domains' groups are registered, not loaded
    for group in ("payments", "loans", "borrowers", "recon", "statement", "products",
                  "beneficiaries", "ledger", "staff", "jobs"):
        assert group in str(result["stdout"])


def test_balance_imports_no_heavy_module(env) -> None:
    _paycore(["db", "upgrade"], env, probe=False)
    _paycore(["accounts", "open", "1001.bank.x", "Bank", "asset", "CNY"], env, probe=False)
    result = _paycore(["balance", "1001.bank.x"], env, probe=True)
    assert result["code"] == 0, result
    assert "1001.bank.x: posted 0.00 CNY" in str(result["stdout"])
    assert result["loaded"] == []


def test_each_domain_loads_with_the_command_that_uses_it(env) -> None:
    _paycore(["db", "upgrade"], env, probe=False)
    domains = ("gateways", "lending", "reconciliation", "cryptography")
    # gateways, read by `payments expire` when it runs
    expired = _paycore(["payments", "expire"], env, probe=True, heavy=domains)
    assert expired["code"] == 0, expired
    assert "0 intents expired" in str(expired["stdout"])
    assert "gateways" in expired["loaded"]  # type: ignore[operator]
    assert "lending" not in expired["loaded"]  # type: ignore[operator]
    # reconciliation, for its profile template
    template = _paycore(["recon", "profile", "--example"], env, probe=True, heavy=domains)
    assert template["code"] == 0, template
    assert "reconciliation" in template["loaded"]  # type: ignore[operator]
    from reconciliation import CSV_PROFILE_EXAMPLE

    assert str(template["stdout"]).startswith(CSV_PROFILE_EXAMPLE)
    # a domain's error is still a person's error (one red line, exit 2), though the
    # runner never imported that domain itself
    missing = _paycore(["loans", "extend", "no-such-loan"], env, probe=True, heavy=domains)
    assert missing["code"] == 2, missing
    assert "LoanNotFound" in str(missing["stderr"])
    assert "Traceback" not in str(missing["stderr"])
    assert "lending" in missing["loaded"]  # type: ignore[operator]


def test_disbursement_modes_offered_are_lendings(env) -> None:
    # `loans disburse --mode` is a string checked against lending's DisbursementMode when
    # the command runs (the enum in the signature would import lending for `--help`): the
    # choices its help shows are the enum's, and another value is refused naming them
    from lending import DisbursementMode

    shown = _paycore(["loans", "disburse", "--help"], env, probe=False)["stdout"]
    assert f"[{'|'.join(DisbursementMode)}]" in str(shown)
    refused = _paycore(["loans", "disburse", "L1", "--mode", "cash"], env, probe=True,
                       heavy=("lending",))
    assert refused["code"] == 2, refused
    assert "'cash' is not one of balance, payout" in " ".join(str(refused["stderr"]).split())


def test_every_public_ledger_name_resolves() -> None:
    # `ledger` loads some of its modules when one of their names is first read (its
    # `_LAZY`): every name it exports must still resolve, to the object its module defines
    code = ("import importlib, sys, ledger\n"
            "assert 'ledger.checkpoints' not in sys.modules and 'sqlalchemy' not in sys.modules\n"
            "for name in ledger.__all__:\n"
            "    value = getattr(ledger, name)\n"
            "    module = ledger._LAZY_NAMES.get(name)\n"
            "    if module:\n"
            "        own = ledger._RENAMED.get(name, name)\n"
            "        assert value is getattr(importlib.import_module(module), own), name\n"
            "assert 'ledger.checkpoints' in sys.modules and 'sqlalchemy' in sys.modules\n"
            "print('ok', len(ledger.__all__))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.stdout.startswith("ok"), done.stderr
