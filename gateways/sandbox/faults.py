"""Fault injection for the sandbox banks, chosen per request by our reference (attempt
id, refund id or payout id), through `SandboxBank.faults` or `POST /_sandbox/faults`.

A fault describes how the *bank* misbehaves; the books of the bank stay right (a debit
that happened is recorded even when the answer never arrives), which is what lets a test
check that the merchant's ledger and the bank agree after the dust settles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gateways.adapters._http import Duration

__all__ = ["Fault", "FaultBook", "FaultPlan"]


class Fault(StrEnum):
    #: refund/payout: the bank debits, then the answer hangs past the client's time-out;
    #: payment: the customer's debit is notified late; in both the notification is late
    TIMEOUT_AFTER_DEBIT = "timeout_after_debit"
    #: any call about the reference (payment creation included) is taken, then its
    #: answer hangs past the client's time-out
    TIMEOUT = "timeout"
    #: no notification at all: only a status inquiry reveals the outcome
    NO_NOTIFY = "no_notify"
    #: the notification is delivered again after it was acknowledged
    DUPLICATE_NOTIFY = "duplicate_notify"
    #: the notification is held back and delivered after the next one of another
    #: reference (e.g. a refund's notification overtakes its payment's)
    OUT_OF_ORDER_NOTIFY = "out_of_order_notify"
    #: the first delivery carries a broken signature (later retries are signed right)
    BAD_SIGNATURE = "bad_signature"
    #: the notification, correctly signed, states another amount / currency / merchant
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    MERCHANT_MISMATCH = "merchant_mismatch"
    #: besides the real notification, a signed one for an order the merchant never sent
    UNKNOWN_ORDER = "unknown_order"
    #: status inquiries answer "processing" `processing_polls` times before the truth
    QUERY_PROCESSING = "query_processing"
    #: the create/refund/payout call is refused `server_errors` times before accepting,
    #: with the bank's documented "not processed" answer (REST 503 `not_processed`,
    #: UnionPay signed respCode 06, SM bank signed ResultCode 9001): nothing is taken
    SERVER_ERROR = "server_error"
    #: the refund/payout (or payment creation) is booked, then the bank answers a bare
    #: HTTP 500: the money moved though the answer looks like a failure
    SERVER_ERROR_AFTER_BOOKING = "server_error_after_booking"
    #: as SERVER_ERROR_AFTER_BOOKING, but the bank's gateway answers 502
    BAD_GATEWAY_AFTER_BOOKING = "bad_gateway_after_booking"
    #: UnionPay: the transaction succeeds "with defects": respCode A6 in the answer, the
    #: inquiry (origRespCode) and the notification; the money moved
    SUCCESS_WITH_DEFECTS = "success_with_defects"
    #: the create/refund/payout call waits `slow_seconds` before it is processed
    SLOW = "slow"


@dataclass
class FaultPlan:
    faults: frozenset[Fault] = frozenset()
    processing_polls: int = 3
    server_errors: int = 1
    #: None: the bank's default (its `slow_seconds`)
    slow_seconds: Duration | None = None

    def __contains__(self, fault: object) -> bool:
        return fault in self.faults


@dataclass
class FaultBook:
    """Faults by reference; counters (processing polls, 5xx answers) are used up."""

    _plans: dict[str, FaultPlan] = field(default_factory=dict)

    def set(
        self,
        reference: str,
        *faults: Fault | str,
        processing_polls: int = 3,
        server_errors: int = 1,
        slow_seconds: Duration | None = None,
    ) -> FaultPlan:
        plan = FaultPlan(
            faults=frozenset(Fault(f) for f in faults),
            processing_polls=processing_polls,
            server_errors=server_errors,
            slow_seconds=slow_seconds,
        )
        self._plans[reference] = plan
        return plan

    def clear(self, reference: str | None = None) -> None:
        if reference is None:
            self._plans.clear()
        else:
            self._plans.pop(reference, None)

    def plan(self, reference: str) -> FaultPlan:
        return self._plans.get(reference) or FaultPlan()

    def has(self, reference: str, fault: Fault) -> bool:
        return fault in self.plan(reference)

    def take_processing_poll(self, reference: str) -> bool:
        """True while the inquiry about `reference` should still answer "processing"."""
        plan = self._plans.get(reference)
        if plan is None or Fault.QUERY_PROCESSING not in plan or plan.processing_polls <= 0:
            return False
        plan.processing_polls -= 1
        return True

    def take_server_error(self, reference: str) -> bool:
        plan = self._plans.get(reference)
        if plan is None or Fault.SERVER_ERROR not in plan or plan.server_errors <= 0:
            return False
        plan.server_errors -= 1
        return True
