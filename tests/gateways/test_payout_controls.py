"""Payout controls (issue #15 §2): the register of suppliers' bank accounts (encrypted at
rest, four eyes to verify, cooling-off after a change), supplier payouts only from the
supplier's own payable to its verified account, maker-checker approval, and an
append-only audit trail. SQLite and PostgreSQL; the books prove after each."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

import gateways
import ledger
from gateways import PayoutControls, PayoutState, SupplierPayoutRequest
from gateways.schema import beneficiary_accounts, payout_control_audit, payouts

from .core_helpers import assert_books_prove, balance_minor, cny, open_payable

NUMBER = "6222020200112233445"
T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(days=2)
CONTROLS = PayoutControls(cooling_off=dt.timedelta(hours=24), approval_above={"CNY": 100_000})


async def verified_account(conn, supplier: str = "sup-001", number: str = NUMBER,
                           at: dt.datetime = T0) -> gateways.BeneficiaryAccount:
    account = await gateways.add_account(conn, supplier, holder_name="Hangzhou Silk Co.",
                                         account_number=number, bank_name="ICBC Hangzhou",
                                         actor="user:alice", now=at)
    return await gateways.verify_account(conn, account.id, actor="user:bob", now=at)


def ask(pid: str, account_id: str, amount: str = "100.00", *, supplier: str = "sup-001",
        by: str = "system:settlement", manual: bool = False) -> SupplierPayoutRequest:
    return SupplierPayoutRequest(payout_id=pid, supplier_id=supplier, account_id=account_id,
                                 amount=cny(amount), requested_by=by, manual=manual)


async def test_number_is_stored_encrypted_masked_and_hashed_never_plain(db):
    async with db.begin() as conn:
        account = await gateways.add_account(conn, "sup-001", holder_name="Hangzhou Silk Co.",
                                             account_number=NUMBER, actor="user:alice", now=T0)
    assert account.masked_number == "***3445"
    assert account.status is gateways.AccountState.UNVERIFIED
    assert NUMBER not in repr(account)
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(beneficiary_accounts))).one()
        audit = await gateways.audit_trail(conn, account.id)
    stored = " ".join(str(v) for v in row._mapping.values())
    assert NUMBER not in stored and "0200112233" not in stored
    assert row.key_id == "test1" and len(row.account_hmac) == 64
    assert [a["action"] for a in audit] == ["account.added"]
    assert NUMBER not in json.dumps(audit, default=str)


async def test_ciphertext_moved_to_another_row_does_not_decrypt(db):
    async with db.begin() as conn:
        a = await verified_account(conn, "sup-001", NUMBER)
        b = await verified_account(conn, "sup-002", "6222999988887777")
        token = (await conn.execute(sa.select(beneficiary_accounts.c.account_ciphertext)
                                    .where(beneficiary_accounts.c.id == a.id))).scalar_one()
        await conn.execute(beneficiary_accounts.update().where(beneficiary_accounts.c.id == b.id)
                           .values(account_ciphertext=token))
    from gateways.beneficiaries import reveal
    async with db.connect() as conn:
        assert (await reveal(conn, a.id)).account_number == NUMBER
        with pytest.raises(gateways.AccountKeysMissing, match="tampered or moved"):
            await reveal(conn, b.id)


async def test_verification_needs_a_second_person(db):
    async with db.begin() as conn:
        account = await gateways.add_account(conn, "sup-001", holder_name="Silk",
                                             account_number=NUMBER, actor="user:alice", now=T0)
    with pytest.raises(gateways.FourEyesViolation):
        async with db.begin() as conn:
            await gateways.verify_account(conn, account.id, actor="user:alice", now=T0)
    async with db.begin() as conn:
        done = await gateways.verify_account(conn, account.id, actor="user:bob", now=T0)
    assert done.status is gateways.AccountState.VERIFIED and done.verified_by == "user:bob"
    # the database holds the same rule: a verifier equal to the maker is refused
    with pytest.raises(sa.exc.IntegrityError):
        async with db.begin() as conn:
            await conn.execute(beneficiary_accounts.update().values(verified_by="user:alice"))


async def test_duplicates_and_another_suppliers_account_are_refused(db):
    async with db.begin() as conn:
        await gateways.add_account(conn, "sup-001", holder_name="Silk", account_number=NUMBER,
                                   actor="user:alice", now=T0)
    for supplier, words in (("sup-001", "already has this account"),
                            ("sup-002", "registered to another supplier")):
        with pytest.raises(gateways.DuplicateAccount, match=words):
            async with db.begin() as conn:
                await gateways.add_account(conn, supplier, holder_name="X",
                                           account_number=NUMBER, actor="user:carol", now=T0)


async def test_payout_only_to_a_verified_account_past_its_cooling_off(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        fresh = await gateways.add_account(conn, "sup-001", holder_name="Silk",
                                           account_number=NUMBER, actor="user:alice", now=T0)
    with pytest.raises(gateways.AccountNotUsable, match="unverified"):
        async with db.begin() as conn:
            await gateways.request_supplier_payout(conn, ask("po-1", fresh.id), CONTROLS,
                                                   now=LATER)
    async with db.begin() as conn:
        await gateways.verify_account(conn, fresh.id, actor="user:bob", now=T0)
    with pytest.raises(gateways.AccountNotUsable, match="cooling-off"):
        async with db.begin() as conn:
            await gateways.request_supplier_payout(
                conn, ask("po-1", fresh.id), CONTROLS, now=T0 + dt.timedelta(hours=23))
    assert await balance_minor(db, "2202.payable.sup-001") == (-50000, 0, 0)
    async with db.begin() as conn:
        p = await gateways.request_supplier_payout(conn, ask("po-1", fresh.id), CONTROLS,
                                                   now=LATER)
    assert p.status is PayoutState.REQUESTED          # 100.00: under the threshold
    assert p.debit_account == "2202.payable.sup-001"
    async with db.connect() as conn:
        stored = (await conn.execute(sa.select(payouts.c.beneficiary_account))).scalar_one()
    assert stored == "***3445"                        # the payouts row keeps the mask only
    await assert_books_prove(db)


async def test_a_changed_account_is_unverified_and_cools_off_again(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        account = await verified_account(conn)
        await gateways.change_account(conn, account.id, account_number="6222111122223333",
                                      actor="user:mallory", now=LATER)
        audit = await gateways.audit_trail(conn, account.id)
    assert [a["action"] for a in audit] == ["account.added", "account.verified",
                                            "account.changed"]
    with pytest.raises(gateways.AccountNotUsable, match="unverified"):
        async with db.begin() as conn:
            await gateways.request_supplier_payout(conn, ask("po-1", account.id), CONTROLS,
                                                   now=LATER + dt.timedelta(days=5))
    async with db.begin() as conn:
        await gateways.verify_account(conn, account.id, actor="user:bob",
                                      now=LATER + dt.timedelta(hours=1))
    with pytest.raises(gateways.AccountNotUsable, match="cooling-off"):
        async with db.begin() as conn:
            await gateways.request_supplier_payout(conn, ask("po-1", account.id), CONTROLS,
                                                   now=LATER + dt.timedelta(hours=2))


async def test_another_suppliers_account_is_not_usable(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        theirs = await verified_account(conn, "sup-002")
    with pytest.raises(gateways.AccountNotUsable, match="not a registered account of supplier"):
        async with db.begin() as conn:
            await gateways.request_supplier_payout(conn, ask("po-1", theirs.id), CONTROLS,
                                                   now=LATER)
    assert await balance_minor(db, "2202.payable.sup-001") == (-50000, 0, 0)


async def test_no_more_than_the_suppliers_own_available_payable(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="150.00")
        account = await verified_account(conn)
        await gateways.request_supplier_payout(conn, ask("po-1", account.id, "100.00"), CONTROLS,
                                               now=LATER)
    # 50.00 is left available: what is reserved for po-1 cannot be paid twice
    with pytest.raises(ledger.BalanceLimitExceeded):
        async with db.begin() as conn:
            await gateways.request_supplier_payout(conn, ask("po-2", account.id, "50.01"),
                                                   CONTROLS, now=LATER)
    async with db.connect() as conn:
        assert await gateways.find_supplier_payout(conn, "po-2") is None
    await assert_books_prove(db)


async def test_maker_checker_above_threshold_and_for_any_manual_payout(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="5000.00")
        account = await verified_account(conn)
        big = await gateways.request_supplier_payout(
            conn, ask("po-big", account.id, "1000.01"), CONTROLS, now=LATER)
        manual = await gateways.request_supplier_payout(
            conn, ask("po-man", account.id, "10.00", by="user:alice", manual=True), CONTROLS,
            now=LATER)
        auto = await gateways.request_supplier_payout(
            conn, ask("po-small", account.id, "1000.00"), CONTROLS, now=LATER)
    assert big.status is manual.status is PayoutState.PENDING_APPROVAL
    assert auto.status is PayoutState.REQUESTED
    # reserved while it waits; no bank will be handed a pending payout
    assert await balance_minor(db, "2202.payable.sup-001") == (-500000, 201001, 0)
    async with db.connect() as conn:
        waiting = await gateways.list_pending_approval(conn)
    assert [p.id for p, _ in waiting] == ["po-big", "po-man"]

    with pytest.raises(gateways.FourEyesViolation):
        async with db.begin() as conn:
            await gateways.approve_payout(conn, "po-man", actor="user:alice", controls=CONTROLS,
                                          now=LATER)
    async with db.begin() as conn:
        approved = await gateways.approve_payout(conn, "po-man", actor="user:bob",
                                                 controls=CONTROLS, now=LATER)
        rejected = await gateways.reject_payout(conn, "po-big", actor="user:bob",
                                                reason="not agreed with the supplier", now=LATER)
        trail = await gateways.audit_trail(conn, "po-man")
    assert approved.status is PayoutState.REQUESTED
    assert rejected.status is PayoutState.CANCELED
    assert [(a["action"], a["actor"]) for a in trail] == [
        ("payout.requested", "user:alice"), ("payout.approved", "user:bob")]
    # po-big's reservation is released
    assert await balance_minor(db, "2202.payable.sup-001") == (-500000, 101000, 0)
    # and the database refuses an approval by the requester written behind the code's back
    with pytest.raises(sa.exc.IntegrityError):
        async with db.begin() as conn:
            from gateways.schema import supplier_payouts
            await conn.execute(supplier_payouts.update().where(
                supplier_payouts.c.payout_id == "po-man").values(decided_by="user:alice"))
    await assert_books_prove(db)


async def test_account_changed_while_waiting_blocks_the_approval(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        account = await verified_account(conn)
        await gateways.request_supplier_payout(
            conn, ask("po-1", account.id, by="user:alice", manual=True), CONTROLS, now=LATER)
        await gateways.change_account(conn, account.id, account_number="6222000099998888",
                                      actor="user:mallory", now=LATER)
        await gateways.verify_account(conn, account.id, actor="user:carol", now=LATER)
    with pytest.raises(gateways.AccountNotUsable):
        async with db.begin() as conn:
            await gateways.approve_payout(conn, "po-1", actor="user:bob", controls=CONTROLS,
                                          now=LATER + dt.timedelta(days=3))


async def test_the_audit_trail_is_append_only(db):
    async with db.begin() as conn:
        await gateways.add_account(conn, "sup-001", holder_name="Silk", account_number=NUMBER,
                                   actor="user:alice", now=T0)
    for statement in (payout_control_audit.update().values(actor="user:nobody"),
                      payout_control_audit.delete()):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with db.begin() as conn:
                await conn.execute(statement)


async def test_rotation_reencrypts_and_old_key_can_then_go(db, account_keys):
    async with db.begin() as conn:
        account = await verified_account(conn)
    old = account_keys
    new = gateways.AccountKeys([("test2", bytes(range(1, 33))), ("test1", bytes(range(32)))])
    gateways.use_account_keys(new)
    async with db.begin() as conn:
        assert await gateways.rekey_accounts(conn, actor="user:ops") == 1
        assert await gateways.rekey_accounts(conn, actor="user:ops") == 0
    gateways.use_account_keys(gateways.AccountKeys([("test2", bytes(range(1, 33)))]))
    from gateways.beneficiaries import reveal
    async with db.connect() as conn:
        assert (await reveal(conn, account.id)).account_number == NUMBER
        # a duplicate is still found after rotation
        with pytest.raises(gateways.DuplicateAccount):
            await gateways.add_account(conn, "sup-001", holder_name="Silk",
                                       account_number=NUMBER, actor="user:alice")
    gateways.use_account_keys(old)
    async with db.connect() as conn:
        with pytest.raises(gateways.AccountKeysMissing, match="test2"):
            await reveal(conn, account.id)


async def test_an_account_changed_after_approval_is_never_sent_to(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        account = await verified_account(conn)
        await gateways.request_supplier_payout(
            conn, ask("po-1", account.id, by="user:alice", manual=True), CONTROLS, now=LATER)
        await gateways.approve_payout(conn, "po-1", actor="user:bob", controls=CONTROLS,
                                      now=LATER)
        # approved; then someone points the account elsewhere before it is sent
        await gateways.change_account(conn, account.id, account_number="6222000099998888",
                                      actor="user:mallory", now=LATER)
    # no bank is configured at all: the payout must stop before any would be asked
    [p] = await gateways.submit_payouts(db, gateways.BankDirectory([]), payout_ids=["po-1"])
    assert p.status is PayoutState.CANCELED and p.bank is None
    assert "changed after payout po-1 was requested" in (p.failure_reason or "")
    assert await balance_minor(db, "2202.payable.sup-001") == (-50000, 0, 0)
    async with db.connect() as conn:
        trail = await gateways.audit_trail(conn, "po-1")
    assert [t["action"] for t in trail] == ["payout.requested", "payout.approved",
                                            "payout.withdrawn"]
    await assert_books_prove(db)
