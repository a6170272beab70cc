"""Integer minor units inside, `moneyed.Money` at the edges.

A `Money` more precise than its currency allows is an error, never a silent rounding.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from moneyed import Currency, Money, get_currency
from moneyed.classes import CurrencyDoesNotExist

from ledger.errors import InvalidAmount, InvalidRequest

__all__ = ["Money", "currency", "from_minor", "minor_exponent", "to_minor"]


def currency(code: str) -> Currency:
    try:
        return get_currency(code.upper())
    except CurrencyDoesNotExist:
        raise InvalidRequest(f"{code!r} is not an ISO 4217 currency code") from None


@cache
def _sub_unit(code: str) -> int:
    sub = currency(code).sub_unit
    return int(sub) if sub else 1


@cache
def minor_exponent(code: str) -> int:
    """Digits after the decimal point: CNY 2, JPY 0, KWD 3."""
    return len(str(_sub_unit(code))) - 1


def to_minor(amount: Money) -> int:
    """Exact conversion to integer minor units; refuses to round."""
    if not isinstance(amount, Money):
        raise InvalidAmount(f"expected a Money amount, got {type(amount).__name__}")
    raw = amount.amount
    if not isinstance(raw, Decimal) or not raw.is_finite():
        raise InvalidAmount(f"{amount!r} is not a finite decimal amount")
    scaled = raw * _sub_unit(amount.currency.code)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(
            f"{raw} {amount.currency.code} has more decimal places than "
            f"{amount.currency.code} allows ({minor_exponent(amount.currency.code)})"
        )
    return int(scaled)


def from_minor(units: int, code: str) -> Money:
    exp = minor_exponent(code)
    return Money(Decimal(units).scaleb(-exp), code)
