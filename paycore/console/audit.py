"""The console's audit trail: who did what, when, to what, why, and what came of it.
Rows are only ever inserted (a trigger refuses UPDATE and DELETE on both databases)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from paycore.schema import console_audit


async def record(conn: AsyncConnection, *, actor: str, role: str, action: str, subject: str,
                 reason: str, outcome: str = "done",
                 details: Mapping[str, Any] | None = None) -> None:
    """One row, in the caller's transaction (a decision and its record commit together)."""
    await conn.execute(console_audit.insert().values(
        at=dt.datetime.now(dt.UTC), actor=actor, role=role, action=action,
        subject=subject[:160], reason=reason, outcome=outcome, details=dict(details or {})))


async def record_refusal(engine: AsyncEngine, *, actor: str, role: str, action: str,
                         subject: str, reason: str, why: str) -> None:
    """A refused decision is recorded too, in a transaction of its own (the decision's
    own transaction rolled back)."""
    async with engine.begin() as conn:
        await record(conn, actor=actor, role=role, action=action, subject=subject,
                     reason=reason, outcome="refused", details={"refused": why})


async def trail(conn: AsyncConnection, *, subject: str | None = None, limit: int = 50,
                before_id: int | None = None) -> list[dict[str, Any]]:
    """Newest first, a page at a time (keyset on id)."""
    query = sa.select(console_audit).order_by(console_audit.c.id.desc()).limit(limit)
    if subject is not None:
        query = query.where(console_audit.c.subject == subject)
    if before_id is not None:
        query = query.where(console_audit.c.id < before_id)
    return [dict(r._mapping) for r in await conn.execute(query)]
