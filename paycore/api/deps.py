"""Dependencies every router uses: the engine, a short read-only connection, the settings,
and the request's Idempotency-Key (to hand to a domain function as its own key)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from paycore.api.auth import Principal, principal_of
from paycore.api.idempotency import IDEMPOTENCY_KEY
from paycore.api.problems import ApiProblem
from paycore.api.settings import ApiSettings


# async, though they await nothing: FastAPI runs a plain `def` dependency in a thread
# pool, a hand-off to another thread (and back) on every request for an attribute read
async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


async def read_connection(engine: Annotated[AsyncEngine, Depends(get_engine)],
                          ) -> AsyncIterator[AsyncConnection]:
    # closed when the route returns (scope "function"), not after the response is sent: on
    # SQLite every transaction takes the write lock, so it must be short
    async with engine.connect() as conn:
        yield conn


async def domain_idempotency_key(request: Request) -> str:
    """`api:<merchant>:<Idempotency-Key>`: pass it to the domain function a POST calls, so
    that even a retry after a lost response (or a crashed server) cannot act twice."""
    key = request.scope.get("state", {}).get(IDEMPOTENCY_KEY)
    if not key:
        raise ApiProblem("this route needs an Idempotency-Key header",
                         code="idempotency-key-missing")
    principal: Principal = await principal_of(request.scope)
    return f"api:{principal.merchant_id}:{key}"


#: the application's engine; write with `ledger.transact(engine, work)` or
#: `async with engine.begin() as conn:` so the state change and its entry commit together
Engine = Annotated[AsyncEngine, Depends(get_engine)]
#: a connection for reads only, closed when the route returns; a route that also writes
#: must not hold it while it opens a transaction (on SQLite that would wait on itself)
ReadConnection = Annotated[AsyncConnection, Depends(read_connection, scope="function")]
Settings = Annotated[ApiSettings, Depends(get_settings)]
DomainIdempotencyKey = Annotated[str, Depends(domain_idempotency_key)]
