"""Circuit breakers shared by every process (#17 §3): two engines on one database stand for
two processes (an API server and a job worker), each with its own `BankDirectory` of real
adapters to the REST sandbox bank. A bank that times out for one process is not called by
the other; after the cool-down exactly one process probes it; its answer closes (or opens)
the breaker for both; failures spread beyond the window do not add up; `/metrics` served by
either process shows the shared state. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

import gateways
from gateways import BankDirectory, BreakerState, CircuitOpen
from gateways.bank import BankCall, BankGateway, PaymentStatus
from gateways.sandbox import SandboxFleet
from paycore import db as paycore_db

from ..conftest import PG_URL, drop_schema, make_engine
from .core_env import FAST

CODE = "restbank"
DOWN = "down"  # asked through an adapter whose bank refuses connections (a closed port)
UP = "atbreakerup00001"


@pytest.fixture(params=["sqlite", "postgresql"])
async def two_engines(request: pytest.FixtureRequest, tmp_path: Path):
    """One migrated database, reached by two engines (two processes' pools)."""
    engine, schema = await make_engine(request.param, tmp_path)
    url = (f"sqlite+aiosqlite:///{tmp_path}/paycore.sqlite" if schema is None
           else PG_URL + "?options=" + quote(f"-csearch_path={schema}"))
    other = paycore_db.create_engine(url)
    try:
        await paycore_db.upgrade(engine)
        yield engine, other
    finally:
        await other.dispose()
        await engine.dispose()
        if schema:
            await drop_schema(schema)


class Processes:
    """Two processes' bank directories over one sandbox bank, on one shared clock."""

    def __init__(self, fleet: SandboxFleet, engines: tuple) -> None:
        self.offset = dt.timedelta(0)
        self.fleet = fleet
        self.directories = [self._directory(fleet, engine) for engine in engines]
        # the same bank's adapter, at an address where nothing listens: the bank is down
        self.unreachable = fleet.bank(CODE).adapter(timeout=5.0, base_url="http://127.0.0.1:9")
        self.sent = 0  # calls that reached the adapter
        self.holding = asyncio.Event()  # a call has its answer and is held back

    def clock(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def _directory(self, fleet: SandboxFleet, engine) -> BankDirectory:
        # failures here are refused connections, never time-outs: the time-out is long so
        # that a loaded machine's slow sandbox answer never fails a probe these tests hold
        # open (a 0.4 s one did, once in a CI run: the probe never reached its hold)
        directory = BankDirectory([fleet.adapter(CODE, timeout=5.0)],
                                  timeout=dt.timedelta(seconds=10), failure_threshold=3,
                                  cool_down=dt.timedelta(seconds=30), clock=self.clock)
        directory.share_breakers(engine, window=dt.timedelta(seconds=60))
        return directory

    async def ask(self, process: int, reference: str,
                  hold: asyncio.Event | None = None) -> PaymentStatus:
        async def query(gateway: BankGateway) -> PaymentStatus:
            self.sent += 1
            if reference == DOWN:
                gateway = self.unreachable
            answer = await gateway.query_payment(BankCall(reference, dt.datetime.now(dt.UTC)))
            if hold is not None:
                self.holding.set()
                await hold.wait()
            return answer
        return await self.directories[process].call(CODE, query, moves_money=False)

    async def fail(self, process: int, times: int) -> None:
        for _ in range(times):
            with pytest.raises(gateways.BankUnavailable):
                await self.ask(process, DOWN)

    async def state(self, engine) -> BreakerState:
        async with engine.connect() as conn:
            [health] = [h for h in await gateways.load_bank_health(conn) if h.bank == CODE]
        return health.state


@pytest.fixture
async def processes(two_engines):
    async with SandboxFleet.start([CODE], settings=FAST) as fleet:
        p = Processes(fleet, two_engines)
        try:
            yield p, two_engines
        finally:
            await p.unreachable.aclose()


async def test_a_breaker_opened_by_one_process_stops_calls_from_every_process(processes):
    p, (engine, other) = processes
    await p.fail(0, 2)
    assert await p.state(other) is BreakerState.CLOSED
    await p.ask(1, UP)  # the other process's success resets the window's count
    await p.fail(0, 2)
    assert await p.state(other) is BreakerState.CLOSED
    await p.fail(1, 1)  # the third failure in the window, in the other process, opens it
    assert await p.state(engine) is BreakerState.OPEN
    sent = p.sent
    for process in (0, 1):
        with pytest.raises(CircuitOpen):
            await p.ask(process, UP)
    assert p.sent == sent  # refused before any request left
    # each process's own view (/v1/banks/health) shows the shared state it last read
    assert [h.state for h in p.directories[0].health()] == [BreakerState.OPEN]
    # a process saving its bank health does not overwrite the shared state
    async with engine.begin() as conn:
        await gateways.save_bank_health(conn, p.directories[0])
    assert await p.state(other) is BreakerState.OPEN


async def test_after_the_cool_down_one_process_probes_and_its_success_closes_it_for_all(
        processes):
    p, (engine, _other) = processes
    await p.fail(0, 3)
    p.offset += dt.timedelta(seconds=31)
    release = asyncio.Event()
    probes = [asyncio.create_task(p.ask(n, UP, hold=release)) for n in (0, 1, 0, 1)]
    await asyncio.wait_for(p.holding.wait(), 30)
    refused = 0
    for _ in range(200):
        refused = sum(1 for t in probes if t.done() and isinstance(t.exception(), CircuitOpen))
        if refused == 3:
            break
        await asyncio.sleep(0.02)
    assert refused == 3 and p.sent == 4  # one probe only, from one process
    assert await p.state(engine) is BreakerState.HALF_OPEN
    release.set()
    [probe] = [t for t in probes if not (t.done() and t.exception() is not None)]
    await probe
    assert await p.state(engine) is BreakerState.CLOSED
    for process in (0, 1):
        await p.ask(process, UP)


async def test_a_failed_probe_opens_it_again_for_every_process(processes):
    p, (engine, other) = processes
    await p.fail(1, 3)
    p.offset += dt.timedelta(seconds=31)
    await p.fail(0, 1)  # the probe
    assert await p.state(other) is BreakerState.OPEN
    for process in (0, 1):
        with pytest.raises(CircuitOpen):
            await p.ask(process, UP)
    p.offset += dt.timedelta(seconds=31)
    await p.ask(1, UP)
    assert await p.state(engine) is BreakerState.CLOSED


async def test_a_probe_whose_process_died_is_taken_over_after_its_lease(processes):
    p, (engine, _other) = processes
    await p.fail(0, 3)
    p.offset += dt.timedelta(seconds=31)
    shared = p.directories[0].shared
    assert shared is not None
    # process 0 takes the probe and dies before answering
    taken = await shared.admit(CODE, p.directories[0].breaker(CODE))
    assert taken.probe is not None
    with pytest.raises(CircuitOpen):
        await p.ask(1, UP)
    p.offset += shared.probe_lease + dt.timedelta(seconds=1)
    await p.ask(1, UP)
    assert await p.state(engine) is BreakerState.CLOSED
    # the dead probe's late answer changes nothing
    await shared.record_failure(taken, "late", p.directories[0].breaker(CODE))
    assert await p.state(engine) is BreakerState.CLOSED


async def test_failures_spread_beyond_the_window_do_not_add_up(processes):
    p, (engine, _other) = processes
    await p.fail(0, 2)
    p.offset += dt.timedelta(seconds=61)
    await p.fail(1, 2)
    assert await p.state(engine) is BreakerState.CLOSED
    await p.fail(0, 1)
    assert await p.state(engine) is BreakerState.OPEN


async def test_metrics_of_any_process_show_the_shared_breaker(processes):
    from paycore.api import create_api_key, create_app
    from paycore.api.app import load_routers

    p, (_engine, other) = processes
    app = create_app(other)
    app.state.banks = p.directories[1]  # this server's banks: it has not called them yet
    load_routers()
    async with other.begin() as conn:
        key = (await create_api_key(conn, "m-1", ["payments:read"])).secret
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://paycore") as client:
        await p.ask(0, UP)
        line = f'paycore_bank_breaker_open{{bank="{CODE}"}}'
        assert f"{line} 0.0" in (await client.get("/metrics")).text
        await p.fail(0, 3)  # opened by the other process
        assert f"{line} 1.0" in (await client.get("/metrics")).text
        health = await client.get("/v1/banks/health",
                                  headers={"Authorization": f"Bearer {key}"})
        assert health.status_code == 200, health.text
        assert [(h["bank"], h["state"]) for h in health.json()["data"]] == [(CODE, "open")]
        p.offset += dt.timedelta(seconds=31)
        release = asyncio.Event()
        probe = asyncio.create_task(p.ask(0, UP, hold=release))
        await asyncio.wait_for(p.holding.wait(), 30)
        assert f"{line} 0.5" in (await client.get("/metrics")).text
        release.set()
        await probe
        assert f"{line} 0.0" in (await client.get("/metrics")).text


async def test_processes_saving_bank_health_at_once_do_not_collide(two_engines):
    """Each worker's janitor job saves bank health (the certificates with it) when it ends:
    two at once must both succeed and leave one row per certificate."""
    engine, other = two_engines
    async with SandboxFleet.start(["unionpay"], settings=FAST) as fleet:
        directories = [BankDirectory([fleet.adapter("unionpay")]) for _ in two_engines]
        for directory, e in zip(directories, two_engines, strict=True):
            directory.share_breakers(e)
        async with engine.begin() as conn:
            await gateways.save_bank_health(conn, directories[0])
        async with engine.connect() as first:
            await first.begin()
            await gateways.save_bank_health(first, directories[0])  # its rows held

            async def second() -> None:
                async with other.begin() as conn:
                    await gateways.save_bank_health(conn, directories[1])
            waiting = asyncio.create_task(second())
            await asyncio.sleep(0.5)  # let the second reach the first's rows and wait there
            await first.commit()
            await waiting
        async with other.connect() as conn:
            saved = await gateways.load_bank_certificates(conn)
    assert saved and len({(s.bank, s.role) for s in saved}) == len(saved)


@pytest.mark.parametrize("url", [
    "sqlite+aiosqlite:///{tmp}/no/such/directory/paycore.sqlite",
    "postgresql+asyncpg://postgres@127.0.0.1:9/test",  # nothing listens there
])
async def test_without_its_database_a_process_falls_back_to_its_own_breaker(tmp_path, url):
    """The shared state is advice: a process that cannot reach the database still calls
    a bank that answers, and its own breaker still opens on the bank's failures."""
    unreachable = paycore_db.create_engine(url.format(tmp=tmp_path))
    async with SandboxFleet.start([CODE], settings=FAST) as fleet:
        p = Processes(fleet, (unreachable,))
        try:
            await p.ask(0, UP)
            await p.fail(0, 3)
            sent = p.sent
            with pytest.raises(CircuitOpen):
                await p.ask(0, UP)
            assert p.sent == sent
            assert [h.state for h in p.directories[0].health()] == [BreakerState.OPEN]
        finally:
            await p.unreachable.aclose()
            await unreachable.dispose()
