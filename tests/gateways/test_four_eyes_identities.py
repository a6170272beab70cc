"""Four eyes compare people (issue #15 red-team fixes): the number's typist never verifies
it, a change that changes nothing is no change, one person has one spelling, one bank
account one canonical number. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

import gateways
from gateways.beneficiaries import normalise_actor, reveal
from gateways.schema import beneficiary_accounts

from .test_payout_controls import NUMBER, T0

IBAN = "GB82WEST12345698765432"


async def _added(conn, number: str = NUMBER, by: str = "user:alice"):
    return await gateways.add_account(conn, "sup-001", holder_name="Silk Co.",
                                      account_number=number, bank_name="ICBC",
                                      actor=by, now=T0)


async def test_a_change_that_changes_nothing_is_no_change(db):
    async with db.begin() as conn:
        account = await _added(conn)
        account = await gateways.verify_account(conn, account.id, actor="user:bob", now=T0)
        later = T0 + dt.timedelta(days=1)
        for same in ({}, {"holder_name": "Silk Co."}, {"bank_name": " ICBC "},
                     {"account_number": NUMBER[:4] + " " + NUMBER[4:]}):
            after = await gateways.change_account(conn, account.id, actor="user:carol",
                                                  now=later, **same)
            assert after == account
        trail = [r["action"] for r in await gateways.audit_trail(conn, account.id)]
    assert trail == ["account.added", "account.verified"]


async def test_a_new_number_is_entered_by_whoever_typed_it(db):
    async with db.begin() as conn:
        account = await _added(conn)
        changed = await gateways.change_account(conn, account.id, actor="user:Mallory ",
                                                account_number="6222999988887777", now=T0)
        assert changed.number_entered_by == "user:mallory"
        changed = await gateways.change_account(conn, account.id, actor="user:bob",
                                                bank_name="ICBC Ningbo", now=T0)
        assert (changed.number_entered_by, changed.changed_by) == ("user:mallory", "user:bob")
        for person in ("user:MALLORY", "user:bob"):
            with pytest.raises(gateways.FourEyesViolation):
                await gateways.verify_account(conn, account.id, actor=person, now=T0)
        done = await gateways.verify_account(conn, account.id, actor="user:alice", now=T0)
    assert done.verified_by == "user:alice"


async def test_the_database_refuses_the_typist_as_verifier_in_any_case(db):
    async with db.begin() as conn:
        account = await _added(conn)
        await gateways.change_account(conn, account.id, actor="user:bob",
                                      bank_name="ICBC Ningbo", now=T0)
    for verifier in ("user:alice", "user:ALICE", "user:Bob"):
        with pytest.raises(sa.exc.IntegrityError):
            async with db.begin() as conn:
                await conn.execute(beneficiary_accounts.update().where(
                    beneficiary_accounts.c.id == account.id).values(
                    status="verified", verified_by=verifier, verified_at=T0))


async def test_numbers_are_kept_canonical_and_rekey_rehashes_old_spellings(db, account_keys):
    async with db.begin() as conn:
        account = await _added(conn, "gb82 west 1234 5698 7654 32")
        assert (await reveal(conn, account.id)).account_number == IBAN
        # a row stored as typed before canonical numbers: rekey re-seals it canonical
        key_id, token = account_keys.encrypt("gb82west12345698765432", bound_to=account.id)
        await conn.execute(beneficiary_accounts.update().where(
            beneficiary_accounts.c.id == account.id).values(
            account_ciphertext=token, key_id=key_id,
            account_hmac=account_keys.lookup_hash("gb82west12345698765432")))
        assert await gateways.rekey_accounts(conn, actor="user:ops") == 1
        assert await gateways.rekey_accounts(conn, actor="user:ops") == 0
        assert (await reveal(conn, account.id)).account_number == IBAN
        with pytest.raises(gateways.DuplicateAccount):
            await gateways.add_account(conn, "sup-002", holder_name="Silk", actor="user:bob",
                                       account_number="Gb82West12345698765432", now=T0)


def test_one_spelling_per_person():
    assert normalise_actor(" User:Alice ") == "user:alice"
    assert normalise_actor("key:ab12") == "key:ab12"
