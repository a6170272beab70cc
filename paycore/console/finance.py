"""Finance: each bank account's statements by day with their status, the exceptions queue
(candidates and scores; resolved by match, adjustment or write-off, with a reason), and the
bank-vs-book report that explains the difference to the cent."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

import ledger
import reconciliation
from paycore.console import audit, exports
from paycore.console.staff import Session
from paycore.console.web import (
    Amount,
    Column,
    Link,
    PageRequest,
    Table,
    checked_form,
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
from reconciliation.schema import exceptions, statement_lines, statements

router = APIRouter(prefix="/console/finance", include_in_schema=False)
StaffSession = Annotated[Session, Depends(session_of)]


@router.get("")
async def accounts(request: Request, session: StaffSession) -> Response:
    """Each bank account, and its statements by day with how many lines are matched."""
    async with engine_of(request).connect() as conn:
        banks = await reconciliation.list_bank_accounts(conn)
    chosen = request.query_params.get("account") or (banks[0].code if banks else "")
    bank = next((b for b in banks if b.code == chosen), None)
    pr = PageRequest.of(request, "period", "desc")
    s = statements.c
    open_lines = (sa.select(sa.func.count()).where(statement_lines.c.statement_id == s.id,
                                                   statement_lines.c.status == "open")
                  .scalar_subquery())
    table = Table(f"statements-{chosen}", f"Statements of {chosen}", [
        Column("period", "Day", s.period_end), Column("ref", "Statement", s.statement_ref),
        Column("format", "Format", s.format), Column("lines", "Lines", s.line_count, numeric=True),
        Column("open", "Unmatched lines", numeric=True),
        Column("opening", "Opening", s.opening_minor, numeric=True),
        Column("closing", "Closing", s.closing_minor, numeric=True),
        Column("status", "Status"), Column("imported", "Imported", s.imported_at)],
        base_query={"account": chosen},
        caption="A day is reconciled when every statement line is matched or resolved.")
    if bank is not None:
        async with engine_of(request).connect() as conn:
            await fill(conn, table, sa.select(statements, open_lines.label("open_lines"))
                       .where(s.bank_account_id == bank.id), pr, lambda r: {
                "period": r.period_end, "ref": r.statement_ref, "format": r.format,
                "lines": r.line_count, "open": r.open_lines,
                "opening": Amount(r.opening_minor, r.currency),
                "closing": Amount(r.closing_minor, r.currency),
                "status": "reconciled" if r.open_lines == 0 else "exceptions open",
                "imported": r.imported_at,
                "report": f"/console/finance/report?account={chosen}&day={r.period_end}"},
                tiebreak=[s.id])
    return respond(request, session, "finance_accounts.html", table, pr, banks=banks,
                   chosen=chosen)


@router.get("/exceptions")
async def exception_queue(request: Request, session: StaffSession) -> Response:
    status = request.query_params.get("status", "open")
    pr = PageRequest.of(request, "date")
    e = exceptions.c
    table = Table(f"exceptions-{status}", f"Reconciliation exceptions ({status})", [
        Column("id", "#", e.id, numeric=True), Column("date", "Date", e.date),
        Column("kind", "Kind", e.kind), Column("amount", "Amount", e.amount_minor, numeric=True),
        Column("reference", "Reference", e.reference), Column("description", "Description"),
        Column("candidates", "Candidates", numeric=True), Column("status", "Status", e.status),
        Column("resolved_by", "Resolved by", e.resolved_by)],
        base_query={"status": status})
    query = sa.select(exceptions)
    if status in ("open", "resolved"):
        query = query.where(e.status == status)
    async with engine_of(request).connect() as conn:
        await fill(conn, table, query, pr, lambda r: {
            "id": Link(str(r.id), f"/console/finance/exceptions/{r.id}"), "date": r.date,
            "kind": r.kind.replace("_", " "), "amount": Amount(r.amount_minor, r.currency),
            "reference": r.reference or "", "description": r.description,
            "candidates": len(r.candidates or ()), "status": r.status,
            "resolved_by": r.resolved_by or ""}, tiebreak=[e.id])
    return respond(request, session, "table_page.html", table, pr)


@router.get("/exceptions/{exception_id}")
async def exception_detail(request: Request, exception_id: int, session: StaffSession,
                           note: str = "", error: str = "") -> Response:
    async with engine_of(request).connect() as conn:
        record = await reconciliation.get_exception(conn, exception_id)
        if record is None:
            return render(request, "error.html", session, status=404,
                          message=f"no reconciliation exception {exception_id}")
        bank = None
        if record.bank_account_id is not None:
            bank = await reconciliation.get_bank_account(conn, record.bank_account_id)
        trail = await reconciliation.audit_trail(conn, exception_id=exception_id)
    return render(request, "finance_exception.html", session, record=record, bank=bank,
                  trail=trail, Amount=Amount, note=note, error=error)


@router.post("/exceptions/{exception_id}/resolve")
async def resolve(request: Request, exception_id: int, session: StaffSession) -> Response:
    form = await checked_form(request, session)
    how = form.get("how", "")
    action = f"exception.{how or 'resolve'}"
    subject = f"recon-exception:{exception_id}"
    reason = form.get("reason", "").strip()
    await may_act(request, session, "finance", action, subject)
    user, engine = session.user, engine_of(request)
    back = f"/console/finance/exceptions/{exception_id}"
    try:
        async with engine.begin() as conn:
            if how == "match":
                counterparts = [c.strip() for c in form.get("counterpart", "").split(",")
                                if c.strip()]
                if not counterparts:
                    raise reconciliation.InvalidResolution("choose what it matches")
                match_id = await reconciliation.resolve_by_match(
                    conn, exception_id, counterparts=counterparts, actor=user.actor,
                    reason=reason)
            elif how == "adjust":
                match_id = await reconciliation.post_adjustment(
                    conn, exception_id, counter_account=form.get("counter_account", "").strip(),
                    actor=user.actor, reason=reason)
            elif how == "write_off":
                match_id = await reconciliation.write_off(conn, exception_id, actor=user.actor,
                                                          reason=reason)
            else:
                raise reconciliation.InvalidResolution("choose match, adjustment or write-off")
            await audit.record(conn, actor=user.actor, role=user.role.value, action=action,
                               subject=subject, reason=reason,
                               details={"match_id": str(match_id), **{
                                   k: v for k, v in form.items()
                                   if k in ("counterpart", "counter_account")}})
    except (reconciliation.ReconciliationError, ledger.LedgerError) as exc:
        await audit.record_refusal(engine, actor=user.actor, role=user.role.value,
                                   action=action, subject=subject, reason=reason, why=str(exc))
        from urllib.parse import urlencode

        return redirect(back + "?" + urlencode({"error": str(exc)}))
    return redirect(back, f"exception {exception_id} resolved ({how.replace('_', '-')})")


@router.get("/report")
async def report(request: Request, session: StaffSession) -> Response:
    zone = settings_of(request).timezone
    async with engine_of(request).connect() as conn:
        banks = await reconciliation.list_bank_accounts(conn)
        chosen = request.query_params.get("account") or (banks[0].code if banks else "")
        try:
            day = dt.date.fromisoformat(request.query_params.get("day", ""))
        except ValueError:
            day = today_local(zone)
        bank = next((b for b in banks if b.code == chosen), None)
        built = await reconciliation.build_report(conn, bank, day) if bank else None
    if built is not None and request.query_params.get("format") == "csv":
        return Response(built.to_csv(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="recon-{chosen}-{day}.csv"'})
    if built is not None and request.query_params.get("format") == "xlsx":
        return exports.respond(f"recon-{chosen}-{day}", "xlsx", [exports.recon_report(built)])
    return render(request, "finance_report.html", session, report=built, banks=banks,
                  chosen=chosen, day=day, Amount=Amount)


__all__: list[Any] = ["router"]
