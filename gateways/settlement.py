"""Applying a bank's word about a payment attempt or a refund, once, in the caller's
transaction: the compare-and-set of the state and the journal entry commit together.

Used by notifications, by the janitor's inquiries, and by synchronous bank answers alike,
so a notification that comes after an inquiry (or twice) finds the work done.

The ledger follows the bank: money the bank says it took is booked even when it arrives
after we gave up on the attempt (a late success after expiry or cancel), and the intent
goes to review for a person to refund it: the books must never hide money the bank holds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from gateways import inquiries, postings, states
from gateways.bank import BankOutcome
from gateways.errors import IntentNotFound, UnknownSupplier
from gateways.inquiries import Subject
from gateways.schema import payment_attempts, payment_intents, refunds, supplier_terms
from gateways.states import AttemptState, IntentState, RefundState
from gateways.store import (
    intent_from_row,
    load_attempt,
    load_intent,
    load_refund,
    transition,
    utcnow,
)
from gateways.terms import get_supplier_terms
from gateways.types import Attempt, PaymentIntent, Refund

log = structlog.get_logger("gateways.settlement")

A, IS, R = AttemptState, IntentState, RefundState
_PAID_ATTEMPT = (A.SUCCEEDED, A.CAPTURED)
_PPM = Decimal(1_000_000)

#: a capture's read: the intent, locked, with its supplier's commission rate (None when
#: the supplier has no terms)
_INTENT_AND_RATE = (
    sa.select(payment_intents, supplier_terms.c.commission_ppm)
    .select_from(payment_intents.outerjoin(
        supplier_terms, supplier_terms.c.supplier_id == payment_intents.c.supplier_id))
    .where(payment_intents.c.id == sa.bindparam("intent_id"))
    .with_for_update(of=payment_intents))


async def put_intent_in_review(conn: AsyncConnection, intent_id: str, reason: str,
                               now: dt.datetime | None = None) -> PaymentIntent:
    """Hand the intent to a person (mismatch, contradiction, inquiry exhausted)."""
    intent = await load_intent(conn, intent_id)
    if intent.status is not IS.REVIEW:
        await transition(conn, intent.id, intent.status, IS.REVIEW, now=now, why=reason,
                         review_reason=reason)
        log.warning("intent.review", intent_id=intent.id, reason=reason)
    return await load_intent(conn, intent_id)


async def _attempt_to_review(conn: AsyncConnection, attempt: Attempt, reason: str,
                             now: dt.datetime, **values: Any) -> None:
    if attempt.status is not A.REVIEW and states.allowed(attempt.status, A.REVIEW):
        await transition(conn, attempt.id, attempt.status, A.REVIEW, now=now,
                         failure_reason=reason, **values)


async def settle_attempt(conn: AsyncConnection, attempt_id: str, outcome: BankOutcome, *,
                         bank_txn_id: str | None, now: dt.datetime | None = None,
                         source: str = "bank") -> Attempt:
    """Apply `outcome` (succeeded or failed; anything else changes nothing) to an attempt
    and its intent. Idempotent: the same word again changes nothing. Amounts must have
    been checked by the caller."""
    now = now or utcnow()
    await apply_attempt_outcome(conn, await load_attempt(conn, attempt_id), outcome,
                                bank_txn_id=bank_txn_id, now=now, source=source)
    return await load_attempt(conn, attempt_id)


async def apply_attempt_outcome(conn: AsyncConnection, attempt: Attempt, outcome: BankOutcome,
                                *, bank_txn_id: str | None, now: dt.datetime | None = None,
                                source: str = "bank") -> None:
    """`settle_attempt` for an attempt the caller has just read in this transaction (a
    notification's): the same work, without reading the attempt again before or after."""
    now = now or utcnow()
    capture: _Capture | None = None
    if outcome is BankOutcome.SUCCEEDED:
        capture = await _succeed(conn, attempt, bank_txn_id, now, source)
    elif outcome is BankOutcome.FAILED:
        await _fail(conn, attempt, "the bank reports the payment failed", now, source)
    if capture is not None:
        # the capture's entry last: it locks the hot accounts (the bank's clearing, the
        # commission), and the caller commits right after, so no other statement runs
        # while they are held
        entry = await ledger.post(conn, capture.request)
        log.info("payment.captured", entry_id=str(entry.id), source=source, **capture.facts)


@dataclass(frozen=True)
class _Capture:
    request: ledger.EntryRequest
    facts: dict[str, Any]


async def _succeed(conn: AsyncConnection, attempt: Attempt, bank_txn_id: str | None,
                   now: dt.datetime, source: str) -> _Capture | None:
    """Everything of a success but its entry, which the caller posts last."""
    if attempt.status in _PAID_ATTEMPT:
        if bank_txn_id and attempt.bank_txn_id and bank_txn_id != attempt.bank_txn_id:
            await _attempt_to_review(conn, attempt, "second success with another bank txn", now)
            await put_intent_in_review(conn, attempt.intent_id, (
                f"attempt {attempt.id} reported paid twice under different bank "
                f"transactions ({attempt.bank_txn_id}, {bank_txn_id})"), now)
        return None
    if attempt.status is A.REVIEW and attempt.bank_txn_id:
        return None  # booked already, a person is looking at it
    if not bank_txn_id:
        bank_txn_id = attempt.bank_payment_id or attempt.id
    # the intent, locked, and its supplier's commission rate: one statement
    row = (await conn.execute(_INTENT_AND_RATE, {"intent_id": attempt.intent_id})).first()
    if row is None:
        raise IntentNotFound(attempt.intent_id)
    if row.commission_ppm is None:
        raise UnknownSupplier(row.supplier_id)
    intent = intent_from_row(row)
    regular = (states.allowed(attempt.status, A.SUCCEEDED)
               and intent.current_attempt_id == attempt.id
               and intent.status in (IS.PENDING, IS.UNKNOWN, IS.REVIEW))
    if states.allowed(attempt.status, A.SUCCEEDED):
        await transition(conn, attempt.id, attempt.status, A.SUCCEEDED, now=now,
                         bank_txn_id=bank_txn_id, settled_at=now)
    else:
        # a success after we had given up on the attempt: book it, and a person decides
        await transition(conn, attempt.id, attempt.status, A.REVIEW, now=now,
                         bank_txn_id=bank_txn_id, settled_at=now,
                         failure_reason="the bank took the money after the attempt had failed")
    commission = postings.commission_on(attempt.amount_minor,
                                        Decimal(row.commission_ppm) / _PPM)
    captured = payment_intents.c.captured_minor + attempt.amount_minor
    commissioned = payment_intents.c.commission_minor + commission
    if regular and intent.status is not IS.REVIEW:
        # the amounts and the move in one UPDATE (its event reads the row it leaves)
        await transition(conn, intent.id, intent.status, IS.SUCCEEDED, now=now, bank=attempt.bank,
                         captured_minor=captured, commission_minor=commissioned)
    else:
        await conn.execute(payment_intents.update().where(payment_intents.c.id == intent.id)
                           .values(updated_at=now, captured_minor=captured,
                                   commission_minor=commissioned))
    if not regular:
        await put_intent_in_review(conn, intent.id, (
            f"bank {attempt.bank} took {attempt.amount} for attempt {attempt.id} while the "
            f"intent was {intent.status.value}: refund or keep it"), now)
    await inquiries.close(conn, Subject.ATTEMPT, attempt.id, now, outcome="succeeded")
    return _Capture(postings.capture_entry(
        attempt_id=attempt.id, intent_id=intent.id, order_id=intent.order_id, bank=attempt.bank,
        supplier_id=intent.supplier_id, amount_minor=attempt.amount_minor,
        commission_minor=commission, currency=attempt.currency, bank_txn_id=bank_txn_id,
        effective_date=now.date()), {
            "intent_id": intent.id, "attempt_id": attempt.id, "bank": attempt.bank,
            "bank_txn_id": bank_txn_id, "amount_minor": attempt.amount_minor,
            "commission_minor": commission})


async def _fail(conn: AsyncConnection, attempt: Attempt, reason: str, now: dt.datetime,
                source: str, *, intent_target: IntentState = IS.FAILED) -> None:
    if attempt.status is A.FAILED:
        return
    if attempt.status in _PAID_ATTEMPT:
        await _attempt_to_review(conn, attempt, "reported failed after it succeeded", now)
        await put_intent_in_review(conn, attempt.intent_id, (
            f"bank {attempt.bank} reports attempt {attempt.id} failed after reporting it paid"),
            now)
        return
    if attempt.status is A.REVIEW:
        return
    await transition(conn, attempt.id, attempt.status, A.FAILED, now=now, failure_reason=reason,
                     settled_at=now)
    intent = await load_intent(conn, attempt.intent_id)
    if intent.current_attempt_id == attempt.id and intent.status in (
            IS.CREATED, IS.PENDING, IS.UNKNOWN, IS.AUTHORIZED):
        await transition(conn, intent.id, intent.status, intent_target, now=now)
    await inquiries.close(conn, Subject.ATTEMPT, attempt.id, now, outcome="failed")
    log.info("payment.failed", intent_id=intent.id, attempt_id=attempt.id, bank=attempt.bank,
             reason=reason, source=source)


async def fail_attempt(conn: AsyncConnection, attempt_id: str, reason: str, *,
                       expired: bool = False, now: dt.datetime | None = None) -> Attempt:
    """The attempt definitely took no money (the bank refused it, never had it, or it was
    never reached): failed; its intent failed (retryable) or, past its expiry, expired."""
    now = now or utcnow()
    attempt = await load_attempt(conn, attempt_id)
    await _fail(conn, attempt, reason, now, "core",
                intent_target=IS.EXPIRED if expired else IS.FAILED)
    return await load_attempt(conn, attempt_id)


async def mark_attempt_unknown(conn: AsyncConnection, attempt_id: str, reason: str,
                               now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    attempt = await load_attempt(conn, attempt_id)
    await transition(conn, attempt.id, attempt.status, A.UNKNOWN, now=now, failure_reason=reason)
    intent = await load_intent(conn, attempt.intent_id)
    if intent.current_attempt_id == attempt.id and intent.status is not IS.UNKNOWN:
        await transition(conn, intent.id, intent.status, IS.UNKNOWN, now=now)
    await inquiries.schedule(conn, Subject.ATTEMPT, attempt.id, attempt.bank, now, now)


async def attempt_to_review(conn: AsyncConnection, attempt_id: str, reason: str,
                            now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    attempt = await load_attempt(conn, attempt_id)
    await _attempt_to_review(conn, attempt, reason, now)
    await put_intent_in_review(conn, attempt.intent_id, reason, now)
    await inquiries.close(conn, Subject.ATTEMPT, attempt.id, now, status="review")


# ---------------------------------------------------------------------------- refunds


async def settle_refund(conn: AsyncConnection, refund_id: str, outcome: BankOutcome, *,
                        bank_txn_id: str | None, reason: str = "",
                        now: dt.datetime | None = None, source: str = "bank") -> Refund:
    """Apply the bank's word about a refund, once: succeeded posts the refund entry (the
    commission part per the supplier's terms), failed releases the reserved amount;
    processing leaves it with the bank."""
    now = now or utcnow()
    # locked first: the bank's answer and its notification race to settle one refund, and
    # the loser must see the winner's outcome (a no-op), not fail its compare-and-set
    refund = await load_refund(conn, refund_id, for_update=True)
    if outcome is BankOutcome.SUCCEEDED:
        await _refund_succeeded(conn, refund, bank_txn_id, now, source)
    elif outcome is BankOutcome.FAILED:
        await _refund_failed(conn, refund, reason or "the bank refused the refund", now)
    elif refund.status in (R.REQUESTED, R.UNKNOWN):
        await transition(conn, refund.id, refund.status, R.PENDING, now=now,
                         bank_txn_id=bank_txn_id or refund.bank_txn_id)
    return await load_refund(conn, refund_id)


async def _refund_succeeded(conn: AsyncConnection, refund: Refund, bank_txn_id: str | None,
                            now: dt.datetime, source: str) -> None:
    if refund.status is R.SUCCEEDED:
        return
    bank_txn_id = bank_txn_id or refund.bank_txn_id or refund.id
    intent = await load_intent(conn, refund.intent_id, for_update=True)
    terms = await get_supplier_terms(conn, intent.supplier_id)
    commission = postings.refund_commission_part(
        policy=terms.refund_commission, captured_minor=intent.captured_minor,
        commission_minor=intent.commission_minor, refunded_before_minor=intent.refunded_minor,
        commission_refunded_before_minor=intent.refunded_commission_minor,
        amount_minor=refund.amount_minor)
    await transition(conn, refund.id, refund.status, R.SUCCEEDED, now=now,
                     bank_txn_id=bank_txn_id, settled_at=now, commission_minor=commission)
    await _release(conn, refund)
    await conn.execute(payment_intents.update().where(payment_intents.c.id == intent.id).values(
        refunded_minor=payment_intents.c.refunded_minor + refund.amount_minor,
        refunded_commission_minor=payment_intents.c.refunded_commission_minor + commission,
        updated_at=now))
    entry = await ledger.post(conn, postings.refund_entry(
        refund_id=refund.id, attempt_id=refund.attempt_id, intent_id=intent.id,
        order_id=intent.order_id, bank=refund.bank, supplier_id=intent.supplier_id,
        amount_minor=refund.amount_minor, commission_minor=commission,
        currency=refund.currency, bank_refund_id=bank_txn_id, effective_date=now.date()))
    await inquiries.close(conn, Subject.REFUND, refund.id, now, outcome="succeeded")
    log.info("refund.succeeded", refund_id=refund.id, intent_id=intent.id, bank=refund.bank,
             bank_txn_id=bank_txn_id, amount_minor=refund.amount_minor,
             commission_minor=commission, entry_id=str(entry.id), source=source)


async def _refund_failed(conn: AsyncConnection, refund: Refund, reason: str,
                         now: dt.datetime) -> None:
    if refund.status is R.FAILED:
        return
    if refund.status is R.SUCCEEDED:
        await put_intent_in_review(conn, refund.intent_id, (
            f"bank {refund.bank} reports refund {refund.id} failed after reporting it done"), now)
        return
    await transition(conn, refund.id, refund.status, R.FAILED, now=now, failure_reason=reason,
                     settled_at=now)
    await _release(conn, refund)
    await conn.execute(payment_intents.update().where(
        payment_intents.c.id == refund.intent_id).values(
        refund_reserved_minor=payment_intents.c.refund_reserved_minor - refund.amount_minor,
        updated_at=now))
    await inquiries.close(conn, Subject.REFUND, refund.id, now, outcome="failed")
    log.info("refund.failed", refund_id=refund.id, bank=refund.bank, reason=reason)


async def _release(conn: AsyncConnection, refund: Refund) -> None:
    """Void the refund's reservation (the entry, if any, is posted in this transaction)."""
    if refund.hold_id is None:
        return
    [hold] = await ledger.load_holds(conn, [refund.hold_id])
    if hold.status is ledger.HoldStatus.PENDING:
        # past its deadline it cannot be voided: `expire_holds` releases it
        with contextlib.suppress(ledger.HoldExpired):
            await ledger.void_hold(conn, refund.hold_id)


async def mark_refund_unknown(conn: AsyncConnection, refund_id: str, reason: str,
                              now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    refund = await load_refund(conn, refund_id)
    await transition(conn, refund.id, refund.status, R.UNKNOWN, now=now, failure_reason=reason)
    await inquiries.schedule(conn, Subject.REFUND, refund.id, refund.bank, now, now)


async def refund_to_review(conn: AsyncConnection, refund_id: str, reason: str,
                           now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    refund = await load_refund(conn, refund_id)
    if refund.status is not R.REVIEW and states.allowed(refund.status, R.REVIEW):
        await transition(conn, refund.id, refund.status, R.REVIEW, now=now, failure_reason=reason)
    await put_intent_in_review(conn, refund.intent_id, reason, now)
    await inquiries.close(conn, Subject.REFUND, refund.id, now, status="review")


# ---------------------------------------------------------------------------- flags


async def flag_attempt(conn: AsyncConnection, attempt_id: str, review: str,
                       now: dt.datetime | None = None) -> None:
    """A success the bank itself qualified (UnionPay A6): booked as the success it is,
    and its intent handed to a person. Never a failure: the money moved."""
    attempt = await load_attempt(conn, attempt_id)
    await put_intent_in_review(conn, attempt.intent_id,
                               f"payment {attempt_id} at {attempt.bank}: {review}", now)


async def flag_refund(conn: AsyncConnection, refund_id: str, review: str,
                      now: dt.datetime | None = None) -> None:
    """As `flag_attempt`, for a refund: posted as succeeded, its intent to review."""
    refund = await load_refund(conn, refund_id)
    await put_intent_in_review(conn, refund.intent_id,
                               f"refund {refund_id} at {refund.bank}: {review}", now)


async def attempts_of(conn: AsyncConnection, intent_id: str) -> list[Attempt]:
    from gateways.store import attempt_from_row
    rows = await conn.execute(sa.select(payment_attempts).where(
        payment_attempts.c.intent_id == intent_id).order_by(payment_attempts.c.created_at))
    return [attempt_from_row(r) for r in rows]


async def refunds_of(conn: AsyncConnection, intent_id: str) -> list[Refund]:
    from gateways.store import refund_from_row
    rows = await conn.execute(sa.select(refunds).where(
        refunds.c.intent_id == intent_id).order_by(refunds.c.created_at, refunds.c.id))
    return [refund_from_row(r) for r in rows]
