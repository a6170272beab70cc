"""Payouts that come back (退票): the beneficiary's bank sends a paid payout back (wrong
name, closed account) and our bank reports it — by notification, or in its answer to a
status inquiry (`check_payout_returns`).

A return is a new movement on the bank account, not an undo: the bank's statement shows
the payout going out and the return coming in, so the books show both too. The return
is its own journal entry, `payout.return` (Dr 1103.clearing.payout, Cr the account the
payout was paid from, e.g. the supplier's payable), with the payout id as its external
reference, like the payout's; reconciliation matches each to its own statement line. (A
`ledger.reverse` of the payout would read as "never happened", and reconciliation
cancels an entry against its reversal.)

Applied once: the payout moves `succeeded -> returned` by compare-and-set and the entry's
idempotency key is per payout, in one transaction; a return reported again (the
notification twice, or the notification after the inquiry) changes nothing. A return for
a payout that has not succeeded here, or for another amount, books nothing and goes to
review; every booked return is a review item too, carrying the bank's reason (someone
must correct the beneficiary's details before the money is paid again). The register's
account it went to is suspended in the same transaction (`suspend_account`): unverified,
with the bank's reason, so no settlement run pays it again until a second person has
verified it again. Last, the application's return hooks run in the same transaction
(`gateways.payout_hooks.after_payout_returned`; paycore unwinds a returned loan
disbursement there).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from gateways import postings
from gateways.beneficiaries import suspend_account
from gateways.payout_accounts import find_supplier_payout
from gateways.payout_hooks import run_return_hooks
from gateways.payout_reviews import ReviewKind, open_payout_review
from gateways.schema import payouts
from gateways.states import PayoutState
from gateways.store import load_payout, transition, utcnow
from gateways.types import Payout
from ledger import EntryRequest, Posting

__all__ = ["ReturnApplied", "ReturnCheck", "book_payout_return", "payout_return_entry"]

log = structlog.get_logger("gateways.payout_returns")


class ReturnApplied(StrEnum):
    BOOKED = "booked"
    #: the payout was returned already: nothing changed
    DUPLICATE = "duplicate"
    #: nothing booked; a person looks (not succeeded here, or another amount)
    REVIEW = "review"


@dataclass
class ReturnCheck:
    """What `check_payout_returns` found."""

    asked: int = 0
    booked: list[str] = field(default_factory=list)
    to_review: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def payout_return_entry(payout: Payout, *, bank: str, bank_return_id: str, reason: str,
                        effective_date: dt.date) -> EntryRequest:
    """Dr 1103.clearing.payout, Cr the payout's debit account: the money is back in the
    bank account and owed again to whom the payout was for."""
    amount = ledger.from_minor(payout.amount_minor, payout.currency)
    return EntryRequest(
        idempotency_key=f"payout-return:{payout.id}", kind="payout.return",
        effective_date=effective_date, external_ref=payout.id,
        description=f"Payout {payout.id} returned by {bank}: {reason}"[:500],
        metadata={"payout_id": payout.id, "bank": bank, "bank_return_id": bank_return_id,
                  "reason": reason[:500], "beneficiary_ref": payout.beneficiary_ref,
                  "purpose": payout.purpose},
        postings=[Posting(postings.PAYOUT_CLEARING, debit=amount),
                  Posting(payout.debit_account, credit=amount)],
    )


async def book_payout_return(conn: AsyncConnection, payout_id: str, *, bank: str,
                             bank_return_id: str | None, amount_minor: int | None,
                             currency: str | None, reason: str, source: str,
                             now: dt.datetime | None = None) -> ReturnApplied:
    """Apply the bank's report that a payout came back, in the caller's transaction.
    `amount_minor`/`currency`: what the bank stated (None: it stated none)."""
    now = now or utcnow()
    reason = reason.strip() or "no reason given"
    # locked: the bank's notification and the return check may report one return at the
    # same moment; the second waits here and sees RETURNED (a duplicate), where reading
    # first it met the first's compare-and-set (ConcurrentTransition), which ended the
    # return check's loop over every other payout
    payout = await load_payout(conn, payout_id, for_update=True)
    if payout.status is PayoutState.RETURNED:
        return ReturnApplied.DUPLICATE
    stated = (f"{ledger.from_minor(amount_minor, currency).amount} {currency}"
              if amount_minor is not None and currency else "no amount")

    async def review(kind: ReviewKind, detail: str, entry_id: uuid.UUID | None = None) -> None:
        await open_payout_review(conn, payout, kind, detail, bank=bank,
                                 bank_txn_id=bank_return_id, amount_minor=amount_minor,
                                 currency=currency, entry_id=entry_id, now=now)

    if amount_minor is not None and (amount_minor, currency) != (payout.amount_minor,
                                                                 payout.currency):
        await review(ReviewKind.RETURN_NOT_BOOKED, (
            f"{bank} reports payout {payout.id} returned ({reason}) for {stated}, not "
            f"{payout.amount.amount} {payout.currency}: nothing booked"))
        return ReturnApplied.REVIEW
    if payout.status is not PayoutState.SUCCEEDED:
        await review(ReviewKind.RETURN_NOT_BOOKED, (
            f"{bank} reports payout {payout.id} returned ({reason}) but it is "
            f"{payout.status.value} here: nothing booked; find out from the bank what "
            "happened to the money"))
        return ReturnApplied.REVIEW
    await transition(conn, payout.id, PayoutState.SUCCEEDED, PayoutState.RETURNED, now=now,
                     failure_reason=f"returned by {bank}: {reason}"[:2000])
    entry = await ledger.post(conn, payout_return_entry(
        payout, bank=bank, bank_return_id=bank_return_id or "", reason=reason,
        effective_date=now.date()))
    await review(ReviewKind.RETURNED, (
        f"returned by {bank}: {reason}; {payout.amount.amount} {payout.currency} booked back "
        f"to {payout.debit_account}: correct the beneficiary's details "
        f"({payout.beneficiary_ref}) before paying again"), entry_id=entry.id)
    record = await find_supplier_payout(conn, payout.id)
    if record is not None:
        # the account it went to receives nothing more until a person has looked again
        await suspend_account(conn, record.account_id, reason=f"{bank}: {reason}",
                              payout_id=payout.id, now=now)
    # what the application does with money that came back (paycore: a loan disbursement
    # is unwound now, so its proceeds never sit on the payable to be paid out again)
    await run_return_hooks(conn, await load_payout(conn, payout.id))
    log.warning("payout.returned", payout_id=payout.id, bank=bank,
                bank_return_id=bank_return_id, reason=reason, source=source,
                entry_id=str(entry.id))
    return ReturnApplied.BOOKED


async def returnable_payouts(conn: AsyncConnection, *, since: dt.datetime,
                             payout_ids: Sequence[str] | None = None,
                             limit: int = 500) -> list[tuple[str, str]]:
    """(payout id, bank) of succeeded payouts settled since `since` (or those named)."""
    query = sa.select(payouts.c.id, payouts.c.bank).where(
        payouts.c.status == PayoutState.SUCCEEDED.value, payouts.c.bank.is_not(None))
    if payout_ids is not None:
        query = query.where(payouts.c.id.in_(list(payout_ids)))
    else:
        query = query.where(payouts.c.settled_at >= since)
    rows = await conn.execute(query.order_by(payouts.c.settled_at, payouts.c.id).limit(limit))
    return [(r.id, r.bank) for r in rows]
