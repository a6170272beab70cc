"""Overpayments leave 2203: refunded to the borrower's verified bank account by a supplier
payout (four eyes above the threshold), or applied to another of their loans; each move
audited, idempotent, and refused with the reason (nothing written) when it cannot be.
Both databases."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa

import gateways
import lending
from paycore.overpayments import refund_overpayment
from tests.lending.book import (
    CONFIG,
    cny,
    days,
    disbursed,
    entry_count,
    good_borrower,
    posted,
    verify_ok,
)
from tests.paycore.test_settlement import verified_account

CONTROLS = gateways.PayoutControls(cooling_off=dt.timedelta(hours=24),
                                   approval_above={"CNY": 100_000_000})
OVERPAYMENT = "2203.overpayment.supply_chain"
INTEREST30 = lending.SUPPLY_CHAIN_LOAN.interest_for(1_000_000, 30)


async def overpaid(db, loan_id: str = "L1", supplier: str = "sup-001") -> lending.LoanRecord:
    async with db.begin() as conn:
        await disbursed(conn, loan_id, supplier=supplier)
        rep = await lending.repay_loan(conn, loan_id, cny("10100.00"), days(30), CONFIG,
                                       repayment_id=f"r-{loan_id}")
    assert rep.loan.overpaid_minor == 10_000 - INTEREST30
    return rep.loan


async def test_an_overpayment_is_refunded_by_a_payout_to_the_verified_account(db):
    async with db.begin() as conn:
        await good_borrower(conn)
        account = await verified_account(conn)
    loan = await overpaid(db)
    held = loan.overpaid_minor
    async with db.begin() as conn:
        result = await refund_overpayment(conn, "L1", cny("10.00"), days(31), CONFIG,
                                          move_id="m1", actor="user:li", controls=CONTROLS)
    assert result.payout.amount_minor == 1_000 and result.move.kind == "refund"
    async with db.connect() as conn:
        payout = await gateways.find_supplier_payout(conn, result.payout.id)
        moves = await lending.overpayment_moves_of(conn, "L1")
        after = await lending.load_loan(conn, "L1", CONFIG)
    assert payout is not None and payout.account_id == account.id
    assert payout.requested_by == "user:li"
    assert after.overpaid_minor == held - 1_000
    assert await posted(db, OVERPAYMENT) == held - 1_000
    assert [(m["kind"], m["amount_minor"], m["actor"], m["payout_id"]) for m in moves] == [
        ("refund", 1_000, "user:li", result.payout.id)]
    await verify_ok(db)

    # the same move again: the same payout, nothing more booked
    n = await entry_count(db)
    async with db.begin() as conn:
        again = await refund_overpayment(conn, "L1", cny("10.00"), days(31), CONFIG,
                                         move_id="m1", actor="user:li", controls=CONTROLS)
    assert again.payout.id == result.payout.id and again.move.replayed
    assert await entry_count(db) == n


async def test_a_refund_above_the_threshold_waits_for_a_second_person(db):
    async with db.begin() as conn:
        await good_borrower(conn)
        await verified_account(conn)
    await overpaid(db)
    strict = dataclasses.replace(CONTROLS, approval_above={"CNY": 500})
    async with db.begin() as conn:
        result = await refund_overpayment(conn, "L1", cny("10.00"), days(31), CONFIG,
                                          move_id="m1", actor="user:li", controls=strict)
    assert result.payout.status.value == "pending_approval"


async def test_a_refund_that_cannot_go_writes_nothing(db):
    async with db.begin() as conn:
        await good_borrower(conn)
    loan = await overpaid(db)
    n = await entry_count(db)
    with pytest.raises(gateways.AccountNotUsable, match="no bank account"):
        async with db.begin() as conn:
            await refund_overpayment(conn, "L1", cny("10.00"), days(31), CONFIG,
                                     move_id="m1", actor="user:li", controls=CONTROLS)
    async with db.begin() as conn:
        await verified_account(conn)
    too_much = lending.format_minor(loan.overpaid_minor + 1, "CNY").split()[0].replace(",", "")
    with pytest.raises(lending.InvalidAmount, match="cannot be moved"):
        async with db.begin() as conn:
            await refund_overpayment(conn, "L1", cny(too_much), days(31), CONFIG,
                                     move_id="m2", actor="user:li", controls=CONTROLS)
    assert await entry_count(db) == n
    async with db.connect() as conn:
        assert await lending.overpayment_moves_of(conn, "L1") == []


async def test_an_overpayment_is_applied_to_the_borrowers_other_loan(db):
    async with db.begin() as conn:
        await good_borrower(conn)
        await good_borrower(conn, "sup-002")
        await disbursed(conn, "L2", term=60)
        await disbursed(conn, "OTHER", supplier="sup-002")
    loan = await overpaid(db)
    held = loan.overpaid_minor
    async with db.begin() as conn:
        with pytest.raises(lending.InvalidInput, match="not sup-001's"):
            await lending.apply_overpayment(conn, "L1", "OTHER", cny("10.00"), days(31), CONFIG,
                                            move_id="x", actor="user:li")
    async with db.begin() as conn:
        move = await lending.apply_overpayment(conn, "L1", "L2", cny("10.00"), days(31),
                                               CONFIG, move_id="a1", actor="user:li")
    assert move.repayment is not None and move.repayment.allocation.paid_minor == 1_000
    async with db.connect() as conn:
        l1 = await lending.load_loan(conn, "L1", CONFIG)
        l2 = await lending.load_loan(conn, "L2", CONFIG)
        moves = await lending.overpayment_moves_of(conn, "L1")
        rows = (await conn.execute(sa.text(
            "SELECT source FROM lending_repayments WHERE loan_id = 'L2'"))).all()
    assert l1.overpaid_minor == held - 1_000
    assert l2.interest_paid_minor + l2.principal_repaid_minor == 1_000
    assert [r.source for r in rows] == ["offset"]
    assert moves[0]["target_loan_id"] == "L2" and moves[0]["kind"] == "apply"
    await verify_ok(db)


async def test_overpayment_moves_over_http(db):
    from tests.api.conftest import bearer

    async with db.begin() as conn:
        await good_borrower(conn)
        await verified_account(conn)
        await disbursed(conn, "L2", term=60)
    await overpaid(db)
    import httpx

    from paycore.api import create_app
    from paycore.api.keys import create_api_key

    async with db.begin() as conn:
        risk = (await create_api_key(conn, "risk", ["lending:read", "lending:review"],
                                     holder="zhao")).secret
        nameless = (await create_api_key(conn, "risk", ["lending:review"])).secret
        borrower = (await create_api_key(conn, "sup-001", ["lending:read",
                                                           "lending:write"])).secret
    app = create_app(engine=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://paycore.test") as api:
        # moving an overpayment is a maker's act (its refund a payout to approve): a person
        r = await api.post("/v1/lending/loans/L1/overpayment/application",
                           headers={**bearer(nameless), "Idempotency-Key": "mv-0"},
                           json={"target_loan_id": "L2",
                                 "amount": {"amount": "5.00", "currency": "CNY"}})
        assert r.status_code == 403 and r.json()["code"] == "key-without-holder", r.text
        r = await api.post("/v1/lending/loans/L1/overpayment/application",
                           headers={**bearer(risk), "Idempotency-Key": "mv-1"},
                           json={"target_loan_id": "L2",
                                 "amount": {"amount": "5.00", "currency": "CNY"},
                                 "on": days(31).isoformat()})
        assert r.status_code == 201, r.text
        assert r.json()["kind"] == "apply" and r.json()["target_loan"]["id"] == "L2"
        r = await api.post("/v1/lending/loans/L1/overpayment/refund",
                           headers={**bearer(borrower), "Idempotency-Key": "mv-2"},
                           json={"amount": {"amount": "5.00", "currency": "CNY"}})
        assert r.status_code == 403, r.text
        r = await api.post("/v1/lending/loans/L1/overpayment/refund",
                           headers={**bearer(risk), "Idempotency-Key": "mv-3"},
                           json={"amount": {"amount": "99999.00", "currency": "CNY"},
                                 "on": days(31).isoformat()})
        assert r.status_code == 422 and "cannot be moved" in r.json()["detail"], r.text
