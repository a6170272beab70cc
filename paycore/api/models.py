"""Shapes shared by the routers: money as exact decimal strings (never JSON numbers, which
clients parse as floats), and the problem document for the OpenAPI description."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from moneyed import CurrencyDoesNotExist, Money, get_currency
from pydantic import BaseModel, ConfigDict, Field, field_validator

import ledger

_AMOUNT = re.compile(r"^\d{1,15}(\.\d{1,6})?$")


class MoneyOut(BaseModel):
    amount: str = Field(description="decimal string in the currency's units, e.g. \"100.00\"",
                        examples=["100.00"])
    currency: str = Field(description="ISO 4217 code", examples=["CNY"])

    @classmethod
    def of(cls, money: Money) -> MoneyOut:
        return cls(amount=str(money.amount), currency=money.currency.code)

    @classmethod
    def minor(cls, units: int, currency: str) -> MoneyOut:
        return cls.of(ledger.from_minor(units, currency))


class MoneyIn(BaseModel):
    """An amount given by a client: a positive decimal *string* and a currency; more decimal
    places than the currency has are refused (422), never rounded."""

    model_config = ConfigDict(extra="forbid")

    amount: str = Field(description="positive decimal string, e.g. \"100.00\"",
                        examples=["100.00"])
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["CNY"])

    @field_validator("amount")
    @classmethod
    def _decimal_string(cls, value: str) -> str:
        if not _AMOUNT.match(value):
            raise ValueError("must be a decimal string such as \"100.00\" (no sign, no exponent)")
        return value

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        try:
            get_currency(value)
        except CurrencyDoesNotExist:
            raise ValueError(f"{value} is not an ISO 4217 currency") from None
        return value

    def to_money(self) -> Money:
        try:
            money = Money(Decimal(self.amount), self.currency)
        except (InvalidOperation, ValueError) as exc:
            raise ledger.InvalidAmount(f"{self.amount} {self.currency}: {exc}") from None
        if money.amount <= 0:
            raise ledger.InvalidAmount(f"{self.amount} {self.currency}: must be positive")
        ledger.to_minor(money)  # refuses more precision than the currency allows
        return money


class Problem(BaseModel):
    """RFC 9457 problem details; members beyond these are specific to the problem type."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://paycore.example/problems/unbalanced-entry"])
    title: str
    status: int
    detail: str
    instance: str
    code: str | None = Field(None, description="the machine-readable name the type URI ends in")
    request_id: str | None = Field(None, description="as echoed in X-Request-ID")


def problem_schema() -> dict[str, Any]:
    return Problem.model_json_schema(ref_template="#/components/schemas/{model}")
