"""A loan's overpayment over HTTP (back office, `lending:review`):

    POST /v1/lending/loans/{loan_id}/overpayment/refund       to the borrower's verified
                                                              bank account, by a payout
    POST /v1/lending/loans/{loan_id}/overpayment/application  to another of their loans

The `Idempotency-Key` is the move's id: a retry moves the money once. The key that asks is
named in the audit trail (`key:<id>`); a refund above the payout threshold waits for a
second person's approval like any manual supplier payout.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
import lending
from paycore.api.auth import Principal, person
from paycore.api.deps import DomainIdempotencyKey, Engine
from paycore.api.lending import CONFIG, LoanId, LoanOut, _today
from paycore.api.models import ApiDate, MoneyIn, MoneyOut

router = APIRouter(prefix="/v1/lending/loans", tags=["lending"])
#: an overpayment's refund leaves as a payout a second person approves, and its maker is
#: one side of that: a person (the key's holder), never `key:<id>`, which the same person
#: could then approve as themselves
Reviewer = Annotated[Principal, person("lending:review", "refunding or applying an overpayment")]


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MoneyIn
    on: ApiDate | None = None
    account_id: str | None = Field(None, max_length=80, description="the borrower's account "
                                   "in the register (default: their longest-verified one)")


class ApplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_loan_id: str = Field(max_length=80)
    amount: MoneyIn
    on: ApiDate | None = None


class MoveOut(BaseModel):
    move_id: str
    kind: str
    amount: MoneyOut
    loan: LoanOut
    payout_id: str | None = None
    payout_status: str | None = None
    target_loan: LoanOut | None = None


@router.post("/{loan_id}/overpayment/refund", status_code=201)
async def refund(loan_id: LoanId, body: RefundIn, principal: Reviewer, engine: Engine,
                 key: DomainIdempotencyKey) -> MoveOut:
    """Refund part or all of the overpayment held for a loan to the borrower's bank."""
    from paycore.overpayments import refund_overpayment

    async def work(conn: AsyncConnection) -> MoveOut:
        res = await refund_overpayment(conn, loan_id, body.amount.to_money(),
                                       body.on or _today(), CONFIG, move_id=key,
                                       actor=principal.actor,
                                       account_id=body.account_id)
        m = res.move
        return MoveOut(move_id=m.move_id, kind=m.kind,
                       amount=MoneyOut.minor(m.amount_minor, m.loan.currency),
                       loan=LoanOut.of(m.loan), payout_id=res.payout.id,
                       payout_status=res.payout.status.value)
    return await ledger.transact(engine, work)


@router.post("/{loan_id}/overpayment/application", status_code=201)
async def apply(loan_id: LoanId, body: ApplyIn, principal: Reviewer, engine: Engine,
                key: DomainIdempotencyKey) -> MoveOut:
    """Apply part or all of a loan's overpayment to another loan of the same borrower."""
    async def work(conn: AsyncConnection) -> MoveOut:
        m = await lending.apply_overpayment(conn, loan_id, body.target_loan_id,
                                            body.amount.to_money(), body.on or _today(),
                                            CONFIG, move_id=key,
                                            actor=principal.actor)
        return MoveOut(move_id=m.move_id, kind=m.kind,
                       amount=MoneyOut.minor(m.amount_minor, m.loan.currency),
                       loan=LoanOut.of(m.loan),
                       target_loan=LoanOut.of(m.repayment.loan) if m.repayment else None)
    return await ledger.transact(engine, work)
