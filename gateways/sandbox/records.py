"""What a sandbox bank keeps about each payment, refund and payout, and the facts a
notification states (which faults may alter before the protocol encodes them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["NoticeFacts", "RefundRefused", "Txn", "TxnKind", "TxnState"]


class TxnKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"
    PAYOUT = "payout"


class TxnState(StrEnum):
    #: payment registered, the customer has not paid yet
    AWAITING = "awaiting"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: payouts: paid, then sent back by the beneficiary's bank (退票)
    RETURNED = "returned"


@dataclass
class Txn:
    """A payment, refund or payout as the bank keeps it."""

    kind: TxnKind
    #: the merchant's id (attempt id, refund id, payout id)
    reference: str
    bank_txn_id: str
    amount_minor: int
    currency: str
    state: TxnState
    created_at: dt.datetime
    notify_url: str | None = None
    completed_at: dt.datetime | None = None
    failure: str | None = None
    # payments
    return_url: str = ""
    description: str = ""
    token: str = ""
    expires_at: dt.datetime | None = None
    customer: str | None = None
    refunded_minor: int = 0
    # refunds
    payment: Txn | None = None
    # payouts
    beneficiary_name: str = ""
    beneficiary_account: str = field(default="", repr=False)
    #: a returned payout: the bank's id of the return, its reason, when
    return_id: str | None = None
    return_reason: str = ""
    returned_at: dt.datetime | None = None
    #: protocol-specific fields (e.g. UnionPay's txnTime)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def refundable_minor(self) -> int:
        return self.amount_minor - self.refunded_minor if self.state is TxnState.SUCCEEDED else 0


@dataclass(frozen=True)
class NoticeFacts:
    """What a notification states; faults alter these before the protocol encodes them."""

    txn: Txn
    reference: str
    bank_txn_id: str
    amount_minor: int
    currency: str
    merchant_id: str
    succeeded: bool
    at: dt.datetime
    #: a payout's return (`bank_txn_id` is then the return's id): the bank's reason
    return_reason: str | None = None

    @property
    def returned(self) -> bool:
        return self.return_reason is not None


class RefundRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
