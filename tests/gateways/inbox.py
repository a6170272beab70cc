"""A tiny merchant notification endpoint for the adapter tests: a real HTTP server on
loopback that hands each bank's notification to that bank's adapter, records what it
made of it, and answers the bank in its own protocol (as the core's endpoint will)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateways.bank import BankGateway, BankNotification
from gateways.protocols import ProtocolError
from gateways.sandbox.server import LoopbackServer


@dataclass
class Received:
    bank: str
    notification: BankNotification | None
    error: ProtocolError | None


@dataclass
class Inbox:
    adapters: dict[str, BankGateway] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    #: refuse (ask for redelivery) this many valid notifications first
    refuse_next: int = 0

    def __post_init__(self) -> None:
        self._server = LoopbackServer(
            Starlette(routes=[Route("/notify/{bank}", self._notify, methods=["POST"])]),
            name="inbox",
        )
        self._arrived = asyncio.Condition()

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    def url(self, bank: str) -> str:
        return f"{self._server.base_url}/notify/{bank}"

    async def _notify(self, request: Request) -> Response:
        bank = request.path_params["bank"]
        adapter = self.adapters[bank]
        body = await request.body()
        try:
            note = adapter.parse_notification(dict(request.headers), body)
        except ProtocolError as exc:
            self.received.append(Received(bank, None, exc))
            reply = adapter.acknowledge(None, accepted=False)
        else:
            accepted = self.refuse_next <= 0
            self.refuse_next -= 1
            self.received.append(Received(bank, note, None))
            reply = adapter.acknowledge(note, accepted=accepted)
        async with self._arrived:
            self._arrived.notify_all()
        return Response(reply.body, status_code=reply.status_code, media_type=reply.content_type)

    def valid(self, reference: str | None = None) -> list[BankNotification]:
        return [r.notification for r in self.received if r.notification is not None
                and (reference is None or r.notification.reference == reference)]

    def errors(self) -> list[ProtocolError]:
        return [r.error for r in self.received if r.error is not None]
