"""A fixed-window rate limit kept in the database, so that it holds across every worker
process of `paycore serve` (each would otherwise allow the full rate on its own).

    decision = await hit(engine, "notifications:203.0.113.7", limit=600, window_seconds=60)
    if not decision.allowed: answer 429 with Retry-After: decision.retry_after

`peek` reads a bucket's count without adding to it: a route that counts only what fails
(bank notifications whose signature does not verify) asks `peek` before it does the work
and `hit`s only when the work fails, so what succeeds writes nothing and never queues on
the bucket's row.

One upsert per counted request (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`; on
PostgreSQL one statement in autocommit, one round trip); the first hit of a bucket's new
window also deletes the windows that have ended, so the table stays small.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.api.oneshot import one_statement
from paycore.schema import api_rate_limits as limits

__all__ = ["RateDecision", "hit", "peek"]

_PG_UPSERT = sa.text(
    "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)) "
    "INSERT INTO api_rate_limits (bucket, window_start, hits) "
    "SELECT :bucket, :window_start, 1 FROM quick "
    "ON CONFLICT (bucket, window_start) DO UPDATE SET hits = api_rate_limits.hits + 1 "
    "RETURNING hits").bindparams(sa.bindparam("bucket", type_=sa.String),
                                 sa.bindparam("window_start", type_=sa.BigInteger))


_PEEK = sa.select(limits.c.hits).where(limits.c.bucket == sa.bindparam("bucket"),
                                       limits.c.window_start == sa.bindparam("window_start"))


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    hits: int
    limit: int
    #: seconds until the window ends (when a refused client may try again)
    retry_after: int


def _window(now: dt.datetime | None, window_seconds: int, limit: int) -> tuple[int, int]:
    if window_seconds < 1 or limit < 0:
        raise ValueError("a rate limit needs a window of at least a second and a limit >= 0")
    seconds = int(now.timestamp()) if now is not None else int(time.time())
    return seconds, seconds - seconds % window_seconds


async def peek(engine: AsyncEngine, bucket: str, *, limit: int, window_seconds: int,
               now: dt.datetime | None = None) -> RateDecision:
    """`bucket`'s count in its current window, not counting this request: `allowed` while
    below `limit` (one more may still be counted). Reads only: no lock, no write."""
    seconds, start = _window(now, window_seconds, limit)
    async with one_statement(engine) as conn:  # no BEGIN/ROLLBACK round trips around it
        hits = (await conn.execute(_PEEK, {"bucket": bucket[:200],
                                           "window_start": start})).scalar()
    found = int(hits or 0)
    return RateDecision(allowed=found < limit, hits=found, limit=limit,
                        retry_after=max(1, start + window_seconds - seconds))


async def hit(engine: AsyncEngine, bucket: str, *, limit: int, window_seconds: int,
              now: dt.datetime | None = None) -> RateDecision:
    """Count one request in `bucket`'s current window; `allowed` while within `limit`."""
    seconds, start = _window(now, window_seconds, limit)
    upsert = sqlite.insert(limits).values(
        bucket=bucket[:200], window_start=start, hits=1).on_conflict_do_update(
        index_elements=[limits.c.bucket, limits.c.window_start],
        set_={"hits": limits.c.hits + 1}).returning(limits.c.hits)
    if engine.dialect.name == "postgresql":
        # one statement, one round trip, in autocommit: every request from one address
        # counts on one row, whose lock is held until COMMIT, so COMMIT must not wait for
        # the WAL flush (a count lost to a crash only lets a few more requests in; nothing
        # else is written here): set_config(..., true) turns synchronous_commit off for
        # this statement's own transaction, which its COMMIT reads
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            hits = int((await conn.execute(_PG_UPSERT, {
                "bucket": bucket[:200], "window_start": start})).scalar_one())
            if hits == 1:
                await conn.execute(limits.delete().where(
                    limits.c.window_start < start - window_seconds))
    else:
        async with engine.begin() as conn:
            hits = int((await conn.execute(upsert)).scalar_one())
            if hits == 1:
                await conn.execute(limits.delete().where(
                    limits.c.window_start < start - window_seconds))
    return RateDecision(allowed=hits <= limit, hits=hits, limit=limit,
                        retry_after=max(1, start + window_seconds - seconds))
