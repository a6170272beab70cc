"""Suppliers' bank accounts and payout approval (issue #15 §2), on `gateways`' register
and maker-checker.

- `POST /v1/suppliers/{supplier}/bank-accounts` (payouts:write) registers an account,
  `unverified`; `GET` lists them (payouts:read) — numbers always masked.
- `POST .../bank-accounts/{id}/verify` (payouts:approve) by another person than the one who
  entered the details (the key's holder, else the key, is the person).
- `POST /v1/payouts/{id}/approve` and `/reject` (payouts:approve): a payout waiting for a
  second person; the approver may not be its requester. Approved, it goes to the banks.
  Only payouts the key's merchant asked for: a settlement payout (the settlement run's) is
  approved by the marketplace's payments staff in the console (403
  `payout-approved-by-staff` to a merchant bound to the supplier, 404 to anyone else).

Every route checks that the key's merchant is bound to the supplier.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

import gateways
import ledger
from paycore.api.auth import Principal, person, requires
from paycore.api.deps import Engine, ReadConnection
from paycore.api.payments import PayoutOut, _owned_payout, banks_of
from paycore.api.problems import ApiProblem, register_error
from paycore.api.supplier_access import controls_of, require_binding
from paycore.schema import api_payout_owners
from paycore.supplier_bindings import is_bound

router = APIRouter(tags=["payout controls"])

for _error, _status in (
    (gateways.BeneficiaryNotFound, 404),
    (gateways.DuplicateAccount, 409),
    (gateways.FourEyesViolation, 403),
    (gateways.AccountNotUsable, 422),
    (gateways.NotAwaitingApproval, 409),
    (gateways.AccountKeysMissing, 503),
):
    register_error(_error, _status)

AccountReader = Annotated[Principal, requires("payouts:read")]


Approver = Annotated[Principal, person("payouts:approve",
                                        "verifying an account or deciding a payout")]
AccountMaker = Annotated[Principal, person("payouts:write", "registering a bank account")]
SupplierId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
RecordPath = Annotated[str, Path(max_length=64)]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    holder_name: str = Field(min_length=1, max_length=140)
    account_number: str = Field(min_length=4, max_length=34, pattern=r"^[A-Za-z0-9]+$")
    bank_name: str = Field("", max_length=140)


class AccountOut(BaseModel):
    id: str
    supplier_id: str
    holder_name: str
    bank_name: str
    account_number: str = Field(description="masked: only the last four characters")
    status: str
    status_reason: str | None = Field(
        None, description="why the system took the account out of use (a payout to it came "
                          "back): a second person must verify it again")
    created_by: str
    changed_by: str
    changed_at: dt.datetime
    verified_by: str | None
    verified_at: dt.datetime | None
    usable_from: dt.datetime | None = Field(
        description="when payouts may start (verified, after the cooling-off); null: not "
                    "verified")

    @classmethod
    def of(cls, a: gateways.BeneficiaryAccount, controls: gateways.PayoutControls) -> AccountOut:
        return cls(id=a.id, supplier_id=a.supplier_id, holder_name=a.holder_name,
                   bank_name=a.bank_name, account_number=a.masked_number, status=a.status.value,
                   status_reason=a.status_reason, created_by=a.created_by,
                   changed_by=a.changed_by, changed_at=a.changed_at,
                   verified_by=a.verified_by, verified_at=a.verified_at,
                   usable_from=a.usable_from(controls.cooling_off))


class AccountList(BaseModel):
    data: list[AccountOut]


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)


@router.post("/v1/suppliers/{supplier_id}/bank-accounts", status_code=201,
             summary="Register a supplier's bank account (unverified)",
             description="Payouts go only to a verified account: another person verifies "
                         "it, and it receives nothing during the cooling-off.")
async def add_account(supplier_id: SupplierId, body: AccountIn, principal: AccountMaker,
                      engine: Engine, request: Request) -> AccountOut:
    async def work(conn: AsyncConnection) -> gateways.BeneficiaryAccount:
        await require_binding(conn, principal, supplier_id)
        return await gateways.add_account(conn, supplier_id, holder_name=body.holder_name,
                                          account_number=body.account_number,
                                          bank_name=body.bank_name, actor=principal.actor)
    return AccountOut.of(await ledger.transact(engine, work), controls_of(request))


@router.get("/v1/suppliers/{supplier_id}/bank-accounts", summary="A supplier's bank accounts")
async def list_accounts(supplier_id: SupplierId, principal: AccountReader, conn: ReadConnection,
                        request: Request) -> AccountList:
    await require_binding(conn, principal, supplier_id)
    controls = controls_of(request)
    return AccountList(data=[AccountOut.of(a, controls)
                             for a in await gateways.list_accounts(conn, supplier_id)])


@router.post("/v1/suppliers/{supplier_id}/bank-accounts/{account_id}/verify",
             summary="Verify a supplier's bank account (a second person)")
async def verify_account(supplier_id: SupplierId, account_id: RecordPath, principal: Approver,
                         engine: Engine, request: Request) -> AccountOut:
    async def work(conn: AsyncConnection) -> gateways.BeneficiaryAccount:
        await require_binding(conn, principal, supplier_id)
        return await gateways.verify_account(conn, account_id, actor=principal.actor,
                                             supplier_id=supplier_id)
    return AccountOut.of(await ledger.transact(engine, work), controls_of(request))


async def _decide(engine: Engine, principal: Principal, payout_id: str) -> str:
    async with engine.connect() as conn:
        await _staff_only(conn, principal, payout_id)
        await _owned_payout(conn, payout_id, principal.merchant_id)
        record = await gateways.find_supplier_payout(conn, payout_id)
        if record is None:
            raise ApiProblem(f"payout {payout_id} needs no approval", status=409,
                             code="payout-not-pending-approval")
        await require_binding(conn, principal, record.supplier_id)
    return record.supplier_id


async def _staff_only(conn: AsyncConnection, principal: Principal, payout_id: str) -> None:
    """A supplier payout no merchant asked for (the settlement run's) is approved by the
    marketplace's payments staff, never by a merchant's key: it pays what the marketplace
    owes the supplier, and a merchant bound to the supplier may be the supplier itself.
    Told so only to a merchant bound to that supplier; anyone else finds no payout."""
    record = await gateways.find_supplier_payout(conn, payout_id)
    if record is None or await conn.scalar(sa.select(api_payout_owners.c.merchant_id).where(
            api_payout_owners.c.payout_id == payout_id)) is not None:
        return
    if await is_bound(conn, principal.merchant_id, record.supplier_id):
        raise ApiProblem(
            f"payout {payout_id} was requested by {record.requested_by}, not by a merchant: "
            "the marketplace's payments staff approve it (console: Payments, Approvals; or "
            "'paycore payments approve'). A merchant's key approves only payouts its "
            "merchant asked for", status=403, code="payout-approved-by-staff",
            payout_id=payout_id)


@router.post("/v1/payouts/{payout_id}/approve", summary="Approve a payout (a second person)",
             description="The approver may not be the requester. Approved, the payout is "
                         "handed to the banks; the account is checked again first.")
async def approve_payout(payout_id: RecordPath, principal: Approver, engine: Engine,
                         request: Request) -> PayoutOut:
    await _decide(engine, principal, payout_id)
    controls = controls_of(request)
    payout = await ledger.transact(engine, lambda conn: gateways.approve_payout(
        conn, payout_id, actor=principal.actor, controls=controls))
    banks = getattr(request.app.state, "banks", None)
    if isinstance(banks, gateways.BankDirectory) and payout.status is gateways.PayoutState.REQUESTED:
        payout = await gateways.submit_payout(engine, banks_of(request), payout_id)
    return PayoutOut.of(payout)


@router.post("/v1/payouts/{payout_id}/reject", summary="Reject a payout waiting for approval",
             description="Canceled; the amount reserved on the payable is released.")
async def reject_payout(payout_id: RecordPath, body: RejectIn, principal: Approver,
                        engine: Engine) -> PayoutOut:
    await _decide(engine, principal, payout_id)
    return PayoutOut.of(await ledger.transact(engine, lambda conn: gateways.reject_payout(
        conn, payout_id, actor=principal.actor, reason=body.reason)))


__all__ = ["AccountIn", "AccountOut", "router"]
