"""Fixtures for the HTTP API: the app on the `db` engine (SQLite and PostgreSQL), an
httpx client speaking ASGI to it, API keys, and a small chart of accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Annotated, Literal

import httpx
import pytest
import structlog
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
from paycore.api import (
    ApiSettings,
    DomainIdempotencyKey,
    Engine,
    Principal,
    create_api_key,
    create_app,
    requires,
)
from paycore.api.models import MoneyIn
from paycore.logging import redact, withhold_database_values
from tests.ledger.chart import open_chart

IssueKey = Callable[..., Awaitable[str]]

#: a balanced capture, as the probe route takes it
ENTRY_BODY = {"description": "capture", "postings": [
    {"account": "1102.clearing.icbc", "side": "debit", "amount": {"amount": "100.00", "currency": "CNY"}},
    {"account": "2202.payable.s1", "side": "credit", "amount": {"amount": "97.00", "currency": "CNY"}},
    {"account": "6001.income.commission", "side": "credit", "amount": {"amount": "3.00", "currency": "CNY"}},
]}


class LegIn(BaseModel):
    account: str
    side: Literal["debit", "credit"]
    amount: MoneyIn


class EntryIn(BaseModel):
    description: str = ""
    postings: list[LegIn]


def probe_router() -> APIRouter:
    """Routes the platform tests drive: a POST that writes to the ledger (idempotency,
    domain errors), and one that fails unexpectedly (500)."""
    router = APIRouter(prefix="/v1/probe")

    @router.post("/entries", status_code=201)
    async def post_entry(body: EntryIn, engine: Engine, key: DomainIdempotencyKey,
                         principal: Annotated[Principal, requires("payments:write")],
                         ) -> dict[str, object]:
        request = ledger.EntryRequest(
            idempotency_key=key, kind="probe", description=body.description,
            postings=[ledger.Posting(leg.account, **{leg.side: leg.amount.to_money()})
                      for leg in body.postings])
        entry = await ledger.transact(engine, lambda conn: ledger.post(conn, request))
        return {"entry_id": str(entry.id), "merchant": principal.merchant_id}

    @router.post("/boom")
    async def boom(_: Annotated[Principal, requires("payments:write")]) -> None:
        raise RuntimeError("connection string postgresql://admin:hunter2@db")

    return router


def make_app(engine: AsyncEngine, **settings: object) -> FastAPI:
    app = create_app(engine, settings=ApiSettings(**settings))  # type: ignore[arg-type]
    app.include_router(probe_router())
    return app


@pytest.fixture(autouse=True)
def plain_tracebacks() -> Iterator[None]:
    """Log as paycore does in production (tracebacks as text, after redaction), not with
    structlog's unconfigured default, whose rich tracebacks print every frame's locals
    (slow, and not what paycore ever writes)."""
    saved = structlog.get_config()
    structlog.configure(processors=[
        structlog.contextvars.merge_contextvars, structlog.processors.add_log_level, redact,
        withhold_database_values, structlog.processors.format_exc_info,
        structlog.dev.ConsoleRenderer(colors=False)])
    yield
    structlog.configure(**saved)


@pytest.fixture
async def app(db: AsyncEngine) -> AsyncIterator[FastAPI]:
    await open_chart(db)
    made = make_app(db)
    # what the app's lifespan would do at shutdown (ASGITransport runs no lifespan)
    async with made.router.lifespan_context(made):
        yield made


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://paycore.test") as client:
        yield client


@pytest.fixture
def issue_key(db: AsyncEngine) -> IssueKey:
    async def issue(merchant: str, *scopes: str) -> str:
        async with db.begin() as conn:
            return (await create_api_key(conn, merchant, scopes)).secret
    return issue


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def is_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    if code is not None:
        assert body["code"] == code, body
        assert body["type"].endswith("/" + code)
    assert body["request_id"] == response.headers["x-request-id"]
    return body  # type: ignore[no-any-return]
