"""A minimal ASGI app that receives bank notifications at `POST /{bank}` and hands them
to `handle_notification` — no web framework. The HTTP API (`paycore.api`) mounts its own
routes; this one serves tests and the demo when the API is not running."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateways.notifications import handle_notification
from gateways.routing import BankDirectory

__all__ = ["NotificationReceiver"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: a notification is a few kilobytes; anything far larger is not one
MAX_BODY = 1 << 20


class NotificationReceiver:
    def __init__(self, engine: AsyncEngine, banks: BankDirectory, prefix: str = "") -> None:
        self.engine = engine
        self.banks = banks
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if scope["method"] != "POST" or not path.startswith(self.prefix + "/"):
            await _answer(send, 404, "text/plain", b"not found")
            return
        bank = path[len(self.prefix) + 1:].strip("/")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                await _answer(send, 413, "text/plain", b"too large")
                return
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        reply = await handle_notification(self.engine, self.banks, bank, headers, body)
        await _answer(send, reply.status_code, reply.content_type, reply.body)


async def _answer(send: Send, status: int, content_type: str, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode("latin-1")),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
