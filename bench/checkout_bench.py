"""Checkout end to end, run as production runs: three kinds of process on loopback.

- the sandbox banks: `python -m gateways.sandbox banks --directory FILE` (their own
  process, their own keys; the file is what the merchant holds);
- the API: `paycore serve --workers W` on PostgreSQL, its banks read from that file
  (`PAYCORE_BANKS=gateways.sandbox.directory:banks`);
- the customers: load processes (asyncio, a small HTTP/1.1 keep-alive client), each with
  C concurrent customers, each
  customer doing checkouts one after another: POST /v1/payment-intents (API key,
  Idempotency-Key) -> the bank's pay page (follow the instruction, press Pay) -> the bank
  notifies the API -> GET the intent until it has succeeded (the shop's return page).

Closed loop and open loop. With 100 customers in a closed loop (each starts its next
checkout when the last one is done), Little's law ties latency to throughput: p99 under
100 ms would need ~1000 checkouts/s. So after the closed loops come open loops
(`--open 0.5,0.8`): customers arriving at a fixed rate, that fraction of the best
closed-loop checkouts/s just measured, each doing one checkout — the latency a customer
feels at a realistic load below saturation.

Loads are given as `--loads 1x1,1x100,1x128,2x32` (load processes x customers each). For
each load it prints checkouts/s (succeeded checkouts over the load's wall time) and the
p50/p99 of create (client side), of notify (the bank's POST of its notification to the
API's answer, as the bank times it) and of the whole checkout (create to succeeded seen).
Then the raw-asyncpg ceiling (../shared/bench/pg_ceiling.py) runs in the same invocation,
and `ratio checkout_vs_ceiling_hot: x` is the 100-customer checkouts/s over the ceiling's
one-round-trip hot-account figure (`rpc_hot_32_clients`). The books are verified at the
end. `--profile DIR` records each process with py-spy (`pip install py-spy`) during the
`--profile-load` load and prints each process's top functions. The last line is JSON.

Usage: .venv/bin/python bench/checkout_bench.py [--workers 2] [--loads 1x1,1x100,1x128,2x32]
       [--seconds 15] [--suppliers 100] [--banks restbank,unionpay,smbank]
       [--open 0.5,0.8] [--open-rates R1,R2] [--ceiling-seconds 3] [--skip-ceiling] [--profile DIR]
       [--pg-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CEILING = (ROOT.parent / "shared" / "bench" / "pg_ceiling.py").resolve()
PAYCORE = Path(sys.executable).parent / "paycore"
MERCHANT = "m-bench"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def ms(value: float) -> float:
    return round(value * 1000, 1)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ------------------------------------------------------------------------ the customers


class Http1:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the customers' browsers.
    The load generator shares the machine's two cores with what it measures, so it must
    cost little (httpx costs about four times as much CPU per request)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader,
                                                     asyncio.StreamWriter]]] = {}

    async def request(self, method: str, url: str, *, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}",
                 f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        wire = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        idle = self._idle.setdefault((host, port), [])
        for fresh in (False, True):
            if idle and not fresh:
                reader, writer = idle.pop()
            else:
                reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(wire)
                status, content, keep = await self._response(reader)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError):
                writer.close()
                if fresh:
                    raise
                continue
            if keep:
                idle.append((reader, writer))
            else:
                writer.close()
            return status, content
        raise AssertionError("unreachable")

    @staticmethod
    async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        fields = {}
        for line in header_lines:
            if ":" in line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        if fields.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            content = b"".join(chunks)
        else:
            content = await reader.readexactly(int(fields.get("content-length", "0")))
        return status, content, fields.get("connection", "").lower() != "close"

    async def close(self) -> None:
        for pool in self._idle.values():
            for _, writer in pool:
                writer.close()


_FORM_ACTION = re.compile(r'<form id="pay" method="post" action="([^"]+)"')


async def pay_at_bank(browser: Http1, action: dict[str, Any], account: str) -> tuple[bool, str]:
    """The customer's browser: follow the intent's next_action to the bank's pay page
    (GET a redirect, or submit the auto-post form), then press Pay."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    if action["method"].upper() == "POST":
        status, page = await browser.request("POST", action["url"], headers=form,
                                             body=urlencode(action["fields"]).encode())
    else:
        status, page = await browser.request("GET", action["url"])
    found = _FORM_ACTION.search(page.decode("utf-8", "replace"))
    if status != 200 or found is None:
        return False, f"pay page {status}: {page[:200]!r}"
    status, answer = await browser.request(
        "POST", urljoin(action["url"], html.unescape(found.group(1))), headers=form,
        body=urlencode({"account": account, "action": "pay"}).encode())
    return status == 200, f"pay {status}: {answer[:200]!r}"


async def customers(base: str, key: str, banks: list[str], accounts: dict[str, str],
                    suppliers: int, callers: int, seconds: float, tag: str,
                    limit: int | None = None, rate: float = 0,
                    poll: bool = False) -> dict[str, Any]:
    """One load process. Closed loop (`rate` 0): `callers` customers checking out one after
    another for `seconds` (or until `limit` checkouts have started). Open loop (`rate` >
    0): a new customer arrives every 1/`rate` seconds for `seconds`, whatever became of
    the earlier ones, and does one checkout. Latencies in seconds, per checkout."""
    create_t: list[float] = []
    whole_t: list[float] = []
    polls = Counter[str]()
    failures: list[str] = []
    api_headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    stop_at = time.monotonic() + seconds
    counter = [0]
    api, browser = Http1(), Http1()

    async def checkout(i: int) -> None:
        bank = banks[i % len(banks)]
        body = {"order_id": f"{tag}-{i}", "supplier_id": f"sup-{i % suppliers:04d}",
                "bank": bank, "amount": {"amount": str(Decimal(100 + i % 900) / 100 + 1),
                                         "currency": "CNY"}}
        started = time.perf_counter()
        status, answer = await api.request(
            "POST", f"{base}/v1/payment-intents", body=json.dumps(body).encode(),
            headers=api_headers | {"idempotency-key": f"{tag}-{i}"})
        create_t.append(time.perf_counter() - started)
        if status != 201:
            failures.append(f"create {status}: {answer[:200]!r}")
            return
        intent = json.loads(answer)
        if intent.get("next_action") is None:  # the bank was not reached, or no answer
            failures.append(f"intent {intent['id']} is {intent['status']}")
            return
        paid, why = await pay_at_bank(browser, intent["next_action"], accounts[bank])
        if not paid:
            failures.append(why)
            return
        # the shop's return page asks until the bank's notification has landed: with
        # `wait` the API answers when the intent moves (--poll: asks again and again)
        pauses = (0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 1, 2, 2, 5, 5, 10) if poll else (0,) * 3
        query = "" if poll else "?wait=10"
        for pause in pauses:
            await asyncio.sleep(pause)
            polls["get"] += 1
            status, answer = await api.request(
                "GET", f"{base}/v1/payment-intents/{intent['id']}{query}", headers=api_headers)
            if status == 200 and json.loads(answer).get("status") == "succeeded":
                whole_t.append(time.perf_counter() - started)
                return
        failures.append(f"intent {intent['id']} not succeeded in time")

    async def customer(n: int) -> None:
        # customers arrive over the first second, not all in one instant
        await asyncio.sleep(n / callers)
        while time.monotonic() < stop_at and (limit is None or counter[0] < limit):
            i = counter[0]
            counter[0] += 1
            await checkout(i)

    lag = 0.0

    async def arrivals() -> None:
        # one arrival every 1/rate s on a fixed schedule (not after the last one finished):
        # a slow answer does not slow the arrivals, as with real customers
        nonlocal lag
        tasks = []
        first = time.monotonic()
        i = 0
        while True:
            due = first + i / rate
            if due >= stop_at:
                break
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            else:
                lag = max(lag, now - due)
            tasks.append(asyncio.create_task(checkout(i)))
            i += 1
        await asyncio.gather(*tasks)

    wall_started = time.time()
    cpu_started = time.process_time()
    if rate > 0:
        await arrivals()
    else:
        await asyncio.gather(*(customer(n) for n in range(callers)))
    cpu = time.process_time() - cpu_started
    wall_ended = time.time()
    await api.close()
    await browser.close()
    return {"create": create_t, "whole": whole_t, "gets": polls["get"], "failures": failures,
            "started": wall_started, "ended": wall_ended, "cpu_seconds": cpu,
            "arrival_lag_max": lag}


def customers_main(args: argparse.Namespace) -> None:
    result = asyncio.run(customers(args.base, args.key, args.banks.split(","),
                                   json.loads(args.accounts), args.suppliers, args.callers,
                                   args.seconds, args.tag, rate=args.rate, poll=args.poll))
    sys.stdout.write(json.dumps(result) + "\n")


# ------------------------------------------------------------------------ the driver


def copy_out(stream: Any, path: Path) -> None:
    with path.open("w") as out:
        for line in stream:
            out.write(line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def setup_books(url: str, suppliers: int) -> str:
    import gateways
    from paycore import db as paycore_db
    from paycore.api import create_api_key

    engine = paycore_db.create_engine(url)
    try:
        await paycore_db.upgrade(engine)
        async with engine.begin() as conn:
            for n in range(suppliers):
                await gateways.set_supplier_terms(
                    conn, gateways.SupplierTerms(f"sup-{n:04d}", Decimal("0.03")))
            return (await create_api_key(conn, MERCHANT,
                                         ["payments:read", "payments:write"])).secret
    finally:
        await engine.dispose()


async def check_books(url: str) -> dict[str, Any]:
    import gateways
    import ledger
    from paycore import db as paycore_db

    engine = paycore_db.create_engine(url)
    try:
        async with engine.connect() as conn:
            paid = len(await gateways.list_intents(conn, MERCHANT,
                                                   status=gateways.IntentState.SUCCEEDED,
                                                   limit=10_000_000))
            report = await ledger.verify(conn)
            lanes = {code: (await ledger.get_account(conn, code)).lanes
                     for code in ("6001.income.commission", "1102.clearing.restbank")
                     if await ledger.find_account(conn, code) is not None}
        return {"paid": paid, "verify_ok": report.ok, "lanes": lanes}
    finally:
        await engine.dispose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far (/proc, Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far (/proc/stat)."""
    values = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def backends_of(plain_dsn: str, application: str) -> list[int]:
    """The PostgreSQL backends (pids) of the sessions named `application`."""
    out = subprocess.run(["psql", plain_dsn, "-At", "-c", "SELECT pid FROM pg_stat_activity "
                          f"WHERE application_name = '{application}'"],
                         capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def cpu_of(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            found[pid] = cpu_seconds(pid)
    return found


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True, check=False).stdout
    return [int(p) for p in out.split()]


def start_profiles(directory: Path, processes: dict[str, int], seconds: float) -> list[Any]:
    directory.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).parent / "py-spy"
    return [(name, directory / f"{name}.txt", subprocess.Popen(
        [str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
         "--gil", "--format", "raw", "--output", str(directory / f"{name}.txt"), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)) for name, pid in processes.items()]


def _frame_name(frame: str) -> str:
    # py-spy's raw frames read "function (path/to/module.py:line)"
    function, _, where = frame.partition(" (")
    return f"{function} ({where.rsplit(':', 1)[0].rsplit('/', 1)[-1]}"


def summarize_profile(path: Path, top: int = 18) -> list[str]:
    """py-spy's collapsed stacks: the share of samples the process was waiting in its event
    loop's select, and each function's inclusive share of the busy samples."""
    if not path.exists():
        return [f"  (no profile at {path})"]
    total = idle = 0
    inclusive: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        if frames[-1].startswith(("select (", "poll (", "epoll")):
            idle += n
            continue
        for name in {_frame_name(f) for f in frames}:
            inclusive[name] += n
    busy = max(total - idle, 1)
    lines = [f"  samples {total}, idle in select {100 * idle / max(total, 1):.0f}%; "
             f"busy samples by function (inclusive):"]
    for name, n in inclusive.most_common(top):
        lines.append(f"  {100 * n / busy:5.1f}%  {name}")
    return lines


def run_ceiling(pg_url: str, seconds: float) -> dict[str, float]:
    if not CEILING.exists():
        raise SystemExit(f"ceiling script not found at {CEILING}")
    print(f"ceiling: {CEILING} ({seconds:g} s per workload), load average {load_average()}",
          flush=True)
    for _ in range(3):
        # the ceiling works in a schema of its own that another bench on this machine may
        # be rebuilding at the same moment (its tables dropped under it): run it again
        proc = subprocess.run([sys.executable, str(CEILING),
                               pg_url.replace("postgresql+asyncpg://", "postgresql://"),
                               str(seconds)], capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            break
        print(f"  ceiling | failed ({proc.stderr.strip().splitlines()[-1:]}); again",
              flush=True)
        time.sleep(5)
    for line in proc.stdout.splitlines()[:-1]:
        print(f"  ceiling | {line}", flush=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"ceiling script failed with exit code {proc.returncode}")
    return {k: float(v) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


async def bank_deliveries(banks: dict[str, str], after: dict[str, int]) -> dict[str, Any]:
    import httpx

    found: dict[str, Any] = {}
    async with httpx.AsyncClient(trust_env=False, timeout=120) as client:
        for code, url in banks.items():
            await client.post(f"{url}/_sandbox/drain")
            found[code] = (await client.get(f"{url}/_sandbox/deliveries",
                                            params={"after": after.get(code, 0)})).json()
    return found


async def wait_ready(base: str, deadline: float) -> None:
    import httpx

    async with httpx.AsyncClient(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise SystemExit(f"the API at {base} did not answer /healthz in time")


def parse_loads(text: str) -> list[tuple[int, int]]:
    loads = []
    for part in text.split(","):
        procs, _, callers = part.strip().partition("x")
        loads.append((int(procs), int(callers)))
    return loads


def driver(args: argparse.Namespace) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    plain = args.pg_url.replace("postgresql+asyncpg://", "postgresql://")
    # the API's sessions are named after the schema: their backends' CPU is this bench's
    url = args.pg_url + "?options=" + quote(f"-csearch_path={schema} -capplication_name={schema}")
    subprocess.run(["psql", plain, "-q", "-c", f"CREATE SCHEMA {schema}"], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="checkout_bench_"))
    directory = tmp / "banks.json"
    procs: list[subprocess.Popen[str]] = []
    figures: dict[str, Any] = {"workers": args.workers, "banks": args.banks,
                               "suppliers": args.suppliers, "seconds": args.seconds,
                               "load_average_start": load_average()}
    try:
        key = asyncio.run(setup_books(url, args.suppliers))
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
        if not ready:
            raise SystemExit("the sandbox banks did not start")
        # the banks' later output (their warnings) goes to a file: a full pipe nobody reads
        # would stop the banks' event loop at its next log line
        banks_log = tmp / "banks.log"
        threading.Thread(target=copy_out, args=(banks_proc.stdout, banks_log),
                         daemon=True).start()
        bank_urls: dict[str, str] = ready["banks"]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PAYCORE_DATABASE_URL": url,
               "PAYCORE_BANKS": "gateways.sandbox.directory:banks",
               "PAYCORE_SANDBOX_DIRECTORY": str(directory),
               "PAYCORE_NOTIFY_BASE_URL": f"{base}/v1/notifications",
               "PAYCORE_LOG_LEVEL": "WARNING", "PAYCORE_SCHEDULES": "none"}
        api_proc = subprocess.Popen([str(PAYCORE), "serve", "--port", str(port),
                                     "--workers", str(args.workers)], env=env, cwd=ROOT,
                                    text=True)
        procs.append(api_proc)
        asyncio.run(wait_ready(base, time.monotonic() + 180))
        print(f"banks pid {banks_proc.pid} {bank_urls}; API pid {api_proc.pid} at {base} "
              f"({args.workers} workers); load average {load_average()}", flush=True)
        results: list[dict[str, Any]] = []
        delivered = {code: 0 for code in bank_urls}
        # a served API is warm: its pools connected, its statements prepared (not counted)
        warm = subprocess.run(
            [sys.executable, __file__, "--role", "customers", "--base", base, "--key", key,
             "--banks", args.banks, "--accounts", json.dumps(ready["customers"]),
             "--suppliers", str(args.suppliers), "--callers", "16", "--seconds", "3",
             "--tag", "warm-up"], capture_output=True, text=True, cwd=ROOT, check=False)
        if warm.returncode != 0:
            raise SystemExit(f"the warm-up failed: {warm.stderr[-2000:]}")
        asyncio.run(bank_deliveries(bank_urls, delivered))
        for code, seen in asyncio.run(bank_deliveries(bank_urls, {})).items():
            delivered[code] = seen["total"]
        def planned() -> Any:
            # closed loops first; then open loops at fractions of the best closed-loop
            # throughput just measured (read lazily: `results` is filled by then)
            for n_procs, callers in parse_loads(args.loads):
                yield n_procs, callers, 0.0, f"{n_procs}x{callers}"
            capacity = max((r["checkouts_per_second"] for r in results), default=0.0)
            for fraction in (float(f) for f in args.open.split(",") if f.strip()):
                rate = round(capacity * fraction, 1)
                if rate > 0:
                    yield 1, 0, rate, f"open{round(100 * fraction)}pct"
            # and at fixed rates, the same in every run (to compare two builds)
            for rate in (float(r) for r in args.open_rates.split(",") if r.strip()):
                yield 1, 0, rate, f"open{rate:g}".replace(".", "_") + "ps"

        for n_procs, callers, rate, label in planned():
            loaders = [subprocess.Popen(
                [sys.executable, __file__, "--role", "customers", "--base", base, "--key", key,
                 "--banks", args.banks, "--accounts", json.dumps(ready["customers"]),
                 "--suppliers", str(args.suppliers),
                 "--callers", str(callers), "--seconds", str(args.seconds),
                 "--rate", str(rate), "--tag", f"{label}-{p}",
                 *(["--poll"] if args.poll else [])], stdout=subprocess.PIPE,
                text=True, cwd=ROOT)
                for p in range(n_procs)]
            servers = {"banks": banks_proc.pid}
            for w, pid in enumerate(children_of(api_proc.pid) if args.workers > 1
                                    else [api_proc.pid]):
                servers[f"api-{w}"] = pid
            cpu_before = {name: cpu_seconds(pid) for name, pid in servers.items()}
            # the API's pooled sessions (a backend that closed before the end is missed:
            # a lower bound)
            pg_before = cpu_of(backends_of(plain, schema))
            busy_before = machine_busy()
            profiles = []
            if args.profile and label == args.profile_load:
                time.sleep(min(2.0, args.seconds / 4))  # past the start
                pids = {"banks": banks_proc.pid}
                workers = children_of(api_proc.pid) if args.workers > 1 else [api_proc.pid]
                for w, pid in enumerate(workers):
                    pids[f"api-{w}"] = pid
                for p, loader in enumerate(loaders):
                    pids[f"customers-{p}"] = loader.pid
                profiles = start_profiles(Path(args.profile), pids, args.seconds / 2)
            outs = [json.loads(loader.communicate()[0].strip().splitlines()[-1])
                    for loader in loaders]
            for _, _, spy in profiles:
                spy.wait()
            cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in servers.items()}
            pg_after = cpu_of(backends_of(plain, schema))
            cpu["postgres"] = sum(pg_after[p] - pg_before.get(p, 0.0) for p in pg_after)
            busy_after = machine_busy()
            machine = (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1)
            cpu["customers"] = sum(o["cpu_seconds"] for o in outs)
            notes = asyncio.run(bank_deliveries(bank_urls, delivered))
            notify = []
            retried = 0
            for code, seen in notes.items():
                delivered[code] = seen["total"]
                for d in seen["deliveries"]:
                    if d["elapsed_ms"] is not None and d["status_code"] is not None:
                        notify.append(d["elapsed_ms"] / 1000)
                    retried += d["attempt"] > 1
            create = [t for o in outs for t in o["create"]]
            whole = [t for o in outs for t in o["whole"]]
            wall = max(o["ended"] for o in outs) - min(o["started"] for o in outs)
            row = {"load": label, "customers": n_procs * callers, "checkouts": len(whole),
                   # open loop: the arrival rate offered (checkouts/s), and how late the
                   # load process ever was in starting an arrival (it shares the cores)
                   "offered_per_second": rate,
                   "arrival_lag_max_ms": ms(max(o.get("arrival_lag_max", 0.0) for o in outs)),
                   "checkouts_per_second": round(len(whole) / wall, 1),
                   "create_p50_ms": ms(pct(create, 0.5)), "create_p99_ms": ms(pct(create, 0.99)),
                   "notify_p50_ms": ms(pct(notify, 0.5)), "notify_p99_ms": ms(pct(notify, 0.99)),
                   "checkout_p50_ms": ms(pct(whole, 0.5)), "checkout_p99_ms": ms(pct(whole, 0.99)),
                   "gets_per_checkout": round(sum(o["gets"] for o in outs) / max(len(whole), 1), 2),
                   "notify_retries": retried,
                   "failures": sum(len(o["failures"]) for o in outs),
                   # CPU per checkout, by process (ms): what each checkout costs each side
                   "cpu_ms_per_checkout": {name: round(1000 * c / max(len(whole), 1), 1)
                                           for name, c in cpu.items()},
                   "machine_cpu_busy": round(machine, 2),
                   "load_average": load_average()}
            for o in outs:
                for failure in o["failures"][:3]:
                    print(f"  failure: {failure}", flush=True)
            results.append(row)
            who = (f"open loop, {rate} arrivals/s offered, arrival lag max "
                   f"{row['arrival_lag_max_ms']} ms" if rate else
                   f"{n_procs} process(es) x {callers} customers")
            print(f"{label:>6} ({who}): "
                  f"{row['checkouts_per_second']:7.1f} checkouts/s | create p50 "
                  f"{row['create_p50_ms']} p99 {row['create_p99_ms']} ms | notify p50 "
                  f"{row['notify_p50_ms']} p99 {row['notify_p99_ms']} ms | checkout p50 "
                  f"{row['checkout_p50_ms']} p99 {row['checkout_p99_ms']} ms | "
                  f"{row['checkouts']} checkouts, {row['failures']} failures | load average "
                  f"{row['load_average']}", flush=True)
            print(f"        CPU ms per checkout: {row['cpu_ms_per_checkout']}; the machine's CPUs "
                  f"were {100 * row['machine_cpu_busy']:.0f}% busy", flush=True)
            for name, path, _ in profiles:
                print(f"profile {name} ({path}):")
                for line in summarize_profile(path):
                    print(line)
        figures["loads"] = results
        figures |= asyncio.run(check_books(url))
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
    if not args.skip_ceiling:
        ceiling = run_ceiling(args.pg_url, args.ceiling_seconds)
        figures["ceiling"] = ceiling
        hundred = next((r for r in figures["loads"] if r["customers"] == 100), None)
        if hundred and ceiling.get("rpc_hot_32_clients"):
            figures["ratio_checkout_vs_ceiling_hot"] = round(
                hundred["checkouts_per_second"] / ceiling["rpc_hot_32_clients"], 4)
    figures["load_average_end"] = load_average()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", default="driver", choices=["driver", "customers"])
    parser.add_argument("--workers", type=int, default=2,
                        help="API worker processes (default 2: one per core)")
    parser.add_argument("--loads", default="1x1,1x100,1x128,2x32",
                        help="load processes x customers each, comma-separated")
    parser.add_argument("--seconds", type=float, default=15, help="duration of each load")
    parser.add_argument("--open", default="0.5,0.8",
                        help="open-loop loads after the closed ones: arrival rates as "
                             "fractions of the best closed-loop checkouts/s (empty: none)")
    parser.add_argument("--open-rates", default="",
                        help="open-loop loads at these arrival rates (checkouts/s), e.g. 2,3")
    parser.add_argument("--rate", type=float, default=0,
                        help="(customers process) open-loop arrivals per second")
    parser.add_argument("--suppliers", type=int, default=100)
    parser.add_argument("--banks", default="restbank,unionpay,smbank")
    parser.add_argument("--ceiling-seconds", type=float, default=3)
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--profile", default="", help="directory for py-spy profiles")
    parser.add_argument("--profile-load", default="1x100")
    parser.add_argument("--pg-url", default=PG_URL)
    # the customers' process
    parser.add_argument("--base", default="")
    parser.add_argument("--key", default="")
    parser.add_argument("--callers", type=int, default=1)
    parser.add_argument("--tag", default="c")
    parser.add_argument("--accounts", default="{}")
    parser.add_argument("--poll", action="store_true",
                        help="the return page polls the intent (before `?wait=`) instead of "
                             "asking once with wait=10")
    args = parser.parse_args()
    if args.role == "customers":
        customers_main(args)
        return
    figures = driver(args)
    for row in figures["loads"]:
        offered = (f" ({row['offered_per_second']}/s offered)" if row["offered_per_second"]
                   else "")
        print(f"load {row['load']}{offered}: {row['checkouts_per_second']} checkouts/s, "
              f"create p50/p99 "
              f"{row['create_p50_ms']}/{row['create_p99_ms']} ms, notify p50/p99 "
              f"{row['notify_p50_ms']}/{row['notify_p99_ms']} ms")
    for name, value in figures.get("ceiling", {}).items():
        print(f"ceiling {name}: {value:.0f} entries/s")
    if "ratio_checkout_vs_ceiling_hot" in figures:
        print(f"ratio checkout_vs_ceiling_hot: {figures['ratio_checkout_vs_ceiling_hot']}")
    print(f"paid {figures['paid']}, verify ok {figures['verify_ok']}, lanes {figures['lanes']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
