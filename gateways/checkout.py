"""Checkout: a payment intent per order, an attempt per try at a bank.

`create_intent` records the intent and its first attempt, then asks the chosen bank for
the customer's way there (the `PaymentInstruction`); `retry_intent` tries a failed intent
at another bank. The bank's notification (or the janitor's inquiry) settles the attempt.
A merchant sees only its own intents: every read takes the merchant id.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from types import SimpleNamespace

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from gateways import calls, inquiries, postings, settlement
from gateways.bank import (
    BankCall,
    BankGateway,
    BankRejected,
    BankUnavailable,
    OutcomeUnknown,
    PaymentInstruction,
    PaymentOrder,
)
from gateways.errors import (
    ConcurrentTransition,
    DuplicateOrder,
    IllegalTransition,
    IntentNotFound,
    InvalidPaymentRequest,
    NotFound,
    UnknownSupplier,
)
from gateways.inquiries import Subject
from gateways.limits import check_amount
from gateways.routing import BankDirectory
from gateways.schema import payment_attempts, payment_intents, supplier_terms
from gateways.states import AttemptState, IntentState
from gateways.store import (
    attempt_from_row,
    find_attempt,
    find_intent,
    intent_from_row,
    load_attempt,
    load_intent,
    transition,
    utcnow,
)
from gateways.types import Attempt, Checkout, IntentRequest, PaymentIntent

__all__ = [
    "cancel_intent",
    "create_intent",
    "expire_intents",
    "get_checkout",
    "get_intent",
    "list_attempts",
    "list_intents",
    "retry_intent",
]

log = structlog.get_logger("gateways.checkout")
IS, A = IntentState, AttemptState
#: after an intent's expiry, how long before the janitor asks the bank what became of it
INQUIRY_GRACE = dt.timedelta(minutes=1)


def new_id(prefix: str) -> str:
    # alphanumeric only: UnionPay's orderId takes [0-9A-Za-z], 8 to 40 characters
    return prefix + uuid.uuid4().hex


def _validate(request: IntentRequest) -> int:
    for name in ("merchant_id", "order_id", "supplier_id", "bank"):
        value = getattr(request, name)
        if not value or len(value) > 64:
            raise InvalidPaymentRequest(f"{name} must be 1 to 64 characters")
    try:
        units = ledger.to_minor(request.amount)
    except ledger.LedgerError as exc:
        raise InvalidPaymentRequest(f"order {request.order_id}: {exc}") from None
    if units <= 0:
        raise InvalidPaymentRequest(f"order {request.order_id}: amount must be positive")
    if request.expires_in <= dt.timedelta(0):
        raise InvalidPaymentRequest("expires_in must be positive")
    return units


def _same_order(intent: PaymentIntent, request: IntentRequest, units: int) -> bool:
    return (intent.supplier_id, intent.amount_minor, intent.currency) == (
        request.supplier_id, units, request.amount.currency.code)


async def _existing(engine: AsyncEngine, request: IntentRequest, units: int) -> Checkout | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(payment_intents).where(
            payment_intents.c.merchant_id == request.merchant_id,
            payment_intents.c.order_id == request.order_id))).first()
        if row is None:
            return None
        intent = intent_from_row(row)
        if not _same_order(intent, request, units):
            raise DuplicateOrder(request.merchant_id, request.order_id, intent.id)
        return await _checkout(conn, intent)


async def _checkout(conn: AsyncConnection, intent: PaymentIntent) -> Checkout:
    assert intent.current_attempt_id is not None
    attempt = await load_attempt(conn, intent.current_attempt_id)
    return Checkout(intent, attempt, attempt.payment_instruction)


async def create_intent(engine: AsyncEngine, banks: BankDirectory,
                        request: IntentRequest) -> Checkout:
    """Create the intent for a merchant's order and its attempt at the chosen bank, and
    get from the bank what the checkout page needs (form or redirect).

    The same order again (same supplier, amount, currency) returns the existing checkout;
    another order under the same merchant order id raises `DuplicateOrder`. If the bank
    cannot be reached the intent is `failed` (instruction None; `retry_intent` at another
    bank); if its answer is lost the intent is `unknown` until the janitor asks."""
    units = _validate(request)
    # a currency or an amount the bank cannot carry is the request's fault, found before
    # anything is written (else the intent and its attempt would stay `created` for good)
    check_amount(banks, request.bank, request.amount)
    now = utcnow()
    intent_id, attempt_id = new_id("pi"), request.attempt_id or new_id("at")
    bank = banks.get(request.bank)

    async def record(conn: AsyncConnection) -> BankCall:
        # the intent is written only for a supplier with terms: one INSERT ... SELECT FROM
        # supplier_terms, which inserts nothing (UnknownSupplier) for any other
        made = await conn.execute(_INSERT_INTENT, {
            "id": intent_id, "merchant_id": request.merchant_id, "order_id": request.order_id,
            "supplier_id": request.supplier_id, "amount_minor": units,
            "currency": request.amount.currency.code, "bank": request.bank,
            "status": IS.CREATED.value, "description": request.description,
            "current_attempt_id": attempt_id, "created_at": now, "updated_at": now,
            "expires_at": now + request.expires_in})
        if made.rowcount != 1:
            raise UnknownSupplier(request.supplier_id)
        await postings.ensure_payment_accounts(conn, request.bank, request.supplier_id,
                                               request.amount.currency.code)
        await _insert_attempt(conn, attempt_id, intent_id, bank, units,
                              request.amount.currency.code, now)
        # the call the bank is about to get, committed with the attempt (one commit, not
        # two) and before the bank hears of it: the txnTime any inquiry names
        return await calls.record_call_in(conn, Subject.ATTEMPT, attempt_id, bank, now=now,
                                          first=True)

    try:
        # the same order again is found by the unique (merchant, order id) it breaks, not
        # by a read before every insert
        call = await ledger.transact(engine, record)
    except IntegrityError:
        # the same order again, or a concurrent request for it that won
        found = await _existing(engine, request, units)
        if found is None:
            raise
        return found
    log.info("intent.created", intent_id=intent_id, merchant_id=request.merchant_id,
             order_id=request.order_id, bank=request.bank, amount_minor=units)
    order = PaymentOrder(attempt_id=attempt_id, amount=request.amount,
                         description=request.description or f"Order {request.order_id}",
                         return_url=request.return_url, notify_url=banks.notify_url(request.bank),
                         created_at=now, expires_at=now + request.expires_in)
    return await _send_attempt(engine, banks, intent_id, attempt_id, order, request.bank, call)


_INSERT_INTENT = payment_intents.insert().from_select(
    ["id", "merchant_id", "order_id", "supplier_id", "amount_minor", "currency", "bank",
     "status", "description", "current_attempt_id", "created_at", "updated_at", "expires_at"],
    sa.select(*[sa.bindparam(name, type_=payment_intents.c[name].type) for name in (
        "id", "merchant_id", "order_id", "supplier_id", "amount_minor", "currency", "bank",
        "status", "description", "current_attempt_id", "created_at", "updated_at",
        "expires_at")]).where(supplier_terms.c.supplier_id == sa.bindparam("supplier_id")))

_INSERT_ATTEMPT = payment_attempts.insert()

#: created (or failed, for a retry) -> pending, answered with the intent's row
_PENDING_INTENT = (payment_intents.update()
                   .where(payment_intents.c.id == sa.bindparam("intent_id"),
                          payment_intents.c.status.in_(sa.bindparam("from_states",
                                                                    expanding=True)))
                   .values(status=IS.PENDING.value,
                           updated_at=sa.bindparam("now",
                                                   type_=payment_intents.c.updated_at.type))
                   .returning(*payment_intents.c))


async def _insert_attempt(conn: AsyncConnection, attempt_id: str, intent_id: str,
                          bank: BankGateway, units: int, currency: str, now: dt.datetime) -> None:
    await conn.execute(_INSERT_ATTEMPT, {
        "id": attempt_id, "intent_id": intent_id, "bank": bank.code,
        "bank_merchant_id": bank.merchant_id, "status": A.CREATED.value,
        "amount_minor": units, "currency": currency, "created_at": now, "updated_at": now})


def _create(order: PaymentOrder) -> Callable[[BankGateway], Awaitable[PaymentInstruction]]:
    return lambda bank: bank.create_payment(order)


async def _send_attempt(engine: AsyncEngine, banks: BankDirectory, intent_id: str,
                        attempt_id: str, order: PaymentOrder, attempt_bank: str,
                        call: BankCall) -> Checkout:
    """Send the attempt to its bank; `call` (recorded and committed before this) gives the
    transaction time the bank is told."""
    order = dataclasses.replace(order, created_at=call.placed_at)
    try:
        instruction = await banks.call(attempt_bank, _create(order), moves_money=True)
    except (BankUnavailable, BankRejected) as exc:
        # nothing can have been debited: the customer never got the way to the bank
        reason = f"{type(exc).__name__}: {exc}"
        return await ledger.transact(engine, lambda conn: _failed(conn, intent_id, attempt_id,
                                                                  reason))
    except OutcomeUnknown as exc:
        reason = f"OutcomeUnknown: {exc}"
        log.warning("attempt.outcome_unknown", attempt_id=attempt_id, bank=attempt_bank)
        return await ledger.transact(engine, lambda conn: _unknown(conn, intent_id, attempt_id,
                                                                   reason))

    async def sent(conn: AsyncConnection) -> Checkout:
        now = utcnow()
        # each UPDATE answers with the row it left (RETURNING): what the caller is
        # answered is what commits, without reading it again
        attempt = attempt_from_row(await transition(
            conn, attempt_id, A.CREATED, A.PENDING, now=now, returning=True,
            instruction=_instruction_json(instruction),
            bank_payment_id=instruction.bank_payment_id))
        # a new intent is `created`; a retried one `failed` (its claim kept it so)
        row = (await conn.execute(_PENDING_INTENT, {
            "intent_id": intent_id, "now": now,
            "from_states": [IS.CREATED.value, IS.FAILED.value]})).first()
        if row is not None:
            intent = intent_from_row(row)
        else:  # anything else: the checked move (raises if it may not move)
            current = await load_intent(conn, intent_id)
            intent = intent_from_row(await transition(conn, intent_id, current.status,
                                                      IS.PENDING, now=now, returning=True))
        # the customer has until expiry; then the bank is asked what became of it
        await inquiries.schedule_new(conn, Subject.ATTEMPT, attempt_id, attempt_bank,
                                     intent.expires_at + INQUIRY_GRACE, now)
        return Checkout(intent, attempt, attempt.payment_instruction)

    return await ledger.transact(engine, sent)


async def _failed(conn: AsyncConnection, intent_id: str, attempt_id: str,
                  reason: str) -> Checkout:
    await settlement.fail_attempt(conn, attempt_id, reason)
    log.warning("attempt.not_sent", attempt_id=attempt_id, error=reason)
    return await _read_checkout(conn, intent_id, attempt_id)


async def _unknown(conn: AsyncConnection, intent_id: str, attempt_id: str,
                   reason: str) -> Checkout:
    await settlement.mark_attempt_unknown(conn, attempt_id, reason)
    return await _read_checkout(conn, intent_id, attempt_id)


async def _read_checkout(conn: AsyncConnection, intent_id: str, attempt_id: str) -> Checkout:
    # read in the transaction that made it: what the caller is answered is what committed
    intent = await load_intent(conn, intent_id)
    attempt = await load_attempt(conn, attempt_id)
    return Checkout(intent, attempt, attempt.payment_instruction)


def _instruction_json(instruction: PaymentInstruction) -> dict[str, object]:
    data = asdict(instruction)
    data["fields"] = dict(instruction.fields)
    return data


async def retry_intent(engine: AsyncEngine, banks: BankDirectory, intent_id: str, bank: str, *,
                       merchant_id: str | None = None,
                       return_url: str = "http://127.0.0.1/checkout/return") -> Checkout:
    """Try a failed intent again at `bank` (the customer chose another bank). Only a failed
    intent (nothing was debited) may be retried; never an unknown one."""
    gateway = banks.get(bank)
    now = utcnow()
    attempt_id = new_id("at")

    async def claim(conn: AsyncConnection) -> tuple[PaymentIntent, BankCall]:
        intent = await get_intent(conn, intent_id, merchant_id=merchant_id)
        if intent.status is not IS.FAILED:
            raise IllegalTransition("intent", intent_id, intent.status.value, IS.PENDING.value,
                                    "only a failed intent may be retried at another bank")
        if intent.expires_at <= now:
            raise IllegalTransition("intent", intent_id, intent.status.value, IS.PENDING.value,
                                    "the intent has expired")
        check_amount(banks, bank, intent.amount)
        await postings.ensure_payment_accounts(conn, bank, intent.supplier_id, intent.currency)
        await _insert_attempt(conn, attempt_id, intent_id, gateway, intent.amount_minor,
                              intent.currency, now)
        # compare-and-set on the current attempt: of two racing retries, one wins
        done = await conn.execute(payment_intents.update().where(
            payment_intents.c.id == intent_id, payment_intents.c.status == IS.FAILED.value,
            payment_intents.c.current_attempt_id == intent.current_attempt_id,
        ).values(current_attempt_id=attempt_id, bank=bank, updated_at=now))
        if done.rowcount != 1:
            raise ConcurrentTransition("intent", intent_id, IS.FAILED.value, IS.PENDING.value)
        # committed with the claim, before the bank hears of it
        return intent, await calls.record_call_in(conn, Subject.ATTEMPT, attempt_id, gateway,
                                                  now=now)

    intent, call = await ledger.transact(engine, claim)
    order = PaymentOrder(attempt_id=attempt_id, amount=intent.amount,
                         description=intent.description or f"Order {intent.order_id}",
                         return_url=return_url, notify_url=banks.notify_url(bank),
                         created_at=now, expires_at=intent.expires_at)
    return await _send_attempt(engine, banks, intent_id, attempt_id, order, bank, call)


async def get_intent(conn: AsyncConnection, intent_id: str, *,
                     merchant_id: str | None = None) -> PaymentIntent:
    """The intent; with `merchant_id`, another merchant's intent is `IntentNotFound`."""
    intent = await find_intent(conn, intent_id)
    if intent is None or (merchant_id is not None and intent.merchant_id != merchant_id):
        raise IntentNotFound(intent_id)
    return intent


_CURRENT = payment_attempts.alias("current_attempt")
_GET_CHECKOUT = (
    sa.select(payment_intents, *[c.label(f"attempt_{c.name}") for c in _CURRENT.c])
    .select_from(payment_intents.outerjoin(
        _CURRENT, _CURRENT.c.id == payment_intents.c.current_attempt_id))
    .where(payment_intents.c.id == sa.bindparam("intent_id")))


async def get_checkout(conn: AsyncConnection, intent_id: str, *,
                       merchant_id: str | None = None) -> Checkout:
    """The intent with its current attempt and the instruction for the checkout page, read
    in ONE statement (one snapshot, one round trip: a caller may run it in autocommit)."""
    row = (await conn.execute(_GET_CHECKOUT, {"intent_id": intent_id})).first()
    if row is None or (merchant_id is not None and row.merchant_id != merchant_id):
        raise IntentNotFound(intent_id)
    intent = intent_from_row(row)
    assert intent.current_attempt_id is not None
    if row.attempt_id is None:
        raise NotFound(f"no payment attempt {intent.current_attempt_id!r}")
    fields = row._mapping
    attempt = attempt_from_row(SimpleNamespace(
        **{c.name: fields[f"attempt_{c.name}"] for c in _CURRENT.c}))
    return Checkout(intent, attempt, attempt.payment_instruction)


async def list_attempts(conn: AsyncConnection, intent_id: str, *,
                        merchant_id: str | None = None) -> list[Attempt]:
    await get_intent(conn, intent_id, merchant_id=merchant_id)
    return await settlement.attempts_of(conn, intent_id)


async def list_intents(conn: AsyncConnection, merchant_id: str, *,
                       status: IntentState | None = None, order_id: str | None = None,
                       limit: int = 50, offset: int = 0) -> list[PaymentIntent]:
    """A merchant's intents, newest first."""
    query = (sa.select(payment_intents).where(payment_intents.c.merchant_id == merchant_id)
             .order_by(payment_intents.c.created_at.desc(), payment_intents.c.id.desc())
             .limit(limit).offset(offset))
    if status is not None:
        query = query.where(payment_intents.c.status == status.value)
    if order_id is not None:
        query = query.where(payment_intents.c.order_id == order_id)
    return [intent_from_row(r) for r in await conn.execute(query)]


async def cancel_intent(conn: AsyncConnection, intent_id: str, *,
                        merchant_id: str | None = None) -> PaymentIntent:
    """Cancel an intent no bank can be taking money for (created, or failed). A pending
    one cannot be canceled: the customer may be paying right now; it expires instead."""
    intent = await get_intent(conn, intent_id, merchant_id=merchant_id)
    if intent.status is IS.CANCELED:
        return intent
    await transition(conn, intent_id, intent.status, IS.CANCELED)
    if intent.current_attempt_id:
        attempt = await find_attempt(conn, intent.current_attempt_id)
        if attempt is not None and attempt.status is A.CREATED:
            await transition(conn, attempt.id, A.CREATED, A.FAILED, failure_reason="canceled")
    log.info("intent.canceled", intent_id=intent_id)
    return await load_intent(conn, intent_id)


async def expire_intents(conn: AsyncConnection, now: dt.datetime | None = None,
                         limit: int = 1000) -> list[str]:
    """Expire unpaid intents past their expiry that no bank can be taking money for
    (created or failed). Pending ones are the janitor's: it asks the bank first."""
    now = now or utcnow()
    # a created intent may have its attempt on the way to the bank right now: past its
    # expiry in real time only (a look-ahead `now`, a catch-up pass, is no time it has had)
    real = min(now, utcnow())
    rows = await conn.execute(sa.select(payment_intents.c.id, payment_intents.c.status).where(
        sa.or_(sa.and_(payment_intents.c.status == IS.CREATED.value,
                       payment_intents.c.expires_at <= real),
               sa.and_(payment_intents.c.status == IS.FAILED.value,
                       payment_intents.c.expires_at <= now))).limit(limit))
    expired = []
    for row in rows.all():
        try:
            await transition(conn, row.id, IntentState(row.status), IS.EXPIRED, now=now)
        except ConcurrentTransition:
            continue
        expired.append(row.id)
    if expired:
        log.info("intents.expired", count=len(expired))
    return expired
