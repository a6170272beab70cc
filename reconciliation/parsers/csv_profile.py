"""How one bank lays out its CSV export: a `CsvProfile` per bank and export type.

CSV has no standard, so everything a statement needs is named here rather than guessed.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_type_hints

from reconciliation.errors import InvalidCsvProfile


@dataclass(frozen=True, slots=True)
class CsvProfile:
    #: a name for messages and statement ids, e.g. `icbc-corporate-daily`
    name: str
    #: the account the export is for; CSV exports rarely say so themselves
    account: str
    date_column: str
    date_format: str = "%Y-%m-%d"
    value_date_column: str | None = None
    #: one signed amount column (credit to the account positive) ...
    amount_column: str | None = None
    #: ... or separate debit and credit columns, each written as a positive number
    debit_column: str | None = None
    credit_column: str | None = None
    #: the running balance after each line, when the bank gives it; it is what lets a
    #: CSV statement prove it is complete
    balance_column: str | None = None
    #: a fixed currency, or the column that carries it
    currency: str | None = None
    currency_column: str | None = None
    reference_column: str | None = None
    end_to_end_id_column: str | None = None
    description_columns: tuple[str, ...] = ()
    counterparty_name_column: str | None = None
    counterparty_account_column: str | None = None
    delimiter: str = ","
    #: rows before the header row (a title, the account, the period, ...)
    skip_rows: int = 0
    decimal_separator: str = "."
    thousands_separator: str = ""
    encoding: str = "utf-8-sig"
    #: many online-banking exports list the latest movement first
    newest_first: bool = False

    def __post_init__(self) -> None:
        signed = self.amount_column is not None
        split = self.debit_column is not None and self.credit_column is not None
        if signed == split:
            raise ValueError(
                f"CSV profile {self.name!r}: give amount_column, or debit_column and "
                f"credit_column"
            )
        if (self.currency is None) == (self.currency_column is None):
            raise ValueError(f"CSV profile {self.name!r}: give currency or currency_column")
        if self.decimal_separator == self.thousands_separator:
            raise ValueError(
                f"CSV profile {self.name!r}: decimal and thousands separators must differ"
            )
        if len(self.delimiter) != 1:
            raise ValueError(f"CSV profile {self.name!r}: the delimiter is one character")
        if self.skip_rows < 0:
            raise ValueError(f"CSV profile {self.name!r}: skip_rows cannot be negative")

    @classmethod
    def from_mapping(cls, doc: object, *, source: str = "CSV profile") -> CsvProfile:
        """A profile from what a person wrote (YAML, JSON, an API body), checked against
        the fields below: an unknown key is an error that suggests the field meant (a
        misspelt `balance_colum` must not silently turn the balance check off), a missing
        or mistyped field is named."""
        if not isinstance(doc, Mapping):
            raise InvalidCsvProfile(f"{source}: expected a mapping of profile fields "
                                    f"(key: value), found {type(doc).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        problems = []
        for key in doc:
            if str(key) not in fields:
                close = difflib.get_close_matches(str(key), fields, n=1)  # difflib's default cutoff
                hint = f"; did you mean {close[0]!r}?" if close else \
                    f"; known fields: {', '.join(fields)}"
                problems.append(f"unknown field {key!r}{hint}")
        missing = [name for name, f in fields.items() if f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING and name not in doc]
        problems += [f"missing required field {name!r}" for name in missing]
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for key, value in doc.items():
            if str(key) not in fields:
                continue
            checked = _typed(str(key), value, hints[str(key)])
            if isinstance(checked, _Problem):
                problems.append(checked.text)
            else:
                values[str(key)] = checked
        if problems:
            raise InvalidCsvProfile(f"{source}: " + "; ".join(problems))
        try:
            return cls(**values)
        except ValueError as exc:
            raise InvalidCsvProfile(f"{source}: {exc}") from None

    def columns(self) -> list[str]:
        """Every column the profile reads, to check the header row against."""
        named = [
            self.date_column, self.value_date_column, self.amount_column, self.debit_column,
            self.credit_column, self.balance_column, self.currency_column,
            self.reference_column, self.end_to_end_id_column, self.counterparty_name_column,
            self.counterparty_account_column, *self.description_columns,
        ]
        return [c for c in named if c is not None]


@dataclass(frozen=True, slots=True)
class _Problem:
    text: str


def _typed(key: str, value: object, hint: object) -> object:
    """`value` as the field's type, or a `_Problem` saying what was expected."""
    if hint == tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        return _Problem(f"{key!r} must be a list of column names, found {value!r}")
    if hint is bool:
        return value if isinstance(value, bool) else \
            _Problem(f"{key!r} must be true or false, found {value!r}")
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else \
            _Problem(f"{key!r} must be a whole number, found {value!r}")
    if value is None and hint == (str | None):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and key.endswith("_column"):
        # YAML reads a header named 2024 as a number
        return str(value)
    return _Problem(f"{key!r} must be text, found {value!r}")


#: what `paycore recon profile --example` prints: every field, commented
EXAMPLE = """\
# A CSV profile: how one bank lays out its CSV statement export.
# Give it to `paycore statement import FILE --account BANK --csv-profile THIS.yaml`.
# Column names are the header row's, exactly as the bank writes them.

name: cmb-corporate-daily          # required: a name for messages and statement ids
account: "755912345610801"         # required: the account the export is for (quote numbers)
date_column: Booking Date          # required: the booking date of each line
date_format: "%Y-%m-%d"            # how dates are written (Python strptime), e.g. "%d.%m.%Y"
value_date_column: Value Date      # optional: the value date; the booking date when absent

# the amount: ONE signed column (money in positive) ...
amount_column: Amount
# ... OR two columns each written as a positive number (then leave amount_column out):
# debit_column: Debit
# credit_column: Credit

balance_column: Balance            # optional but recommended: the running balance after
                                   # each line; it proves that no line is missing

currency: CNY                      # the currency of every line ...
# currency_column: Currency        # ... OR the column that carries it (give one of the two)

reference_column: Bank Reference           # optional: the bank's own reference
end_to_end_id_column: End To End Id        # optional: your payment id as the bank echoes it
counterparty_name_column: Counterparty     # optional
counterparty_account_column: Counterparty Account  # optional
description_columns: [Description]         # optional: columns joined into the description

delimiter: ","                     # one character: "," ";" "|" or "\\t"
skip_rows: 0                       # rows before the header row (title, period, ...)
decimal_separator: "."             # "," in most of Europe
thousands_separator: ","           # "" when none; must differ from decimal_separator
encoding: utf-8-sig                # e.g. cp1252, gb18030
newest_first: false                # true when the export lists the latest line first
"""
