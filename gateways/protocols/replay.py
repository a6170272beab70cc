"""Replay protection for messages that carry a nonce or an event id.

A protocol module checks signature and timestamp window (pure); remembering what was
already accepted needs storage, so it goes through this small interface that the caller
backs with its database (a unique key with an expiry) or, in tests and the sandbox,
with memory.
"""

from __future__ import annotations

import datetime as dt
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
    """Process-local guard for tests and the sandbox banks (single event loop)."""

    def __init__(self) -> None:
        self._seen: dict[str, dt.datetime] = {}

    async def claim(self, key: str, *, now: dt.datetime, expires_at: dt.datetime) -> bool:
        for stale in [k for k, until in self._seen.items() if until < now]:
            del self._seen[stale]
        if key in self._seen:
            return False
        self._seen[key] = expires_at
        return True
