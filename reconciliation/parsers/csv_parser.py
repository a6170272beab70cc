"""Bank CSV exports, read with the standard `csv` module through a `CsvProfile`."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from dataclasses import dataclass

from moneyed import Money

from reconciliation.amounts import Reader
from reconciliation.parsers.csv_profile import CsvProfile
from reconciliation.statement import Balance, Statement, StatementLine, new_statement

FORMAT = "csv"


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    values: dict[str, str]


class CsvParser:
    format = FORMAT

    def __init__(self, profile: CsvProfile) -> None:
        self.profile = profile

    def parse(self, data: bytes, *, source_name: str) -> list[Statement]:
        reader = Reader(f"{FORMAT} ({self.profile.name})", source_name)
        rows = _rows(data, self.profile, reader)
        if not rows:
            raise reader.unreadable("the header row", "the file has no statement lines")
        return [_statement(rows, self.profile, reader, data, source_name)]


def _rows(data: bytes, profile: CsvProfile, reader: Reader) -> list[_Row]:
    try:
        text = data.decode(profile.encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise reader.unreadable(f"line {line}", f"not {profile.encoding} text") from None
    records = csv.reader(io.StringIO(text, newline=""), delimiter=profile.delimiter)
    try:
        for _ in range(profile.skip_rows):
            next(records)
        header = [name.strip() for name in next(records)]
    except StopIteration:
        raise reader.unreadable("line 1", "the file ends before its header row") from None
    except csv.Error as exc:
        raise reader.unreadable(f"line {records.line_num}", str(exc)) from None
    missing = [c for c in profile.columns() if c not in header]
    if missing:
        raise reader.unreadable(
            f"line {records.line_num} (header row)", f"no column named {', '.join(missing)}"
        )
    rows = []
    try:
        for record in records:
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                raise reader.unreadable(
                    f"line {records.line_num}",
                    f"{len(record)} columns where the header has {len(header)}; the file "
                    f"may be truncated",
                )
            rows.append(_Row(records.line_num, dict(zip(header, record, strict=True))))
    except csv.Error as exc:  # e.g. a quoted field the file ends inside of
        raise reader.unreadable(f"line {records.line_num}", str(exc)) from None
    return list(reversed(rows)) if profile.newest_first else rows


def _statement(
    rows: list[_Row], profile: CsvProfile, reader: Reader, data: bytes, source_name: str
) -> Statement:
    first = rows[0]
    currency = _currency(first, profile, reader)
    lines = [_line(row, profile, reader) for row in rows]
    opening = closing = None
    if profile.balance_column is not None:
        balances = [
            _money(row, profile.balance_column, profile, _currency(row, profile, reader), reader)
            for row in rows
        ]
        _check_running_balance(rows, lines, balances, reader)
        opening = Balance(balances[0] - lines[0].amount, lines[0].booking_date)
        closing = Balance(balances[-1], lines[-1].booking_date)
    dates = sorted(line.booking_date for line in lines)
    return new_statement(
        statement_id=f"{profile.name}:{profile.account}:{dates[0]}..{dates[-1]}",
        account=profile.account,
        currency=currency,
        opening=opening,
        closing=closing,
        lines=lines,
        source_format=FORMAT,
        data=data,
        source_name=source_name,
    )


def _check_running_balance(
    rows: list[_Row], lines: list[StatementLine], balances: list[Money], reader: Reader
) -> None:
    """Each balance is the one before plus the line: a gap means a lost line."""
    for index in range(1, len(rows)):
        expected = balances[index - 1] + lines[index].amount
        if balances[index] != expected:
            raise reader.unreadable(
                f"line {rows[index].line}",
                f"running balance {balances[index].amount} does not follow from the "
                f"previous {balances[index - 1].amount} and this line's "
                f"{lines[index].amount.amount}",
            )


def _line(row: _Row, profile: CsvProfile, reader: Reader) -> StatementLine:
    currency = _currency(row, profile, reader)
    if profile.amount_column is not None:
        amount = _money(row, profile.amount_column, profile, currency, reader)
    else:
        assert profile.credit_column is not None and profile.debit_column is not None
        credit = _money(row, profile.credit_column, profile, currency, reader, blank_ok=True)
        debit = _money(row, profile.debit_column, profile, currency, reader, blank_ok=True)
        if credit.amount and debit.amount:
            raise reader.unreadable(f"line {row.line}", "both a debit and a credit amount")
        # banks write the debit column both as `12.50` and as `-12.50`
        amount = credit - abs(debit)
    booking = _date(row, profile.date_column, profile, reader)
    value = (_date(row, profile.value_date_column, profile, reader)
             if profile.value_date_column and row.values[profile.value_date_column].strip()
             else booking)
    return StatementLine(
        amount=amount,
        value_date=value,
        booking_date=booking,
        bank_reference=_optional(row, profile.reference_column),
        end_to_end_id=_optional(row, profile.end_to_end_id_column),
        counterparty_name=_optional(row, profile.counterparty_name_column),
        counterparty_account=_optional(row, profile.counterparty_account_column),
        description=" ".join(
            " ".join(row.values[c].split()) for c in profile.description_columns
            if row.values[c].strip()
        ),
    )


def _optional(row: _Row, column: str | None) -> str | None:
    return (row.values[column].strip() or None) if column else None


def _currency(row: _Row, profile: CsvProfile, reader: Reader) -> str:
    if profile.currency is not None:
        return reader.currency(profile.currency, "the CSV profile")
    assert profile.currency_column is not None
    return reader.currency(
        row.values[profile.currency_column], f"line {row.line} ({profile.currency_column})"
    )


@functools.lru_cache(maxsize=4096)
def _parse_date(text: str, date_format: str) -> dt.date:
    # a statement has few distinct dates and strptime is slow: each is read once
    if date_format == "%Y-%m-%d" and len(text) == 10:
        return dt.date.fromisoformat(text)
    # a calendar date with no time of day: there is no zone to attach
    return dt.datetime.strptime(text, date_format).date()  # noqa: DTZ007


def _date(row: _Row, column: str, profile: CsvProfile, reader: Reader) -> dt.date:
    text = row.values[column].strip()
    try:
        return _parse_date(text, profile.date_format)
    except ValueError:
        raise reader.unreadable(
            f"line {row.line} ({column})", f"{text!r} is not a date in {profile.date_format}"
        ) from None


def _money(
    row: _Row, column: str, profile: CsvProfile, currency: str, reader: Reader, *,
    blank_ok: bool = False,
) -> Money:
    where = f"line {row.line} ({column})"
    text = row.values[column].strip()
    if not text and blank_ok:
        return Money(0, currency)
    negative = False
    if text.startswith("(") and text.endswith(")"):  # accounting style: (1,234.50)
        negative, text = True, text[1:-1]
    elif text.endswith("-"):  # trailing minus, common in German exports
        negative, text = True, text[:-1]
    if profile.thousands_separator:
        text = text.replace(profile.thousands_separator, "")
    if profile.decimal_separator != ".":
        if "." in text:
            raise reader.unreadable(where, f"{row.values[column]!r} is not an amount")
        text = text.replace(profile.decimal_separator, ".")
    money = reader.money(text, currency, where)
    return -money if negative else money
