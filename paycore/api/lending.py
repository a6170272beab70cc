"""Supply-chain finance over HTTP: a borrower's credit line, apply, the review queue and
decisions, disburse, extend, repay, the loan statement, the portfolio.

A borrower's key (merchant id = borrower id) sees and acts on its own loans only; another
borrower's loan is a 404. Back-office keys holding `lending:review` act on any loan and
work the manual review queue. Every POST's `Idempotency-Key` becomes the domain's own key
(the loan id of an application, the id of a repayment), so a retry acts once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
import lending
from lending import DEFAULT_CONFIG, DisbursementMode, LendingConfig
from paycore import disbursement
from paycore.api.auth import Principal, person, require_holder, requires
from paycore.api.deps import DomainIdempotencyKey, Engine, ReadConnection
from paycore.api.models import ApiDate, MoneyIn, MoneyOut
from paycore.api.problems import register_error

router = APIRouter(prefix="/v1/lending", tags=["lending"])

CONFIG: LendingConfig = DEFAULT_CONFIG

register_error(lending.LendingError, 422)
register_error(lending.NotFound, 404)
register_error(lending.IllegalTransition, 409)
register_error(lending.ExtensionNotAllowed, 409)
register_error(lending.NotInReview, 409)
register_error(lending.ConcurrentUpdate, 409)
register_error(lending.DuplicateLoan, 409)
register_error(lending.RepaymentConflict, 409)
register_error(lending.SelfReview, 403)

Reader = Annotated[Principal, requires("lending:read")]
Writer = Annotated[Principal, requires("lending:write")]
Reviewer = Annotated[Principal, requires("lending:review")]
#: deciding what underwriting queued is the second pair of eyes on credit: a person
Officer = Annotated[Principal, person("lending:review", "deciding a loan application")]
LoanId = Annotated[str, Path(max_length=80, description="the loan's id")]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _back_office(principal: Principal) -> bool:
    return principal.can("lending:review")


async def _own_loan(conn: AsyncConnection, loan_id: str, principal: Principal) -> lending.LoanRecord:
    record = await lending.load_loan(conn, loan_id, CONFIG)
    if record.loan.borrower_id != principal.merchant_id and not _back_office(principal):
        raise lending.LoanNotFound(loan_id)  # another borrower's loan does not exist for you
    return record


# -- shapes ------------------------------------------------------------------------------


class ReasonOut(BaseModel):
    code: str
    effect: str
    message: str


class LoanOut(BaseModel):
    id: str
    borrower_id: str
    product: str
    status: str
    principal: MoneyOut
    term_days: int
    applied_on: dt.date
    disbursed_on: dt.date | None
    maturity: dt.date | None
    extensions: int
    principal_outstanding: MoneyOut
    interest_accrued: MoneyOut
    interest_paid: MoneyOut
    penalty_accrued: MoneyOut
    penalty_paid: MoneyOut
    fees_charged: MoneyOut
    fees_paid: MoneyOut
    total_outstanding: MoneyOut
    overpaid: MoneyOut
    accrued_through: dt.date | None

    @classmethod
    def of(cls, r: lending.LoanRecord) -> LoanOut:
        cur = r.currency

        def m(units: int) -> MoneyOut:
            return MoneyOut.minor(units, cur)
        loan = r.loan
        return cls(id=r.id, borrower_id=loan.borrower_id, product=loan.product.code,
                   status=r.status.value, principal=m(loan.amount_minor), term_days=loan.term_days,
                   applied_on=loan.applied_on, disbursed_on=loan.disbursed_on,
                   maturity=loan.maturity, extensions=loan.extensions,
                   principal_outstanding=m(r.principal_outstanding_minor),
                   interest_accrued=m(r.interest_accrued_minor),
                   interest_paid=m(r.interest_paid_minor),
                   penalty_accrued=m(r.penalty_accrued_minor),
                   penalty_paid=m(r.penalty_paid_minor), fees_charged=m(r.fees_charged_minor),
                   fees_paid=m(r.fees_paid_minor), total_outstanding=m(r.total_outstanding_minor),
                   overpaid=m(r.overpaid_minor), accrued_through=r.accrued_through)


class ApplicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    borrower_id: str | None = Field(None, description="default: the caller's merchant id; "
                                    "another borrower needs `lending:review`")
    product: str = Field("supply_chain", examples=["supply_chain", "merchant_micro"])
    amount: MoneyIn
    term_days: int = Field(examples=[30])
    applied_on: ApiDate | None = None


class DecisionOut(BaseModel):
    loan: LoanOut
    outcome: str
    reasons: list[ReasonOut]
    credit_line_limit: MoneyOut
    credit_line_available: MoneyOut
    credit_line_steps: list[str]


class CreditLineOut(BaseModel):
    borrower_id: str
    product: str
    on: dt.date
    limit: MoneyOut
    #: principal outstanding, approvals not yet drawn and (per policy) interest and fees
    exposure: MoneyOut
    available: MoneyOut
    steps: list[str]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["approve", "decline"]
    comment: str = Field(min_length=1)
    amount: MoneyIn | None = Field(None, description="approve a smaller amount")
    on: ApiDate | None = None


class DisburseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: ApiDate | None = None
    mode: DisbursementMode | None = None


class DateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: ApiDate | None = None


class RepaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MoneyIn
    source: Literal["bank", "offset"] = "bank"
    on: ApiDate | None = None


class AllocationOut(BaseModel):
    bucket: str
    applied: MoneyOut


class RepaymentOut(BaseModel):
    repayment_id: str
    loan: LoanOut
    allocation: list[AllocationOut]
    excess: MoneyOut
    entry_id: str | None


class StatementOut(BaseModel):
    loan: LoanOut
    on: dt.date
    days_accrued: int
    days_to_maturity: int | None
    days_past_due: int
    bucket: str
    interest_to_maturity: MoneyOut
    next_due: MoneyOut | None
    repayments: list[dict[str, Any]]
    history: list[dict[str, Any]]


class QueueItem(BaseModel):
    loan: LoanOut
    why: list[str]


class PortfolioRowOut(BaseModel):
    currency: str
    bucket: str
    loans: int
    principal: MoneyOut
    interest: MoneyOut
    penalty: MoneyOut
    fees: MoneyOut
    total: MoneyOut


class PortfolioOut(BaseModel):
    on: dt.date
    rows: list[PortfolioRowOut]
    loan_book_equals_ledger: bool


# -- routes ------------------------------------------------------------------------------


@router.post("/applications", status_code=201)
async def apply(body: ApplicationIn, principal: Writer, engine: Engine,
                key: DomainIdempotencyKey) -> DecisionOut:
    """Apply for a loan; the automatic decision (approve / decline / manual review), its
    reasons and the credit line it was measured against come back at once."""
    borrower = body.borrower_id or principal.merchant_id
    if borrower != principal.merchant_id:
        if not _back_office(principal):
            raise lending.BorrowerNotFound(borrower)
        # the applicant is one side of four eyes (another officer decides what goes to
        # review): a person
        require_holder(principal, "lending:write", "applying for another borrower")
    loan_id = "loan-" + hashlib.sha256(key.encode()).hexdigest()[:16]
    request = lending.LoanApplication(borrower, body.product, body.amount.to_money(),
                                      body.term_days, body.applied_on or _today(), loan_id=loan_id,
                                      applied_by=principal.actor)
    result = await ledger.transact(engine, lambda c: lending.apply_for_loan(c, request, CONFIG))
    d, line = result.decision, result.decision.credit_line
    return DecisionOut(
        loan=LoanOut.of(result.loan), outcome=d.outcome.value,
        reasons=[ReasonOut(code=r.code, effect=r.effect.value, message=r.message)
                 for r in d.reasons],
        credit_line_limit=MoneyOut.minor(line.limit_minor, line.currency),
        credit_line_available=MoneyOut.minor(line.available_minor, line.currency),
        credit_line_steps=line.explain())


@router.get("/borrowers/{borrower_id}/credit-line")
async def credit_line(
    borrower_id: Annotated[str, Path(max_length=80, description="the borrower's id")],
    principal: Reader, conn: ReadConnection, product: str = "supply_chain",
    on: dt.date | None = None,
) -> CreditLineOut:
    """The borrower's credit line as it stands: the limit step by step, the exposure
    counted against it and what a new loan may still draw (what applications, approvals
    and disbursements are checked against)."""
    if borrower_id != principal.merchant_id and not _back_office(principal):
        raise lending.BorrowerNotFound(borrower_id)
    day = on or _today()
    line = await lending.current_credit_line(conn, borrower_id, product, day, CONFIG)
    return CreditLineOut(
        borrower_id=borrower_id, product=product, on=day,
        limit=MoneyOut.minor(line.limit_minor, line.currency),
        exposure=MoneyOut.minor(line.outstanding_minor, line.currency),
        available=MoneyOut.minor(line.available_minor, line.currency), steps=line.explain())


@router.get("/review-queue")
async def review_queue(_: Reviewer, conn: ReadConnection) -> list[QueueItem]:
    """Applications waiting for a risk officer, with why each is there."""
    out = []
    for record in await lending.review_queue(conn, CONFIG):
        stored = await lending.decisions_for(conn, record.id)
        why = [r["message"] for r in stored[-1].reasons
               if r["effect"] == "manual_review"] if stored else []
        out.append(QueueItem(loan=LoanOut.of(record), why=why))
    return out


@router.post("/loans/{loan_id}/decision")
async def decide(loan_id: LoanId, body: ReviewIn, principal: Officer, engine: Engine,
                 _key: DomainIdempotencyKey) -> LoanOut:
    """A risk officer approves or declines a queued application; the comment is stored.
    The officer is a person (the key's holder), neither the borrower nor who applied."""
    amount = body.amount.to_money() if body.amount else None

    async def work(conn: AsyncConnection) -> lending.LoanRecord:
        loan = await lending.load_loan(conn, loan_id, CONFIG)
        if loan.loan.borrower_id == principal.merchant_id:
            raise lending.SelfReview(loan_id, principal.actor)
        return await lending.review(
            conn, loan_id, officer=principal.actor, approve=body.outcome == "approve",
            comment=body.comment, on=body.on or _today(), config=CONFIG, amount=amount)
    return LoanOut.of(await ledger.transact(engine, work))


@router.post("/loans/{loan_id}/disbursement")
async def disburse(loan_id: LoanId, body: DisburseIn, principal: Writer, engine: Engine,
                   _key: DomainIdempotencyKey) -> LoanOut:
    """Draw an approved loan: to the marketplace balance, or by a payout."""
    async def work(conn: AsyncConnection) -> lending.LoanRecord:
        await _own_loan(conn, loan_id, principal)
        res = await disbursement.disburse(conn, loan_id, body.on or _today(), CONFIG,
                                          mode=body.mode)
        return res.loan
    return LoanOut.of(await ledger.transact(engine, work))


@router.post("/loans/{loan_id}/extension")
async def extend(loan_id: LoanId, body: DateIn, principal: Writer, engine: Engine,
                 _key: DomainIdempotencyKey) -> LoanOut:
    """Extend once by the product's extension days, before maturity."""
    async def work(conn: AsyncConnection) -> lending.LoanRecord:
        await _own_loan(conn, loan_id, principal)
        return await lending.extend_loan(conn, loan_id, body.on or _today(), CONFIG)
    return LoanOut.of(await ledger.transact(engine, work))


@router.post("/loans/{loan_id}/repayments", status_code=201)
async def repay(loan_id: LoanId, body: RepaymentIn, principal: Writer, engine: Engine,
                key: DomainIdempotencyKey) -> RepaymentOut:
    """Repay any time; the waterfall allocation and any overpayment come back."""
    async def work(conn: AsyncConnection) -> lending.Repayment:
        await _own_loan(conn, loan_id, principal)
        return await lending.repay_loan(conn, loan_id, body.amount.to_money(),
                                        body.on or _today(), CONFIG, repayment_id=key,
                                        source=body.source)
    rep = await ledger.transact(engine, work)
    cur = rep.loan.currency
    return RepaymentOut(
        repayment_id=rep.repayment_id, loan=LoanOut.of(rep.loan),
        allocation=[AllocationOut(bucket=line.bucket.value,
                                  applied=MoneyOut.minor(line.applied_minor, cur))
                    for line in rep.allocation.lines if line.applied_minor],
        excess=MoneyOut.minor(rep.allocation.excess_minor, cur),
        entry_id=str(rep.entry.id) if rep.entry else None)


@router.get("/loans/{loan_id}")
async def statement(loan_id: LoanId, principal: Reader, conn: ReadConnection,
                    on: ApiDate | None = None) -> StatementOut:
    """The loan statement: principal, interest accrued and paid, days, next due,
    repayments and status history."""
    await _own_loan(conn, loan_id, principal)
    st = await lending.loan_statement(conn, loan_id, on or _today(), CONFIG)
    cur = st.loan.currency
    running = st.loan.status in lending.RUNNING
    return StatementOut(
        loan=LoanOut.of(st.loan), on=st.on, days_accrued=st.days_accrued,
        days_to_maturity=st.days_to_maturity, days_past_due=st.days_past_due, bucket=st.bucket,
        interest_to_maturity=MoneyOut.minor(st.interest_to_maturity_minor, cur),
        next_due=MoneyOut.minor(st.due_at_maturity_minor, cur) if running else None,
        repayments=[{"id": r.repayment_id, "source": r.source, "paid_on": r.paid_on.isoformat(),
                     "amount": MoneyOut.minor(r.amount_minor, cur).model_dump(),
                     "principal": MoneyOut.minor(r.principal_minor, cur).model_dump(),
                     "interest": MoneyOut.minor(r.interest_minor, cur).model_dump(),
                     "penalty": MoneyOut.minor(r.penalty_minor, cur).model_dump(),
                     "fees": MoneyOut.minor(r.fees_minor, cur).model_dump(),
                     "excess": MoneyOut.minor(r.excess_minor, cur).model_dump()}
                    for r in st.repayments],
        history=[{"on": e.event_on.isoformat(), "from": e.from_status, "to": e.to_status,
                  "by": e.actor, "note": e.note} for e in st.events])


@router.get("/portfolio")
async def portfolio(_: Reviewer, conn: ReadConnection, on: ApiDate | None = None) -> PortfolioOut:
    """Outstanding by days-past-due bucket, and whether the loan book equals the ledger."""
    day = on or _today()
    report = await lending.portfolio_report(conn, day, CONFIG)
    check = await lending.reconcile_with_ledger(conn, CONFIG)
    rows = [PortfolioRowOut(currency=cur, bucket=r.bucket, loans=r.loans,
                            principal=MoneyOut.minor(r.principal_minor, cur),
                            interest=MoneyOut.minor(r.interest_minor, cur),
                            penalty=MoneyOut.minor(r.penalty_minor, cur),
                            fees=MoneyOut.minor(r.fees_minor, cur),
                            total=MoneyOut.minor(r.total_minor, cur))
            for cur, rs in sorted(report.items()) for r in rs]
    return PortfolioOut(on=day, rows=rows, loan_book_equals_ledger=check.ok)
