"""The payout review queue: what a person must look at about a payout, with the bank's
own words — a return booked (check the beneficiary's details before paying again), a
return that could not be booked (the payout had not succeeded here, or another amount),
a notification that did not match the payout, or one that contradicted its outcome.

Written in the caller's transaction, beside the state change (if any) it explains. A
payout still in flight (submitted, unknown) also moves to `review`, so that nothing
automatic settles it before the person has; a settled one keeps its state and the item
says why it needs a look. Items are resolved with a note and a name, never deleted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from gateways import inquiries
from gateways.errors import InvalidPaymentRequest, NotFound
from gateways.inquiries import Subject
from gateways.schema import payout_reviews
from gateways.states import PayoutState
from gateways.store import transition, utcnow
from gateways.types import Payout

__all__ = [
    "PayoutReview",
    "ReviewKind",
    "list_payout_reviews",
    "open_payout_review",
    "resolve_payout_review",
]

log = structlog.get_logger("gateways.payout_reviews")
_IN_FLIGHT = (PayoutState.SUBMITTED, PayoutState.UNKNOWN)


class ReviewKind(StrEnum):
    RETURNED = "returned"
    RETURN_NOT_BOOKED = "return_not_booked"
    MISMATCH = "mismatch"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class PayoutReview:
    id: int
    payout_id: str
    kind: str
    status: str
    detail: str
    bank: str | None
    bank_txn_id: str | None
    amount_minor: int | None
    currency: str | None
    entry_id: uuid.UUID | None
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by: str | None
    resolution: str | None


def _from_row(r: Any) -> PayoutReview:
    return PayoutReview(r.id, r.payout_id, r.kind, r.status, r.detail, r.bank, r.bank_txn_id,
                        r.amount_minor, r.currency, r.entry_id, r.created_at, r.resolved_at,
                        r.resolved_by, r.resolution)


async def open_payout_review(conn: AsyncConnection, payout: Payout, kind: ReviewKind,
                             detail: str, *, bank: str | None = None,
                             bank_txn_id: str | None = None, amount_minor: int | None = None,
                             currency: str | None = None, entry_id: uuid.UUID | None = None,
                             now: dt.datetime | None = None) -> None:
    """Queue an item for a person; a payout in flight goes to `review` with it."""
    now = now or utcnow()
    if payout.status in _IN_FLIGHT:
        await transition(conn, payout.id, payout.status, PayoutState.REVIEW, now=now,
                         failure_reason=detail[:2000])
        await inquiries.close(conn, Subject.PAYOUT, payout.id, now, status="review")
    await conn.execute(payout_reviews.insert().values(
        payout_id=payout.id, kind=kind.value, status="open", detail=detail[:4000],
        bank=bank or payout.bank, bank_txn_id=(bank_txn_id or None) and bank_txn_id[:128],
        amount_minor=amount_minor, currency=currency, entry_id=entry_id, created_at=now))
    log.warning("payout.review", payout_id=payout.id, kind=kind.value, detail=detail,
                bank=bank or payout.bank, bank_txn_id=bank_txn_id)


async def list_payout_reviews(conn: AsyncConnection, *, status: str | None = "open",
                              limit: int = 200) -> list[PayoutReview]:
    """Items oldest first; `status` None: open and resolved alike."""
    query = sa.select(payout_reviews).order_by(payout_reviews.c.created_at,
                                               payout_reviews.c.id).limit(limit)
    if status is not None:
        query = query.where(payout_reviews.c.status == status)
    return [_from_row(r) for r in await conn.execute(query)]


async def resolve_payout_review(conn: AsyncConnection, review_id: int, *, by: str,
                                note: str, now: dt.datetime | None = None) -> PayoutReview:
    """Close an item with who looked and what they decided (once)."""
    if not by.strip() or not note.strip():
        raise InvalidPaymentRequest("resolving a payout review needs who resolved it and a note")
    now = now or utcnow()
    done = await conn.execute(payout_reviews.update().where(
        payout_reviews.c.id == review_id, payout_reviews.c.status == "open").values(
        status="resolved", resolved_at=now, resolved_by=by[:120], resolution=note[:4000]))
    row = (await conn.execute(sa.select(payout_reviews).where(
        payout_reviews.c.id == review_id))).first()
    if row is None:
        raise NotFound(f"no payout review {review_id}")
    if done.rowcount != 1:
        raise InvalidPaymentRequest(f"payout review {review_id} is already resolved")
    log.info("payout.review_resolved", review_id=review_id, payout_id=row.payout_id, by=by)
    return _from_row(row)
