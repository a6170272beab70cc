"""Read-only views for operators: what waits for a person, the janitor's schedule, and
the notifications that changed nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateways.inquiries import Inquiry, list_open
from gateways.schema import notification_rejections, payment_intents, payouts
from gateways.states import IntentState, PayoutState
from gateways.store import intent_from_row, payout_from_row
from gateways.types import PaymentIntent, Payout

__all__ = ["RejectedNotification", "list_in_review", "list_inquiries", "list_rejections"]


@dataclass(frozen=True)
class RejectedNotification:
    id: int
    bank: str
    reason: str
    detail: str
    kind: str | None
    reference: str | None
    bank_txn_id: str | None
    #: header values of signatures, keys and tokens are redacted
    headers: Mapping[str, str]
    body_sha256: str
    body_size: int
    received_at: dt.datetime


async def list_in_review(conn: AsyncConnection) -> tuple[list[PaymentIntent], list[Payout]]:
    intents = await conn.execute(sa.select(payment_intents).where(
        payment_intents.c.status == IntentState.REVIEW.value)
        .order_by(payment_intents.c.updated_at))
    # payouts in review, and those paid whose success the bank qualified (UnionPay A6)
    held = await conn.execute(sa.select(payouts).where(sa.or_(
        payouts.c.status == PayoutState.REVIEW.value, payouts.c.review_reason.is_not(None)))
        .order_by(payouts.c.updated_at))
    return [intent_from_row(r) for r in intents], [payout_from_row(r) for r in held]


async def list_inquiries(conn: AsyncConnection) -> list[Inquiry]:
    """Open inquiries and those handed to review, soonest first."""
    return await list_open(conn)


async def list_rejections(conn: AsyncConnection, *, limit: int = 50,
                          reason: str | None = None) -> list[RejectedNotification]:
    """The newest rejected notifications first."""
    query = sa.select(notification_rejections).order_by(
        notification_rejections.c.id.desc()).limit(limit)
    if reason is not None:
        query = query.where(notification_rejections.c.reason == reason)
    return [RejectedNotification(r.id, r.bank, r.reason, r.detail, r.kind, r.reference,
                                 r.bank_txn_id, r.headers, r.body_sha256, r.body_size,
                                 r.received_at) for r in await conn.execute(query)]
