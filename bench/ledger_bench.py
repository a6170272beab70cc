"""paycore ledger benchmark: posts through the public `ledger` API and compares with the
raw-asyncpg ceiling (../shared/bench/pg_ceiling.py) run in the same invocation.

Workloads (each for --seconds, on PostgreSQL and on a temporary SQLite file):
  * per-entry: 32 concurrent callers (asyncio tasks), each looping
        async with engine.begin() as conn: await ledger.post(conn, EntryRequest(...))
    with two postings between two random distinct accounts (uniform over 10,000 accounts);
  * batched: one caller, `ledger.post_many` with 1000 entries per transaction.
SQLite serialises writers, so it also runs the per-entry workload with 1 caller; the
32-caller figure is reported all the same.

The caller process freezes its startup heap once it is set up (accounts opened, pool
warmed), as `paycore serve` does once its app is built (`paycore.startup_heap`): otherwise
CPython's full collections, which a batch of entries triggers about twice a second, walk the
~130,000 objects of the imports and the pool each time (measured: 12 us per batched entry;
frozen: 3 us). `--no-freeze` measures without it.

The PostgreSQL workloads and the ceiling take turns, in --rounds rounds (default 3): each
round runs paycore's per-entry workload, the whole ceiling script (its per-entry workloads
come first, its batched ones last), then paycore's batched workload, and prints that
round's ratios, so each pair is measured as close together as the ceiling script allows.
This 2-core machine's speed swings by up to a factor of two within minutes (its WAL-driven
checkpoints follow each other all through a run); alternating puts a swing on both sides
of a ratio instead of on one. Each round starts paycore on a new ledger, as the ceiling
script starts on empty tables each time.

Then `ledger.verify` (and a plain SQL sum of postings) proves the work was real and
correct, the ceiling's figures (medians of the rounds) are printed, and each ratio is
printed as `ratio <name>: <number>`, the median of the rounds' ratios, with every round's
beside it. The last line is one JSON object with every figure, each round's included.

Usage: .venv/bin/python bench/ledger_bench.py [--seconds N] [--rounds N] [--pg-url URL]
                                              [--skip-ceiling] [--skip-sqlite] [--no-freeze]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from moneyed import Money
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
from ledger import AccountSpec, AccountType, EntryRequest, Posting
from paycore import db as paycore_db
from paycore.logging import configure_logging
from paycore.startup_heap import freeze_startup_heap

HERE = Path(__file__).resolve().parent
CEILING = (HERE.parent.parent / "shared" / "bench" / "pg_ceiling.py").resolve()
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_paycore"
N_ACCOUNTS = 10_000
CURRENCY = "USD"
CLIENTS = 32
BATCH = 1000
POOL_SIZE = 40
#: seconds of each PostgreSQL workload run, untimed, before the timed runs
WARM_UP = 1.0


def plain_dsn(url: str) -> str:
    """The SQLAlchemy URL as a libpq DSN (for asyncpg and the ceiling script)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def asyncpg_url(url: str) -> str:
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain):]
    return url


# ---------------------------------------------------------------------------------- setup

async def reset_pg_schema(pg_url: str) -> None:
    conn = await asyncpg.connect(plain_dsn(pg_url))
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.execute(f"CREATE SCHEMA {SCHEMA}")
    finally:
        await conn.close()


async def settle_pg(pg_url: str) -> None:
    """VACUUM ANALYZE the 10,000 accounts just opened, as an operator would after a bulk
    load: otherwise autovacuum picks them up in the middle of the first timed workload and
    takes a share of the two cores it is measured on. Not the (still empty) entries and
    postings: statistics saying "empty" would make every session plan its look-ups into
    them as scans until autovacuum analyzes them again."""
    conn = await asyncpg.connect(plain_dsn(pg_url), server_settings={"search_path": SCHEMA})
    try:
        await conn.execute("VACUUM ANALYZE accounts, account_balances")
    finally:
        await conn.close()


def pg_engine(pg_url: str) -> AsyncEngine:
    return ledger.create_engine(
        pg_url,
        connect_args={"server_settings": {"search_path": SCHEMA}},
        pool_size=POOL_SIZE,
        max_overflow=0,
    )


def sqlite_engine(path: Path) -> AsyncEngine:
    return ledger.create_engine(
        f"sqlite+aiosqlite:///{path}", pool_size=POOL_SIZE, max_overflow=0
    )


async def open_accounts(engine: AsyncEngine, n: int = N_ACCOUNTS, parallel: int = 8) -> list[int]:
    """Open `n` accounts through `ledger.open_account`, half assets, half liabilities, no
    balance limits; `parallel` transactions of n/parallel accounts each (one on SQLite)."""
    if engine.dialect.name == "sqlite":
        parallel = 1
    per = -(-n // parallel)

    async def opener(start: int, stop: int) -> list[int]:
        ids = []
        async with engine.begin() as conn:
            for i in range(start, stop):
                kind = AccountType.ASSET if i % 2 == 0 else AccountType.LIABILITY
                account = await ledger.open_account(conn, AccountSpec(
                    code=f"bench:{i:05d}", name=f"bench account {i}", type=kind,
                    currency=CURRENCY,
                ))
                ids.append(account.id)
        return ids

    chunks = await asyncio.gather(*[
        opener(start, min(start + per, n)) for start in range(0, n, per)
    ])
    return [i for chunk in chunks for i in chunk]


# ------------------------------------------------------------------------------ workloads

_keys = itertools.count()
_run = f"{random.getrandbits(32):08x}"


def entry_request(account_ids: list[int], rng: random.Random) -> EntryRequest:
    a, b = rng.sample(account_ids, 2)
    amount = Money(Decimal(rng.randint(1, 10_000)).scaleb(-2), CURRENCY)
    return EntryRequest(
        idempotency_key=f"bench-{_run}-{next(_keys)}",
        kind="bench.transfer",
        postings=(Posting(a, debit=amount), Posting(b, credit=amount)),
    )


class Stats:
    def __init__(self) -> None:
        self.entries = 0
        self.retries = 0


async def per_entry(
    engine: AsyncEngine, account_ids: list[int], clients: int, seconds: float
) -> tuple[float, Stats]:
    """`clients` concurrent callers, one `ledger.post` per transaction."""
    stats = Stats()
    stop = time.monotonic() + seconds

    async def caller(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            request = entry_request(account_ids, rng)
            try:
                async with engine.begin() as conn:
                    await ledger.post(conn, request)
            except DBAPIError as exc:
                if not ledger.is_retryable(exc):
                    raise
                stats.retries += 1
                continue
            stats.entries += 1

    started = time.monotonic()
    await asyncio.gather(*[caller(seed) for seed in range(clients)])
    return stats.entries / (time.monotonic() - started), stats


async def batched(
    engine: AsyncEngine, account_ids: list[int], batch: int, seconds: float
) -> tuple[float, Stats]:
    """One caller, `ledger.post_many` with `batch` entries per transaction."""
    stats = Stats()
    rng = random.Random(12345)
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        requests = [entry_request(account_ids, rng) for _ in range(batch)]
        async with engine.begin() as conn:
            await ledger.post_many(conn, requests)
        stats.entries += batch
    return stats.entries / (time.monotonic() - started), stats


async def check_books(engine: AsyncEngine) -> dict[str, Any]:
    """`ledger.verify` plus a plain SQL check that every posting sums to zero."""
    started = time.monotonic()
    async with engine.connect() as conn:
        report = await ledger.verify(conn)
        total = await conn.scalar(sa.text("SELECT coalesce(sum(amount), 0) FROM postings"))
        entries = await conn.scalar(sa.text("SELECT count(*) FROM journal_entries"))
    return {
        "entries": report.entries,
        "postings": report.postings,
        "sql_entries": int(entries or 0),
        "postings_sum": int(total or 0),
        "discrepancies": list(report.discrepancies),
        "seconds": round(time.monotonic() - started, 1),
    }


def print_check(label: str, check: dict[str, Any]) -> bool:
    ok = check["postings_sum"] == 0 and not check["discrepancies"]
    ok = ok and check["entries"] == check["sql_entries"]
    print(f"verify {label}: {'OK' if ok else 'FAILED'}: {check['entries']} entries, "
          f"{check['postings']} postings, "
          f"sum(postings.amount) = {check['postings_sum']}, "
          f"{len(check['discrepancies'])} discrepancies ({check['seconds']} s)", flush=True)
    for line in check["discrepancies"][:10]:
        print(f"  {line}")
    return ok


# -------------------------------------------------------------------------------- backends

#: set from --no-freeze
FREEZE = True


def settle_caller() -> None:
    """The caller's process is set up and its pool warm: freeze its heap, as a paycore
    service does once it has started."""
    if FREEZE:
        print(f"caller process: {freeze_startup_heap()} startup objects frozen "
              "(paycore.startup_heap, as `paycore serve` does)", flush=True)


async def timed(label: str, work: Callable[[], Awaitable[tuple[float, Stats]]]) -> float:
    rate, stats = await work()
    extra = f" ({stats.retries} retried)" if stats.retries else ""
    print(f"{label}: {rate:8.0f} entries/s{extra}", flush=True)
    return rate


async def setup_pg(pg_url: str) -> tuple[AsyncEngine, list[int]]:
    """A fresh ledger in its own schema, 10,000 accounts, every pooled connection warm."""
    await reset_pg_schema(pg_url)
    engine = pg_engine(pg_url)
    await paycore_db.upgrade(engine)
    t = time.monotonic()
    ids = await open_accounts(engine)
    print(f"paycore postgresql: opened {len(ids)} accounts in "
          f"{time.monotonic() - t:.1f} s", flush=True)
    await settle_pg(pg_url)
    # not timed: each pooled connection's first call compiles and plans the write path
    await per_entry(engine, ids, CLIENTS, WARM_UP)
    await batched(engine, ids, BATCH, WARM_UP)
    settle_caller()
    return engine, ids


async def per_entry_pg(engine: AsyncEngine, ids: list[int], seconds: float) -> dict[str, float]:
    return {"pg_per_entry_32": await timed(
        f"paycore postgresql per-entry, uniform, {CLIENTS} clients",
        lambda: per_entry(engine, ids, CLIENTS, seconds))}


async def batched_pg(engine: AsyncEngine, ids: list[int], seconds: float) -> dict[str, float]:
    return {"pg_batched_1000": await timed(
        f"paycore postgresql batched {BATCH}/txn, 1 client",
        lambda: batched(engine, ids, BATCH, seconds))}


async def bench_sqlite(seconds: float) -> tuple[dict[str, float], bool]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="paycore-bench-") as tmp:
        engine = sqlite_engine(Path(tmp) / "bench.sqlite")
        try:
            await paycore_db.upgrade(engine)
            t = time.monotonic()
            ids = await open_accounts(engine)
            print(f"paycore sqlite: opened {len(ids)} accounts in "
                  f"{time.monotonic() - t:.1f} s", flush=True)
            settle_caller()
            figures["sqlite_per_entry_32"] = await timed(
                f"paycore sqlite per-entry, uniform, {CLIENTS} clients",
                lambda: per_entry(engine, ids, CLIENTS, seconds))
            figures["sqlite_per_entry_1"] = await timed(
                "paycore sqlite per-entry, uniform,  1 client",
                lambda: per_entry(engine, ids, 1, seconds))
            figures["sqlite_batched_1000"] = await timed(
                f"paycore sqlite batched {BATCH}/txn, 1 client",
                lambda: batched(engine, ids, BATCH, seconds))
            ok = print_check("sqlite", await check_books(engine))
        finally:
            await engine.dispose()
    return figures, ok


def run_ceiling(pg_url: str, seconds: float) -> dict[str, float]:
    """Run the raw-asyncpg ceiling as a subprocess; its last line is JSON."""
    if not CEILING.exists():
        raise SystemExit(f"ceiling script not found at {CEILING}")
    print(f"ceiling: {CEILING} ({seconds:g} s per workload)", flush=True)
    proc = subprocess.run(
        [sys.executable, str(CEILING), plain_dsn(pg_url), str(seconds)],
        capture_output=True, text=True, check=False,
    )
    for line in proc.stdout.splitlines()[:-1]:
        print(f"  ceiling | {line}", flush=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"ceiling script failed with exit code {proc.returncode}")
    return {k: float(v) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


RATIOS = {
    # name: (paycore figure, ceiling figure)
    "per_entry_32_uniform_vs_txn": ("pg_per_entry_32", "uniform_32_clients"),
    "per_entry_32_uniform_vs_server_function": ("pg_per_entry_32", "rpc_uniform_32_clients"),
    "batched_1000": ("pg_batched_1000", "batched_1000"),
}


def ratios_of(figures: dict[str, float], ceiling: dict[str, float]) -> dict[str, float]:
    return {name: figures[ours] / ceiling[theirs] for name, (ours, theirs) in RATIOS.items()
            if ceiling.get(theirs) and ours in figures}


def rounds_parser(doc: str) -> argparse.ArgumentParser:
    """The arguments of a benchmark whose workloads take turns with the ceiling's:
    --seconds of each workload and --rounds."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="duration of each workload (default 10)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds in which paycore's PostgreSQL workloads and the ceiling's "
                             "take turns (default 3); each ratio is the median of the rounds'")
    return parser


async def main() -> int:
    parser = rounds_parser(__doc__)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help=f"PostgreSQL URL (default {DEFAULT_PG_URL})")
    parser.add_argument("--skip-ceiling", action="store_true",
                        help="do not run ../shared/bench/pg_ceiling.py")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--no-freeze", action="store_true",
                        help="leave the caller's startup heap to the cyclic collector")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    global FREEZE
    FREEZE = not args.no_freeze
    configure_logging("json", "WARNING", force=True)
    pg_url = asyncpg_url(args.pg_url)

    # The two sides take turns, round after round: this machine's speed swings within
    # minutes, and a swing then falls on both sides of a ratio.
    rounds: list[dict[str, Any]] = []
    pg_ok = True
    for n in range(1, args.rounds + 1):
        print(f"round {n} of {args.rounds}", flush=True)
        # a new ledger each round, as the ceiling script starts from empty tables each time
        engine, ids = await setup_pg(pg_url)
        try:
            # each of paycore's workloads next to the ceiling's it is compared with: the
            # ceiling runs its per-entry workloads first and its batched ones last
            ours = await per_entry_pg(engine, ids, args.seconds)
            theirs = {} if args.skip_ceiling else run_ceiling(pg_url, args.seconds)
            ours |= await batched_pg(engine, ids, args.seconds)
            pg_ok = print_check("postgresql", await check_books(engine)) and pg_ok
        finally:
            await engine.dispose()
        ratios = ratios_of(ours, theirs)
        for name, ratio in ratios.items():
            print(f"  round {n} {name}: {ratio:.2f}", flush=True)
        rounds.append({"paycore": ours, "ceiling": theirs, "ratios": ratios})

    figures = {k: statistics.median(r["paycore"][k] for r in rounds) for k in rounds[0]["paycore"]}
    sqlite_ok = True
    if not args.skip_sqlite:
        lite, sqlite_ok = await bench_sqlite(args.seconds)
        figures.update(lite)
    ceiling = {k: statistics.median(r["ceiling"][k] for r in rounds)
               for k in (rounds[0]["ceiling"] if not args.skip_ceiling else {})}
    for name, value in ceiling.items():
        print(f"ceiling {name}: {value:8.0f} entries/s (median of {len(rounds)})")
    medians = {name: statistics.median(r["ratios"][name] for r in rounds)
               for name in rounds[0]["ratios"]}
    for name, ratio in medians.items():
        each = ", ".join(f"{r['ratios'][name]:.2f}" for r in rounds)
        print(f"ratio {name}: {ratio:.2f}   (median of the rounds: {each})")

    print(json.dumps({
        "seconds": args.seconds,
        "rounds": len(rounds),
        "paycore": {k: round(v) for k, v in figures.items()},
        "ceiling": {k: round(v) for k, v in ceiling.items()},
        "ratios": {k: round(v, 3) for k, v in medians.items()},
        "each_round": [{side: {k: round(v, 3 if side == "ratios" else None)
                               for k, v in r[side].items()} for side in r} for r in rounds],
        "startup_heap_frozen": FREEZE,
        "verified": {"postgresql": pg_ok, **({} if args.skip_sqlite else {"sqlite": sqlite_ok})},
    }), flush=True)
    return 0 if pg_ok and sqlite_ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
