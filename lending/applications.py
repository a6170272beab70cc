"""Applications: an automatic decision with its reasons and inputs stored, and the manual
review queue where a risk officer approves or declines with a comment.

Both decide under the borrower's row lock against `line - exposure` (`lending.exposure`):
two applications, or two officers, racing for the same borrower cannot together exceed
the line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection

from lending import lifecycle, store
from lending.borrowers import borrower_data
from lending.catalogue import product_for_new_loan
from lending.config import LendingConfig
from lending.creditline import CreditLine, credit_line
from lending.errors import DuplicateLoan, InvalidInput, NotInReview, SelfReview
from lending.exposure import line_for, lock_borrower
from lending.lifecycle import LoanStatus
from lending.money import from_money
from lending.schema import decisions, loan_events, loans
from lending.store import LoanRecord
from lending.underwriting import Application, Decision, Outcome, _jsonable, decide

__all__ = [
    "ApplicationResult",
    "LoanApplication",
    "StoredDecision",
    "apply_for_loan",
    "current_credit_line",
    "decisions_for",
    "review",
    "review_queue",
]

log = structlog.get_logger("lending")


@dataclass(frozen=True)
class LoanApplication:
    borrower_id: str
    product_code: str
    amount: Money
    term_days: int
    applied_on: dt.date
    loan_id: str = ""
    #: who applied (`user:<name>`, or the borrower's key): recorded as the actor of the
    #: loan's first event, and never the officer who decides it in review
    applied_by: str = "applicant"


@dataclass(frozen=True)
class ApplicationResult:
    loan: LoanRecord
    decision: Decision


@dataclass(frozen=True)
class StoredDecision:
    id: int
    loan_id: str
    outcome: Outcome
    decided_by: str
    decided_on: dt.date
    policy_version: str
    comment: str
    reasons: list[dict[str, Any]]
    inputs: dict[str, Any]
    credit_line: dict[str, Any]


async def current_credit_line(conn: AsyncConnection, borrower_id: str, product_code: str,
                              on: dt.date, config: LendingConfig) -> CreditLine:
    """The credit line recomputed from the borrower's data as it stands now: its limit,
    the exposure counted against it and what is still available to draw (the figure every
    application, approval and disbursement is checked against)."""
    return await line_for(conn, borrower_id, product_code, on, config)


async def _store_decision(conn: AsyncConnection, loan_id: str, outcome: Outcome, by: str,
                          on: dt.date, policy_version: str, comment: str, reasons: Any,
                          inputs: Any, line: Any) -> None:
    await conn.execute(sa.insert(decisions).values(
        loan_id=loan_id, outcome=outcome.value, decided_by=by, decided_on=on,
        policy_version=policy_version, comment=comment, reasons=_jsonable(reasons),
        inputs=_jsonable(inputs), credit_line=_jsonable(line), recorded_at=store.utcnow()))


async def apply_for_loan(conn: AsyncConnection, request: LoanApplication,
                         config: LendingConfig) -> ApplicationResult:
    """Record an application and decide it at once: approved, declined, or queued for a
    person. The decision, its reasons and every input it used are stored."""
    # one application per borrower at a time: two racing applications must not both fit
    # the same credit line
    borrower = await lock_borrower(conn, request.borrower_id)
    product = await product_for_new_loan(conn, request.product_code, request.applied_on, config)
    if borrower.currency != product.currency:
        raise InvalidInput(f"borrower {borrower.id!r} is paid in {borrower.currency}; "
                           f"product {product.code!r} lends in {product.currency}")
    amount = from_money(request.amount, product.currency)
    loan_id = request.loan_id or f"loan-{uuid.uuid4().hex[:12]}"
    # bad terms are refused before anything is written (term, amount range, negative)
    loan = lifecycle.apply(loan_id, borrower.id, product, amount, request.term_days,
                           request.applied_on)
    if await conn.scalar(sa.select(loans.c.id).where(loans.c.id == loan_id)) is not None:
        raise DuplicateLoan(loan_id)

    data = await borrower_data(conn, borrower.id, request.applied_on, config)
    decision = decide(
        Application(loan_id, borrower.id, product, amount, request.term_days, request.applied_on),
        data, config.underwriting, request.applied_on,
    )
    record = LoanRecord(loan=loan, requested_minor=amount, version=0)
    await store.insert(conn, record, actor=request.applied_by or "applicant")
    on = request.applied_on
    summary = "; ".join(r.message for r in decision.reasons
                        if r.effect is decision.outcome) or decision.outcome.value
    if decision.outcome is Outcome.APPROVE:
        after = lifecycle.approve(loan, on, note=summary)
    elif decision.outcome is Outcome.DECLINE:
        after = lifecycle.decline(loan, on, summary)
    else:
        after = lifecycle.refer_to_review(loan, on, summary)
    record = await store.save(conn, record, dataclasses.replace(record, loan=after),
                              actor="underwriting")
    await _store_decision(conn, loan_id, decision.outcome, "underwriting", on,
                          decision.policy_version, "", decision.reasons, decision.inputs,
                          decision.credit_line)
    log.info("loan.decided", loan_id=loan_id, borrower_id=borrower.id,
             outcome=decision.outcome.value, reasons=[r.code for r in decision.reasons])
    return ApplicationResult(record, decision)


async def review_queue(conn: AsyncConnection, config: LendingConfig) -> list[LoanRecord]:
    """Applications waiting for a risk officer, oldest first."""
    rows = await conn.execute(sa.select(loans).where(loans.c.status == "manual_review")
                              .order_by(loans.c.applied_on, loans.c.id))
    return await store.records(conn, rows, config)


async def review(
    conn: AsyncConnection,
    loan_id: str,
    *,
    officer: str,
    approve: bool,
    comment: str,
    on: dt.date,
    config: LendingConfig,
    amount: Money | None = None,
) -> LoanRecord:
    """A risk officer's decision on a queued application, with their comment."""
    if not officer or not comment.strip():
        raise InvalidInput("a review needs the officer's name and a comment")
    # the borrower's lock first (the order every writer takes), then the loan's
    borrower_id = (await store.load(conn, loan_id, config)).loan.borrower_id
    await lock_borrower(conn, borrower_id)
    record = await store.load(conn, loan_id, config, for_update=True)
    if record.status is not LoanStatus.MANUAL_REVIEW:
        raise NotInReview(loan_id, record.status.value)
    applicant = await conn.scalar(sa.select(loan_events.c.actor).where(
        loan_events.c.loan_id == loan_id, loan_events.c.from_status.is_(None))
        .order_by(loan_events.c.id).limit(1))
    if applicant is not None and applicant.strip().casefold() == officer.strip().casefold():
        raise SelfReview(loan_id, officer)
    # the line in force now, before this loan is reserved against it: what is stored
    data = await borrower_data(conn, borrower_id, on, config)
    line = credit_line(data, config.underwriting.line, record.loan.product.max_amount_minor)
    if approve:
        units = None if amount is None else from_money(amount, record.currency)
        # an officer may approve less than applied for, never more than the line allows
        after = lifecycle.approve(record.loan, on, amount_minor=units,
                                  credit_line_minor=line.available_minor, note=comment)
    else:
        after = lifecycle.decline(record.loan, on, comment)
    saved = await store.save(conn, record, dataclasses.replace(record, loan=after),
                             note=comment, actor=officer)
    outcome = Outcome.APPROVE if approve else Outcome.DECLINE
    await _store_decision(
        conn, loan_id, outcome, officer, on, config.underwriting.version, comment,
        [{"code": "officer-review", "effect": outcome.value, "message": comment}],
        {"borrower": dataclasses.asdict(data), "amount_minor": after.amount_minor}, line)
    log.info("loan.reviewed", loan_id=loan_id, officer=officer, outcome=outcome.value)
    return saved


async def decisions_for(conn: AsyncConnection, loan_id: str) -> list[StoredDecision]:
    rows = await conn.execute(sa.select(decisions).where(decisions.c.loan_id == loan_id)
                              .order_by(decisions.c.id))
    return [StoredDecision(r.id, r.loan_id, Outcome(r.outcome), r.decided_by, r.decided_on,
                           r.policy_version, r.comment, r.reasons, r.inputs, r.credit_line)
            for r in rows]
