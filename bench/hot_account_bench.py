"""`ledger.post` in the caller's transaction, 32 callers, on PostgreSQL: uniform accounts
against one hot unlimited account split into lanes, and against one hot account of one
lane (issue #16, part 1).

Workloads (each for --seconds, after an untimed warm-up), 32 callers (asyncio tasks) with
a pooled connection each, each looping

    async with engine.begin() as conn:
        await ledger.post(conn, EntryRequest(...))   # two postings

  * uniform: debit and credit two random distinct accounts of --accounts;
  * hot, lanes: every entry credits one income account of --lanes lanes (the debit: a
    random other account);
  * hot, one lane: the same against an income account of one lane (what every hot
    account was before lanes: every caller queues on its row).

Then `ledger.verify` proves the books, and prints `ratio post_hot_vs_uniform_32: <x>`
(goal >= 0.8) and, for comparison, `ratio post_hot_one_lane_vs_uniform_32: <x>`.

Usage: .venv/bin/python bench/hot_account_bench.py [--seconds N] [--accounts N]
                                                   [--lanes N] [--pg-url URL]
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
)
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
from ledger import AccountSpec, AccountType, EntryRequest, Posting
from paycore import db as paycore_db
from paycore.logging import configure_logging
from paycore.startup_heap import freeze_startup_heap

SCHEMA = "bench_hot_account"
CALLERS = 32
CURRENCY = "USD"
WARM_UP = 1.0
GOAL = 0.8

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
        "search_path": SCHEMA}}, pool_size=CALLERS, max_overflow=0)
    await paycore_db.upgrade(engine)
    return engine


def request(debit: int, credit: int, rng: random.Random) -> EntryRequest:
    amount = Money(Decimal(rng.randint(1, 10_000)).scaleb(-2), CURRENCY)
    return EntryRequest(idempotency_key=f"hot-{_run}-{next(_keys)}", kind="bench.transfer",
                        postings=(Posting(debit, debit=amount), Posting(credit, credit=amount)))


async def callers(engine: AsyncEngine, ids: list[int], seconds: float,
                  hot: int | None) -> float:
    """`CALLERS` tasks, each posting one entry per transaction of its own; `hot`: the
    account every entry credits (None: uniform)."""
    done = 0
    stop = time.monotonic() + seconds

    async def caller(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        while time.monotonic() < stop:
            if hot is None:
                debit, credit = rng.sample(ids, 2)
            else:
                debit, credit = rng.choice(ids), hot
            async with engine.begin() as conn:
                await ledger.post(conn, request(debit, credit, rng))
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(caller(seed) for seed in range(CALLERS)))
    return done / (time.monotonic() - started)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="duration of each workload (default 10)")
    parser.add_argument("--accounts", type=int, default=10_000,
                        help="accounts for the uniform workload (default 10,000)")
    parser.add_argument("--lanes", type=int, default=CALLERS,
                        help=f"lanes of the hot account (default {CALLERS})")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    configure_logging("json", "WARNING", force=True)
    pg_url = asyncpg_url(args.pg_url)

    engine = await fresh_engine(pg_url)
    figures: dict[str, float] = {}
    try:
        ids = await open_accounts(engine, args.accounts)
        async with engine.begin() as conn:
            laned = await ledger.open_account(conn, AccountSpec(
                "6001.income.hot", "Hot income, in lanes", AccountType.INCOME, CURRENCY,
                lanes=args.lanes))
            single = await ledger.open_account(conn, AccountSpec(
                "6001.income.single", "Hot income, one lane", AccountType.INCOME, CURRENCY))
        await callers(engine, ids, WARM_UP, None)  # untimed: plans, pool, caches
        await callers(engine, ids, WARM_UP, laned.id)
        freeze_startup_heap()
        for name, hot, label in (
                ("post_uniform_32", None, "uniform"),
                ("post_hot_32", laned.id, f"one hot account, {args.lanes} lanes"),
                ("post_hot_one_lane_32", single.id, "one hot account, one lane")):
            figures[name] = await callers(engine, ids, args.seconds, hot)
            print(f"ledger.post postgresql, {label}, {CALLERS} callers: "
                  f"{figures[name]:8.0f} entries/s", flush=True)
        ok = print_check("postgresql", await check_books(engine))
    finally:
        await engine.dispose()

    ratios = {
        "post_hot_vs_uniform_32": figures["post_hot_32"] / figures["post_uniform_32"],
        "post_hot_one_lane_vs_uniform_32":
            figures["post_hot_one_lane_32"] / figures["post_uniform_32"],
    }
    print(f"ratio post_hot_one_lane_vs_uniform_32: "
          f"{ratios['post_hot_one_lane_vs_uniform_32']:.2f}  (before lanes)")
    print(f"ratio post_hot_vs_uniform_32: {ratios['post_hot_vs_uniform_32']:.2f}  "
          f"(goal >= {GOAL:g})", flush=True)
    print(json.dumps({"post": {k: round(v) for k, v in figures.items()},
                      "ratios": {k: round(v, 2) for k, v in ratios.items()}}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
