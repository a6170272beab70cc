"""Every scope a route requires can be granted by `paycore apikeys create`, in a fresh
process that imports no router (the CLI loads the API's key module alone, #18 §5): a scope
only a router declared when imported (`ledger:write`, `lending:products`, `events:read`,
`webhooks:write`) was refused there as unknown, so the keys the README tells operators to
create for `POST /v1/ledger/entries`, the product catalogue and events could not be made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from paycore.api import create_app
from paycore.db import create_engine

#: what a fresh process that imports only the keys module knows
KNOWN = ("import json; from paycore.api import keys; "
         "print(json.dumps(sorted(keys.SCOPES)))")
CLI = "import sys; from paycore.cli import app; app(sys.argv[1:], prog_name='paycore')"


def _route_scopes(tmp_path: Path) -> set[str]:
    app = create_app(create_engine(f"sqlite+aiosqlite:///{tmp_path}/routes.sqlite"))
    return {scope for ops in app.openapi()["paths"].values() for op in ops.values()
            for requirement in op.get("security", []) for scopes in requirement.values()
            for scope in scopes}


def _run(code: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, check=False)


def test_every_route_scope_is_known_without_importing_the_routers(tmp_path: Path) -> None:
    env = {**os.environ, "PAYCORE_LOG_LEVEL": "WARNING"}
    known = _run(KNOWN, env=env)
    assert known.returncode == 0, known.stderr
    required = _route_scopes(tmp_path)
    assert {"ledger:write", "lending:products", "events:read", "webhooks:write"} <= required
    assert required - set(json.loads(known.stdout)) == set()


def test_apikeys_create_grants_the_routers_own_scopes(tmp_path: Path) -> None:
    env = {**os.environ, "PAYCORE_LOG_LEVEL": "WARNING",
           "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/keys.sqlite"}
    upgraded = _run(CLI, "db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    made = _run(CLI, "apikeys", "create", "svc-1", "--scope", "ledger:write",
                "--scope", "lending:products", "--scope", "events:read",
                "--scope", "webhooks:*", env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "pck_" in made.stdout
    listed = _run(CLI, "apikeys", "list", env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    for scope in ("ledger:write", "lending:products", "events:read", "webhooks:*"):
        assert scope in listed.stdout
