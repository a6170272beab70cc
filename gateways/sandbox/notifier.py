"""Asynchronous notifications from a sandbox bank to the merchant's notify URL, with
retries until the merchant acknowledges in the protocol's own way, and a record of every
delivery (what a test inspects)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import structlog

from gateways.adapters._http import Duration, as_timedelta

__all__ = ["Delivery", "Notifier", "Outgoing"]

log = structlog.get_logger("gateways.sandbox.notifier")

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


@dataclass(frozen=True)
class Outgoing:
    """One notification as sent on the wire."""

    body: bytes
    headers: dict[str, str]
    #: the protocol's message id (SM bank MsgId, REST event id), to match the ack
    message_id: str = ""


@dataclass(frozen=True)
class Delivery:
    reference: str
    kind: str
    url: str
    attempt: int
    body: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    status_code: int | None
    acknowledged: bool
    sent_at: dt.datetime
    #: the delivery was deliberately broken by a fault (bad signature, duplicate, ...)
    note: str = ""
    error: str | None = None
    #: the round trip of this delivery: POSTed to the merchant's answer read (the
    #: merchant's notification handling as the bank sees it)
    elapsed: dt.timedelta | None = None


Build = Callable[[bool], Outgoing]
AckCheck = Callable[[httpx.Response, Outgoing], bool]


@dataclass
class _Pending:
    reference: str
    kind: str
    url: str
    build: Build
    corrupt_first: bool
    duplicate: bool
    note: str


class Notifier:
    def __init__(
        self,
        *,
        bank: str,
        acknowledged: AckCheck,
        retry_delays: Sequence[Duration],
        timeout: Duration = 5.0,
    ) -> None:
        self._bank = bank
        self._acknowledged = acknowledged
        self._retry_delays = tuple(retry_delays)
        self._client = httpx.AsyncClient(timeout=as_timedelta(timeout).total_seconds(),
                                         trust_env=False)
        self._tasks: set[asyncio.Task[None]] = set()
        #: set while draining: late deliveries and retry pauses go at once
        self._hurry = asyncio.Event()
        self._held: list[_Pending] = []
        self.deliveries: list[Delivery] = []

    def send(
        self,
        *,
        reference: str,
        kind: str,
        url: str,
        build: Build,
        delay: Duration = 0.0,
        corrupt_first: bool = False,
        duplicate: bool = False,
        hold: bool = False,
        note: str = "",
    ) -> None:
        pending = _Pending(reference, kind, url, build, corrupt_first, duplicate, note)
        if hold:
            # Out of order: goes out after the next notification about something else.
            self._held.append(pending)
            return
        self._spawn(pending, delay)

    def _spawn(self, pending: _Pending, delay: Duration) -> None:
        task = asyncio.create_task(self._deliver(pending, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def release_held(self, *, except_reference: str | None = None) -> None:
        keep = [p for p in self._held if p.reference == except_reference]
        for pending in self._held:
            if pending.reference != except_reference:
                self._spawn(pending, 0.0)
        self._held = keep

    @property
    def held(self) -> int:
        return len(self._held)

    async def drain(self) -> None:
        """Deliver everything outstanding now (late and held ones included, retries
        without their pauses) and wait until each is acknowledged or given up."""
        self._hurry.set()
        try:
            self.release_held()
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
        finally:
            self._hurry.clear()

    async def _pause(self, delay: Duration) -> None:
        wait = as_timedelta(delay).total_seconds()
        if wait > 0 and not self._hurry.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), timeout=wait)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()

    async def _deliver(self, pending: _Pending, delay: Duration) -> None:
        await self._pause(delay)
        acknowledged = await self._attempts(pending, corrupt_first=pending.corrupt_first)
        self.release_held(except_reference=pending.reference)
        if acknowledged and pending.duplicate:
            await self._attempts(pending, corrupt_first=False, note="duplicate")

    async def _attempts(self, pending: _Pending, *, corrupt_first: bool, note: str = "") -> bool:
        delays = (0.0, *self._retry_delays)
        for attempt, pause in enumerate(delays, start=1):
            await self._pause(pause)
            corrupt = corrupt_first and attempt == 1
            outgoing = pending.build(corrupt)
            label = note or ("bad signature" if corrupt else pending.note)
            if await self._post(pending, outgoing, attempt, label):
                return True
        log.warning("notification given up", bank=self._bank, reference=pending.reference,
                    kind=pending.kind, attempts=len(delays))
        return False

    async def _post(self, pending: _Pending, outgoing: Outgoing, attempt: int, note: str) -> bool:
        sent_at = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        acknowledged = False
        if urlsplit(pending.url).hostname not in _LOOPBACK_HOSTS:
            # The sandbox only ever talks to loopback: refuse, never send.
            error = "notify URL is not on loopback"
        else:
            try:
                response = await self._client.post(
                    pending.url, content=outgoing.body, headers=outgoing.headers
                )
                status = response.status_code
                acknowledged = self._acknowledged(response, outgoing)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        self.deliveries.append(Delivery(
            reference=pending.reference, kind=pending.kind, url=pending.url, attempt=attempt,
            body=outgoing.body, headers=dict(outgoing.headers), status_code=status,
            acknowledged=acknowledged, sent_at=sent_at, note=note, error=error,
            elapsed=dt.timedelta(seconds=time.perf_counter() - started),
        ))
        return acknowledged
