"""An OpenAPI-driven fuzz run (schemathesis): every operation of the API, fed valid and
invalid requests generated from its own OpenAPI document, never answers 5xx, and every
error is application/problem+json (bank callbacks excepted: they answer in the bank's
protocol). The API runs under uvicorn in a thread of its own, with the sandbox banks, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

import gateways
from gateways.sandbox import SandboxFleet
from paycore import db as paycore_db
from paycore.api import create_api_key
from tests.api.conftest import make_app
from tests.conftest import PG_URL, drop_schema, make_engine
from tests.ledger.chart import open_chart

#: every operation of the API is fuzzed (lending and reconciliation included); the budget
#: below keeps the run to about a minute on each database. FUZZ_EXAMPLES raises it for a
#: longer hunt (e.g. FUZZ_EXAMPLES=500 for a night's run).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))

#: the test app's probe routes are not the API (one of them fails on purpose)
schema = schemathesis.openapi.from_dict(
    make_app(paycore_db.create_engine("sqlite+aiosqlite://")).openapi(),
).exclude(path_regex=r"^/v1/probe/")


class ServedApi:
    """The API on its own event loop in a thread, so schemathesis' blocking client can
    call it from the test's thread."""

    def __init__(self, url: str, connect_args: dict[str, object]) -> None:
        self.url, self.connect_args = url, connect_args
        self.ready = threading.Event()
        self.base = ""
        self.key = ""
        self.error: BaseException | None = None
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        try:
            engine = paycore_db.create_engine(self.url, connect_args=self.connect_args)
            async with engine.begin() as conn:
                self.key = (await create_api_key(conn, "fuzzer", ["admin"])).secret
                await gateways.set_supplier_terms(conn, gateways.SupplierTerms("sup-1", Decimal("0.03")))
            await open_chart(engine)
            async with SandboxFleet.start(client_timeout=dt.timedelta(seconds=5)) as fleet:
                sock = socket.socket()
                sock.bind(("127.0.0.1", 0))
                self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
                app = make_app(engine)
                app.state.banks = gateways.BankDirectory(
                    fleet.adapters().values(), notify_base_url=f"{self.base}/v1/notifications")
                self.server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False,
                                                            lifespan="off"))
                serving = asyncio.create_task(self.server.serve(sockets=[sock]))
                while not self.server.started:
                    if serving.done():
                        serving.result()  # re-raises what stopped the server
                    await asyncio.sleep(0.01)
                self.ready.set()
                await serving
            await engine.dispose()
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    def __enter__(self) -> ServedApi:
        self.thread.start()
        self.ready.wait(120)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *_: object) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(60)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[ServedApi]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")

    async def prepare() -> str | None:
        engine, pg_schema = await make_engine(request.param, tmp)
        await paycore_db.upgrade(engine)
        await engine.dispose()
        return pg_schema

    pg_schema = asyncio.run(prepare())
    if pg_schema is None:
        url, connect_args = f"sqlite+aiosqlite:///{tmp}/paycore.sqlite", {}
    else:
        url, connect_args = PG_URL, {"server_settings": {"search_path": pg_schema}}
    try:
        with ServedApi(url, connect_args) as api:
            yield api
    finally:
        if pg_schema:
            asyncio.run(drop_schema(pg_schema))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx_and_errors_are_problems(case, served):
    response = case.call(base_url=served.base,
                         headers={"Authorization": f"Bearer {served.key}"}, timeout=30)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    if response.status_code >= 400 and not case.path.startswith("/v1/notifications/"):
        content_type = response.headers.get("content-type")
        if isinstance(content_type, list):
            content_type = content_type[0]
        assert content_type == "application/problem+json", response.text[:300]
