"""Exact amounts from statement text: `Decimal` from the digits, never through `float`.

A statement amount more precise than its currency (1.001 CNY) cannot be booked in
minor units without rounding, so it is a defect of the file, not something to round.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from moneyed import Money

from ledger import InvalidRequest, from_minor, minor_exponent
from reconciliation.errors import UnreadableStatement

_PLAIN_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


class Reader:
    """Reads amounts for one file, so every failure names the format and the file."""

    def __init__(self, format: str, source_name: str) -> None:
        self.format = format
        self.source_name = source_name

    def unreadable(self, where: str, reason: str) -> UnreadableStatement:
        return UnreadableStatement(self.format, where, reason, source_name=self.source_name)

    def currency(self, code: str | None, where: str) -> str:
        code = (code or "").strip().upper()
        try:
            minor_exponent(code)
        except InvalidRequest:
            raise self.unreadable(where, f"{code!r} is not an ISO 4217 currency code") from None
        return code

    def money(self, text: str | None, currency: str, where: str) -> Money:
        """`text` is a plain decimal with `.` as separator (`-1234.5`, `12`)."""
        raw = (text or "").strip()
        if not _PLAIN_DECIMAL.fullmatch(raw):
            raise self.unreadable(where, f"{raw!r} is not an amount")
        try:
            amount = Decimal(raw)
        except InvalidOperation:  # pragma: no cover - the pattern already refused it
            raise self.unreadable(where, f"{raw!r} is not an amount") from None
        return self.exact(amount, currency, where)

    def exact(self, amount: Decimal, currency: str, where: str) -> Money:
        """Refuses a value more precise than the currency's minor unit."""
        places = minor_exponent(currency)
        exponent = amount.as_tuple().exponent
        if not isinstance(exponent, int):
            raise self.unreadable(where, f"{amount} is not a finite amount")
        if -exponent > places and amount != amount.quantize(Decimal(1).scaleb(-places)):
            raise self.unreadable(
                where, f"{amount} {currency} has more decimal places than {currency} allows "
                f"({places})"
            )
        # exact by now, so quantizing only writes out the currency's places: 25 -> 25.00
        return Money(amount.quantize(Decimal(1).scaleb(-places)), currency)

    def minor_units(self, units: int, currency: str) -> Money:
        return from_minor(units, currency)


def zero(currency: str) -> Money:
    return Money(Decimal(0), currency)
