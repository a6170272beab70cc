"""One checkout, taken apart: what each request of a checkout costs the API process, in
CPU, in database round trips, and by function.

The shape is the checkout bench's (bench/checkout_bench.py): the sandbox banks in their
own process, the API (`paycore serve`'s app, `build_app`) in its own, on PostgreSQL, and
one customer doing checkouts one after another from this process. The API process here
is the bench's own runner of the same app, with counters added around it:

- per request (create = POST /v1/payment-intents, notify = POST /v1/notifications/{bank},
  poll = GET /v1/payment-intents/{id}): CPU time of the API process (one request at a
  time, so the process's CPU is the request's), wall time, and every round trip to
  PostgreSQL — SQLAlchemy's statements (`before_cursor_execute`), its BEGIN / COMMIT /
  ROLLBACK, and what goes to asyncpg directly (the ledger's server functions, prepares);
- the statements of one checkout, in order, each request's under its name;
- with `--pyinstrument`, a second run under pyinstrument, printed as each function's
  inclusive share of the API's busy time (and the full tree written to a file).

The banks' CPU per checkout is read from /proc, PostgreSQL's from its backends' /proc.

Usage: .venv/bin/python bench/checkout_profile.py [--checkouts 100] [--warm 20]
       [--banks restbank,unionpay,smbank] [--pyinstrument] [--out DIR] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import checkout_bench as cb  # noqa: E402  (the bench's customers, books and helpers)

# ------------------------------------------------------------------------ the API process

_KIND: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "profile_kind", default=None)


def _kind_of(method: str, path: str) -> str:
    if path.startswith("/v1/notifications/"):
        return "notify"
    if method == "POST" and path == "/v1/payment-intents":
        return "create"
    if method == "GET" and path.startswith("/v1/payment-intents/"):
        return "poll"
    return f"{method} {path}"


class Counters:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()
        self.cpu: defaultdict[str, float] = defaultdict(float)
        self.wall: defaultdict[str, float] = defaultdict(float)
        self.trips: dict[str, Counter[str]] = defaultdict(Counter)
        #: (kind, request number, what) of every round trip, in order
        self.trail: list[tuple[str, int, str]] = []
        self.keep_trail = 0
        self.seq = 0

    def trip(self, what: str, text: str = "") -> None:
        kind, number = _KIND.get() or ("outside", 0)
        self.trips[kind][what] += 1
        if self.keep_trail:
            self.trail.append((kind, number, f"{what} {' '.join(text.split())[:120]}"))


COUNTERS = Counters()


def _instrument(engine: Any) -> None:
    import asyncpg
    from sqlalchemy import event

    target = engine.sync_engine

    def statement(_c: Any, _cur: Any, text: str, *_: Any) -> None:
        COUNTERS.trip("sql", text)

    event.listen(target, "before_cursor_execute", statement)
    # what bypasses SQLAlchemy's cursor: asyncpg's own BEGIN / COMMIT / ROLLBACK (sent only
    # when a transaction really began: an autocommit statement has none), the ledger's
    # server functions, asyncpg's prepares (a statement not yet prepared on this session)
    conn_cls = asyncpg.connection.Connection
    for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany", "prepare"):
        real = getattr(conn_cls, name)

        def wrap(real: Any = real, name: str = name) -> Any:
            async def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
                text = str(query)
                word = text.split(None, 1)[0].rstrip(";").upper() if text.strip() else ""
                what = ("prepare" if name == "prepare" else
                        "txn" if word in ("BEGIN", "COMMIT", "ROLLBACK") else "raw")
                COUNTERS.trip(what, text)
                return await real(self, query, *args, **kwargs)
            return counted

        setattr(conn_cls, name, wrap())


def api_main(args: argparse.Namespace) -> None:
    import uvicorn

    from paycore.commands.serve import build_app

    app = build_app()
    _instrument(app.state.engine)
    profiler: list[Any] = []

    async def control(path: str) -> dict[str, Any]:
        if path == "/_profile/reset":
            COUNTERS.reset()
            COUNTERS.keep_trail = int(args.trail)
            return {}
        if path == "/_profile/start":
            from pyinstrument import Profiler
            from pyinstrument.stack_sampler import get_stack_sampler

            # sampled by this thread's CPU time, not the wall clock: time spent waiting (for
            # the database, the banks, or a core on a busy machine) is not counted
            get_stack_sampler().timer_func = time.thread_time
            profiler.append(Profiler(interval=0.001, async_mode="disabled"))
            profiler[-1].start()
            return {}
        if path == "/_profile/stop":
            p = profiler.pop()
            p.stop()
            out = Path(args.out)
            (out / "api_pyinstrument.txt").write_text(
                p.output_text(unicode=False, color=False, show_all=False))
            return {"inclusive": inclusive_shares(p.last_session),
                    "by_package": own_time_by_package(p.last_session),
                    "cpu_seconds": p.last_session.duration}
        return {"requests": dict(COUNTERS.requests), "cpu": dict(COUNTERS.cpu),
                "wall": dict(COUNTERS.wall),
                "trips": {k: dict(v) for k, v in COUNTERS.trips.items()},
                "trail": COUNTERS.trail}

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith("/_profile/"):
            body = json.dumps(await control(path)).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        kind = _kind_of(scope["method"], path)
        COUNTERS.seq += 1
        token = _KIND.set((kind, COUNTERS.seq))
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            await app(scope, receive, send)
        finally:
            COUNTERS.requests[kind] += 1
            COUNTERS.cpu[kind] += time.process_time() - cpu
            COUNTERS.wall[kind] += time.perf_counter() - wall
            _KIND.reset(token)

    uvicorn.run(wrapped, host="127.0.0.1", port=args.port, log_config=None, access_log=False,
                http="httptools", loop="uvloop", lifespan="on")


def _frames(session: Any) -> Any:
    """(frame, its ancestors' names) for every frame of the session's tree."""
    root = session.root_frame()
    stack = [(root, frozenset[str]())] if root is not None else []
    while stack:
        frame, above = stack.pop()
        name = f"{frame.function} ({Path(frame.file_path_short or '?').name})"
        yield frame, name, above
        stack.extend((child, above | {name}) for child in frame.children)


def inclusive_shares(session: Any, top: int = 70) -> list[tuple[str, float]]:
    """Each function's inclusive share of the API's CPU time."""
    inclusive: Counter[str] = Counter()
    total = 0.0
    for frame, name, above in _frames(session):
        own = frame.time - sum(c.time for c in frame.children)
        if own > 0:
            total += own
            for n in above | {name}:
                inclusive[n] += own
    return [(name, round(100 * t / max(total, 1e-9), 1)) for name, t in inclusive.most_common(top)]


#: where CPU time is spent, by the file of the innermost frame (first match wins)
_PACKAGES = (
    ("paycore/api/", "paycore.api (middleware, auth, idempotency, routes)"),
    ("gateways/adapters/", "gateways.adapters (bank adapters)"),
    ("gateways/protocols/", "gateways.protocols (signing, verifying, encoding)"),
    ("gateways/", "gateways (payment core)"), ("ledger/", "ledger"),
    ("sqlalchemy/", "SQLAlchemy"), ("asyncpg/", "asyncpg"), ("fastapi/", "FastAPI"),
    ("starlette/", "Starlette"), ("pydantic", "pydantic"), ("uvicorn/", "uvicorn"),
    ("httptools", "uvicorn"), ("httpx/", "httpx (bank calls)"),
    ("httpcore/", "httpx (bank calls)"), ("h11/", "httpx (bank calls)"),
    ("anyio/", "anyio"), ("structlog/", "logging"), ("logging/", "logging"),
    ("prometheus_client/", "prometheus"), ("json/", "json"), ("cryptography/", "cryptography"),
    ("gmssl/", "gmssl"), ("greenlet", "greenlet"), ("asyncio/", "asyncio"),
    ("uuid", "uuid"), ("moneyed/", "moneyed"), ("decimal", "decimal"),
)


def own_time_by_package(session: Any) -> list[tuple[str, float]]:
    by: Counter[str] = Counter()
    total = 0.0
    for frame, _, _ in _frames(session):
        own = frame.time - sum(c.time for c in frame.children)
        if own <= 0:
            continue
        total += own
        # pyinstrument keeps a function's own time in a "[self]" child without a file
        path = frame.file_path or (frame.parent.file_path if frame.parent else "") or ""
        for fragment, label in _PACKAGES:
            if fragment in path:
                by[label] += own
                break
        else:
            by[f"other ({Path(path).name or frame.function})"] += own
    return [(name, round(100 * t / max(total, 1e-9), 1)) for name, t in by.most_common(25)]


# ------------------------------------------------------------------------ the driver


def _get(base: str, path: str) -> Any:
    import httpx

    return httpx.post(f"{base}{path}", timeout=600, trust_env=False).json()


def driver(args: argparse.Namespace) -> None:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    plain = args.pg_url.replace("postgresql+asyncpg://", "postgresql://")
    url = args.pg_url + "?options=" + quote(f"-csearch_path={schema} -capplication_name={schema}")
    subprocess.run(["psql", plain, "-q", "-c", f"CREATE SCHEMA {schema}"], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="checkout_profile_"))
    out = Path(args.out or tmp)
    out.mkdir(parents=True, exist_ok=True)
    directory = tmp / "banks.json"
    procs: list[subprocess.Popen[str]] = []
    try:
        key = asyncio.run(cb.setup_books(url, 100))
        banks_proc = subprocess.Popen(
            [sys.executable, "-m", "gateways.sandbox", "banks", "--directory", str(directory),
             "--banks", args.banks], stdout=subprocess.PIPE, text=True, cwd=ROOT,
            env={**os.environ, "PAYCORE_LOG_LEVEL": "WARNING"})
        procs.append(banks_proc)
        assert banks_proc.stdout is not None
        ready: dict[str, Any] = {}
        for line in banks_proc.stdout:
            if line.startswith('{"ready"'):
                ready = json.loads(line)
                break
        threading.Thread(target=cb.copy_out, args=(banks_proc.stdout, tmp / "banks.log"),
                         daemon=True).start()
        port = cb.free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PAYCORE_DATABASE_URL": url,
               "PAYCORE_BANKS": "gateways.sandbox.directory:banks",
               "PAYCORE_SANDBOX_DIRECTORY": str(directory),
               "PAYCORE_NOTIFY_BASE_URL": f"{base}/v1/notifications",
               "PAYCORE_LOG_LEVEL": "WARNING", "PAYCORE_SCHEDULES": "none"}
        api_proc = subprocess.Popen(
            [sys.executable, __file__, "--role", "api", "--port", str(port), "--out", str(out),
             "--trail", "1"], env=env, cwd=ROOT, text=True)
        procs.append(api_proc)
        asyncio.run(cb.wait_ready(base, time.monotonic() + 180))
        banks = args.banks.split(",")

        def run(n: int, tag: str) -> dict[str, Any]:
            # n checkouts by one customer, one after another (the customer stops at the
            # first checkout started after its deadline: time is given generously and the
            # loop is bounded by n through the order counter)
            return asyncio.run(_sequential(base, key, banks, ready["customers"], n, tag))

        run(args.warm, "warm")
        _get(base, "/_profile/reset")
        before = {"banks": cb.cpu_seconds(banks_proc.pid)}
        pg_before = cb.cpu_of(cb.backends_of(plain, schema))
        done = run(args.checkouts, "measured")
        report = _get(base, "/_profile/report")
        pg_after = cb.cpu_of(cb.backends_of(plain, schema))
        n = max(done["checkouts"], 1)
        banks_ms = 1000 * (cb.cpu_seconds(banks_proc.pid) - before["banks"]) / n
        pg_ms = 1000 * sum(pg_after[p] - pg_before.get(p, 0.0) for p in pg_after) / n
        print(f"{done['checkouts']} checkouts, one at a time ({args.banks}); load average "
              f"{cb.load_average()}")
        print_report(report, n, banks_ms, pg_ms, done)
        if args.pyinstrument:
            _get(base, "/_profile/start")
            run(args.checkouts, "profiled")
            got = _get(base, "/_profile/stop")
            print(f"\npyinstrument, API process, {args.checkouts} checkouts, sampled on its CPU "
                  f"clock ({got['cpu_seconds']:.2f} s): own time by package")
            for name, share in got["by_package"]:
                print(f"  {share:5.1f}%  {name}")
            print(f"each function's inclusive share (tree: {out / 'api_pyinstrument.txt'})")
            for name, share in got["inclusive"]:
                print(f"  {share:5.1f}%  {name}")
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        subprocess.run(["psql", plain, "-q", "-c", "SET client_min_messages = warning; "
                        f"DROP SCHEMA IF EXISTS {schema} CASCADE"], check=False)


async def _sequential(base: str, key: str, banks: list[str], accounts: dict[str, str], n: int,
                      tag: str) -> dict[str, Any]:
    """n checkouts by one customer (the bench's customer, cut at n checkouts)."""
    result = await cb.customers(base, key, banks, accounts, 100, 1, 3600, tag, limit=n)
    return {"checkouts": len(result["whole"]), "failures": result["failures"],
            "gets": result["gets"]}


def print_report(report: dict[str, Any], n: int, banks_ms: float, pg_ms: float,
                 done: dict[str, Any]) -> None:
    if done["failures"]:
        print(f"failures: {done['failures'][:3]}")
    print("per request: CPU of the API process, wall time, and round trips to PostgreSQL:\n"
          "sql = SQLAlchemy statements, txn = BEGIN/COMMIT/ROLLBACK sent, raw = straight to "
          "asyncpg (the ledger's functions), prep = prepares")
    print(f"{'request':>8} {'count':>6} {'CPU ms':>7} {'wall ms':>8} {'sql':>5} {'txn':>5} "
          f"{'raw':>5} {'prep':>5} {'trips':>6}")
    total_cpu = 0.0
    total_trips = 0.0
    for kind in ("create", "notify", "poll"):
        count = report["requests"].get(kind, 0)
        if not count:
            continue
        trips = report["trips"].get(kind, {})
        per = {k: trips.get(k, 0) / count for k in ("sql", "txn", "raw", "prepare")}
        all_trips = sum(per.values())
        cpu = 1000 * report["cpu"][kind] / count
        total_cpu += cpu * count / n
        total_trips += all_trips * count / n
        print(f"{kind:>8} {count:6d} {cpu:7.2f} {1000 * report['wall'][kind] / count:8.2f} "
              f"{per['sql']:5.1f} {per['txn']:5.1f} {per['raw']:5.1f} {per['prepare']:5.1f} "
              f"{all_trips:6.1f}")
    print(f"per checkout: API CPU {total_cpu:.1f} ms, {total_trips:.1f} round trips to "
          f"PostgreSQL ({done['gets'] / n:.2f} polls); banks CPU {banks_ms:.1f} ms; "
          f"PostgreSQL backends CPU {pg_ms:.1f} ms")
    other = {k: v for k, v in report["trips"].items() if k not in ("create", "notify", "poll")}
    if other:
        print(f"round trips outside those requests: {other}")
    print("\nthe round trips of the first create, notify and poll measured, in order:")
    first: dict[str, int] = {}
    for kind, number, _ in report["trail"]:
        first.setdefault(kind, number)
    for kind in ("create", "notify", "poll"):
        for k, number, text in report["trail"]:
            if k == kind and number == first.get(kind):
                print(f"  {kind:>7}  {text}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", default="driver", choices=["driver", "api"])
    parser.add_argument("--checkouts", type=int, default=100)
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--banks", default="restbank,unionpay,smbank")
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("--out", default="")
    parser.add_argument("--pg-url", default=cb.PG_URL)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--trail", type=int, default=0)
    args = parser.parse_args()
    if args.role == "api":
        api_main(args)
        return
    driver(args)


if __name__ == "__main__":
    main()
