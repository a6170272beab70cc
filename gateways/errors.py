"""The payment core's errors: a small hierarchy a caller (the API, the CLI) catches
precisely. Each carries a short machine-readable `code` for problem+json.

Every error is raised before anything is written, or aborts the caller's transaction as a
whole, so the books and the payment records are untouched.
"""

from __future__ import annotations

__all__ = [
    "ConcurrentTransition",
    "DuplicateOrder",
    "IllegalTransition",
    "IntentNotFound",
    "InvalidPaymentRequest",
    "NotFound",
    "PaymentError",
    "PayoutConflict",
    "PayoutNotFound",
    "RefundExceedsCaptured",
    "RefundNotFound",
    "UnknownBank",
    "UnknownSupplier",
]


class PaymentError(Exception):
    """Base of every error the payment core raises on purpose."""

    code = "payment-error"


class InvalidPaymentRequest(PaymentError, ValueError):
    """The request is malformed: amount, currency, ids, URLs."""

    code = "invalid-payment-request"


class IllegalTransition(PaymentError):
    """The state machine does not allow this move from the record's current status."""

    code = "illegal-transition"

    def __init__(self, entity: str, record_id: str, current: str, target: str,
                 why: str = "") -> None:
        self.entity, self.record_id, self.current, self.target = entity, record_id, current, target
        because = f": {why}" if why else ""
        super().__init__(f"{entity} {record_id} cannot go from {current} to {target}{because}")


class ConcurrentTransition(IllegalTransition):
    """A concurrent writer changed the record first (the compare-and-set found another
    status than expected); re-read it and decide again."""

    code = "concurrent-transition"

    def __init__(self, entity: str, record_id: str, expected: str, target: str) -> None:
        super().__init__(entity, record_id, expected, target,
                         f"it is no longer {expected} (changed by a concurrent writer)")


class NotFound(PaymentError, LookupError):
    code = "not-found"


class IntentNotFound(NotFound):
    code = "intent-not-found"

    def __init__(self, intent_id: str) -> None:
        self.intent_id = intent_id
        super().__init__(f"no payment intent {intent_id!r}")


class RefundNotFound(NotFound):
    code = "refund-not-found"

    def __init__(self, refund_id: str) -> None:
        self.refund_id = refund_id
        super().__init__(f"no refund {refund_id!r}")


class PayoutNotFound(NotFound):
    code = "payout-not-found"

    def __init__(self, payout_id: str) -> None:
        self.payout_id = payout_id
        super().__init__(f"no payout {payout_id!r}")


class UnknownBank(NotFound):
    code = "unknown-bank"

    def __init__(self, bank: str) -> None:
        self.bank = bank
        super().__init__(f"no bank {bank!r} is configured")


class UnknownSupplier(NotFound):
    code = "unknown-supplier"

    def __init__(self, supplier_id: str) -> None:
        self.supplier_id = supplier_id
        super().__init__(f"supplier {supplier_id!r} has no commission terms; "
                         "register it with gateways.set_supplier_terms")


class DuplicateOrder(PaymentError):
    """The merchant already has an intent for this order id, with other terms."""

    code = "duplicate-order"

    def __init__(self, merchant_id: str, order_id: str, intent_id: str) -> None:
        self.merchant_id, self.order_id, self.intent_id = merchant_id, order_id, intent_id
        super().__init__(f"merchant {merchant_id!r} already has intent {intent_id} for order "
                         f"{order_id!r} with a different amount, supplier or currency")


class PayoutConflict(PaymentError):
    """A payout with this id exists and was requested with other terms."""

    code = "payout-conflict"

    def __init__(self, payout_id: str) -> None:
        self.payout_id = payout_id
        super().__init__(f"payout {payout_id!r} was already requested with different terms")


class RefundExceedsCaptured(PaymentError):
    """Refunds (succeeded or in flight) would exceed what was captured."""

    code = "refund-exceeds-captured"

    def __init__(self, intent_id: str, asked: str, refundable: str) -> None:
        self.intent_id, self.asked, self.refundable = intent_id, asked, refundable
        super().__init__(f"intent {intent_id}: refund of {asked} asked, only {refundable} "
                         "is still refundable")
