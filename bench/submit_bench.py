"""The coalescing write path (`ledger.Coalescer.submit`) against the raw-asyncpg ceiling
(../shared/bench/pg_ceiling.py), run in the same invocation, on PostgreSQL.

Workloads (each for --seconds, after an untimed warm-up):
  * submit, uniform: 32 callers (asyncio tasks) in one process, each looping
        entry = await coalescer.submit(EntryRequest(...))
    i.e. each awaiting its own durable entry (answered after its batch's COMMIT), two
    postings between two random distinct accounts (uniform over --accounts accounts);
  * submit, hot account: the same, every entry crediting one account.
The ceiling's comparable figures are its one-round-trip ones (a server-side function per
entry, autocommit): `rpc_uniform_32_clients` and `rpc_hot_32_clients`. Goals (issue #16):
uniform >= 2x, hot account >= 5x.

Then `ledger.verify` proves the books, and each ratio is printed as
`ratio <name>: <number>`; the last line is one JSON object with every figure.

Usage: .venv/bin/python bench/submit_bench.py [--seconds N] [--accounts N] [--pg-url URL]
                                              [--skip-ceiling]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import time
from decimal import Decimal

import asyncpg
from ledger_bench import (  # (this directory: the scripts run from here)
    DEFAULT_PG_URL,
    asyncpg_url,
    check_books,
    open_accounts,
    plain_dsn,
    print_check,
    run_ceiling,
)
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
from ledger import EntryRequest, Posting
from paycore import db as paycore_db
from paycore.logging import configure_logging
from paycore.startup_heap import freeze_startup_heap

SCHEMA = "bench_submit"
CALLERS = 32
CURRENCY = "USD"
WARM_UP = 1.0
RATIOS = {
    # name: (ours, the ceiling's, goal)
    "submit_uniform_32": ("submit_uniform_32", "rpc_uniform_32_clients", 2.0),
    "submit_hot_32": ("submit_hot_32", "rpc_hot_32_clients", 5.0),
}

_keys = itertools.count()
_run = f"{random.getrandbits(32):08x}"


async def fresh_engine(pg_url: str) -> AsyncEngine:
    conn = await asyncpg.connect(plain_dsn(pg_url))
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.execute(f"CREATE SCHEMA {SCHEMA}")
    finally:
        await conn.close()
    engine = ledger.create_engine(pg_url, connect_args={"server_settings": {
        "search_path": SCHEMA}}, pool_size=4, max_overflow=0)
    await paycore_db.upgrade(engine)
    return engine


def request(debit: int, credit: int, rng: random.Random) -> EntryRequest:
    amount = Money(Decimal(rng.randint(1, 10_000)).scaleb(-2), CURRENCY)
    return EntryRequest(idempotency_key=f"submit-{_run}-{next(_keys)}", kind="bench.transfer",
                        postings=(Posting(debit, debit=amount), Posting(credit, credit=amount)))


async def callers(coalescer: ledger.Coalescer, ids: list[int], seconds: float, *,
                  hot: bool) -> float:
    """`CALLERS` tasks, each submitting one entry at a time and awaiting it."""
    done = 0
    stop = time.monotonic() + seconds

    async def caller(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        while time.monotonic() < stop:
            if hot:
                debit, credit = rng.choice(ids[1:]), ids[0]
            else:
                debit, credit = rng.sample(ids, 2)
            await coalescer.submit(request(debit, credit, rng))
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(caller(seed) for seed in range(CALLERS)))
    return done / (time.monotonic() - started)


async def workload(coalescer: ledger.Coalescer, ids: list[int], seconds: float, *,
                   hot: bool, label: str) -> float:
    batches, entries = coalescer.batches, coalescer.entries
    rate = await callers(coalescer, ids, seconds, hot=hot)
    n = coalescer.batches - batches
    mean = (coalescer.entries - entries) / n if n else 0
    print(f"{label}: {rate:8.0f} entries/s ({n} transactions, {mean:.1f} entries each)",
          flush=True)
    return rate


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="duration of each workload (default 10)")
    parser.add_argument("--accounts", type=int, default=10_000,
                        help="accounts to spread entries over (default 10,000, the ceiling's)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--skip-ceiling", action="store_true")
    args = parser.parse_args()
    configure_logging("json", "WARNING", force=True)
    pg_url = asyncpg_url(args.pg_url)

    engine = await fresh_engine(pg_url)
    figures: dict[str, float] = {}
    try:
        t = time.monotonic()
        ids = await open_accounts(engine, args.accounts)
        print(f"opened {len(ids)} accounts in {time.monotonic() - t:.1f} s", flush=True)
        coalescer = ledger.Coalescer(engine)
        await callers(coalescer, ids, WARM_UP, hot=False)  # untimed: plans, pool, caches
        freeze_startup_heap()
        figures["submit_uniform_32"] = await workload(
            coalescer, ids, args.seconds, hot=False,
            label=f"ledger.submit postgresql, uniform, {CALLERS} callers")
        figures["submit_hot_32"] = await workload(
            coalescer, ids, args.seconds, hot=True,
            label=f"ledger.submit postgresql, one hot account, {CALLERS} callers")
        await coalescer.close()
        ok = print_check("postgresql", await check_books(engine))
    finally:
        await engine.dispose()

    ceiling = {} if args.skip_ceiling else run_ceiling(pg_url, args.seconds)
    ratios = {}
    for name, (ours, theirs, goal) in RATIOS.items():
        if ceiling.get(theirs):
            ratios[name] = figures[ours] / ceiling[theirs]
            print(f"ratio {name}: {ratios[name]:.2f}  (ceiling {theirs} = "
                  f"{ceiling[theirs]:.0f} entries/s; goal >= {goal:g})", flush=True)
    print(json.dumps({"submit": {k: round(v) for k, v in figures.items()},
                      "ceiling": {k: round(v) for k, v in ceiling.items()},
                      "ratios": {k: round(v, 2) for k, v in ratios.items()}}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
