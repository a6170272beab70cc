"""The sandbox banks as a process of their own and the API as `paycore serve --workers 2`
(#16): checkout runs as production runs it, three kinds of process on loopback. The
banks' process writes the merchant's credentials (owner-only) for the API's
`PAYCORE_BANKS=gateways.sandbox.directory:banks`; a customer pays at each bank's pay page,
the bank notifies the API, and the intent succeeds with its capture booked. On SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa

import gateways
import ledger
from gateways.bank import PaymentInstruction
from gateways.sandbox.directory import read_directory
from gateways.sandbox.paypage import click_through
from paycore import db as paycore_db
from paycore.api import create_api_key

from ..conftest import PG_URL, drop_schema, make_engine

BANKS = ("unionpay", "restbank", "smbank")
ROOT = Path(__file__).resolve().parents[2]
PAYCORE = Path(sys.executable).with_name("paycore")


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path):
    engine, schema = await make_engine(request.param, tmp_path)
    url = (f"sqlite+aiosqlite:///{tmp_path}/paycore.sqlite" if schema is None
           else PG_URL + "?options=" + quote(f"-csearch_path={schema}"))
    try:
        await paycore_db.upgrade(engine)
        yield engine, url
    finally:
        await engine.dispose()
        if schema:
            await drop_schema(schema)


def start(argv: list[str], env: dict[str, str], *, capture: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, cwd=ROOT, text=True, env={**os.environ, **env},
                            stdout=subprocess.PIPE if capture else None)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def ready_line(proc: subprocess.Popen[str]) -> dict[str, object]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
    assert line.startswith('{"ready"'), line
    found: dict[str, object] = json.loads(line)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_checkout_through_the_banks_process_and_two_api_workers(database, tmp_path):
    engine, url = database
    async with engine.begin() as conn:
        await gateways.set_supplier_terms(conn, gateways.SupplierTerms("sup-1", Decimal("0.03")))
        key = (await create_api_key(conn, "m-1", ["payments:read", "payments:write"])).secret
    directory = tmp_path / "banks.json"
    banks_proc = start([sys.executable, "-m", "gateways.sandbox", "banks", "--directory",
                        str(directory)], {"PAYCORE_LOG_LEVEL": "WARNING"}, capture=True)
    api_proc: subprocess.Popen[str] | None = None
    try:
        ready = await ready_line(banks_proc)
        assert set(ready["banks"]) == set(BANKS)  # type: ignore[arg-type]
        # the merchant's private keys: readable by their owner only
        assert stat.S_IMODE(directory.stat().st_mode) == 0o600
        assert set(read_directory(directory)) == set(BANKS)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        api_proc = start(
            [str(PAYCORE), "serve", "--port", str(port), "--workers", "2"],
            {"PAYCORE_DATABASE_URL": url, "PAYCORE_LOG_LEVEL": "WARNING",
             "PAYCORE_BANKS": "gateways.sandbox.directory:banks",
             "PAYCORE_SANDBOX_DIRECTORY": str(directory),
             "PAYCORE_NOTIFY_BASE_URL": f"{base}/v1/notifications"})
        auth = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=30) as api, \
                httpx.AsyncClient(trust_env=False, timeout=30) as browser:
            for _ in range(300):
                try:
                    if (await api.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            accounts: dict[str, str] = ready["customers"]  # type: ignore[assignment]
            intents = []
            for n, bank in enumerate(BANKS):
                r = await api.post("/v1/payment-intents", headers=auth | {
                    "Idempotency-Key": f"k-{bank}"}, json={
                    "order_id": f"o-{bank}", "supplier_id": "sup-1", "bank": bank,
                    "amount": {"amount": f"1{n}.00", "currency": "CNY"}})
                assert r.status_code == 201, r.text
                action = r.json()["next_action"]
                paid = await click_through(browser, PaymentInstruction(
                    method=action["method"], url=action["url"], fields=action["fields"]),
                    account_number=accounts[bank])
                assert paid.paid, paid.text
                intents.append(r.json()["id"])
            statuses: list[str] = []
            for _ in range(200):  # the banks notify the API on their own
                statuses = [(await api.get(f"/v1/payment-intents/{i}", headers=auth)).json()
                            ["status"] for i in intents]
                if set(statuses) == {"succeeded"}:
                    break
                await asyncio.sleep(0.1)
            assert statuses == ["succeeded"] * 3
    finally:
        if api_proc is not None:
            stop(api_proc)
        stop(banks_proc)
    from ledger.schema import journal_entries  # test-only peek at the ledger's table
    async with engine.connect() as conn:
        assert (await ledger.verify(conn)).ok
        captures = (await conn.execute(sa.select(journal_entries.c.external_ref).where(
            journal_entries.c.kind == "payment.capture"))).scalars().all()
    assert len(captures) == 3  # each paid once, booked once
