"""Daily accrual benchmark (issue #5): the accrual run over N active loans, then the same
run again (idempotent: nothing to do), on PostgreSQL and on a temporary SQLite file.

The loans are written straight into `lending_loans` (as if applied, approved and disbursed
yesterday), one borrower per 100 loans; then `lending.run_accrual(engine, today)` posts one
`loan.accrual` entry per loan through `ledger.post_many` in batches. Prints loans/s for the
run and the re-run, checks the interest against the pure function and `ledger.verify`,
times the automatic underwriting decision (`lending.apply_for_loan`) and a back-valued
repayment on a loan with 90 days of accruals (issue #20: each reversed and re-accrued), and
measures plain
`ledger.post_many` on the same database as the baseline (ratio printed).

Usage: .venv/bin/python bench/accrual_bench.py [--loans N] [--sqlite-loans N]
                                               [--pg-url URL] [--skip-sqlite] [--batch N]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
import lending
from lending.schema import borrowers, loans
from paycore import db as paycore_db
from paycore.logging import configure_logging

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_lending"
CONFIG = lending.DEFAULT_CONFIG
TODAY = dt.date(2026, 11, 25)
START = TODAY - dt.timedelta(days=1)


async def seed(engine: AsyncEngine, n: int) -> None:
    now = dt.datetime.now(dt.UTC)
    async with engine.begin() as conn:
        await lending.ensure_accounts(conn, CONFIG)
        n_borrowers = max(1, n // 100)
        await conn.execute(sa.insert(borrowers), [dict(
            id=f"b{i:06d}", name=f"Borrower {i}", kind="supplier", currency="CNY",
            payable_account=f"2202.payable.b{i:06d}", onboarded_on=TODAY - dt.timedelta(days=900),
            credit_cap_minor=None,
            data_imported_on=TODAY, created_at=now) for i in range(n_borrowers)])
        rows = []
        for i in range(n):
            amount = 1_000_000 + (i % 997) * 1_371  # 10,000.00 and up, varied
            rows.append(dict(
                id=f"L{i:07d}", borrower_id=f"b{i % n_borrowers:06d}", product_code="supply_chain",
                currency="CNY", requested_minor=amount, amount_minor=amount, term_days=30,
                status="active", status_on=START, applied_on=START, disbursed_on=START,
                maturity=START + dt.timedelta(days=30), extensions=0,
                disbursement_mode="balance", payout_id=None, accrued_through=None,
                version=0, updated_at=now))
            if len(rows) == 10_000:
                await conn.execute(sa.insert(loans), rows)
                rows = []
        if rows:
            await conn.execute(sa.insert(loans), rows)


async def decision_times(engine: AsyncEngine, samples: int = 50) -> list[float]:
    """Wall time of `apply_for_loan` (read the data, decide, store): one transaction each."""
    async with engine.begin() as conn:
        await lending.register_borrower(conn, lending.Borrower(
            "uw-1", "Underwriting bench", "CNY", TODAY - dt.timedelta(days=900)), CONFIG)
        await lending.import_trade_records(conn, "uw-1", [
            lending.TradeRecord("sale", f"s{m}", dt.date(2026, m, 10), Money("90000.00", "CNY"))
            for m in range(5, 11)], TODAY)
    out = []
    for i in range(samples):
        t0 = time.perf_counter()
        async with engine.begin() as conn:
            await lending.apply_for_loan(conn, lending.LoanApplication(
                "uw-1", "supply_chain", Money(Decimal("10000.00"), "CNY"), 30, TODAY,
                loan_id=f"uw-{i}"), CONFIG)
        out.append(time.perf_counter() - t0)
    return out


async def backvalued_repayment(engine: AsyncEngine, days: int = 90) -> dict[str, Any]:
    """One loan with `days` days of accruals posted; then a repayment value-dated on its
    disbursement day arrives: every accrual is reversed (one entry each) and re-accrued on
    the smaller balance (lending.backvalue). Wall time of that repayment, and of its replay
    (which must post nothing)."""
    now = dt.datetime.now(dt.UTC)
    start = TODAY - dt.timedelta(days=days)
    async with engine.begin() as conn:
        await conn.execute(sa.insert(loans).values(
            id="BV-1", borrower_id="b000000", product_code="supply_chain", currency="CNY",
            requested_minor=2_000_000, amount_minor=2_000_000, term_days=120, status="active",
            status_on=start, applied_on=start, disbursed_on=start,
            maturity=start + dt.timedelta(days=120), extensions=0, disbursement_mode="balance",
            payout_id=None, accrued_through=None, version=0, updated_at=now))
        # the loan's principal on the books (the seeded loans skip disbursement entries)
        await ledger.ensure_account(conn, ledger.AccountSpec(
            "9903.bench.funding", "Bench funding", ledger.AccountType.LIABILITY, "CNY"))
        principal = Money(Decimal("20000.00"), "CNY")
        await ledger.post(conn, ledger.EntryRequest("bench:bv-disbursement", "bench", [
            ledger.Posting("1301.loans.supply_chain", debit=principal),
            ledger.Posting("9903.bench.funding", credit=principal)], effective_date=start))
    async with engine.begin() as conn:
        record = await lending.load_loan(conn, "BV-1", CONFIG)
        record = await lending.accrue_loan(conn, record, TODAY, CONFIG)
    amount = Money(Decimal("10000.00"), "CNY")
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        rep = await lending.repay_loan(conn, "BV-1", amount, start, CONFIG,
                                       repayment_id="bv-statement-1")
    took = time.perf_counter() - t0
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        again = await lending.repay_loan(conn, "BV-1", amount, start, CONFIG,
                                         repayment_id="bv-statement-1")
    replay = time.perf_counter() - t0
    return {"backvalued_days": days,
            "backvalued_interest_before_minor": record.interest_accrued_minor,
            "backvalued_interest_after_minor": rep.loan.interest_accrued_minor,
            "backvalued_repayment_ms": round(took * 1000, 1),
            "backvalued_replay_ms": round(replay * 1000, 1),
            "backvalued_replay_posted_nothing": bool(again.entry and again.entry.replayed)}


async def baseline(engine: AsyncEngine, n: int, batch: int) -> float:
    """Plain `ledger.post_many` of `n` two-leg entries in batches, on the same database:
    the ledger's own rate, which an accrual run (one entry per loan) cannot beat."""
    async with engine.begin() as conn:
        for code, typ in (("9901.bench.a", ledger.AccountType.ASSET),
                          ("9902.bench.b", ledger.AccountType.INCOME)):
            await ledger.ensure_account(conn, ledger.AccountSpec(code, code, typ, "CNY"))
    one = Money(Decimal("0.27"), "CNY")
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        requests = [ledger.EntryRequest(f"bench:{i}", "bench", [
            ledger.Posting("9901.bench.a", debit=one), ledger.Posting("9902.bench.b", credit=one)])
            for i in range(start, min(n, start + batch))]
        async with engine.begin() as conn:
            await ledger.post_many(conn, requests)
    return n / (time.perf_counter() - t0)


async def measure(engine: AsyncEngine, n: int, batch: int, label: str) -> dict[str, Any]:
    await paycore_db.upgrade(engine)
    t0 = time.perf_counter()
    await seed(engine, n)
    seeded = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = await lending.run_accrual(engine, TODAY, CONFIG, batch_size=batch)
    run_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = await lending.run_accrual(engine, TODAY, CONFIG, batch_size=batch)
    rerun_s = time.perf_counter() - t0
    expected = sum(lending.SUPPLY_CHAIN_LOAN.interest_for(1_000_000 + (i % 997) * 1_371, 1)
                   for i in range(n))
    async with engine.connect() as conn:
        income = ledger.to_minor((await ledger.balance(
            conn, "6011.income.loan_interest.supply_chain")).posted)
        t0 = time.perf_counter()
        report = await ledger.verify(conn)
        verify_s = time.perf_counter() - t0
    times = await decision_times(engine)
    late = await backvalued_repayment(engine)
    base_n = min(n, 20_000)
    base = await baseline(engine, base_n, batch)
    result = {
        "db": label, "loans": n, "batch": batch, "seed_s": round(seeded, 2),
        "run_s": round(run_s, 2), "run_loans_per_s": round(first.loans / run_s),
        "entries": first.entries, "rerun_s": round(rerun_s, 3),
        "rerun_loans_per_s": round(n / rerun_s) if rerun_s else None,
        "rerun_entries": again.entries, "interest_ok": income == expected == first.interest_minor,
        "verify_ok": report.ok, "verify_s": round(verify_s, 2),
        "decision_ms_median": round(statistics.median(times) * 1000, 2),
        "decision_ms_max": round(max(times) * 1000, 2),
        "baseline_post_many_entries_per_s": round(base),
        "ratio_run_to_post_many": round(first.loans / run_s / base, 2),
        **late,
    }
    print(f"{label}: accrual run {n:,} loans in {run_s:.1f} s = {result['run_loans_per_s']:,} "
          f"loans/s ({first.entries:,} entries); re-run {rerun_s:.3f} s "
          f"({again.entries} entries); interest ok={result['interest_ok']}, "
          f"verify ok={report.ok}; decision median {result['decision_ms_median']} ms, "
          f"max {result['decision_ms_max']} ms")
    print(f"{label}: back-valued repayment on a loan with {late['backvalued_days']} days of "
          f"accruals (all reversed and re-accrued): {late['backvalued_repayment_ms']} ms; "
          f"replay {late['backvalued_replay_ms']} ms "
          f"(posted nothing={late['backvalued_replay_posted_nothing']})")
    print(f"{label}: baseline plain post_many {base:,.0f} entries/s ({base_n:,} entries); "
          f"ratio run/baseline: {result['ratio_run_to_post_many']}")
    return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--sqlite-loans", type=int, default=None)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    configure_logging("console", "WARNING")
    results = []
    if not args.skip_pg:
        dsn = args.pg_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        admin = await asyncpg.connect(dsn)
        await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
        engine = paycore_db.create_engine(
            args.pg_url, connect_args={"server_settings": {"search_path": SCHEMA}})
        try:
            results.append(await measure(engine, args.loans, args.batch, "postgresql"))
        finally:
            await engine.dispose()
            await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            await admin.close()
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            engine = paycore_db.create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite'}")
            try:
                results.append(await measure(engine, args.sqlite_loans or args.loans,
                                             args.batch, "sqlite"))
            finally:
                await engine.dispose()
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
