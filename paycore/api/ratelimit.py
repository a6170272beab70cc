"""A fixed-window rate limit kept in the database, so that it holds across every worker
process of `paycore serve` (each would otherwise allow the full rate on its own).

    decision = await hit(engine, "notifications:203.0.113.7", limit=600, window_seconds=60)
    if not decision.allowed: answer 429 with Retry-After: decision.retry_after

One upsert per request counts it (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, on
PostgreSQL and SQLite alike); the first hit of a bucket's new window also deletes the
windows that have ended, so the table stays small.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.schema import api_rate_limits as limits

__all__ = ["RateDecision", "hit"]


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    hits: int
    limit: int
    #: seconds until the window ends (when a refused client may try again)
    retry_after: int


async def hit(engine: AsyncEngine, bucket: str, *, limit: int, window_seconds: int,
              now: dt.datetime | None = None) -> RateDecision:
    """Count one request in `bucket`'s current window; `allowed` while within `limit`."""
    if window_seconds < 1 or limit < 0:
        raise ValueError("a rate limit needs a window of at least a second and a limit >= 0")
    seconds = int(now.timestamp()) if now is not None else int(time.time())
    start = seconds - seconds % window_seconds
    insert = (postgresql.insert(limits) if engine.dialect.name == "postgresql"
              else sqlite.insert(limits))
    upsert = insert.values(bucket=bucket[:200], window_start=start, hits=1).on_conflict_do_update(
        index_elements=[limits.c.bucket, limits.c.window_start],
        set_={"hits": limits.c.hits + 1}).returning(limits.c.hits)
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # every request from one address counts on one row: its lock is held until
            # COMMIT, so COMMIT must not wait for the WAL flush (a count lost to a crash
            # only lets a few more requests in; nothing else is written here)
            await conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
        hits = int((await conn.execute(upsert)).scalar_one())
        if hits == 1:
            await conn.execute(limits.delete().where(
                limits.c.window_start < start - window_seconds))
    return RateDecision(allowed=hits <= limit, hits=hits, limit=limit,
                        retry_after=max(1, start + window_seconds - seconds))
