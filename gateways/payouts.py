"""Payouts: the marketplace pays a supplier (settlement) or a borrower (loan
disbursement) from a ledger account.

1. A payout is recorded only through `gateways.request_supplier_payout` (the register's
   verified account, the supplier's own payable, maker-checker): it records the payout and
   reserves the money with a ledger hold (Dr debit account, Cr 1103.clearing.payout) in
   the caller's transaction (`gateways.payout_records`); no bank I/O.
2. `submit_payouts(engine, banks)` hands requested payouts to the banks in failover order.
   A bank that nothing reached (`BankUnavailable`, 5xx, circuit open) is skipped for the
   next; once a bank may have the payout, there is no failover: a time-out makes it
   `unknown` and only the status inquiry settles it.
3. The bank's outcome (answer, notification or inquiry) settles it: succeeded posts the
   hold (the entry's external_ref is the payout id), failed voids it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from gateways import calls, inquiries, payout_accounts
from gateways.bank import (
    BankCall,
    BankGateway,
    BankOutcome,
    BankRejected,
    BankUnavailable,
    OutcomeUnknown,
    PayoutOrder,
    PayoutStatus,
)
from gateways.beneficiaries import AccountNotUsable
from gateways.errors import ConcurrentTransition, PayoutNotFound
from gateways.inquiries import Subject
from gateways.limits import AmountNotSupported, taking
from gateways.routing import BankDirectory
from gateways.schema import payouts
from gateways.states import PayoutState
from gateways.store import find_payout, load_payout, payout_from_row, transition, utcnow
from gateways.types import Payout

__all__ = [
    "cancel_payout",
    "get_payout",
    "list_payouts",
    "settle_payout",
    "submit_payout",
    "submit_payouts",
]

log = structlog.get_logger("gateways.payouts")
P = PayoutState


async def get_payout(conn: AsyncConnection, payout_id: str) -> Payout:
    return await load_payout(conn, payout_id)


async def list_payouts(conn: AsyncConnection, *, status: PayoutState | None = None,
                       beneficiary_ref: str | None = None, limit: int = 100) -> list[Payout]:
    query = sa.select(payouts).order_by(payouts.c.created_at, payouts.c.id).limit(limit)
    if status is not None:
        query = query.where(payouts.c.status == status.value)
    if beneficiary_ref is not None:
        query = query.where(payouts.c.beneficiary_ref == beneficiary_ref)
    return [payout_from_row(r) for r in await conn.execute(query)]


async def cancel_payout(conn: AsyncConnection, payout_id: str) -> Payout:
    """Cancel a payout not yet handed to any bank; its reservation is released."""
    current = await load_payout(conn, payout_id)
    if current.status is P.CANCELED:
        return current
    await transition(conn, payout_id, current.status, P.CANCELED)
    await ledger.void_hold(conn, current.hold_id)
    log.info("payout.canceled", payout_id=payout_id)
    return await load_payout(conn, payout_id)


async def settle_payout(conn: AsyncConnection, payout_id: str, outcome: BankOutcome, *,
                        bank_txn_id: str | None = None, reason: str = "",
                        now: dt.datetime | None = None, review: str | None = None) -> Payout:
    """Apply the bank's word about a payout (answer, notification or inquiry), once:
    succeeded posts the hold, failed voids it, processing leaves it with the bank.
    Settling a payout again with the outcome it already has changes nothing.

    `review`: the bank's own caveat on a success (UnionPay A6): posted as succeeded all
    the same (the money moved), and flagged for a person (`list_in_review`)."""
    now = now or utcnow()
    current = await load_payout(conn, payout_id)
    if outcome is BankOutcome.SUCCEEDED and review and current.status is not P.REVIEW:
        await conn.execute(payouts.update().where(payouts.c.id == payout_id)
                           .values(review_reason=review, updated_at=now))
        log.warning("payout.flagged", payout_id=payout_id, bank=current.bank, review=review)
    if outcome is BankOutcome.SUCCEEDED:
        if current.status is P.SUCCEEDED:
            return current
        await transition(conn, payout_id, current.status, P.SUCCEEDED, now=now,
                         bank_txn_id=bank_txn_id, settled_at=now)
        entry = await ledger.post_hold(
            conn, current.hold_id, idempotency_key=f"payout:{payout_id}",
            effective_date=now.date(),
            metadata={"bank": current.bank or "", "bank_txn_id": bank_txn_id or ""})
        await conn.execute(payouts.update().where(payouts.c.id == payout_id)
                           .values(entry_id=entry.id))
        await inquiries.close(conn, Subject.PAYOUT, payout_id, now, outcome=outcome.value)
        log.info("payout.succeeded", payout_id=payout_id, bank=current.bank,
                 bank_txn_id=bank_txn_id, entry_id=str(entry.id))
    elif outcome is BankOutcome.FAILED:
        if current.status is P.FAILED:
            return current
        await transition(conn, payout_id, current.status, P.FAILED, now=now,
                         bank_txn_id=bank_txn_id, settled_at=now,
                         failure_reason=reason or "the bank refused the payout")
        await ledger.void_hold(conn, current.hold_id)
        await inquiries.close(conn, Subject.PAYOUT, payout_id, now, outcome=outcome.value)
        log.info("payout.failed", payout_id=payout_id, bank=current.bank, reason=reason)
    elif current.status is P.UNKNOWN:
        # processing (or the bank not finding it yet): it has it; keep asking
        await transition(conn, payout_id, P.UNKNOWN, P.SUBMITTED, now=now)
    return await load_payout(conn, payout_id)


async def _mark(engine: AsyncEngine, payout_id: str, current: PayoutState,
                target: PayoutState, **values: Any) -> None:
    async def work(conn: AsyncConnection) -> None:
        await transition(conn, payout_id, current, target, **values)
    await ledger.transact(engine, work)


async def _take(conn: AsyncConnection, payout_id: str, bank: BankGateway) -> BankCall:
    """requested -> submitted at `bank`, and the call it is about to get, in one commit
    before the bank hears of it: a submitted payout always has the call it is sent as, so
    an inquiry never takes one on its way for one never sent. (Committed apart, a janitor
    pass between the two found no call, heard "not found" and failed the payout — which
    the worker then sent, and the bank paid.)"""
    await transition(conn, payout_id, P.REQUESTED, P.SUBMITTED, bank=bank.code)
    return await calls.record_call_in(conn, Subject.PAYOUT, payout_id, bank)


def _send(order: PayoutOrder) -> Callable[[BankGateway], Awaitable[PayoutStatus]]:
    return lambda bank: bank.payout(order)


def _order_for(payout: Payout, banks: BankDirectory) -> list[str]:
    wanted = payout.banks or banks.payout_order
    # only banks that can carry the amount in its currency (one that cannot would fail it)
    try:
        return taking(banks, wanted, payout.amount)
    except AmountNotSupported:
        return []


async def submit_payout(engine: AsyncEngine, banks: BankDirectory, payout_id: str) -> Payout:
    """Hand one requested payout to the first bank in its failover order that takes it."""
    async with engine.connect() as conn:
        payout = await find_payout(conn, payout_id)
    if payout is None:
        raise PayoutNotFound(payout_id)
    if payout.status is not P.REQUESTED:
        return payout
    try:
        async with engine.connect() as conn:
            # a supplier payout's number comes from the register, checked as it is sent
            beneficiary = await payout_accounts.beneficiary_for_order(conn, payout)
    except AccountNotUsable as exc:
        await payout_accounts.withdraw_unsendable(engine, payout_id, str(exc))
        async with engine.connect() as conn:
            return await load_payout(conn, payout_id)
    for code in _order_for(payout, banks):
        try:
            call = await ledger.transact(engine, functools.partial(
                _take, payout_id=payout_id, bank=banks.get(code)))
        except ConcurrentTransition:
            break  # another worker took it (or it was canceled): theirs to finish
        order = PayoutOrder(payout_id=payout_id, beneficiary=beneficiary,
                            amount=payout.amount, description=payout.description or payout.purpose,
                            notify_url=banks.notify_url(code), created_at=call.placed_at)
        try:
            answer = await banks.call(code, _send(order), moves_money=True)
        except BankUnavailable as exc:
            # provably never arrived (no connection was made, or the bank's documented
            # "not processed"): safe to give the payout to the next one. Anything else
            # (a 500/502/503/504, a time-out after sending) is OutcomeUnknown below.
            log.warning("payout.bank_unavailable", payout_id=payout_id, bank=code, error=str(exc))
            await _mark(engine, payout_id, P.SUBMITTED, P.REQUESTED, bank=None,
                        failure_reason=f"{code}: {exc}")
            continue
        except OutcomeUnknown as exc:
            log.warning("payout.outcome_unknown", payout_id=payout_id, bank=code, error=str(exc))
            await _unknown(engine, payout_id, code)
            break
        except BankRejected as exc:
            async def fail(conn: AsyncConnection, reason: str = str(exc)) -> None:
                await settle_payout(conn, payout_id, BankOutcome.FAILED, reason=reason)
            await ledger.transact(engine, fail)
            break
        await _apply_answer(engine, payout_id, code, answer)
        break
    else:
        async def count_round(conn: AsyncConnection) -> None:
            await conn.execute(payouts.update().where(
                payouts.c.id == payout_id, payouts.c.status == P.REQUESTED.value)
                .values(submit_rounds=payouts.c.submit_rounds + 1, updated_at=utcnow()))
        await ledger.transact(engine, count_round)
        log.warning("payout.no_bank_available", payout_id=payout_id)
    async with engine.connect() as conn:
        return await load_payout(conn, payout_id)


async def _unknown(engine: AsyncEngine, payout_id: str, bank: str) -> None:
    async def work(conn: AsyncConnection) -> None:
        now = utcnow()
        await transition(conn, payout_id, P.SUBMITTED, P.UNKNOWN, now=now)
        await inquiries.schedule(conn, Subject.PAYOUT, payout_id, bank, now, now)
    await ledger.transact(engine, work)


async def _apply_answer(engine: AsyncEngine, payout_id: str, bank: str,
                        answer: PayoutStatus) -> None:
    async def work(conn: AsyncConnection) -> None:
        now = utcnow()
        await calls.note_bank_ref(conn, Subject.PAYOUT, payout_id, bank, answer.bank_txn_id, now)
        if answer.outcome in (BankOutcome.SUCCEEDED, BankOutcome.FAILED):
            await settle_payout(conn, payout_id, answer.outcome, bank_txn_id=answer.bank_txn_id,
                                now=now, review=answer.review)
        else:
            # accepted and processing: the bank's notification or the inquiry settles it
            # (a notification may have beaten this answer here: then nothing is left to do)
            current = await load_payout(conn, payout_id)
            if current.status is not P.SUBMITTED:
                return
            await conn.execute(payouts.update().where(payouts.c.id == payout_id)
                               .values(bank_txn_id=answer.bank_txn_id, updated_at=now))
            await inquiries.schedule(conn, Subject.PAYOUT, payout_id, bank,
                                     now + inquiries.BASE_DELAY, now)
    try:
        await ledger.transact(engine, work)
    except ConcurrentTransition:
        # the bank's notification (or an inquiry) settled it while its answer was on the
        # way: applied once already, so the answer changes nothing
        log.info("payout.answer_after_settlement", payout_id=payout_id, bank=bank)


async def submit_payouts(engine: AsyncEngine, banks: BankDirectory, *,
                         payout_ids: Sequence[str] | None = None,
                         limit: int = 100) -> list[Payout]:
    """Send requested payouts (all, oldest first, or those named) to the banks; returns
    them as they stand afterwards. Never raises for one bank's trouble: a payout no bank
    took stays `requested` for the next run."""
    if payout_ids is None:
        async with engine.connect() as conn:
            payout_ids = list((await conn.execute(
                sa.select(payouts.c.id).where(payouts.c.status == P.REQUESTED.value)
                .order_by(payouts.c.created_at, payouts.c.id).limit(limit))).scalars())
    return [await submit_payout(engine, banks, payout_id) for payout_id in payout_ids]
