"""A payout row from before the payout register keeps only a masked number (the squashed
migration 0026 masked them in place): such a payout was never checked against a verified
account in the register, so the submitter withdraws it — no bank is asked, the hold is
released and the withdrawal is in the audit trail. SQLite and PostgreSQL."""

from __future__ import annotations

import gateways
import ledger
from gateways import PayoutState
from gateways.payout_records import record_payout

from .core_helpers import assert_books_prove, balance_minor, open_payable


async def test_a_payout_with_a_masked_number_is_withdrawn_never_sent(db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-002", funded="500.00")
        # as 0026 left a pre-register payout: the number masked on its row, no register row
        await record_payout(conn, gateways.PayoutRequest(
            "po-legacy", "supplier:sup-002", gateways.Beneficiary("Old Supplier", "***7889", "ICBC"),
            ledger.from_minor(10_000, "CNY"), "2202.payable.sup-002", "settlement"))
    assert await balance_minor(db, "2202.payable.sup-002") == (-50_000, 10_000, 0)

    # no bank is configured at all: the payout must stop before any would be asked
    [p] = await gateways.submit_payouts(db, gateways.BankDirectory([]), payout_ids=["po-legacy"])
    assert p.status is PayoutState.CANCELED and p.bank is None
    assert "not to an account in the register" in (p.failure_reason or "")
    # the reservation is released: the supplier's payable is whole again
    assert await balance_minor(db, "2202.payable.sup-002") == (-50_000, 0, 0)
    async with db.connect() as conn:
        trail = await gateways.audit_trail(conn, "po-legacy")
    assert [t["action"] for t in trail] == ["payout.withdrawn"]
    await assert_books_prove(db)
