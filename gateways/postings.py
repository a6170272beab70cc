"""The journal entries of payments, refunds and payouts (DESIGN.md §4), built as ledger
requests and written in the caller's connection, i.e. in the same transaction as the
state change they book. Idempotency keys are per attempt/refund/payout, so a replay posts
nothing.

capture:  Dr 1102.clearing.<bank>   Cr 2202.payable.<supplier>   Cr 6001.income.commission
refund:   the reverse (commission given back in proportion, or kept: per supplier terms)
payout:   a hold when requested (Dr <debit account>, Cr 1103.clearing.payout), posted when
          the bank pays, voided when the bank definitely does not.
"""

from __future__ import annotations

import datetime as dt
import weakref
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from moneyed import Money
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from gateways.types import RefundCommission
from ledger import AccountSpec, AccountType, BalanceLimit, EntryRequest, HoldRequest, Posting

COMMISSION_ACCOUNT = "6001.income.commission"
#: lanes of the commission account (ledger.add_lanes raises an existing one's)
COMMISSION_LANES = 16
#: lanes of each bank's clearing account, which every capture at that bank debits
#: (reconciliation follows each lane with its own cursor; `paycore accounts add-lanes`
#: raises an existing account's)
CLEARING_LANES = 16
PAYOUT_CLEARING = "1103.clearing.payout"
#: a payout's reservation outlives any sensible bank delay; the janitor settles it first
PAYOUT_HOLD_LIFETIME = dt.timedelta(days=90)


def clearing_account(bank: str) -> str:
    return f"1102.clearing.{bank}"


def payable_account(supplier_id: str) -> str:
    return f"2202.payable.{supplier_id}"


def commission_on(amount_minor: int, rate: Decimal) -> int:
    """The commission in minor units, rounded half-even; the residue stays with the
    supplier, so capture = payable + commission exactly."""
    return int((Decimal(amount_minor) * rate).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def refund_commission_part(*, policy: RefundCommission, captured_minor: int,
                           commission_minor: int, refunded_before_minor: int,
                           commission_refunded_before_minor: int, amount_minor: int) -> int:
    """The commission given back with a refund of `amount_minor`.

    Proportional: computed on the running total (what the refunds so far should have
    given back, less what they did), so several partial refunds add up to exactly the
    commission of the whole when everything is refunded; nothing is lost to rounding."""
    if policy is RefundCommission.KEEP:
        return 0
    total_after = refunded_before_minor + amount_minor
    due = (Decimal(commission_minor) * total_after / Decimal(captured_minor)).quantize(
        Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(due) - commission_refunded_before_minor


#: per database (engine), the account codes seen to exist: an account is never deleted
#: (closing one keeps its row, and posting to it is refused by the ledger), so once seen,
#: a checkout need not ask again whether it exists
_KNOWN_OPEN: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


async def ensure_open(conn: AsyncConnection, spec: AccountSpec) -> None:
    """Open the account unless an account with this code exists (whatever its name:
    finance may have opened it first, with a better one)."""
    known = _KNOWN_OPEN.setdefault(conn.engine.sync_engine, set())
    if spec.code in known:
        return
    if await ledger.find_account(conn, spec.code) is not None:
        known.add(spec.code)
        return
    try:
        # in a savepoint: of two checkouts opening the same account at once, the second
        # meets the unique code and finds the first one's account afterwards
        async with conn.begin_nested():
            await ledger.ensure_account(conn, spec)
    except IntegrityError:
        if await ledger.find_account(conn, spec.code) is None:
            raise


async def ensure_payment_accounts(conn: AsyncConnection, bank: str, supplier_id: str,
                                  currency: str) -> None:
    # every capture at the bank debits it: its postings spread over lanes (a clearing
    # account carries no balance limit, so it may have them)
    await ensure_open(conn, AccountSpec(clearing_account(bank), f"{bank.upper()} gateway clearing",
                                        AccountType.ASSET, currency, lanes=CLEARING_LANES))
    await ensure_open(conn, AccountSpec(
        payable_account(supplier_id), f"Payable to supplier {supplier_id}", AccountType.LIABILITY,
        currency, balance_limit=BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS,
        owner_ref=f"supplier:{supplier_id}"))
    # every capture credits it: its postings spread over lanes, so checkouts do not queue
    # on one balance row
    await ensure_open(conn, AccountSpec(COMMISSION_ACCOUNT, "Marketplace commission",
                                        AccountType.INCOME, currency, lanes=COMMISSION_LANES))


def _money(units: int, currency: str) -> Money:
    return ledger.from_minor(units, currency)


def capture_entry(*, attempt_id: str, intent_id: str, order_id: str, bank: str,
                  supplier_id: str, amount_minor: int, commission_minor: int, currency: str,
                  bank_txn_id: str, effective_date: dt.date) -> EntryRequest:
    postings = [
        Posting(clearing_account(bank), debit=_money(amount_minor, currency)),
        Posting(payable_account(supplier_id), credit=_money(amount_minor - commission_minor,
                                                            currency)),
    ]
    if commission_minor:
        postings.append(Posting(COMMISSION_ACCOUNT, credit=_money(commission_minor, currency)))
    return EntryRequest(
        idempotency_key=f"capture:{attempt_id}", kind="payment.capture",
        effective_date=effective_date, external_ref=bank_txn_id,
        description=f"Order {order_id} paid at {bank}",
        metadata={"attempt_id": attempt_id, "intent_id": intent_id, "order_id": order_id,
                  "bank": bank},
        postings=postings,
    )


def refund_entry(*, refund_id: str, attempt_id: str, intent_id: str, order_id: str, bank: str,
                 supplier_id: str, amount_minor: int, commission_minor: int, currency: str,
                 bank_refund_id: str, effective_date: dt.date) -> EntryRequest:
    postings = [
        Posting(payable_account(supplier_id), debit=_money(amount_minor - commission_minor,
                                                           currency)),
    ]
    if commission_minor:
        postings.append(Posting(COMMISSION_ACCOUNT, debit=_money(commission_minor, currency)))
    postings.append(Posting(clearing_account(bank), credit=_money(amount_minor, currency)))
    return EntryRequest(
        idempotency_key=f"refund:{refund_id}", kind="payment.refund",
        effective_date=effective_date, external_ref=bank_refund_id,
        description=f"Refund of order {order_id} at {bank}",
        metadata={"refund_id": refund_id, "attempt_id": attempt_id, "intent_id": intent_id,
                  "order_id": order_id, "bank": bank},
        postings=postings,
    )


def refund_hold(*, refund_id: str, entry: EntryRequest, now: dt.datetime) -> HoldRequest:
    """The refund's legs reserved while the bank has it: the supplier's payable cannot be
    paid out from under a refund in flight. Voided when the bank settles it (the entry is
    then posted with the bank's refund id as its external reference)."""
    return HoldRequest(
        idempotency_key=f"refund-hold:{refund_id}", kind="payment.refund.reserve",
        expires_at=now + PAYOUT_HOLD_LIFETIME, external_ref=refund_id,
        description=f"Refund {refund_id} reserved while the bank processes it",
        metadata=dict(entry.metadata), postings=list(entry.postings),
    )


async def ensure_payout_clearing(conn: AsyncConnection, currency: str) -> None:
    await ensure_open(conn, AccountSpec(PAYOUT_CLEARING, "Payouts in flight", AccountType.ASSET,
                                        currency))


def payout_hold(*, payout_id: str, debit_account: str, amount: Money, beneficiary_ref: str,
                purpose: str, description: str, now: dt.datetime) -> HoldRequest:
    return HoldRequest(
        idempotency_key=f"payout:{payout_id}", kind="payout",
        expires_at=now + PAYOUT_HOLD_LIFETIME, external_ref=payout_id,
        description=description or f"Payout {payout_id} ({purpose})",
        metadata={"payout_id": payout_id, "beneficiary_ref": beneficiary_ref,
                  "purpose": purpose},
        postings=[Posting(debit_account, debit=amount), Posting(PAYOUT_CLEARING, credit=amount)],
    )
