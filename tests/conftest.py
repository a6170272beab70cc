"""The `db` fixture: every storage test runs on SQLite and on PostgreSQL, each in a fresh
database built by the real Alembic migrations: the migrations run once per session into a
template (a SQLite file; a PostgreSQL database), and each test gets a copy of it (the file
copied; `CREATE DATABASE … TEMPLATE`, ~0.1 s where migrating a schema took ~1 s).
`make_engine` still gives an empty database (a file, or a schema of its own) to the tests
that migrate it themselves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore import db as paycore_db
from paycore import logging as paycore_logging

# before any test configures logging: no logger keeps the configuration of its first use
# (see paycore.logging.CACHE_LOGGERS; production still caches)
paycore_logging.CACHE_LOGGERS = False

PG_URL = os.environ.get(
    "PAYCORE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_skipped_pg: list[str] = []


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


_reachability: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "production_password_hashing: staff passwords hashed "
                            "with the production argon2id parameters (see cheap_password_hashing)")


def pytest_sessionstart(session: pytest.Session) -> None:
    # probed here, before any test's event loop runs
    _reachability["reason"] = _probe_pg()


def pg_unreachable_reason() -> str | None:
    return _reachability.get("reason")


def _probe_pg() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(_plain_dsn(PG_URL), timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure to connect means: no PostgreSQL here
        return f"PostgreSQL at {PG_URL} is unreachable: {exc!r}"
    return None


async def make_engine(backend: str, tmp_path: Path, **kwargs: object) -> tuple[AsyncEngine, str | None]:
    if backend == "sqlite":
        return paycore_db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/paycore.sqlite", **kwargs), None
    reason = pg_unreachable_reason()
    if reason:
        if CI:
            pytest.fail(f"{reason}; under CI=true PostgreSQL tests must run")
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(_plain_dsn(PG_URL))
    await admin.execute(f"CREATE SCHEMA {schema}")
    await admin.close()
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 40)
    engine = paycore_db.create_engine(
        PG_URL, connect_args={"server_settings": {"search_path": schema}}, **kwargs
    )
    return engine, schema


async def drop_schema(schema: str) -> None:
    admin = await asyncpg.connect(_plain_dsn(PG_URL))
    await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    await admin.close()


#: the migrated templates of this session: backend -> a SQLite file, a PostgreSQL database
_templates: dict[str, str] = {}
#: this process's PostgreSQL databases are named with this prefix (its pid: a later session
#: drops what a killed one left, and never a running one's)
_DATABASE_PREFIX = f"paycore_t{os.getpid()}_"


def _pg_url_of(database: str) -> str:
    return sa.make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


#: the schema paycore's tables live in, in each test database (not `public`, whose USAGE
#: every role holds: a schema of paycore's own, as in production)
PG_SCHEMA = "books"


def _pg_engine_on(database: str, **kwargs: object) -> AsyncEngine:
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 40)
    return paycore_db.create_engine(
        _pg_url_of(database), connect_args={"server_settings": {"search_path": PG_SCHEMA}},
        **kwargs)


async def _drop_databases_of_ended_sessions(admin: asyncpg.Connection) -> None:
    names = await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'paycore_t%'")
    for (name,) in names:
        pid = name.removeprefix("paycore_t").split("_", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except PermissionError:  # another user's live process
            pass


async def _template(backend: str) -> str:
    """The session's migrated template, built on first use by the real migrations."""
    if backend in _templates:
        return _templates[backend]
    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="paycore-template-"))
        engine = paycore_db.create_engine(f"sqlite+aiosqlite:///{folder}/paycore.sqlite")
        template = str(folder / "paycore.sqlite")
    else:
        template = _DATABASE_PREFIX + "template"
        admin = await asyncpg.connect(_plain_dsn(PG_URL))
        try:
            await _drop_databases_of_ended_sessions(admin)
            await admin.execute(f"DROP DATABASE IF EXISTS {template} WITH (FORCE)")
            await admin.execute(f"CREATE DATABASE {template}")
        finally:
            await admin.close()
        inside = await asyncpg.connect(_plain_dsn(_pg_url_of(template)))
        try:
            await inside.execute(f"CREATE SCHEMA {PG_SCHEMA}")
        finally:
            await inside.close()
        engine = _pg_engine_on(template)
    try:
        await paycore_db.upgrade(engine)
    finally:
        await engine.dispose()  # a template with a connection open cannot be copied
    _templates[backend] = template
    return template


async def make_migrated_engine(backend: str, tmp_path: Path,
                               **kwargs: object) -> tuple[AsyncEngine, str | None]:
    """An engine on a fresh copy of the migrated template: a SQLite file in `tmp_path`, or
    a PostgreSQL database of its own (returned, to be dropped with `drop_database`)."""
    if backend == "sqlite":
        template = await _template("sqlite")
        shutil.copyfile(template, tmp_path / "paycore.sqlite")
        return paycore_db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/paycore.sqlite",
                                        **kwargs), None
    reason = pg_unreachable_reason()
    if reason:
        if CI:
            pytest.fail(f"{reason}; under CI=true PostgreSQL tests must run")
        pytest.skip(reason)
    template = await _template("postgresql")
    database = _DATABASE_PREFIX + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(_plain_dsn(PG_URL))
    try:
        await admin.execute(f"CREATE DATABASE {database} TEMPLATE {template}")
    finally:
        await admin.close()
    return _pg_engine_on(database, **kwargs), database


def url_of(engine: AsyncEngine) -> str:
    """The URL another process (a CLI command, a server) opens a `make_migrated_engine`
    database by, its schema included."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return url
    return url + "?options=" + quote(f"-csearch_path={PG_SCHEMA}")


async def drop_database(database: str) -> None:
    admin = await asyncpg.connect(_plain_dsn(PG_URL))
    try:
        # WITH (FORCE): a process the test started and did not stop cannot keep it alive
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    finally:
        await admin.close()


def _drop_templates() -> None:
    sqlite = _templates.pop("sqlite", None)
    if sqlite:
        shutil.rmtree(Path(sqlite).parent, ignore_errors=True)
    database = _templates.pop("postgresql", None)
    if database:
        with contextlib.suppress(Exception):  # housekeeping: a later session drops it
            asyncio.run(drop_database(database))


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database: a SQLite file, or a PostgreSQL database of its own."""
    engine, database = await make_migrated_engine(request.param, tmp_path)
    try:
        yield engine
    finally:
        await engine.dispose()
        if database:
            await drop_database(database)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "postgresql" in report.nodeid:
        _skipped_pg.append(report.nodeid)


# Each PostgreSQL test builds and drops a schema of its own (~30 tables with their indexes,
# triggers and functions). Their catalog rows die with the schema, and a server without
# autovacuum (this machine's has it off) keeps them: pg_attribute reached ~800,000 dead rows,
# which every later catalog scan, and every benchmark run on the same server, wades through.
_CHURNED_CATALOGS = ("pg_attribute", "pg_depend", "pg_class", "pg_type", "pg_constraint",
                     "pg_index", "pg_trigger", "pg_proc", "pg_attrdef", "pg_description",
                     # the cluster's: each schema's grants to, and function owned by, the
                     # ledger's writer role (migration 0011)
                     "pg_shdepend")


def _vacuum_churned_catalogs() -> str | None:
    async def vacuum() -> None:
        conn = await asyncpg.connect(_plain_dsn(PG_URL), timeout=5)
        try:
            await conn.execute("VACUUM " + ", ".join(_CHURNED_CATALOGS))
        finally:
            await conn.close()

    try:
        asyncio.run(vacuum())
    except Exception as exc:  # housekeeping: the tests' outcome stands either way
        return f"the catalogs were not vacuumed: {exc!r}"
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _drop_templates()
    if _reachability and pg_unreachable_reason() is None:
        problem = _vacuum_churned_catalogs()
        if problem:
            print(f"\n{problem}")
    if CI and _skipped_pg:
        print(f"\nCI=true: {len(_skipped_pg)} PostgreSQL tests were skipped; that is a failure:")
        for nodeid in _skipped_pg[:20]:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """What a test configures of structlog (a CLI command's `configure_logging`: its level
    filter, its renderer) is undone after it, so the next test, in whatever order, logs
    and captures (`structlog.testing.capture_logs`) as if it had never run."""
    saved, configured = structlog.get_config(), paycore_logging._configured
    yield
    structlog.configure(**saved)
    paycore_logging._configured = configured


@pytest.fixture(autouse=True)
def account_keys() -> object:
    """A key ring for bank account numbers (gateways.account_keys), as a deployment
    installs one from PAYCORE_ACCOUNT_KEYS; tests of rotation install their own."""
    import gateways

    ring = gateways.AccountKeys([("test1", bytes(range(32)))])
    gateways.use_account_keys(ring)
    yield ring
    gateways.use_account_keys(ring)


@pytest.fixture(autouse=True)
def cheap_password_hashing(request: pytest.FixtureRequest,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Staff passwords hashed in this process with argon2id at the library's cheapest
    parameters: the production ones cost ~0.4 s per hash on this 2-core machine, and the
    console's tests sign in hundreds of times. The algorithm, the salts, verification,
    lock-out and rehashing are the same code; a test marked `production_password_hashing`
    keeps the production parameters (and proves a cheaper hash is upgraded at sign-in).
    Servers the tests start as processes always use the production parameters."""
    if request.node.get_closest_marker("production_password_hashing"):
        return
    from argon2 import PasswordHasher, profiles

    from paycore.console import staff

    monkeypatch.setattr(staff, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
