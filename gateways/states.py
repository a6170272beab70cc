"""The state machines of intents, attempts, refunds and payouts: pure, no I/O.

Each machine is a table of allowed moves; `require(...)` raises `IllegalTransition` for
any other. The stores apply a move as a compare-and-set
(`UPDATE ... WHERE id = :id AND status = :expected`), so of two racing writers one wins
and the other gets `ConcurrentTransition`.

`unknown` means the bank may have taken money and we cannot tell yet: only the bank's
answer to a status inquiry leaves it, never a guess, and never a failover to another bank.
`review` means a person must look (mismatched notification, contradicting outcomes,
an inquiry that never settled).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from gateways.errors import IllegalTransition

__all__ = [
    "AttemptState",
    "IntentState",
    "PayoutState",
    "RefundState",
    "allowed",
    "require",
]


class IntentState(StrEnum):
    CREATED = "created"
    #: the customer was sent to the bank; the bank has not told us the outcome
    PENDING = "pending"
    #: authorise-first banks: funds reserved, not yet captured
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    SUCCEEDED = "succeeded"
    #: the attempt failed; the customer may retry at another bank
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    REVIEW = "review"

    @property
    def paid(self) -> bool:
        return self in (IntentState.SUCCEEDED, IntentState.CAPTURED)


class AttemptState(StrEnum):
    CREATED = "created"
    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    REVIEW = "review"


class RefundState(StrEnum):
    REQUESTED = "requested"
    #: the bank accepted it and is processing
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    REVIEW = "review"


class PayoutState(StrEnum):
    #: recorded and reserved (a ledger hold); a second person must approve it before any
    #: bank sees it (maker-checker, `gateways.approvals`)
    PENDING_APPROVAL = "pending_approval"
    #: recorded and reserved in the ledger (a hold), not yet sent to a bank
    REQUESTED = "requested"
    #: handed to `bank`; the bank has it (or is being given it) and has not decided
    SUBMITTED = "submitted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    REVIEW = "review"
    CANCELED = "canceled"
    #: paid, then sent back by the beneficiary's bank (退票: wrong name, closed account);
    #: the money is booked back to the account it was paid from
    RETURNED = "returned"


IS, A, R, P = IntentState, AttemptState, RefundState, PayoutState

INTENT_MOVES: Mapping[IntentState, frozenset[IntentState]] = {
    IS.CREATED: frozenset({IS.PENDING, IS.FAILED, IS.CANCELED, IS.EXPIRED, IS.UNKNOWN,
                          IS.REVIEW}),
    # pending cannot be canceled: the customer may be paying at the bank right now
    IS.PENDING: frozenset({IS.AUTHORIZED, IS.SUCCEEDED, IS.FAILED, IS.EXPIRED, IS.UNKNOWN,
                          IS.REVIEW}),
    IS.AUTHORIZED: frozenset({IS.CAPTURED, IS.FAILED, IS.UNKNOWN, IS.REVIEW}),
    IS.CAPTURED: frozenset({IS.REVIEW}),
    IS.SUCCEEDED: frozenset({IS.REVIEW}),
    # a failed intent may be retried at another bank (back to pending)
    IS.FAILED: frozenset({IS.PENDING, IS.CANCELED, IS.EXPIRED, IS.REVIEW}),
    # late money after cancel/expiry is a case for a person, never silently booked
    IS.CANCELED: frozenset({IS.REVIEW}),
    IS.EXPIRED: frozenset({IS.REVIEW}),
    # only the bank's answer leaves unknown; "expired" when the bank never had the order
    IS.UNKNOWN: frozenset({IS.AUTHORIZED, IS.SUCCEEDED, IS.FAILED, IS.EXPIRED, IS.REVIEW}),
    IS.REVIEW: frozenset({IS.SUCCEEDED, IS.FAILED, IS.CANCELED}),
}

ATTEMPT_MOVES: Mapping[AttemptState, frozenset[AttemptState]] = {
    A.CREATED: frozenset({A.PENDING, A.FAILED, A.UNKNOWN, A.REVIEW}),
    A.PENDING: frozenset({A.AUTHORIZED, A.SUCCEEDED, A.FAILED, A.UNKNOWN, A.REVIEW}),
    A.AUTHORIZED: frozenset({A.CAPTURED, A.FAILED, A.UNKNOWN, A.REVIEW}),
    A.CAPTURED: frozenset({A.REVIEW}),
    A.SUCCEEDED: frozenset({A.REVIEW}),
    A.FAILED: frozenset({A.REVIEW}),
    A.UNKNOWN: frozenset({A.AUTHORIZED, A.SUCCEEDED, A.FAILED, A.REVIEW}),
    A.REVIEW: frozenset({A.SUCCEEDED, A.FAILED}),
}

REFUND_MOVES: Mapping[RefundState, frozenset[RefundState]] = {
    R.REQUESTED: frozenset({R.PENDING, R.SUCCEEDED, R.FAILED, R.UNKNOWN}),
    R.PENDING: frozenset({R.SUCCEEDED, R.FAILED, R.UNKNOWN, R.REVIEW}),
    R.UNKNOWN: frozenset({R.PENDING, R.SUCCEEDED, R.FAILED, R.REVIEW}),
    R.SUCCEEDED: frozenset(),
    R.FAILED: frozenset(),
    R.REVIEW: frozenset({R.SUCCEEDED, R.FAILED}),
}

PAYOUT_MOVES: Mapping[PayoutState, frozenset[PayoutState]] = {
    # approved: requested (then sent); rejected or withdrawn: canceled
    P.PENDING_APPROVAL: frozenset({P.REQUESTED, P.CANCELED}),
    P.REQUESTED: frozenset({P.SUBMITTED, P.CANCELED}),
    # back to requested only when nothing reached the bank (BankUnavailable): failover
    P.SUBMITTED: frozenset({P.REQUESTED, P.SUCCEEDED, P.FAILED, P.UNKNOWN, P.REVIEW}),
    # never back to requested: the money may have left, no failover from unknown
    P.UNKNOWN: frozenset({P.SUBMITTED, P.SUCCEEDED, P.FAILED, P.REVIEW}),
    # a succeeded payout can still come back (a return is a new movement, never an undo)
    P.SUCCEEDED: frozenset({P.RETURNED}),
    P.FAILED: frozenset(),
    P.CANCELED: frozenset(),
    P.RETURNED: frozenset(),
    P.REVIEW: frozenset({P.SUCCEEDED, P.FAILED}),
}

_MACHINES: Mapping[type[StrEnum], Mapping[StrEnum, frozenset[StrEnum]]] = {
    IntentState: INTENT_MOVES,  # type: ignore[dict-item]
    AttemptState: ATTEMPT_MOVES,  # type: ignore[dict-item]
    RefundState: REFUND_MOVES,  # type: ignore[dict-item]
    PayoutState: PAYOUT_MOVES,  # type: ignore[dict-item]
}

_ENTITY = {IntentState: "intent", AttemptState: "attempt", RefundState: "refund",
           PayoutState: "payout"}


def allowed(current: StrEnum, target: StrEnum) -> bool:
    if type(current) is not type(target):
        raise TypeError(f"{current!r} and {target!r} belong to different machines")
    return target in _MACHINES[type(current)][current]


def require(record_id: str, current: StrEnum, target: StrEnum, why: str = "") -> None:
    """Raise `IllegalTransition` unless `current -> target` is a move of its machine."""
    if not allowed(current, target):
        raise IllegalTransition(_ENTITY[type(current)], record_id, current.value,
                                target.value, why)


def is_terminal(state: StrEnum) -> bool:
    return not _MACHINES[type(state)][state] - {_review(state)}


def _review(state: StrEnum) -> StrEnum:
    return type(state)("review")
