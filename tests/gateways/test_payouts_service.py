"""record_payout (gateways.payout_records, the step under request_supplier_payout, not
public): recorded with a ledger hold in the caller's transaction, idempotent, conflicts
refused, books untouched on refusal; cancel releases the hold."""

from __future__ import annotations

import pytest

import gateways
import ledger
from gateways import Beneficiary, PayoutRequest, PayoutState
from gateways.payout_records import record_payout  # the bank mechanics, under the controls

from .core_helpers import assert_books_prove, balance_minor, cny, open_payable

BEN = Beneficiary("Hangzhou Silk Co.", "6222020200112233445", "ICBC Hangzhou")


def payout(pid: str = "po-1", amount: str = "100.00", **kw: object) -> PayoutRequest:
    fields: dict[str, object] = dict(payout_id=pid, beneficiary_ref="supplier:sup-001",
                                     beneficiary=BEN, amount=cny(amount),
                                     debit_account="2202.payable.sup-001", purpose="settlement")
    fields.update(kw)
    return PayoutRequest(**fields)  # type: ignore[arg-type]


async def test_request_records_and_reserves(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        p = await record_payout(conn, payout())
    assert p.status is PayoutState.REQUESTED
    assert p.amount == cny("100.00")
    assert p.bank is None
    assert "6222" not in repr(p.beneficiary)  # the account number never shows in a repr
    assert await balance_minor(db, "2202.payable.sup-001") == (-50000, 10000, 0)
    assert await balance_minor(db, "1103.clearing.payout") == (0, 0, 10000)
    async with db.connect() as conn:
        [h] = await ledger.load_holds(conn, [p.hold_id])
    assert h.external_ref == "po-1" and h.kind == "payout"
    await assert_books_prove(db)


async def test_same_request_is_the_same_payout_other_request_conflicts(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        first = await record_payout(conn, payout())
    async with db.begin() as conn:
        again = await record_payout(conn, payout())
    assert again == first
    with pytest.raises(gateways.PayoutConflict):
        async with db.begin() as conn:
            await record_payout(conn, payout(amount="100.01"))
    assert await balance_minor(db, "2202.payable.sup-001") == (-50000, 10000, 0)


async def test_more_than_owed_is_refused_and_nothing_recorded(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="50.00")
    with pytest.raises(ledger.BalanceLimitExceeded):
        async with db.begin() as conn:
            await record_payout(conn, payout())
    async with db.connect() as conn:
        assert await gateways.list_payouts(conn) == []
    await assert_books_prove(db)


@pytest.mark.parametrize("bad", [
    {"amount": "0.00"}, {"amount": "1.001"}, {"payout_id": ""},
    {"beneficiary": Beneficiary("", "1", "")},
])
async def test_bad_requests_are_precise_errors(db, bad):
    bad = dict(bad)
    amount = bad.pop("amount", "1.00")
    with pytest.raises(gateways.InvalidPaymentRequest):
        async with db.begin() as conn:
            await record_payout(conn, payout(amount=amount, **bad))


async def test_cancel_releases_the_hold_once(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        p = await record_payout(conn, payout())
    async with db.begin() as conn:
        canceled = await gateways.cancel_payout(conn, p.id)
        assert (await gateways.cancel_payout(conn, p.id)).status is PayoutState.CANCELED
    assert canceled.status is PayoutState.CANCELED
    assert await balance_minor(db, "2202.payable.sup-001") == (-50000, 0, 0)
    async with db.connect() as conn:
        assert [x.id for x in await gateways.list_payouts(
            conn, status=PayoutState.CANCELED)] == ["po-1"]
    await assert_books_prove(db)


async def test_settle_succeeded_posts_the_hold_with_the_payout_id(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        p = await record_payout(conn, payout())
    from gateways.store import transition
    async with db.begin() as conn:
        await transition(conn, p.id, PayoutState.REQUESTED, PayoutState.SUBMITTED, bank="x")
        done = await gateways.settle_payout(conn, p.id, gateways.BankOutcome.SUCCEEDED,
                                            bank_txn_id="B1")
        # settling again with the same word changes nothing
        again = await gateways.settle_payout(conn, p.id, gateways.BankOutcome.SUCCEEDED,
                                             bank_txn_id="B1")
    assert done.status is PayoutState.SUCCEEDED and again == done
    async with db.connect() as conn:
        entry = await ledger.find_entry(conn, "payout:po-1")
    assert entry is not None and entry.external_ref == "po-1"
    assert await balance_minor(db, "2202.payable.sup-001") == (-40000, 0, 0)
    assert await balance_minor(db, "1103.clearing.payout") == (-10000, 0, 0)
    with pytest.raises(gateways.IllegalTransition):
        async with db.begin() as conn:
            await gateways.settle_payout(conn, p.id, gateways.BankOutcome.FAILED)
    await assert_books_prove(db)
