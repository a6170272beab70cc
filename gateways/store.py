"""Rows in and out, and the one way a status changes: compare-and-set in the caller's
connection (`UPDATE ... WHERE id = :id AND status = :expected`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from gateways import states
from gateways.bank import Beneficiary
from gateways.errors import (
    ConcurrentTransition,
    IntentNotFound,
    NotFound,
    PayoutNotFound,
    RefundNotFound,
)
from gateways.schema import payment_attempts, payment_intents, payouts, refunds
from gateways.states import AttemptState, IntentState, PayoutState, RefundState
from gateways.types import Attempt, PaymentIntent, Payout, Refund


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_TABLES: Mapping[type[StrEnum], sa.Table] = {
    IntentState: payment_intents, AttemptState: payment_attempts, RefundState: refunds,
    PayoutState: payouts,
}
_ENTITY = {IntentState: "intent", AttemptState: "attempt", RefundState: "refund",
           PayoutState: "payout"}


async def transition(conn: AsyncConnection, record_id: str, current: StrEnum, target: StrEnum,
                     *, why: str = "", now: dt.datetime | None = None, returning: bool = False,
                     **values: Any) -> Any:
    """Move one record from `current` to `target` (a legal move of its machine), setting
    `values` too (column values or SQL expressions), if and only if it is still `current`;
    else `ConcurrentTransition`. With `returning`, the record's row as the move left it
    (read by the UPDATE itself: no second statement); else None."""
    states.require(record_id, current, target, why)
    table = _TABLES[type(current)]
    topic = _TOPICS.get((type(current), target.value))
    values = {"status": target.value, "updated_at": now or utcnow(), **values}
    answer = topic is not None or returning
    if any(isinstance(v, sa.ClauseElement) for v in values.values()):
        update = (table.update()
                  .where(table.c.id == record_id, table.c.status == current.value)
                  .values(**values))
        params: dict[str, Any] = {}
        if answer:
            update = update.returning(*table.c)
    else:  # plain values: the statement built once per shape, the values bound
        update = _update_of(table, tuple(sorted(values)), answer)
        params = {f"v_{k}": v for k, v in values.items()}
        params |= {"b_id": record_id, "b_current": current.value}
    if not answer:
        done = await conn.execute(update, params)
        if done.rowcount != 1:
            raise ConcurrentTransition(_ENTITY[type(current)], record_id, current.value,
                                       target.value)
        return None
    row = (await conn.execute(update, params)).first()
    if row is None:
        raise ConcurrentTransition(_ENTITY[type(current)], record_id, current.value,
                                   target.value)
    if topic is not None:
        await _record_event(conn, topic, type(current), row)
    return row if returning else None


_UPDATES: dict[tuple[str, tuple[str, ...], bool], Any] = {}


def _update_of(table: sa.Table, columns: tuple[str, ...], returning: bool) -> Any:
    """`UPDATE table SET <columns> WHERE id = :b_id AND status = :b_current`, built once per
    (table, columns set, RETURNING or not): the shapes are the code's, a handful."""
    key = (table.name, columns, returning)
    found = _UPDATES.get(key)
    if found is None:
        found = (table.update()
                 .where(table.c.id == sa.bindparam("b_id"),
                        table.c.status == sa.bindparam("b_current"))
                 .values({c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in columns}))
        if returning:
            found = found.returning(*table.c)
        _UPDATES[key] = found
    return found


#: the moves merchants and other systems are told about: an event in the outbox, written
#: in the transaction of the move (ledger.record_event)
_TOPICS: Mapping[tuple[type[StrEnum], str], str] = {
    (IntentState, "succeeded"): "payment.captured",
    (IntentState, "captured"): "payment.captured",
    (IntentState, "failed"): "payment.failed",
    (IntentState, "canceled"): "payment.canceled",
    (IntentState, "expired"): "payment.expired",
    (RefundState, "succeeded"): "payment.refunded",
    (RefundState, "failed"): "refund.failed",
    (PayoutState, "succeeded"): "payout.paid",
    (PayoutState, "failed"): "payout.failed",
    (PayoutState, "returned"): "payout.returned",
}


def _money(units: int | None, currency: str) -> str | None:
    return None if units is None else str(ledger.from_minor(units, currency).amount)


async def _record_event(conn: AsyncConnection, topic: str, machine: type[StrEnum],
                        r: Any) -> None:
    """What the event says: the object as a merchant sees it (never account numbers)."""
    if machine is IntentState:
        audience = r.merchant_id
        payload = {"id": r.id, "merchant_id": r.merchant_id, "order_id": r.order_id,
                   "supplier_id": r.supplier_id, "status": r.status, "bank": r.bank,
                   "amount": _money(r.amount_minor, r.currency), "currency": r.currency,
                   "captured": _money(r.captured_minor, r.currency),
                   "refunded": _money(r.refunded_minor, r.currency)}
        object_type = "payment_intent"
    elif machine is RefundState:
        audience = (await conn.scalar(sa.select(payment_intents.c.merchant_id)
                                      .where(payment_intents.c.id == r.intent_id))) or ""
        payload = {"id": r.id, "payment_intent_id": r.intent_id, "status": r.status,
                   "bank": r.bank, "amount": _money(r.amount_minor, r.currency),
                   "currency": r.currency, "reason": r.reason}
        object_type = "refund"
    else:
        # a payout is the marketplace's; paycore tells the merchant that asked for it
        audience = ledger.INTERNAL
        payload = {"id": r.id, "beneficiary_ref": r.beneficiary_ref, "status": r.status,
                   "bank": r.bank, "amount": _money(r.amount_minor, r.currency),
                   "currency": r.currency, "purpose": r.purpose,
                   "failure_reason": r.failure_reason}
        object_type = "payout"
    await ledger.record_event(conn, topic=topic, object_type=object_type, object_id=r.id,
                              audience=audience or ledger.INTERNAL, payload=payload)


def intent_from_row(r: Any) -> PaymentIntent:
    return PaymentIntent(
        id=r.id, merchant_id=r.merchant_id, order_id=r.order_id, supplier_id=r.supplier_id,
        amount_minor=r.amount_minor, currency=r.currency, bank=r.bank,
        status=IntentState(r.status), description=r.description,
        current_attempt_id=r.current_attempt_id, captured_minor=r.captured_minor,
        commission_minor=r.commission_minor, refund_reserved_minor=r.refund_reserved_minor,
        refunded_minor=r.refunded_minor, refunded_commission_minor=r.refunded_commission_minor,
        review_reason=r.review_reason, created_at=r.created_at, updated_at=r.updated_at,
        expires_at=r.expires_at)


def attempt_from_row(r: Any) -> Attempt:
    return Attempt(
        id=r.id, intent_id=r.intent_id, bank=r.bank, bank_merchant_id=r.bank_merchant_id,
        status=AttemptState(r.status), amount_minor=r.amount_minor, currency=r.currency,
        bank_payment_id=r.bank_payment_id, bank_txn_id=r.bank_txn_id,
        instruction=r.instruction, failure_reason=r.failure_reason, created_at=r.created_at,
        updated_at=r.updated_at, settled_at=r.settled_at)


def refund_from_row(r: Any) -> Refund:
    return Refund(
        id=r.id, intent_id=r.intent_id, attempt_id=r.attempt_id, bank=r.bank,
        status=RefundState(r.status), amount_minor=r.amount_minor, currency=r.currency,
        reason=r.reason, commission_minor=r.commission_minor, hold_id=r.hold_id,
        bank_txn_id=r.bank_txn_id,
        failure_reason=r.failure_reason, created_at=r.created_at, updated_at=r.updated_at,
        settled_at=r.settled_at)


def payout_from_row(r: Any) -> Payout:
    return Payout(
        id=r.id, beneficiary_ref=r.beneficiary_ref,
        beneficiary=Beneficiary(name=r.beneficiary_name, account_number=r.beneficiary_account,
                                bank_name=r.beneficiary_bank_name),
        amount_minor=r.amount_minor, currency=r.currency, debit_account=r.debit_account,
        purpose=r.purpose, description=r.description, banks=tuple(r.banks), bank=r.bank,
        status=PayoutState(r.status), hold_id=r.hold_id, entry_id=r.entry_id,
        bank_txn_id=r.bank_txn_id, submit_rounds=r.submit_rounds,
        failure_reason=r.failure_reason, created_at=r.created_at, updated_at=r.updated_at,
        settled_at=r.settled_at, review_reason=r.review_reason)


#: the one-row reads, built once (with a bound id) rather than on every call
_BY_ID = {(table.name, lock): (sa.select(table).where(table.c.id == sa.bindparam("record_id"))
                               .with_for_update() if lock else
                               sa.select(table).where(table.c.id == sa.bindparam("record_id")))
          for table in (payment_intents, payment_attempts, refunds, payouts)
          for lock in (False, True)}


async def _one(conn: AsyncConnection, table: sa.Table, record_id: str, *,
               for_update: bool) -> Any:
    return (await conn.execute(_BY_ID[table.name, for_update], {"record_id": record_id})).first()


async def find_intent(conn: AsyncConnection, intent_id: str, *,
                      for_update: bool = False) -> PaymentIntent | None:
    row = await _one(conn, payment_intents, intent_id, for_update=for_update)
    return None if row is None else intent_from_row(row)


async def load_intent(conn: AsyncConnection, intent_id: str, *,
                      for_update: bool = False) -> PaymentIntent:
    found = await find_intent(conn, intent_id, for_update=for_update)
    if found is None:
        raise IntentNotFound(intent_id)
    return found


async def find_attempt(conn: AsyncConnection, attempt_id: str) -> Attempt | None:
    row = await _one(conn, payment_attempts, attempt_id, for_update=False)
    return None if row is None else attempt_from_row(row)


async def load_attempt(conn: AsyncConnection, attempt_id: str) -> Attempt:
    found = await find_attempt(conn, attempt_id)
    if found is None:
        raise NotFound(f"no payment attempt {attempt_id!r}")
    return found


async def find_refund(conn: AsyncConnection, refund_id: str, *,
                      for_update: bool = False) -> Refund | None:
    row = await _one(conn, refunds, refund_id, for_update=for_update)
    return None if row is None else refund_from_row(row)


async def load_refund(conn: AsyncConnection, refund_id: str, *,
                      for_update: bool = False) -> Refund:
    found = await find_refund(conn, refund_id, for_update=for_update)
    if found is None:
        raise RefundNotFound(refund_id)
    return found


async def find_payout(conn: AsyncConnection, payout_id: str, *,
                      for_update: bool = False) -> Payout | None:
    row = await _one(conn, payouts, payout_id, for_update=for_update)
    return None if row is None else payout_from_row(row)


async def load_payout(conn: AsyncConnection, payout_id: str, *,
                      for_update: bool = False) -> Payout:
    found = await find_payout(conn, payout_id, for_update=for_update)
    if found is None:
        raise PayoutNotFound(payout_id)
    return found
