"""The contract between paycore's payment core and each bank adapter.

The core (intents, attempts, refunds, payouts, notifications, the janitor) speaks only
these types; an adapter (one per wire protocol: `gateways.adapters.*`) turns them into its
bank's messages and back. Everything here is wire-neutral: amounts are `Money`, outcomes
are `BankOutcome`, and the only I/O is the adapter's own HTTP to its bank.

Errors tell the core what it may do next (`gateways.adapters._http` classifies):
- `BankUnavailable`: provably nothing reached the bank (the connection was refused or
  never made, the name did not resolve, the circuit is open) or the bank answered with
  its own documented "not processed" code: nothing can have been debited, safe to fail
  over or retry;
- `OutcomeUnknown`: anything else that is not an answer: a time-out after sending, a
  connection dropped mid-answer, any 5xx (a 500, 502, 503 or 504 can come after the bank
  booked it): the attempt/refund/payout goes to `unknown`, only a status inquiry settles it;
- `BankRejected`: the bank answered with a definite refusal (bad account, limit, ...).

Every call that may move money is first recorded as a `BankCall` (gateways.calls), in a
committed transaction of its own, with everything an inquiry will need; the inquiries
take that record, so any process can ask, not only the one that sent the request.
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
class BankCall:
    """One request that may move money, as recorded before it was sent: what any later
    inquiry needs to name it to the bank, whichever process asks."""

    #: our id: the attempt, refund or payout id (what the bank echoes back)
    reference: str
    #: the transaction time exactly as sent (UnionPay `txnTime`), whole seconds, UTC
    placed_at: dt.datetime
    #: the id the bank knows the order by (UnionPay `orderId`); None: `reference`
    bank_order_id: str | None = None
    #: how many times this reference has been handed to a bank (1 for the first)
    attempt_no: int = 1
    #: the bank's own id for it once an answer named one (UnionPay `queryId`)
    bank_ref: str | None = None

    @classmethod
    def of(cls, order: PaymentOrder | RefundOrder | PayoutOrder) -> BankCall:
        """The call an order makes (for a caller that holds the order itself)."""
        if isinstance(order, PaymentOrder):
            return cls(order.attempt_id, order.created_at)
        if isinstance(order, RefundOrder):
            return cls(order.refund_id, order.created_at)
        return cls(order.payout_id, order.created_at)


def whole_seconds(moment: dt.datetime) -> dt.datetime:
    """A transaction time as the banks' wire formats carry it (to the second, UTC)."""
    return moment.astimezone(dt.UTC).replace(microsecond=0)


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
    #: as `RefundStatus.review`: a success the bank itself qualified
    review: str | None = None


@dataclass(frozen=True)
class BankReply:
    """What we answer the bank's notification with, in its own protocol."""

    status_code: int
    content_type: str
    body: bytes
    #: the notification did not pass the bank's own verification (signature, replay
    #: window, format): anyone can send such a one, so the API counts these per address
    #: and refuses an address past its limit; a verified one is never throttled
    unverified: bool = False


@dataclass(frozen=True)
class PaymentStatus:
    """The bank's answer to a status inquiry about a payment attempt."""

    attempt_id: str
    outcome: BankOutcome
    bank_txn_id: str | None = None
    amount: Money | None = None
    settled_at: dt.datetime | None = None
    #: as `RefundStatus.review`
    review: str | None = None


@dataclass(frozen=True)
class RefundOrder:
    refund_id: str
    attempt_id: str
    #: the bank's id of the original payment (UnionPay: the original queryId)
    original_bank_txn_id: str
    amount: Money
    reason: str
    notify_url: str
    #: the transaction time sent (UnionPay's inquiry names it): the `BankCall`'s
    created_at: dt.datetime


@dataclass(frozen=True)
class RefundStatus:
    refund_id: str
    outcome: BankOutcome
    bank_txn_id: str | None = None
    amount: Money | None = None
    #: the bank's own caveat on a success (UnionPay respCode A6, "success with defects"):
    #: the money moved, and a person should look
    review: str | None = None


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
    #: as `RefundOrder.created_at`
    created_at: dt.datetime
    notify_url: str | None = None


@dataclass(frozen=True)
class PayoutStatus:
    payout_id: str
    outcome: BankOutcome
    bank_txn_id: str | None = None
    amount: Money | None = None
    #: outcome RETURNED: the bank's reason (e.g. account closed) and its id of the return
    return_reason: str | None = None
    return_id: str | None = None
    #: as `RefundStatus.review`
    review: str | None = None


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

    def bank_order_id(self, reference: str) -> str:
        """The order id the bank sees for one of our ids (recorded before sending)."""
        ...

    # Inquiries take the `BankCall` recorded before the request was sent (never the
    # adapter's memory): a protocol whose inquiry names the original transaction time
    # (UnionPay queryTrans: orderId + txnTime) finds it there, in any process.
    async def query_payment(self, call: BankCall) -> PaymentStatus: ...

    async def refund(self, order: RefundOrder) -> RefundStatus: ...

    async def query_refund(self, call: BankCall) -> RefundStatus: ...

    async def payout(self, order: PayoutOrder) -> PayoutStatus: ...

    async def query_payout(self, call: BankCall) -> PayoutStatus: ...
