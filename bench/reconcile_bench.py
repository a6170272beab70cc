"""Reconciliation benchmark on PostgreSQL: import and reconcile bank statements of 10k,
100k and 1M lines against as many ledger postings.

For each size N, in a fresh schema:
  * seed N captures (Dr 1102.clearing.bench, Cr 2202.payable.bench, external_ref = the
    bank's transaction id) through `ledger.post_many` in batches of 5,000 entries —
    the public write path, hash chains and all; the seeding rate is printed too;
  * write the bank's CSV statement of them (signed amounts, running balance): 97 % carry
    the transaction id as end-to-end id, 2 % only mention it in the text (rule 2: amount,
    date window, fuzzy reference), 1 % differ by up to 0.50 (rule 5: tolerance write-off),
    and 0.1 % extra bank fees nobody booked (exceptions); dates spread ~10,000 lines a day,
    the bank one day late for a third of them;
  * time `import_statement` (parse, validate, store; one transaction) and `reconcile`
    (copy the book items, match, post the settlement entries, file the exceptions; one
    transaction) and print lines/s for each;
then print the 1M/100k (or largest/previous) time ratio of matching and of import.

Usage: .venv/bin/python bench/reconcile_bench.py [--sizes 10000,100000,1000000]
                                                 [--pg-url URL] [--verify]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import random
import time
from decimal import Decimal
from typing import Any

import asyncpg
from moneyed import Money

import ledger
import reconciliation
from paycore import db as paycore_db
from paycore.logging import configure_logging

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BANK = "bench"
D0 = dt.date(2026, 1, 1)
LINES_PER_DAY = 10_000
SEED_BATCH = 5_000
PROFILE = reconciliation.CsvProfile(
    name="bench", account="BENCH-0001", date_column="date", value_date_column="value_date",
    amount_column="amount", balance_column="balance", currency="CNY",
    reference_column="bank_ref", end_to_end_id_column="e2e", description_columns=("text",),
)


def plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def cny(minor: int) -> Money:
    return ledger.from_minor(minor, "CNY")


def book(n: int, rng: random.Random) -> list[tuple[str, int, dt.date]]:
    days = max(1, n // LINES_PER_DAY)
    return [(f"TXN{i:09d}", rng.randint(100, 5_000_000), D0 + dt.timedelta(days=i * days // n))
            for i in range(n)]


def statement_csv(items: list[tuple[str, int, dt.date]], rng: random.Random) -> tuple[bytes, dict[str, int]]:
    kinds = {"exact": 0, "fuzzy": 0, "tolerance": 0, "fee": 0}
    rows = []
    for i, (txn, amount, day) in enumerate(items):
        shown = day + dt.timedelta(days=1 if i % 3 == 0 else 0)
        roll = rng.random()
        if roll < 0.02:
            rows.append((shown, f"B{i:09d}", "", amount, f"PAYMENT {txn} ORDER {i}"))
            kinds["fuzzy"] += 1
        elif roll < 0.03:
            rows.append((shown, f"B{i:09d}", txn, amount - rng.randint(1, 50), "PAYMENT"))
            kinds["tolerance"] += 1
        else:
            rows.append((shown, f"B{i:09d}", txn, amount, "PAYMENT"))
            kinds["exact"] += 1
        if rng.random() < 0.001:
            rows.append((shown, f"F{i:09d}", "", -rng.randint(100, 2_000), "ACCOUNT FEE"))
            kinds["fee"] += 1
    rows.sort(key=lambda r: r[0])
    out = io.StringIO()
    out.write("date,value_date,bank_ref,e2e,amount,balance,text\n")
    balance = 0
    for shown, ref, e2e, amount, text in rows:
        balance += amount
        out.write(f"{shown},{shown},{ref},{e2e},{Decimal(amount).scaleb(-2):.2f},"
                  f"{Decimal(balance).scaleb(-2):.2f},{text}\n")
    return out.getvalue().encode(), kinds


async def run_size(n: int, pg_url: str, verify: bool) -> dict[str, Any]:
    schema = f"bench_recon_{n}"
    admin = await asyncpg.connect(plain_dsn(pg_url))
    await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    await admin.execute(f"CREATE SCHEMA {schema}")
    await admin.close()
    engine = paycore_db.create_engine(pg_url, connect_args={"server_settings": {"search_path": schema}})
    rng = random.Random(n)
    figures: dict[str, Any] = {"lines": n}
    try:
        await paycore_db.upgrade(engine)
        config = reconciliation.BankAccountConfig.for_bank(BANK, "CNY", tolerance=Money("0.50", "CNY"))
        async with engine.begin() as conn:
            bank = await reconciliation.configure_bank_account(conn, config)
            await ledger.ensure_account(conn, ledger.AccountSpec(
                "2202.payable.bench", "Bench supplier", ledger.AccountType.LIABILITY, "CNY"))
        items = book(n, rng)
        started = time.perf_counter()
        for start in range(0, n, SEED_BATCH):
            requests = [ledger.EntryRequest(
                idempotency_key=f"capture:{txn}", kind="payment.capture", effective_date=day,
                external_ref=txn, postings=[
                    ledger.Posting("1102.clearing.bench", debit=cny(amount)),
                    ledger.Posting("2202.payable.bench", credit=cny(amount))])
                for txn, amount, day in items[start:start + SEED_BATCH]]
            async with engine.begin() as conn:
                await ledger.post_many(conn, requests)
        figures["seed_s"] = time.perf_counter() - started
        data, kinds = statement_csv(items, rng)
        figures["statement_lines"] = n + kinds["fee"]
        figures["kinds"] = kinds
        del items

        started = time.perf_counter()
        async with engine.begin() as conn:
            imported = await reconciliation.import_statement(conn, bank, data, profile=PROFILE,
                                                             source_name=f"bench-{n}.csv")
        figures["import_s"] = time.perf_counter() - started
        assert imported.new_lines == figures["statement_lines"], imported
        del data

        started = time.perf_counter()
        async with engine.begin() as conn:
            result = await reconciliation.reconcile(conn, bank, D0 + dt.timedelta(days=400))
        figures["match_s"] = time.perf_counter() - started
        figures["matched"] = result.matched_lines
        figures["by_rule"] = dict(result.by_rule)
        figures["exceptions"] = [result.open_line_exceptions, result.open_item_exceptions]
        figures["entries_posted"] = result.entries_posted
        async with engine.connect() as conn:
            report = await reconciliation.build_report(conn, bank, D0 + dt.timedelta(days=400))
            figures["report_explained"] = report.explained
            if verify:
                started = time.perf_counter()
                figures["verify_ok"] = (await ledger.verify(conn)).ok
                figures["verify_s"] = time.perf_counter() - started
    finally:
        await engine.dispose()
    lines = figures["statement_lines"]
    print(f"N={n:>9,}: seeded {n:,} postings in {figures['seed_s']:.1f} s "
          f"({n / figures['seed_s']:,.0f} entries/s); import {lines:,} lines in "
          f"{figures['import_s']:.1f} s = {lines / figures['import_s']:,.0f} lines/s; "
          f"matching {figures['match_s']:.1f} s = {lines / figures['match_s']:,.0f} lines/s; "
          f"matched {figures['matched']:,} {figures['by_rule']}; exceptions "
          f"{figures['exceptions']}; explained {figures['report_explained']}"
          + (f"; verify {figures['verify_ok']} in {figures['verify_s']:.1f} s" if verify else ""),
          flush=True)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--verify", action="store_true", help="ledger.verify after each size")
    parser.add_argument("--keep", action="store_true", help="keep the bench schemas")
    args = parser.parse_args()
    configure_logging("console", "WARNING")
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    for n in sizes:
        results.append(await run_size(n, args.pg_url, args.verify))
        if not args.keep:
            admin = await asyncpg.connect(plain_dsn(args.pg_url))
            await admin.execute(f"DROP SCHEMA IF EXISTS bench_recon_{n} CASCADE")
            await admin.close()
    if len(results) >= 2:
        big, prev = results[-1], results[-2]
        scale = big["lines"] / prev["lines"]
        print(f"ratio matching time {big['lines']:,}/{prev['lines']:,}: "
              f"{big['match_s'] / prev['match_s']:.1f}x for {scale:.0f}x the lines")
        print(f"ratio import time {big['lines']:,}/{prev['lines']:,}: "
              f"{big['import_s'] / prev['import_s']:.1f}x for {scale:.0f}x the lines")
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    asyncio.run(main())
