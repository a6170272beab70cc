"""Books: the trial balance, balance sheet and income statement as of any day (in the
business's time zone), the chart of accounts, each account's postings with drill-down to the
entry, its postings and their chain hashes, the journal, and the last `verify` and signed
checkpoint. Lists page on indexes (an account's postings by sequence number, the journal by
its time-ordered ids), so a ledger of millions of postings stays fast."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

import ledger
from ledger.schema import account_balances, accounts, journal_entries, ledger_checkpoints, postings
from paycore.console import audit, exports
from paycore.console.staff import Session
from paycore.console.web import (
    Amount,
    Column,
    Link,
    PageRequest,
    Table,
    checked_form,
    end_of_local_day,
    engine_of,
    fill,
    may_act,
    redirect,
    render,
    respond,
    session_of,
    settings_of,
    today_local,
)
from paycore.schema import console_audit

router = APIRouter(prefix="/console/books", include_in_schema=False)
StaffSession = Annotated[Session, Depends(session_of)]


def _day(text: str | None, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(text or "")
    except ValueError:
        return default


@router.get("")
async def statements(request: Request, session: StaffSession) -> Response:
    zone = settings_of(request).timezone
    today = today_local(zone)
    as_of = _day(request.query_params.get("as_of"), today)
    since = _day(request.query_params.get("from"), as_of.replace(day=1))
    cutoff = end_of_local_day(as_of, zone)
    period_start = end_of_local_day(since - dt.timedelta(days=1), zone)
    async with engine_of(request).connect() as conn:
        # one trial balance as of the day serves all three statements
        end = None if as_of >= today else cutoff
        tb = await ledger.trial_balance_as_of(conn, end)
        sheets = await ledger.balance_sheet(conn, end, trial=tb)
        incomes = await ledger.income_statement(conn, period_start, end, closing=tb)
        checkpoint = (await conn.execute(sa.select(ledger_checkpoints).order_by(
            ledger_checkpoints.c.taken_at.desc()).limit(1))).first()
        last_verify = (await conn.execute(sa.select(console_audit).where(
            console_audit.c.action == "books.verify").order_by(
            console_audit.c.id.desc()).limit(1))).first()
    fmt, which = request.query_params.get("format"), request.query_params.get("table", "")
    if fmt in exports.FORMATS:
        tables = {"trial-balance": exports.trial_balance(tb),
                  "balance-sheet": exports.balance_sheet(sheets),
                  "income-statement": exports.income_statement(incomes)}
        chosen = [tables[which]] if which in tables else list(tables.values())
        name = f"{which if which in tables else 'books'}-{as_of}"
        return exports.respond(name, fmt if which in tables else "xlsx", chosen)
    return render(request, "books.html", session, tb=tb, sheets=sheets, incomes=incomes,
                  as_of=as_of, since=since, checkpoint=checkpoint, last_verify=last_verify,
                  Amount=Amount, note=request.query_params.get("note", ""))


@router.post("/verify")
async def run_verify(request: Request, session: StaffSession) -> Response:
    """Recompute every balance and chain from the postings now; the result is kept in the
    audit trail and shown as "the last verify"."""
    await checked_form(request, session)
    await may_act(request, session, "finance", "books.verify", "ledger")
    async with engine_of(request).connect() as conn:
        report = await ledger.verify(conn)
    async with engine_of(request).begin() as conn:
        await audit.record(conn, actor=session.user.actor, role=session.user.role.value,
                           action="books.verify", subject="ledger", reason="",
                           details={"ok": report.ok, "summary": report.summary(),
                                    "entries": report.entries, "postings": report.postings})
    return redirect("/console/books", report.summary())


def _balance_totals() -> sa.Subquery:
    b = account_balances.c
    # an account's balance is the sum of its lanes' rows (a lane's seq is no count: lane L
    # numbers from L * 2^40)
    return (sa.select(b.account_id, sa.func.sum(b.posted_debits - b.posted_credits).label("net"))
            .group_by(b.account_id).subquery())


@router.get("/accounts")
async def chart(request: Request, session: StaffSession) -> Response:
    pr = PageRequest.of(request, "code")
    a = accounts.c
    totals = _balance_totals()
    prefix = request.query_params.get("prefix", "")
    table = Table("accounts", "Chart of accounts", [
        Column("code", "Code", a.code), Column("name", "Name", a.name),
        Column("type", "Type", a.type), Column("balance", "Balance", totals.c.net, numeric=True),
        Column("status", "Status", a.status)], base_query={"prefix": prefix})
    query = sa.select(accounts, totals.c.net).join(totals, totals.c.account_id == a.id)
    if prefix:
        query = query.where(a.code.startswith(prefix, autoescape=True))

    def row(r: sa.Row[object]) -> dict[str, object]:
        m = r._mapping
        debit_normal = m["type"] in ("asset", "expense")
        net = int(m["net"] or 0)
        return {"code": Link(m["code"], f"/console/books/accounts/{m['code']}"),
                "name": m["name"], "type": m["type"],
                "balance": Amount(net if debit_normal else -net, m["currency"]),
                "status": m["status"]}
    async with engine_of(request).connect() as conn:
        await fill(conn, table, query, pr, row, tiebreak=[a.id])
    return respond(request, session, "table_page.html", table, pr, filter_prefix=prefix)


@router.get("/accounts/{code}")
async def account(request: Request, code: str, session: StaffSession) -> Response:
    async with engine_of(request).connect() as conn:
        found = await ledger.find_account(conn, code)
        if found is None:
            return render(request, "error.html", session, status=404,
                          message=f"no account {code}")
        bal = await ledger.balance(conn, found.id)
        pr = PageRequest.of(request, "seq", "desc")
        p, e = postings.c, journal_entries.c
        table = Table(f"postings-{code}", f"{found.code} — {found.name}", [
            Column("seq", "Seq", p.account_seq, numeric=True),
            Column("booked", "Booked"), Column("value", "Value date"),
            Column("kind", "Kind"), Column("description", "Description"),
            Column("debit", "Debit", numeric=True), Column("credit", "Credit", numeric=True),
            Column("lane_balance", "Balance after (lane)", numeric=True),
            Column("entry", "Entry")],
            caption=("Postings by the account's sequence number, highest first: newest first "
                     "for an account of one lane; an account split into lanes lists lane by "
                     "lane, each lane newest first (its statement merges them by booking "
                     "time). The balance after is the posting's lane's running balance (one "
                     "lane: the account's)."))
        sign = 1 if found.type.debit_normal else -1
        query = sa.select(
            p.account_seq, p.amount, p.currency, p.booked_at, p.effective_date, p.balance_after,
            p.entry_id, e.kind, e.description).join(
            journal_entries, journal_entries.c.id == p.entry_id).where(p.account_id == found.id)
        shown = pr
        if not pr.export:
            # the page's sequence numbers first, from the (account_id, account_seq) index
            # alone; only those rows meet their entries (an OFFSET over the join read and
            # joined every skipped posting: page 500 of a hot account took ~400 ms)
            keys = (sa.select(p.account_seq).where(p.account_id == found.id)
                    .order_by(p.account_seq.desc() if pr.direction == "desc"
                              else p.account_seq.asc())
                    .limit(pr.per_page + 1).offset((pr.page - 1) * pr.per_page))
            query = query.where(p.account_seq.in_(keys.scalar_subquery()))
            pr = dataclasses.replace(pr, page=1)  # the cut is made: fill takes the first rows
        await fill(conn, table, query,
            pr, lambda r: {
                "seq": r.account_seq, "booked": r.booked_at, "value": r.effective_date,
                "kind": r.kind, "description": r.description,
                "debit": Amount(r.amount, r.currency) if r.amount > 0 else "",
                "credit": Amount(-r.amount, r.currency) if r.amount < 0 else "",
                "lane_balance": Amount(sign * r.balance_after, r.currency),
                "entry": Link(str(r.entry_id)[:13] + "…", f"/console/books/entries/{r.entry_id}")})
        table.page, pr = shown.page, shown
    return respond(request, session, "books_account.html", table, pr, account=found,
                   balance=bal, Amount=Amount)


@router.get("/journal")
async def journal(request: Request, session: StaffSession) -> Response:
    pr = PageRequest.of(request, "id", "desc")
    e = journal_entries.c
    table = Table("journal", "Journal entries", [
        Column("id", "Entry (time-ordered)", e.id), Column("booked", "Booked"),
        Column("value", "Value date"), Column("kind", "Kind"),
        Column("description", "Description"), Column("ref", "External reference")],
        caption="Newest first. Entries are never changed: corrections are reversals.")
    async with engine_of(request).connect() as conn:
        await fill(conn, table, sa.select(e.id, e.booked_at, e.effective_date, e.kind,
                                          e.description, e.external_ref), pr, lambda r: {
            "id": Link(str(r.id), f"/console/books/entries/{r.id}"), "booked": r.booked_at,
            "value": r.effective_date, "kind": r.kind, "description": r.description,
            "ref": r.external_ref or ""})
    return respond(request, session, "table_page.html", table, pr)


@router.get("/entries/{entry_id}")
async def entry(request: Request, entry_id: str, session: StaffSession) -> Response:
    try:
        key = uuid.UUID(entry_id)
    except ValueError:
        return render(request, "error.html", session, status=404,
                      message=f"{entry_id} is not an entry id")
    async with engine_of(request).connect() as conn:
        head = (await conn.execute(sa.select(journal_entries).where(
            journal_entries.c.id == key))).first()
        if head is None:
            return render(request, "error.html", session, status=404,
                          message=f"no entry {entry_id}")
        legs = (await conn.execute(sa.select(postings, accounts.c.code, accounts.c.name).join(
            accounts, accounts.c.id == postings.c.account_id).where(
            postings.c.entry_id == key).order_by(postings.c.leg_no))).all()
        reversed_by = await conn.scalar(sa.select(journal_entries.c.id).where(
            journal_entries.c.reverses_entry_id == key))
    return render(request, "books_entry.html", session, head=head, legs=legs,
                  reversed_by=reversed_by, Amount=Amount)
