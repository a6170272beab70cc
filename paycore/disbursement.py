"""Disbursing a loan: lending books it out to the borrower's supplier payable, and — in
payout mode — gateways pays that amount out at once, in the same transaction.

    Dr loan portfolio, Cr 2202.payable.<supplier>        (lending: loan.disbursement)
    hold Dr 2202.payable.<supplier>, Cr 1103.clearing.payout   (gateways: the payout)

The payout is a supplier payout like any other (`gateways.request_supplier_payout`): a
borrower is a supplier (or merchant) of the marketplace, keyed by the same id, so the
proceeds go only to that borrower's account in the register — verified by a second
person, past its cooling-off — and from its own payable. Without such an account the
disbursement is refused before anything is written: the loan stays approved, not
disbursed, and the error says why and what to do. The loan's approval is the decision
that lets the money go, so a disbursement asks for no second payout approval
(`prior_approval` names the approval in the payout's audit trail); the account is what
the register's controls protect.

The loan becomes active when the payout is requested (the hold reserves the money for the
supplier, so no settlement can offset it); in balance mode it is active at once and the
money waits on the supplier's marketplace balance.

A disbursement payout that comes back (退票), fails or is withdrawn unsent is unwound by
`unwind_returned_disbursements`: the loan goes back to approved, the disbursement and its
interest are offset (lending.unwind_disbursement). It runs where such money could
otherwise be used — before each supplier's settlement, in the same transaction — and
after the banks are asked about returns and before the nightly accrual (paycore.jobs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

import gateways
import lending
from lending import DisbursementMode, LendingConfig

__all__ = ["DisbursementResult", "disburse", "unwind_returned_disbursements"]

log = structlog.get_logger("paycore.disbursement")

LOAN_DISBURSEMENT = "loan.disbursement"
#: a disbursement payout in one of these never left the borrower with the money: returned
#: by the beneficiary's bank, refused by ours, or withdrawn before sending (its account
#: was no longer usable); the proceeds are back on the payable either way
#: (payout states by value: reading gateways here would load it for 'paycore --help')
_NEVER_RECEIVED = ("returned", "failed", "canceled")


@dataclass(frozen=True)
class DisbursementResult:
    loan: lending.LoanRecord
    disbursement: lending.Disbursement
    payout: gateways.Payout | None


def _payout_id(loan_id: str, earlier: int) -> str:
    """Our payout id for a loan's disbursement (a loan disbursed again after its payout
    came back gets a new one): at most 64 characters, stable."""
    raw = f"disb-{loan_id}" if earlier == 0 else f"disb-{loan_id}-{earlier + 1}"
    if len(raw) <= 64:
        return raw
    return "disb-" + hashlib.sha256(raw.encode()).hexdigest()[:40]


async def _approval_of(conn: AsyncConnection, loan_id: str) -> str:
    approvals = [d for d in await lending.decisions_for(conn, loan_id)
                 if d.outcome is lending.Outcome.APPROVE]
    if not approvals:
        return f"loan {loan_id} approved"
    last = approvals[-1]
    return f"loan {loan_id} approved by {last.decided_by} on {last.decided_on}"


async def _account_for(conn: AsyncConnection, loan_id: str, borrower_id: str,
                       account_id: str | None, controls: gateways.PayoutControls
                       ) -> gateways.BeneficiaryAccount:
    """The register's account the proceeds go to, or `AccountNotUsable` saying why not."""
    stays = f"loan {loan_id} stays approved, not disbursed: "
    borrower = await lending.get_borrower(conn, borrower_id)
    if borrower.payable_account != gateways.supplier_payable(borrower_id):
        raise gateways.AccountNotUsable(
            stays + f"borrower {borrower_id}'s payable is {borrower.payable_account}, not a "
            "supplier payable a payout may come from; disburse to the marketplace balance")
    if account_id is not None:
        try:
            return await gateways.usable_account(conn, borrower_id, account_id,
                                                 cooling_off=controls.cooling_off)
        except gateways.AccountNotUsable as exc:
            raise gateways.AccountNotUsable(stays + str(exc)) from None
    account, why_not = await gateways.settlement_account(conn, borrower_id,
                                                         cooling_off=controls.cooling_off)
    if account is None:
        raise gateways.AccountNotUsable(
            stays + f"borrower {borrower_id} has no bank account proceeds may go to "
            f"({why_not}); register it (paycore beneficiaries add) and have a second person "
            "verify it, or disburse to the marketplace balance")
    return account


async def disburse(
    conn: AsyncConnection,
    loan_id: str,
    on: dt.date,
    config: LendingConfig,
    *,
    mode: DisbursementMode | None = None,
    account_id: str | None = None,
    controls: gateways.PayoutControls | None = None,
    actor: str = "system:disbursement",
    banks: tuple[str, ...] = (),
) -> DisbursementResult:
    """Disburse an approved loan in the caller's transaction (see the module docstring).
    `account_id`: one of the borrower's accounts in the register (default: its
    longest-verified usable one)."""
    mode = mode or config.disbursement
    if mode is DisbursementMode.MARKETPLACE_BALANCE:
        d = await lending.disburse_loan(conn, loan_id, on, config, mode=mode)
        return DisbursementResult(d.loan, d, None)
    if controls is None:
        # imported here: it loads gateways, which 'paycore --help' never does
        from paycore.payout_controls import controls_from_env

        controls = controls_from_env()
    record = await lending.load_loan(conn, loan_id, config)
    borrower_id = record.loan.borrower_id
    account = await _account_for(conn, loan_id, borrower_id, account_id, controls)
    approval = await _approval_of(conn, loan_id)
    earlier = await lending.times_disbursed(conn, loan_id)
    d = await lending.disburse_loan(conn, loan_id, on, config, mode=mode)
    payout = await gateways.request_supplier_payout(conn, gateways.SupplierPayoutRequest(
        payout_id=_payout_id(loan_id, earlier), supplier_id=borrower_id, account_id=account.id,
        amount=d.net, requested_by=actor, manual=False, purpose=LOAN_DISBURSEMENT,
        description=f"Loan {loan_id}", banks=banks, prior_approval=approval), controls)
    loan = await lending.activate_loan(conn, loan_id, on, config, payout_id=payout.id)
    return DisbursementResult(loan, d, payout)


async def unwind_returned_disbursements(conn: AsyncConnection, *,
                                        supplier_id: str | None = None,
                                        config: LendingConfig | None = None) -> list[str]:
    """Every running loan whose disbursement payout came back (or failed, or was withdrawn
    unsent) goes back to approved (lending.unwind_disbursement), dated the day the payout
    reached that state; in the caller's
    transaction. Returns the loans unwound. A loan that has moved on since (repaid in
    part, extended) is left for a person: logged, and its payout's review item (opened
    with the return) stays open."""
    from gateways.schema import payouts
    from lending.schema import loans

    if config is None:
        from paycore.commands.lending import CONFIG

        config = CONFIG
    query = (sa.select(loans.c.id, payouts.c.id.label("payout_id"), payouts.c.failure_reason,
                       payouts.c.updated_at)
             .join(payouts, payouts.c.id == loans.c.payout_id)
             .where(payouts.c.status.in_(_NEVER_RECEIVED),
                    payouts.c.purpose == LOAN_DISBURSEMENT,
                    loans.c.status.in_([s.value for s in lending.RUNNING]))
             .order_by(loans.c.id))
    if supplier_id is not None:
        query = query.where(loans.c.borrower_id == supplier_id)
    unwound: list[str] = []
    for row in (await conn.execute(query)).all():
        try:
            # refuses before writing anything: no savepoint needed
            await lending.unwind_disbursement(
                conn, row.id, payout_id=row.payout_id, on=row.updated_at.date(),
                reason=row.failure_reason or "returned by the bank", config=config)
        except lending.CannotUnwind as exc:
            log.warning("loan.disbursement_return_not_unwound", loan_id=row.id,
                        payout_id=row.payout_id, why=str(exc))
            continue
        unwound.append(row.id)
    return unwound
