"""Events to merchants: webhook endpoints, signed deliveries, retries over days.

The domains write events into the outbox (`ledger.record_event`) in the transaction of the
change they announce. `dispatch` (the `webhooks.dispatch` job) then

1. numbers the newly committed events (`ledger.sequence_events`) and, in the same
   transaction, creates one delivery per enabled endpoint of the event's audience that
   takes the event's topic;
2. sends the due deliveries, each held for a while (`locked_until`) by the dispatcher
   sending it, never an event of an object before an earlier event of the same object
   to the same endpoint is delivered (or given up on);
3. records each answer: 2xx delivered; anything else (or no answer) retried after the
   next back-off step (1 min, 5 min, 30 min, 2 h, 6 h, 12 h, then daily, about four days
   in all), then `failed` (a metric, `paycore webhooks deliveries --status failed`, and
   manual redelivery).

At least once: a dispatcher that dies after sending and before recording sends again;
the event's id (`Paycore-Event-Id`, and `id` in the body) lets the merchant drop the
duplicate.

Signature: `Paycore-Signature: t=<unix seconds>,v1=<hex>` where hex is HMAC-SHA256 with
the endpoint's secret over `<t>.<body>`; during a secret rotation a second `v1=` is the
old secret's. A receiver recomputes it, compares in constant time and refuses a `t` far
from its clock (replays).

Secrets at rest: sealed (AES-256-GCM) under the key ring that protects the payout register's
account numbers (`PAYCORE_ACCOUNT_KEYS`, `gateways.account_keys`), bound to their endpoint,
so a database dump or a replica does not let anyone forge paycore's signatures. Without a
key ring no endpoint is registered. When a new key is put first in the ring, `rekey_secrets`
(`paycore webhooks rekey`, and `paycore beneficiaries rekey`) seals every secret under it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import socket
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from paycore.schema import api_payout_owners, webhook_deliveries, webhook_endpoints

__all__ = ["DEFAULT_BACKOFF", "DispatchReport", "Endpoint", "InvalidEndpoint", "WebhookSettings",
           "create_endpoint", "disable_endpoint", "dispatch", "event_body", "list_deliveries",
           "list_endpoints", "list_events", "redeliver", "rekey_secrets", "rotate_secret",
           "sign", "verify_signature"]

log = structlog.get_logger("paycore.webhooks")

_M = 60
DEFAULT_BACKOFF: tuple[int, ...] = (1 * _M, 5 * _M, 30 * _M, 120 * _M, 360 * _M, 720 * _M,
                                    1440 * _M, 1440 * _M, 1440 * _M)
SIGNATURE_HEADER = "Paycore-Signature"


class InvalidEndpoint(ValueError):
    code = "invalid-endpoint"


@dataclass(frozen=True)
class WebhookSettings:
    #: seconds to wait after the n-th failed attempt; after the last, the delivery fails
    backoff: tuple[int, ...] = DEFAULT_BACKOFF
    #: seconds for one delivery's whole HTTP exchange
    timeout: int = 10
    #: deliveries sent at once by one dispatcher
    concurrency: int = 16
    batch: int = 500
    #: loopback and private addresses (tests, a receiver on the same host): off in production
    allow_private: bool = False
    #: how long the old secret keeps signing after a rotation
    rotation_overlap: dt.timedelta = dt.timedelta(hours=24)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebhookSettings:
        env = os.environ if env is None else env
        backoff = env.get("PAYCORE_WEBHOOK_BACKOFF")
        return cls(
            backoff=tuple(int(s) for s in backoff.split(",")) if backoff else DEFAULT_BACKOFF,
            timeout=int(env.get("PAYCORE_WEBHOOK_TIMEOUT", "10")),
            concurrency=int(env.get("PAYCORE_WEBHOOK_CONCURRENCY", "16")),
            allow_private=env.get("PAYCORE_WEBHOOK_ALLOW_PRIVATE", "").lower() in {"1", "true", "yes"},
        )


@dataclass(frozen=True)
class Endpoint:
    id: str
    merchant_id: str
    url: str
    topics: tuple[str, ...]
    status: str
    description: str
    created_at: dt.datetime
    rotating_until: dt.datetime | None


def _endpoint(r: Any) -> Endpoint:
    return Endpoint(r.id, r.merchant_id, r.url, tuple(r.topics.split()), r.status,
                    r.description, r.created_at,
                    r.previous_secret_expires_at if r.previous_secret else None)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_secret() -> str:
    return "whsec_" + secrets.token_hex(32)


def _bound_to(endpoint_id: str) -> str:
    return f"webhook-endpoint:{endpoint_id}"


def _seal(secret: str, endpoint_id: str) -> tuple[str, str]:
    """(key id, sealed secret) under the newest key of the account key ring."""
    from gateways.account_keys import current_account_keys  # loads gateways: only here

    return current_account_keys().encrypt(secret, bound_to=_bound_to(endpoint_id))


def _unseal(key_id: str | None, stored: str, endpoint_id: str) -> str:
    if key_id is None:
        return stored  # stored before migration 0027, not yet sealed (`rekey_secrets`)
    from gateways.account_keys import current_account_keys

    return current_account_keys().decrypt(key_id, stored, bound_to=_bound_to(endpoint_id))


def _private(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower() in {"localhost", "localhost.localdomain"}
    return (address.is_private or address.is_loopback or address.is_link_local
            or address.is_reserved or address.is_multicast or address.is_unspecified)


def check_url(url: str, settings: WebhookSettings) -> str:
    """http(s) only, a host, no credentials in it; no loopback or private address unless
    the settings allow them (a webhook must not be a way into the operator's network)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidEndpoint(f"the endpoint URL must be http:// or https:// with a host, not {url!r}")
    if parsed.username or parsed.password:
        raise InvalidEndpoint("the endpoint URL must not carry credentials")
    if len(url) > 2000:
        raise InvalidEndpoint("the endpoint URL is longer than 2000 characters")
    if not settings.allow_private and _private(parsed.hostname):
        raise InvalidEndpoint(f"{parsed.hostname} is a loopback or private address")
    return url


async def _resolves_private(host: str) -> bool:
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False  # the request itself will fail and be retried
    return any(_private(str(info[4][0])) for info in found)


def _topics(topics: Sequence[str]) -> str:
    cleaned = sorted({t.strip() for t in topics if t.strip()}) or ["*"]
    for t in cleaned:
        if len(t) > 64 or not all(c.isalnum() or c in "._*" for c in t):
            raise InvalidEndpoint(f"{t!r} is not a topic (e.g. payment.captured, or *)")
    return " ".join(cleaned)


async def create_endpoint(conn: AsyncConnection, merchant_id: str, url: str, *,
                          topics: Sequence[str] = ("*",), description: str = "",
                          settings: WebhookSettings | None = None) -> tuple[Endpoint, str]:
    """Register an endpoint; returns it and its signing secret (shown once)."""
    settings = settings or WebhookSettings.from_env()
    check_url(url, settings)
    endpoint_id = "we_" + secrets.token_hex(12)
    secret = _new_secret()
    key_id, sealed = _seal(secret, endpoint_id)
    now = _utcnow()
    await conn.execute(webhook_endpoints.insert().values(
        id=endpoint_id, merchant_id=merchant_id, url=url, topics=_topics(topics), secret=sealed,
        secret_key_id=key_id, status="enabled", description=description[:500],
        created_at=now))
    row = (await conn.execute(sa.select(webhook_endpoints)
                              .where(webhook_endpoints.c.id == endpoint_id))).one()
    return _endpoint(row), secret


async def list_endpoints(conn: AsyncConnection, merchant_id: str | None = None) -> list[Endpoint]:
    query = sa.select(webhook_endpoints).order_by(webhook_endpoints.c.created_at)
    if merchant_id is not None:
        query = query.where(webhook_endpoints.c.merchant_id == merchant_id)
    return [_endpoint(r) for r in await conn.execute(query)]


def _owned(endpoint_id: str, merchant_id: str | None) -> list[sa.ColumnElement[bool]]:
    where = [webhook_endpoints.c.id == endpoint_id]
    if merchant_id is not None:
        where.append(webhook_endpoints.c.merchant_id == merchant_id)
    return where


async def disable_endpoint(conn: AsyncConnection, endpoint_id: str, *,
                           merchant_id: str | None = None) -> Endpoint | None:
    """Stop sending to it; its pending deliveries stay (and go out if it is enabled again)."""
    row = (await conn.execute(webhook_endpoints.update()
                              .where(*_owned(endpoint_id, merchant_id))
                              .values(status="disabled", disabled_at=_utcnow())
                              .returning(*webhook_endpoints.c))).first()
    return None if row is None else _endpoint(row)


async def enable_endpoint(conn: AsyncConnection, endpoint_id: str, *,
                          merchant_id: str | None = None) -> Endpoint | None:
    row = (await conn.execute(webhook_endpoints.update()
                              .where(*_owned(endpoint_id, merchant_id))
                              .values(status="enabled", disabled_at=None)
                              .returning(*webhook_endpoints.c))).first()
    return None if row is None else _endpoint(row)


async def rotate_secret(conn: AsyncConnection, endpoint_id: str, *,
                        merchant_id: str | None = None,
                        overlap: dt.timedelta = dt.timedelta(hours=24)) -> tuple[Endpoint, str] | None:
    """A new secret; the old one keeps signing (a second `v1=`) for `overlap`."""
    secret = _new_secret()
    key_id, sealed = _seal(secret, endpoint_id)
    c = webhook_endpoints.c
    row = (await conn.execute(webhook_endpoints.update()
                              .where(*_owned(endpoint_id, merchant_id))
                              .values(previous_secret=c.secret,
                                      previous_secret_key_id=c.secret_key_id,
                                      secret=sealed, secret_key_id=key_id,
                                      previous_secret_expires_at=_utcnow() + overlap)
                              .returning(*webhook_endpoints.c))).first()
    return None if row is None else (_endpoint(row), secret)


async def rekey_secrets(conn: AsyncConnection) -> int:
    """Seal every endpoint's secrets under the newest key of the ring (after a new key was
    put first, before the old one is dropped; also seals secrets stored plain before
    migration 0027). Each row is rewritten only if unchanged since it was read. Returns
    how many endpoints were rewritten."""
    from gateways.account_keys import current_account_keys

    current = current_account_keys().current_id
    c = webhook_endpoints.c
    rows = await conn.execute(sa.select(
        c.id, c.secret, c.secret_key_id, c.previous_secret, c.previous_secret_key_id)
        .where(sa.or_(c.secret_key_id.is_(None), c.secret_key_id != current,
                      sa.and_(c.previous_secret.is_not(None),
                              sa.or_(c.previous_secret_key_id.is_(None),
                                     c.previous_secret_key_id != current)))))
    count = 0
    for r in rows.all():
        values: dict[str, Any] = {}
        values["secret_key_id"], values["secret"] = _seal(
            _unseal(r.secret_key_id, r.secret, r.id), r.id)
        if r.previous_secret is not None:
            values["previous_secret_key_id"], values["previous_secret"] = _seal(
                _unseal(r.previous_secret_key_id, r.previous_secret, r.id), r.id)
        unchanged = (c.previous_secret.is_(None) if r.previous_secret is None
                     else c.previous_secret == r.previous_secret)
        done = await conn.execute(webhook_endpoints.update().where(
            c.id == r.id, c.secret == r.secret, unchanged).values(**values))
        count += done.rowcount
    if count:
        log.info("webhooks.rekeyed", endpoints=count, key_id=current)
    return count


async def list_events(conn: AsyncConnection, audience: str, *, after: int = 0,
                      limit: int = 100) -> list[ledger.OutboxEvent]:
    """The merchant's events after cursor `after` (an event's `seq`), oldest first (none
    for the operator's own audiences: they are no merchant's, whatever its id)."""
    from ledger.outbox import event_from_row

    if audience in ledger.INTERNAL_AUDIENCES:
        return []
    e = ledger.outbox_events
    rows = await conn.execute(sa.select(e).where(e.c.audience == audience, e.c.seq > after)
                              .order_by(e.c.seq).limit(limit))
    return [event_from_row(r) for r in rows]


async def redeliver(conn: AsyncConnection, event_id: str, *, merchant_id: str | None = None,
                    endpoint_id: str | None = None) -> int:
    """Send an event again (to one endpoint, or all its audience's): a delivery that had
    failed or was delivered is pending again, now. Returns how many."""
    e = ledger.outbox_events
    query = sa.select(e).where(e.c.id == event_id)
    if merchant_id is not None:
        query = query.where(e.c.audience == merchant_id)
    event = (await conn.execute(query)).first()
    if event is None or event.seq is None or event.audience in ledger.INTERNAL_AUDIENCES:
        return 0
    endpoints = await _subscribed(conn, event.audience, event.topic)
    count = 0
    now = _utcnow()
    for endpoint_id_ in endpoints:
        if endpoint_id is not None and endpoint_id_ != endpoint_id:
            continue
        done = await conn.execute(webhook_deliveries.update().where(
            webhook_deliveries.c.endpoint_id == endpoint_id_,
            webhook_deliveries.c.event_id == event_id).values(
            status="pending", attempts=0, next_attempt_at=now, locked_until=None))
        if done.rowcount == 0:
            await _add_delivery(conn, endpoint_id_, event.id, event.seq, event.object_type,
                                event.object_id, now)
        count += 1
    return count


async def list_deliveries(conn: AsyncConnection, *, status: str | None = None,
                          endpoint_id: str | None = None, limit: int = 50) -> list[Any]:
    d = webhook_deliveries
    query = sa.select(d).order_by(d.c.id.desc()).limit(limit)
    if status:
        query = query.where(d.c.status == status)
    if endpoint_id:
        query = query.where(d.c.endpoint_id == endpoint_id)
    return list(await conn.execute(query))


# -- signing ------------------------------------------------------------------------------


def sign(body: bytes, secrets_: Sequence[str], timestamp: int) -> str:
    parts = [f"t={timestamp}"]
    for secret in secrets_:
        mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        parts.append(f"v1={mac.hexdigest()}")
    return ",".join(parts)


def verify_signature(header: str, body: bytes, secret: str, *, tolerance: int = 300,
                     now: int | None = None) -> bool:
    """What a merchant's receiver does: any `v1=` matching, `t` within `tolerance`."""
    fields = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in fields if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs((now if now is not None else int(time.time())) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in fields if k == "v1")


def event_body(event: Any) -> bytes:
    return json.dumps({
        "id": event.id, "type": event.topic, "sequence": event.seq,
        "created": event.occurred_at.astimezone(dt.UTC).isoformat(),
        "object_type": event.object_type, "object": event.payload,
    }, separators=(",", ":"), sort_keys=True).encode()


# -- dispatch -----------------------------------------------------------------------------


@dataclass
class DispatchReport:
    sequenced: int = 0
    deliveries_created: int = 0
    sent: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0


async def _subscribed(conn: AsyncConnection, audience: str, topic: str) -> list[str]:
    if audience in ledger.INTERNAL_AUDIENCES:
        return []  # no merchant's endpoint receives the operator's events
    rows = await conn.execute(sa.select(webhook_endpoints.c.id, webhook_endpoints.c.topics)
                              .where(webhook_endpoints.c.merchant_id == audience,
                                     webhook_endpoints.c.status == "enabled"))
    return [r.id for r in rows if _takes(r.topics.split(), topic)]


def _takes(topics: Sequence[str], topic: str) -> bool:
    return any(t == "*" or t == topic or (t.endswith(".*") and topic.startswith(t[:-1]))
               for t in topics)


async def _add_delivery(conn: AsyncConnection, endpoint_id: str, event_id: str, seq: int,
                        object_type: str, object_id: str, now: dt.datetime) -> None:
    await conn.execute(webhook_deliveries.insert().values(
        endpoint_id=endpoint_id, event_id=event_id, event_seq=seq,
        object_key=f"{object_type}:{object_id}"[:160], status="pending", attempts=0,
        next_attempt_at=now, created_at=now))


async def fan_out(conn: AsyncConnection) -> tuple[int, int]:
    """Number new events and create their deliveries, in one transaction."""
    events = await ledger.sequence_events(conn)
    events = await _to_payout_owners(conn, events)
    created = 0
    now = _utcnow()
    cache: dict[tuple[str, str], list[str]] = {}
    for event in events:
        key = (event.audience, event.topic)
        if key not in cache:
            cache[key] = await _subscribed(conn, *key)
        for endpoint_id in cache[key]:
            assert event.seq is not None
            await _add_delivery(conn, endpoint_id, event.id, event.seq, event.object_type,
                                event.object_id, now)
            created += 1
    return len(events), created


async def _to_payout_owners(conn: AsyncConnection,
                            events: list[ledger.OutboxEvent]) -> list[ledger.OutboxEvent]:
    """A payout's events are for the merchant that asked for it through the API
    (api_payout_owners), set before anyone can read them (they were just numbered)."""
    payouts = {e.object_id for e in events
               if e.object_type == "payout" and e.audience in ledger.INTERNAL_AUDIENCES}
    if not payouts:
        return events
    rows = await conn.execute(
        sa.select(api_payout_owners.c.payout_id, api_payout_owners.c.merchant_id)
        .where(api_payout_owners.c.payout_id.in_(payouts)))
    owners: dict[str, str] = {r.payout_id: r.merchant_id for r in rows}
    out = []
    for e in events:
        owner = owners.get(e.object_id) if e.object_type == "payout" else None
        if owner and e.audience in ledger.INTERNAL_AUDIENCES:
            await conn.execute(ledger.outbox_events.update()
                               .where(ledger.outbox_events.c.id == e.id).values(audience=owner))
            e = dataclasses.replace(e, audience=owner)
        out.append(e)
    return out


async def _claim(conn: AsyncConnection, limit: int, hold: dt.timedelta) -> list[Any]:
    d, earlier = webhook_deliveries, webhook_deliveries.alias("earlier")
    now = _utcnow()
    blocked = sa.exists().where(earlier.c.endpoint_id == d.c.endpoint_id,
                                earlier.c.object_key == d.c.object_key,
                                earlier.c.status == "pending",
                                earlier.c.event_seq < d.c.event_seq)
    pick = (sa.select(d.c.id).join(webhook_endpoints, webhook_endpoints.c.id == d.c.endpoint_id)
            .where(d.c.status == "pending", d.c.next_attempt_at <= now,
                   sa.or_(d.c.locked_until.is_(None), d.c.locked_until < now),
                   webhook_endpoints.c.status == "enabled", ~blocked)
            .order_by(d.c.next_attempt_at, d.c.event_seq).limit(limit))
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(of=d, skip_locked=True)
    ids = list((await conn.scalars(pick)).all())
    if not ids:
        return []
    await conn.execute(d.update().where(d.c.id.in_(ids)).values(locked_until=now + hold))
    e = ledger.outbox_events
    rows = await conn.execute(
        sa.select(d.c.id.label("delivery_id"), d.c.attempts, d.c.endpoint_id,
                  webhook_endpoints.c.url, webhook_endpoints.c.secret,
                  webhook_endpoints.c.secret_key_id, webhook_endpoints.c.previous_secret,
                  webhook_endpoints.c.previous_secret_key_id,
                  webhook_endpoints.c.previous_secret_expires_at,
                  e.c.id, e.c.seq, e.c.topic, e.c.object_type, e.c.object_id, e.c.payload,
                  e.c.occurred_at)
        .join(webhook_endpoints, webhook_endpoints.c.id == d.c.endpoint_id)
        .join(e, e.c.id == d.c.event_id).where(d.c.id.in_(ids)).order_by(d.c.event_seq))
    return list(rows)


async def _send(client: httpx.AsyncClient, row: Any,
                settings: WebhookSettings) -> tuple[int | None, str | None]:
    host = urllib.parse.urlsplit(row.url).hostname or ""
    if not settings.allow_private and await _resolves_private(host):
        return None, f"{host} resolves to a loopback or private address: not sent"
    body = event_body(row)
    try:
        secrets_ = [_unseal(row.secret_key_id, row.secret, row.endpoint_id)]
        if row.previous_secret and row.previous_secret_expires_at and \
                row.previous_secret_expires_at > _utcnow():
            secrets_.append(_unseal(row.previous_secret_key_id, row.previous_secret,
                                    row.endpoint_id))
    except Exception as exc:  # a key missing from this worker's ring: retried, and logged
        log.error("webhook.secret_unreadable", endpoint_id=row.endpoint_id, error=str(exc))
        return None, f"the endpoint's secret cannot be unsealed here: {exc}"[:500]
    headers = {"Content-Type": "application/json", "User-Agent": "paycore-webhooks/1",
               "Paycore-Event-Id": row.id, "Paycore-Event-Type": row.topic,
               SIGNATURE_HEADER: sign(body, secrets_, int(time.time()))}
    try:
        answer = await client.post(row.url, content=body, headers=headers,
                                   follow_redirects=False)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= answer.status_code < 300:
        return answer.status_code, None
    return answer.status_code, f"HTTP {answer.status_code}"


async def _record(conn: AsyncConnection, row: Any, code: int | None, error: str | None,
                  settings: WebhookSettings, report: DispatchReport) -> None:
    d = webhook_deliveries
    now = _utcnow()
    attempts = row.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "last_status_code": code,
                              "last_error": error, "locked_until": None}
    if error is None:
        values.update(status="delivered", delivered_at=now)
        report.delivered += 1
    elif attempts > len(settings.backoff):
        values.update(status="failed")
        report.failed += 1
        log.warning("webhook.gave_up", event_id=row.id, endpoint_id=row.endpoint_id,
                    attempts=attempts, error=error)
    else:
        values.update(next_attempt_at=now + dt.timedelta(seconds=settings.backoff[attempts - 1]))
        report.retried += 1
    await conn.execute(d.update().where(d.c.id == row.delivery_id, d.c.status == "pending")
                       .values(**values))


async def dispatch(engine: AsyncEngine, settings: WebhookSettings | None = None, *,
                   client: httpx.AsyncClient | None = None) -> DispatchReport:
    """One round: sequence and fan out new events, then send what is due (at most
    `settings.batch`, `settings.concurrency` at a time)."""
    settings = settings or WebhookSettings.from_env()
    report = DispatchReport()
    async with engine.begin() as conn:
        report.sequenced, report.deliveries_created = await fan_out(conn)
    hold = dt.timedelta(seconds=settings.timeout * 3 + 30)
    async with engine.begin() as conn:
        rows = await _claim(conn, settings.batch, hold)
    if not rows:
        return report
    own = client is None
    client = client or httpx.AsyncClient(timeout=settings.timeout)
    gate = asyncio.Semaphore(settings.concurrency)
    # one object's deliveries to one endpoint go in order, one after another
    lanes: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        lanes.setdefault((row.endpoint_id, f"{row.object_type}:{row.object_id}"), []).append(row)

    async def lane(items: list[Any]) -> None:
        for row in items:
            async with gate:
                code, error = await _send(client, row, settings)
            report.sent += 1
            async with engine.begin() as conn:
                await _record(conn, row, code, error, settings, report)
            if error is not None:
                # the later events of this object wait for this one: release them
                async with engine.begin() as conn:
                    await _release(conn, [r.delivery_id for r in items[items.index(row) + 1:]])
                return

    try:
        await asyncio.gather(*(lane(items) for items in lanes.values()))
    finally:
        if own:
            await client.aclose()
    log.info("webhooks.dispatched", **{k: v for k, v in report.__dict__.items() if v})
    return report


async def _release(conn: AsyncConnection, ids: list[int]) -> None:
    if ids:
        await conn.execute(webhook_deliveries.update().where(webhook_deliveries.c.id.in_(ids))
                           .values(locked_until=None))
