"""`Idempotency-Key` on every POST: a retry gets the first response back, byte for byte.

The record of a key (per merchant, in `api_idempotency_records`) is claimed before the
request runs and holds the hash of the request (method, path and query, body bytes):
- same key, same request, finished  -> the stored response, with `Idempotent-Replayed: true`;
- same key, another request         -> 409 `idempotency-key-reused`, naming the key;
- same key while the first still runs -> 409 `idempotency-request-in-progress` (the primary
  key decides which of two concurrent duplicates runs; the other is told to retry);
- a claim older than `idempotency_lock_seconds` (a crashed server) may be taken over.

The response is stored *before* it is sent, so a client that has seen it always gets it
again. What is not stored (the key stays free for a corrected retry): refusals made before
the route could change anything (authentication, scope, validation, unknown route — their
handlers set `problems.NO_REPLAY`) and 5xx answers or crashes (nothing committed, or the
outcome is unknown and the domain's own idempotency key, `deps.DomainIdempotencyKey`,
guards the retry).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.api.auth import principal_of
from paycore.api.oneshot import one_statement
from paycore.api.problems import NO_REPLAY, ApiProblem, problem_response
from paycore.schema import idempotency_records as records

log = structlog.get_logger("paycore.api.idempotency")

IDEMPOTENCY_KEY = "paycore.idempotency_key"
HEADER = b"idempotency-key"
_NOT_REPLAYED = {b"content-length", b"date", b"server", b"x-request-id", b"set-cookie"}


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"
    REPLAY = "replay"
    CONFLICT = "conflict"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    #: the claim's own lock time, which completing or releasing it must match
    locked_at: dt.datetime | None = None
    response: StoredResponse | None = None


def request_hash(method: str, path: str, query: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


#: the two statements of every POST, built once (their values bound per request)
_CLAIM = records.insert()
_COMPLETE = (records.update()
             .where(records.c.merchant_id == sa.bindparam("b_merchant_id"),
                    records.c.idempotency_key == sa.bindparam("b_key"),
                    records.c.state == "in_progress",
                    records.c.locked_at == sa.bindparam("b_locked_at"))
             .values(state="completed"))


def _key_of(merchant_id: str, key: str) -> sa.ColumnElement[bool]:
    return sa.and_(records.c.merchant_id == merchant_id, records.c.idempotency_key == key)


async def claim(engine: AsyncEngine, merchant_id: str, key: str, fingerprint: str, *,
                method: str, path: str, lock_seconds: int) -> Claim:
    for _ in range(5):
        now = _now()
        try:
            async with one_statement(engine) as conn:  # the INSERT commits on its own
                await conn.execute(_CLAIM, {
                    "merchant_id": merchant_id, "idempotency_key": key,
                    "request_hash": fingerprint, "method": method, "path": path[:2000],
                    "state": "in_progress", "created_at": now, "locked_at": now})
            return Claim(ClaimOutcome.CLAIMED, locked_at=now)
        except sa.exc.IntegrityError:
            pass
        async with engine.begin() as conn:
            row = (await conn.execute(sa.select(records).where(_key_of(merchant_id, key)))).first()
            if row is None:  # released between our insert and this read: try again
                continue
            if row.request_hash != fingerprint:
                return Claim(ClaimOutcome.CONFLICT)
            if row.state == "completed":
                return Claim(ClaimOutcome.REPLAY, response=StoredResponse(
                    row.response_status, [(str(n), str(v)) for n, v in row.response_headers],
                    bytes(row.response_body)))
            if now - row.locked_at < dt.timedelta(seconds=lock_seconds):
                return Claim(ClaimOutcome.IN_PROGRESS)
            taken = await conn.execute(
                records.update()
                .where(_key_of(merchant_id, key), records.c.state == "in_progress",
                       records.c.locked_at == row.locked_at)
                .values(locked_at=now))
            if taken.rowcount == 1:
                log.warning("idempotency.stale_claim_taken_over", idempotency_key=key,
                            claimed_at=row.locked_at.isoformat())
                return Claim(ClaimOutcome.CLAIMED, locked_at=now)
    return Claim(ClaimOutcome.IN_PROGRESS)


async def complete(engine: AsyncEngine, merchant_id: str, key: str, locked_at: dt.datetime,
                   response: StoredResponse) -> None:
    async with one_statement(engine) as conn:  # durable before the response is sent
        await conn.execute(_COMPLETE, {
            "b_merchant_id": merchant_id, "b_key": key, "b_locked_at": locked_at,
            "completed_at": _now(), "response_status": response.status,
            "response_headers": [list(h) for h in response.headers],
            "response_body": response.body})


async def release(engine: AsyncEngine, merchant_id: str, key: str, locked_at: dt.datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(records.delete().where(
            _key_of(merchant_id, key), records.c.state == "in_progress",
            records.c.locked_at == locked_at))


async def purge(engine: AsyncEngine, older_than: dt.datetime) -> int:
    """Forget finished records created before `older_than` (keys are kept for a retry
    window, not forever)."""
    async with engine.begin() as conn:
        result = await conn.execute(records.delete().where(
            records.c.state == "completed", records.c.created_at < older_than))
    return int(result.rowcount)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return str(v.decode("latin-1"))
    return None


def _parse_key(raw: str) -> str:
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':  # the IETF draft's sf-string form
        key = key[1:-1]
    if not 1 <= len(key) <= 255 or not all("!" <= c <= "~" for c in key):
        raise ApiProblem("the Idempotency-Key must be 1 to 255 visible ASCII characters",
                         code="idempotency-key-invalid")
    return key


def _routed(scope: Scope) -> bool:
    """Whether a route takes this POST (path and method), without running it."""
    return any(route.matches(scope)[0] is Match.FULL for route in scope["app"].router.routes)


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class IdempotencyMiddleware:
    """Applies to every POST except paths under `exempt_prefixes` (bank callbacks, which
    are authenticated and de-duplicated by the bank's own protocol)."""

    def __init__(self, app: ASGIApp, exempt_prefixes: Sequence[str] = ()) -> None:
        self.app = app
        self.exempt_prefixes = tuple(exempt_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"].startswith(self.exempt_prefixes) or not _routed(scope)):
            # no POST route here: the router answers 404 or 405, no key needed
            await self.app(scope, receive, send)
            return
        try:
            principal = await principal_of(scope)
            raw_key = _header(scope, HEADER)
            if raw_key is None:
                raise ApiProblem("every POST needs an Idempotency-Key header (a unique value "
                                 "per operation, e.g. a UUID; reuse it only to retry)",
                                 code="idempotency-key-missing")
            key = _parse_key(raw_key)
            settings = scope["app"].state.settings
            try:
                body = await _read_body(receive, settings.max_body_bytes)
            except _TooLarge:
                raise ApiProblem(f"the body exceeds {settings.max_body_bytes} bytes",
                                 status=413, code="body-too-large") from None
        except ApiProblem as exc:
            response = problem_response(scope, status=exc.status, code=exc.code,
                                        detail=exc.detail, title=exc.title,
                                        headers=exc.headers, extensions=exc.extensions)
            await response(scope, receive, send)
            return
        await self._run_once(scope, receive, send, principal.merchant_id, key, body)

    async def _run_once(self, scope: Scope, receive: Receive, send: Send, merchant_id: str,
                        key: str, body: bytes) -> None:
        engine: AsyncEngine = scope["app"].state.engine
        settings = scope["app"].state.settings
        fingerprint = request_hash(scope["method"], scope["path"], scope.get("query_string", b""),
                                   body)
        got = await claim(engine, merchant_id, key, fingerprint, method=scope["method"],
                          path=scope["path"], lock_seconds=settings.idempotency_lock_seconds)
        if got.outcome is ClaimOutcome.CONFLICT:
            log.info("idempotency.conflict", idempotency_key=key)
            await problem_response(
                scope, status=409, code="idempotency-key-reused",
                detail=f"Idempotency-Key {key!r} was already used for a different request; "
                       "use a new key for a new request",
                extensions={"idempotency_key": key})(scope, receive, send)
            return
        if got.outcome is ClaimOutcome.IN_PROGRESS:
            await problem_response(
                scope, status=409, code="idempotency-request-in-progress",
                detail=f"a request with Idempotency-Key {key!r} is still being processed; "
                       "retry shortly to get its response",
                headers={"Retry-After": "1"},
                extensions={"idempotency_key": key})(scope, receive, send)
            return
        if got.outcome is ClaimOutcome.REPLAY:
            assert got.response is not None
            log.info("idempotency.replay", idempotency_key=key, status=got.response.status)
            headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in got.response.headers]
            headers += [(b"content-length", str(len(got.response.body)).encode()),
                        (b"idempotent-replayed", b"true")]
            await send({"type": "http.response.start", "status": got.response.status,
                        "headers": headers})
            await send({"type": "http.response.body", "body": got.response.body})
            return
        assert got.locked_at is not None
        await self._run_and_store(scope, receive, send, merchant_id, key, body, got.locked_at)

    async def _run_and_store(self, scope: Scope, receive: Receive, send: Send, merchant_id: str,
                             key: str, body: bytes, locked_at: dt.datetime) -> None:
        engine: AsyncEngine = scope["app"].state.engine
        scope.setdefault("state", {})[IDEMPOTENCY_KEY] = key
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        start: Message | None = None
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, replay_body, hold)
        except BaseException:
            await asyncio.shield(release(engine, merchant_id, key, locked_at))
            raise
        if start is None:
            await asyncio.shield(release(engine, merchant_id, key, locked_at))
            raise RuntimeError("the route sent no response")
        status = int(start["status"])
        content = b"".join(chunks)
        if scope.get(NO_REPLAY) or status >= 500:
            await release(engine, merchant_id, key, locked_at)
        else:
            headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in start["headers"]
                       if n.lower() not in _NOT_REPLAYED]
            try:
                await complete(engine, merchant_id, key, locked_at,
                               StoredResponse(status, headers, content))
            except Exception:
                # the work is done and its answer goes out; the claim stays until it is stale,
                # and the domain's own idempotency key guards a retry after that
                log.exception("idempotency.store_failed", idempotency_key=key)
        await send(start)
        await send({"type": "http.response.body", "body": content})
