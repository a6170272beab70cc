"""Migration 0029 on a register that was attacked before it: who typed each number comes
from the audit trail, a verification by that person is withdrawn (and the trail says so),
actors and key holders take their one spelling; down and up again. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import command

import gateways
from gateways.schema import beneficiary_accounts, payout_control_audit
from paycore import db as paycore_db
from paycore.schema import api_keys

T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


async def _to(db, revision: str) -> None:
    async with db.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(paycore_db.alembic_config(c), revision))


def _account(account_id: str, **values: object) -> dict[str, object]:
    return {"id": account_id, "supplier_id": "sup-1", "holder_name": "Silk", "bank_name": "",
            "account_ciphertext": "x", "key_id": "k1", "account_hmac": account_id,
            "account_last4": "7777", "status": "unverified", "created_at": T0,
            "changed_at": T0, "updated_at": T0, "verified_by": None, "verified_at": None,
            **values}


async def test_0029_withdraws_a_verification_by_the_numbers_typist(db):
    await _to(db, "0028")
    old = sa.table("beneficiary_accounts", *(sa.column(c) for c in _account("x", created_by=1,
                                                                           changed_by=1)))
    async with db.begin() as conn:
        await conn.execute(old.insert(), [
            # mallory typed it, bob fixed the bank's name, mallory verified it
            _account("ba_bad", created_by="user:Mallory", changed_by="user:bob",
                     status="verified", verified_by="user:mallory", verified_at=T0),
            # carol typed it, dave verified it: left verified
            _account("ba_ok", created_by="user:Carol", changed_by="user:Carol",
                     status="verified", verified_by="user:dave", verified_at=T0)])
        await conn.execute(payout_control_audit.insert(), [
            {"at": T0, "actor": "user:Mallory", "action": "account.added",
             "supplier_id": "sup-1", "subject_id": "ba_bad", "details": {"account": "***7777"}},
            {"at": T0, "actor": "user:bob", "action": "account.changed",
             "supplier_id": "sup-1", "subject_id": "ba_bad", "details": {"bank_name": "ICBC"}},
        ])
        await conn.execute(api_keys.insert().values(
            id="k-alice", merchant_id="m1", name="", secret_sha256="0" * 64,
            scopes="payouts:approve", created_at=T0, revoked_at=None, holder=" Alice"))
    await paycore_db.upgrade(db)
    async with db.connect() as conn:
        bad = await gateways.get_account(conn, "ba_bad")
        ok = await gateways.get_account(conn, "ba_ok")
        withdrawn = await gateways.audit_trail(conn, "ba_bad")
        holder = await conn.scalar(sa.select(api_keys.c.holder))
    assert (bad.status, bad.number_entered_by, bad.verified_by) == (
        gateways.AccountState.UNVERIFIED, "user:mallory", None)
    assert bad.status_reason is not None and "entered its number" in bad.status_reason
    assert withdrawn[-1]["action"] == "account.verification_withdrawn"
    assert (ok.status, ok.number_entered_by, ok.created_by) == (
        gateways.AccountState.VERIFIED, "user:carol", "user:carol")
    assert holder == "alice"
    # the CHECK now holds the rule, in any spelling
    async with db.begin() as conn:
        failed = False
        try:
            async with conn.begin_nested():
                await conn.execute(beneficiary_accounts.update().where(
                    beneficiary_accounts.c.id == "ba_bad").values(
                    status="verified", verified_by="user:MALLORY", verified_at=T0))
        except sa.exc.IntegrityError:
            failed = True
    assert failed
    await _to(db, "0028")
    await paycore_db.upgrade(db)
    async with db.connect() as conn:
        assert (await gateways.get_account(conn, "ba_ok")).number_entered_by == "user:carol"
