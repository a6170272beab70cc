"""Staff users (#19): `paycore staff add|disable|reset|list` on an SQLite file, and the
rules under them on both databases — argon2id hashes, lock-out after repeated failures,
disabling ends sessions, a reset lifts the lock."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from paycore.cli import app
from paycore.console import staff
from paycore.schema import staff_users

runner = CliRunner()
GOOD = "a long enough passphrase"


def test_staff_commands(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PAYCORE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/staff.sqlite")
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    added = runner.invoke(app, ["staff", "add", "li.wei", "--role", "finance", "--name", "Li Wei"],
                          env={"PAYCORE_STAFF_PASSWORD": GOOD})
    assert added.exit_code == 0, added.output
    assert "li.wei (finance) added" in added.output and GOOD not in added.output
    bad_role = runner.invoke(app, ["staff", "add", "x.y", "--role", "admin"],
                             env={"PAYCORE_STAFF_PASSWORD": GOOD})
    assert bad_role.exit_code == 2 and "role must be one of" in bad_role.output
    short = runner.invoke(app, ["staff", "add", "x.y", "--role", "viewer"],
                          env={"PAYCORE_STAFF_PASSWORD": "short"})
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    assert runner.invoke(app, ["staff", "disable", "li.wei"]).exit_code == 0
    listed = runner.invoke(app, ["staff", "list"])
    assert "li.wei" in listed.output and "disabled" in listed.output
    reset = runner.invoke(app, ["staff", "reset", "li.wei"],
                          env={"PAYCORE_STAFF_PASSWORD": GOOD + "!"})
    assert reset.exit_code == 0 and "lock-out lifted" in reset.output
    assert "active" in runner.invoke(app, ["staff", "list"]).output
    assert runner.invoke(app, ["staff", "disable", "nobody"]).exit_code == 2


async def test_passwords_hashed_lockout_sessions(db: AsyncEngine) -> None:
    async with db.begin() as conn:
        await staff.add_user(conn, "wang.fang", "risk", GOOD)
        stored = await conn.scalar(sa.select(staff_users.c.password_hash))
    assert stored.startswith("$argon2id$") and GOOD not in stored
    now = dt.datetime.now(dt.UTC)
    # each failure counts (committed with its refusal, as the sign-in route does)
    async with db.begin() as conn:
        for _ in range(staff.MAX_FAILED_LOGINS):
            with contextlib.suppress(staff.LoginRefused):
                await staff.authenticate(conn, "wang.fang", "not the password", now=now)
    async with db.begin() as conn:
        with pytest.raises(staff.LoginRefused) as refused:
            await staff.authenticate(conn, "wang.fang", GOOD, now=now)
        assert refused.value.why == "locked"
        # after the lock-out has run out, the right password works again
        user = await staff.authenticate(conn, "wang.fang", GOOD,
                                        now=now + staff.LOCKOUT + dt.timedelta(seconds=1))
        token, _session = await staff.open_session(conn, user)
        assert (await staff.load_session(conn, token)).user.username == "wang.fang"
        await staff.disable_user(conn, "wang.fang")
        assert await staff.load_session(conn, token) is None
        with pytest.raises(staff.LoginRefused):
            await staff.authenticate(conn, "wang.fang", GOOD)
        await staff.reset_password(conn, "wang.fang", GOOD + "2")
        assert (await staff.authenticate(conn, "wang.fang", GOOD + "2")).status == "active"
        assert await staff.load_session(conn, "not-a-token") is None


@pytest.mark.production_password_hashing
async def test_production_parameters_and_a_cheaper_hash_upgraded_at_sign_in(
        db: AsyncEngine) -> None:
    # the other tests hash with argon2's cheapest parameters (tests/conftest.py): here the
    # production hasher stores its own, and a hash made with other parameters (a user
    # added before the parameters rose) is replaced by one with them at the next sign-in
    from argon2 import PasswordHasher, profiles

    production = PasswordHasher()
    async with db.begin() as conn:
        await staff.add_user(conn, "wang.fang", "risk", GOOD)
        stored = await conn.scalar(sa.select(staff_users.c.password_hash))
        assert f"$m={production.memory_cost},t={production.time_cost}," \
               f"p={production.parallelism}$" in stored
        cheap = PasswordHasher.from_parameters(profiles.CHEAPEST).hash(GOOD)
        await conn.execute(staff_users.update().values(password_hash=cheap))
        await staff.authenticate(conn, "wang.fang", GOOD)
        upgraded = await conn.scalar(sa.select(staff_users.c.password_hash))
    assert upgraded != cheap and not production.check_needs_rehash(upgraded)
    production.verify(upgraded, GOOD)


async def test_every_refused_sign_in_does_the_hashing_work(db: AsyncEngine,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # an unknown, a disabled and a locked name are refused after the same argon2 work as
    # a wrong password: a refusal that came back sooner would tell which names exist
    calls: list[str] = []
    hasher = staff._hasher

    class Counting:
        def hash(self, password: str) -> str:
            calls.append("hash")
            return hasher.hash(password)

        def verify(self, stored: str, password: str) -> bool:
            calls.append("verify")
            return hasher.verify(stored, password)

        def check_needs_rehash(self, stored: str) -> bool:
            return hasher.check_needs_rehash(stored)

    async with db.begin() as conn:
        await staff.add_user(conn, "wang.fang", "risk", GOOD)
        await staff.add_user(conn, "gone.user", "risk", GOOD)
        await staff.disable_user(conn, "gone.user")
    monkeypatch.setattr(staff, "_hasher", Counting())
    now = dt.datetime.now(dt.UTC)
    for name, password, why in (("no.such", GOOD, "unknown user"),
                                ("gone.user", GOOD, "disabled"),
                                ("wang.fang", "wrong password!", "wrong password")):
        calls.clear()
        async with db.begin() as conn:
            with pytest.raises(staff.LoginRefused) as refused:
                await staff.authenticate(conn, name, password, now=now)
        assert refused.value.why == why and len(calls) == 1, (name, calls)
    async with db.begin() as conn:
        for _ in range(staff.MAX_FAILED_LOGINS - 1):
            with contextlib.suppress(staff.LoginRefused):
                await staff.authenticate(conn, "wang.fang", "wrong password!", now=now)
    calls.clear()
    async with db.begin() as conn:
        with pytest.raises(staff.LoginRefused) as refused:
            await staff.authenticate(conn, "wang.fang", GOOD, now=now)
    assert refused.value.why == "locked" and calls == ["hash"]


async def test_disabling_a_user_revokes_the_api_keys_that_name_them(db: AsyncEngine) -> None:
    # a departed approver's payouts:approve key must stop approving with their account
    from paycore.api import keys

    async with db.begin() as conn:
        await staff.add_user(conn, "chen.jie", "payments", GOOD)
        await staff.add_user(conn, "zhao.min", "payments", GOOD)
        theirs = await keys.create_api_key(conn, "m1", ["payouts:approve"], holder="Chen.Jie")
        also_theirs = await keys.create_api_key(conn, "m2", ["payouts:write"], holder="chen.jie")
        other = await keys.create_api_key(conn, "m1", ["payouts:approve"], holder="zhao.min")
        unnamed = await keys.create_api_key(conn, "m1", ["payments:read"])
        assert await keys.authenticate(conn, theirs.secret) is not None
    async with db.begin() as conn:
        disabled = await staff.disable_user(conn, "chen.jie")
    assert disabled.user.status == "disabled"
    assert sorted(k.id for k in disabled.revoked_keys) == sorted(
        [theirs.key.id, also_theirs.key.id])
    assert all(k.revoked_at is not None for k in disabled.revoked_keys)
    async with db.connect() as conn:
        assert await keys.authenticate(conn, theirs.secret) is None
        assert await keys.authenticate(conn, also_theirs.secret) is None
        assert (await keys.authenticate(conn, other.secret)).holder == "zhao.min"
        assert await keys.authenticate(conn, unnamed.secret) is not None
    # enabled again, they sign in again, but a revoked key stays revoked
    async with db.begin() as conn:
        await staff.reset_password(conn, "chen.jie", GOOD + "3")
        assert await keys.authenticate(conn, theirs.secret) is None
        assert (await staff.disable_user(conn, "zhao.min")).revoked_keys[0].id == other.key.id
