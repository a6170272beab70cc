"""Red team, many processes at once: a returned loan disbursement whose loan cannot be
unwound (repaid in part since) keeps its proceeds on the borrower's payable, and every
supplier payout is refused until a person has settled the loan
(`paycore.disbursement.refuse_payout_over_returned_proceeds`). That check and the return
must not pass each other: a payout asked for while the return is being booked in
another process read "nothing returned", then waited for the payable the return held,
and reserved the returned proceeds once it was committed. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import gateways
import lending
from tests.lending.book import CONFIG, cny, days, verify_ok
from tests.paycore.test_payout_safety import (  # noqa: F401 - the autouse fixture
    CONTROLS,
    _disbursed_by_payout,
    _lending_config_of_the_process,
    _loan,
    at,
)
from tests.paycore.test_settlement import ONBOARDED, verified_account
from tests.redteam.test_concurrency import interleave

__all__: list[str] = []


async def test_a_payout_asked_for_while_a_disbursement_return_is_booked(db):
    payout = await _disbursed_by_payout(db, "RR1")
    async with db.begin() as conn:
        # the bank pays the proceeds out...
        await conn.execute(gateways.schema.payouts.update().where(
            gateways.schema.payouts.c.id == payout.id).values(
            status=gateways.PayoutState.SUBMITTED.value, bank="restbank"))
        await gateways.settle_payout(conn, payout.id, gateways.BankOutcome.SUCCEEDED,
                                     bank_txn_id="bt-rr1", now=at(1))
        # ...the borrower repays a little (so the loan can no longer be unwound)...
        await lending.repay_loan(conn, "RR1", cny("100.00"), days(1), CONFIG,
                                 repayment_id="rp-rr1", source="bank")
        # ...and has a second verified account
        other = await verified_account(conn, number="6222020200999988887")

    def book_return(conn: Any) -> Any:
        return gateways.book_payout_return(
            conn, payout.id, bank="restbank", bank_return_id="rt-rr1", amount_minor=None,
            currency=None, reason="account closed", source="notification", now=at(2))

    def ask_for_the_proceeds(conn: Any) -> Any:
        return gateways.request_supplier_payout(conn, gateways.SupplierPayoutRequest(
            payout_id="po-grab", supplier_id="sup-001", account_id=other.id,
            amount=payout.amount, requested_by="user:merchant-ops", manual=True), CONTROLS,
            now=ONBOARDED + dt.timedelta(days=30))

    booked, asked = await interleave(db, book_return, ask_for_the_proceeds)
    assert booked is gateways.ReturnApplied.BOOKED
    assert isinstance(asked, gateways.PayoutBlocked), asked
    async with db.connect() as conn:
        assert await gateways.find_supplier_payout(conn, "po-grab") is None
    loan = await _loan(db, "RR1")
    assert loan.status is lending.LoanStatus.ACTIVE    # left for a person
    await verify_ok(db)
