"""Charts where people would rather look than read, drawn on the server as SVG (no
script, nothing fetched): the loan book by days-past-due bucket week by week over the
last 90 days, each week as it stood then (lending.portfolio_history), the daily
match rate of each bank account, and each bank's payment success rate and latency."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

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
        # payment success rate and time to outcome per bank (last 7 days), counted and
        # ranked in SQL from the attempts' (created_at, bank, status, settled_at) index
        # (0033): only each bank's tallies and its two ranked waits come back, not a week
        # of attempts to sort in Python
        bank_rows, success, latency = await _bank_figures(
            conn, dt.datetime.now(dt.UTC) - dt.timedelta(days=7))
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


def _wait_order(conn: AsyncConnection) -> sa.ColumnElement[Any]:
    """What ranks an attempt's time to outcome: on PostgreSQL the interval itself (native
    comparison; the milliseconds are counted for the ranked rows only), on SQLite the
    microseconds (it keeps 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds, then the
    fraction)."""
    a = payment_attempts.c
    if conn.dialect.name == "postgresql":
        return a.settled_at - a.created_at

    def micros(column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        seconds = sa.cast(sa.func.strftime("%s", column), sa.BigInteger)
        return seconds * 1_000_000 + sa.cast(sa.func.substr(column, 21, 6), sa.BigInteger)

    return micros(a.settled_at) - micros(a.created_at)


def _wait_ms(conn: AsyncConnection, wait: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    """A wait (from _wait_order) in whole milliseconds, truncated, counted exactly from the
    stored microseconds (a float of seconds times 1000 lost a millisecond on some waits:
    1.001 s became 1000 ms)."""
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.trunc(sa.extract("epoch", wait) * 1000), sa.BigInteger)
    return sa.cast(wait // 1000, sa.BigInteger)


async def _bank_figures(conn: AsyncConnection, since: dt.datetime) -> tuple[
        list[tuple[str, int, int, str, int, int]], list[tuple[str, list[tuple[str, Decimal]]]],
        list[tuple[str, list[tuple[str, Decimal]]]]]:
    """Per bank, of the attempts made since `since`: succeeded and failed, the success
    rate, and the median and 95th percentile wait (the wait at rank n // 2 and
    min(n - 1, n * 95 // 100) of the n settled attempts, in ascending order)."""
    a = payment_attempts.c
    recent = a.created_at >= since
    tallies = sorted((await conn.execute(
        sa.select(a.bank,
                  sa.func.sum(sa.case((a.status.in_(SUCCESS), 1), else_=0)).label("ok"),
                  sa.func.sum(sa.case((a.status == "failed", 1), else_=0)).label("failed"),
                  sa.func.count(a.settled_at).label("settled"))
        .where(recent).group_by(a.bank))).all(), key=lambda t: t.bank)
    # the two ranks each bank needs, known from its count: one ranking, two rows kept
    wanted = {t.bank: {int(t.settled) // 2, min(int(t.settled) - 1, int(t.settled) * 95 // 100)}
              for t in tallies if t.settled}
    picked: dict[str, dict[int, int]] = defaultdict(dict)
    if wanted:
        if conn.dialect.name == "postgresql":
            # room to rank a week of attempts in memory (the default 4 MB sorted 60k on
            # disk); for this read's transaction only
            await conn.execute(sa.text("SET LOCAL work_mem = '32MB'"))
        order = _wait_order(conn)
        ranked = (sa.select(a.bank, order.label("wait"),
                            (sa.func.row_number().over(partition_by=a.bank, order_by=order) - 1)
                            .label("k"))
                  .where(recent, a.settled_at.is_not(None)).subquery("ranked"))
        r = ranked.c
        keep = sa.or_(*(sa.and_(r.bank == bank, r.k.in_(sorted(ranks)))
                        for bank, ranks in wanted.items()))
        for row in await conn.execute(sa.select(r.bank, r.k, _wait_ms(conn, r.wait).label("ms"))
                                      .where(keep)):
            picked[row.bank][int(row.k)] = int(row.ms)
    bank_rows = []
    success: list[tuple[str, list[tuple[str, Decimal]]]] = []
    latency: list[tuple[str, list[tuple[str, Decimal]]]] = []
    for t in tallies:
        ok, failed, settled = int(t.ok), int(t.failed), int(t.settled)
        if not (ok or failed or settled):
            continue  # only attempts still open: the bank is not shown, as before
        rate = Decimal(ok * 100) / (ok + failed) if ok + failed else Decimal(0)
        ranks = picked.get(t.bank, {})
        p50 = ranks.get(settled // 2, 0) if settled else 0
        p95 = ranks.get(min(settled - 1, settled * 95 // 100), 0) if settled else 0
        success.append((t.bank, [("success %", rate)]))
        latency.append((t.bank, [("p50 ms", Decimal(p50)), ("p95 ms", Decimal(p95))]))
        bank_rows.append((t.bank, ok, failed, f"{rate:.1f} %", p50, p95))
    return bank_rows, success, latency
