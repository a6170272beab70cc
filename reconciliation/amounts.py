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

#: the largest amount the books keep, in minor units (signed 64-bit integers)
LARGEST_MINOR = 2**63 - 1

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
        # within what the books keep: the statement's lines, balances and batches are
        # stored as 64-bit minor units (a larger one reached the database and failed there:
        # a 500 for the import, on both databases)
        self._in_range(amount.scaleb(places), amount, currency, where)
        # exact by now, so quantizing only writes out the currency's places: 25 -> 25.00
        return Money(amount.quantize(Decimal(1).scaleb(-places)), currency)

    def minor_units(self, units: int, currency: str, where: str = "an amount") -> Money:
        money = from_minor(units, currency)
        self._in_range(Decimal(units), money.amount, currency, where)
        return money

    def _in_range(self, minor: Decimal, amount: Decimal, currency: str, where: str) -> None:
        if abs(minor) > LARGEST_MINOR:
            raise self.unreadable(
                where, f"{amount} {currency} is more than the books keep ({LARGEST_MINOR} "
                "minor units)")


def zero(currency: str) -> Money:
    return Money(Decimal(0), currency)
