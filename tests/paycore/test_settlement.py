"""The supplier settlement run (paycore composes lending and gateways): the payable first
repays the supplier's loans by one offset entry, the rest is paid out, and the same
settlement id run again posts nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

import gateways
import ledger
import lending
from gateways.payout_records import record_payout  # the bank mechanics, under the controls
from paycore import disbursement, settlement
from tests.gateways.core_helpers import open_payable
from tests.lending.book import (
    CONFIG,
    approved,
    cny,
    credit_payable,
    days,
    disbursed,
    entry_count,
    good_borrower,
    posted,
    verify_ok,
)

PAYABLE = "2202.payable.sup-001"
ONBOARDED = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)   # long past any cooling-off


async def verified_account(conn, supplier: str = "sup-001",
                           number: str = "6222020200112233445") -> gateways.BeneficiaryAccount:
    """The supplier's bank account in the register, verified by a second person."""
    account = await gateways.add_account(conn, supplier, holder_name="Supplier Ltd",
                                         account_number=number, actor="user:onboarding",
                                         now=ONBOARDED)
    return await gateways.verify_account(conn, account.id, actor="user:compliance",
                                         now=ONBOARDED)


async def test_settlement_offsets_the_loan_then_pays_out_the_rest(db):
    async with db.begin() as conn:
        await good_borrower(conn, receivables="")
        await disbursed(conn, "S1", term=30)          # 10,000.00 onto the payable
        await credit_payable(conn, "sup-001", "25000.00", "capture:later", on=days(20))
        account = await verified_account(conn)
        # the loan proceeds went out earlier (a payout hold against the payable)
        await record_payout(conn, gateways.PayoutRequest(
            "po-proceeds", "supplier:sup-001", gateways.Beneficiary("Supplier", "6222000011"),
            cny("10000.00"), PAYABLE, "settlement"))
    await lending.run_accrual(db, days(29), CONFIG)
    assert await posted(db, PAYABLE) == 3_500_000
    run = await settlement.run_settlement(db, "2026-04-01", days(30), CONFIG)
    [sup] = [s for s in run.suppliers if s.supplier_id == "sup-001"]
    # 25,000.00 available: 10,082.19 repays the loan (principal + 30 days), the rest paid out
    assert sup.available_minor == 2_500_000
    assert sup.offset_minor == 1_008_219 and sup.loans_repaid == ("S1",)
    assert sup.payout_minor == 2_500_000 - 1_008_219 and sup.payout_id
    async with db.connect() as conn:
        loan = await lending.load_loan(conn, "S1", CONFIG)
        bal = await ledger.balance(conn, PAYABLE)
        payout = await gateways.get_payout(conn, sup.payout_id)
        offset = await ledger.find_entry(conn, "loan.offset:2026-04-01:sup-001")
    assert loan.status is lending.LoanStatus.REPAID
    assert ledger.to_minor(bal.posted) == 3_500_000 - 1_008_219
    assert ledger.to_minor(bal.available) == 0   # everything else is on its way out
    assert payout.amount_minor == sup.payout_minor and payout.debit_account == PAYABLE
    # paid by the same rules as any supplier payout: to the register's verified account,
    # and (no threshold configured for CNY here) waiting for a second person
    async with db.connect() as conn:
        record = await gateways.find_supplier_payout(conn, sup.payout_id)
    assert record is not None and record.account_id == account.id
    assert record.requested_by == "system:settlement"
    assert payout.status is gateways.PayoutState.PENDING_APPROVAL
    assert payout.beneficiary.account_number == "***3445"
    assert offset is not None and offset.kind == "loan.offset"
    legs = {p.account_code: p.amount for p in offset.postings}
    assert legs == {PAYABLE: 1_008_219, "1302.interest_receivable.supply_chain": -8219,
                    "1301.loans.supply_chain": -1_000_000}

    before = await entry_count(db)
    again = await settlement.run_settlement(db, "2026-04-01", days(30), CONFIG)
    [same] = [s for s in again.suppliers if s.supplier_id == "sup-001"]
    assert same.replayed and same.offset_minor == sup.offset_minor
    assert await entry_count(db) == before
    await verify_ok(db)


async def test_settlement_smaller_than_what_is_due_pays_nothing_out(db):
    async with db.begin() as conn:
        await good_borrower(conn, receivables="")
        await disbursed(conn, "S2", term=30)
        await record_payout(conn, gateways.PayoutRequest(
            "po-proceeds-2", "supplier:sup-001", gateways.Beneficiary("Supplier", "6222000011"),
            cny("10000.00"), PAYABLE, "settlement"))
        await credit_payable(conn, "sup-001", "4000.00", "capture:small", on=days(28))
    run = await settlement.run_settlement(db, "set-2", days(30), CONFIG, suppliers=["sup-001"])
    [sup] = run.suppliers
    assert sup.offset_minor == 400_000 and sup.payout_minor == 0 and sup.payout_id is None
    async with db.connect() as conn:
        loan = await lending.load_loan(conn, "S2", CONFIG)
    # penalty none, interest 82.19 first, then 3,917.81 of principal
    assert loan.interest_paid_minor == 8219 and loan.principal_repaid_minor == 400_000 - 8219
    assert loan.status is lending.LoanStatus.ACTIVE
    await verify_ok(db)


async def test_payout_disbursement_reserves_the_proceeds_for_the_supplier(db):
    config = dataclasses.replace(CONFIG, disbursement=lending.DisbursementMode.PAYOUT)
    async with db.begin() as conn:
        await good_borrower(conn, receivables="", config=config)
        await verified_account(conn)
        await approved(conn, "PD1", config=config)
        res = await disbursement.disburse(conn, "PD1", days(0), config)
    assert res.payout is not None and res.payout.amount_minor == 1_000_000
    assert res.loan.status is lending.LoanStatus.ACTIVE and res.loan.payout_id == res.payout.id
    async with db.connect() as conn:
        bal = await ledger.balance(conn, PAYABLE)
    assert ledger.to_minor(bal.posted) == 1_000_000 and ledger.to_minor(bal.available) == 0
    # a settlement now finds nothing to offset or pay: the proceeds are the supplier's
    run = await settlement.run_settlement(db, "set-3", days(1), config, suppliers=["sup-001"])
    assert run.suppliers[0].available_minor == 0
    await verify_ok(db, config)


async def test_unknown_supplier_is_refused(db):
    with pytest.raises(lending.InvalidInput):
        await settlement.run_settlement(db, "set-x", days(0), CONFIG, suppliers=["nobody"])


async def test_no_usable_account_offsets_the_loan_and_keeps_the_rest_on_the_payable(db):
    async with db.begin() as conn:
        await good_borrower(conn, receivables="")
        await disbursed(conn, "S4", term=30)
        await record_payout(conn, gateways.PayoutRequest(
            "po-proceeds-4", "supplier:sup-001", gateways.Beneficiary("Supplier", "6222000011"),
            cny("10000.00"), PAYABLE, "settlement"))
        await credit_payable(conn, "sup-001", "25000.00", "capture:s4", on=days(20))
        # registered but never verified: not a place money may go
        await gateways.add_account(conn, "sup-001", holder_name="Supplier Ltd",
                                   account_number="6222020200112233445", actor="user:someone")
    run = await settlement.run_settlement(db, "set-4", days(30), CONFIG, suppliers=["sup-001"])
    [sup] = run.suppliers
    assert sup.offset_minor == 1_008_219 and sup.payout_minor == 0 and sup.payout_id is None
    assert "unverified" in sup.note and "stays on the payable" in sup.note
    async with db.connect() as conn:
        bal = await ledger.balance(conn, PAYABLE)
        waiting = await gateways.list_payouts(conn, beneficiary_ref="supplier:sup-001")
    assert ledger.to_minor(bal.available) == 2_500_000 - 1_008_219
    assert [p.id for p in waiting] == ["po-proceeds-4"]
    await verify_ok(db)


async def test_settlement_under_the_threshold_is_requested_without_approval(db):
    controls = gateways.PayoutControls(approval_above={"CNY": 2_000_000})
    async with db.begin() as conn:
        await good_borrower(conn, receivables="")
        await credit_payable(conn, "sup-001", "15000.00", "capture:s5", on=days(20))
        await verified_account(conn)
    run = await settlement.run_settlement(db, "set-5", days(30), CONFIG, suppliers=["sup-001"],
                                          controls=controls)
    [sup] = run.suppliers
    async with db.connect() as conn:
        payout = await gateways.get_payout(conn, sup.payout_id)
    assert sup.payout_minor == 1_500_000 and payout.status is gateways.PayoutState.REQUESTED
    await verify_ok(db)


def test_a_payout_id_names_one_settlement_and_one_supplier():
    """`<settlement>-<supplier>` read two ways when the settlement id holds a '-': 's-a'
    with 'b' and 's' with 'a-b' were both 's-a-b' (the second a PayoutConflict that
    stopped the run). Ids without a '-' keep the readable form they always had."""
    pairs = [("s-a", "b"), ("s", "a-b"), ("s", "a"), ("stl", "x"), ("settle-2026-05-01", "sup-1"),
             ("settle-2026-05", "01-sup-1"), ("x" * 40, "y" * 30), ("x" * 41, "y" * 29)]
    ids = [settlement.payout_id_for(s, p) for s, p in pairs]
    assert len(set(ids)) == len(ids)
    assert all(len(i) <= 64 for i in ids)
    assert settlement.payout_id_for("2026q2", "sup-001") == "2026q2-sup-001"
    assert settlement.payout_id_for("s-a", "b") == settlement.payout_id_for("s-a", "b")


async def test_two_runs_whose_ids_once_met_both_pay_out(db):
    async with db.begin() as conn:
        for supplier, number in (("b", "6222020200112233401"), ("a-b", "6222020200112233402")):
            await open_payable(conn, supplier, funded="100.00")
            await verified_account(conn, supplier, number)
    first = await settlement.run_settlement(db, "s-a", days(1), CONFIG, suppliers=["b"])
    second = await settlement.run_settlement(db, "s", days(1), CONFIG, suppliers=["a-b"])
    [one], [two] = first.suppliers, second.suppliers
    assert one.payout_id and two.payout_id and one.payout_id != two.payout_id
    assert (one.payout_minor, two.payout_minor) == (10_000, 10_000)


async def test_one_suppliers_refusal_leaves_the_rest_of_the_run_paid(db, monkeypatch):
    # Found by the concurrency red team: a supplier whose settlement was refused (a race
    # lost to a payout or repayment from the same payable) ended the whole run there, so
    # every supplier after them went unpaid — on every retry, if the refusal held. The
    # refusal is forced here after the supplier's settlement has written its entries, to
    # show those roll back with it.
    async with db.begin() as conn:
        for supplier, number in (("a", "6222020200112233411"), ("b", "6222020200112233412"),
                                 ("c", "6222020200112233413")):
            await open_payable(conn, supplier, funded="100.00")
            await verified_account(conn, supplier, number)
    real = settlement.settle_supplier

    async def refused_for_b(conn, settlement_id, supplier_id, *args, **kwargs):
        result = await real(conn, settlement_id, supplier_id, *args, **kwargs)
        if supplier_id == "b":
            raise ledger.InvalidRequest("payable 2202.payable.b moved meanwhile")
        return result

    monkeypatch.setattr(settlement, "settle_supplier", refused_for_b)
    before = await entry_count(db)
    run = await settlement.run_settlement(db, "s-iso", days(1), CONFIG,
                                          suppliers=["a", "b", "c"])
    by = {s.supplier_id: s for s in run.suppliers}
    assert [s.supplier_id for s in run.failed] == ["b"]
    assert "InvalidRequest" in by["b"].note and "moved meanwhile" in by["b"].note
    assert by["a"].payout_id and by["c"].payout_id   # the supplier after b is paid too
    assert by["b"].payout_id is None and by["b"].payout_minor == 0
    async with db.connect() as conn:
        assert ledger.to_minor((await ledger.balance(conn, "2202.payable.b")).available) \
            == 10_000   # nothing of b's was kept
        for supplier in ("a", "c"):
            assert ledger.to_minor(
                (await ledger.balance(conn, f"2202.payable.{supplier}")).available) == 0
    written = await entry_count(db) - before
    # the same settlement again, the refusal gone: b is paid, a and c replay as nothing
    monkeypatch.setattr(settlement, "settle_supplier", real)
    again = await settlement.run_settlement(db, "s-iso", days(1), CONFIG,
                                            suppliers=["a", "b", "c"])
    by = {s.supplier_id: s for s in again.suppliers}
    assert not again.failed and by["b"].payout_id and not by["b"].replayed
    assert by["a"].replayed and by["c"].replayed
    assert await entry_count(db) - before >= written
    await verify_ok(db)


async def test_a_settlement_job_with_a_supplier_not_settled_fails_to_be_run_again(db, monkeypatch):
    # the worker's job must not be marked done while a supplier is left unpaid: it fails
    # with who and why, so the queue runs it again (the others replay as nothing)
    from paycore.jobs import JobStatus, Worker, enqueue, list_jobs

    async with db.begin() as conn:
        for supplier, number in (("a", "6222020200112233421"), ("b", "6222020200112233422")):
            await open_payable(conn, supplier, funded="100.00")
            await verified_account(conn, supplier, number)
        await enqueue(conn, "settlement", {"settlement_id": "s-job",
                                           "business_date": days(1).isoformat()})
    real = settlement.settle_supplier

    async def refused_for_a(conn, settlement_id, supplier_id, *args, **kwargs):
        if supplier_id == "a":
            raise ledger.InvalidRequest("payable 2202.payable.a moved meanwhile")
        return await real(conn, settlement_id, supplier_id, *args, **kwargs)

    monkeypatch.setattr(settlement, "settle_supplier", refused_for_a)
    import paycore.commands.lending

    monkeypatch.setattr(paycore.commands.lending, "CONFIG", CONFIG, raising=False)
    await Worker(db).drain()
    async with db.connect() as conn:
        [job] = await list_jobs(conn, kind="settlement")
        b_paid = ledger.to_minor((await ledger.balance(conn, "2202.payable.b")).available)
    assert job.status is not JobStatus.SUCCEEDED and job.attempts == 1
    assert job.last_error and "a: not settled" in job.last_error
    assert b_paid == 0   # b was paid all the same
