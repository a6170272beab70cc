"""Recording a payout and reserving its money: the step under every payout, and no
payout's whole story.

`record_payout(conn, PayoutRequest)` writes the payouts row and the ledger hold (Dr the
debit account, Cr 1103.clearing.payout) in the caller's transaction, idempotent per payout
id. It checks nothing about *whom* it pays: that is `gateways.request_supplier_payout`'s
job (the register's verified, cooled-off account of that supplier, the supplier's own
payable, maker-checker), which is the only caller in the code. It is not exported from
`gateways`, and the import contract in pyproject.toml forbids paycore, lending and
reconciliation to import this module: nothing outside the controlled path can pay a
beneficiary of its own choosing. Tests of the bank mechanics (failover, faults,
inquiries) call it directly, by this name.
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from gateways import postings
from gateways.errors import InvalidPaymentRequest, PayoutConflict
from gateways.schema import payouts
from gateways.states import PayoutState
from gateways.store import load_payout, payout_from_row, utcnow
from gateways.types import Payout, PayoutRequest

__all__ = ["record_payout"]

log = structlog.get_logger("gateways.payouts")
P = PayoutState


def _request_hash(request: PayoutRequest, amount_minor: int) -> str:
    canonical = json.dumps([
        request.payout_id, request.beneficiary_ref, request.beneficiary.name,
        request.beneficiary.account_number, request.beneficiary.bank_name, amount_minor,
        request.amount.currency.code, request.debit_account, request.purpose,
        request.description, list(request.banks)], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _validate(request: PayoutRequest) -> int:
    if not request.payout_id or len(request.payout_id) > 64:
        raise InvalidPaymentRequest("payout_id must be 1 to 64 characters")
    if not request.beneficiary.account_number or not request.beneficiary.name:
        raise InvalidPaymentRequest(f"payout {request.payout_id}: the beneficiary needs a "
                                    "name and an account number")
    try:
        units = ledger.to_minor(request.amount)
    except ledger.LedgerError as exc:
        raise InvalidPaymentRequest(f"payout {request.payout_id}: {exc}") from None
    if units <= 0:
        raise InvalidPaymentRequest(f"payout {request.payout_id}: amount must be positive")
    return units


async def record_payout(conn: AsyncConnection, request: PayoutRequest) -> Payout:
    """Record a payout and reserve its amount in the ledger, in the caller's transaction.

    The same request again returns the same payout; another request under the same
    payout id raises `PayoutConflict`. A debit account without the money raises the
    ledger's `BalanceLimitExceeded` (nothing is recorded)."""
    units = _validate(request)
    digest = _request_hash(request, units)
    existing = (await conn.execute(
        sa.select(payouts).where(payouts.c.id == request.payout_id))).first()
    if existing is not None:
        if existing.request_hash != digest:
            raise PayoutConflict(request.payout_id)
        return payout_from_row(existing)
    now = utcnow()
    await postings.ensure_payout_clearing(conn, request.amount.currency.code)
    hold = await ledger.hold(conn, postings.payout_hold(
        payout_id=request.payout_id, debit_account=request.debit_account,
        amount=request.amount, beneficiary_ref=request.beneficiary_ref,
        purpose=request.purpose, description=request.description, now=now))
    await conn.execute(payouts.insert().values(
        id=request.payout_id, request_hash=digest, beneficiary_ref=request.beneficiary_ref,
        beneficiary_name=request.beneficiary.name,
        beneficiary_account=request.beneficiary.account_number,
        beneficiary_bank_name=request.beneficiary.bank_name, amount_minor=units,
        currency=request.amount.currency.code, debit_account=request.debit_account,
        purpose=request.purpose, description=request.description, banks=list(request.banks),
        bank=None, status=P.REQUESTED.value, hold_id=hold.id, submit_rounds=0,
        created_at=now, updated_at=now))
    log.info("payout.requested", payout_id=request.payout_id, amount_minor=units,
             beneficiary_ref=request.beneficiary_ref, purpose=request.purpose)
    return await load_payout(conn, request.payout_id)


