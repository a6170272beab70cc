"""A disbursement the borrower never received: its payout came back from the bank (退票:
wrong name, closed account). The loan goes back to `approved` — the credit decision
stands, only the payment failed — and its books are put as if it had never been paid:

    loan.disbursement.returned
      Dr supplier payable (net)   Dr fee income (origination fee)   Cr loan portfolio
      Dr interest income          Cr interest receivable     (every day accrued)
      Dr penalty income           Cr penalty receivable
    loan.funding.repay (if funded)
      Dr funding liability        Cr fund source (the drawn principal)

No interest is charged for any day: the money was never with the borrower. The returned
money (credited back to the payable by the payout's return) is taken off the payable by
the same entry, so it can neither be paid out again nor repay a loan it never funded.
The funding line's interest already accrued stays: the facility was drawn for those days.

Only a loan nothing has happened to since it was paid out can be unwound so (nothing
repaid, not extended, not written off), and only while the returned money is still
available on the payable; anything else is `CannotUnwind` for a person.
`times_disbursed` numbers the disbursements of a loan, so a loan disbursed again after
an unwind books under new idempotency keys.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from lending import store
from lending.borrowers import get_borrower
from lending.config import LendingConfig
from lending.errors import LendingError
from lending.lifecycle import LoanStatus, StatusChange
from lending.postings import Accounts, entry, legs
from lending.schema import loan_events, repayments
from lending.store import RUNNING, LoanRecord

__all__ = ["CannotUnwind", "disbursement_key", "times_disbursed", "unwind_disbursement"]

log = structlog.get_logger("lending")


class CannotUnwind(LendingError):
    """The loan has moved on since it was paid out (repaid in part, extended, ...): a
    person decides what the returned disbursement means for it."""

    code = "loan-cannot-unwind"


async def times_disbursed(conn: AsyncConnection, loan_id: str) -> int:
    """How many times the loan has been disbursed (0 for one never disbursed)."""
    found = await conn.scalar(sa.select(sa.func.count()).select_from(loan_events).where(
        loan_events.c.loan_id == loan_id,
        loan_events.c.to_status == LoanStatus.DISBURSED.value))
    return int(found or 0)


def disbursement_key(kind: str, loan_id: str, earlier: int) -> str:
    """The idempotency key of a disbursement's entry: the first keeps the plain key, a
    disbursement after an unwind is numbered."""
    return f"{kind}:{loan_id}" if earlier == 0 else f"{kind}:{loan_id}:{earlier + 1}"


async def unwind_disbursement(conn: AsyncConnection, loan_id: str, *, payout_id: str,
                              on: dt.date, reason: str, config: LendingConfig) -> LoanRecord:
    """Put a loan whose payout `payout_id` came back to `approved`, its disbursement and
    accrual offset (see the module docstring), in the caller's transaction. Unwinding a
    loan already back to approved from this payout changes nothing."""
    record = await store.load(conn, loan_id, config, for_update=True)
    if record.status is LoanStatus.APPROVED and record.payout_id is None:
        return record
    if record.payout_id != payout_id:
        raise CannotUnwind(f"loan {loan_id} was paid by payout {record.payout_id}, not "
                           f"{payout_id}")
    has_repayment = await conn.scalar(sa.select(sa.func.count()).select_from(repayments)
                                      .where(repayments.c.loan_id == loan_id))
    if (record.status not in RUNNING or has_repayment or record.loan.extensions
            or record.principal_repaid_minor or record.interest_paid_minor
            or record.penalty_paid_minor or record.overpaid_minor):
        raise CannotUnwind(
            f"loan {loan_id} is {record.status.value} and has been repaid or extended since "
            f"payout {payout_id} went out; the payout came back ({reason}): a person "
            "decides how to settle it")
    borrower = await get_borrower(conn, record.loan.borrower_id)
    acc = Accounts(record, config, payable_override=borrower.payable_account)
    principal = record.loan.amount_minor
    fee = record.loan.product.origination_fee_for(principal)
    interest, penalty = record.interest_accrued_minor, record.penalty_accrued_minor
    cur = record.currency
    # the returned proceeds must still be on the payable to be taken off it: paid out
    # again meanwhile (before this rule ran ahead of every payout), the shortfall is a
    # person's to settle — not a ledger limit error that stops every other loan's unwind
    on_payable = ledger.to_minor((await ledger.balance(conn, acc.payable)).available)
    if on_payable < principal - fee:
        raise CannotUnwind(
            f"loan {loan_id}'s payout {payout_id} came back ({reason}), but only "
            f"{ledger.from_minor(max(on_payable, 0), cur).amount} {cur} of its "
            f"{ledger.from_minor(principal - fee, cur).amount} {cur} is still available on "
            f"{acc.payable} (paid out or reserved again since): a person decides how to "
            "settle it")
    earlier = await times_disbursed(conn, loan_id)
    requests = [entry(
        f"loan.disbursement.returned:{loan_id}:{payout_id}", "loan.disbursement.returned", on,
        legs(cur, [(acc.payable, principal - fee), (acc.fee_income, fee),
                   (acc.interest_income, interest), (acc.penalty_income, penalty)],
             [(acc.portfolio, principal), (acc.interest_receivable, interest),
              (acc.penalty_receivable, penalty)]),
        f"Loan {loan_id}: payout {payout_id} came back ({reason}); disbursement and "
        "interest offset", record, payout_id=payout_id, reason=reason[:500])]
    requests[0] = dataclasses.replace(requests[0], external_ref=payout_id)
    if config.funding is not None:
        f = config.funding
        requests.append(entry(
            disbursement_key("loan.funding.repay.returned", loan_id, earlier - 1),
            "loan.funding.repay", on,
            legs(cur, [(f.liability, principal)], [(f.fund_source, principal)]),
            f"Loan {loan_id}'s drawing on the {f.name} repaid: its payout came back",
            record))
    posted = await ledger.post_many(conn, requests)
    loan = dataclasses.replace(
        record.loan, status=LoanStatus.APPROVED, disbursed_on=None, maturity=None,
        contractual_maturity=None,
        history=(*record.loan.history, StatusChange(
            LoanStatus.APPROVED, max(on, record.loan.last_changed_on),
            f"payout {payout_id} came back ({reason}): approved, not disbursed")))
    after = dataclasses.replace(
        record, loan=loan, disbursement_mode=None, payout_id=None, accrued_through=None,
        interest_accrued_minor=0, penalty_accrued_minor=0,
        fees_charged_minor=record.fees_charged_minor - fee,
        fees_paid_minor=record.fees_paid_minor - fee, max_dpd=0)
    saved = await store.save(conn, record, after, entry_id=posted[0].id,
                             actor="system:payout-return")
    log.warning("loan.disbursement_returned", loan_id=loan_id, payout_id=payout_id,
                principal_minor=principal, interest_minor=interest, penalty_minor=penalty,
                entry_id=str(posted[0].id))
    return saved
