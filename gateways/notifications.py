"""A bank's notification, from raw HTTP to the books, framework-free:

    reply = await handle_notification(engine, banks, "unionpay", headers, body)
    # -> BankReply(status_code, content_type, body): send it back as it is

1. the adapter verifies the signature (and its replay window) and decodes;
2. the core checks merchant id, reference, amount and currency against our attempt,
   refund or payout;
3. a final outcome is applied once — deduplicated by (bank, bank txn id), the state's
   compare-and-set and the journal entry in one transaction;
4. the answer is in the bank's own protocol (`adapter.acknowledge`).

Forged, stale, malformed, duplicate, unknown or mismatched notifications change nothing
but are logged and recorded in `notification_rejections` (headers redacted, the body only
as digest and size); a mismatch also puts the intent (or payout) in review. A forged or
malformed one is answered "not accepted" (a real bank will send it again, signed right);
anything else the bank need not send again is acknowledged.

Payouts: a mismatch (merchant, currency, amount) or a contradiction (the same bank
transaction now with another outcome; "failed" for a payout that succeeded, or the
reverse) opens a payout review item (`gateways.payout_reviews`; a payout still in flight
moves to `review`). A payout the bank reports `returned` after it succeeded is booked
back once (`gateways.payout_returns`); a return for a payout not succeeded here goes to
review.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections.abc import Mapping

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from gateways import inquiries, intent_changes, payout_returns, payouts, settlement
from gateways.bank import BankGateway, BankNotification, BankOutcome, BankReply, NotificationKind
from gateways.errors import ConcurrentTransition, PaymentError, UnknownBank
from gateways.inquiries import Subject
from gateways.payout_reviews import ReviewKind, open_payout_review
from gateways.protocols import (
    MalformedMessage,
    ProtocolError,
    ReplayedMessage,
    SignatureInvalid,
    StaleMessage,
)
from gateways.routing import BankDirectory
from gateways.schema import bank_notifications, notification_rejections
from gateways.states import PayoutState
from gateways.store import find_attempt, find_payout, find_refund, utcnow

__all__ = ["NotificationResult", "handle_notification", "redact_headers"]

log = structlog.get_logger("gateways.notifications")

_SECRET_HEADER = re.compile(r"sign|auth|key|secret|token|cert|cookie|password", re.IGNORECASE)
_FINAL = (BankOutcome.SUCCEEDED, BankOutcome.FAILED)
_PAYOUT_FINAL = (*_FINAL, BankOutcome.RETURNED)


class NotificationResult:
    """Values of `notification_rejections.reason` (and of the log's `result`)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    FORGED = "forged"
    STALE = "stale"
    REPLAYED = "replayed"
    MALFORMED = "malformed"
    UNKNOWN_BANK = "unknown_bank"
    UNKNOWN_REFERENCE = "unknown_reference"
    MISMATCH = "mismatch"
    CONFLICT = "conflict"
    NOT_FINAL = "not_final"
    NOT_APPLIED = "not_applied"
    #: a payout reported returned that was not succeeded here (or another amount): review
    RETURN_NOT_BOOKED = "return_not_booked"


#: a rejected notification keeps at most this many headers (its first), each name and value
#: cut short: anyone can send one, so what it leaves behind must be bounded
MAX_KEPT_HEADERS = 40


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names kept; values of signatures, keys, tokens and the like replaced; at most
    `MAX_KEPT_HEADERS` of them, names cut at 100 characters and values at 200."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        if len(kept) >= MAX_KEPT_HEADERS:
            break
        kept[name[:100]] = "[redacted]" if _SECRET_HEADER.search(name) else value[:200]
    return kept


async def handle_notification(engine: AsyncEngine, banks: BankDirectory, bank_code: str,
                              headers: Mapping[str, str], body: bytes) -> BankReply:
    """Verify, check, apply once and acknowledge one notification from `bank_code`."""
    try:
        adapter = banks.get(bank_code)
    except UnknownBank:
        await _reject(engine, bank_code, NotificationResult.UNKNOWN_BANK,
                      "no such bank is configured", headers, body, None)
        return BankReply(404, "text/plain", b"unknown bank", unverified=True)
    try:
        note = adapter.parse_notification(headers, body)
    except ProtocolError as exc:
        reason = _protocol_reason(exc)
        await _reject(engine, bank_code, reason, str(exc), headers, body, None)
        # a replay was accepted once already: nothing for the bank to send again
        return dataclasses.replace(
            adapter.acknowledge(None, accepted=reason == NotificationResult.REPLAYED),
            unverified=True)
    if note.bank != bank_code:
        await _reject(engine, bank_code, NotificationResult.MISMATCH,
                      f"notification of bank {note.bank} arrived at {bank_code}'s endpoint",
                      headers, body, note)
        return adapter.acknowledge(note, accepted=False)
    for attempt_no in range(3):
        intent: list[str] = []  # the intent a payment notification is about, once found
        try:
            result, detail = await ledger.transact(engine, functools.partial(
                _apply, adapter=adapter, note=note, intent=intent))
            break
        except (ConcurrentTransition, IntegrityError):
            # a racing delivery of the same (or a contradicting) notification won; the
            # next round sees what it did
            if attempt_no == 2:
                raise
        except (PaymentError, ledger.LedgerError) as exc:
            # it cannot be applied now (e.g. an illegal move, a limit): nothing changed;
            # the bank is asked to send it again, and a person can see why
            await _reject(engine, bank_code, NotificationResult.NOT_APPLIED,
                          f"{type(exc).__name__}: {exc}", headers, body, note)
            return adapter.acknowledge(note, accepted=False)
    if intent and result in _MOVES_INTENT:
        # after the commit: a checkout page waiting on it hears at once
        await intent_changes.announce(engine, intent[0])
    if result != NotificationResult.APPLIED:
        await _reject(engine, bank_code, result, detail, headers, body, note)
    log.info("notification", bank=bank_code, kind=note.kind.value, reference=note.reference,
             bank_txn_id=note.bank_txn_id, outcome=note.outcome.value, result=result)
    return adapter.acknowledge(note, accepted=True)


def _protocol_reason(exc: ProtocolError) -> str:
    if isinstance(exc, SignatureInvalid):
        return NotificationResult.FORGED
    if isinstance(exc, StaleMessage):
        return NotificationResult.STALE
    if isinstance(exc, ReplayedMessage):
        return NotificationResult.REPLAYED
    if isinstance(exc, MalformedMessage):
        return NotificationResult.MALFORMED
    return NotificationResult.MALFORMED


async def _reject(engine: AsyncEngine, bank: str, reason: str, detail: str,
                  headers: Mapping[str, str], body: bytes, note: BankNotification | None) -> None:
    log.warning("notification.rejected", bank=bank, reason=reason, detail=detail,
                kind=note.kind.value if note else None,
                reference=note.reference if note else None,
                bank_txn_id=note.bank_txn_id if note else None)
    # what a rejected notification leaves is text a person reads: anyone can put a NUL
    # in it (which PostgreSQL's text refuses, and the rejection would go unrecorded)
    detail = detail.replace("\x00", "\\x00")
    async with engine.begin() as conn:
        await conn.execute(notification_rejections.insert().values(
            bank=bank[:32], reason=reason, detail=detail[:2000],
            kind=note.kind.value if note else None, reference=note.reference[:64] if note else None,
            bank_txn_id=note.bank_txn_id[:128] if note else None,
            headers=redact_headers(headers), body_sha256=hashlib.sha256(body).hexdigest(),
            body_size=len(body), received_at=utcnow()))


#: what a payment notification did to its intent's state, when it did something
_MOVES_INTENT = frozenset({NotificationResult.APPLIED, NotificationResult.MISMATCH,
                           NotificationResult.CONFLICT})


async def _apply(conn: AsyncConnection, adapter: BankGateway, note: BankNotification,
                 intent: list[str]) -> tuple[str, str]:
    """One transaction: checks, dedupe, state change and postings. Returns (result, why);
    a payment's intent id goes into `intent`."""
    if note.kind is NotificationKind.PAYMENT:
        return await _payment(conn, adapter, note, intent)
    if note.kind is NotificationKind.REFUND:
        return await _refund(conn, adapter, note)
    return await _payout(conn, adapter, note)


def _mismatch(note: BankNotification, adapter: BankGateway, merchant_id: str,
              amount_minor: int, currency: str) -> str | None:
    problems = []
    if note.merchant_id != merchant_id or note.merchant_id != adapter.merchant_id:
        problems.append(f"merchant {note.merchant_id!r} is not ours ({merchant_id!r})")
    if note.amount.currency.code != currency:
        problems.append(f"currency {note.amount.currency.code} is not {currency}")
    try:
        units = ledger.to_minor(note.amount)
    except ledger.LedgerError:
        units = -1
    if units != amount_minor:
        problems.append(f"amount {note.amount.amount} is not "
                        f"{ledger.from_minor(amount_minor, currency).amount}")
    return "; ".join(problems) or None


async def _dedupe(conn: AsyncConnection, note: BankNotification) -> tuple[str, str] | None:
    """None when this bank transaction's final outcome was not applied yet."""
    seen = (await conn.execute(sa.select(bank_notifications).where(
        bank_notifications.c.bank == note.bank,
        bank_notifications.c.bank_txn_id == note.bank_txn_id))).first()
    if seen is None:
        return None
    if (seen.kind, seen.reference, seen.outcome) == (
            note.kind.value, note.reference, note.outcome.value):
        return NotificationResult.DUPLICATE, f"already applied (notification {seen.id})"
    return NotificationResult.CONFLICT, (
        f"bank txn {note.bank_txn_id} was applied as {seen.kind} {seen.reference} "
        f"{seen.outcome}; now {note.kind.value} {note.reference} {note.outcome.value}")


async def _record(conn: AsyncConnection, note: BankNotification) -> None:
    await conn.execute(bank_notifications.insert().values(
        bank=note.bank, bank_txn_id=note.bank_txn_id, kind=note.kind.value,
        reference=note.reference, outcome=note.outcome.value,
        amount_minor=ledger.to_minor(note.amount), currency=note.amount.currency.code,
        merchant_id=note.merchant_id, occurred_at=note.occurred_at, received_at=utcnow(),
        details=dict(note.details)))


async def _record_new(conn: AsyncConnection, note: BankNotification) -> bool:
    """`_record` unless this bank transaction is recorded already: True if written."""
    made = (await conn.execute(_RECORD_NEW[conn.dialect.name == "postgresql"], {
        "bank": note.bank, "bank_txn_id": note.bank_txn_id, "kind": note.kind.value,
        "reference": note.reference, "outcome": note.outcome.value,
        "amount_minor": ledger.to_minor(note.amount), "currency": note.amount.currency.code,
        "merchant_id": note.merchant_id, "occurred_at": note.occurred_at,
        "received_at": utcnow(), "details": dict(note.details)})).first()
    return made is not None


#: by "is PostgreSQL": the recording INSERT that does nothing for a known bank transaction
_RECORD_NEW = {
    pg: (postgresql.insert(bank_notifications) if pg else sqlite.insert(bank_notifications))
    .on_conflict_do_nothing(index_elements=["bank", "bank_txn_id"])
    .returning(bank_notifications.c.id)
    for pg in (True, False)}


async def _ask_soon(conn: AsyncConnection, subject: Subject, subject_id: str, bank: str,
                    status: str) -> None:
    if status in ("succeeded", "failed", "captured", "canceled"):
        return
    now = utcnow()
    await inquiries.schedule(conn, subject, subject_id, bank, now, now)


async def _payment(conn: AsyncConnection, adapter: BankGateway,
                   note: BankNotification, intent: list[str]) -> tuple[str, str]:
    attempt = await find_attempt(conn, note.reference)
    if attempt is None or attempt.bank != note.bank:
        return NotificationResult.UNKNOWN_REFERENCE, f"no attempt {note.reference} at {note.bank}"
    intent.append(attempt.intent_id)
    wrong = _mismatch(note, adapter, attempt.bank_merchant_id, attempt.amount_minor,
                      attempt.currency)
    if wrong:
        # the intent goes to a person; the attempt is left for the bank's inquiry answer
        # to settle, so the books still follow what the bank really took
        await settlement.put_intent_in_review(conn, attempt.intent_id,
                                              f"notification mismatch: {wrong}")
        await _ask_soon(conn, Subject.ATTEMPT, attempt.id, attempt.bank, attempt.status.value)
        return NotificationResult.MISMATCH, wrong
    if note.outcome not in _FINAL:
        return NotificationResult.NOT_FINAL, f"outcome {note.outcome.value} changes nothing"
    if attempt.bank_txn_id and attempt.bank_txn_id != note.bank_txn_id:
        dup = await _dedupe(conn, note)
        if dup is not None:
            if dup[0] == NotificationResult.CONFLICT:
                await settlement.attempt_to_review(conn, attempt.id, dup[1])
            return dup
        why = (f"attempt {attempt.id} settled under bank txn {attempt.bank_txn_id}; the "
               f"notification names {note.bank_txn_id}")
        await settlement.attempt_to_review(conn, attempt.id, why)
        return NotificationResult.CONFLICT, why
    # recorded first, deduplicated by the recording itself (one INSERT ... ON CONFLICT DO
    # NOTHING, not a read and then a write): a racing delivery of the same bank
    # transaction waits on this row's unique key, then finds it, before the capture locks
    # the hot accounts
    if not await _record_new(conn, note):
        dup = await _dedupe(conn, note)
        assert dup is not None  # the row the INSERT met
        if dup[0] == NotificationResult.CONFLICT:
            await settlement.attempt_to_review(conn, attempt.id, dup[1])
        return dup
    if note.review and note.outcome is BankOutcome.SUCCEEDED:  # UnionPay A6: paid, flagged
        await settlement.settle_attempt(conn, attempt.id, note.outcome,
                                        bank_txn_id=note.bank_txn_id, source="notification")
        await settlement.flag_attempt(conn, attempt.id, note.review)
        return NotificationResult.APPLIED, ""
    # the attempt as read above, in this transaction (the state change is its
    # compare-and-set); the capture's entry is the last statement: the caller commits at once
    await settlement.apply_attempt_outcome(conn, attempt, note.outcome,
                                           bank_txn_id=note.bank_txn_id, source="notification")
    return NotificationResult.APPLIED, ""


async def _refund(conn: AsyncConnection, adapter: BankGateway,
                  note: BankNotification) -> tuple[str, str]:
    refund = await find_refund(conn, note.reference)
    if refund is None or refund.bank != note.bank:
        return NotificationResult.UNKNOWN_REFERENCE, f"no refund {note.reference} at {note.bank}"
    attempt = await find_attempt(conn, refund.attempt_id)
    assert attempt is not None
    wrong = _mismatch(note, adapter, attempt.bank_merchant_id, refund.amount_minor,
                      refund.currency)
    if wrong:
        await settlement.put_intent_in_review(conn, refund.intent_id,
                                              f"refund notification mismatch: {wrong}")
        await _ask_soon(conn, Subject.REFUND, refund.id, refund.bank, refund.status.value)
        return NotificationResult.MISMATCH, wrong
    if note.outcome not in _FINAL:
        return NotificationResult.NOT_FINAL, f"outcome {note.outcome.value} changes nothing"
    dup = await _dedupe(conn, note)
    if dup is not None:
        if dup[0] == NotificationResult.CONFLICT:
            await settlement.refund_to_review(conn, refund.id, dup[1])
        return dup
    await settlement.settle_refund(conn, refund.id, note.outcome, bank_txn_id=note.bank_txn_id,
                                   source="notification")
    if note.review and note.outcome is BankOutcome.SUCCEEDED:  # UnionPay A6: paid, flagged
        await settlement.flag_refund(conn, refund.id, note.review)
    await _record(conn, note)
    return NotificationResult.APPLIED, ""


async def _payout(conn: AsyncConnection, adapter: BankGateway,
                  note: BankNotification) -> tuple[str, str]:
    payout = await find_payout(conn, note.reference)
    if payout is None or payout.bank != note.bank:
        return NotificationResult.UNKNOWN_REFERENCE, f"no payout {note.reference} at {note.bank}"
    units = _stated_units(note)

    async def review(kind: ReviewKind, why: str) -> None:
        await open_payout_review(conn, payout, kind, why, bank=note.bank,
                                 bank_txn_id=note.bank_txn_id, amount_minor=units,
                                 currency=note.amount.currency.code)

    wrong = _mismatch(note, adapter, adapter.merchant_id, payout.amount_minor, payout.currency)
    if wrong:
        await review(ReviewKind.MISMATCH,
                     f"{note.outcome.value} notification from {note.bank} mismatch: {wrong}")
        return NotificationResult.MISMATCH, wrong
    if note.outcome not in _PAYOUT_FINAL:
        return NotificationResult.NOT_FINAL, f"outcome {note.outcome.value} changes nothing"
    dup = await _dedupe(conn, note)
    if dup is not None:
        if dup[0] == NotificationResult.CONFLICT:
            await review(ReviewKind.CONFLICT, dup[1])
        return dup
    if note.outcome is BankOutcome.RETURNED:
        applied = await payout_returns.book_payout_return(
            conn, payout.id, bank=note.bank, bank_return_id=note.bank_txn_id,
            amount_minor=units, currency=note.amount.currency.code,
            reason=note.details.get("return_reason", ""), source="notification")
        await _record(conn, note)
        if applied is payout_returns.ReturnApplied.BOOKED:
            return NotificationResult.APPLIED, ""
        if applied is payout_returns.ReturnApplied.DUPLICATE:
            return NotificationResult.DUPLICATE, f"payout {payout.id} was returned already"
        return NotificationResult.RETURN_NOT_BOOKED, (
            f"payout {payout.id} is {payout.status.value}: the return goes to review")
    if payout.status is PayoutState.RETURNED and note.outcome is BankOutcome.SUCCEEDED:
        # the payment before its return, told late: both are booked already
        await _record(conn, note)
        return NotificationResult.DUPLICATE, f"payout {payout.id} succeeded and was returned"
    settled = (PayoutState.SUCCEEDED, PayoutState.FAILED, PayoutState.RETURNED)
    if payout.status in settled and (
            (payout.status is not PayoutState.FAILED) != (note.outcome is BankOutcome.SUCCEEDED)):
        why = f"payout {payout.id} is {payout.status.value}; the bank now says {note.outcome.value}"
        await review(ReviewKind.CONFLICT, why)
        return NotificationResult.CONFLICT, why
    await payouts.settle_payout(conn, payout.id, note.outcome, bank_txn_id=note.bank_txn_id,
                                review=note.review)  # UnionPay A6: paid, flagged
    await _record(conn, note)
    return NotificationResult.APPLIED, ""


def _stated_units(note: BankNotification) -> int | None:
    try:
        return ledger.to_minor(note.amount)
    except ledger.LedgerError:
        return None
