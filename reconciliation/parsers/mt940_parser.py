"""SWIFT MT940 customer statements, read with the `mt-940` library.

The library is lenient where a ledger cannot be: it parses a file cut off before its
closing balance without complaint, reports a failing tag without its line, and logs
rather than raises. So this module splits the file into statements itself, knows the
line of every tag, and insists on the tags that make a statement whole.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import re
from dataclasses import dataclass
from typing import Any

import mt940

from reconciliation.amounts import Reader
from reconciliation.parsers.mt940_details import read_details
from reconciliation.parsers.mt940_lenient import (
    Leniency,
    explain,
    first_problem,
    statement_line_leniency,
)
from reconciliation.statement import Balance, BatchDetails, Statement, StatementLine, new_statement

FORMAT = "mt940"

_TAG = re.compile(r"^:(?P<tag>\d{2}[A-Z]?|NS):", re.MULTILINE)
#: the SWIFT FIN envelope around each message: `{1:...}{2:...}{4:` ... `-}{5:...}`
_ENVELOPE_OPEN = re.compile(r"^\{1:.*\{4:\s*$")
_ENVELOPE_CLOSE = re.compile(r"^-\}")
_OPENING_TAGS = ("final_opening_balance", "intermediate_opening_balance", "opening_balance")
_CLOSING_TAGS = ("final_closing_balance", "intermediate_closing_balance", "closing_balance")

# every switch that makes the library read the standard strictly (RC is a debit, ...)
_OPTIONS = mt940.Options.all()


@dataclass(frozen=True, slots=True)
class _Block:
    text: str
    #: line number in the file of the block's first line
    first_line: int


class Mt940Parser:
    format = FORMAT

    def parse(self, data: bytes, *, source_name: str) -> list[Statement]:
        reader = Reader(FORMAT, source_name)
        text = _decode(data)
        blocks = _statement_blocks(text)
        if not blocks:
            raise reader.unreadable("line 1", "no :20: statement found")
        return [_read_block(block, reader, data, source_name) for block in blocks]


def _decode(data: bytes) -> str:
    text = data.decode("utf-8-sig", errors="strict") if _is_utf8(data) else data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _statement_blocks(text: str) -> list[_Block]:
    """Statements start at `:20:`; the FIN envelope, if any, is blanked out around them
    (blanked, not removed, so that line numbers stay those of the file)."""
    text = "\n".join(
        "" if _ENVELOPE_OPEN.match(line) or _ENVELOPE_CLOSE.match(line) else line
        for line in text.split("\n")
    )
    starts = [m for m in _TAG.finditer(text) if m.group("tag") == "20"]
    blocks = []
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
        body = text[match.start():end]
        blocks.append(_Block(body, text.count("\n", 0, match.start()) + 1))
    return blocks


def _tag_lines(block: _Block) -> dict[str, list[tuple[int, str]]]:
    """tag -> [(line number, value)] for every tag in the block."""
    found: dict[str, list[tuple[int, str]]] = {}
    matches = list(_TAG.finditer(block.text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(block.text)
        line = block.first_line + block.text.count("\n", 0, match.start())
        found.setdefault(match.group("tag"), []).append((line, block.text[match.end():end]))
    return found


def _read_block(block: _Block, reader: Reader, data: bytes, source_name: str) -> Statement:
    tags = _tag_lines(block)
    last_line = block.first_line + block.text.rstrip("\n").count("\n")
    for required, what in (("25", "account identification"),
                           ("60", "opening balance"), ("62", "closing balance")):
        if not any(tag.startswith(required) for tag in tags):
            raise reader.unreadable(
                f"line {last_line}",
                f"statement starting on line {block.first_line} ends without its {what} "
                f"(:{required}F: or :{required}M:); the file may be truncated",
            )
    leniency = statement_line_leniency(tags.get("61", []))
    transactions = _library_parse(block, tags, reader, leniency)
    info: dict[str, Any] = transactions.data
    opening = _balance(info, _OPENING_TAGS, tags, "60", reader)
    closing = _balance(info, _CLOSING_TAGS, tags, "62", reader)
    currency = opening.amount.currency.code
    line_numbers = [number for number, _ in tags.get("61", [])]
    lines = [
        _read_line(t.data, currency, reader, f"line {line_numbers[i]} (:61:)")
        for i, t in enumerate(transactions)
    ]
    statement_id = str(info.get("transaction_reference") or "").strip()
    if info.get("statement_number"):
        statement_id += f"/{info['statement_number']}"
        if info.get("sequence_number"):
            statement_id += f"/{info['sequence_number']}"
    statement = new_statement(
        statement_id=statement_id,
        account=str(info.get("account_identification") or "").strip(),
        currency=currency,
        opening=opening,
        closing=closing,
        lines=lines,
        source_format=FORMAT,
        data=data,
        source_name=source_name,
        warnings=leniency.warnings,
    )
    _check_entry_totals(info, statement, tags, reader)
    return statement


def _library_parse(
    block: _Block, tags: dict[str, list[tuple[int, str]]], reader: Reader, leniency: Leniency
) -> mt940.models.Transactions:
    # the library logs a failing tag at ERROR before raising; we raise with the line
    logging.getLogger("mt940").setLevel(logging.CRITICAL)
    try:
        return mt940.parse(block.text, options=_OPTIONS, tags=dict(leniency.tags) or None)
    except RuntimeError as exc:
        tag = exc.args[1] if len(exc.args) > 2 else None
        value = str(exc.args[2]) if len(exc.args) > 2 else ""
        where, name = _locate(tags, tag, value)
        raise reader.unreadable(where, explain(name, value)) from None
    except (decimal.InvalidOperation, ValueError) as exc:
        # the library names the value (`month must be in 1..12`), not the tag: find it
        found = first_problem(tags)
        if found is not None:
            raise reader.unreadable(*found) from None
        raise reader.unreadable(f"statement starting on line {block.first_line}",
                                str(exc)) from None


def _locate(tags: dict[str, list[tuple[int, str]]], tag: object, value: str) -> tuple[str, str]:
    """Where the library's failing tag is in the file, and the tag's full name."""
    tag_id = str(getattr(tag, "id", ""))
    for name, occurrences in tags.items():
        if not name.startswith(tag_id):
            continue
        for line, raw in occurrences:
            if raw.strip().startswith(value.strip()):
                return f"line {line} (:{name}:)", name
    return f"tag :{tag_id}:", tag_id


def _balance(
    info: dict[str, Any], keys: tuple[str, ...], tags: dict[str, list[tuple[int, str]]],
    tag: str, reader: Reader,
) -> Balance:
    balance = next(info[key] for key in keys if key in info)
    line = next(n for name, occ in tags.items() if name.startswith(tag) for n, _ in occ)
    where = f"line {line} (:{tag}:)"
    currency = reader.currency(balance.amount.currency, where)
    return Balance(reader.exact(balance.amount.amount, currency, where), _plain(balance.date))


def _read_line(data: dict[str, Any], currency: str, reader: Reader, where: str) -> StatementLine:
    details = read_details(data.get("transaction_details"))
    amount = reader.exact(data["amount"].amount, currency, where)
    value_date = _plain(data["date"])
    customer_reference = (data.get("customer_reference") or "").strip()
    extra = (data.get("extra_details") or "").strip()
    # German banks' `?20`-style field 86 the library maps into fields of its own
    gvc = [_text(data, key) for key in ("posting_text", "purpose")]
    description = " ".join(part for part in (details.text, *gvc, extra) if part)
    return StatementLine(
        amount=amount,
        value_date=value_date,
        booking_date=_plain(data.get("entry_date") or value_date),
        bank_reference=(data.get("bank_reference") or "").strip() or None,
        end_to_end_id=details.end_to_end_id or _text(data, "end_to_end_reference"),
        customer_reference=None if customer_reference.upper() in ("", "NONREF")
        else customer_reference,
        counterparty_name=details.counterparty_name or _text(data, "applicant_name"),
        counterparty_account=details.counterparty_account or _text(data, "applicant_iban"),
        description=description,
        transaction_code=data.get("id"),
        reversal=str(data.get("status", "")).upper().startswith("R"),
        batch=_batch(details.remittance, details.charges, currency, reader, where),
    )


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return " ".join(str(value).split()) or None if value else None


#: a settlement batch as banks word it in field 86:
#: `BATCH STL20261121UNI 5 TXNS GROSS CNY1234,00 IDS T1 T2 T3 +2 MORE` and `/CHGS/CNY12,34`
_BATCH = re.compile(r"BATCH (?P<id>\S+) (?P<count>\d+) TXNS GROSS (?P<ccy>[A-Z]{3})"
                    r"(?P<gross>[\d.,]+)(?: IDS (?P<ids>.*))?")
_CHARGES = re.compile(r"(?P<ccy>[A-Z]{3})(?P<amount>[\d.,]+)")


def _batch(remittance: str | None, charges: str | None, currency: str, reader: Reader,
           where: str) -> BatchDetails | None:
    found = _BATCH.search(remittance or "")
    if found is None:
        return None
    gross = reader.money(found["gross"].replace(",", "."), currency, where)
    fees = None
    fee_text = _CHARGES.fullmatch((charges or "").strip())
    if fee_text:
        fees = reader.money(fee_text["amount"].replace(",", "."), currency, where)
    # `+2 MORE`: the 6x65 field ran out; the ids listed are only some of the batch
    ids = tuple(t for t in (found["ids"] or "").split() if not t.startswith("+") and t != "MORE")
    return BatchDetails(item_count=int(found["count"]), gross_amount=gross, fees=fees,
                        batch_id=found["id"], item_references=ids)


def _plain(day: dt.date) -> dt.date:
    # the library's Date subclass would leak its type into our immutable values
    return dt.date(day.year, day.month, day.day)


def _check_entry_totals(
    info: dict[str, Any], statement: Statement, tags: dict[str, list[tuple[int, str]]],
    reader: Reader,
) -> None:
    """`:90D:`/`:90C:` state how many debits and credits the bank sent; fewer lines
    than that means lines were lost in transit even if the balances happen to agree."""
    for key, tag, sign in (("sum_debit_entries", "90D", -1), ("sum_credit_entries", "90C", 1)):
        stated = info.get(key)
        if stated is None:
            continue
        lines = [line for line in statement.lines if (line.amount.amount > 0) == (sign > 0)]
        total = sum((abs(line.amount.amount) for line in lines), decimal.Decimal(0))
        if int(stated.number) != len(lines) or abs(stated.amount) != total:
            line = tags[tag][0][0]
            raise reader.unreadable(
                f"line {line} (:{tag}:)",
                f"the bank counts {stated.number} entries of {abs(stated.amount)} "
                f"{statement.currency}, the statement has {len(lines)} of {total}",
            )
