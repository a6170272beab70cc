from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal

import pytest

from lending import (
    SUPPLY_CHAIN_LOAN,
    Application,
    BorrowerData,
    CreditLinePolicy,
    Decision,
    InvalidInput,
    InvalidPolicy,
    Outcome,
    UnderwritingPolicy,
    credit_line,
    decide,
)

TODAY = dt.date(2024, 6, 3)
POLICY = UnderwritingPolicy()
MONTH = 10_000_000  # 100,000.00 settled sales a month

CLEAN = BorrowerData(
    borrower_id="supplier-7",
    currency="CNY",
    data_as_of=TODAY,
    unsettled_receivables_minor=20_000_000,  # 200,000.00
    receivables_by_buyer={"buyer-a": 8_000_000, "buyer-b": 7_000_000, "buyer-c": 5_000_000},
    monthly_settled_sales_minor=(MONTH,) * 6,
    monthly_returns_minor=(500_000,) * 6,  # 5 % returns
    tenure_months=24,
    outstanding_principal_minor=1_000_000,
)


def application(amount: int = 5_000_000, term: int = 30) -> Application:
    return Application("A-1", "supplier-7", SUPPLY_CHAIN_LOAN, amount, term, TODAY)


def decide_with(amount: int = 5_000_000, term: int = 30, **changes: object) -> Decision:
    data = dataclasses.replace(CLEAN, **changes)  # type: ignore[arg-type]
    return decide(application(amount, term), data, POLICY, TODAY)


def codes(decision: Decision) -> set[str]:
    return {r.code for r in decision.reasons if r.effect is not Outcome.APPROVE}


# -- the credit line, by hand -------------------------------------------------------------


def test_credit_line_steps_by_hand() -> None:
    line = credit_line(CLEAN, CreditLinePolicy(), SUPPLY_CHAIN_LOAN.max_amount_minor)
    # 80 % x 200,000.00 = 160,000.00; + 50 % x 100,000.00 = 50,000.00
    assert line.limit_minor == 21_000_000
    assert line.outstanding_minor == 1_000_000
    assert line.available_minor == 20_000_000
    assert [s.rule for s in line.steps] == ["receivables", "sales", "outstanding"]
    assert line.explain()[0] == ("receivables: 80 % of 200,000.00 CNY unsettled receivables "
                                 "-> 160,000.00 CNY")


def test_high_returns_and_past_overdue_days_cut_the_line() -> None:
    data = dataclasses.replace(CLEAN, monthly_returns_minor=(1_200_000,) * 6,  # 12 %
                               max_days_overdue=20, outstanding_principal_minor=0)
    line = credit_line(data, CreditLinePolicy(), SUPPLY_CHAIN_LOAN.max_amount_minor)
    # 210,000.00 - 20 % = 168,000.00; - 30 % = 117,600.00
    assert line.limit_minor == 11_760_000
    assert [s.rule for s in line.steps] == ["receivables", "sales", "returns", "overdue history"]


def test_caps_per_product_policy_and_borrower() -> None:
    rich = dataclasses.replace(CLEAN, unsettled_receivables_minor=10**12,
                               outstanding_principal_minor=0)
    policy = CreditLinePolicy()
    assert credit_line(rich, policy, 10**13).limit_minor == policy.max_line_per_borrower_minor
    assert credit_line(rich, policy, 50_000_000).limit_minor == 50_000_000
    capped = dataclasses.replace(rich, borrower_cap_minor=3_000_000)
    assert credit_line(capped, policy, 10**13).limit_minor == 3_000_000


def test_line_rounds_down_never_in_the_borrowers_favour() -> None:
    data = dataclasses.replace(CLEAN, unsettled_receivables_minor=3, monthly_settled_sales_minor=(),
                               monthly_returns_minor=(), outstanding_principal_minor=0)
    assert credit_line(data, CreditLinePolicy(), 10**9).limit_minor == 2  # 0.8 x 3 = 2.4


def test_outstanding_above_the_line_leaves_nothing_available() -> None:
    data = dataclasses.replace(CLEAN, outstanding_principal_minor=50_000_000)
    assert credit_line(data, CreditLinePolicy(), 10**9).available_minor == 0


# -- decisions ----------------------------------------------------------------------------


def test_clean_borrower_within_the_line_is_approved() -> None:
    decision = decide_with()
    assert decision.outcome is Outcome.APPROVE
    assert [r.code for r in decision.reasons] == ["within-line"]
    assert "50,000.00 CNY is within the available credit line of 200,000.00 CNY" in (
        decision.reasons[0].message)


@pytest.mark.parametrize(("changes", "amount", "term", "code"), [
    ({"tenure_months": 1}, 5_000_000, 30, "short-tenure"),
    ({"overdue_loans_now": 1}, 5_000_000, 30, "overdue-now"),
    ({"monthly_returns_minor": (4_000_000,) * 6}, 5_000_000, 30, "high-returns"),
    ({}, 30_000_000, 30, "over-line"),
    ({}, 5_000_000, 120, "term-out-of-range"),
    ({}, 500_000, 30, "amount-out-of-range"),
    ({"currency": "USD"}, 5_000_000, 30, "currency-mismatch"),
])
def test_each_decline_rule(changes: dict[str, object], amount: int, term: int, code: str) -> None:
    decision = decide_with(amount, term, **changes)
    assert decision.outcome is Outcome.DECLINE
    assert code in codes(decision)
    declined = [r for r in decision.reasons if r.effect is Outcome.DECLINE]
    assert all(r.message for r in declined)


@pytest.mark.parametrize(("changes", "amount", "code"), [
    # last month 5x the five before it
    ({"monthly_settled_sales_minor": (MONTH,) * 5 + (5 * MONTH,)}, 5_000_000, "sales-spike"),
    ({"receivables_by_buyer": {"buyer-a": 18_000_000, "buyer-b": 2_000_000}}, 5_000_000,
     "receivable-concentration"),
    ({"max_days_overdue": 45}, 1_000_000, "overdue-history"),
    ({"unsettled_receivables_minor": 10**9, "outstanding_principal_minor": 0}, 150_000_000,
     "large-amount"),
    ({"unsettled_receivables_minor": None}, 1_000_000, "data-missing"),
    ({"monthly_settled_sales_minor": (MONTH,), "monthly_returns_minor": ()}, 1_000_000,
     "data-missing"),
    ({"data_as_of": TODAY - dt.timedelta(days=10)}, 5_000_000, "data-stale"),
])
def test_each_anomaly_goes_to_manual_review(changes: dict[str, object], amount: int,
                                            code: str) -> None:
    data = dataclasses.replace(CLEAN, **changes)  # type: ignore[arg-type]
    decision = decide(application(amount), data, POLICY, TODAY)
    assert decision.outcome is Outcome.MANUAL_REVIEW, decision.reasons
    assert codes(decision) == {code}


def test_decline_beats_review() -> None:
    decision = decide_with(overdue_loans_now=1, max_days_overdue=45)
    assert decision.outcome is Outcome.DECLINE
    assert codes(decision) == {"overdue-now", "overdue-history"}


def test_over_the_line_on_stale_data_is_reviewed_not_declined() -> None:
    decision = decide_with(30_000_000, data_as_of=TODAY - dt.timedelta(days=10))
    assert decision.outcome is Outcome.MANUAL_REVIEW
    assert codes(decision) == {"data-stale", "over-line"}


def test_decision_is_stored_as_json_with_its_inputs() -> None:
    decision = decide_with(monthly_settled_sales_minor=(MONTH,) * 5 + (5 * MONTH,))
    stored = json.loads(decision.to_json())
    assert stored["outcome"] == "manual_review"
    assert stored["policy_version"] == POLICY.version
    assert stored["decided_on"] == "2024-06-03"
    assert stored["credit_line"]["available_minor"] == decision.credit_line.available_minor
    assert {r["code"] for r in stored["reasons"]} == {"sales-spike", "within-line"}
    inputs = stored["inputs"]
    assert inputs["application"]["amount_minor"] == 5_000_000
    assert inputs["borrower"]["monthly_settled_sales_minor"][-1] == 5 * MONTH
    assert inputs["policy"]["line"]["receivables_advance_rate"] == "0.80"  # Decimal, not float
    assert inputs["figures"]["spike_ratio"] == "5"
    assert decision.to_json() == decide_with(
        monthly_settled_sales_minor=(MONTH,) * 5 + (5 * MONTH,)).to_json()  # deterministic


# How fast a decision is, is measured by bench/accrual_bench.py (tests never time anything).


def test_bad_input() -> None:
    with pytest.raises(InvalidInput, match="borrower"):
        decide(dataclasses.replace(application(), borrower_id="someone-else"), CLEAN, POLICY,
               TODAY)
    with pytest.raises(InvalidInput):
        application(amount=-5)
    with pytest.raises(InvalidInput):
        dataclasses.replace(CLEAN, monthly_returns_minor=(1, 2))
    with pytest.raises(InvalidPolicy):
        UnderwritingPolicy(sales_spike_ratio=Decimal(1))
    with pytest.raises(InvalidPolicy):
        CreditLinePolicy(receivables_advance_rate=Decimal("1.5"))
