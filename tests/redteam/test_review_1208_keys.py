"""Red team (review of 5a2b0b6, 2026-12-08): `paycore staff disable NAME` revokes every live
API key whose holder is NAME (`keys.revoke_holder_keys`). Promise: the keys stop
authorising at once in this process, holders matched by their normal spelling (trim +
casefold), other holders' keys untouched, re-enabling brings no key back. Attacked: keys
issued before holders were normalised, the API's verified-key cache, the CLI issuing a key
to a user being disabled. Tests that exposed a bug say so in their docstring; each was fixed and passes.
SQLite and PostgreSQL unless a test says otherwise."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

import gateways
from paycore import db as paycore_db
from paycore.api import keys
from paycore.console import staff
from paycore.schema import api_keys, api_payout_owners
from paycore.supplier_bindings import bind_supplier
from tests.api.conftest import bearer
from tests.conftest import url_of
from tests.gateways.core_helpers import cny as gateways_cny
from tests.gateways.core_helpers import open_payable

NUMBER = "6222020200112233445"
PASSWORD = "a-long-staff-passphrase"
#: payouts asked through the API wait for a second person; cooling-off off
CONTROLS = gateways.PayoutControls(cooling_off=dt.timedelta(0),
                                   approval_above={"CNY": 1_000_000})


async def _issue(db: AsyncEngine, holder: str, *scopes: str) -> keys.IssuedKey:
    async with db.begin() as conn:
        return await keys.create_api_key(conn, "m1", scopes, holder=holder)


async def _pending_payout(db: AsyncEngine, app: FastAPI, api: httpx.AsyncClient) -> str:
    """carol (maker) registers an account, bob verifies it, carol asks for a payout: it
    waits for a second person's approval. Returns the approve path."""
    async with db.begin() as conn:
        for name in ("carol", "bob", "alice"):
            await staff.add_user(conn, name, "payments", PASSWORD)
        await open_payable(conn, "sup-1", funded="500.00")
        await bind_supplier(conn, "m1", "sup-1", actor="user:ops")
    carol = (await _issue(db, "carol", "payouts:read", "payouts:write")).secret
    bob = (await _issue(db, "bob", "payouts:approve")).secret
    r = await api.post("/v1/suppliers/sup-1/bank-accounts",
                       json={"holder_name": "Hangzhou Mugs Co.", "account_number": NUMBER},
                       headers=bearer(carol) | {"Idempotency-Key": "acct-1"})
    assert r.status_code == 201, r.text
    account = r.json()["id"]
    r = await api.post(f"/v1/suppliers/sup-1/bank-accounts/{account}/verify",
                       headers=bearer(bob) | {"Idempotency-Key": "v-1"})
    assert r.status_code == 200, r.text
    app.state.payout_controls = CONTROLS
    # carol's payout, recorded as POST /v1/payouts records it (that route needs banks
    # configured; approving one does not)
    async with db.begin() as conn:
        await gateways.request_supplier_payout(conn, gateways.SupplierPayoutRequest(
            payout_id="po-1", supplier_id="sup-1", account_id=account,
            amount=gateways_cny("150.00"), requested_by="user:carol", manual=True,
            purpose="settlement"), CONTROLS)
        await conn.execute(api_payout_owners.insert().values(
            payout_id="po-1", merchant_id="m1", created_at=dt.datetime.now(dt.UTC)))
    r = await api.get("/v1/payouts/po-1", headers=bearer(carol))
    assert r.status_code == 200 and r.json()["status"] == "pending_approval", r.text
    return "/v1/payouts/po-1/approve"


async def test_a_key_issued_before_holders_were_normalised_survives_disable(db, app, api):
    """Fixed since (found by this review; the test failed before the fix):
    until ab050d9 (2026-12-07) `create_api_key` stored the holder as typed
    (89d4b69: `--holder Alice` stored 'Alice'), and no migration normalised the rows
    already issued. Such a key still acts as `user:alice` (`holder_actor` normalises
    when acting), so it is alice's key to four eyes. `revoke_holder_keys` normalises only
    its argument and compares it with the stored column as is
    (`api_keys.holder == 'alice'`), so disabling alice leaves that key live: her
    payouts:approve key still approves a payout after she is disabled, the very hole
    5a2b0b6 set out to close. (Reproduced by writing the holder as an older paycore
    stored it.)"""
    approve = await _pending_payout(db, app, api)
    issued = await _issue(db, "alice", "payouts:read", "payouts:approve")
    async with db.begin() as conn:  # the row as paycore stored it before 2026-12-07
        await conn.execute(api_keys.update().where(api_keys.c.id == issued.key.id)
                           .values(holder="Alice"))
    async with db.begin() as conn:
        disabled = await staff.disable_user(conn, "alice")
    assert disabled.user.status == "disabled"
    # the key is alice's to four eyes ...
    async with db.connect() as conn:
        live = await keys.authenticate(conn, issued.secret)
    assert live is None or live.actor == "user:alice"
    # ... and must be gone with her
    r = await api.post(approve, headers=bearer(issued.secret) | {"Idempotency-Key": "ap-1"})
    # before the fix: 200, the payout approved by user:alice after she was disabled
    assert (r.status_code, [k.id for k in disabled.revoked_keys]) == (
        401, [issued.key.id]), r.text


async def test_holder_spelled_otherwise_at_issue_is_revoked(db):
    """Held: a key issued today with the holder in capitals and spaces is stored in the one
    spelling and revoked; other holders' keys and holder-less keys are untouched."""
    async with db.begin() as conn:
        await staff.add_user(conn, "chen.jie", "payments", PASSWORD)
        await staff.add_user(conn, "chen.jie2", "payments", PASSWORD)
    theirs = await _issue(db, "  CHEN.Jie\t", "payouts:approve")
    lookalike = await _issue(db, "chen.jie2", "payouts:approve")
    async with db.begin() as conn:
        unnamed = await keys.create_api_key(conn, "m1", ["payments:read"])
        disabled = await staff.disable_user(conn, "chen.jie")
    assert [k.id for k in disabled.revoked_keys] == [theirs.key.id]
    async with db.connect() as conn:
        assert await keys.authenticate(conn, theirs.secret) is None
        assert await keys.authenticate(conn, lookalike.secret) is not None
        assert await keys.authenticate(conn, unnamed.secret) is not None


async def test_the_api_forgets_a_cached_key_at_once_and_enabling_brings_none_back(
        db, app, api):
    """Held: alice's key is verified and cached by this process (TTL 5 s); disabling her
    in this process makes the very next request with it a 401 (read: 200 before), the
    approval is refused, and re-enabling her (reset) brings the key back neither in the
    database nor in the cache."""
    approve = await _pending_payout(db, app, api)
    alice = (await _issue(db, "alice", "payouts:read", "payouts:approve")).secret
    look = approve.removesuffix("/approve")
    assert (await api.get(look, headers=bearer(alice))).status_code == 200
    assert app.state.settings.key_cache_seconds > 0
    assert keys.VERIFIED.get(keys.token_digest(alice),
                             app.state.settings.key_cache_seconds) is not None
    async with db.begin() as conn:
        await staff.disable_user(conn, "alice")
    assert (await api.get(look, headers=bearer(alice))).status_code == 401
    r = await api.post(approve, headers=bearer(alice) | {"Idempotency-Key": "ap-1"})
    assert r.status_code == 401, r.text
    async with db.begin() as conn:
        await staff.reset_password(conn, "alice", PASSWORD + "-2")
    assert (await api.get(look, headers=bearer(alice))).status_code == 401
    async with db.connect() as conn:
        payout = await gateways.get_payout(conn, "po-1")
    assert payout.status is gateways.PayoutState.PENDING_APPROVAL


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_a_key_issued_while_its_holder_is_being_disabled(db, monkeypatch):
    """Found by this review: `paycore apikeys create --holder NAME` checked that NAME was
    an active staff user with a plain read, then inserted the key, and nothing ordered it
    against `staff disable NAME`: a disable committed between the check and the insert
    revoked nothing, and a disabled user kept a live payouts:approve key. Now the check
    holds the user's row (FOR SHARE) until the key is committed, so a disable that starts
    at the moment of the insert waits, then sees the new key and revokes it."""
    async with db.begin() as conn:
        await staff.add_user(conn, "dana", "payments", PASSWORD)
    url = url_of(db)
    real_create = keys.create_api_key
    disabled: list[Any] = []
    racing: list[threading.Thread] = []

    def disable_elsewhere() -> None:
        async def go() -> None:
            other = paycore_db.create_engine(url)
            try:
                async with other.begin() as conn:
                    disabled.append(await staff.disable_user(conn, "dana"))
            finally:
                await other.dispose()
        asyncio.run(go())

    async def create_while_disabled(conn: Any, *args: Any, **kwargs: Any) -> keys.IssuedKey:
        # the CLI has found dana active; a disable starts now, on another connection
        thread = threading.Thread(target=disable_elsewhere)
        thread.start()
        racing.append(thread)
        probe = paycore_db.create_engine(url)
        try:
            for _ in range(500):  # until it waits on dana's row (or has finished)
                async with probe.connect() as c:
                    waiting = await c.scalar(sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE 'UPDATE staff_users%'"))
                if waiting or not thread.is_alive():
                    break
                await asyncio.sleep(0.01)
        finally:
            await probe.dispose()
        return await real_create(conn, *args, **kwargs)

    monkeypatch.setattr(keys, "create_api_key", create_while_disabled)
    monkeypatch.setenv("PAYCORE_DATABASE_URL", url)
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    from paycore.cli import app as cli

    result = await asyncio.to_thread(CliRunner().invoke, cli, [
        "apikeys", "create", "m1", "--scope", "payouts:approve", "--holder", "dana"])
    for thread in racing:
        await asyncio.to_thread(thread.join, 30)
    assert result.exit_code == 0, result.output
    # the disable waited for the key, then revoked it with her
    assert len(disabled) == 1 and len(disabled[0].revoked_keys) == 1
    async with db.connect() as conn:
        assert (await staff.get_user(conn, "dana")).status == "disabled"
        live = [k for k in await keys.list_api_keys(conn)
                if k.holder == "dana" and k.revoked_at is None]
    assert live == [], result.output
