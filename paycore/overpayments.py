"""Refunding a loan overpayment to the borrower's verified bank account.

lending releases the excess held in 2203 to the borrower's supplier payable
(lending.release_overpayment); gateways pays that amount out at once, in the same
transaction, by the controlled supplier payout path (`gateways.request_supplier_payout`):
only to the borrower's account in the register (verified by a second person, past its
cooling-off), from their own payable, held there so no settlement can use it meanwhile.
A refund is asked for by a person, so it is a manual payout: above the controls'
threshold it waits for a second person's approval (four eyes), and the payout's audit
trail names who asked. Without a usable account nothing is written and the error says
why and what to do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection

import gateways
import lending
from lending import LendingConfig

__all__ = ["OVERPAYMENT_REFUND", "RefundResult", "refund_overpayment"]

OVERPAYMENT_REFUND = "loan.overpayment_refund"


@dataclass(frozen=True)
class RefundResult:
    move: lending.OverpaymentMove
    payout: gateways.Payout


def _payout_id(move_id: str) -> str:
    raw = f"ovp-{move_id}"
    return raw if len(raw) <= 64 else "ovp-" + hashlib.sha256(move_id.encode()).hexdigest()[:40]


async def refund_overpayment(
    conn: AsyncConnection,
    loan_id: str,
    amount: Money,
    on: dt.date,
    config: LendingConfig,
    *,
    move_id: str,
    actor: str,
    account_id: str | None = None,
    controls: gateways.PayoutControls | None = None,
    banks: tuple[str, ...] = (),
) -> RefundResult:
    """Refund `amount` of a loan's overpayment, in the caller's transaction."""
    if controls is None:
        from paycore.payout_controls import controls_from_env

        controls = controls_from_env()
    record = await lending.load_loan(conn, loan_id, config)
    borrower_id = record.loan.borrower_id
    if account_id is None:
        account, why_not = await gateways.settlement_account(conn, borrower_id,
                                                             cooling_off=controls.cooling_off)
        if account is None:
            raise gateways.AccountNotUsable(
                f"the overpayment of loan {loan_id} stays held: borrower {borrower_id} has no "
                f"bank account it may go to ({why_not}); register it (paycore beneficiaries "
                "add) and have a second person verify it, or apply it to another loan")
        account_id = account.id
    else:
        await gateways.usable_account(conn, borrower_id, account_id,
                                      cooling_off=controls.cooling_off)
    payout_id = _payout_id(move_id)
    move = await lending.release_overpayment(conn, loan_id, amount, on, config,
                                             move_id=move_id, kind="refund", actor=actor,
                                             payout_id=payout_id)
    payout = await gateways.request_supplier_payout(conn, gateways.SupplierPayoutRequest(
        payout_id=payout_id, supplier_id=borrower_id, account_id=account_id, amount=amount,
        requested_by=actor, manual=True, purpose=OVERPAYMENT_REFUND,
        description=f"Refund of the overpayment of loan {loan_id}", banks=banks), controls)
    return RefundResult(move, payout)
