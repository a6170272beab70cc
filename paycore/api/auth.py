"""Who is calling: `Authorization: Bearer <API key>` -> a `Principal` (merchant + scopes).

In a route: `principal: Annotated[Principal, requires("payments:read")]` authenticates the
request (401 without a live key) and checks the scope (403 without it); every query the
route makes for merchant-owned things must then filter by `principal.merchant_id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Scope

from paycore.api import keys
from paycore.api.oneshot import one_statement
from paycore.api.problems import ApiProblem, Forbidden, Unauthorized

PRINCIPAL = "paycore.principal"

#: declares the scheme in the OpenAPI document; the header is parsed by `principal_of`
bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="A merchant's API key: `Authorization: Bearer pck_...`. "
                                "Each operation lists the scope it needs.")


@dataclass(frozen=True)
class Principal:
    merchant_id: str
    key_id: str
    scopes: tuple[str, ...]
    #: the person behind the key (`paycore apikeys create --holder`), if named
    holder: str | None = None

    @property
    def actor(self) -> str:
        """The identity that acts: `user:<holder>`, else `key:<key id>` (audit, four eyes)."""
        return keys.holder_actor(self.holder) or f"key:{self.key_id}"

    def can(self, scope: str) -> bool:
        return keys.grants(self.scopes, scope)


def _bearer_token(scope: Scope) -> str:
    header = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), None)
    if header is None:
        raise Unauthorized("send an API key: Authorization: Bearer <key>")
    text: str = header.decode("latin-1")
    scheme, _, token = text.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must read: Bearer <key>",
                           error="invalid_request")
    return token.strip()


async def principal_of(scope: Scope) -> Principal:
    """The caller of this request, authenticated once and remembered on the request (the
    idempotency layer needs it before routing, the route's dependency after)."""
    state = scope.setdefault("state", {})
    cached = state.get(PRINCIPAL)
    if isinstance(cached, Principal):
        return cached
    token = _bearer_token(scope)
    state_of_app = scope["app"].state
    ttl: int = state_of_app.settings.key_cache_seconds
    digest = keys.token_digest(token)
    # a key verified in the last `ttl` seconds is trusted without reading its row again
    # (bounded: a revocation elsewhere is seen within `ttl`; see ApiSettings)
    key = keys.VERIFIED.get(digest, ttl)
    if key is None:
        engine: AsyncEngine = state_of_app.engine
        # the key is trusted for `ttl` from before its row is read, not from when the
        # answer arrives (a revocation committed in between is seen within `ttl` of it)
        read_at = keys.clock_ns()
        async with one_statement(engine) as conn:  # one SELECT: no BEGIN/ROLLBACK around it
            key = await keys.authenticate(conn, token)
        if key is not None and ttl > 0:
            keys.VERIFIED.put(digest, key, read_at=read_at)
    if key is None:
        raise Unauthorized("the API key is not valid (unknown, wrong or revoked)",
                           error="invalid_token")
    principal = Principal(key.merchant_id, key.id, key.scopes, key.holder)
    state[PRINCIPAL] = principal
    structlog.contextvars.bind_contextvars(merchant_id=key.merchant_id, key_id=key.id)
    return principal


async def _authorized(
    request: Request, security_scopes: SecurityScopes,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    principal = await principal_of(request.scope)
    for required in security_scopes.scopes:
        if not principal.can(required):
            raise Forbidden(required, list(principal.scopes))
    return principal


def requires(*scopes: str) -> Any:
    """A dependency: the authenticated caller, holding every one of `scopes`."""
    for scope in scopes:
        if scope not in keys.SCOPES:
            raise keys.InvalidScope(f"route requires undeclared scope {scope!r}; "
                                    "declare it with paycore.api.keys.declare_scope")
    return Security(_authorized, scopes=list(scopes))


class KeyWithoutHolder(ApiProblem):
    """Refused before anything could change: the Idempotency-Key stays free."""

    status, code, replayable = 403, "key-without-holder", False


def person(scope: str, act: str) -> Any:
    """A dependency: the caller holding `scope`, whose key names the person behind it.
    Four eyes compare people, so both the maker (who enters account details, who asks for
    a payout) and the checker (who verifies, who approves) must be one: a holder-less key
    acts as `key:<id>`, and one person's holder-less maker key and named checker key
    would pass as two people."""

    # the dependency as a default, not in an Annotated hint: with postponed annotations
    # FastAPI resolves hints in the module's globals, where `scope` is not
    authorized = requires(scope)

    def check(principal: Principal = authorized) -> Principal:
        return require_holder(principal, scope, act)

    return Depends(check)


def require_holder(principal: Principal, scope: str, act: str) -> Principal:
    """`principal`, if its key names the person behind it; else KeyWithoutHolder, saying
    how to issue one (for a route where only some requests are a side of four eyes)."""
    if not principal.holder:
        raise KeyWithoutHolder(
            f"key {principal.key_id} names no holder: {act} is one side of four eyes, "
            "which compare the people behind keys. Issue this person a key that names "
            f"them: paycore apikeys create {principal.merchant_id} --scope {scope} "
            "--holder <their name>", title="A key without a holder")
    return principal
