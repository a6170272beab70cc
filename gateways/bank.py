"""The contract between paycore's payment core and each bank adapter.

The core (intents, attempts, refunds, payouts, notifications, the janitor) speaks only
these types; an adapter (one per wire protocol: `gateways.adapters.*`) turns them into its
bank's messages and back. Everything here is wire-neutral: amounts are `Money`, outcomes
are `BankOutcome`, and the only I/O is the adapter's own HTTP to its bank.

Errors tell the core what it may do next:
- `BankUnavailable`: nothing reached the bank (refused connection, 5xx before acceptance,
  circuit open), so nothing can have been debited: safe to fail over or retry;
- `OutcomeUnknown`: the request may have reached the bank (time-out after sending): the
  attempt/refund/payout goes to `unknown` and only a status inquiry settles it;
- `BankRejected`: the bank answered with a definite refusal (bad account, limit, ...).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from moneyed import Money


class BankOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: the bank has it but has not decided (UnionPay respCode 03/04/05, "processing")
    PROCESSING = "processing"
    #: the bank does not know this order (never reached it): safe to fail over
    NOT_FOUND = "not_found"
    #: payouts: paid, then sent back by the beneficiary's bank (退票); the money is back
    RETURNED = "returned"


class NotificationKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"
    PAYOUT = "payout"


class BankError(Exception):
    """Base of the errors an adapter raises; `bank` names the bank."""

    def __init__(self, bank: str, message: str) -> None:
        super().__init__(f"{bank}: {message}")
        self.bank = bank


class BankUnavailable(BankError):
    """Nothing reached the bank, or the bank refused before accepting: nothing debited."""


class OutcomeUnknown(BankError):
    """The request may have reached the bank; only a status inquiry can tell."""


class BankRejected(BankError):
    """The bank answered with a definite refusal."""

    def __init__(self, bank: str, message: str, code: str | None = None) -> None:
        super().__init__(bank, message)
        self.code = code


@dataclass(frozen=True)
class PaymentOrder:
    """One attempt at one bank: the order id the bank sees is the attempt id."""

    attempt_id: str
    amount: Money
    description: str
    #: where the bank sends the customer's browser back to
    return_url: str
    #: where the bank posts its asynchronous notification (our notification endpoint)
    notify_url: str
    created_at: dt.datetime
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class PaymentInstruction:
    """What the checkout page needs to send the customer to the bank: a browser form
    (`method` POST with `fields`, auto-submitted) or a plain redirect (`method` GET)."""

    method: str
    url: str
    fields: Mapping[str, str] = field(default_factory=dict)
    #: the bank's own id for the payment, when it gives one at creation (REST banks)
    bank_payment_id: str | None = None


@dataclass(frozen=True)
class BankNotification:
    """A notification whose signature has been verified; not yet checked against our
    records (that is the core's job: merchant, order, amount, currency, duplicates)."""

    bank: str
    kind: NotificationKind
    #: the bank's unique id of this transaction (payment, refund or payout): dedupe key
    bank_txn_id: str
    #: our id the bank echoes: attempt id, refund id or payout id
    reference: str
    outcome: BankOutcome
    amount: Money
    merchant_id: str
    occurred_at: dt.datetime
    #: fields worth keeping for audit (never secrets or full account numbers)
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BankReply:
    """What we answer the bank's notification with, in its own protocol."""

    status_code: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class PaymentStatus:
    """The bank's answer to a status inquiry about a payment attempt."""

    attempt_id: str
    outcome: BankOutcome
    bank_txn_id: str | None = None
    amount: Money | None = None
    settled_at: dt.datetime | None = None


@dataclass(frozen=True)
class RefundOrder:
    refund_id: str
    attempt_id: str
    #: the bank's id of the original payment (UnionPay: the original queryId)
    original_bank_txn_id: str
    amount: Money
    reason: str
    notify_url: str
    #: when we send it (default: the adapter's clock); pass the same time as
    #: `placed_at` to `query_refund` (UnionPay's inquiry needs the original txnTime)
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class RefundStatus:
    refund_id: str
    outcome: BankOutcome
    bank_txn_id: str | None = None
    amount: Money | None = None


@dataclass(frozen=True)
class Beneficiary:
    """Where a payout goes. `account_number` is redacted in every log and repr."""

    name: str
    account_number: str = field(repr=False)
    bank_name: str = ""


@dataclass(frozen=True)
class PayoutOrder:
    payout_id: str
    beneficiary: Beneficiary
    amount: Money
    description: str
    notify_url: str | None = None
    #: as `RefundOrder.created_at`, for `query_payout(..., placed_at=...)`
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class PayoutStatus:
    payout_id: str
    outcome: BankOutcome
    bank_txn_id: str | None = None
    amount: Money | None = None
    #: outcome RETURNED: the bank's reason (e.g. account closed) and its id of the return
    return_reason: str | None = None
    return_id: str | None = None


class BankGateway(Protocol):
    """One bank, spoken to in its own wire protocol."""

    @property
    def code(self) -> str:
        """Our short name for the bank, e.g. "unionpay"; used in account codes."""
        ...

    @property
    def merchant_id(self) -> str:
        """Our merchant id at this bank (checked on every notification)."""
        ...

    async def create_payment(self, order: PaymentOrder) -> PaymentInstruction: ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> BankNotification:
        """Verify the signature (and the replay window, where the protocol has one) and
        decode; raises `gateways.protocols.ProtocolError` subclasses on a bad message."""
        ...

    def acknowledge(self, notification: BankNotification | None, accepted: bool) -> BankReply:
        """Our answer to the bank: `accepted` False asks the bank to send it again later."""
        ...

    # `placed_at`: when the request was made (`PaymentOrder.created_at`, the refund's or
    # payout's `created_at`). Optional; a protocol whose inquiry names the original
    # transaction time (UnionPay queryTrans: orderId + txnTime) needs it after a restart,
    # when the adapter no longer remembers; the others ignore it.
    async def query_payment(
        self, attempt_id: str, *, placed_at: dt.datetime | None = None
    ) -> PaymentStatus: ...

    async def refund(self, order: RefundOrder) -> RefundStatus: ...

    async def query_refund(
        self, refund_id: str, *, placed_at: dt.datetime | None = None
    ) -> RefundStatus: ...

    async def payout(self, order: PayoutOrder) -> PayoutStatus: ...

    async def query_payout(
        self, payout_id: str, *, placed_at: dt.datetime | None = None
    ) -> PayoutStatus: ...
