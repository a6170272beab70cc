"""One `AsyncEngine`, configured for the ledger's locking rules on each database."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

T = TypeVar("T")

#: PostgreSQL SQLSTATEs worth retrying the whole unit of work for
_RETRYABLE_SQLSTATES = {"40001", "40P01"}
#: unique constraints on idempotency keys: a concurrent writer that held none of our locks
#: committed the same key first; the re-run finds its row and replays it or raises
#: IdempotencyConflict, instead of surfacing a unique violation. An account's code is
#: `ensure_account`'s key alike: two processes opening one account at once (a product's
#: GL accounts by its first two loans), the re-run finds the account the other opened
_IDEMPOTENCY_KEY_CONSTRAINTS = {"journal_entries_idempotency_key_key", "holds_idempotency_key_key",
                                "accounts_code_key"}


def create_engine(url: str | sa.URL, **kwargs: Any) -> AsyncEngine:
    """An engine for the ledger.

    SQLite: every transaction starts with `BEGIN IMMEDIATE`, so a writer holds the database
    write lock from its first statement (SQLite's equivalent of the row locks PostgreSQL
    takes with `SELECT ... FOR UPDATE`), foreign keys are on, and WAL lets readers run
    beside the writer.
    """
    url = sa.make_url(url)
    if url.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # hand transaction control to SQLAlchemy's "begin" event below
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA busy_timeout = 30000")
            if url.database and url.database != ":memory:":
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, **kwargs)


def is_retryable(exc: BaseException) -> bool:
    """A deadlock, a serialization failure, SQLite's writer lock timing out, or a lost race
    for an idempotency key; raised through SQLAlchemy or, on the ledger's PostgreSQL write
    path, by asyncpg itself."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    if sqlstate == "23505":
        cause = getattr(orig, "__cause__", None)
        constraint = getattr(orig, "constraint_name", None) or getattr(
            cause, "constraint_name", None)
        return constraint in _IDEMPOTENCY_KEY_CONSTRAINTS
    return isinstance(exc, DBAPIError) and "database is locked" in str(orig)


async def transact(
    engine: AsyncEngine,
    work: Callable[[AsyncConnection], Awaitable[T]],
    *,
    attempts: int = 5,
    base_delay_ms: int = 10,
) -> T:
    """Run `work` in one transaction, retrying it whole a bounded number of times when the
    database reports a deadlock or serialization failure. `work` must be safe to re-run:
    everything it wrote in a failed attempt was rolled back."""
    for attempt in range(1, attempts + 1):
        try:
            async with engine.begin() as conn:
                return await work(conn)
        except Exception as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            backoff_ms = base_delay_ms * 2 ** (attempt - 1)
            await asyncio.sleep((backoff_ms + random.randrange(backoff_ms + 1)) / 1000)
    raise AssertionError("unreachable")
