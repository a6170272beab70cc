"""Exact conversion between `Money` and the amount notations banks put on the wire.

Integer minor units (UnionPay's fen, the REST bank's `value`) and fixed-point decimal
text (the SM bank's "123.45").  Nothing here rounds: an amount a protocol cannot carry
exactly is refused, and inbound text that is not in canonical form is malformed.
"""

from __future__ import annotations

import re
from decimal import Decimal

from moneyed import Money

from gateways.protocols.errors import AmountNotAccepted, MalformedMessage
from ledger import InvalidAmount, InvalidRequest, from_minor, minor_exponent, to_minor

__all__ = [
    "decimal_text_to_minor",
    "minor_to_decimal_text",
    "minor_to_money",
    "money_to_minor",
    "parse_minor_units",
]

_MINOR_UNITS = re.compile(r"(?:0|[1-9][0-9]*)")


def money_to_minor(amount: Money, *, currency: str, max_digits: int) -> int:
    """A positive `Money` in `currency` as integer minor units of at most `max_digits`."""
    if not isinstance(amount, Money):
        raise AmountNotAccepted(f"expected a Money amount, got {type(amount).__name__}")
    code = amount.currency.code
    if code != currency:
        raise AmountNotAccepted(f"this bank takes {currency} only, not {code}")
    try:
        units = to_minor(amount)
    except (InvalidAmount, InvalidRequest) as exc:
        raise AmountNotAccepted(str(exc)) from None
    if units <= 0:
        raise AmountNotAccepted(f"amount must be positive, got {amount.amount} {code}")
    if len(str(units)) > max_digits:
        raise AmountNotAccepted(
            f"{amount.amount} {code} exceeds the {max_digits}-digit amount field"
        )
    return units


def minor_to_money(units: int, currency: str) -> Money:
    return from_minor(units, currency)


def parse_minor_units(text: str, *, field: str, max_digits: int) -> int:
    """Strict decimal digits, no sign, no leading zeros, no spaces."""
    if not _MINOR_UNITS.fullmatch(text) or len(text) > max_digits:
        raise MalformedMessage(
            f"{field} must be whole minor units of at most {max_digits} digits, got {text!r}"
        )
    return int(text)


def minor_to_decimal_text(units: int, currency: str) -> str:
    """12345 CNY -> "123.45"; the scale is always the currency's exponent."""
    exponent = minor_exponent(currency)
    return f"{Decimal(units).scaleb(-exponent):.{exponent}f}"


def decimal_text_to_minor(text: str, currency: str, *, field: str, max_digits: int) -> int:
    """"123.45" CNY -> 12345; exactly the currency's number of decimals, nothing else."""
    exponent = minor_exponent(currency)
    fraction = rf"\.[0-9]{{{exponent}}}" if exponent else ""
    if not re.fullmatch(rf"(?:0|[1-9][0-9]*){fraction}", text):
        raise MalformedMessage(
            f"{field} must be a plain decimal with {exponent} decimals, got {text!r}"
        )
    units = int(text.replace(".", ""))
    if len(str(units)) > max_digits:
        raise MalformedMessage(f"{field} exceeds {max_digits} digits")
    return units
