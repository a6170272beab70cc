"""Waiting for a payment intent to move, in whichever process moves it.

    changes = IntentChanges(engine)
    async with changes.watching(intent_id) as moved:
        intent = read it
        while intent is pending and time is left:
            await moved.wait(seconds)   # woken when it may have moved; read it again
    await changes.close()

On PostgreSQL a trigger (migration 0035) notifies channel `paycore_intent_moved` with the
intent's id when its status changes; one connection per process LISTENs, taken from the
engine's pool on the first wait and given back by `close`, and wakes that intent's waiters
as the change commits. A waiter still reads the intent again every `recheck` seconds
(1 s), so a notification lost with a dropped connection costs a second, never an answer.
Channels are per database: an intent of another schema with the same id only wakes a
waiter for nothing. SQLite has no NOTIFY: its waiters read again every 100 ms.

The watch is registered before the caller's first read, so a move that commits between
that read and the wait still wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["CHANNEL", "IntentChanges", "Moved"]

log = structlog.get_logger("gateways.intent_changes")

CHANNEL = "paycore_intent_moved"


class Moved:
    """One waiter's signal: set when its intent may have moved."""

    def __init__(self, recheck: float) -> None:
        self._event = asyncio.Event()
        self._recheck = recheck

    def set(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Return when the intent may have moved, or after `seconds` (at most the
        recheck interval), whichever is first; the caller reads the intent again."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, min(seconds, self._recheck))):
                await self._event.wait()
        self._event.clear()


class IntentChanges:
    def __init__(self, engine: AsyncEngine, *, recheck: float | None = None) -> None:
        self._engine = engine
        self._listens = engine.dialect.name == "postgresql"
        self.recheck = recheck if recheck is not None else (1.0 if self._listens else 0.1)
        self._waiters: dict[str, set[Moved]] = {}
        self._conn: AsyncConnection | None = None
        self._driver: Any = None
        self._starting = asyncio.Lock()
        self._closed = False

    @contextlib.asynccontextmanager
    async def watching(self, intent_id: str) -> AsyncIterator[Moved]:
        moved = Moved(self.recheck)
        self._waiters.setdefault(intent_id, set()).add(moved)
        try:
            if self._listens:
                await self._listen()
            yield moved
        finally:
            waiting = self._waiters.get(intent_id)
            if waiting is not None:
                waiting.discard(moved)
                if not waiting:
                    del self._waiters[intent_id]

    def moved(self, intent_id: str) -> None:
        """Wake this process's waiters on `intent_id` (the listener calls it)."""
        for waiter in self._waiters.get(intent_id, ()):
            waiter.set()

    async def _listen(self) -> None:
        if self._closed or (self._driver is not None and not self._driver.is_closed()):
            return
        async with self._starting:
            if self._closed or (self._driver is not None and not self._driver.is_closed()):
                return
            await self._release()
            # a failure leaves no listener: waiters fall back to reading again every recheck
            try:
                conn = await self._engine.connect()
            except Exception as exc:
                log.warning("intent_changes.listen_failed", error=type(exc).__name__)
                return
            try:
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection
                await driver.add_listener(CHANNEL, self._heard)
            except Exception as exc:
                log.warning("intent_changes.listen_failed", error=type(exc).__name__)
                await conn.close()
                return
            self._conn, self._driver = conn, driver

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self.moved(payload)

    async def _release(self) -> None:
        conn, driver = self._conn, self._driver
        self._conn = self._driver = None
        if conn is None:
            return
        try:
            if driver is not None and not driver.is_closed():
                # the pool keeps the connection: it must not go on hearing the channel
                await driver.remove_listener(CHANNEL, self._heard)
            else:  # it died: the pool must not hand it out again
                await conn.invalidate()
        finally:
            await conn.close()

    async def close(self) -> None:
        """Give the listening connection back to the pool; waiters still read again."""
        self._closed = True
        async with self._starting:
            await self._release()
