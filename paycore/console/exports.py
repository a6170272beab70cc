"""Exports of the console's statements and reports as CSV and XLSX: the trial balance,
balance sheet and income statement of the books page, and the bank-vs-book report.

Money is written as an exact number (a `Decimal`: openpyxl writes its own digits into the
sheet, never through a binary float) in the currency's minor-unit precision, shown with
thousands separators, with its currency in a column of its own (a cell knows no
currency). CSV has the same columns and the same digits, without separators.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from fastapi.responses import Response

import ledger
import reconciliation

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("csv", "xlsx")


def money(minor: int, currency: str) -> Decimal:
    """Minor units as the exact decimal amount (2 decimals for CNY, 0 for JPY)."""
    return Decimal(ledger.from_minor(minor, currency).amount)


#: the control characters an XLSX cell cannot hold (XML 1.0 has no place for them; tab,
#: line feed and carriage return it keeps)
_NOT_IN_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xlsx_text(text: str) -> str:
    """`text` as an XLSX cell can hold it: each control character it cannot hold shown as
    its Unicode control picture (U+0007 as U+2407). openpyxl raised IllegalCharacterError
    for them, so one merchant's description or one statement line holding, say, a BEL
    made the whole export a 500."""
    return _NOT_IN_XLSX.sub(lambda m: chr(0x2400 + ord(m.group())), text)


def xlsx_row(sheet: Any, values: Sequence[object]) -> list[object]:
    """A row's values for a write-only openpyxl sheet, every string as a text cell:
    openpyxl makes a string that starts with '=' a formula, and merchants' and banks'
    text (a description, a name, a statement line's reference) must never run as one in
    the reader's spreadsheet. The text is kept as it is (no quote put before it), but
    for the control characters no XLSX cell holds (`_xlsx_text`)."""
    from openpyxl.cell import WriteOnlyCell

    out: list[object] = []
    for value in values:
        if isinstance(value, str):
            cell = WriteOnlyCell(sheet, value=_xlsx_text(value))
            cell.data_type = "s"  # text, even when it reads like a formula
            out.append(cell)
        else:
            out.append(value)
    return out


def csv_row(values: Sequence[object]) -> list[str]:
    """A row's CSV cells: nothing for None, numbers as their digits, text that a
    spreadsheet would run as a formula as text (`reconciliation.spreadsheet_text`)."""
    return ["" if v is None else reconciliation.spreadsheet_text(v) if isinstance(v, str)
            else str(v) for v in values]


#: one table: (its name, the header, the rows)
Sheet = tuple[str, Sequence[str], Sequence[Sequence[object]]]


def respond(filename: str, fmt: str, sheets: Sequence[Sheet]) -> Response:
    """CSV (the first sheet) or an XLSX workbook with a worksheet per table."""
    headers = {"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'}
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        _, header, rows = sheets[0]
        writer.writerow(header)
        writer.writerows([csv_row(row) for row in rows])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    for title, header, rows in sheets:
        sheet = book.create_sheet(title[:31])
        sheet.append(xlsx_row(sheet, header))
        for row in rows:
            cells: list[object] = []
            for value in row:
                if isinstance(value, Decimal):
                    cell = WriteOnlyCell(sheet, value=value)
                    places = max(0, -int(value.as_tuple().exponent))
                    cell.number_format = "#,##0" + ("." + "0" * places if places else "")
                    cells.append(cell)
                else:
                    cells.extend(xlsx_row(sheet, [value]))
            sheet.append(cells)
    data = io.BytesIO()
    book.save(data)
    return Response(data.getvalue(), media_type=XLSX, headers=headers)


def trial_balance(tb: ledger.TrialBalance) -> Sheet:
    rows: list[list[object]] = [
        [r.code, r.name, r.type.value, money(r.debit, r.currency) if r.debit else None,
         money(r.credit, r.currency) if r.credit else None, r.currency]
        for r in tb.rows if r.debit or r.credit]
    rows += [[f"Total {cur}", "", "", money(d, cur), money(c, cur), cur]
             for cur, (d, c) in tb.totals.items()]
    return ("Trial balance", ["Account", "Name", "Type", "Debit", "Credit", "Currency"], rows)


def _section_rows(section: ledger.StatementSection, currency: str) -> list[list[object]]:
    rows: list[list[object]] = [[section.title, "", f"Total {section.title.lower()}",
                                 money(section.total, currency), currency]]
    rows += [[section.title, code, name, money(amount, currency), currency]
             for code, name, amount in section.lines]
    return rows


def balance_sheet(sheets: Sequence[ledger.BalanceSheet]) -> Sheet:
    rows: list[list[object]] = []
    for s in sheets:
        for section in (s.assets, s.liabilities, s.equity):
            rows += _section_rows(section, s.currency)
        rows.append(["Equity", "", "Current earnings (income less expenses, not yet closed)",
                     money(s.current_earnings, s.currency), s.currency])
    return ("Balance sheet", ["Section", "Account", "Name", "Amount", "Currency"], rows)


def income_statement(statements: Sequence[ledger.IncomeStatement]) -> Sheet:
    rows: list[list[object]] = []
    for i in statements:
        for section in (i.income, i.expenses):
            rows += _section_rows(section, i.currency)
        rows.append(["Net income", "", "Net income", money(i.net_income, i.currency),
                     i.currency])
    return ("Income statement", ["Section", "Account", "Name", "Amount", "Currency"], rows)


def recon_report(report: reconciliation.ReconciliationReport) -> Sheet:
    """The bank-vs-book report: the rows of its CSV, amounts as exact numbers."""
    header, rows = report.table()
    return ("Bank vs book", header, [
        [row[0], row[1],
         money(row[2], report.currency) if isinstance(row[2], int) else None, *row[3:]]
        for row in rows])
