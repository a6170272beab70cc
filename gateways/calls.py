"""Bank call records: every request that may move money (a payment's creation, a refund, a
payout) is recorded — and committed — before it is sent, with everything a later inquiry
needs to name it to the bank: our id, the bank's order id and the transaction time exactly
as sent, the attempt number, and later the bank's own id for it.

An answer lost to a time-out, or a process that stops mid-call, leaves the record behind,
so the janitor (any process, any machine) asks about exactly what was sent; nothing that
an inquiry needs lives only in an adapter's memory.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateways.bank import BankCall, BankGateway, whole_seconds
from gateways.inquiries import Subject
from gateways.schema import bank_calls
from gateways.store import utcnow

__all__ = ["latest_call", "note_bank_ref", "record_call_in"]

_INSERT = bank_calls.insert()


async def record_call_in(conn: AsyncConnection, subject: Subject, subject_id: str,
                         bank: BankGateway, *, now: dt.datetime | None = None,
                         first: bool = False) -> BankCall:
    """Record the next call about `subject_id` to `bank` and return it (the caller sends
    its `placed_at` as the transaction time), in the caller's transaction — the one that
    moves the subject into flight (creates the attempt or refund, submits the payout) —
    committed before anything is sent. Never in a transaction of its own: between two
    commits the subject is in flight with no call, and a janitor pass there takes it for
    never sent, hears "not found" and fails it just before it is sent. `first`: the
    subject was made in this very transaction, so this is its first call (no read for the
    last one; were it not the first, the unique (subject, id, attempt_no) would refuse it)."""
    placed_at = whole_seconds(now or utcnow())
    bank_order_id = bank.bank_order_id(subject_id)
    last = None if first else (await conn.execute(
        sa.select(sa.func.max(bank_calls.c.attempt_no)).where(
            bank_calls.c.subject == subject.value,
            bank_calls.c.subject_id == subject_id))).scalar()
    attempt_no = (last or 0) + 1
    await conn.execute(_INSERT, {
        "subject": subject.value, "subject_id": subject_id, "attempt_no": attempt_no,
        "bank": bank.code, "bank_order_id": bank_order_id, "placed_at": placed_at,
        "created_at": placed_at, "updated_at": placed_at})
    return BankCall(reference=subject_id, placed_at=placed_at,
                    bank_order_id=bank_order_id, attempt_no=attempt_no)


async def latest_call(conn: AsyncConnection, subject: Subject, subject_id: str,
                      bank: str) -> BankCall | None:
    """The last call about `subject_id` recorded for `bank` (what an inquiry asks about):
    an earlier call to the same bank provably never arrived, or it would not have been
    sent again."""
    row = (await conn.execute(sa.select(bank_calls).where(
        bank_calls.c.subject == subject.value, bank_calls.c.subject_id == subject_id,
        bank_calls.c.bank == bank).order_by(bank_calls.c.attempt_no.desc()).limit(1))).first()
    if row is None:
        return None
    return BankCall(reference=row.subject_id, placed_at=row.placed_at,
                    bank_order_id=row.bank_order_id, attempt_no=row.attempt_no,
                    bank_ref=row.bank_ref)


async def note_bank_ref(conn: AsyncConnection, subject: Subject, subject_id: str, bank: str,
                        bank_ref: str | None, now: dt.datetime | None = None) -> None:
    """Keep the bank's own id for the latest call (UnionPay's queryId), once known."""
    if not bank_ref:
        return
    latest = sa.select(sa.func.max(bank_calls.c.attempt_no)).where(
        bank_calls.c.subject == subject.value, bank_calls.c.subject_id == subject_id,
        bank_calls.c.bank == bank).scalar_subquery()
    await conn.execute(bank_calls.update().where(
        bank_calls.c.subject == subject.value, bank_calls.c.subject_id == subject_id,
        bank_calls.c.attempt_no == latest, bank_calls.c.bank_ref.is_(None),
    ).values(bank_ref=bank_ref, updated_at=now or utcnow()))
