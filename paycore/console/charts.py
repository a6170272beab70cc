"""Charts where people would rather look than read, drawn on the server as SVG (no
script, nothing fetched): the loan book by days-past-due bucket week by week over the
last 90 days, each week as it stood then (lending.portfolio_history), the daily
match rate of each bank account, and each bank's payment success rate and latency."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

import ledger
import lending
import reconciliation
from gateways.schema import payment_attempts
from paycore.console.staff import Session
from paycore.console.web import engine_of, render, session_of, settings_of, svg_bars, today_local
from reconciliation.schema import statement_lines

router = APIRouter(prefix="/console/charts", include_in_schema=False)
StaffSession = Annotated[Session, Depends(session_of)]
#: the loan book chart: a point a week over the last 90 days
WEEKS = 13
DAYS = 14
SUCCESS = ("succeeded", "captured")


@router.get("")
async def charts(request: Request, session: StaffSession) -> Response:
    today = today_local(settings_of(request).timezone)
    async with engine_of(request).connect() as conn:
        # the loan book at each week's end over the last 90 days, each as it stood then
        days = [today - dt.timedelta(days=7 * w) for w in range(WEEKS - 1, -1, -1)]
        book: list[tuple[str, list[tuple[str, Decimal]]]] = []
        book_rows: list[tuple[str, str, str, int, str]] = []
        for point in await lending.portfolio_history(conn, days, lending.DEFAULT_CONFIG):
            values: dict[str, Decimal] = defaultdict(Decimal)
            for cur, buckets in point.buckets.items():
                for label, (n, minor) in buckets.items():
                    if n:
                        amount = Decimal(ledger.from_minor(minor, cur).amount)
                        values[f"{label} {cur}"] += amount
                        book_rows.append((str(point.day), label, cur, n, f"{amount:,}"))
            book.append((str(point.day), sorted(values.items())))
        # daily match rate per bank account
        since = today - dt.timedelta(days=DAYS)
        banks = {b.id: b.code for b in await reconciliation.list_bank_accounts(conn)}
        s = statement_lines.c
        done = sa.func.sum(sa.case((s.status.in_(("matched", "resolved")), 1), else_=0))
        daily = (await conn.execute(
            sa.select(s.bank_account_id, s.booking_date, sa.func.count().label("n"),
                      done.label("done")).where(s.booking_date >= since)
            .group_by(s.bank_account_id, s.booking_date)
            .order_by(s.booking_date, s.bank_account_id))).all()
        by_day: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
        match_rows = []
        for r in daily:
            rate = Decimal(int(r.done) * 100) / int(r.n)
            by_day[str(r.booking_date)].append((banks.get(r.bank_account_id, "?"), rate))
            match_rows.append((str(r.booking_date), banks.get(r.bank_account_id, "?"),
                               f"{int(r.done)}/{int(r.n)}", f"{rate:.1f} %"))
        # payment success rate and time to outcome per bank (last 7 days)
        a = payment_attempts.c
        attempts = (await conn.execute(
            sa.select(a.bank, a.status, a.created_at, a.settled_at)
            .where(a.created_at >= dt.datetime.now(dt.UTC) - dt.timedelta(days=7))
            .limit(200_000))).all()
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    waits: dict[str, list[int]] = defaultdict(list)
    for a_row in attempts:
        r = a_row
        if r.status in SUCCESS or r.status == "failed":
            tally[r.bank][0 if r.status in SUCCESS else 1] += 1
        if r.settled_at is not None:
            waits[r.bank].append(int((r.settled_at - r.created_at).total_seconds() * 1000))
    bank_rows = []
    success: list[tuple[str, list[tuple[str, Decimal]]]] = []
    latency: list[tuple[str, list[tuple[str, Decimal]]]] = []
    for bank in sorted(set(tally) | set(waits)):
        ok, failed = tally[bank]
        rate = Decimal(ok * 100) / (ok + failed) if ok + failed else Decimal(0)
        ordered = sorted(waits[bank])
        p50 = ordered[len(ordered) // 2] if ordered else 0
        p95 = ordered[min(len(ordered) - 1, len(ordered) * 95 // 100)] if ordered else 0
        success.append((bank, [("success %", rate)]))
        latency.append((bank, [("p50 ms", Decimal(p50)), ("p95 ms", Decimal(p95))]))
        bank_rows.append((bank, ok, failed, f"{rate:.1f} %", p50, p95))
    return render(
        request, "charts.html", session,
        book_chart=svg_bars(book, title="Loan book (principal outstanding) by days-past-due "
                            "bucket, each week as it stood then"),
        book_rows=book_rows,
        match_chart=svg_bars(sorted(by_day.items()), title="Daily match rate per bank account",
                             unit=" %"),
        match_rows=match_rows,
        success_chart=svg_bars(success, title="Payment success rate per bank", unit=" %"),
        latency_chart=svg_bars(latency, title="Time to outcome per bank", unit=" ms"),
        bank_rows=bank_rows)
