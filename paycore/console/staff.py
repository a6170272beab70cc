"""Staff users of the console: who they are, their role, their password (argon2id), the
lock-out that repeated failures earn, and their sessions. Merchants' API keys are another
world: nothing here accepts one.

Functions take the caller's connection, like every writer in paycore.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.api import keys
from paycore.api.keys import ApiKey
from paycore.schema import staff_sessions, staff_users

#: failures in a row that lock an account, and for how long
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
SESSION_LIFETIME = dt.timedelta(hours=8)
MIN_PASSWORD_LENGTH = 12

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_hasher = PasswordHasher()  # argon2id with the library's maintained defaults


# argon2id costs ~0.1-0.4 s of CPU by design: in a worker thread (argon2-cffi releases the
# GIL), so a sign-in does not stall every other request on the server's event loop
async def _hash(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(stored: str, password: str) -> None:
    await asyncio.to_thread(_hasher.verify, stored, password)


class Role(enum.StrEnum):
    RISK = "risk"
    FINANCE = "finance"
    PAYMENTS = "payments"
    CONTROLLER = "controller"
    VIEWER = "viewer"


#: which roles may act in which area: on the console's pages and by the command line's
#: `--as` (paycore.commands.actor); every staff role may read every page
ACTORS: dict[str, frozenset[Role]] = {
    "risk": frozenset({Role.RISK}),
    "finance": frozenset({Role.FINANCE, Role.CONTROLLER}),
    "payments": frozenset({Role.PAYMENTS}),
}


#: sign-ins checked at once by one process (`sign_in_slot`): each holds a database
#: connection, in a transaction, for its argon2 work (~0.4 s of CPU, longer while it
#: waits for a worker thread), so an unthrottled flood of sign-in forms took every
#: connection of the pool the API shares and payments waited on the pool behind them
MAX_SIGN_INS_AT_ONCE = 4
_signing_in = 0


class StaffError(Exception):
    """A staff-user operation that cannot be done; the message says why."""


class TooManySignIns(StaffError):
    """More sign-ins at once than this process checks (MAX_SIGN_INS_AT_ONCE): refused
    before any database connection is taken or any password hashed; try again shortly."""

    def __init__(self) -> None:
        super().__init__("too many sign-ins are being checked at this moment: try again in "
                         "a few seconds")


@contextlib.contextmanager
def sign_in_slot() -> Iterator[None]:
    """One of this process's MAX_SIGN_INS_AT_ONCE places for checking a sign-in, taken
    before the sign-in's transaction begins; TooManySignIns when none is free (no
    waiting: a waiter would only queue where the flood queues)."""
    global _signing_in
    if _signing_in >= MAX_SIGN_INS_AT_ONCE:
        raise TooManySignIns()
    _signing_in += 1
    try:
        yield
    finally:
        _signing_in -= 1


class LoginRefused(StaffError):
    """Wrong name or password, a disabled user, or a locked one. The message shown to the
    person never says which (it would tell an attacker which names exist)."""

    def __init__(self, why: str) -> None:
        super().__init__("the name or password is wrong, or the account is locked or disabled")
        self.why = why


@dataclass(frozen=True)
class StaffUser:
    username: str
    full_name: str
    role: Role
    status: str
    failed_logins: int
    locked_until: dt.datetime | None
    must_change_password: bool
    last_login_at: dt.datetime | None

    @property
    def actor(self) -> str:
        """The actor string domain functions record and compare (four eyes)."""
        return f"user:{self.username}"


@dataclass(frozen=True)
class Session:
    user: StaffUser
    csrf_token: str
    expires_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _user(row: sa.Row[object]) -> StaffUser:
    r = row._mapping
    return StaffUser(r["username"], r["full_name"], Role(r["role"]), r["status"],
                     r["failed_logins"], r["locked_until"], bool(r["must_change_password"]),
                     r["last_login_at"])


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def get_user(conn: AsyncConnection, username: str, *,
                   hold: bool = False) -> StaffUser | None:
    """The user; `hold`: with their row locked until the transaction ends (FOR SHARE), so
    that what is decided on their status (a key issued to them) commits before a disable
    that would otherwise miss it, or waits for that disable and sees it."""
    query = sa.select(staff_users).where(staff_users.c.username == username)
    if hold:
        query = query.with_for_update(read=True)
    row = (await conn.execute(query)).first()
    return None if row is None else _user(row)


async def list_users(conn: AsyncConnection) -> list[StaffUser]:
    rows = await conn.execute(sa.select(staff_users).order_by(staff_users.c.username))
    return [_user(r) for r in rows]


async def add_user(conn: AsyncConnection, username: str, role: Role | str, password: str, *,
                   full_name: str = "", now: dt.datetime | None = None) -> StaffUser:
    if not _USERNAME.match(username):
        raise StaffError("a username is 2-64 lower-case letters, digits, '.', '_' or '-'")
    try:
        role = Role(role)
    except ValueError:
        raise StaffError(f"role must be one of {', '.join(r.value for r in Role)}") from None
    check_password(password)
    if await get_user(conn, username) is not None:
        raise StaffError(f"staff user {username} exists already")
    now = now or _now()
    await conn.execute(staff_users.insert().values(
        username=username, full_name=full_name or username, role=role.value,
        password_hash=await _hash(password), status="active", failed_logins=0,
        locked_until=None, must_change_password=False, created_at=now, updated_at=now))
    user = await get_user(conn, username)
    assert user is not None
    return user


async def _require(conn: AsyncConnection, username: str) -> StaffUser:
    user = await get_user(conn, username)
    if user is None:
        raise StaffError(f"no staff user {username}")
    return user


@dataclass(frozen=True)
class Disabled:
    user: StaffUser
    #: the API keys that named the user as their holder, revoked with them
    revoked_keys: tuple[ApiKey, ...]


async def disable_user(conn: AsyncConnection, username: str) -> Disabled:
    """Disabled at once: their sessions end, and every live API key that names them as its
    holder is revoked in the same transaction (re-enabling them does not bring a key
    back: issue a new one)."""
    await _require(conn, username)
    now = _now()
    await conn.execute(staff_users.update().where(staff_users.c.username == username)
                       .values(status="disabled", updated_at=now))
    await conn.execute(staff_sessions.update().where(
        staff_sessions.c.username == username, staff_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now))
    revoked = await keys.revoke_holder_keys(conn, username)
    return Disabled(await _require(conn, username), tuple(revoked))


async def reset_password(conn: AsyncConnection, username: str, password: str, *,
                         enable: bool = True) -> StaffUser:
    """A new password (and the lock-out lifted); the user's sessions end."""
    await _require(conn, username)
    check_password(password)
    now = _now()
    values: dict[str, object] = {"password_hash": await _hash(password), "failed_logins": 0,
                                 "locked_until": None, "updated_at": now}
    if enable:
        values["status"] = "active"
    await conn.execute(staff_users.update().where(staff_users.c.username == username)
                       .values(**values))
    await conn.execute(staff_sessions.update().where(
        staff_sessions.c.username == username, staff_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now))
    return await _require(conn, username)


async def authenticate(conn: AsyncConnection, username: str, password: str, *,
                       now: dt.datetime | None = None) -> StaffUser:
    """The user, if the password is right and the account active and not locked. Every
    failure counts; the MAX_FAILED_LOGINS-th in a row locks the account for LOCKOUT. A
    locked account is refused even with the right password (no oracle for guessing)."""
    now = now or _now()
    row = (await conn.execute(sa.select(staff_users).where(
        staff_users.c.username == username).with_for_update())).first()
    if row is None:
        await _hash(password)  # the same work as a real check: no timing oracle for names
        raise LoginRefused("unknown user")
    user = _user(row)
    if user.status != "active" or (user.locked_until is not None and user.locked_until > now):
        # the same work again: a quick refusal would tell that this name exists
        await _hash(password)
        raise LoginRefused("disabled" if user.status != "active" else "locked")
    try:
        await _verify(row._mapping["password_hash"], password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        failures = user.failed_logins + 1
        locked = now + LOCKOUT if failures >= MAX_FAILED_LOGINS else None
        await conn.execute(staff_users.update().where(staff_users.c.username == username)
                           .values(failed_logins=0 if locked else failures,
                                   locked_until=locked, updated_at=now))
        raise LoginRefused("locked now" if locked else "wrong password") from None
    values: dict[str, object] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
    if _hasher.check_needs_rehash(row._mapping["password_hash"]):
        values["password_hash"] = await _hash(password)
    await conn.execute(staff_users.update().where(staff_users.c.username == username)
                       .values(**values))
    return await _require(conn, username)


async def open_session(conn: AsyncConnection, user: StaffUser, *,
                       now: dt.datetime | None = None) -> tuple[str, Session]:
    """A new session: the token for the cookie (never stored) and the session."""
    now = now or _now()
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = now + SESSION_LIFETIME
    await conn.execute(staff_sessions.insert().values(
        token_sha256=digest(token), username=user.username, csrf_token=csrf, created_at=now,
        expires_at=expires, revoked_at=None))
    return token, Session(user, csrf, expires)


async def load_session(conn: AsyncConnection, token: str, *,
                       now: dt.datetime | None = None) -> Session | None:
    """The live session of an active user for this cookie token, else None."""
    now = now or _now()
    row = (await conn.execute(
        sa.select(staff_sessions.c.csrf_token, staff_sessions.c.expires_at, staff_users)
        .join(staff_users, staff_users.c.username == staff_sessions.c.username)
        .where(staff_sessions.c.token_sha256 == digest(token),
               staff_sessions.c.revoked_at.is_(None), staff_sessions.c.expires_at > now,
               staff_users.c.status == "active"))).first()
    if row is None:
        return None
    return Session(_user(row), row.csrf_token, row.expires_at)


async def close_session(conn: AsyncConnection, token: str) -> None:
    await conn.execute(staff_sessions.update().where(
        staff_sessions.c.token_sha256 == digest(token), staff_sessions.c.revoked_at.is_(None))
        .values(revoked_at=_now()))
