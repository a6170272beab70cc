"""Waiting for a payment intent to move, in whichever process moves it.

    changes = IntentChanges(engine)
    async with changes.watching(intent_id) as moved:
        if moved is None: answer at once (this process has as many waiters as it takes)
        intent = read it
        while intent is pending and time is left:
            await moved.wait(seconds)   # woken when it may have moved; read it again
    await changes.close()

    await announce(engine, intent_id)   # after the commit that moved it

Whoever moves an intent a checkout page waits on (the bank's notification) announces it
after its commit: this process's waiters are woken at once, and on PostgreSQL
`pg_notify('paycore_intent_moved', id)` reaches every other process, each of which keeps
one LISTEN connection of its own (outside the engine's pool, opened on the first wait,
closed by `close`). The NOTIFY is a statement of its own after the commit, not a trigger
in the moving transaction: PostgreSQL takes a database-wide lock when a notifying
transaction commits and holds it through the commit's WAL flush, so a trigger would have
made every capture commit one at a time; alone, with `synchronous_commit` off, it holds
that lock for no flush. A waiter still reads the intent again every `recheck` seconds (1 s;
0.1 s on SQLite, which has no NOTIFY), so a move nobody announced (an inquiry's answer, an
expiry) or an announcement lost with a dropped connection costs that long, never an answer.
Channels are per database: an intent of another schema with the same id only wakes a
waiter for nothing.

The watch is registered before the caller's first read, so a move announced between that
read and the wait still wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

__all__ = ["CHANNEL", "IntentChanges", "Moved", "announce"]

log = structlog.get_logger("gateways.intent_changes")

CHANNEL = "paycore_intent_moved"
#: waiters one process keeps at once, and of those for one owner (a merchant); past either
#: a wait is answered at once (a hostile key holder opening waits by the thousand gets
#: answers, not a server's memory, nor every other merchant's waits)
MAX_WAITERS = 2048
MAX_WAITERS_PER_OWNER = 256
#: after a failed LISTEN, waits go without one (re-reading) this long before the next try
LISTEN_RETRY_AFTER = dt.timedelta(seconds=5)

#: every watch of this process, so that `announce` wakes its waiters without the database
_WATCHES: weakref.WeakSet[IntentChanges] = weakref.WeakSet()

# synchronous_commit off for this statement's own transaction: a NOTIFY's commit holds a
# database-wide lock, which must not wait for a WAL flush (what is lost to a crash is a
# wake-up, which the waiters' re-read makes good)
_NOTIFY = sa.text("SELECT pg_notify(:channel, :intent_id) "
                  "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS quick")


async def announce(engine: AsyncEngine, intent_id: str) -> None:
    """Tell every process's waiters that `intent_id` moved: call it after the commit that
    moved it. A failure is logged and swallowed (the waiters read again anyway)."""
    for watch in list(_WATCHES):
        if watch.engine is engine or watch.engine.url == engine.url:
            watch.moved(intent_id)
    if engine.dialect.name != "postgresql":
        return
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(_NOTIFY, {"channel": CHANNEL, "intent_id": intent_id})
    except Exception as exc:  # the move is committed; only the wake-up is lost
        log.warning("intent_changes.announce_failed", intent_id=intent_id,
                    error=type(exc).__name__)


class Moved:
    """One waiter's signal: set when its intent may have moved."""

    def __init__(self, recheck: dt.timedelta) -> None:
        self._event = asyncio.Event()
        self._recheck = recheck

    def set(self) -> None:
        self._event.set()

    async def wait(self, within: dt.timedelta) -> None:
        """Return when the intent may have moved, or after `within` (at most the
        recheck interval), whichever is first; the caller reads the intent again."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(min(within, self._recheck),
                                           dt.timedelta(0)).total_seconds()):
                await self._event.wait()
        self._event.clear()


class IntentChanges:
    def __init__(self, engine: AsyncEngine, *, recheck: dt.timedelta | None = None,
                 max_waiters: int = MAX_WAITERS,
                 max_per_owner: int = MAX_WAITERS_PER_OWNER) -> None:
        self.engine = engine
        self._listens = engine.dialect.name == "postgresql"
        self.recheck = recheck if recheck is not None else dt.timedelta(
            milliseconds=1000 if self._listens else 100)
        self.max_waiters = max_waiters
        self.max_per_owner = max_per_owner
        self._waiters: dict[str, set[Moved]] = {}
        self._count = 0
        self._by_owner: dict[str, int] = {}
        #: time.monotonic_ns() when a LISTEN last failed (None: it has not, or it works)
        self._failed_at: int | None = None
        self._listener: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None
        self._driver: Any = None
        self._starting = asyncio.Lock()
        self._closed = False
        _WATCHES.add(self)

    @contextlib.asynccontextmanager
    async def watching(self, intent_id: str, owner: str = "") -> AsyncIterator[Moved | None]:
        """A waiter on `intent_id` for the block; None when this process already keeps
        `max_waiters`, or `max_per_owner` for `owner` (the caller answers at once)."""
        if (self._count >= self.max_waiters
                or self._by_owner.get(owner, 0) >= self.max_per_owner):
            yield None
            return
        moved = Moved(self.recheck)
        self._waiters.setdefault(intent_id, set()).add(moved)
        self._count += 1
        self._by_owner[owner] = self._by_owner.get(owner, 0) + 1
        try:
            if self._listens:
                await self._listen()
            yield moved
        finally:
            self._count -= 1
            left = self._by_owner.pop(owner) - 1
            if left:
                self._by_owner[owner] = left
            waiting = self._waiters.get(intent_id)
            if waiting is not None:
                waiting.discard(moved)
                if not waiting:
                    del self._waiters[intent_id]

    def moved(self, intent_id: str) -> None:
        """Wake this process's waiters on `intent_id`."""
        for waiter in self._waiters.get(intent_id, ()):
            waiter.set()

    def _listening_or_resting(self) -> bool:
        if self._closed or (self._driver is not None and not self._driver.is_closed()):
            return True
        # a LISTEN that failed a moment ago is not tried again by every wait
        return (self._failed_at is not None and time.monotonic_ns() - self._failed_at
                < LISTEN_RETRY_AFTER // dt.timedelta(microseconds=1) * 1000)

    async def _listen(self) -> None:
        if self._listening_or_resting():
            return
        async with self._starting:
            if self._listening_or_resting():
                return
            await self._release()
            # a connection of its own, outside the engine's pool: held for the process's
            # life, it would be a pool slot the requests never get back
            listener = create_async_engine(self.engine.url, poolclass=NullPool)
            # a failure leaves no listener: waiters fall back to reading again every recheck
            self._failed_at = time.monotonic_ns()  # until it succeeds
            try:
                conn = await listener.connect()
            except Exception as exc:
                log.warning("intent_changes.listen_failed", error=type(exc).__name__)
                await listener.dispose()
                return
            try:
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection
                await driver.add_listener(CHANNEL, self._heard)
            except Exception as exc:
                log.warning("intent_changes.listen_failed", error=type(exc).__name__)
                await conn.invalidate()
                await listener.dispose()
                return
            self._listener, self._conn, self._driver = listener, conn, driver
            self._failed_at = None

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self.moved(payload)

    async def _release(self) -> None:
        listener, conn = self._listener, self._conn
        self._listener = self._conn = self._driver = None
        if conn is not None:
            # NullPool: closing it closes the connection (and its LISTEN); a dead one
            # has nothing left to close
            with contextlib.suppress(Exception):
                await conn.close()
        if listener is not None:
            await listener.dispose()

    async def close(self) -> None:
        """Close the listening connection; waiters still read again."""
        self._closed = True
        async with self._starting:
            await self._release()
