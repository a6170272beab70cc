"""Supplier payouts under control: from the supplier's own payable, to a verified account
of that supplier from the register, and approved by a second person when the rules ask.

`request_supplier_payout(conn, SupplierPayoutRequest, PayoutControls)` is the one way
money owed to a supplier leaves (the HTTP API, the CLI and the settlement run all call
it):
- the account must be usable now (`beneficiaries.usable_account`: this supplier's,
  verified, past its cooling-off);
- the debit account is `2202.payable.<supplier>` and nothing else; the ledger hold refuses
  more than its available balance (`ledger.BalanceLimitExceeded`), so a payout cannot spend
  what other payouts already reserved;
- a manual payout, or one above `PayoutControls.approval_above` for its currency (a
  currency without a threshold: always), is `pending_approval`: reserved, invisible to
  the banks, until `approve_payout` by an actor other than the requester. `reject_payout`
  cancels it and releases the reservation. A payout another person's decision already
  covers (`prior_approval`: a loan's disbursement, covered by the loan's approval) asks
  for no second approval, but goes to the verified account all the same;
- the payouts row keeps only the masked number; the bank is instructed from the register
  (`beneficiary_for_order`), and only while the account is still verified and unchanged
  since the request — a payout never follows an account changed after it was approved.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
import structlog
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from gateways.account_keys import mask
from gateways.bank import Beneficiary
from gateways.beneficiaries import (
    AccountNotUsable,
    FourEyesViolation,
    _check_actor,
    audit,
    normalise_actor,
    reveal,
    usable_account,
)
from gateways.errors import InvalidPaymentRequest, PaymentError, PayoutConflict
from gateways.payout_accounts import SupplierPayout, find_supplier_payout
from gateways.payout_hooks import run_payout_checks
from gateways.payout_records import record_payout
from gateways.schema import payouts, supplier_payouts
from gateways.states import PayoutState
from gateways.store import find_payout, load_payout, transition, utcnow
from gateways.types import Payout, PayoutRequest

__all__ = ["NotAwaitingApproval", "PayoutControls", "SupplierPayout", "SupplierPayoutRequest",
           "approve_payout", "find_supplier_payout", "list_pending_approval", "reject_payout",
           "request_supplier_payout", "supplier_payable"]

log = structlog.get_logger("gateways.approvals")
P = PayoutState


class NotAwaitingApproval(PaymentError):
    """Approve or reject a payout that is not (or no longer) waiting for it."""

    code = "payout-not-pending-approval"


def supplier_payable(supplier_id: str) -> str:
    return f"2202.payable.{supplier_id}"


@dataclass(frozen=True)
class PayoutControls:
    """The rules a deployment sets (paycore reads them from the environment)."""

    #: a changed or newly verified account receives nothing for this long
    cooling_off: dt.timedelta = dt.timedelta(hours=24)
    #: per currency, the largest payout (minor units) that needs no second person;
    #: a currency not named here always needs one
    approval_above: Mapping[str, int] = field(default_factory=dict)

    def approval_reason(self, amount_minor: int, currency: str, *, manual: bool) -> str | None:
        if manual:
            return "a manual payout needs a second person's approval"
        limit = self.approval_above.get(currency)
        if limit is None:
            return f"no approval threshold is configured for {currency}: every payout is approved"
        if amount_minor > limit:
            return (f"above the approval threshold of "
                    f"{ledger.from_minor(limit, currency).amount:,} {currency}")
        return None


@dataclass(frozen=True)
class SupplierPayoutRequest:
    payout_id: str
    supplier_id: str
    account_id: str
    amount: Money
    #: the authenticated actor asking (user:<name>, key:<id>, system:<job>)
    requested_by: str
    #: a person asked for it (API, CLI) rather than the settlement run
    manual: bool
    purpose: str = "settlement"
    description: str = ""
    banks: tuple[str, ...] = ()
    #: a decision by another person that already covers this payout (a loan's credit
    #: approval: "loan L approved by user:x"): no payout approval is asked for it; the
    #: account must still be verified and cooled off, and the trail records the decision
    prior_approval: str | None = None


async def request_supplier_payout(conn: AsyncConnection, request: SupplierPayoutRequest,
                                  controls: PayoutControls, *,
                                  now: dt.datetime | None = None) -> Payout:
    """Record and reserve a supplier payout (see the module docstring), in the caller's
    transaction. The same request again returns the same payout."""
    requested_by = _check_actor(request.requested_by)
    now = now or utcnow()
    existing = await find_supplier_payout(conn, request.payout_id)
    if existing is not None:
        if (existing.supplier_id, existing.account_id) != (request.supplier_id,
                                                           request.account_id):
            raise PayoutConflict(request.payout_id)
    elif await find_payout(conn, request.payout_id) is not None:
        raise PayoutConflict(request.payout_id)
    else:
        account = await usable_account(conn, request.supplier_id, request.account_id,
                                       cooling_off=controls.cooling_off, now=now)
        # what the application owes elsewhere from this payable first (a returned loan
        # disbursement is unwound), or PayoutBlocked (gateways.payout_hooks)
        await run_payout_checks(conn, request.supplier_id)
    details = await reveal(conn, request.account_id)
    masked = Beneficiary(details.name, mask(details.account_number), details.bank_name)
    payout = await record_payout(conn, PayoutRequest(
        payout_id=request.payout_id, beneficiary_ref=f"supplier:{request.supplier_id}",
        beneficiary=masked, amount=request.amount,
        debit_account=supplier_payable(request.supplier_id), purpose=request.purpose,
        description=request.description, banks=request.banks))
    if existing is not None:
        return payout
    reason = (None if request.prior_approval and not request.manual else
              controls.approval_reason(payout.amount_minor, payout.currency,
                                       manual=request.manual))
    if reason is not None:
        # born in this transaction, seen by no one yet: it starts out pending (not a move
        # of the machine: a requested payout never goes back to waiting)
        await conn.execute(payouts.update().where(
            payouts.c.id == payout.id, payouts.c.status == P.REQUESTED.value).values(
            status=P.PENDING_APPROVAL.value, updated_at=now))
    await conn.execute(supplier_payouts.insert().values(
        payout_id=payout.id, supplier_id=request.supplier_id, account_id=request.account_id,
        account_changed_at=account.changed_at, requested_by=requested_by,
        approval_reason=reason, decided_by=None, decision=None, decided_at=None,
        created_at=now))
    await audit(conn, actor=requested_by, action="payout.requested",
                supplier_id=request.supplier_id, subject_id=payout.id, now=now,
                details={"account_id": request.account_id, "amount_minor": payout.amount_minor,
                         "currency": payout.currency, "manual": request.manual,
                         "approval": reason or (f"covered by {request.prior_approval}"
                                                if request.prior_approval else "not needed")})
    log.info("payout.supplier_requested", payout_id=payout.id, supplier_id=request.supplier_id,
             account_id=request.account_id, requested_by=requested_by,
             pending_approval=reason is not None)
    return await load_payout(conn, payout.id)


async def _pending(conn: AsyncConnection, payout_id: str) -> tuple[Payout, SupplierPayout]:
    payout = await load_payout(conn, payout_id)
    record = await find_supplier_payout(conn, payout_id)
    if record is None:
        raise NotAwaitingApproval(f"payout {payout_id} is not a supplier payout awaiting "
                                "approval")
    return payout, record


async def approve_payout(conn: AsyncConnection, payout_id: str, *, actor: str,
                         controls: PayoutControls,
                         now: dt.datetime | None = None) -> Payout:
    """A second person approves: the payout becomes `requested` (the banks may have it).
    The account is checked again: changed, unverified or cooling off since the request,
    it is refused."""
    actor = _check_actor(actor)
    now = now or utcnow()
    payout, record = await _pending(conn, payout_id)
    if record.decision == "approved" and payout.status is not P.PENDING_APPROVAL:
        return payout
    if payout.status is not P.PENDING_APPROVAL:
        raise NotAwaitingApproval(f"payout {payout_id} is {payout.status.value}, not "
                                "pending_approval")
    if actor == normalise_actor(record.requested_by):
        raise FourEyesViolation(f"{actor} requested payout {payout_id}; someone else must "
                                "approve it")
    account = await usable_account(conn, record.supplier_id, record.account_id,
                                   cooling_off=controls.cooling_off, now=now)
    if account.changed_at != record.account_changed_at:
        raise AccountNotUsable(f"account {account.id} was changed after payout {payout_id} "
                               "was requested: reject it and request again")
    [hold] = await ledger.load_holds(conn, [payout.hold_id])
    if hold.status is not ledger.HoldStatus.PENDING or hold.expires_at <= now:
        raise NotAwaitingApproval(f"payout {payout_id}'s reservation is {hold.status.value} "
                                "(expired while it waited): reject it and request again")
    await transition(conn, payout_id, P.PENDING_APPROVAL, P.REQUESTED, now=now)
    await conn.execute(supplier_payouts.update().where(
        supplier_payouts.c.payout_id == payout_id).values(
        decided_by=actor, decision="approved", decided_at=now))
    await audit(conn, actor=actor, action="payout.approved", supplier_id=record.supplier_id,
                subject_id=payout_id, now=now, details={"maker": record.requested_by})
    log.info("payout.approved", payout_id=payout_id, actor=actor)
    return await load_payout(conn, payout_id)


async def reject_payout(conn: AsyncConnection, payout_id: str, *, actor: str, reason: str,
                        now: dt.datetime | None = None) -> Payout:
    """Refuse (or, by its requester, withdraw) a payout awaiting approval: canceled, its
    reservation released."""
    actor = _check_actor(actor)
    if not reason.strip():
        raise InvalidPaymentRequest("say why the payout is rejected")
    now = now or utcnow()
    payout, record = await _pending(conn, payout_id)
    if record.decision == "rejected":
        return payout
    if payout.status is not P.PENDING_APPROVAL:
        raise NotAwaitingApproval(f"payout {payout_id} is {payout.status.value}, not "
                                "pending_approval")
    await transition(conn, payout_id, P.PENDING_APPROVAL, P.CANCELED, now=now,
                     failure_reason=f"rejected by {actor}: {reason}")
    [hold] = await ledger.load_holds(conn, [payout.hold_id])
    if hold.status is ledger.HoldStatus.PENDING:
        with contextlib.suppress(ledger.HoldExpired):
            await ledger.void_hold(conn, payout.hold_id)
    await conn.execute(supplier_payouts.update().where(
        supplier_payouts.c.payout_id == payout_id).values(
        decided_by=actor, decision="rejected", decided_at=now))
    await audit(conn, actor=actor, action="payout.rejected", supplier_id=record.supplier_id,
                subject_id=payout_id, now=now, details={"reason": reason})
    log.info("payout.rejected", payout_id=payout_id, actor=actor)
    return await load_payout(conn, payout_id)


async def list_pending_approval(conn: AsyncConnection, *, supplier_ids: list[str] | None = None,
                                limit: int = 100) -> list[tuple[Payout, SupplierPayout]]:
    query = (sa.select(supplier_payouts.c.payout_id)
             .join(payouts, payouts.c.id == supplier_payouts.c.payout_id)
             .where(payouts.c.status == P.PENDING_APPROVAL.value)
             .order_by(supplier_payouts.c.created_at, supplier_payouts.c.payout_id).limit(limit))
    if supplier_ids is not None:
        query = query.where(supplier_payouts.c.supplier_id.in_(supplier_ids))
    found: list[tuple[Payout, SupplierPayout]] = []
    for payout_id in (await conn.execute(query)).scalars():
        payout, record = await _pending(conn, payout_id)
        found.append((payout, record))
    return found
