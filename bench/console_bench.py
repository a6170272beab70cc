"""Console benchmark (issue #19): the main list pages of the operations console on a big
ledger and loan book, p95 server time per page (aim: under 200 ms).

Seeds PostgreSQL in a schema of its own (`bench_console`; the tests' schemas are untouched):

- `--postings` postings written through the ledger's own batch path, `ledger.post_many`, in
  batches of `--batch` entries (one `ledger_post_entries` call each): every append-only
  trigger, balance row, limit and hash chain is the ledger's own, so `ledger.verify()`
  accepts the books (`--verify` runs it). Two-leg entries, every one touching one hot
  account (`9901.bench.hot`), so its statement pages walk the biggest account; the other
  leg spreads over 100 supplier accounts.
- `--loans` loans written straight into `lending_loans` with bulk `INSERT … SELECT
  generate_series` (records, not ledger rows: the console reads the loan table): 2 % in
  the manual review queue, 2 % approved, 10 % repaid, the rest running with disbursement
  dates over the last 150 days and terms of 30/60/90 days, so every days-past-due bucket,
  the due-this-week list and the overdue list are populated; 1,000 borrowers.
- Payments, reconciliation and payout records in bulk the same way: 200,000 payment
  attempts (1 % unknown, 0.5 % review), 20,000 refunds, 50,000 payouts (some unknown, in
  review, and 300 supplier payouts waiting for approval), 2,000 supplier bank accounts
  (100 unverified), 365 daily statements with 200 lines each on one bank account, 20,000
  reconciliation exceptions.

Then signs a controller in and asks each page `--requests` times through the real
application (ASGI in-process: the server's time, no network), and prints p50 and p95 per
page.

The issue's figures are the full run:  .venv/bin/python bench/console_bench.py \\
    --postings 1000000 --loans 100000       (the postings take ~6 min on 2 cores)
`--keep` keeps the schema and, run again, reuses the postings if there are as many (the
rest is seeded again, in seconds). The defaults are smaller: 200,000 postings, 20,000 loans.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import sqlalchemy as sa
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
import lending
from paycore import db as paycore_db
from paycore.api import ApiSettings, create_app
from paycore.console import staff
from paycore.logging import configure_logging

sys.path.insert(0, str(Path(__file__).parent))

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_console"
PASSWORD = "bench-password-2026"
TODAY = dt.datetime.now(dt.UTC).date()


def pages(entry_id: str, bank: str) -> list[tuple[str, str]]:
    """(name, path) of every main list page, first page and a deep page where it pages."""
    past = TODAY - dt.timedelta(days=40)
    return [
        ("risk queue", "/console/risk/queue"),
        ("risk queue p20", "/console/risk/queue?page=20"),
        ("loan book", "/console/risk/loans"),
        ("loan book by amount p100", "/console/risk/loans?sort=amount&dir=desc&page=100"),
        ("running loans", "/console/risk/loans?view=running"),
        ("due this week", "/console/risk/loans?view=due"),
        ("overdue", "/console/risk/loans?view=overdue"),
        ("overdue by amount", "/console/risk/loans?view=overdue&sort=amount&dir=desc"),
        ("exposure", "/console/risk/exposure"),
        ("exposure p10", "/console/risk/exposure?page=10"),
        ("statements", f"/console/finance?account={bank}"),
        ("statements p5", f"/console/finance?account={bank}&page=5"),
        ("exceptions", "/console/finance/exceptions"),
        ("exceptions by amount p50", "/console/finance/exceptions?sort=amount&page=50"),
        ("bank-vs-book report", f"/console/finance/report?account={bank}&day={TODAY}"),
        ("payments unknown/review", "/console/payments"),
        ("refunds unknown/review", "/console/payments?kind=refunds"),
        ("payouts unknown/review", "/console/payments?kind=payouts"),
        ("payouts waiting", "/console/payments/approvals/queue"),
        ("trial balance (today)", "/console/books"),
        ("trial balance (as of 40 days ago)", f"/console/books?as_of={past}"),
        ("chart of accounts by balance", "/console/books/accounts?sort=balance&dir=desc"),
        ("account statement", "/console/books/accounts/9901.bench.hot"),
        ("account statement p500", "/console/books/accounts/9901.bench.hot?page=500"),
        ("account statement oldest", "/console/books/accounts/9901.bench.hot?dir=asc"),
        ("entry (drill-down)", f"/console/books/entries/{entry_id}"),
        ("journal", "/console/books/journal"),
        ("journal p200", "/console/books/journal?page=200"),
        ("audit", "/console/audit"),
    ("charts", "/console/charts"),
    ]


async def seed_postings(engine: AsyncEngine, postings: int, batch: int) -> float:
    async with engine.begin() as conn:
        await ledger.ensure_account(conn, ledger.AccountSpec(
            "9901.bench.hot", "Hot clearing", ledger.AccountType.ASSET, "CNY"))
        for i in range(100):
            await ledger.ensure_account(conn, ledger.AccountSpec(
                f"2202.bench.s{i:03d}", f"Supplier {i}", ledger.AccountType.LIABILITY, "CNY"))
    entries = postings // 2
    t0 = time.perf_counter()
    for start in range(0, entries, batch):
        requests = [ledger.EntryRequest(
            f"bench:{i}", "payment.capture", description=f"order {i}", postings=[
                ledger.Posting("9901.bench.hot", debit=Money(Decimal(1 + i % 500), "CNY")),
                ledger.Posting(f"2202.bench.s{i % 100:03d}",
                               credit=Money(Decimal(1 + i % 500), "CNY"))])
            for i in range(start, min(entries, start + batch))]
        async with engine.begin() as conn:
            await ledger.post_many(conn, requests)
        done = min(entries, start + batch) * 2
        if done % 100_000 < batch * 2:
            print(f"  {done:,} postings", flush=True)
    return time.perf_counter() - t0


async def seed_loans(conn: sa.ext.asyncio.AsyncConnection, n: int) -> None:
    """`n` loans and n // 100 borrowers in bulk (INSERT … SELECT generate_series)."""
    await lending.ensure_accounts(conn, lending.DEFAULT_CONFIG)
    await conn.execute(sa.text("""
        INSERT INTO lending_borrowers (id, name, kind, currency, payable_account,
                                       onboarded_on, data_imported_on, created_at)
        SELECT 'b' || lpad(g::text, 6, '0'), 'Borrower ' || g, 'supplier', 'CNY',
               '2202.payable.b' || lpad(g::text, 6, '0'), CAST(:today AS date) - 900,
               CAST(:today AS date), now()
        FROM generate_series(0, :borrowers - 1) g"""),
        {"today": TODAY, "borrowers": max(1, n // 100)})
    await conn.execute(sa.text("""
        INSERT INTO lending_loans (id, borrower_id, product_code, currency, requested_minor,
            amount_minor, term_days, status, status_on, applied_on, disbursed_on, maturity,
            extensions, disbursement_mode, principal_repaid_minor, version, updated_at)
        SELECT 'L' || lpad(g::text, 7, '0'), 'b' || lpad((g % :borrowers)::text, 6, '0'),
               'supply_chain', 'CNY', amount, amount, term,
               CASE WHEN g % 50 = 0 THEN 'manual_review' WHEN g % 50 = 1 THEN 'approved'
                    WHEN g % 10 = 2 THEN 'repaid'
                    WHEN disbursed + term < CAST(:today AS date) THEN 'overdue' ELSE 'active' END,
               CASE WHEN g % 50 IN (0, 1) THEN CAST(:today AS date) - g % 7 ELSE disbursed END,
               CASE WHEN g % 50 IN (0, 1) THEN CAST(:today AS date) - g % 7 ELSE disbursed - 1 END,
               CASE WHEN g % 50 IN (0, 1) THEN NULL ELSE disbursed END,
               CASE WHEN g % 50 IN (0, 1) THEN NULL ELSE disbursed + term END,
               0, CASE WHEN g % 50 IN (0, 1) THEN NULL ELSE 'balance' END,
               CASE WHEN g % 10 = 2 AND g % 50 NOT IN (0, 1) THEN amount
                    WHEN g % 7 = 3 THEN amount / 4 ELSE 0 END,
               0, now()
        FROM (SELECT g, 1000000 + (g % 997) * 1371 AS amount, 30 * (1 + g % 3) AS term,
                     CAST(:today AS date) - (g % 150) AS disbursed
              FROM generate_series(0, :n - 1) g) s"""),
        {"today": TODAY, "n": n, "borrowers": max(1, n // 100)})


async def seed_payments(conn: sa.ext.asyncio.AsyncConnection) -> None:
    """Payment attempts, refunds, payouts and supplier accounts in bulk, with a share of
    each stuck in `unknown` or review, and supplier payouts waiting for approval."""
    await conn.execute(sa.text("""
        INSERT INTO payment_intents (id, merchant_id, order_id, supplier_id, amount_minor,
            currency, bank, status, description, current_attempt_id, created_at, updated_at,
            expires_at)
        SELECT 'pi' || g, 'm-1', 'ord-' || g, 'sup-' || (g % 100), 1000 + g % 5000, 'CNY',
               (ARRAY['restbank','unionpay','smbank'])[1 + g % 3], 'succeeded', 'order',
               'at' || g, now() - make_interval(secs => g * 10), now() - make_interval(secs => g * 10),
               now() - make_interval(secs => g * 10) + interval '30 minutes'
        FROM generate_series(1, 200000) g"""))
    await conn.execute(sa.text("""
        INSERT INTO payment_attempts (id, intent_id, bank, bank_merchant_id, status,
            amount_minor, currency, failure_reason, created_at, updated_at, settled_at)
        SELECT 'at' || g, 'pi' || g, (ARRAY['restbank','unionpay','smbank'])[1 + g % 3],
               'bm-1', CASE WHEN g % 100 = 0 THEN 'unknown' WHEN g % 200 = 1 THEN 'review'
                            WHEN g % 20 = 2 THEN 'failed' ELSE 'succeeded' END,
               1000 + g % 5000, 'CNY', CASE WHEN g % 200 = 1 THEN 'amount differs' END,
               now() - make_interval(secs => g * 10), now() - make_interval(secs => g * 10),
               now() - make_interval(secs => g * 10 - 3)
        FROM generate_series(1, 200000) g"""))
    await conn.execute(sa.text("""
        INSERT INTO refunds (id, intent_id, attempt_id, bank, status, amount_minor, currency,
            reason, created_at, updated_at)
        SELECT 'rf' || g, 'pi' || (g * 10), 'at' || (g * 10),
               (ARRAY['restbank','unionpay','smbank'])[1 + (g * 10) % 3],
               CASE WHEN g % 50 = 0 THEN 'unknown' ELSE 'succeeded' END, 100, 'CNY',
               'returned goods', now() - make_interval(secs => g * 60),
               now() - make_interval(secs => g * 60)
        FROM generate_series(1, 20000) g"""))
    await conn.execute(sa.text("""
        INSERT INTO beneficiary_accounts (id, supplier_id, holder_name, bank_name,
            account_ciphertext, key_id, account_hmac, account_last4, status, created_by,
            created_at, changed_by, changed_at, verified_by, verified_at, updated_at,
            number_entered_by)
        SELECT 'ba' || g, 'sup-' || (g % 1000), 'Supplier ' || g, 'ICBC', 'x', 'k1',
               md5(g::text), lpad((g % 10000)::text, 4, '0'),
               CASE WHEN g % 20 = 0 THEN 'unverified' ELSE 'verified' END, 'user:clerk',
               now() - interval '30 days', 'user:clerk', now() - interval '30 days',
               CASE WHEN g % 20 = 0 THEN NULL ELSE 'user:checker' END,
               CASE WHEN g % 20 = 0 THEN NULL ELSE now() - interval '29 days' END,
               now() - interval '29 days', 'user:clerk'
        FROM generate_series(1, 2000) g"""))
    await conn.execute(sa.text("""
        INSERT INTO payouts (id, request_hash, beneficiary_ref, beneficiary_name,
            beneficiary_account, beneficiary_bank_name, amount_minor, currency, debit_account,
            purpose, description, banks, bank, status, hold_id, review_reason,
            failure_reason, created_at, updated_at)
        SELECT 'po' || g, md5(g::text), 'supplier:sup-' || (g % 1000), 'Supplier', '****1234',
               'ICBC', 10000 + g % 90000, 'CNY', '2202.payable.sup-' || (g % 1000),
               'settlement', 'settlement', '[]',
               CASE WHEN g % 167 = 0 THEN NULL ELSE (ARRAY['restbank','unionpay','smbank'])[1 + g % 3] END,
               CASE WHEN g % 167 = 0 THEN 'pending_approval' WHEN g % 100 = 0 THEN 'unknown'
                    WHEN g % 250 = 1 THEN 'review' ELSE 'succeeded' END,
               md5(g::text)::uuid, CASE WHEN g % 500 = 7 THEN 'qualified success' END,
               CASE WHEN g % 250 = 1 THEN 'no final answer' END,
               now() - make_interval(secs => g * 30), now() - make_interval(secs => g * 30)
        FROM generate_series(1, 50000) g"""))
    await conn.execute(sa.text("""
        INSERT INTO supplier_payouts (payout_id, supplier_id, account_id, account_changed_at,
            requested_by, approval_reason, created_at)
        SELECT 'po' || g, 'sup-' || (g % 1000), 'ba' || (1 + g % 2000 - (g % 2000) % 20 + 1),
               now() - interval '30 days', 'user:pay1', 'manual payout',
               now() - make_interval(secs => g * 30)
        FROM generate_series(167, 50000, 167) g"""))


async def seed_reconciliation(conn: sa.ext.asyncio.AsyncConnection) -> str:
    """One bank account with a year of daily statements (200 lines each, 2 % open) and
    20,000 exceptions (a quarter open)."""
    import reconciliation
    from reconciliation.schema import bank_accounts

    bank = await reconciliation.configure_bank_account(conn, reconciliation.BankAccountConfig
                                                       .for_bank("benchbank", "CNY"))
    await conn.execute(sa.text("""
        INSERT INTO recon_statements (bank_account_id, statement_ref, file_hash, source_name,
            format, kind, currency, period_start, period_end, opening_minor, opening_date,
            opening_derived, closing_minor, closing_date, line_count, new_line_count,
            imported_at, imported_by)
        SELECT :bank, 'STMT-' || d, md5(d::text), 'stmt-' || d || '.xml', 'camt053', 'statement',
               'CNY', CAST(:today AS date) - d, CAST(:today AS date) - d, 100000000 + d,
               CAST(:today AS date) - d - 1, false,
               100000000 + d + 1, CAST(:today AS date) - d, 200, 200, now() - make_interval(days => d),
               'system:import'
        FROM generate_series(1, 365) d"""), {"bank": bank.id, "today": TODAY})
    await conn.execute(sa.text("""
        INSERT INTO recon_statement_lines (bank_account_id, statement_id, line_identity,
            amount_minor, currency, value_date, booking_date, bank_reference, description,
            reversal, status)
        SELECT :bank, s.id, s.id || '-' || g, 1000 + g, 'CNY', s.period_end, s.period_end,
               'B' || s.id || '-' || g, 'line', false,
               CASE WHEN g % 50 = 0 THEN 'open' ELSE 'matched' END
        FROM recon_statements s, generate_series(1, 200) g
        WHERE s.bank_account_id = :bank"""), {"bank": bank.id})
    await conn.execute(sa.text("""
        INSERT INTO recon_exceptions (bank_account_id, kind, amount_minor, currency, date,
            reference, description, candidates, status, opened_at)
        SELECT :bank, 'statement_line', 100 + g % 9000, 'CNY', CAST(:today AS date) - g % 365, 'REF' || g,
               'unexplained', '[]', CASE WHEN g % 4 = 0 THEN 'open' ELSE 'resolved' END,
               now() - make_interval(days => g % 365)
        FROM generate_series(1, 20000) g"""), {"bank": bank.id, "today": TODAY})
    del bank_accounts
    return bank.code


async def seed_rest(engine: AsyncEngine, loans: int) -> tuple[str, dict[str, float]]:
    timings: dict[str, float] = {}
    async with engine.begin() as conn:  # a kept schema: the records of the last run go
        await conn.execute(sa.text(
            "TRUNCATE supplier_payouts, payouts, beneficiary_accounts, refunds, "
            "payment_attempts, payment_intents, recon_exceptions, recon_statement_lines, "
            "recon_statements, recon_bank_accounts, lending_loans, lending_borrowers CASCADE"))
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        await seed_loans(conn, loans)
    timings["seed_loans_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        await seed_payments(conn)
        bank = await seed_reconciliation(conn)
    timings["seed_payments_recon_s"] = round(time.perf_counter() - t0, 1)
    return bank, timings


async def measure(engine: AsyncEngine, requests: int, bank: str, only: str = ""
                  ) -> list[dict[str, object]]:
    async with engine.begin() as conn:
        if await staff.get_user(conn, "bench.controller") is None:
            await staff.add_user(conn, "bench.controller", "controller", PASSWORD)
        # an entry on the hot account, half-way through its history: the drill-down
        entry_id = (await conn.execute(sa.text(
            "SELECT p.entry_id FROM postings p JOIN accounts a ON a.id = p.account_id "
            "WHERE a.code = '9901.bench.hot' ORDER BY p.account_seq "
            "OFFSET (SELECT count(*) / 4 FROM journal_entries) LIMIT 1"))).scalar()
    app = create_app(engine, settings=ApiSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://bench.test") as client:
        page = await client.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        await client.post("/console/login", data={"username": "bench.controller",
                                                  "password": PASSWORD,
                                                  "csrf_token": token.group(1)})
        out = []
        for name, path in pages(str(entry_id), bank):
            if only not in name:
                continue
            times = []
            await client.get(path)  # warm: the first request of a page compiles its template
            for _ in range(requests):
                t0 = time.perf_counter()
                response = await client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (path, response.status_code)
                assert "<tbody>" in response.text or "<svg" in response.text, path
            times.sort()
            p95 = times[min(len(times) - 1, len(times) * 95 // 100)]
            out.append({"page": name, "path": path, "p50_ms": round(statistics.median(times), 1),
                        "p95_ms": round(p95, 1), "under_200ms": p95 < 200})
            print(f"  {name:34s} p50 {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms"
                  f"{'' if p95 < 200 else '   OVER 200 ms'}", flush=True)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postings", type=int, default=200_000)
    parser.add_argument("--loans", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=20, help="requests per page")
    parser.add_argument("--batch", type=int, default=10_000, help="entries per post_many")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--keep", action="store_true",
                        help="keep the schema; run again, reuse its postings")
    parser.add_argument("--only", default="",
                        help="measure only the pages whose name contains this text")
    parser.add_argument("--schema", default=SCHEMA, help="the PostgreSQL schema to seed")
    parser.add_argument("--verify", action="store_true",
                        help="run ledger.verify() over the seeded books")
    args = parser.parse_args()
    configure_logging("console", "WARNING")
    schema = args.schema
    dsn = args.pg_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    admin = await asyncpg.connect(dsn)
    exists = await admin.fetchval("SELECT count(*) FROM information_schema.schemata "
                                  "WHERE schema_name = $1", schema)
    have = 0
    if args.keep and exists:
        have = await admin.fetchval(
            f"SELECT count(*) FROM {schema}.postings p JOIN {schema}.accounts a "
            f"ON a.id = p.account_id WHERE a.code LIKE '%.bench.%'")
    reuse = have >= args.postings
    if not reuse:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
    engine = paycore_db.create_engine(
        args.pg_url, connect_args={"server_settings": {"search_path": schema}})
    try:
        result: dict[str, object] = {"postings": args.postings, "loans": args.loans}
        await paycore_db.upgrade(engine)  # a kept schema gains any newer migration
        if not reuse:
            print(f"seeding {args.postings:,} postings through ledger.post_many", flush=True)
            result["seed_postings_s"] = round(await seed_postings(engine, args.postings,
                                                                  args.batch), 1)
        else:
            print(f"reusing {have:,} postings in {schema}", flush=True)
        print(f"seeding {args.loans:,} loans, payments and reconciliation", flush=True)
        bank, timings = await seed_rest(engine, args.loans)
        result.update(timings)
        # what autovacuum does to a live database in time: statistics, and the visibility
        # map an index-only scan needs
        await admin.execute(f"VACUUM ANALYZE {schema}.postings, {schema}.journal_entries, "
                            f"{schema}.account_balances, {schema}.accounts, "
                            f"{schema}.lending_loans, {schema}.lending_borrowers, "
                            f"{schema}.payment_attempts, {schema}.refunds, {schema}.payouts, "
                            f"{schema}.supplier_payouts, {schema}.beneficiary_accounts, "
                            f"{schema}.recon_statements, {schema}.recon_statement_lines, "
                            f"{schema}.recon_exceptions")
        if args.verify:
            t0 = time.perf_counter()
            async with engine.connect() as conn:
                report = await ledger.verify(conn)
            print(f"ledger.verify: {report.summary()} ({time.perf_counter() - t0:.0f} s)")
            result["verify_ok"] = report.ok
        load = [f"{v:.2f}" for v in os.getloadavg()]
        print(f"server time per page, {args.requests} requests each "
              f"({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load average {' '.join(load)}):",
              flush=True)
        result["pages"] = await measure(engine, args.requests, bank, args.only)
        result["load_average_after"] = [f"{v:.2f}" for v in os.getloadavg()]
        worst = max(p["p95_ms"] for p in result["pages"])  # type: ignore[union-attr]
        print(f"worst p95: {worst} ms (aim < 200 ms); load average after: "
              f"{' '.join(result['load_average_after'])}")  # type: ignore[arg-type]
        print(json.dumps(result))
    finally:
        await engine.dispose()
        if not args.keep:
            await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
