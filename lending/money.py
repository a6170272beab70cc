"""Integer minor units inside, `moneyed.Money` at the edges, and the one place that rounds.

Lending computes every amount in integer minor units of the loan's currency, so a rounded
result is simply an integer: rounding "to the cent" for CNY and "to the yen" for JPY are the
same operation on minor units. `Decimal` appears only for rates and for the exact
intermediate product of principal x rate x days, which is rounded once, by a named mode.
"""

from __future__ import annotations

import decimal
import enum
from decimal import Decimal

from moneyed import Money

import ledger
from lending.errors import InvalidAmount, InvalidInput, InvalidRate

__all__ = [
    "Money",
    "RoundingMode",
    "check_currency",
    "check_minor",
    "check_rate",
    "format_minor",
    "from_money",
    "prorate",
    "round_to_minor",
    "to_money",
]


class RoundingMode(enum.StrEnum):
    """The `decimal` rounding modes a product may name; the values are `decimal`'s own."""

    HALF_EVEN = decimal.ROUND_HALF_EVEN
    HALF_UP = decimal.ROUND_HALF_UP
    HALF_DOWN = decimal.ROUND_HALF_DOWN
    DOWN = decimal.ROUND_DOWN
    UP = decimal.ROUND_UP
    FLOOR = decimal.ROUND_FLOOR
    CEILING = decimal.ROUND_CEILING


# Enough digits that the quotient of principal x rate x days by the day-count basis is
# decided exactly: its true value either is a tie or lies at least 1/(basis x 10^k) from
# one (k = the rate's decimal places), far above the error at 60 significant digits.
_PRECISION = 60
# one explicit context, passed to each operation (cheaper than a `localcontext` per call,
# which the accrual run would enter several times per loan); the thread's own context is
# never touched
_CONTEXT = decimal.Context(prec=_PRECISION, traps=[decimal.InvalidOperation,
                                                   decimal.DivisionByZero, decimal.Overflow])
_ONE = Decimal(1)


def round_to_minor(value: Decimal, rounding: RoundingMode) -> int:
    """Round an exact amount of minor units to a whole number of them, by `rounding`."""
    return int(value.quantize(_ONE, rounding=str(rounding), context=_CONTEXT))


def prorate(quantity: int, rate: Decimal, basis: int) -> Decimal:
    """`quantity x rate / basis`, unrounded, at the precision `round_to_minor` relies on."""
    return _CONTEXT.divide(_CONTEXT.multiply(Decimal(quantity), rate), Decimal(basis))


def check_minor(value: object, what: str, *, positive: bool = False) -> int:
    """An amount of minor units: an `int` (never a bool or float), not negative."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmount(
            f"{what} must be an integer number of minor units, got {type(value).__name__}"
        )
    if value < 0 or (positive and value == 0):
        raise InvalidAmount(f"{what} must be {'positive' if positive else 'zero or more'}, "
                            f"got {value}")
    return value


def check_rate(value: object, what: str) -> Decimal:
    """A rate as a fraction per year (0.10 for 10 %): a finite `Decimal`, not negative."""
    if not isinstance(value, Decimal):
        raise InvalidRate(
            f"{what} must be a Decimal (e.g. Decimal('0.10')), got {type(value).__name__}"
        )
    if not value.is_finite() or value < 0:
        raise InvalidRate(f"{what} must be a finite rate of zero or more, got {value}")
    return value


def check_currency(code: str) -> str:
    try:
        ledger.minor_exponent(code)
    except ledger.LedgerError:
        raise InvalidInput(f"{code!r} is not an ISO 4217 currency code") from None
    return code.upper()


def format_minor(units: int, currency: str) -> str:
    """`1000000, "CNY"` -> `"10,000.00 CNY"`: for reasons and error messages people read."""
    exponent = ledger.minor_exponent(currency)
    major = Decimal(units).scaleb(-exponent)
    return f"{major:,.{exponent}f} {currency}"


def from_money(amount: Money, currency: str | None = None) -> int:
    """Exact minor units of a `Money`; more precision than the currency has is an error."""
    if currency is not None and amount.currency.code != currency:
        raise InvalidAmount(f"expected an amount in {currency}, got {amount.currency.code}")
    try:
        return ledger.to_minor(amount)
    except ledger.LedgerError as exc:
        raise InvalidAmount(str(exc)) from None


def to_money(units: int, currency: str) -> Money:
    return ledger.from_minor(units, currency)
