"""Pure rules of the payment core: commission rounding and its residue, refund commission
over several partial refunds, entries that balance, the circuit breaker's states, header
redaction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from gateways import BreakerState, CircuitBreaker, RefundCommission
from gateways.notifications import redact_headers
from gateways.postings import capture_entry, commission_on, refund_commission_part, refund_entry


def test_commission_rounds_half_even_to_the_fen():
    assert commission_on(10001, Decimal("0.03")) == 300  # 300.03
    assert commission_on(50, Decimal("0.03")) == 2  # 1.5 -> 2 (even)
    assert commission_on(150, Decimal("0.03")) == 4  # 4.5 -> 4 (even)
    assert commission_on(12345, Decimal("0")) == 0


@given(amount=st.integers(1, 10**12), ppm=st.integers(0, 1_000_000))
def test_a_capture_always_balances_exactly(amount, ppm):
    fee = commission_on(amount, Decimal(ppm) / 1_000_000)
    entry = capture_entry(attempt_id="a", intent_id="i", order_id="o", bank="b", supplier_id="s",
                          amount_minor=amount, commission_minor=fee, currency="CNY",
                          bank_txn_id="t", effective_date=dt.date(2026, 1, 1))
    debits = sum(p.debit.amount for p in entry.postings if p.debit)
    credits = sum(p.credit.amount for p in entry.postings if p.credit)
    assert debits == credits == Decimal(amount) / 100
    assert 0 <= fee <= amount


@given(captured=st.integers(1, 10**9), ppm=st.integers(0, 1_000_000),
       cuts=st.lists(st.integers(1, 10**9), min_size=1, max_size=8))
def test_proportional_refunds_give_back_exactly_the_commission(captured, ppm, cuts):
    commission = commission_on(captured, Decimal(ppm) / 1_000_000)
    # split the whole captured amount into partial refunds
    parts, left = [], captured
    for cut in cuts:
        if left == 0:
            break
        part = min(left, cut)
        parts.append(part)
        left -= part
    if left:
        parts.append(left)
    refunded = given_back = 0
    for part in parts:
        back = refund_commission_part(
            policy=RefundCommission.PROPORTIONAL, captured_minor=captured,
            commission_minor=commission, refunded_before_minor=refunded,
            commission_refunded_before_minor=given_back, amount_minor=part)
        assert 0 <= back <= part
        entry = refund_entry(refund_id="r", attempt_id="a", intent_id="i", order_id="o", bank="b",
                             supplier_id="s", amount_minor=part, commission_minor=back,
                             currency="CNY", bank_refund_id="t", effective_date=dt.date(2026, 1, 1))
        assert sum(p.debit.amount for p in entry.postings if p.debit) == Decimal(part) / 100
        refunded += part
        given_back += back
    assert (refunded, given_back) == (captured, commission)


def test_keep_policy_gives_back_nothing():
    assert refund_commission_part(policy=RefundCommission.KEEP, captured_minor=1000,
                                  commission_minor=30, refunded_before_minor=0,
                                  commission_refunded_before_minor=0, amount_minor=1000) == 0


def test_circuit_breaker_opens_half_opens_and_closes():
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    breaker = CircuitBreaker("b", failure_threshold=3, cool_down=dt.timedelta(seconds=30),
                             clock=lambda: now[0])
    for _ in range(2):
        breaker.record_failure("503")
    assert breaker.allows() and breaker.state is BreakerState.CLOSED
    breaker.record_success()  # a success resets the count
    for _ in range(3):
        breaker.record_failure("503")
    assert breaker.state is BreakerState.OPEN and not breaker.allows()
    now[0] += dt.timedelta(seconds=29)
    assert not breaker.allows()
    now[0] += dt.timedelta(seconds=1)
    assert breaker.allows() and breaker.state is BreakerState.HALF_OPEN
    breaker.record_failure("time-out")  # the trial failed: open again, a new cool-down
    assert breaker.state is BreakerState.OPEN and not breaker.allows()
    now[0] += dt.timedelta(seconds=30)
    assert breaker.allows()
    breaker.record_success()
    assert breaker.health().state is BreakerState.CLOSED
    assert breaker.health().consecutive_failures == 0


def test_headers_are_redacted_for_the_rejection_log():
    redacted = redact_headers({"X-Signature": "v1=abc", "Authorization": "Bearer k",
                               "Content-Type": "application/json", "X-Api-Key": "k",
                               "Cookie": "s=1"})
    assert redacted == {"X-Signature": "[redacted]", "Authorization": "[redacted]",
                        "Content-Type": "application/json", "X-Api-Key": "[redacted]",
                        "Cookie": "[redacted]"}
