"""Dependencies every router uses: the engine, a short read-only connection, the settings,
and the request's Idempotency-Key (to hand to a domain function as its own key)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from paycore.api.auth import Principal, principal_of
from paycore.api.idempotency import IDEMPOTENCY_KEY
from paycore.api.problems import ApiProblem
from paycore.api.settings import ApiSettings

T = TypeVar("T")


def app_service(app: FastAPI, name: str, kind: type[T], make: Callable[[AsyncEngine], T]) -> T:
    """The app's `name` on `app.state` (a `kind` on the app's engine), made on first use:
    its router's lifespan starts and closes it, but an app run without a lifespan (an
    ASGI test client) still gets one."""
    found = getattr(app.state, name, None)
    if not isinstance(found, kind):
        found = make(app.state.engine)
        setattr(app.state, name, found)
    return found


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


def domain_key(merchant_id: str, key: str) -> str:
    """The domain's own idempotency key for a merchant's Idempotency-Key, one per pair.

    `api:<merchant>:<key>` while the merchant id holds no `:` (everything up to the first
    `:` after `api:` is the merchant, so two merchants never meet; and the keys of records
    made before stay what they were). A merchant id with a `:` would be ambiguous there
    (merchant `m`, key `x:k1` against merchant `m:x`, key `k1`), so it is written with its
    length under another prefix: `api#<length>:<merchant>:<key>`."""
    if ":" in merchant_id:
        return f"api#{len(merchant_id)}:{merchant_id}:{key}"
    return f"api:{merchant_id}:{key}"


async def domain_idempotency_key(request: Request) -> str:
    """`domain_key(merchant, Idempotency-Key)`: pass it to the domain function a POST calls,
    so that even a retry after a lost response (or a crashed server) cannot act twice."""
    key = request.scope.get("state", {}).get(IDEMPOTENCY_KEY)
    if not key:
        raise ApiProblem("this route needs an Idempotency-Key header",
                         code="idempotency-key-missing")
    principal: Principal = await principal_of(request.scope)
    return domain_key(principal.merchant_id, key)


#: the application's engine; write with `ledger.transact(engine, work)` or
#: `async with engine.begin() as conn:` so the state change and its entry commit together
Engine = Annotated[AsyncEngine, Depends(get_engine)]
#: a connection for reads only, closed when the route returns; a route that also writes
#: must not hold it while it opens a transaction (on SQLite that would wait on itself)
ReadConnection = Annotated[AsyncConnection, Depends(read_connection, scope="function")]
Settings = Annotated[ApiSettings, Depends(get_settings)]
DomainIdempotencyKey = Annotated[str, Depends(domain_idempotency_key)]
