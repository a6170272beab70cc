"""Two-phase transfers: reserve now (pending), then post all or part, void, or expire."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import chain
from ledger.books import LockedAccounts
from ledger.entries import (
    BIGINT_MAX,
    Draft,
    Leg,
    legs_from_postings,
    load_entries,
    utcnow,
    write_drafts,
)
from ledger.errors import (
    BalanceOutOfRange,
    HoldAlreadyResolved,
    HoldAmountExceeded,
    HoldExpired,
    HoldNotFound,
    IdempotencyConflict,
    InvalidAmount,
    InvalidRequest,
)
from ledger.money import to_minor
from ledger.schema import accounts, hold_legs, holds
from ledger.types import Hold, HoldLeg, HoldRequest, HoldStatus, JournalEntry, Posting

log = structlog.get_logger("ledger")


async def hold(conn: AsyncConnection, request: HoldRequest) -> Hold:
    """Reserve the request's postings as pending amounts; balance limits count them."""
    key = request.idempotency_key
    if not key:
        raise InvalidRequest("every hold needs an idempotency key")
    if request.expires_at.tzinfo is None:
        raise InvalidRequest(f"hold {key!r}: expires_at must be timezone-aware")
    legs = legs_from_postings(key, request.postings)
    books = await LockedAccounts.lock(conn, (leg.account for leg in legs), lane_zero=True)
    request_hash = chain.request_hash(
        kind=request.kind, description=request.description, effective_date=None,
        external_ref=request.external_ref, metadata=request.metadata, reverses_entry_id=None,
        legs=[(books[leg.account].id, leg.amount, leg.currency) for leg in legs],
        extra={"expires_at": request.expires_at.astimezone(dt.UTC).isoformat()},
    )
    prior = (await conn.execute(
        sa.select(holds.c.id, holds.c.request_hash).where(holds.c.idempotency_key == key)
    )).first()
    if prior is not None:
        if prior.request_hash != request_hash:
            raise IdempotencyConflict(key)
        [found] = await load_holds(conn, [prior.id], replayed=True)
        return found

    now = utcnow()
    if request.expires_at <= now:
        raise InvalidRequest(f"hold {key!r} would expire at {request.expires_at}, in the past")
    for leg in legs:
        books[leg.account].require_postable(leg.currency)
    for leg in legs:
        state = books[leg.account]
        # each amount is in range; the account's pending sums must stay so (the limits'
        # arithmetic is exact in Python, the balance row keeps 64 bits)
        if (state.pending_debits > BIGINT_MAX - leg.amount if leg.amount > 0
                else state.pending_credits > BIGINT_MAX + leg.amount):
            raise BalanceOutOfRange(state.code, "pending debits" if leg.amount > 0
                                    else "pending credits", key)
        state.reserve(leg.amount)
    books.check_limits((books[leg.account].id for leg in legs), key)

    hold_id = uuid.uuid4()
    await conn.execute(holds.insert().values(
        id=hold_id, idempotency_key=key, request_hash=request_hash, kind=request.kind,
        description=request.description, external_ref=request.external_ref,
        metadata=dict(request.metadata), status=HoldStatus.PENDING.value, created_at=now,
        expires_at=request.expires_at,
    ))
    await conn.execute(hold_legs.insert(), [
        {"hold_id": hold_id, "leg_no": n, "account_id": books[leg.account].id,
         "amount": leg.amount, "currency": leg.currency}
        for n, leg in enumerate(legs)
    ])
    await books.save(conn)
    log.debug("hold.created", hold_id=str(hold_id), idempotency_key=key)
    [created] = await load_holds(conn, [hold_id])
    return created


async def post_hold(
    conn: AsyncConnection,
    hold_id: uuid.UUID,
    *,
    amount: Money | None = None,
    postings: Sequence[Posting] | None = None,
    idempotency_key: str | None = None,
    effective_date: dt.date | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> JournalEntry:
    """Post a pending hold in full, or in part (`amount` for a two-leg hold, `postings` for
    any hold). The whole reservation is released either way."""
    current = await _lock_hold(conn, hold_id)
    key = idempotency_key or f"hold:{hold_id}:post"
    legs = _legs_to_post(current, amount, postings)
    if current.status is HoldStatus.POSTED and current.posted_entry_id is not None:
        [entry] = await load_entries(conn, [current.posted_entry_id], replayed=True)
        if entry.idempotency_key == key:
            if [(p.account_id, p.amount) for p in entry.postings] != [
                    (leg.account, leg.amount) for leg in legs]:
                raise IdempotencyConflict(key)
            return entry
    _require_pending(current)

    books = await LockedAccounts.lock(conn, (leg.account_id for leg in current.legs),
                                     lane_zero=True)
    for leg in current.legs:
        books[leg.account_id].reserve(leg.amount, -1)
    draft = Draft(
        idempotency_key=key, kind=current.kind, legs=legs, effective_date=effective_date,
        description=description if description is not None else current.description,
        external_ref=current.external_ref,
        metadata={**current.metadata, **(metadata or {})},
        extra={"hold_id": str(hold_id)},
    )
    [entry] = await write_drafts(conn, [draft], books)
    await _resolve(conn, hold_id, HoldStatus.POSTED, entry.id)
    log.debug("hold.posted", hold_id=str(hold_id), entry_id=str(entry.id), idempotency_key=key)
    return entry


async def void_hold(conn: AsyncConnection, hold_id: uuid.UUID) -> Hold:
    """Release a pending hold. Voiding a voided hold returns it unchanged."""
    current = await _lock_hold(conn, hold_id)
    if current.status is HoldStatus.VOIDED:
        return current
    _require_pending(current)
    await _release(conn, [current], HoldStatus.VOIDED)
    [voided] = await load_holds(conn, [hold_id])
    return voided


async def expire_holds(conn: AsyncConnection, now: dt.datetime | None = None,
                       limit: int = 1000) -> list[uuid.UUID]:
    """Release up to `limit` pending holds whose deadline has passed; returns their ids."""
    now = now or utcnow()
    ids = list((await conn.execute(
        sa.select(holds.c.id)
        .where(holds.c.status == HoldStatus.PENDING.value, holds.c.expires_at <= now)
        .order_by(holds.c.expires_at).limit(limit)
        .with_for_update(skip_locked=True)
    )).scalars())
    if ids:
        await _release(conn, await load_holds(conn, ids), HoldStatus.EXPIRED)
        log.info("holds.expired", count=len(ids))
    return ids


def _require_pending(current: Hold) -> None:
    if current.status is not HoldStatus.PENDING:
        raise HoldAlreadyResolved(current.id, current.status.value)
    if current.expires_at <= utcnow():
        raise HoldExpired(current.id, current.expires_at)


def _legs_to_post(current: Hold, amount: Money | None,
                  postings: Sequence[Posting] | None) -> list[Leg]:
    full = [Leg(leg.account_id, leg.amount, leg.currency) for leg in current.legs]
    if amount is not None and postings is not None:
        raise InvalidRequest("give either amount or postings to post a hold, not both")
    if amount is None and postings is None:
        return full
    if amount is not None:
        if len(full) != 2:
            raise InvalidRequest(
                f"hold {current.id} has {len(full)} legs; post part of it with postings=[...]"
            )
        units = to_minor(amount)
        if units <= 0:
            raise InvalidAmount(f"amount to post must be positive, got {amount}")
        debit, credit = sorted(full, key=lambda leg: -leg.amount)
        if amount.currency.code != debit.currency:
            raise InvalidRequest(f"hold {current.id} is in {debit.currency}, not {amount.currency}")
        if units > debit.amount:
            raise HoldAmountExceeded(current.id, f"{amount} asked, less was reserved")
        return [Leg(debit.account, units, debit.currency), Leg(credit.account, -units, credit.currency)]
    assert postings is not None
    ids_by_code = {leg.account_code: leg.account_id for leg in current.legs}
    reserved: dict[tuple[int, bool], int] = defaultdict(int)
    for held in current.legs:
        reserved[(held.account_id, held.amount > 0)] += abs(held.amount)
    legs: list[Leg] = []
    asked: dict[tuple[int, bool], int] = defaultdict(int)
    for leg in legs_from_postings(f"hold:{current.id}", postings):
        account_id = leg.account if isinstance(leg.account, int) else ids_by_code.get(leg.account)
        if account_id is None or (account_id, leg.amount > 0) not in reserved:
            raise HoldAmountExceeded(current.id, f"{leg.account!r} has no such leg in the hold")
        asked[(account_id, leg.amount > 0)] += abs(leg.amount)
        legs.append(Leg(account_id, leg.amount, leg.currency))
    for (account_id, is_debit), units in asked.items():
        if units > reserved[(account_id, is_debit)]:
            side = "debits" if is_debit else "credits"
            raise HoldAmountExceeded(
                current.id, f"{side} of {units} minor units to account {account_id} asked, "
                f"{reserved[(account_id, is_debit)]} reserved")
    return legs


async def _lock_hold(conn: AsyncConnection, hold_id: uuid.UUID) -> Hold:
    locked = (await conn.execute(
        sa.select(holds.c.id).where(holds.c.id == hold_id).with_for_update()
    )).first()
    if locked is None:
        raise HoldNotFound(hold_id)
    [found] = await load_holds(conn, [hold_id])
    return found


async def _release(conn: AsyncConnection, resolved: Sequence[Hold], status: HoldStatus) -> None:
    books = await LockedAccounts.lock(conn, (leg.account_id for h in resolved for leg in h.legs),
                                     lane_zero=True)
    for h in resolved:
        for leg in h.legs:
            books[leg.account_id].reserve(leg.amount, -1)
    await books.save(conn)
    for h in resolved:
        await _resolve(conn, h.id, status, None)
        log.debug(f"hold.{status.value}", hold_id=str(h.id), idempotency_key=h.idempotency_key)


async def _resolve(conn: AsyncConnection, hold_id: uuid.UUID, status: HoldStatus,
                   entry_id: uuid.UUID | None) -> None:
    done = await conn.execute(
        holds.update()
        .where(holds.c.id == hold_id, holds.c.status == HoldStatus.PENDING.value)
        .values(status=status.value, resolved_at=utcnow(), posted_entry_id=entry_id)
    )
    if done.rowcount != 1:
        raise HoldAlreadyResolved(hold_id, "resolved by a concurrent writer")


async def load_holds(conn: AsyncConnection, ids: Sequence[uuid.UUID], *,
                     replayed: bool = False) -> list[Hold]:
    if not ids:
        return []
    rows = {r.id: r for r in await conn.execute(sa.select(holds).where(holds.c.id.in_(ids)))}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise HoldNotFound(missing[0])
    legs: dict[uuid.UUID, list[HoldLeg]] = defaultdict(list)
    for leg in await conn.execute(
        sa.select(hold_legs.c.hold_id, hold_legs.c.account_id, accounts.c.code,
                  hold_legs.c.amount, hold_legs.c.currency)
        .join(accounts, accounts.c.id == hold_legs.c.account_id)
        .where(hold_legs.c.hold_id.in_(ids)).order_by(hold_legs.c.hold_id, hold_legs.c.leg_no)
    ):
        legs[leg.hold_id].append(HoldLeg(leg.account_id, leg.code, leg.amount, leg.currency))
    return [
        Hold(id=r.id, idempotency_key=r.idempotency_key, kind=r.kind, description=r.description,
             external_ref=r.external_ref, metadata=r.metadata, status=HoldStatus(r.status),
             created_at=r.created_at, expires_at=r.expires_at, resolved_at=r.resolved_at,
             posted_entry_id=r.posted_entry_id, legs=tuple(legs[r.id]), replayed=replayed)
        for r in (rows[i] for i in ids)
    ]
