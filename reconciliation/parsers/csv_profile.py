"""How one bank lays out its CSV export: a `CsvProfile` per bank and export type.

CSV has no standard, so everything a statement needs is named here rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass


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

    def columns(self) -> list[str]:
        """Every column the profile reads, to check the header row against."""
        named = [
            self.date_column, self.value_date_column, self.amount_column, self.debit_column,
            self.credit_column, self.balance_column, self.currency_column,
            self.reference_column, self.end_to_end_id_column, self.counterparty_name_column,
            self.counterparty_account_column, *self.description_columns,
        ]
        return [c for c in named if c is not None]
