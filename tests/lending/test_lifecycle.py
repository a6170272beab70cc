from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest

from lending import (
    SUPPLY_CHAIN_LOAN,
    AmountOutOfRange,
    CreditLineExceeded,
    ExtensionLimitReached,
    ExtensionPolicy,
    ExtensionTooLate,
    IllegalTransition,
    InvalidDate,
    InvalidInput,
    Loan,
    LoanClosed,
    LoanNotDisbursed,
    LoanStatus,
    TermOutOfRange,
    accrual_schedule,
    accrual_terms,
    activate,
    apply,
    approve,
    decline,
    disburse,
    dpd_bucket,
    extend,
    interest_accrued_through,
    mark_overdue,
    recover,
    refer_to_review,
    repay,
    write_off,
)
from lending.lifecycle import TRANSITIONS, days_past_due

D0 = dt.date(2024, 3, 1)
S = LoanStatus


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def applied(amount: int = 1_000_000, term: int = 30) -> Loan:
    return apply("L-1", "supplier-1", SUPPLY_CHAIN_LOAN, amount, term, D0)


def active(term: int = 30) -> Loan:
    return activate(disburse(approve(applied(term=term), D0), day(1)), day(1))


def test_happy_path_to_repaid() -> None:
    loan = active()
    assert loan.disbursed_on == day(1) and loan.maturity == day(31)
    loan = repay(loan, day(20))
    assert loan.status is S.REPAID and loan.closed
    assert [c.status for c in loan.history] == [S.APPLIED, S.APPROVED, S.DISBURSED, S.ACTIVE,
                                                S.REPAID]


def test_manual_review_then_approval_for_less() -> None:
    loan = refer_to_review(applied(amount=2_000_000), D0, "sales spike")
    loan = approve(loan, day(1), amount_minor=1_500_000, note="approved for less")
    assert loan.status is S.APPROVED and loan.amount_minor == 1_500_000


def test_extension_moves_maturity_by_30_days_and_interest_runs_to_day_60() -> None:
    loan = extend(active(), day(10))
    assert loan.status is S.EXTENDED and loan.extensions == 1
    assert loan.maturity == day(61)  # 30 + 30 days after disbursement on day 1
    terms = accrual_terms(loan)
    assert interest_accrued_through(terms, loan.maturity) == 16438
    assert sum(r.interest_minor for r in accrual_schedule(terms, loan.maturity)) == 16438
    assert repay(loan, day(40)).status is S.REPAID


def test_early_repayment_on_day_7_accrues_7_days() -> None:
    loan = active()
    assert interest_accrued_through(accrual_terms(loan), day(1 + 7)) == 1918


def test_overdue_write_off_and_recovery() -> None:
    loan = mark_overdue(active(), day(32))
    assert days_past_due(loan, day(32)) == 1
    assert dpd_bucket(loan, day(50)).label == "16-30"  # type: ignore[union-attr]
    loan = write_off(loan, day(150), "non-performing")
    loan = recover(loan, day(200), "collected")
    assert loan.status is S.RECOVERED and loan.closed
    assert days_past_due(loan, day(250)) == 0


def test_overdue_loan_can_still_be_repaid() -> None:
    assert repay(mark_overdue(active(), day(40)), day(41)).status is S.REPAID


def test_second_extension_is_refused() -> None:
    loan = extend(active(), day(10))
    with pytest.raises(ExtensionLimitReached, match="already extended 1 time"):
        extend(loan, day(20))


def test_a_product_may_allow_more_extensions() -> None:
    product = dataclasses.replace(SUPPLY_CHAIN_LOAN,
                                  extension=ExtensionPolicy(max_extensions=2, days=30))
    loan = apply("L-2", "s", product, 1_000_000, 30, D0)
    loan = extend(extend(activate(disburse(approve(loan, D0), D0), D0), day(5)), day(35))
    assert loan.extensions == 2 and loan.maturity == day(90)


@pytest.mark.parametrize("requested", [day(31), day(32)])
def test_extension_on_or_after_maturity_is_refused(requested: dt.date) -> None:
    with pytest.raises(ExtensionTooLate, match="before maturity"):
        extend(active(), requested)


def test_overdue_loan_cannot_be_extended() -> None:
    with pytest.raises(IllegalTransition, match="overdue and cannot become extended"):
        extend(mark_overdue(active(), day(32)), day(33))


@pytest.mark.parametrize("term", [14, 91])
def test_term_outside_product_range(term: int) -> None:
    with pytest.raises(TermOutOfRange):
        applied(term=term)


@pytest.mark.parametrize("amount", [999_999, 500_000_001])
def test_amount_outside_min_max(amount: int) -> None:
    with pytest.raises(AmountOutOfRange):
        applied(amount=amount)


def test_amount_over_credit_line() -> None:
    with pytest.raises(CreditLineExceeded, match="20,000.00 CNY exceeds .* 15,000.00 CNY"):
        apply("L-1", "s", SUPPLY_CHAIN_LOAN, 2_000_000, 30, D0, credit_line_minor=1_500_000)
    with pytest.raises(CreditLineExceeded):
        approve(applied(amount=2_000_000), D0, credit_line_minor=1_500_000)


def test_approval_cannot_raise_the_amount() -> None:
    with pytest.raises(InvalidInput, match="more than the"):
        approve(applied(), D0, amount_minor=2_000_000)


STEPS: dict[str, Callable[[Loan], Loan]] = {
    "approve": lambda loan: approve(loan, day(100)),
    "decline": lambda loan: decline(loan, day(100), "no"),
    "review": lambda loan: refer_to_review(loan, day(100), "look"),
    "disburse": lambda loan: disburse(loan, day(100)),
    "activate": lambda loan: activate(loan, day(100)),
    "repay": lambda loan: repay(loan, day(100)),
    "overdue": lambda loan: mark_overdue(loan, day(100)),
    "write_off": lambda loan: write_off(loan, day(100)),
    "recover": lambda loan: recover(loan, day(100)),
}
TARGET = {"approve": S.APPROVED, "decline": S.DECLINED, "review": S.MANUAL_REVIEW,
          "disburse": S.DISBURSED, "activate": S.ACTIVE, "repay": S.REPAID,
          "overdue": S.OVERDUE, "write_off": S.WRITTEN_OFF, "recover": S.RECOVERED}


def _loan_in(status: LoanStatus) -> Loan:
    # a disbursed loan in the wanted status, so only the transition table can object
    return dataclasses.replace(active(), status=status)


@pytest.mark.parametrize("status", list(LoanStatus))
@pytest.mark.parametrize("step", list(STEPS))
def test_every_transition_outside_the_table_is_refused(status: LoanStatus, step: str) -> None:
    loan = _loan_in(status)
    if TARGET[step] in TRANSITIONS[status]:
        assert STEPS[step](loan).status is TARGET[step]
        return
    error = LoanClosed if status in (S.REPAID, S.DECLINED, S.RECOVERED) else IllegalTransition
    with pytest.raises(error) as caught:
        STEPS[step](loan)
    assert caught.value.current == status.value and caught.value.target == TARGET[step].value


def test_illegal_transition_names_what_is_allowed() -> None:
    with pytest.raises(IllegalTransition,
                       match="applied and cannot become disbursed; from applied it can "
                             "become: approved, declined, manual_review"):
        disburse(applied(), D0)


def test_repaying_a_closed_loan() -> None:
    with pytest.raises(LoanClosed, match="repaid and cannot become repaid"):
        repay(repay(active(), day(5)), day(6))


def test_dates_cannot_go_backwards() -> None:
    with pytest.raises(InvalidDate):
        repay(active(), D0)
    with pytest.raises(InvalidDate, match="not overdue"):
        mark_overdue(active(), day(31))


def test_accrual_needs_a_disbursed_loan() -> None:
    with pytest.raises(LoanNotDisbursed):
        accrual_terms(approve(applied(), D0))
