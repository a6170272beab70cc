"""The payment core's records and requests: small immutable values, no I/O."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from moneyed import Money

from gateways.bank import Beneficiary, PaymentInstruction
from gateways.states import AttemptState, IntentState, PayoutState, RefundState
from ledger import from_minor

__all__ = [
    "Attempt",
    "Checkout",
    "IntentRequest",
    "PaymentIntent",
    "Payout",
    "PayoutRequest",
    "Refund",
    "RefundCommission",
    "SupplierTerms",
]


class RefundCommission(StrEnum):
    #: give back the commission in proportion to the amount refunded
    PROPORTIONAL = "proportional"
    #: the marketplace keeps its commission; the supplier bears the whole refund
    KEEP = "keep"


@dataclass(frozen=True)
class SupplierTerms:
    supplier_id: str
    #: e.g. Decimal("0.03"); exact to parts per million
    commission_rate: Decimal
    refund_commission: RefundCommission = RefundCommission.PROPORTIONAL


@dataclass(frozen=True)
class IntentRequest:
    """A checkout order to be paid through `bank` (the bank the customer chose)."""

    merchant_id: str
    order_id: str
    supplier_id: str
    amount: Money
    bank: str
    description: str = ""
    #: where the bank sends the customer's browser back to
    return_url: str = "http://127.0.0.1/checkout/return"
    #: how long the customer has to pay
    expires_in: dt.timedelta = dt.timedelta(minutes=30)
    #: the first attempt's id (the order id the bank sees), for callers that must know
    #: it in advance (tests injecting a sandbox fault); generated when None
    attempt_id: str | None = None


@dataclass(frozen=True)
class PaymentIntent:
    id: str
    merchant_id: str
    order_id: str
    supplier_id: str
    amount_minor: int
    currency: str
    bank: str | None
    status: IntentState
    description: str
    current_attempt_id: str | None
    captured_minor: int
    commission_minor: int
    refund_reserved_minor: int
    refunded_minor: int
    refunded_commission_minor: int
    review_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    expires_at: dt.datetime

    @property
    def amount(self) -> Money:
        return from_minor(self.amount_minor, self.currency)

    @property
    def captured(self) -> Money:
        return from_minor(self.captured_minor, self.currency)

    @property
    def refunded(self) -> Money:
        return from_minor(self.refunded_minor, self.currency)

    @property
    def refundable(self) -> Money:
        return from_minor(self.captured_minor - self.refund_reserved_minor, self.currency)


@dataclass(frozen=True)
class Attempt:
    id: str
    intent_id: str
    bank: str
    bank_merchant_id: str
    status: AttemptState
    amount_minor: int
    currency: str
    bank_payment_id: str | None
    bank_txn_id: str | None
    instruction: Mapping[str, Any] | None
    failure_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    settled_at: dt.datetime | None

    @property
    def amount(self) -> Money:
        return from_minor(self.amount_minor, self.currency)

    @property
    def payment_instruction(self) -> PaymentInstruction | None:
        if not self.instruction:
            return None
        i = self.instruction
        return PaymentInstruction(method=i["method"], url=i["url"], fields=dict(i["fields"]),
                                  bank_payment_id=i.get("bank_payment_id"))


@dataclass(frozen=True)
class Checkout:
    """What `create_intent` returns: the intent, its attempt at the chosen bank, and what
    the checkout page needs to send the customer there (None when the bank could not be
    reached: the intent is then failed and may be retried at another bank)."""

    intent: PaymentIntent
    attempt: Attempt
    instruction: PaymentInstruction | None


@dataclass(frozen=True)
class Refund:
    id: str
    intent_id: str
    attempt_id: str
    bank: str
    status: RefundState
    amount_minor: int
    currency: str
    reason: str
    commission_minor: int | None
    hold_id: uuid.UUID | None
    bank_txn_id: str | None
    failure_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    settled_at: dt.datetime | None

    @property
    def amount(self) -> Money:
        return from_minor(self.amount_minor, self.currency)


@dataclass(frozen=True)
class PayoutRequest:
    """A payout of `amount` from ledger account `debit_account` (e.g. a supplier payable,
    or a loan account for a disbursement) to `beneficiary`.

    `payout_id` is the caller's id (idempotency key; sent to the bank as the end-to-end
    id; the ledger entry's external_ref). `banks` is the failover order (empty: the
    directory's default order)."""

    payout_id: str
    beneficiary_ref: str
    beneficiary: Beneficiary
    amount: Money
    debit_account: str
    purpose: str
    description: str = ""
    banks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Payout:
    id: str
    beneficiary_ref: str
    beneficiary: Beneficiary
    amount_minor: int
    currency: str
    debit_account: str
    purpose: str
    description: str
    banks: tuple[str, ...]
    bank: str | None
    status: PayoutState
    hold_id: uuid.UUID
    entry_id: uuid.UUID | None
    bank_txn_id: str | None
    submit_rounds: int
    failure_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    settled_at: dt.datetime | None = field(default=None)
    #: a qualified success (UnionPay A6) a person should look at; see `list_in_review`
    review_reason: str | None = field(default=None)

    @property
    def amount(self) -> Money:
        return from_minor(self.amount_minor, self.currency)
