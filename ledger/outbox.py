"""The outbox: events that others (merchants, other systems) care about, written in the
same transaction as the state change they announce, so a change and its event commit
together or not at all.

The ledger keeps the table because it is the one package every domain may use; it knows
nothing of what the events mean. A domain calls `record_event(conn, ...)` with its own
topic (`payment.captured`, `loan.disbursed`, ...), the object it is about and the party it
is for (`audience`: a merchant's id, or `INTERNAL` for the operator's own systems).

`seq` is given after commit, by `sequence_events` (paycore's dispatcher, and the events
API before it reads): a number drawn inside the writer's transaction would be taken in one
order and committed in another, and a reader paging with `after=` could skip an event
that committed late. Sequenced in commit-visible order, a cursor never misses one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.ids import new_entry_id
from ledger.schema import Id, JSONDoc, UTCDateTime, metadata

__all__ = ["INTERNAL", "INTERNAL_AUDIENCES", "OutboxEvent", "outbox_events", "record_event",
           "sequence_events"]

#: the audience of events meant for the operator's own systems, not a merchant: `~` is no
#: character a merchant id may hold, so no merchant's key or endpoint can ever be this one
INTERNAL = "~internal"
#: every audience that is the operator's: INTERNAL, and "internal", what it was before
#: (rows written then keep it; readers treat both alike and never hand them to a merchant)
INTERNAL_AUDIENCES = frozenset({INTERNAL, "internal"})

outbox_events = sa.Table(
    "outbox_events",
    metadata,
    #: evt_<UUIDv7 hex>: time-ordered, unguessable; merchants dedupe deliveries by it
    sa.Column("id", sa.String(40), primary_key=True),
    #: position in the stream, given after commit (see the module's docstring)
    sa.Column("seq", Id, nullable=True, unique=True),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(32), nullable=False),
    sa.Column("object_id", sa.String(120), nullable=False),
    sa.Column("audience", sa.String(120), nullable=False),
    sa.Column("payload", JSONDoc, nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Index("ix_outbox_events_audience_seq", "audience", "seq"),
    sa.Index("ix_outbox_events_object", "object_type", "object_id"),
)


@dataclass(frozen=True)
class OutboxEvent:
    id: str
    seq: int | None
    topic: str
    object_type: str
    object_id: str
    audience: str
    payload: dict[str, Any]
    occurred_at: dt.datetime


def event_from_row(r: Any) -> OutboxEvent:
    return OutboxEvent(r.id, r.seq, r.topic, r.object_type, r.object_id, r.audience,
                       dict(r.payload), r.occurred_at)


_INSERT = outbox_events.insert()


async def record_event(conn: AsyncConnection, *, topic: str, object_type: str, object_id: str,
                       audience: str, payload: Mapping[str, Any],
                       occurred_at: dt.datetime | None = None) -> str:
    """Write one event in the caller's transaction; returns its id."""
    event_id = "evt_" + new_entry_id().hex
    await conn.execute(_INSERT, {
        "id": event_id, "seq": None, "topic": topic, "object_type": object_type,
        "object_id": object_id, "audience": audience or INTERNAL, "payload": dict(payload),
        "occurred_at": occurred_at or dt.datetime.now(dt.UTC)})
    return event_id


async def sequence_events(conn: AsyncConnection, *, limit: int = 5000) -> list[OutboxEvent]:
    """Number the committed events that have no `seq` yet, oldest first, in the caller's
    transaction; returns them. One sequencer at a time: on PostgreSQL a transaction-scoped
    advisory lock (others wait, then find nothing left to number); SQLite writers are
    serialized anyway."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(7423101)"))
    rows = (await conn.execute(
        sa.select(outbox_events).where(outbox_events.c.seq.is_(None))
        .order_by(outbox_events.c.occurred_at, outbox_events.c.id).limit(limit))).all()
    if not rows:
        return []
    last = int(await conn.scalar(sa.select(sa.func.coalesce(sa.func.max(outbox_events.c.seq), 0)))
               or 0)
    numbered = [(r.id, last + i) for i, r in enumerate(rows, start=1)]
    await conn.execute(
        outbox_events.update().where(outbox_events.c.id == sa.bindparam("b_id"))
        .values(seq=sa.bindparam("b_seq")),
        [{"b_id": event_id, "b_seq": seq} for event_id, seq in numbered])
    return [OutboxEvent(r.id, seq, r.topic, r.object_type, r.object_id, r.audience,
                        dict(r.payload), r.occurred_at) for r, (_, seq) in zip(rows, numbered, strict=True)]
