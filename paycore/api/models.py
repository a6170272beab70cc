"""Shapes shared by the routers: money as exact decimal strings (never JSON numbers, which
clients parse as floats), dates and times the books can hold, database ids, and the problem
document for the OpenAPI description.

Every amount, date, time and id a client sends is read here, strictly, in one place:
- an amount is ASCII digits with an optional point and decimals — no sign, exponent,
  whitespace (a trailing newline included) or non-ASCII digits (`MoneyIn`, 422
  `validation-failed`); `MoneyIn.to_money`, which every route calls before it writes,
  refuses zero and precision finer than the currency's minor unit (422 `invalid-amount`);
- a date is `YYYY-MM-DD`, a time ISO 8601 with its UTC offset (`ApiDate`, `ApiDateTime`,
  `ApiDateOrDateTime`): never a Unix timestamp, and within `EARLIEST`..`LATEST`, which
  every table and every `datetime` computation (the end of a day, a term added) can hold;
- a database id fits a signed 64-bit integer (`BIGINT_MAX`)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from moneyed import Money
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

import ledger
from paycore.amounts import check_amount_text, known_currency, money_of

#: the range of dates and times the API takes (1970 to the end of 2199): wide enough for any
#: booking, value date, loan or statement, and far enough from `datetime`'s year 9999 that
#: adding a term or a day never overflows
EARLIEST = dt.date(1970, 1, 1)
LATEST = dt.date(2199, 12, 31)
#: the largest id of a BIGINT primary key (PostgreSQL and SQLite integers are signed 64-bit)
BIGINT_MAX = 2**63 - 1

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}"
                           r"(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?")


def _in_range(day: dt.date) -> None:
    if not EARLIEST <= day <= LATEST:
        raise ValueError(f"{day.isoformat()} is outside the dates the books take "
                         f"({EARLIEST.isoformat()} to {LATEST.isoformat()})")


def parse_date(value: object) -> dt.date:
    """`YYYY-MM-DD` (or a `date` from Python), within EARLIEST..LATEST."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        day = value
    elif isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value} is not a day of the calendar") from None
    else:
        raise ValueError("must be a date written YYYY-MM-DD")
    _in_range(day)
    return day


def parse_datetime(value: object) -> dt.datetime:
    """ISO 8601 (`2026-11-22T10:00:00Z`, `...+08:00`), within range. A time without its
    offset passes here: the ledger refuses it, naming why (`invalid-request`)."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and _ISO_DATETIME.fullmatch(value):
        try:
            moment = dt.datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            raise ValueError(f"{value} is not a valid time") from None
    else:
        raise ValueError("must be a time written YYYY-MM-DDTHH:MM:SS with its UTC offset "
                         "(Z or +HH:MM)")
    aware = moment.tzinfo is not None and moment.utcoffset() is not None
    _in_range((moment.astimezone(dt.UTC) if aware else moment).date())
    return moment


def parse_date_or_datetime(value: object) -> dt.date | dt.datetime:
    if isinstance(value, dt.datetime) or (isinstance(value, str) and len(value) > 10):
        return parse_datetime(value)
    return parse_date(value)


ApiDate = Annotated[dt.date, BeforeValidator(parse_date)]
ApiDateTime = Annotated[dt.datetime, BeforeValidator(parse_datetime)]
ApiDateOrDateTime = Annotated[dt.date | dt.datetime, BeforeValidator(parse_date_or_datetime)]



Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["CNY"]),
                     AfterValidator(known_currency)]


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
        return check_amount_text(value)  # the CLI reads amounts by the same rule

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        return known_currency(value)

    def to_money(self) -> Money:
        return money_of(self.amount, self.currency)


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
