"""The console's own routes: sign-in and out, the home page, the audit trail, the
stylesheet; and the list of every area's router."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

import gateways
import reconciliation
from gateways.schema import payout_control_audit
from lending.schema import decisions as loan_decisions
from paycore.console import audit, staff
from paycore.console.staff import Session
from paycore.console.web import (
    COOKIE,
    HERE,
    LOGIN_CSRF_COOKIE,
    Column,
    Link,
    PageRequest,
    Refused,
    Table,
    checked_form,
    engine_of,
    fill,
    new_login_csrf,
    redirect,
    render,
    respond,
    session_of,
    settings_of,
    storable_text,
)
from paycore.schema import console_audit

router = APIRouter(prefix="/console", include_in_schema=False)
StaffSession = Annotated[Session, Depends(session_of)]


def routers() -> list[APIRouter]:
    from paycore.console import books, charts, finance, payments, risk

    areas: list[APIRouter] = [risk.router, finance.router, payments.router, books.router,
                              charts.router]
    return [router, *areas]


@router.get("/static/console.css")
async def stylesheet() -> FileResponse:
    return FileResponse(HERE / "static" / "console.css", media_type="text/css",
                        headers={"Cache-Control": "max-age=3600"})


def _safe_next(target: str | None) -> str:
    # only a path inside the console: never an open redirect to another site
    if target and target.startswith("/console") and "//" not in target:
        return target
    return "/console"


@router.get("/login")
async def login_page(request: Request, next: str = "/console", error: str = "") -> Response:
    token = new_login_csrf()
    response = render(request, "login.html", None, next=_safe_next(next), login_csrf=token,
                      error=error)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=settings_of(request).secure_cookies, path="/console")
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    storable_text(form)
    sent, expected = form.get("csrf_token"), request.cookies.get(LOGIN_CSRF_COOKIE)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise Refused("the sign-in form has no valid CSRF token: open the sign-in page again")
    username = str(form.get("username", "")).strip().lower()
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/console")))
    engine = engine_of(request)
    try:
        # a place among the sign-ins checked at once, before a connection is taken: a
        # flood of sign-in forms must not hold the pool the API's payments use
        with staff.sign_in_slot():
            async with engine.begin() as conn:  # a failure's count commits with its refusal
                try:
                    user = await staff.authenticate(conn, username, password)
                except staff.LoginRefused as exc:
                    await audit.record(conn, actor=f"user:{username[:64] or '-'}", role="-",
                                       action="login", subject=f"staff:{username[:64]}",
                                       reason="", outcome="refused", details={"why": exc.why})
                    user = None
                    message = str(exc)
                if user is not None:
                    token, _ = await staff.open_session(conn, user)
                    await audit.record(conn, actor=user.actor, role=user.role.value,
                                       action="login", subject=f"staff:{user.username}",
                                       reason="")
    except staff.TooManySignIns as exc:
        busy = render(request, "login.html", None, status=429, next=target, error=str(exc),
                      login_csrf=expected)
        busy.headers["Retry-After"] = "5"
        return busy
    if user is None:
        return render(request, "login.html", None, status=401, next=target, error=message,
                      login_csrf=expected)
    response = redirect(target)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/console",
                        secure=settings_of(request).secure_cookies,
                        max_age=int(staff.SESSION_LIFETIME.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


@router.post("/logout")
async def logout(request: Request, session: StaffSession) -> Response:
    await checked_form(request, session)
    async with engine_of(request).begin() as conn:
        await staff.close_session(conn, request.cookies.get(COOKIE, ""))
        await audit.record(conn, actor=session.user.actor, role=session.user.role.value,
                           action="logout", subject=f"staff:{session.user.username}", reason="")
    response = redirect("/console/login")
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("")
async def home(request: Request, session: StaffSession) -> Response:
    from gateways.schema import payment_attempts, payouts, refunds
    from lending.schema import loans

    async with engine_of(request).connect() as conn:
        counts: dict[str, Any] = {
            "review_queue": await conn.scalar(sa.select(sa.func.count()).select_from(loans)
                                              .where(loans.c.status == "manual_review")),
            "open_exceptions": len(await reconciliation.list_exceptions(conn, status="open")),
            "pending_approval": len(await gateways.list_pending_approval(conn)),
            "unknown": sum([await conn.scalar(sa.select(sa.func.count()).select_from(t).where(
                t.c.status.in_(("unknown", "review")))) or 0
                for t in (payment_attempts, refunds, payouts)]),
        }
    return render(request, "home.html", session, counts=counts)


@router.get("/audit")
async def audit_page(request: Request, session: StaffSession) -> Response:
    pr = PageRequest.of(request, "at", "desc")
    a = console_audit.c
    table = Table("console-audit", "Console decisions", [
        Column("at", "When", a.id), Column("actor", "Who", a.actor),
        Column("role", "Role", a.role), Column("action", "What", a.action),
        Column("subject", "On", a.subject), Column("reason", "Why"),
        Column("outcome", "Outcome", a.outcome), Column("details", "Details")],
        caption="Every decision taken in the console, and by a staff user's --as on the "
                "command line (details: via cli), newest first. Rows are never changed.")
    async with engine_of(request).connect() as conn:
        await fill(conn, table, sa.select(console_audit), pr, lambda r: {
            "at": r.at, "actor": r.actor, "role": r.role, "action": r.action,
            "subject": r.subject, "reason": r.reason, "outcome": r.outcome,
            "details": ", ".join(f"{k}: {v}" for k, v in (r.details or {}).items())})
        payout_rows = (await conn.execute(sa.select(payout_control_audit).order_by(
            payout_control_audit.c.id.desc()).limit(50))).all()
        recon_rows = list(reversed(await reconciliation.audit_trail(conn)))[:50]
        loan_rows = (await conn.execute(sa.select(loan_decisions).where(
            loan_decisions.c.decided_by != "underwriting").order_by(
            loan_decisions.c.id.desc()).limit(50))).all()
    if pr.export:
        return respond(request, session, "audit.html", table, pr)
    return render(request, "audit.html", session, table=table, payout_rows=payout_rows,
                  recon_rows=recon_rows, loan_rows=loan_rows, link=Link)
