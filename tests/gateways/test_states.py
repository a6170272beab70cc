"""The pure state machines: every allowed move, and precise refusals."""

from __future__ import annotations

import pytest

from gateways import IllegalTransition
from gateways.states import (
    ATTEMPT_MOVES,
    INTENT_MOVES,
    PAYOUT_MOVES,
    REFUND_MOVES,
    AttemptState,
    IntentState,
    PayoutState,
    RefundState,
    allowed,
    require,
)


def test_the_happy_paths_are_moves():
    require("pi_1", IntentState.CREATED, IntentState.PENDING)
    require("pi_1", IntentState.PENDING, IntentState.SUCCEEDED)
    require("pi_1", IntentState.PENDING, IntentState.AUTHORIZED)
    require("pi_1", IntentState.AUTHORIZED, IntentState.CAPTURED)
    require("a", AttemptState.PENDING, AttemptState.SUCCEEDED)
    require("r", RefundState.REQUESTED, RefundState.SUCCEEDED)
    require("p", PayoutState.REQUESTED, PayoutState.SUBMITTED)
    require("p", PayoutState.SUBMITTED, PayoutState.SUCCEEDED)


def test_an_illegal_move_names_record_and_states():
    with pytest.raises(IllegalTransition) as caught:
        require("pi_9", IntentState.SUCCEEDED, IntentState.FAILED)
    err = caught.value
    assert (err.entity, err.record_id, err.current, err.target) == (
        "intent", "pi_9", "succeeded", "failed")
    assert "pi_9 cannot go from succeeded to failed" in str(err)


def test_a_failed_intent_may_be_retried_but_a_pending_one_not_canceled():
    assert allowed(IntentState.FAILED, IntentState.PENDING)
    assert not allowed(IntentState.PENDING, IntentState.CANCELED)


@pytest.mark.parametrize("machine", [PAYOUT_MOVES])
def test_no_failover_from_unknown(machine):
    # a payout whose outcome is unknown never goes back to "requested" (another bank)
    assert PayoutState.REQUESTED not in machine[PayoutState.UNKNOWN]
    assert allowed(PayoutState.SUBMITTED, PayoutState.REQUESTED)


def test_unknown_leaves_only_on_the_banks_word():
    assert not allowed(IntentState.UNKNOWN, IntentState.CANCELED)
    assert not allowed(IntentState.UNKNOWN, IntentState.PENDING)
    assert not allowed(AttemptState.UNKNOWN, AttemptState.PENDING)


def test_terminal_states_only_go_to_review():
    for machine, review in ((INTENT_MOVES, IntentState.REVIEW),
                            (ATTEMPT_MOVES, AttemptState.REVIEW)):
        for state, moves in machine.items():
            if state.value in ("succeeded", "captured", "canceled", "expired"):
                assert moves <= {review}, state
    assert REFUND_MOVES[RefundState.SUCCEEDED] == frozenset()
    # a paid payout can only come back from the beneficiary's bank, and then it is over
    assert PAYOUT_MOVES[PayoutState.SUCCEEDED] == frozenset({PayoutState.RETURNED})
    assert PAYOUT_MOVES[PayoutState.RETURNED] == frozenset()


def test_machines_cover_every_state():
    for machine, enum in ((INTENT_MOVES, IntentState), (ATTEMPT_MOVES, AttemptState),
                          (REFUND_MOVES, RefundState), (PAYOUT_MOVES, PayoutState)):
        assert set(machine) == set(enum)


def test_states_of_different_machines_do_not_mix():
    with pytest.raises(TypeError):
        allowed(IntentState.CREATED, PayoutState.SUBMITTED)
