"""Refunds: partial, several, never more than captured.

`refund_payment` reserves the amount on the intent with a compare-and-set
(`refund_reserved_minor + amount <= captured_minor`, also a CHECK), records the refund,
then asks the bank. The bank's word — its answer, its notification or the janitor's
inquiry — settles it: succeeded posts the refund entry (external_ref = the bank's refund
id), failed releases the reservation; a lost answer makes it `unknown` until the inquiry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from gateways import calls, inquiries, postings, settlement
from gateways.bank import (
    BankCall,
    BankGateway,
    BankOutcome,
    BankRejected,
    BankUnavailable,
    OutcomeUnknown,
    RefundOrder,
    RefundStatus,
)
from gateways.checkout import get_intent, new_id
from gateways.errors import (
    IllegalTransition,
    InvalidPaymentRequest,
    RefundExceedsCaptured,
    RefundNotFound,
)
from gateways.inquiries import Subject
from gateways.routing import BankDirectory
from gateways.schema import payment_intents, refunds
from gateways.states import AttemptState, IntentState, RefundState
from gateways.store import find_refund, load_attempt, load_refund, utcnow
from gateways.terms import get_supplier_terms
from gateways.types import Attempt, PaymentIntent, Refund

__all__ = ["get_refund", "list_refunds", "refund_payment"]

log = structlog.get_logger("gateways.refunds")
_REFUNDABLE = (IntentState.SUCCEEDED, IntentState.CAPTURED)


async def refund_payment(engine: AsyncEngine, banks: BankDirectory, intent_id: str,
                         amount: Money, *, reason: str = "", refund_id: str | None = None,
                         merchant_id: str | None = None) -> Refund:
    """Refund `amount` of a paid intent at the bank that took the payment.

    `refund_id` makes the call idempotent (the same id and amount returns that refund).
    Raises `RefundExceedsCaptured` when refunds succeeded or in flight would pass what was
    captured, `IllegalTransition` when the intent is not paid. The refund returned may be
    `succeeded`, `pending` (the bank is processing), `unknown` or `failed`."""
    try:
        units = ledger.to_minor(amount)
    except ledger.LedgerError as exc:
        raise InvalidPaymentRequest(f"refund of {intent_id}: {exc}") from None
    if units <= 0:
        raise InvalidPaymentRequest(f"refund of {intent_id}: amount must be positive")
    refund_id = refund_id or new_id("rf")

    async def reserve(conn: AsyncConnection) -> tuple[Refund, Attempt | None, BankCall | None]:
        intent = await get_intent(conn, intent_id, merchant_id=merchant_id)
        existing = await find_refund(conn, refund_id)
        if existing is not None:
            if (existing.intent_id, existing.amount_minor) != (intent_id, units):
                raise InvalidPaymentRequest(
                    f"refund id {refund_id} was already used for another refund")
            return existing, None, None
        if intent.status not in _REFUNDABLE:
            raise IllegalTransition("intent", intent_id, intent.status.value, "refunded",
                                    "only a paid intent can be refunded")
        if amount.currency.code != intent.currency:
            raise InvalidPaymentRequest(f"intent {intent_id} is in {intent.currency}, "
                                        f"not {amount.currency.code}")
        assert intent.current_attempt_id is not None
        attempt = await load_attempt(conn, intent.current_attempt_id)
        if attempt.status not in (AttemptState.SUCCEEDED, AttemptState.CAPTURED):
            raise IllegalTransition("attempt", attempt.id, attempt.status.value, "refunded",
                                    "the paid attempt is not settled")
        now = utcnow()
        done = await conn.execute(payment_intents.update().where(
            payment_intents.c.id == intent_id,
            payment_intents.c.status.in_([s.value for s in _REFUNDABLE]),
            payment_intents.c.refund_reserved_minor + units <= payment_intents.c.captured_minor,
        ).values(refund_reserved_minor=payment_intents.c.refund_reserved_minor + units,
                 updated_at=now))
        intent = await get_intent(conn, intent_id)
        if done.rowcount != 1:
            raise RefundExceedsCaptured(intent_id, str(amount), str(intent.refundable))
        hold = await ledger.hold(conn, postings.refund_hold(
            refund_id=refund_id, now=now, entry=await _estimated_entry(
                conn, intent, attempt.id, attempt.bank, refund_id, units)))
        await conn.execute(refunds.insert().values(
            id=refund_id, intent_id=intent_id, attempt_id=attempt.id, bank=attempt.bank,
            status=RefundState.REQUESTED.value, amount_minor=units, currency=intent.currency,
            reason=reason, hold_id=hold.id, created_at=now, updated_at=now))
        # the call the bank is about to get, committed with the refund and before the bank
        # hears of it: a requested refund always has the call it is sent as, so an inquiry
        # never takes one on its way for one never sent (committed apart, a janitor pass
        # between the two heard "not found" and failed it; then the bank refunded it)
        call = await calls.record_call_in(conn, Subject.REFUND, refund_id,
                                          banks.get(attempt.bank), now=now, first=True)
        return await load_refund(conn, refund_id), attempt, call

    refund, attempt, call = await ledger.transact(engine, reserve)
    if attempt is None or call is None:  # this refund id was requested before
        return refund
    log.info("refund.requested", refund_id=refund_id, intent_id=intent_id, bank=refund.bank,
             amount_minor=units)
    order = RefundOrder(refund_id=refund_id, attempt_id=attempt.id,
                        original_bank_txn_id=attempt.bank_txn_id or "", amount=amount,
                        reason=reason or "refund", notify_url=banks.notify_url(refund.bank),
                        created_at=call.placed_at)
    try:
        answer = await banks.call(refund.bank, _send(order), moves_money=True)
    except (BankUnavailable, BankRejected) as exc:
        why = f"{type(exc).__name__}: {exc}"
        await ledger.transact(engine, lambda conn: settlement.settle_refund(
            conn, refund_id, BankOutcome.FAILED, bank_txn_id=None, reason=why))
    except OutcomeUnknown as exc:
        why = f"OutcomeUnknown: {exc}"
        await ledger.transact(engine, lambda conn: settlement.mark_refund_unknown(
            conn, refund_id, why))
    else:
        await ledger.transact(engine, lambda conn: _apply(conn, refund, answer))
    async with engine.connect() as conn:
        return await load_refund(conn, refund_id)


async def _estimated_entry(conn: AsyncConnection, intent: PaymentIntent, attempt_id: str,
                           bank: str, refund_id: str, units: int) -> ledger.EntryRequest:
    """The refund's entry as it will most likely be posted (its commission part counted
    as if the refunds before it, in flight or done, all succeed): what the hold reserves."""
    terms = await get_supplier_terms(conn, intent.supplier_id)
    before = intent.refund_reserved_minor - units
    def part(refunded_before: int, commission_before: int, amount: int) -> int:
        return postings.refund_commission_part(
            policy=terms.refund_commission, captured_minor=intent.captured_minor,
            commission_minor=intent.commission_minor, refunded_before_minor=refunded_before,
            commission_refunded_before_minor=commission_before, amount_minor=amount)
    commission = part(before, part(0, 0, before) if before else 0, units)
    return postings.refund_entry(
        refund_id=refund_id, attempt_id=attempt_id, intent_id=intent.id,
        order_id=intent.order_id, bank=bank, supplier_id=intent.supplier_id,
        amount_minor=units, commission_minor=commission, currency=intent.currency,
        bank_refund_id=refund_id, effective_date=utcnow().date())


def _send(order: RefundOrder) -> Callable[[BankGateway], Awaitable[RefundStatus]]:
    return lambda bank: bank.refund(order)


async def _apply(conn: AsyncConnection, refund: Refund, answer: RefundStatus) -> None:
    if answer.amount is not None and ledger.to_minor(answer.amount) != refund.amount_minor:
        await settlement.refund_to_review(conn, refund.id, (
            f"bank {refund.bank} answered refund {refund.id} with {answer.amount}, "
            f"not {refund.amount}"))
        return
    await calls.note_bank_ref(conn, Subject.REFUND, refund.id, refund.bank, answer.bank_txn_id)
    await settlement.settle_refund(conn, refund.id, answer.outcome, bank_txn_id=answer.bank_txn_id,
                                   source="answer")
    if answer.outcome is BankOutcome.SUCCEEDED and answer.review:
        await settlement.flag_refund(conn, refund.id, answer.review)
    if answer.outcome not in (BankOutcome.SUCCEEDED, BankOutcome.FAILED):
        now = utcnow()
        await inquiries.schedule(conn, Subject.REFUND, refund.id, refund.bank,
                                 now + inquiries.BASE_DELAY, now)


async def get_refund(conn: AsyncConnection, refund_id: str, *,
                     merchant_id: str | None = None) -> Refund:
    refund = await find_refund(conn, refund_id)
    if refund is None:
        raise RefundNotFound(refund_id)
    if merchant_id is not None:
        try:
            await get_intent(conn, refund.intent_id, merchant_id=merchant_id)
        except LookupError:
            raise RefundNotFound(refund_id) from None
    return refund


async def list_refunds(conn: AsyncConnection, intent_id: str, *,
                       merchant_id: str | None = None) -> list[Refund]:
    await get_intent(conn, intent_id, merchant_id=merchant_id)
    return await settlement.refunds_of(conn, intent_id)


