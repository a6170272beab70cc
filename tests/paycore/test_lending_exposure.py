"""Issue #15 §1 through paycore's workflows: a loan paid out to the supplier's bank, then
the settlement run that repays it from the supplier payable. The line moves only with the
goods-sold money; the exposure moves with the loan. SQLite and PostgreSQL."""

from __future__ import annotations

import lending
from lending import DisbursementMode
from paycore import disbursement, settlement
from tests.lending.book import CONFIG, approved, days, good_borrower, verify_ok
from tests.paycore.test_settlement import verified_account


async def line(db, on_day: int = 0) -> lending.CreditLine:
    async with db.connect() as conn:
        return await lending.current_credit_line(conn, "sup-001", "supply_chain", days(on_day),
                                                 CONFIG)


async def test_a_paid_out_loan_and_its_settlement_offset_move_exposure_not_the_line(db):
    async with db.begin() as conn:
        await good_borrower(conn)   # 50,000.00 owed for goods: a 40,000.00 + 50,000.00 line
        await verified_account(conn)
        await approved(conn, "PO1", amount="30000.00", term=30)
        out = await disbursement.disburse(conn, "PO1", days(0), CONFIG,
                                          mode=DisbursementMode.PAYOUT)
    assert out.payout is not None and out.loan.status is lending.LoanStatus.ACTIVE
    first = await line(db)
    # the proceeds went through the payable and out again: the line is what it was
    assert (first.limit_minor, first.outstanding_minor, first.available_minor) == (
        9_000_000, 3_000_000, 6_000_000)

    await lending.run_accrual(db, days(29), CONFIG)
    run = await settlement.run_settlement(db, "S-exp", days(30), CONFIG, suppliers=["sup-001"])
    [sup] = run.suppliers
    assert sup.loans_repaid == ("PO1",)           # 30,000.00 and 30 days of interest
    after = await line(db, 30)
    # the goods money repaid the loan and the rest is on its way out: nothing unsettled,
    # nothing lent — the line is the sales part alone (on 1 April, March's 50,000.00 of
    # captures is a month of sales: 50 % of 550,000.00 / 6), all of it available
    assert after.steps[0].amount_minor == 0 and after.outstanding_minor == 0
    assert (after.limit_minor, after.available_minor) == (4_583_333, 4_583_333)
    await verify_ok(db)
