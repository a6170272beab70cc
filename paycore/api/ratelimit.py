"""A fixed-window rate limit kept in the database, so that it holds across every worker
process of `paycore serve` (each would otherwise allow the full rate on its own).

    decision = await hit(engine, "notifications:203.0.113.7", limit=600, window_seconds=60)
    if not decision.allowed: answer 429 with Retry-After: decision.retry_after

`give_back` takes one count back: a route that limits only what fails (bank
notifications whose signature does not verify) counts every request before the work —
so that requests in flight at once cannot all read a count below the limit, and one whose
handling crashes stays counted — and gives the count back when the work succeeded.

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

__all__ = ["RateDecision", "give_back", "hit"]

_PG_UPSERT = sa.text(
    "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)) "
    "INSERT INTO api_rate_limits (bucket, window_start, hits) "
    "SELECT :bucket, :window_start, 1 FROM quick "
    "ON CONFLICT (bucket, window_start) DO UPDATE SET hits = api_rate_limits.hits + 1 "
    "RETURNING hits").bindparams(sa.bindparam("bucket", type_=sa.String),
                                 sa.bindparam("window_start", type_=sa.BigInteger))


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    hits: int
    limit: int
    #: seconds until the window ends (when a refused client may try again)
    retry_after: int
    #: the window counted in (what `give_back` takes the count back from)
    window_start: int = 0


def _window(now: dt.datetime | None, window_seconds: int, limit: int) -> tuple[int, int]:
    if window_seconds < 1 or limit < 0:
        raise ValueError("a rate limit needs a window of at least a second and a limit >= 0")
    seconds = int(now.timestamp()) if now is not None else int(time.time())
    return seconds, seconds - seconds % window_seconds


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
                        retry_after=max(1, start + window_seconds - seconds),
                        window_start=start)


_GIVE_BACK = (limits.update()
              .where(limits.c.bucket == sa.bindparam("b_bucket"),
                     limits.c.window_start == sa.bindparam("b_window_start"),
                     limits.c.hits > 0)
              .values(hits=limits.c.hits - 1))
# as _PG_UPSERT: the row's lock must not be held through a WAL flush
_PG_GIVE_BACK = sa.text(
    "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)) "
    "UPDATE api_rate_limits SET hits = hits - 1 FROM quick "
    "WHERE bucket = :bucket AND window_start = :window_start AND hits > 0").bindparams(
    sa.bindparam("bucket", type_=sa.String), sa.bindparam("window_start", type_=sa.BigInteger))


async def give_back(engine: AsyncEngine, bucket: str, counted: RateDecision) -> None:
    """Take back the count `hit` made (answered `counted`), in the window it was made in."""
    async with one_statement(engine) as conn:  # one statement: no BEGIN/COMMIT round trips
        if engine.dialect.name == "postgresql":
            await conn.execute(_PG_GIVE_BACK, {"bucket": bucket[:200],
                                               "window_start": counted.window_start})
        else:
            await conn.execute(_GIVE_BACK, {"b_bucket": bucket[:200],
                                            "b_window_start": counted.window_start})
