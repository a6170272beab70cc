"""The outermost layer of every request: a request id (the client's `X-Request-ID` when it
is sane, else a new one) bound to every log line and echoed in the response, one access log
line, and a problem+json 500 for anything that escaped (details go to the log only)."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.api.problems import REQUEST_ID, internal_error_response
from paycore.metrics import REQUEST_LATENCY

log = structlog.get_logger("paycore.api")

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1").strip()
            if _SANE_ID.match(text):
                return text
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})[REQUEST_ID] = request_id
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        # a keep-alive connection serves its requests in one task: start each one clean
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id, method=scope["method"],
                                               path=scope["path"])
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("http.unhandled_error")
            if status is not None:
                raise  # the response has begun; the server closes the connection
            await internal_error_response(scope)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            elapsed_ms = int(elapsed * 1000)
            log.info("http.request", status=status, duration_ms=elapsed_ms)
            # by route template (`/v1/payment-intents/{intent_id}`), never the raw path:
            # ids in paths would make a series per object
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUEST_LATENCY.labels(scope["method"], route, str(status or 500)).observe(elapsed)
            structlog.contextvars.clear_contextvars()
