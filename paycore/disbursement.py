"""Disbursing a loan: lending books it out to the borrower's supplier payable, and — in
payout mode — gateways pays that amount out at once, in the same transaction.

    Dr loan portfolio, Cr 2202.payable.<supplier>        (lending: loan.disbursement)
    hold Dr 2202.payable.<supplier>, Cr 1103.clearing.payout   (gateways: the payout)

The loan becomes active when the payout is requested (the hold reserves the money for the
supplier, so no settlement can offset it); in balance mode it is active at once and the
money waits on the supplier's marketplace balance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

import gateways
import lending
from lending import DisbursementMode, LendingConfig
from paycore.settlement import beneficiary_for

__all__ = ["DisbursementResult", "disburse"]


@dataclass(frozen=True)
class DisbursementResult:
    loan: lending.LoanRecord
    disbursement: lending.Disbursement
    payout: gateways.Payout | None


async def disburse(
    conn: AsyncConnection,
    loan_id: str,
    on: dt.date,
    config: LendingConfig,
    *,
    mode: DisbursementMode | None = None,
    beneficiary: gateways.Beneficiary | None = None,
    banks: tuple[str, ...] = (),
) -> DisbursementResult:
    mode = mode or config.disbursement
    if mode is DisbursementMode.MARKETPLACE_BALANCE:
        d = await lending.disburse_loan(conn, loan_id, on, config, mode=mode)
        return DisbursementResult(d.loan, d, None)
    record = await lending.load_loan(conn, loan_id, config)
    borrower_id = record.loan.borrower_id
    beneficiary = beneficiary or await beneficiary_for(conn, borrower_id, None)
    if beneficiary is None:
        raise lending.InvalidInput(
            f"borrower {borrower_id!r} has no payout details; disburse to their marketplace "
            "balance instead, or register their bank account")
    d = await lending.disburse_loan(conn, loan_id, on, config, mode=mode)
    payout = await gateways.request_payout(conn, gateways.PayoutRequest(
        payout_id=f"disb-{loan_id}"[:64], beneficiary_ref=f"supplier:{borrower_id}",
        beneficiary=beneficiary, amount=d.net, debit_account=d.payable_account,
        purpose="loan.disbursement", description=f"Loan {loan_id}", banks=banks))
    loan = await lending.activate_loan(conn, loan_id, on, config, payout_id=payout.id)
    return DisbursementResult(loan, d, payout)
