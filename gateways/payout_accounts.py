"""What the bank is told for a supplier payout, read from the register at the moment of
sending (the payouts row keeps only the masked number), and what happens when the account
may no longer be paid. Used by `gateways.payouts.submit_payout`; kept apart from
`gateways.approvals` (which requests payouts) so neither imports the other's caller.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from gateways.bank import Beneficiary
from gateways.beneficiaries import AccountNotUsable, AccountState, audit, get_account, reveal
from gateways.schema import supplier_payouts
from gateways.states import PayoutState
from gateways.store import load_payout, transition
from gateways.types import Payout

__all__ = ["SupplierPayout", "beneficiary_for_order", "find_supplier_payout",
           "withdraw_unsendable"]

log = structlog.get_logger("gateways.payout_accounts")
P = PayoutState


@dataclass(frozen=True)
class SupplierPayout:
    payout_id: str
    supplier_id: str
    account_id: str
    account_changed_at: dt.datetime
    requested_by: str
    approval_reason: str | None
    decided_by: str | None
    decision: str | None
    decided_at: dt.datetime | None
    created_at: dt.datetime


async def find_supplier_payout(conn: AsyncConnection, payout_id: str) -> SupplierPayout | None:
    row = (await conn.execute(sa.select(supplier_payouts).where(
        supplier_payouts.c.payout_id == payout_id))).first()
    if row is None:
        return None
    return SupplierPayout(**row._mapping)


async def beneficiary_for_order(conn: AsyncConnection, payout: Payout) -> Beneficiary:
    """Whom the bank pays: for a supplier payout, the register's account (decrypted), if it
    is still verified and unchanged since the payout was requested (else
    `AccountNotUsable`); for any other payout (only the bank mechanics' tests record
    one), its own beneficiary — never a masked number kept from before the register."""
    record = await find_supplier_payout(conn, payout.id)
    if record is None:
        if "*" in payout.beneficiary.account_number:
            # recorded before the register (migration 0026 masked its number): whoever it
            # was for, it was never checked against a verified account, so it is not sent
            raise AccountNotUsable(f"payout {payout.id} is not to an account in the "
                                   "register: request it again to a verified account")
        return payout.beneficiary
    account = await get_account(conn, record.account_id)
    if (account.status is not AccountState.VERIFIED
            or account.changed_at != record.account_changed_at):
        raise AccountNotUsable(f"account {account.id} is {account.status.value} or was "
                               f"changed after payout {payout.id} was requested")
    return await reveal(conn, record.account_id)


async def withdraw_unsendable(engine: AsyncEngine, payout_id: str, reason: str) -> None:
    """A requested payout whose account may no longer be paid: canceled, reservation
    released, never sent."""
    async def work(conn: AsyncConnection) -> None:
        payout = await load_payout(conn, payout_id)
        if payout.status is not P.REQUESTED:
            return
        await transition(conn, payout_id, P.REQUESTED, P.CANCELED, failure_reason=reason)
        await ledger.void_hold(conn, payout.hold_id)
        record = await find_supplier_payout(conn, payout_id)
        await audit(conn, actor="system:submit", action="payout.withdrawn",
                    supplier_id=record.supplier_id if record else "", subject_id=payout_id,
                    details={"reason": reason})
        log.warning("payout.withdrawn", payout_id=payout_id, reason=reason)
    await ledger.transact(engine, work)
