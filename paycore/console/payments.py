"""Payments: attempts, refunds and payouts in `unknown` or review with their bank messages
and inquiry history; payouts waiting for a second person's approval (approve, reject, or
request one); supplier bank accounts waiting for verification; payout review items; bank
health, breaker state and certificates.

Every action calls the gateways function the API calls, with the actor `user:<name>`: the
four-eyes checks there (requester never approves; who entered an account never verifies it)
compare people."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from moneyed import CurrencyDoesNotExist, Money

import gateways
import ledger
from gateways.account_keys import mask
from gateways.inquiries import Subject
from gateways.schema import (
    bank_calls,
    bank_notifications,
    beneficiary_accounts,
    inquiries,
    payment_attempts,
    payouts,
    refunds,
    supplier_payouts,
)
from paycore.console import audit
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
)
from paycore.payout_controls import controls_from_env

router = APIRouter(prefix="/console/payments", include_in_schema=False)
StaffSession = Annotated[Session, Depends(session_of)]
KINDS = {"attempts": payment_attempts, "refunds": refunds, "payouts": payouts}
_SUBJECTS = {"attempts": Subject.ATTEMPT, "refunds": Subject.REFUND, "payouts": Subject.PAYOUT}
STUCK = ("unknown", "review")


@router.get("")
async def stuck(request: Request, session: StaffSession) -> Response:
    kind = request.query_params.get("kind", "attempts")
    t = KINDS.get(kind, payment_attempts)
    pr = PageRequest.of(request, "updated", "desc")
    table = Table(f"stuck-{kind}", f"{kind.capitalize()} in unknown or review", [
        Column("id", "Id", t.c.id), Column("bank", "Bank", t.c.bank),
        Column("status", "Status", t.c.status),
        Column("amount", "Amount", t.c.amount_minor, numeric=True),
        Column("why", "Why"), Column("updated", "Last change", t.c.updated_at)],
        base_query={"kind": kind},
        caption="Only the bank's status inquiry settles an unknown outcome; nothing is guessed.")
    query = sa.select(t).where(t.c.status.in_(STUCK))
    if t is payouts:
        query = sa.select(t).where(sa.or_(t.c.status.in_(STUCK), t.c.review_reason.is_not(None)))
    async with engine_of(request).connect() as conn:
        await fill(conn, table, query, pr, lambda r: {
            "id": Link(r.id, f"/console/payments/records/{kind}/{r.id}"), "bank": r.bank or "",
            "status": r.status, "amount": Amount(r.amount_minor, r.currency),
            "why": (getattr(r, "review_reason", None) or getattr(r, "failure_reason", None)
                    or ""), "updated": r.updated_at}, tiebreak=[t.c.id])
    return respond(request, session, "payments_stuck.html", table, pr, kind=kind)


@router.get("/records/{kind}/{record_id}")
async def record(request: Request, kind: str, record_id: str, session: StaffSession) -> Response:
    t = KINDS.get(kind)
    if t is None:
        return render(request, "error.html", session, status=404, message=f"no such list {kind}")
    subject = {"attempts": "payment", "refunds": "refund", "payouts": "payout"}[kind]
    async with engine_of(request).connect() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.id == record_id))).first()
        if row is None:
            return render(request, "error.html", session, status=404,
                          message=f"no {subject} {record_id}")
        refs = [record_id] + ([row.intent_id] if kind == "attempts" else [])
        messages = (await conn.execute(sa.select(bank_notifications).where(
            bank_notifications.c.reference.in_(refs)).order_by(bank_notifications.c.id))).all()
        asked = (await conn.execute(sa.select(inquiries).where(
            inquiries.c.subject_id.in_(refs)).order_by(inquiries.c.id))).all()
        calls = (await conn.execute(sa.select(bank_calls).where(
            bank_calls.c.subject_id.in_(refs)).order_by(bank_calls.c.id))).all()
        reviews = [r for r in await gateways.list_payout_reviews(conn, status=None)
                   if r.payout_id == record_id] if kind == "payouts" else []
    return render(request, "payments_record.html", session, kind=kind, subject=subject,
                  row=row, messages=messages, asked=asked, calls=calls, reviews=reviews,
                  Amount=Amount)


@router.post("/records/{kind}/{record_id}/inquire")
async def ask_the_bank(request: Request, kind: str, record_id: str,
                       session: StaffSession) -> Response:
    """Ask the bank about an attempt, refund or payout in `unknown` now: the janitor's own
    status inquiry (gateways.inquire_now), so the inquiry history shows it and the record
    is settled, postponed or sent to review exactly as a janitor's pass would; who asked,
    when, and what the bank said go to the audit trail. Payments staff only."""
    form = await checked_form(request, session)
    subject = _SUBJECTS.get(kind)
    if subject is None:
        return render(request, "error.html", session, status=404, message=f"no such list {kind}")
    action, target = "payment.inquire", f"{subject.value}:{record_id}"
    reason = form.get("reason", "").strip() or "asked the bank from the console"
    await may_act(request, session, "payments", action, target)
    user, engine = session.user, engine_of(request)
    back = f"/console/payments/records/{kind}/{record_id}"
    banks = getattr(request.app.state, "banks", None)
    try:
        if not isinstance(banks, gateways.BankDirectory):
            raise gateways.InvalidPaymentRequest(
                "this console process has no bank directory (PAYCORE_BANKS): the janitor "
                "asks the banks")
        asked = await gateways.inquire_now(engine, banks, subject, record_id)
    except gateways.PaymentError as exc:
        await audit.record_refusal(engine, actor=user.actor, role=user.role.value,
                                   action=action, subject=target, reason=reason, why=str(exc))
        return redirect(back + "?" + urlencode({"error": str(exc)}))
    async with engine.begin() as conn:
        await audit.record(conn, actor=user.actor, role=user.role.value, action=action,
                           subject=target, reason=reason, details={
                               "bank": asked.bank, "result": asked.result,
                               "answer": asked.answer, "status_before": asked.status_before,
                               "status_after": asked.status_after, "tries": asked.tries})
    return redirect(back, f"asked {asked.bank}: {asked.answer or asked.result}; the "
                          f"{subject.value} is now {asked.status_after}")


#: how many accounts the approvals page lists (waiting for verification; offered to pay to)
ACCOUNTS_SHOWN = 100


def _account(r: Any) -> dict[str, str]:
    return {"id": r.id, "supplier_id": r.supplier_id, "holder_name": r.holder_name,
            "bank_name": r.bank_name, "masked_number": mask("****" + r.account_last4),
            "changed_by": r.changed_by}


@router.get("/approvals/queue")
async def approvals(request: Request, session: StaffSession, note: str = "",
                    error: str = "") -> Response:
    pr = PageRequest.of(request, "requested")
    sp = supplier_payouts.c
    async with engine_of(request).connect() as conn:
        # the payouts waiting, oldest first, a page at a time: one query (the payout and its
        # request side by side), not two per payout
        rows = (await conn.execute(
            sa.select(payouts.c.id, payouts.c.amount_minor, payouts.c.currency, sp.supplier_id,
                      sp.requested_by, sp.approval_reason, sp.created_at)
            .join(payouts, payouts.c.id == sp.payout_id)
            .where(payouts.c.status == gateways.PayoutState.PENDING_APPROVAL.value)
            .order_by(sp.created_at, sp.payout_id)
            .limit(pr.per_page + 1).offset((pr.page - 1) * pr.per_page))).all()
        # the register's accounts a page needs, not the whole register: those waiting for
        # verification (oldest first) and the newest verified ones offered to pay to
        b = beneficiary_accounts.c
        shown = [b.id, b.supplier_id, b.holder_name, b.bank_name, b.account_last4,
                 b.changed_by]
        accounts = [_account(r) for r in await conn.execute(
            sa.select(*shown).where(b.status == gateways.AccountState.UNVERIFIED.value)
            .order_by(b.changed_at, b.id).limit(ACCOUNTS_SHOWN))]
        usable = [_account(r) for r in await conn.execute(
            sa.select(*shown).where(b.status == gateways.AccountState.VERIFIED.value)
            .order_by(b.verified_at.desc(), b.id).limit(ACCOUNTS_SHOWN))]
        reviews = await gateways.list_payout_reviews(conn)
    pending = [(r, r) for r in rows[:pr.per_page]]
    return render(request, "payments_approvals.html", session, pending=pending,
                  accounts=accounts, usable=usable, reviews=reviews, Amount=Amount,
                  note=note, error=error, page=pr.page, has_next=len(rows) > pr.per_page)


async def _act(request: Request, session: StaffSession, action: str, subject: str,
               reason: str, work: Any, done: str) -> Response:
    """Run one decision in a transaction with its audit row; a refusal is recorded and
    shown on the approvals page."""
    await may_act(request, session, "payments", action, subject)
    user, engine = session.user, engine_of(request)
    async def decide(conn: Any) -> None:
        details = await work(conn)
        await audit.record(conn, actor=user.actor, role=user.role.value, action=action,
                           subject=subject, reason=reason, details=details)

    try:
        # run again whole on a deadlock (a payout's check locks the supplier's disbursement
        # payouts, which a return being booked may hold), as the API and the workers do
        await ledger.transact(engine, decide)
    except (gateways.PaymentError, ledger.LedgerError) as exc:
        await audit.record_refusal(engine, actor=user.actor, role=user.role.value,
                                   action=action, subject=subject, reason=reason, why=str(exc))
        return redirect("/console/payments/approvals/queue?" + urlencode({"error": str(exc)}))
    return redirect("/console/payments/approvals/queue", done)


@router.post("/payouts/{payout_id}/approve")
async def approve(request: Request, payout_id: str, session: StaffSession) -> Response:
    form = await checked_form(request, session)
    reason = form.get("reason", "").strip() or "approved"
    controls = controls_from_env()

    async def work(conn: Any) -> dict[str, Any]:
        payout = await gateways.approve_payout(conn, payout_id, actor=session.user.actor,
                                               controls=controls)
        return {"status": payout.status.value}
    response = await _act(request, session, "payout.approve", f"payout:{payout_id}", reason,
                          work, f"payout {payout_id} approved")
    banks = getattr(request.app.state, "banks", None)
    if isinstance(banks, gateways.BankDirectory) and "error=" not in response.headers["location"]:
        await gateways.submit_payout(engine_of(request), banks, payout_id)
    return response


@router.post("/payouts/{payout_id}/reject")
async def reject(request: Request, payout_id: str, session: StaffSession) -> Response:
    form = await checked_form(request, session)
    reason = form.get("reason", "").strip()

    async def work(conn: Any) -> dict[str, Any]:
        payout = await gateways.reject_payout(conn, payout_id, actor=session.user.actor,
                                              reason=reason)
        return {"status": payout.status.value}
    return await _act(request, session, "payout.reject", f"payout:{payout_id}", reason, work,
                      f"payout {payout_id} rejected")


@router.post("/payouts/request")
async def request_payout(request: Request, session: StaffSession) -> Response:
    form = await checked_form(request, session)
    reason = form.get("reason", "").strip()
    supplier, account_id = form.get("supplier", "").strip(), form.get("account", "").strip()
    payout_id = f"con-{uuid.uuid4().hex[:20]}"

    async def work(conn: Any) -> dict[str, Any]:
        if not reason:
            raise gateways.InvalidPaymentRequest("say why this payout is made")
        currency = form.get("currency", "CNY").strip().upper()
        try:
            amount = Money(Decimal(form.get("amount", "").replace(",", "")), currency)
        except (InvalidOperation, ValueError):
            raise gateways.InvalidPaymentRequest("the amount is not a number") from None
        except CurrencyDoesNotExist:
            raise gateways.InvalidPaymentRequest(
                f"{currency[:8]!r} is not a currency code (e.g. CNY)") from None
        payout = await gateways.request_supplier_payout(conn, gateways.SupplierPayoutRequest(
            payout_id=payout_id, supplier_id=supplier, account_id=account_id, amount=amount,
            requested_by=session.user.actor, manual=True, purpose="manual",
            description=reason[:200]), controls_from_env())
        return {"payout_id": payout.id, "status": payout.status.value,
                "amount_minor": payout.amount_minor, "currency": payout.currency}
    return await _act(request, session, "payout.request", f"payout:{payout_id}", reason, work,
                      f"payout {payout_id} requested: another person must approve it")


@router.post("/accounts/{account_id}/verify")
async def verify(request: Request, account_id: str, session: StaffSession) -> Response:
    form = await checked_form(request, session)
    reason = form.get("reason", "").strip() or "verified"

    async def work(conn: Any) -> dict[str, Any]:
        account = await gateways.verify_account(conn, account_id, actor=session.user.actor)
        return {"status": account.status.value, "supplier": account.supplier_id}
    return await _act(request, session, "account.verify", f"bank-account:{account_id}", reason,
                      work, f"account {account_id} verified")


@router.post("/reviews/{review_id}/resolve")
async def resolve_review(request: Request, review_id: int, session: StaffSession) -> Response:
    form = await checked_form(request, session)
    reason = form.get("reason", "").strip()

    async def work(conn: Any) -> dict[str, Any]:
        review = await gateways.resolve_payout_review(conn, review_id, by=session.user.actor,
                                                      note=reason)
        return {"payout_id": review.payout_id}
    return await _act(request, session, "payout-review.resolve", f"payout-review:{review_id}",
                      reason, work, f"review item {review_id} resolved")


@router.get("/banks/health")
async def health(request: Request, session: StaffSession) -> Response:
    now = dt.datetime.now(dt.UTC)
    async with engine_of(request).connect() as conn:
        banks = await gateways.load_bank_health(conn)
        certificates = await gateways.load_bank_certificates(conn)
        since = now - dt.timedelta(days=7)
        a = payment_attempts.c
        outcomes = (await conn.execute(
            sa.select(a.bank, a.status, sa.func.count().label("n")).where(a.created_at >= since)
            .group_by(a.bank, a.status).order_by(a.bank, a.status))).all()
    return render(request, "payments_health.html", session, banks=banks,
                  certificates=[(c, c.state(now).value) for c in certificates],
                  outcomes=outcomes)
