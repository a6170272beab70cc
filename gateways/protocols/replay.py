"""Replay protection for messages that carry a nonce or an event id.

A protocol module checks signature and timestamp window (pure); remembering what was
already accepted needs storage, so it goes through this small interface that the caller
backs with its database (a unique key with an expiry) or, in tests and the sandbox,
with memory.
"""

from __future__ import annotations

import datetime as dt
import heapq
from typing import Protocol

__all__ = ["InMemoryReplayGuard", "ReplayGuard"]


class ReplayGuard(Protocol):
    async def claim(self, key: str, *, now: dt.datetime, expires_at: dt.datetime) -> bool:
        """Record `key`; True the first time, False if it is already held and unexpired.

        `expires_at` is when the key may be forgotten: after that the timestamp window
        rejects the message anyway, so storage stays bounded.  `now` is the verifier's
        clock, so the guard and the window agree on what "expired" means.
        """
        ...


class InMemoryReplayGuard:
    """Process-local guard for tests and the sandbox banks (single event loop).

    Expired keys leave through a heap ordered by expiry, so a claim costs O(log n)
    however many messages a busy sandbox has seen."""

    def __init__(self) -> None:
        self._seen: dict[str, dt.datetime] = {}
        self._expiries: list[tuple[dt.datetime, str]] = []

    async def claim(self, key: str, *, now: dt.datetime, expires_at: dt.datetime) -> bool:
        while self._expiries and self._expiries[0][0] < now:
            until, stale = heapq.heappop(self._expiries)
            if self._seen.get(stale) == until:
                del self._seen[stale]
        if key in self._seen:
            return False
        self._seen[key] = expires_at
        heapq.heappush(self._expiries, (expires_at, key))
        return True
