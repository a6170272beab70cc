"""The API through a real uvicorn server on loopback, and the `paycore apikeys` commands."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from paycore import db as paycore_db
from paycore.cli import app as cli
from tests.api.conftest import ENTRY_BODY, bearer, is_problem


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """`app` under uvicorn on 127.0.0.1 at a free port, for the duration of the block."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False,
                                           lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_over_real_http(app, db, issue_key):
    key = await issue_key("m1", "payments:write", "ledger:read")
    async with serving(app) as base, httpx.AsyncClient(base_url=base, trust_env=False) as client:
        r = await client.get("/v1/ledger/trial-balance", headers=bearer(key))
        assert r.status_code == 200 and r.json()["balanced"] is True
        h = bearer(key) | {"Idempotency-Key": "srv-1"}
        first = await client.post("/v1/probe/entries", json=ENTRY_BODY, headers=h)
        again = await client.post("/v1/probe/entries", json=ENTRY_BODY, headers=h)
        assert first.status_code == again.status_code == 201
        assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
        is_problem(await client.get("/v1/ledger/verify"), 401, "unauthorized")
        is_problem(await client.post("/v1/probe/boom", headers=bearer(key) |
                                     {"Idempotency-Key": "srv-2"}), 500)
        doc = (await client.get("/openapi.json")).json()
        assert "/v1/ledger/verify" in doc["paths"]


def test_apikeys_create_list_revoke(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path}/keys.sqlite"
    monkeypatch.setenv("PAYCORE_DATABASE_URL", url)
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    r = runner.invoke(cli, ["apikeys", "create", "shop-1", "--scope", "payments:write",
                            "--scope", "payments:read", "--name", "web shop"])
    assert r.exit_code == 0, r.output
    secret = next(w for w in r.output.split() if w.startswith("pck_"))
    key_id = secret.split("_")[1]
    listed = runner.invoke(cli, ["apikeys", "list"])
    assert key_id in listed.output and "shop-1" in listed.output and secret not in listed.output
    bad = runner.invoke(cli, ["apikeys", "create", "shop-1", "--scope", "payments:all"])
    assert bad.exit_code == 2 and "unknown scope" in bad.output

    async def check(expect_valid: bool) -> None:
        from paycore.api.keys import authenticate
        engine = paycore_db.create_engine(url)
        async with engine.connect() as conn:
            assert (await authenticate(conn, secret) is not None) is expect_valid
        await engine.dispose()

    asyncio.run(check(True))
    assert runner.invoke(cli, ["apikeys", "revoke", key_id]).exit_code == 0
    asyncio.run(check(False))
    assert runner.invoke(cli, ["apikeys", "revoke", "nosuchkey"]).exit_code == 2
    purged = runner.invoke(cli, ["idempotency", "purge", "--older-than-days", "1"])
    assert purged.exit_code == 0 and "forgot 0 idempotency records" in purged.output
