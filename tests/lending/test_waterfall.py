from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lending import DEFAULT_ORDER, Bucket, InvalidAmount, InvalidWaterfall, allocate

B = Bucket
OVERDUE_LOAN = {
    B.PAST_DUE_PENALTY: 4_110,
    B.PAST_DUE_INTEREST: 8_219,
    B.PAST_DUE_PRINCIPAL: 1_000_000,
}


def test_default_order_is_the_issues_with_fees_after_penalty() -> None:
    assert DEFAULT_ORDER == (
        B.PAST_DUE_PENALTY, B.PAST_DUE_FEES, B.PAST_DUE_INTEREST, B.PAST_DUE_PRINCIPAL,
        B.DUE_FEES, B.DUE_INTEREST, B.DUE_PRINCIPAL, B.NOT_DUE_INTEREST, B.NOT_DUE_PRINCIPAL,
    )


def test_exact_payment_settles_everything() -> None:
    result = allocate(1_012_329, OVERDUE_LOAN)
    assert result.by_bucket == OVERDUE_LOAN
    assert result.excess_minor == 0
    assert result.settles_everything


def test_overpayment_is_the_excess() -> None:
    result = allocate(1_100_000, OVERDUE_LOAN)
    assert result.applied_minor == 1_012_329
    assert result.excess_minor == 87_671
    assert result.settles_everything


def test_less_than_due_pays_penalty_then_interest_then_part_of_principal() -> None:
    result = allocate(20_000, OVERDUE_LOAN)
    assert result.by_bucket == {
        B.PAST_DUE_PENALTY: 4_110,
        B.PAST_DUE_INTEREST: 8_219,
        B.PAST_DUE_PRINCIPAL: 7_671,
    }
    assert result.excess_minor == 0
    assert not result.settles_everything
    principal = next(line for line in result.lines if line.bucket is B.PAST_DUE_PRINCIPAL)
    assert principal.remaining_minor == 1_000_000 - 7_671


def test_smaller_than_the_penalty_touches_nothing_else() -> None:
    result = allocate(1_000, OVERDUE_LOAN)
    assert result.by_bucket == {B.PAST_DUE_PENALTY: 1_000}


def test_early_repayment_pays_accrued_interest_before_principal() -> None:
    result = allocate(500_000, {B.NOT_DUE_INTEREST: 1_918, B.NOT_DUE_PRINCIPAL: 1_000_000})
    assert result.by_bucket == {B.NOT_DUE_INTEREST: 1_918, B.NOT_DUE_PRINCIPAL: 498_082}


def test_past_due_comes_before_due() -> None:
    owed = {B.DUE_INTEREST: 500, B.DUE_PRINCIPAL: 10_000, B.PAST_DUE_PRINCIPAL: 3_000}
    assert allocate(3_200, owed).by_bucket == {B.PAST_DUE_PRINCIPAL: 3_000, B.DUE_INTEREST: 200}


def test_a_configured_order_is_followed() -> None:
    principal_first = (B.PAST_DUE_PRINCIPAL, B.PAST_DUE_INTEREST, B.PAST_DUE_PENALTY)
    result = allocate(1_000_500, OVERDUE_LOAN, principal_first)
    assert result.by_bucket == {B.PAST_DUE_PRINCIPAL: 1_000_000, B.PAST_DUE_INTEREST: 500}


def test_zero_payment_allocates_nothing() -> None:
    result = allocate(0, OVERDUE_LOAN)
    assert result.by_bucket == {} and result.excess_minor == 0


def test_nothing_outstanding_makes_all_of_it_excess() -> None:
    assert allocate(5_000, {}).excess_minor == 5_000


def test_bad_input() -> None:
    with pytest.raises(InvalidAmount):
        allocate(-1, OVERDUE_LOAN)
    with pytest.raises(InvalidAmount):
        allocate(100, {B.DUE_FEES: -5})
    with pytest.raises(InvalidWaterfall, match="more than once"):
        allocate(100, OVERDUE_LOAN, (B.PAST_DUE_PENALTY, B.PAST_DUE_PENALTY))
    with pytest.raises(InvalidWaterfall, match="does not include"):
        allocate(100, OVERDUE_LOAN, (B.PAST_DUE_PENALTY, B.PAST_DUE_INTEREST))
    with pytest.raises(InvalidWaterfall):
        allocate(100, OVERDUE_LOAN, ())


@settings(max_examples=300, deadline=None)
@given(
    amount=st.integers(0, 10**9),
    owed=st.dictionaries(st.sampled_from(list(Bucket)), st.integers(0, 10**8)),
    order=st.permutations(list(Bucket)),
)
def test_allocation_conserves_the_payment_and_respects_the_order(
    amount: int, owed: dict[Bucket, int], order: list[Bucket]
) -> None:
    result = allocate(amount, owed, order)
    assert result.applied_minor + result.excess_minor == amount
    assert sum(line.applied_minor for line in result.lines) == result.applied_minor
    assert result.excess_minor == max(0, amount - sum(owed.values()))
    blocked = False
    for line in result.lines:
        assert 0 <= line.applied_minor <= line.outstanding_minor
        if blocked:
            assert line.applied_minor == 0  # nothing jumps a bucket still unpaid
        blocked = blocked or line.remaining_minor > 0
