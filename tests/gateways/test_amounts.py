"""Money <-> wire amounts: exact in both directions, never a float, never a rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from moneyed import Money

from gateways.protocols import AmountNotAccepted, MalformedMessage
from gateways.protocols.amounts import (
    decimal_text_to_minor,
    minor_to_decimal_text,
    parse_minor_units,
)
from gateways.protocols.unionpay import fen_to_money, money_to_fen


@pytest.mark.parametrize(
    ("amount", "fen"),
    [("0.01", 1), ("1", 100), ("123.45", 12345), ("123.4", 12340), ("9999999999.99", 999999999999)],
)
def test_money_to_fen_is_exact(amount: str, fen: int) -> None:
    assert money_to_fen(Money(amount, "CNY")) == fen
    back = fen_to_money(fen)
    assert back == Money(amount, "CNY")
    assert isinstance(back.amount, Decimal)


@pytest.mark.parametrize(
    "amount",
    [
        Money("1.005", "CNY"),  # sub-fen precision is refused, not rounded
        Money("0", "CNY"),
        Money("-1.00", "CNY"),
        Money("10000000000.00", "CNY"),  # 13 digits of fen: beyond txnAmt's N12
        Money("1.00", "USD"),
    ],
)
def test_money_to_fen_refuses_what_txnamt_cannot_carry(amount: Money) -> None:
    with pytest.raises(AmountNotAccepted):
        money_to_fen(amount)


def test_money_to_fen_refuses_a_float() -> None:
    with pytest.raises(AmountNotAccepted):
        money_to_fen(1.5)


@pytest.mark.parametrize("text", ["012", "1.0", "-1", " 1", "1e3", "", "\uff11\uff12", "1_000"])
def test_minor_units_text_is_strict(text: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_minor_units(text, field="txnAmt", max_digits=12)


def test_decimal_text_round_trip_at_the_currency_scale() -> None:
    assert minor_to_decimal_text(12345, "CNY") == "123.45"
    assert minor_to_decimal_text(5, "CNY") == "0.05"
    assert minor_to_decimal_text(1500, "JPY") == "1500"
    assert minor_to_decimal_text(1, "KWD") == "0.001"
    assert decimal_text_to_minor("0.05", "CNY", field="Amount", max_digits=15) == 5
    for bad in ["123.4", "123.456", "0123.45", "1,23.45", "123.45 ", "-1.00", "1.0e2"]:
        with pytest.raises(MalformedMessage):
            decimal_text_to_minor(bad, "CNY", field="Amount", max_digits=15)


@given(st.integers(min_value=1, max_value=10**12 - 1))
def test_fen_round_trip_property(fen: int) -> None:
    assert money_to_fen(fen_to_money(fen)) == fen
    text = minor_to_decimal_text(fen, "CNY")
    assert decimal_text_to_minor(text, "CNY", field="Amount", max_digits=15) == fen
