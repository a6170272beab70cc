"""The first look at every request, before any route runs: what can never be valid is
refused here, once for every route, before the body is read or the database is asked.

In order, each refusal a problem+json:
1. a NUL byte in the path or the query string (percent-encoded or not): 422 `nul-byte`
   (PostgreSQL's text cannot hold one, and no identifier or value of ours contains one);
2. a declared body (`Content-Length`) over the route's cap — its own `max_body_size`, else
   `ApiSettings.max_body_bytes`: 413 `body-too-large`, before a byte of it is read;
3. a route that needs an API key: the key is checked (401) and the route's scopes (403)
   *before* the body is read, so an unauthenticated client cannot make the server buffer
   anything, and an idempotent replay is never handed to a key without the route's scope;
4. the body, read up to the cap (a streamed body is cut off past it: 413), then a NUL in it
   — a raw byte, or JSON's `\\u0000` escape anywhere in the document, keys included: 422;
   then a JSON string (value or key, anywhere) holding a lone UTF-16 surrogate escape
   (`\\ud800` without its pair): valid JSON to Python, but no UTF-8 text a database keeps:
   422 `lone-surrogate`.

A request no route takes (an unknown path, or a method the path does not have, OPTIONS
included) has its body left unread: the 404 or 405 needs none, and no client can make the
server buffer anything without a route that takes it.

The body read here is handed on to the layers below, which read it as if from the client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.api.auth import _authorized, principal_of
from paycore.api.problems import NO_REPLAY, ApiProblem, Forbidden, problem_response

#: JSON's escape for U+0000, not itself escaped (preceded by an even number of backslashes)
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")

#: a JSON escape of a UTF-16 surrogate (D800-DFFF): the cheap test before the exact one
_JSON_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


class LoneSurrogate(ApiProblem):
    status, code, replayable = 422, "lone-surrogate", False

    def __init__(self) -> None:
        super().__init__("the body contains a lone UTF-16 surrogate escape (\\ud800-\\udfff "
                         "without its pair), which is no character; send the text as UTF-8 "
                         "or as a complete surrogate pair")


class NulByte(ApiProblem):
    status, code, replayable = 422, "nul-byte", False

    def __init__(self, where: str) -> None:
        super().__init__(f"the {where} contains a NUL byte (U+0000), which no field accepts; "
                         "remove it and send the request again")


class BodyTooLarge(ApiProblem):
    status, code, replayable = 413, "body-too-large", False

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body exceeds {limit} bytes, the most this route takes",
                         limit_bytes=limit)


def _walk(dependant: Dependant) -> Iterable[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _walk(sub)


def required_scopes(route: APIRoute) -> tuple[str, ...] | None:
    """The scopes `route` requires through `auth.requires(...)`; None when it takes no key."""
    found: list[str] | None = None
    for dep in _walk(route.dependant):
        if dep.call is _authorized:
            found = found or []
            for scope in [*(dep.parent_oauth_scopes or ()), *(dep.own_oauth_scopes or ())]:
                if scope not in found:
                    found.append(scope)
    return tuple(found) if found is not None else None


@dataclass(frozen=True)
class RouteGate:
    """What the guard needs to know of one route: where it is, what it takes."""

    path_regex: re.Pattern[str]
    methods: frozenset[str]
    #: None: no API key needed (bank callbacks, the service's own pages)
    scopes: tuple[str, ...] | None
    max_body_size: int | None


def route_gates(routes: Sequence[BaseRoute]) -> list[RouteGate]:
    gates = []
    for context in iter_route_contexts(routes):
        route = context.original_route
        regex = getattr(context, "path_regex", None)
        if regex is None:
            continue
        limit = getattr(context, "max_body_size", None)
        gates.append(RouteGate(
            path_regex=regex, methods=frozenset(context.methods or ()),
            scopes=required_scopes(route) if isinstance(route, APIRoute) else None,
            max_body_size=limit if isinstance(limit, int) else None))
    return gates


def _gate_for(scope: Scope) -> RouteGate | None:
    """The route that takes this request (path and method), without running it."""
    state = scope["app"].state
    gates: list[RouteGate] | None = getattr(state, "paycore_route_gates", None)
    if gates is None:  # built on the first request, when every router has been included
        gates = state.paycore_route_gates = route_gates(scope["app"].router.routes)
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    for gate in gates:
        if scope["method"] in gate.methods and gate.path_regex.match(path):
            return gate
    return None


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                raise ApiProblem("Content-Length is not a number", status=400,
                                 code="bad-content-length") from None
    return None


def _refuse_nul_in_target(scope: Scope) -> None:
    if "\x00" in scope.get("path", "") or b"\x00" in (scope.get("raw_path") or b""):
        raise NulByte("path")
    query: bytes = scope.get("query_string", b"")
    if b"\x00" in query or b"\x00" in unquote_to_bytes(query.replace(b"+", b" ")):
        raise NulByte("query string")


def _refuse_nul_in_body(body: bytes) -> None:
    if b"\x00" in body or _JSON_NUL.search(body):
        raise NulByte("body")


def _is_text(value: object) -> bool:
    """Whether every string in a JSON document (keys included) is text UTF-8 can hold."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_is_text(k) and _is_text(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_text(v) for v in value)
    return True


def _refuse_lone_surrogates(body: bytes) -> None:
    # only a body that escapes a surrogate is decoded here (the route decodes it anyway);
    # a body that is no JSON is left to the route, which says what is wrong with it
    if not _JSON_SURROGATE.search(body):
        return
    try:
        document = json.loads(body)
    except ValueError:
        return
    if not _is_text(document):
        raise LoneSurrogate()


async def read_capped(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class RequestGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._admit(scope, receive)
        except ApiProblem as exc:
            scope[NO_REPLAY] = True
            await problem_response(scope, status=exc.status, code=exc.code, detail=exc.detail,
                                   title=exc.title, headers=exc.headers,
                                   extensions=exc.extensions)(scope, receive, send)
            return
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay_body, send)

    async def _admit(self, scope: Scope, receive: Receive) -> bytes:
        _refuse_nul_in_target(scope)
        gate = _gate_for(scope)
        if gate is None:
            return b""  # no route takes it (404, 405): its body is never read
        limit: int = scope["app"].state.settings.max_body_bytes
        if gate is not None and gate.max_body_size is not None:
            limit = min(limit, gate.max_body_size)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            raise BodyTooLarge(limit)
        if gate is not None and gate.scopes is not None:
            principal = await principal_of(scope)
            for needed in gate.scopes:
                if not principal.can(needed):
                    raise Forbidden(needed, list(principal.scopes))
        body = await read_capped(receive, limit)
        _refuse_nul_in_body(body)
        _refuse_lone_surrogates(body)
        return body
