"""Merchants' API keys: issued once, stored as a digest, checked in constant time.

A key reads `pck_<id>_<secret>`: `id` (16 hex characters) is public and finds the row; the
secret is 256 random bits, of which only the SHA-256 digest is stored. A fast digest is
enough for a secret that cannot be guessed (a slow KDF protects low-entropy passwords), and
`hmac.compare_digest` keeps the comparison constant-time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.schema import api_keys

log = structlog.get_logger("paycore.api.keys")

PREFIX = "pck_"
_KEY = re.compile(r"^pck_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_MERCHANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")

#: every scope a key may hold, with what it allows; `admin` holds them all, and
#: `<domain>:*` every scope of that domain. Every scope a route of `create_app` requires is
#: listed here, not only declared by its router: `paycore apikeys create` imports this
#: module alone (no router), and must grant each of them. A router outside the app may add
#: its own with `declare_scope`.
SCOPES: dict[str, str] = {
    "payments:read": "read payment intents and refunds",
    "payments:write": "create and cancel payment intents",
    "refunds:write": "refund captured payments",
    "payouts:read": "read payouts",
    "payouts:write": "request payouts to suppliers; register suppliers' bank accounts",
    "payouts:approve": "approve or reject payouts another person requested; verify bank "
                       "accounts another person registered",
    "ledger:read": "read the whole books: accounts, balances, statements, entries, proof",
    "ledger:write": "post journal entries through the ledger's coalescing write path "
                    "(internal services)",
    "lending:read": "read credit lines, applications and loans",
    "lending:write": "apply, disburse, extend and repay loans",
    "lending:review": "decide applications in the manual review queue",
    "lending:products": "define, change and retire loan products",
    "reconciliation:read": "read statements, matches, exceptions and reports",
    "reconciliation:write": "import statements, reconcile and resolve exceptions",
    "events:read": "read the merchant's events",
    "webhooks:write": "register, disable and rotate webhook endpoints; redeliver",
    "admin": "everything",
}


class InvalidScope(ValueError):
    pass


class InvalidMerchant(ValueError):
    pass


def declare_scope(name: str, description: str) -> None:
    """A router's own scope (`domain:action`); call at import time."""
    if not re.fullmatch(r"[a-z]+:[a-z_*]+", name):
        raise InvalidScope(f"scope {name!r} is not of the form domain:action")
    SCOPES.setdefault(name, description)


def _domains() -> set[str]:
    return {s.split(":", 1)[0] for s in SCOPES if ":" in s}


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    result: list[str] = []
    for scope in scopes:
        wildcard = scope.endswith(":*") and scope[:-2] in _domains()
        if scope not in SCOPES and not wildcard:
            raise InvalidScope(f"unknown scope {scope!r}; known: {', '.join(sorted(SCOPES))}, "
                               "or <domain>:*")
        if scope not in result:
            result.append(scope)
    if not result:
        raise InvalidScope("a key needs at least one scope")
    return result


def grants(held: Iterable[str], required: str) -> bool:
    """Whether scopes `held` allow `required` (`admin` allows all, `x:*` all of `x:`)."""
    domain = required.split(":", 1)[0]
    return any(s in (required, "admin", f"{domain}:*") for s in held)


@dataclass(frozen=True)
class ApiKey:
    id: str
    merchant_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    #: the person the key belongs to (maker-checker compares people); None: the key alone
    holder: str | None = None

    @property
    def actor(self) -> str:
        """Who acts with this key, as the audit trail and four-eyes checks name them."""
        return holder_actor(self.holder) or f"key:{self.id}"


@dataclass(frozen=True)
class IssuedKey:
    """A new key. `secret` is the whole bearer token; it is shown once and never stored."""

    key: ApiKey
    secret: str


def normal_holder(holder: str) -> str:
    """A key holder's one spelling (trimmed, lower-case, like staff usernames and
    gateways.beneficiaries.normalise_actor): 'Alice' and 'alice' are one person."""
    return holder.strip().casefold()


def holder_actor(holder: str | None) -> str | None:
    """The actor a holder acts as (`user:<holder>`, normalised), None without a holder."""
    return f"user:{normal_holder(holder)}" if holder and holder.strip() else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row(row: sa.Row[tuple[object, ...]]) -> ApiKey:
    m = row._mapping
    return ApiKey(id=m["id"], merchant_id=m["merchant_id"], name=m["name"],
                  scopes=tuple(m["scopes"].split()), created_at=m["created_at"],
                  revoked_at=m["revoked_at"], holder=m["holder"])


async def create_api_key(conn: AsyncConnection, merchant_id: str, scopes: Sequence[str], *,
                         name: str = "", holder: str | None = None) -> IssuedKey:
    if not _MERCHANT.match(merchant_id):
        raise InvalidMerchant(f"merchant id {merchant_id!r} must be 1-64 characters of "
                              "letters, digits and . _ : -, starting with a letter or digit")
    granted = validate_scopes(scopes)
    if holder is not None:
        holder = normal_holder(holder)
    if holder is not None and not _MERCHANT.match(holder):
        raise InvalidMerchant(f"key holder {holder!r} must be 1-64 characters of letters, "
                              "digits and . _ : -")
    key_id = secrets.token_hex(8)
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    now = dt.datetime.now(dt.UTC)
    await conn.execute(api_keys.insert().values(
        id=key_id, merchant_id=merchant_id, name=name, secret_sha256=_digest(token),
        scopes=" ".join(granted), created_at=now, revoked_at=None, holder=holder))
    log.info("api_key.created", key_id=key_id, merchant_id=merchant_id, scopes=granted)
    return IssuedKey(ApiKey(key_id, merchant_id, name, tuple(granted), now, None, holder), token)


async def revoke_api_key(conn: AsyncConnection, key_id: str) -> ApiKey | None:
    VERIFIED.forget_key(key_id)
    await conn.execute(api_keys.update()
                       .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                       .values(revoked_at=dt.datetime.now(dt.UTC)))
    row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
    if row is not None:
        log.info("api_key.revoked", key_id=key_id, merchant_id=row.merchant_id)
    return _row(row) if row is not None else None


async def revoke_holder_keys(conn: AsyncConnection, holder: str) -> list[ApiKey]:
    """Revoke every live key that names `holder` (a staff user being disabled): a person
    who may no longer act takes no key with them — a payouts:approve key in a departed
    approver's hands would otherwise still approve. Other processes' caches forget a
    revoked key within `PAYCORE_API_KEY_CACHE_SECONDS`, as for `revoke_api_key`."""
    who = normal_holder(holder)
    # compared in their normal spelling, as they act (`holder_actor`): keys issued before
    # holders were normalised (2026-12-07) keep the spelling they were typed in
    live = (await conn.execute(sa.select(api_keys.c.id, api_keys.c.holder).where(
        api_keys.c.holder.is_not(None), api_keys.c.revoked_at.is_(None)))).all()
    ids = [row.id for row in live if normal_holder(row.holder) == who]
    if not ids:
        return []
    rows = (await conn.execute(
        api_keys.update()
        .where(api_keys.c.id.in_(ids), api_keys.c.revoked_at.is_(None))
        .values(revoked_at=dt.datetime.now(dt.UTC))
        .returning(*api_keys.c))).all()
    revoked = [_row(row) for row in rows]
    for key in revoked:
        VERIFIED.forget_key(key.id)
        log.info("api_key.revoked", key_id=key.id, merchant_id=key.merchant_id,
                 reason="holder disabled")
    return sorted(revoked, key=lambda key: key.id)


async def list_api_keys(conn: AsyncConnection, merchant_id: str | None = None) -> list[ApiKey]:
    query = sa.select(api_keys).order_by(api_keys.c.merchant_id, api_keys.c.created_at)
    if merchant_id is not None:
        query = query.where(api_keys.c.merchant_id == merchant_id)
    return [_row(r) for r in await conn.execute(query)]


def clock_ns() -> int:
    """The verified-key cache's clock (monotonic, integer nanoseconds)."""
    return time.monotonic_ns()


class VerifiedKeys:
    """The keys this process has verified lately: SHA-256 of the bearer token -> the live
    key, each trusted for at most `ttl_seconds` after its row was read (timed from before
    the read, not from when the answer reached the cache: a revocation that commits while
    the answer is on its way, or while the event loop is busy, is seen `ttl_seconds` after
    it at the latest, as promised), at most
    `max_entries` of them (the least recently used goes first). Only live keys are kept: a
    wrong, unknown or revoked token is read from the database every time, so no miss can
    be cached into a hit. The digest is the map's key, never the token itself."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        #: digest -> (clock_ns() just before the row was read, the key)
        self._found: OrderedDict[str, tuple[int, ApiKey]] = OrderedDict()
        #: ids of keys revoked through this process (the newest `max_entries`): never kept
        #: again, since a request served before the revocation commits still reads the key
        #: live and would otherwise put it back for a whole TTL (a key is never un-revoked;
        #: if the revocation rolls back, the key is only read on every request here)
        self._revoked: OrderedDict[str, None] = OrderedDict()

    def get(self, digest: str, ttl_seconds: int) -> ApiKey | None:
        hit = self._found.get(digest)
        if hit is None:
            return None
        if ttl_seconds <= 0 or clock_ns() - hit[0] >= ttl_seconds * 1_000_000_000:
            del self._found[digest]
            return None
        self._found.move_to_end(digest)
        return hit[1]

    def put(self, digest: str, key: ApiKey, *, read_at: int | None = None) -> None:
        """Keep `key`, read from its row at `read_at` (`clock_ns()` taken before the read
        began; now when not given)."""
        if key.id in self._revoked:
            return
        self._found[digest] = (clock_ns() if read_at is None else read_at, key)
        self._found.move_to_end(digest)
        while len(self._found) > self.max_entries:
            self._found.popitem(last=False)

    def forget_key(self, key_id: str) -> None:
        self._revoked[key_id] = None
        self._revoked.move_to_end(key_id)
        while len(self._revoked) > self.max_entries:
            self._revoked.popitem(last=False)
        for digest in [d for d, (_, k) in self._found.items() if k.id == key_id]:
            del self._found[digest]

    def clear(self) -> None:
        self._found.clear()
        self._revoked.clear()


#: this process's verified keys (`authenticate_cached`)
VERIFIED = VerifiedKeys()


def token_digest(token: str) -> str:
    return _digest(token)


#: compared against when the key id is unknown, so a miss costs what a hit costs
_DUMMY_DIGEST = _digest("pck_0000000000000000_" + "A" * 43)


async def authenticate(conn: AsyncConnection, token: str) -> ApiKey | None:
    """The live key this bearer token is, or None (malformed, unknown, wrong, revoked)."""
    match = _KEY.match(token)
    row = None
    if match:
        row = (await conn.execute(_BY_ID, {"key_id": match.group(1)})).first()
    stored = row.secret_sha256 if row is not None else _DUMMY_DIGEST
    if not hmac.compare_digest(stored, _digest(token)) or row is None:
        return None
    if row.revoked_at is not None:
        return None
    return _row(row)


_BY_ID = sa.select(api_keys).where(api_keys.c.id == sa.bindparam("key_id"))
