"""Amounts a person types, read the same way by the API and the CLI.

An amount is a positive decimal string of ASCII digits ("100.00"): no sign, exponent,
spaces or grouping, and no more decimal places than its currency has (refused, never
rounded). The API's `MoneyIn` and every CLI command that takes an amount use these
functions, so a bad amount gets the same message on both.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from moneyed import CurrencyDoesNotExist, Money, get_currency

import ledger

__all__ = ["AMOUNT_RULE", "check_amount_text", "known_currency", "money_of"]

# fullmatch over ASCII digits: `$` would let "10.00\n" through, `\d` full-width and other
# scripts' digits
_AMOUNT = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,6})?")

AMOUNT_RULE = ("must be a decimal string of ASCII digits such as \"100.00\" "
               "(no sign, exponent, spaces or grouping)")


def check_amount_text(value: str) -> str:
    """`value` if it is written as an amount may be; ValueError(AMOUNT_RULE) otherwise."""
    if not _AMOUNT.fullmatch(value):
        raise ValueError(AMOUNT_RULE)
    return value


def known_currency(value: str) -> str:
    """An ISO 4217 code paycore can book (it has a minor unit); ValueError otherwise."""
    try:
        get_currency(value)
        ledger.minor_exponent(value)
    except (CurrencyDoesNotExist, ledger.LedgerError, KeyError, ValueError):
        raise ValueError(f"{value} is not an ISO 4217 currency paycore books") from None
    return value


def money_of(value: str, currency: str) -> Money:
    """The positive amount `value` of `currency` (`ledger.InvalidAmount` otherwise)."""
    try:
        known_currency(currency)
    except ValueError as exc:
        raise ledger.InvalidAmount(str(exc)) from None
    try:
        check_amount_text(value)
    except ValueError:
        raise ledger.InvalidAmount(f"{value} {currency}: {AMOUNT_RULE}") from None
    try:
        money = Money(Decimal(value), currency)
    except (InvalidOperation, ValueError) as exc:
        raise ledger.InvalidAmount(f"{value} {currency}: {exc}") from None
    if money.amount <= 0:
        raise ledger.InvalidAmount(f"{value} {currency}: must be positive")
    ledger.to_minor(money)  # refuses more precision than the currency allows
    return money
