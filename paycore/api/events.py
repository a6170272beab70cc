"""Events and webhook endpoints (issue #17 §2).

- `GET /v1/events?after=<seq>&limit=` (events:read): the merchant's events after a cursor,
  oldest first, so a missed webhook is never lost; `next_after` is the cursor to page on.
- `POST /v1/webhook-endpoints` (webhooks:write) registers an endpoint; the answer holds its
  signing secret, once. `GET` lists them; `POST .../{id}/disable`, `/enable`,
  `/rotate-secret` (the old secret signs too for 24 h); `POST /v1/events/{id}/redeliver`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

import ledger
from paycore import webhooks
from paycore.api.auth import Principal, requires
from paycore.api.deps import Engine, ReadConnection
from paycore.api.keys import declare_scope
from paycore.api.problems import NotFound, register_error

router = APIRouter(tags=["events"])
declare_scope("events:read", "read the merchant's events")
declare_scope("webhooks:write", "register, disable and rotate webhook endpoints; redeliver")
register_error(webhooks.InvalidEndpoint, 422)

Reader = Annotated[Principal, requires("events:read")]
Writer = Annotated[Principal, requires("webhooks:write")]
EndpointId = Annotated[str, Path(max_length=40, pattern=r"^we_[0-9a-f]+$")]


class EventOut(BaseModel):
    id: str
    sequence: int
    type: str
    object_type: str
    object: dict[str, Any]
    created: dt.datetime


class EventPage(BaseModel):
    data: list[EventOut]
    next_after: int = Field(description="pass as `after` for the next page")


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2000)
    topics: list[str] = Field(default_factory=lambda: ["*"], max_length=50)
    description: str = Field("", max_length=500)


class EndpointOut(BaseModel):
    id: str
    url: str
    topics: list[str]
    status: str
    description: str
    created: dt.datetime
    previous_secret_until: dt.datetime | None = None
    secret: str | None = Field(None, description="only when created or rotated: keep it")

    @classmethod
    def of(cls, e: webhooks.Endpoint, secret: str | None = None) -> EndpointOut:
        return cls(id=e.id, url=e.url, topics=list(e.topics), status=e.status,
                   description=e.description, created=e.created_at,
                   previous_secret_until=e.rotating_until, secret=secret)


@router.get("/v1/events", response_model=EventPage, summary="The merchant's events")
async def list_events(principal: Reader, engine: Engine,
                      after: Annotated[int, Query(ge=0, le=2**62)] = 0,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> EventPage:
    async with engine.begin() as conn:
        await webhooks.fan_out(conn)  # number what has committed since the dispatcher ran
        found = await webhooks.list_events(conn, principal.merchant_id, after=after,
                                           limit=limit)
    data = [EventOut(id=e.id, sequence=e.seq or 0, type=e.topic, object_type=e.object_type,
                     object=e.payload, created=e.occurred_at) for e in found]
    return EventPage(data=data, next_after=data[-1].sequence if data else after)


@router.post("/v1/webhook-endpoints", response_model=EndpointOut, status_code=201,
             summary="Register a webhook endpoint")
async def create_endpoint(body: EndpointIn, principal: Writer, engine: Engine) -> EndpointOut:
    async with engine.begin() as conn:
        endpoint, secret = await webhooks.create_endpoint(
            conn, principal.merchant_id, body.url, topics=body.topics,
            description=body.description)
    return EndpointOut.of(endpoint, secret)


@router.get("/v1/webhook-endpoints", response_model=list[EndpointOut])
async def list_endpoints(principal: Reader, conn: ReadConnection) -> list[EndpointOut]:
    return [EndpointOut.of(e) for e in await webhooks.list_endpoints(conn, principal.merchant_id)]


async def _change(engine: Any, name: str, endpoint_id: str, merchant_id: str) -> EndpointOut:
    async with engine.begin() as conn:
        if name == "rotate":
            done = await webhooks.rotate_secret(conn, endpoint_id, merchant_id=merchant_id)
            if done is None:
                raise NotFound(f"no webhook endpoint {endpoint_id}")
            return EndpointOut.of(*done)
        change = webhooks.disable_endpoint if name == "disable" else webhooks.enable_endpoint
        found = await change(conn, endpoint_id, merchant_id=merchant_id)
    if found is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return EndpointOut.of(found)


@router.post("/v1/webhook-endpoints/{endpoint_id}/disable", response_model=EndpointOut)
async def disable_endpoint(endpoint_id: EndpointId, principal: Writer,
                           engine: Engine) -> EndpointOut:
    return await _change(engine, "disable", endpoint_id, principal.merchant_id)


@router.post("/v1/webhook-endpoints/{endpoint_id}/enable", response_model=EndpointOut)
async def enable_endpoint(endpoint_id: EndpointId, principal: Writer,
                          engine: Engine) -> EndpointOut:
    return await _change(engine, "enable", endpoint_id, principal.merchant_id)


@router.post("/v1/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=EndpointOut)
async def rotate_secret(endpoint_id: EndpointId, principal: Writer,
                        engine: Engine) -> EndpointOut:
    return await _change(engine, "rotate", endpoint_id, principal.merchant_id)


class Redelivered(BaseModel):
    event_id: str
    deliveries: int
    job_id: int | None = Field(None, description="the dispatch job queued to send it now")


@router.post("/v1/events/{event_id}/redeliver", response_model=Redelivered)
async def redeliver(event_id: Annotated[str, Path(max_length=40)], principal: Writer,
                    engine: Engine) -> Redelivered:
    from paycore import jobs

    async with engine.begin() as conn:
        n = await webhooks.redeliver(conn, event_id, merchant_id=principal.merchant_id)
        if not n:
            raise NotFound(f"no event {event_id} with an endpoint to go to")
        # sent by the next free worker rather than the next scheduled dispatch; the job
        # carries this request's id into the worker's logs
        job_id = await jobs.enqueue(conn, "webhooks.dispatch", {"event_id": event_id},
                                    max_attempts=3)
    return Redelivered(event_id=event_id, deliveries=n, job_id=job_id)


__all__ = ["ledger", "router"]
