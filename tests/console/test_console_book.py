"""The loan book's summary by product and bucket, exposure per borrower and the payment
figures of the charts page, now read from summaries kept by the loans' writes (migration
0033) and from SQL, show what summing the raw rows shows: after loans move between
buckets, are repaid, extended, written off, approved and declined. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateways.schema import payment_attempts, payment_intents
from lending.schema import borrowers, loans
from paycore.api import ApiSettings, create_app
from paycore.console import charts, risk
from tests.console.seed import seed
from tests.console.test_console_http import login

TODAY = dt.datetime.now(dt.UTC).date()
RUNNING = ("disbursed", "active", "extended", "overdue")
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYCORE_TIMEZONE", "UTC")
    monkeypatch.setenv("PAYCORE_CONSOLE_INSECURE_COOKIES", "1")


def _loan(i: int, borrower: str, status: str, amount: int, maturity_in: int | None,
          repaid: int = 0) -> dict:
    disbursed = None if status in ("approved", "manual_review", "declined") else TODAY - \
        dt.timedelta(days=100)
    return {"id": f"bk-{i:03d}", "borrower_id": borrower, "product_code": "supply_chain",
            "currency": "CNY", "requested_minor": amount, "amount_minor": amount,
            "term_days": 30, "status": status, "status_on": TODAY - dt.timedelta(days=100),
            "applied_on": TODAY - dt.timedelta(days=101), "disbursed_on": disbursed,
            "maturity": None if maturity_in is None else TODAY + dt.timedelta(days=maturity_in),
            "principal_repaid_minor": repaid, "updated_at": NOW}


async def _book_from_loans(engine: AsyncEngine) -> list[tuple[str, str, int, str]]:
    """The summary as the page computed it before: every running loan, grouped."""
    bucket = risk._bucket_case(TODAY).label("bucket")
    async with engine.connect() as conn:
        rows = (await conn.execute(
            sa.select(loans.c.product_code, loans.c.currency, bucket, sa.func.count().label("n"),
                      sa.func.sum(loans.c.amount_minor - loans.c.principal_repaid_minor)
                      .label("principal"))
            .where(loans.c.status.in_(RUNNING))
            .group_by(loans.c.product_code, loans.c.currency, bucket)
            .order_by(loans.c.product_code, loans.c.currency, bucket))).all()
    return [(r.product_code, r.bucket, int(r.n),
             str(risk.Amount(int(r.principal), r.currency))) for r in rows]


def _book_on_page(page: str) -> list[tuple[str, str, int, str]]:
    table = page.split("<caption>Running loans by product", 1)[1].split("</table>", 1)[0]
    return [(p, b, int(n), html.unescape(a)) for p, b, n, a in re.findall(
        r'<tr><td>([^<]*)</td><td>([^<]*)</td><td class="num">(\d+)</td>'
        r'<td class="num">([^<]*)</td></tr>', table)]


async def _exposure_from_loans(engine: AsyncEngine) -> dict[str, tuple[int, int]]:
    async with engine.connect() as conn:
        out = {r.id: (0, 0) for r in await conn.execute(sa.select(borrowers.c.id))}
        for r in await conn.execute(sa.select(loans)):
            if r.status in (*RUNNING, "approved"):
                n, total = out[r.borrower_id]
                drawn = (r.amount_minor - r.principal_repaid_minor if r.status in RUNNING
                         else r.amount_minor)
                out[r.borrower_id] = (n + 1, total + drawn)
    return out


async def _exposure_on_page(client: httpx.AsyncClient) -> dict[str, tuple[int, int]]:
    exported = await client.get("/console/risk/exposure?format=csv")
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    return {r["Borrower"]: (int(r["Open loans"]), int(Decimal(r["Exposure"]) * 100))
            for r in rows}


async def test_the_book_and_exposure_pages_agree_with_the_loans_as_they_move(db) -> None:
    await seed(db, TODAY)
    async with db.begin() as conn:
        for b in ("bk-b1", "bk-b2", "bk-b3"):
            await conn.execute(sa.insert(borrowers).values(
                id=b, name=f"Borrower {b}", kind="supplier", currency="CNY",
                payable_account=f"2202.payable.{b}", onboarded_on=TODAY - dt.timedelta(days=900),
                created_at=NOW))
        rows = [_loan(i, f"bk-b{1 + i % 3}", status, 1_000_000 + i * 1371, maturity, repaid)
                for i, (status, maturity, repaid) in enumerate([
                    ("active", 10, 0), ("active", 0, 250_000), ("overdue", -3, 0),
                    ("overdue", -20, 100), ("overdue", -45, 0), ("overdue", -90, 999),
                    ("extended", 25, 0), ("disbursed", 30, 0), ("approved", None, 0),
                    ("manual_review", None, 0), ("repaid", -5, 1_000_000 + 9 * 1371),
                    ("written_off", -100, 0), ("active", None, 0)])]
        await conn.execute(sa.insert(loans), rows)
    app = create_app(db, settings=ApiSettings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://console.test") as client:
        await login(client, "ctl1")

        async def agree() -> None:
            page = await client.get("/console/risk/loans")
            assert page.status_code == 200
            assert _book_on_page(page.text) == await _book_from_loans(db)
            assert await _exposure_on_page(client) == await _exposure_from_loans(db)

        await agree()
        async with db.begin() as conn:  # loans move: between buckets, repaid, extended, ...
            c = loans.c
            await conn.execute(sa.update(loans).where(c.id == "bk-000").values(
                maturity=TODAY - dt.timedelta(days=16), status="overdue"))
            await conn.execute(sa.update(loans).where(c.id == "bk-002").values(
                principal_repaid_minor=c.amount_minor, status="repaid"))
            await conn.execute(sa.update(loans).where(c.id == "bk-003").values(
                maturity=TODAY + dt.timedelta(days=30), status="extended"))
            await conn.execute(sa.update(loans).where(c.id == "bk-004").values(
                status="written_off", written_off_minor=c.amount_minor))
            await conn.execute(sa.update(loans).where(c.id == "bk-008").values(
                status="disbursed", disbursed_on=TODAY, maturity=TODAY + dt.timedelta(days=5)))
            await conn.execute(sa.update(loans).where(c.id == "bk-009").values(
                status="approved"))
            await conn.execute(sa.update(loans).where(c.id == "bk-001").values(
                principal_repaid_minor=600_000, borrower_id="bk-b3"))
            await conn.execute(sa.update(loans).where(c.id == "bk-009").values(
                status="declined"))
        await agree()
        async with db.begin() as conn:  # every running loan due a day earlier
            for r in (await conn.execute(sa.select(loans.c.id, loans.c.maturity).where(
                    loans.c.status.in_(RUNNING), loans.c.maturity.is_not(None)))).all():
                await conn.execute(sa.update(loans).where(loans.c.id == r.id).values(
                    maturity=r.maturity - dt.timedelta(days=1)))
        await agree()


async def test_the_bank_figures_rank_the_exact_waits(db) -> None:
    """Per bank: succeeded (or captured) and failed attempts of the last 7 days, and the
    wait at ranks n // 2 and min(n - 1, n * 95 // 100) of those settled, in whole
    milliseconds counted from the microseconds (1.001 s is 1001 ms)."""
    waits_us = {"restbank": [1_001_000, 250_500, 3_000_000, 999, 1_015_000, 40_000, 2_002_000,
                             7_999_999, 123_456, 15_000_000, 5, 1_001_000],
                "smbank": [2_030_000]}
    statuses = ["succeeded", "failed", "captured", "unknown"]
    intents, attempts = [], []
    n = 0
    for bank, waits in waits_us.items():
        for k, us in enumerate(waits):
            n += 1
            made = NOW - dt.timedelta(days=1, minutes=n)
            intents.append({"id": f"pi-{n}", "merchant_id": "m", "order_id": f"o-{n}",
                            "supplier_id": "s", "amount_minor": 100, "currency": "CNY",
                            "bank": bank, "status": "succeeded", "description": "d",
                            "created_at": made, "updated_at": made,
                            "expires_at": made + dt.timedelta(minutes=30)})
            attempts.append({"id": f"at-{n}", "intent_id": f"pi-{n}", "bank": bank,
                             "bank_merchant_id": "bm", "status": statuses[k % 4],
                             "amount_minor": 100, "currency": "CNY", "created_at": made,
                             "updated_at": made,
                             "settled_at": made + dt.timedelta(microseconds=us)})
    extra = [("old", "restbank", "succeeded", NOW - dt.timedelta(days=8), 1),  # too old
             ("open", "restbank", "pending", NOW - dt.timedelta(hours=1), None),
             ("quiet", "quietbank", "pending", NOW - dt.timedelta(hours=1), None)]
    for name, bank, status, made, us in extra:
        intents.append({"id": f"pi-{name}", "merchant_id": "m", "order_id": f"o-{name}",
                        "supplier_id": "s", "amount_minor": 100, "currency": "CNY",
                        "bank": bank, "status": status, "description": "d", "created_at": made,
                        "updated_at": made, "expires_at": made + dt.timedelta(minutes=30)})
        attempts.append({"id": f"at-{name}", "intent_id": f"pi-{name}", "bank": bank,
                         "bank_merchant_id": "bm", "status": status, "amount_minor": 100,
                         "currency": "CNY", "created_at": made, "updated_at": made,
                         "settled_at": None if us is None else made + dt.timedelta(seconds=us)})
    async with db.begin() as conn:
        await conn.execute(sa.insert(payment_intents), intents)
        await conn.execute(sa.insert(payment_attempts), attempts)
        rows, success, latency = await charts._bank_figures(conn, NOW - dt.timedelta(days=7))
    expected = []
    for bank, waits in sorted(waits_us.items()):
        kinds = [statuses[k % 4] for k in range(len(waits))]
        ok = sum(s in ("succeeded", "captured") for s in kinds)
        failed = kinds.count("failed")
        ordered = sorted(us // 1000 for us in waits)
        p50 = ordered[len(ordered) // 2]
        p95 = ordered[min(len(ordered) - 1, len(ordered) * 95 // 100)]
        expected.append((bank, ok, failed, f"{Decimal(ok * 100) / (ok + failed):.1f} %", p50,
                         p95))
    assert rows == expected
    assert rows[0][4:] == (1001, 15000)  # restbank: the median is 1.001 s, not 1000 ms
    assert [b for b, _ in success] == [b for b, _ in latency] == ["restbank", "smbank"]
