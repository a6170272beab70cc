"""BAI2 cash-management balance reports, read with the `bai2` library.

One statement per account in each group. BAI2 amounts carry no decimal point: they
are whole minor units of the account's currency, so they become `Money` without ever
being divided.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from bai2 import bai2 as bai2_io
from bai2.constants import TypeCodeTransaction
from bai2.exceptions import IntegrityException, NotSupportedYetException, ParsingException

from reconciliation.amounts import Reader
from reconciliation.parsers.bai2_structure import Record, check_structure
from reconciliation.statement import Balance, BatchDetails, Statement, StatementLine, new_statement

FORMAT = "bai2"
_OPENING_LEDGER = "010"
_CLOSING_LEDGER = "015"


class Bai2Parser:
    format = FORMAT

    def parse(self, data: bytes, *, source_name: str) -> list[Statement]:
        reader = Reader(FORMAT, source_name)
        text = data.decode("latin-1")  # BAI2 is ASCII; latin-1 never fails to decode
        lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)
                 if line.strip()]
        records = check_structure(lines, reader)
        bai_file = _library_parse(lines, reader)
        account_lines = iter(r for r in records if r.code == "03")
        file_id = str(bai_file.header.file_id or "")
        statements: list[Statement] = []
        for group in bai_file.children:
            for account in group.children:
                statements.append(_read_account(
                    group, account, next(account_lines), file_id, reader, data, source_name
                ))
        return statements


def _library_parse(lines: list[tuple[int, str]], reader: Reader) -> Any:
    consumed = 0

    def counted() -> Iterator[str]:
        nonlocal consumed
        for _, text in lines:
            consumed += 1
            yield text

    try:
        return bai2_io.parse_from_lines(counted(), check_integrity=True)
    except (ParsingException, IntegrityException, NotSupportedYetException, ValueError,
            IndexError) as exc:
        # the library reads one record ahead, so the failing record is the one before
        index = max(consumed - 2, 0)
        raise reader.unreadable(f"line {lines[index][0]}", str(exc) or type(exc).__name__) \
            from None


def _read_account(
    group: Any, account: Any, record: Record, file_id: str, reader: Reader, data: bytes,
    source_name: str,
) -> Statement:
    where = f"line {record.line} (03 account identifier)"
    number = str(account.header.customer_account_number or "")
    currency = reader.currency(account.header.currency or group.header.currency, where)
    as_of: dt.date = group.header.as_of_date
    summaries = {s.type_code.code: s for s in account.header.summary_items}
    balances = []
    for code, what in ((_OPENING_LEDGER, "opening ledger"), (_CLOSING_LEDGER, "closing ledger")):
        if code not in summaries or summaries[code].amount is None:
            raise reader.unreadable(where, f"account {number} has no {what} ({code}) balance")
        balances.append(Balance(reader.minor_units(summaries[code].amount, currency), as_of))
    lines = [
        _read_detail(detail, currency, as_of, reader)
        for detail in account.children
        # "misc" type codes (e.g. 890) are information, not money moved
        if detail.type_code.transaction is not TypeCodeTransaction.misc
    ]
    return new_statement(
        statement_id=f"{file_id}/{number}/{as_of.isoformat()}",
        account=number,
        currency=currency,
        opening=balances[0],
        closing=balances[1],
        lines=lines,
        source_format=FORMAT,
        data=data,
        source_name=source_name,
    )


def _read_detail(detail: Any, currency: str, as_of: dt.date, reader: Reader) -> StatementLine:
    amount = reader.minor_units(int(detail.amount), currency)
    if detail.type_code.transaction is TypeCodeTransaction.debit:
        amount = -amount
    availability = detail.availability or {}
    value_date = availability.get("date") or as_of  # funds type V carries its own date
    return StatementLine(
        amount=amount,
        value_date=value_date,
        booking_date=as_of,
        bank_reference=detail.bank_reference or None,
        customer_reference=detail.customer_reference or None,
        description=" ".join((detail.text or "").split()),
        transaction_code=detail.type_code.code,
        batch=_batch(" ".join((detail.text or "").split()), currency, reader),
    )


#: a settlement batch in the 88 continuation records of a 16 detail:
#: `BATCH STL20261121RES ITEMS 3 GROSS 123400 FEE 740 ITEM T1 AMT 1000 FEE 6 ...`
#: (BAI2 amounts are in minor units)
_BATCH = re.compile(r"BATCH (?P<id>\S+) ITEMS (?P<count>\d+) GROSS (?P<gross>\d+) FEE (?P<fee>\d+)")
_ITEM = re.compile(r"ITEM (?P<ref>\S+) AMT \d+")


def _batch(text: str, currency: str, reader: Reader) -> BatchDetails | None:
    found = _BATCH.search(text)
    if found is None:
        return None
    return BatchDetails(
        item_count=int(found["count"]),
        gross_amount=reader.minor_units(int(found["gross"]), currency),
        fees=reader.minor_units(int(found["fee"]), currency),
        batch_id=found["id"],
        item_references=tuple(m["ref"] for m in _ITEM.finditer(text)),
    )
