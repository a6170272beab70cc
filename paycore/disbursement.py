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
interest are offset (lending.unwind_disbursement). A returned one is unwound the moment
its return is booked (`unwind_on_return`, a gateways return hook). It also runs where such
money could otherwise be used — before each supplier's settlement, in the same transaction — and
after the banks are asked about returns and before the nightly accrual (paycore.jobs) —
and first in every supplier payout (manual, settlement, disbursement):
`install_payout_hooks` registers both with gateways (paycore.payout_controls, loaded by
every path that pays out, calls it), so a payout can never take returned proceeds that
are the lender's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

import gateways
import ledger
import lending
from lending import DisbursementMode, LendingConfig

__all__ = ["DisbursementResult", "disburse", "install_payout_hooks",
           "refuse_payout_over_returned_proceeds", "unwind_on_return",
           "unwind_returned_disbursements"]

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


def _returned(supplier_id: str | None, payout_id: str | None = None
              ) -> sa.Select[tuple[str, str, str | None, dt.datetime]]:
    """Running loans whose disbursement payout never reached the borrower."""
    from gateways.schema import payouts
    from lending.schema import loans

    query = (sa.select(loans.c.id, payouts.c.id.label("payout_id"), payouts.c.failure_reason,
                       payouts.c.updated_at)
             .join(payouts, payouts.c.id == loans.c.payout_id)
             .where(payouts.c.status.in_(_NEVER_RECEIVED),
                    payouts.c.purpose == LOAN_DISBURSEMENT,
                    loans.c.status.in_([s.value for s in lending.RUNNING]))
             .order_by(loans.c.id))
    if supplier_id is not None:
        query = query.where(loans.c.borrower_id == supplier_id)
    if payout_id is not None:
        query = query.where(payouts.c.id == payout_id)
    return query


async def unwind_returned_disbursements(conn: AsyncConnection, *,
                                        supplier_id: str | None = None,
                                        payout_id: str | None = None,
                                        config: LendingConfig | None = None) -> list[str]:
    """Every running loan whose disbursement payout came back (or failed, or was withdrawn
    unsent) goes back to approved (lending.unwind_disbursement), dated the day the payout
    reached that state; in the caller's transaction. Returns the loans unwound.

    Each loan in its own savepoint: one that cannot be unwound never stops the others
    (nor the nightly accrual, nor a settlement run, which call this first). A loan that
    has moved on since (repaid in part, extended), or whose returned proceeds are no
    longer all on the payable, is left for a person: logged, and its payout's review item
    (opened with the return) stays open; its supplier's payouts are refused meanwhile
    (`refuse_payout_over_returned_proceeds`)."""
    if config is None:
        from paycore.commands.lending import CONFIG

        config = CONFIG
    unwound: list[str] = []
    for row in (await conn.execute(_returned(supplier_id, payout_id))).all():
        try:
            async with conn.begin_nested():
                await lending.unwind_disbursement(
                    conn, row.id, payout_id=row.payout_id, on=row.updated_at.date(),
                    reason=row.failure_reason or "returned by the bank", config=config)
        except lending.CannotUnwind as exc:
            log.warning("loan.disbursement_return_not_unwound", loan_id=row.id,
                        payout_id=row.payout_id, why=str(exc))
            continue
        except Exception as exc:  # one loan's trouble is that loan's alone ...
            if ledger.is_retryable(exc):
                # ... but a deadlock or serialization failure is the transaction's: run
                # it whole again (ledger.transact), or the accrual that follows would
                # charge interest on proceeds that came back (found by review)
                raise
            log.error("loan.disbursement_unwind_failed", loan_id=row.id,
                      payout_id=row.payout_id, error=repr(exc), exc_info=True)
            continue
        unwound.append(row.id)
    return unwound


async def _lock_disbursement_payouts(conn: AsyncConnection, supplier_id: str) -> None:
    """Lock the payouts that disbursed the supplier's running loans, in id order (the
    order a return takes them one at a time: payout row, then the payable)."""
    if conn.dialect.name != "postgresql":
        return  # SQLite: the writer holds the database
    from gateways.schema import payouts
    from lending.schema import loans

    await conn.execute(
        sa.select(payouts.c.id).join(loans, loans.c.payout_id == payouts.c.id)
        .where(loans.c.borrower_id == supplier_id,
               loans.c.status.in_([s.value for s in lending.RUNNING]),
               payouts.c.purpose == LOAN_DISBURSEMENT)
        .order_by(payouts.c.id).with_for_update(of=payouts))


async def refuse_payout_over_returned_proceeds(conn: AsyncConnection, supplier_id: str, *,
                                               config: LendingConfig | None = None) -> None:
    """The check paycore runs before every supplier payout (gateways.payout_hooks): the
    supplier's returned loan disbursements are unwound first, in the payout's transaction,
    so their proceeds are off the payable before anything is paid from it; one that
    cannot be unwound refuses the payout (`gateways.PayoutBlocked`) until a person has
    settled that loan.

    The supplier's loan-disbursement payouts are locked first (PostgreSQL): a return being
    booked in another process holds its payout's row (SUCCEEDED -> RETURNED) and the
    payable until it commits, so this check waits for it and then sees it. Read without
    the lock, the check found nothing returned yet, the payout's hold then waited for the
    payable and reserved the returned proceeds once the return had committed."""
    await _lock_disbursement_payouts(conn, supplier_id)
    await unwind_returned_disbursements(conn, supplier_id=supplier_id, config=config)
    left = (await conn.execute(_returned(supplier_id))).all()
    if left:
        loans = ", ".join(f"loan {r.id} (payout {r.payout_id})" for r in left)
        raise gateways.PayoutBlocked(
            f"supplier {supplier_id}'s payable holds the returned proceeds of {loans}, which "
            "could not be unwound (repaid or extended since, or paid out already): nothing "
            "is paid from it until a person has settled the loan (see the payout review "
            "queue)")


async def unwind_on_return(conn: AsyncConnection, payout: gateways.Payout) -> None:
    """The hook paycore runs as a payout's return is booked (gateways.payout_hooks): a
    loan disbursement is unwound at once, in the return's transaction — its proceeds are
    never available on the payable. One that cannot be unwound is logged and left to a
    person (the return itself stands)."""
    if payout.purpose == LOAN_DISBURSEMENT:
        await unwind_returned_disbursements(conn, payout_id=payout.id)


def install_payout_hooks() -> None:
    """Register both hooks with gateways (once, however often called). Called as
    paycore.payout_controls is imported (the API, the console, every payout request) and by
    `load_banks` (every CLI command and worker job that talks to banks) — not as this
    module is imported."""
    gateways.before_supplier_payout(refuse_payout_over_returned_proceeds)
    gateways.after_payout_returned(unwind_on_return)
