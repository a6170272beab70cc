"""The coalescing write path (`ledger.Coalescer.submit`) against the raw-asyncpg ceiling
(../shared/bench/pg_ceiling.py), run in the same invocation, on PostgreSQL.

Workloads (each for --seconds, after an untimed warm-up), on 10,000 accounts opened and then
analyzed (VACUUM ANALYZE, as an operator does after a bulk load: the write functions' plans
are made from the statistics, and without them they read every account on each call):
  * submit, uniform: 32 callers (asyncio tasks) in one process, each looping
        entry = await coalescer.submit(EntryRequest(...))
    i.e. each awaiting its own durable entry (answered after its batch's COMMIT), two
    postings between two random distinct accounts (uniform over --accounts accounts);
  * submit, hot account: the same, every entry crediting one account (of one lane), and
    again crediting one account of 16 lanes, as paycore opens its hot accounts (with one
    writer the coalescer posts to one lane of it; with --writers N, to up to N);
  * submit, uniform, 128 callers in one process;
  * submit, uniform, 2 processes x 32 callers (each process its own coalescer), started
    together;
  * post_many: one caller, `ledger.post_many` with 1000 entries per transaction (the engine
    under `submit`).
Each submit workload prints its rate, its transactions and their mean size, and the p50 and
p99 latency of one `submit` (queued to answered).

The ceiling's comparable figures are its one-round-trip ones (a server-side function per
entry, autocommit), `rpc_uniform_32_clients` and `rpc_hot_32_clients`, and its batched one,
`batched_1000`. Goals (issue #16): uniform >= 2x, hot account >= 5x, post_many >= 0.8x.
Beside them, the bound: the ceiling's own batched transaction (its `post_batch`, nothing
of paycore's) with 32 entries from one client, and 16 entries from each of two clients at
once. 32 callers each awaiting its own entry never put more than 32 entries in flight, so
what those reach is the most a coalescer of 32 callers can reach while doing at least the
ceiling's work per entry with durable commits; it is printed as a multiple of
`rpc_uniform_32_clients`, next to the uniform goal.

The two sides take turns in --rounds rounds (default 3; ~4 minutes each at the default
10 s), as bench/ledger_bench.py does, because this 2-core VM's speed swings within
minutes: each round opens new books, runs the three 32-caller workloads, the ceiling
script and the bound, then the 128-caller, two-process and post_many workloads (the
ceiling's batched figures come last in its run too), and `ledger.verify`. Each `ratio`
line is the median of the rounds' ratios, each round's beside it; the last line is one
JSON object with every figure, each round's included.

Usage: .venv/bin/python bench/submit_bench.py [--seconds N] [--rounds N] [--accounts N]
                                              [--pg-url URL] [--skip-ceiling] [--writers N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from ledger_bench import (  # (this directory: the scripts run from here)
    CEILING,
    DEFAULT_PG_URL,
    asyncpg_url,
    batched,
    check_books,
    open_accounts,
    plain_dsn,
    print_check,
    rounds_parser,
    run_ceiling,
)
from machine import machine_speed
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
from ledger import EntryRequest, Posting
from paycore import db as paycore_db
from paycore.logging import configure_logging
from paycore.startup_heap import freeze_startup_heap

HERE = Path(__file__).resolve()
SCHEMA = "bench_submit"
CALLERS = 32
MANY_CALLERS = 128
PROCESSES = 2
BATCH = 1000
CURRENCY = "USD"
WARM_UP = 1.0
POOL_SIZE = 8
RATIOS = {
    # name: (ours, the ceiling's, goal)
    "submit_uniform_32": ("submit_uniform_32", "rpc_uniform_32_clients", 2.0),
    "submit_hot_32": ("submit_hot_32", "rpc_hot_32_clients", 5.0),
    "submit_hot_16_lanes_32": ("submit_hot_16_lanes_32", "rpc_hot_32_clients", 5.0),
    "post_many_1000": ("post_many_1000", "batched_1000", 0.8),
}
#: (clients, entries a transaction) of the ceiling's own batched transaction: the bound
BOUNDS = ((1, 32), (2, 16))

_keys = itertools.count()
_run = f"{random.getrandbits(32):08x}-{os.getpid()}"


def engine_of(pg_url: str) -> AsyncEngine:
    return ledger.create_engine(pg_url, connect_args={"server_settings": {
        "search_path": SCHEMA}}, pool_size=POOL_SIZE, max_overflow=0)


async def fresh_engine(pg_url: str) -> AsyncEngine:
    conn = await asyncpg.connect(plain_dsn(pg_url))
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.execute(f"CREATE SCHEMA {SCHEMA}")
    finally:
        await conn.close()
    engine = engine_of(pg_url)
    await paycore_db.upgrade(engine)
    return engine


async def analyze(pg_url: str) -> None:
    """VACUUM ANALYZE the accounts just opened (as ledger_bench.settle_pg does): a plan
    made before any statistics exist reads every account on each call."""
    conn = await asyncpg.connect(plain_dsn(pg_url), server_settings={"search_path": SCHEMA})
    try:
        await conn.execute("VACUUM ANALYZE accounts, account_balances")
    finally:
        await conn.close()


def request(debit: int, credit: int, rng: random.Random) -> EntryRequest:
    amount = Money(Decimal(rng.randint(1, 10_000)).scaleb(-2), CURRENCY)
    return EntryRequest(idempotency_key=f"submit-{_run}-{next(_keys)}", kind="bench.transfer",
                        postings=(Posting(debit, debit=amount), Posting(credit, credit=amount)))


async def callers(coalescer: ledger.Coalescer, ids: list[int], seconds: float, *,
                  hot: int | None, n: int = CALLERS,
                  latencies: list[int] | None = None) -> float:
    """`n` tasks, each submitting one entry at a time and awaiting it (each crediting the
    account `hot`, if given); each submit's latency (microseconds) into `latencies`."""
    done = 0
    stop = time.monotonic() + seconds
    clock = time.perf_counter_ns

    async def caller(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        while time.monotonic() < stop:
            if hot is not None:
                debit, credit = rng.choice(ids[1:]), hot
            else:
                debit, credit = rng.sample(ids, 2)
            entry = request(debit, credit, rng)
            t = clock()
            await coalescer.submit(entry)
            if latencies is not None:
                latencies.append((clock() - t) // 1000)
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(caller(seed) for seed in range(n)))
    return done / (time.monotonic() - started)


def percentiles(latencies: list[int]) -> str:
    if len(latencies) < 2:
        return "no latencies"
    cuts = statistics.quantiles(latencies, n=100)
    return f"p50 {cuts[49] / 1000:.1f} ms, p99 {cuts[98] / 1000:.1f} ms"


async def workload(coalescer: ledger.Coalescer, ids: list[int], seconds: float, *,
                   hot: int | None, label: str, n: int = CALLERS) -> tuple[float, list[int]]:
    batches, entries = coalescer.batches, coalescer.entries
    latencies: list[int] = []
    rate = await callers(coalescer, ids, seconds, hot=hot, n=n, latencies=latencies)
    k = coalescer.batches - batches
    mean = (coalescer.entries - entries) / k if k else 0
    print(f"{label}: {rate:8.0f} entries/s ({k} transactions, {mean:.1f} entries each; "
          f"{percentiles(latencies)}; load {os.getloadavg()[0]:.1f})", flush=True)
    return rate, latencies


async def account_ids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.scalars(sa.text(
            "SELECT id FROM accounts WHERE code LIKE 'bench:%' ORDER BY id"))).all())


async def child(pg_url: str, seconds: float, start_at: float, writers: int | None) -> None:
    """One of the processes of the 2 x 32 workload: warm up, wait for the common start,
    submit for `seconds`, print one JSON line (rate, count, latencies)."""
    engine = engine_of(pg_url)
    try:
        ids = await account_ids(engine)
        coalescer = ledger.Coalescer(engine, **({"writers": writers} if writers else {}))
        await callers(coalescer, ids, WARM_UP, hot=None)
        freeze_startup_heap()
        await asyncio.sleep(max(0.0, start_at - time.time()))
        latencies: list[int] = []
        batches, entries = coalescer.batches, coalescer.entries
        rate = await callers(coalescer, ids, seconds, hot=None, latencies=latencies)
        await coalescer.close()
        print(json.dumps({"rate": rate, "latencies": latencies,
                          "batches": coalescer.batches - batches,
                          "entries": coalescer.entries - entries}), flush=True)
    finally:
        await engine.dispose()


async def processes(pg_url: str, seconds: float, writers: int | None) -> tuple[float, list[int]]:
    """`PROCESSES` processes of `CALLERS` callers each, each its own coalescer, together."""
    start_at = time.time() + WARM_UP + 4
    argv = [sys.executable, str(HERE), "--child", "--pg-url", pg_url,
            "--seconds", str(seconds), "--start-at", str(start_at)]
    if writers:
        argv += ["--writers", str(writers)]
    procs = [await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
             for _ in range(PROCESSES)]
    outs = [await p.communicate() for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit("a submitting process failed")
    results = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outs]
    latencies = [x for r in results for x in r["latencies"]]
    rate = sum(r["rate"] for r in results)
    k = sum(r["batches"] for r in results)
    mean = sum(r["entries"] for r in results) / k if k else 0
    print(f"ledger.submit postgresql, uniform, {PROCESSES} processes x {CALLERS} callers: "
          f"{rate:8.0f} entries/s ({k} transactions, {mean:.1f} entries each; "
          f"{percentiles(latencies)}; load {os.getloadavg()[0]:.1f})", flush=True)
    return rate, latencies


def ceiling_batched(pg_url: str, seconds: float, clients: int, size: int) -> float:
    """The bound for a coalescer of 32 callers: the ceiling's own batched transaction
    (`post_batch` of ../shared/bench/pg_ceiling.py, its SQL and nothing more) with `size`
    entries a transaction, on `clients` connections at once, on the tables the ceiling
    just left. 32 callers each awaiting its own entry never have more than 32 entries in
    flight, so no design doing at least the ceiling's work per entry, with durable
    commits, can pass `clients` x `size` = 32 of these. The script runs its workloads when
    loaded, so its functions are taken from its text (everything before that last line)."""
    text = CEILING.read_text().rsplit("asyncio.run(main())", 1)[0]
    space: dict[str, Any] = {"__name__": "pg_ceiling"}
    exec(compile(text, str(CEILING), "exec"), space)  # the shared ceiling's own code
    post_batch, accounts = space["post_batch"], space["N_ACCOUNTS"]

    async def run() -> float:
        conns = [await asyncpg.connect(plain_dsn(pg_url),
                                       server_settings={"search_path": "ceiling"})
                 for _ in range(clients)]
        done = 0
        stop = time.monotonic() + seconds

        async def client(c: asyncpg.Connection) -> None:
            nonlocal done
            rng = random.Random(id(c))
            while time.monotonic() < stop:
                pairs = [(*rng.sample(range(accounts), 2), rng.randint(1, 10_000))
                         for _ in range(size)]
                try:
                    await post_batch(c, pairs)
                except asyncpg.DeadlockDetectedError:
                    continue
                done += size

        started = time.monotonic()
        try:
            await asyncio.gather(*(client(c) for c in conns))
        finally:
            for c in conns:
                await c.close()
        return done / (time.monotonic() - started)

    return asyncio.run(run())


async def round_of(pg_url: str, seconds: float, accounts: int, options: dict[str, int],
                   skip_ceiling: bool) -> dict[str, Any]:
    """One round on new books: the three 32-caller workloads, the ceiling and the bound,
    then the 128-caller, two-process and post_many workloads (the ceiling's own batched
    figures come last in its run too), then `ledger.verify`."""
    engine = await fresh_engine(pg_url)
    figures: dict[str, float] = {}
    latency: dict[str, str] = {}
    try:
        t = time.monotonic()
        ids = await open_accounts(engine, accounts, parallel=4)
        async with engine.begin() as conn:
            hot16 = (await ledger.open_account(conn, ledger.AccountSpec(
                "bench:hot16", "bench hot account in 16 lanes", ledger.AccountType.LIABILITY,
                CURRENCY, lanes=16))).id
        await analyze(pg_url)
        print(f"opened {len(ids)} accounts in {time.monotonic() - t:.1f} s", flush=True)
        coalescer = ledger.Coalescer(engine, **options)
        await callers(coalescer, ids, WARM_UP, hot=None)  # untimed: plans, pool, caches
        freeze_startup_heap()
        workloads: list[tuple[str, int | None, int, str]] = [
            ("submit_uniform_32", None, CALLERS, f"uniform, {CALLERS} callers"),
            ("submit_hot_32", ids[0], CALLERS, f"one hot account, {CALLERS} callers"),
            ("submit_hot_16_lanes_32", hot16, CALLERS,
             f"one hot account of 16 lanes, {CALLERS} callers"),
        ]
        for name, hot, n, label in workloads:
            figures[name], lat = await workload(
                coalescer, ids, seconds, hot=hot, n=n,
                label=f"ledger.submit postgresql, {label}")
            latency[name] = percentiles(lat)
        ceiling: dict[str, float] = {}
        if not skip_ceiling:
            ceiling = await asyncio.to_thread(run_ceiling, pg_url, seconds)
            for clients, size in BOUNDS:
                name = f"bound_batched_{size}x{clients}"
                ceiling[name] = await asyncio.to_thread(
                    ceiling_batched, pg_url, seconds, clients, size)
                print(f"  ceiling | its batched transaction, {size} entries each, {clients} "
                      f"client(s) at once (the bound): {ceiling[name]:8.0f} entries/s",
                      flush=True)
        name = f"submit_uniform_{MANY_CALLERS}"
        figures[name], lat = await workload(
            coalescer, ids, seconds, hot=None, n=MANY_CALLERS,
            label=f"ledger.submit postgresql, uniform, {MANY_CALLERS} callers")
        latency[name] = percentiles(lat)
        await coalescer.close()
        name = f"submit_uniform_{PROCESSES}x{CALLERS}"
        figures[name], lat = await processes(pg_url, seconds, options.get("writers"))
        latency[name] = percentiles(lat)
        await batched(engine, ids, BATCH, WARM_UP)  # untimed
        figures["post_many_1000"], _ = await batched(engine, ids, BATCH, seconds)
        print(f"ledger.post_many postgresql, {BATCH}/transaction, 1 caller: "
              f"{figures['post_many_1000']:8.0f} entries/s (load {os.getloadavg()[0]:.1f})",
              flush=True)
        ok = print_check("postgresql", await check_books(engine))
    finally:
        await engine.dispose()
    ratios = {name: figures[ours] / ceiling[theirs]
              for name, (ours, theirs, _) in RATIOS.items() if ceiling.get(theirs)}
    return {"submit": figures, "latency": latency, "ceiling": ceiling, "ratios": ratios,
            "verified": ok}


async def main() -> int:
    parser = rounds_parser(__doc__)
    parser.add_argument("--accounts", type=int, default=10_000,
                        help="accounts to spread entries over (default 10,000, the ceiling's)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--writers", type=int, default=None,
                        help="the coalescer's writers (default: its own default)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    configure_logging("json", "WARNING", force=True)
    pg_url = asyncpg_url(args.pg_url)
    if args.child:
        await child(pg_url, args.seconds, args.start_at, args.writers)
        return 0
    options = {"writers": args.writers} if args.writers else {}
    print(f"coalescer: {options or 'defaults'}", flush=True)
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"this VM's speed of the hour: sum(range(10**7)) {machine_speed():.2f} s", flush=True)

    # The two sides take turns, round after round (as bench/ledger_bench.py does): this
    # machine's speed swings within minutes, and a swing then falls on both sides of a
    # ratio instead of on one.
    rounds = []
    for n in range(1, args.rounds + 1):
        print(f"round {n} of {args.rounds}", flush=True)
        rounds.append(await round_of(pg_url, args.seconds, args.accounts, options,
                                     args.skip_ceiling))
        for name, ratio in rounds[-1]["ratios"].items():
            print(f"  round {n} {name}: {ratio:.2f}", flush=True)

    figures = {k: statistics.median(r["submit"][k] for r in rounds) for k in rounds[0]["submit"]}
    ceiling = {k: statistics.median(r["ceiling"][k] for r in rounds)
               for k in rounds[0]["ceiling"]}
    for name, value in figures.items():
        print(f"paycore {name}: {value:8.0f} entries/s (median of {len(rounds)}; latency of "
              f"the last round {rounds[-1]['latency'].get(name, '-')})")
    for name, value in ceiling.items():
        print(f"ceiling {name}: {value:8.0f} entries/s (median of {len(rounds)})")
    ratios = {name: statistics.median(r["ratios"][name] for r in rounds)
              for name in rounds[0]["ratios"]}
    for name, ratio in ratios.items():
        _, theirs, goal = RATIOS[name]
        each = ", ".join(f"{r['ratios'][name]:.2f}" for r in rounds)
        print(f"ratio {name}: {ratio:.2f}  (ceiling {theirs}; goal >= {goal:g}; median of the "
              f"rounds: {each})", flush=True)
    if ceiling.get("rpc_uniform_32_clients"):
        for clients, size in BOUNDS:
            bound = ceiling[f"bound_batched_{size}x{clients}"] / ceiling["rpc_uniform_32_clients"]
            print(f"bound: the ceiling's own batched transaction, {size} entries x {clients} "
                  f"at once, reaches {bound:.2f}x its rpc_uniform_32_clients (the most 32 "
                  "callers each awaiting its own entry can reach with its work per entry)")
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"sum(range(10**7)) {machine_speed():.2f} s", flush=True)
    print(json.dumps({"submit": {k: round(v) for k, v in figures.items()},
                      "latency": rounds[-1]["latency"],
                      "ceiling": {k: round(v) for k, v in ceiling.items()},
                      "ratios": {k: round(v, 2) for k, v in ratios.items()},
                      "each_round": [{k: {n: round(v, 2) for n, v in r[k].items()}
                                      for k in ("submit", "ceiling", "ratios")}
                                     for r in rounds]}))
    return 0 if all(r["verified"] for r in rounds) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
