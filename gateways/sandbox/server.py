"""Serve an ASGI app with uvicorn on 127.0.0.1, on a port the OS picks, inside the
caller's event loop, so a test or the demo starts and stops a bank in-process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

__all__ = ["LoopbackServer"]

LOOPBACK = "127.0.0.1"


class _QuietServer(uvicorn.Server):
    # Several sandbox servers live in one process beside the test runner: none of them
    # may take over SIGINT/SIGTERM (uvicorn would restore handlers out of order).
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LoopbackServer:
    def __init__(self, app: ASGIApp, *, name: str) -> None:
        self._app = app
        self._name = name
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._port = 0

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError(f"sandbox {self._name} is not running")
        return f"http://{LOOPBACK}:{self._port}"

    async def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            # A sandbox bank answers many small requests from one client: keep-alive on.
            timeout_keep_alive=30,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task  # re-raises the start-up failure
                raise RuntimeError(f"sandbox {self._name} stopped while starting")
            await asyncio.sleep(0.005)
        return self.base_url

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = None
        self._task = None
