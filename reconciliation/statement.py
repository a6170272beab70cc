"""What a bank says happened on an account: small immutable values, no I/O.

Amounts are signed from the account holder's side: a credit to the account (money in)
is positive, a debit (money out) negative, whatever the file's own convention.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from moneyed import Money

from ledger import to_minor


class StatementKind(enum.StrEnum):
    #: a closed period with opening and closing balance (camt.053, MT940, BAI2, ...)
    STATEMENT = "statement"
    #: single movements without balances (camt.054 debit/credit notifications)
    NOTIFICATION = "notification"


@dataclass(frozen=True, slots=True)
class Balance:
    amount: Money
    date: dt.date
    #: computed by us rather than stated by the bank (OFX carries no opening balance),
    #: so it proves nothing about completeness; the importer checks it against the
    #: previous statement's closing balance instead
    derived: bool = False


@dataclass(frozen=True, slots=True)
class BatchDetails:
    """One statement line standing for many payments, e.g. a card acquirer's daily
    settlement: `amount` on the line is net, `gross_amount - fees` of `item_count` items."""

    item_count: int | None = None
    gross_amount: Money | None = None
    fees: Money | None = None
    batch_id: str | None = None
    #: every reference the bank prints for the batch's items (its transaction ids,
    #: end-to-end ids), when it lists them; what matches the batch to booked captures
    item_references: tuple[str, ...] = ()
    #: where the batch's details contradict the entry they explain (item count, total,
    #: currency): a person must look before any rule books the batch's fee
    contradictions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StatementLine:
    amount: Money
    value_date: dt.date
    booking_date: dt.date
    bank_reference: str | None = None
    end_to_end_id: str | None = None
    customer_reference: str | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    description: str = ""
    #: the bank's transaction code (camt BkTxCd, MT940 `NTRF`, BAI2 type code)
    transaction_code: str | None = None
    #: the bank reverses an earlier line (camt RvslInd, MT940 RC/RD)
    reversal: bool = False
    batch: BatchDetails | None = None
    #: assigned by `new_statement`; stable across re-imports of the same line
    line_identity: str = ""

    @property
    def is_credit(self) -> bool:
        return bool(self.amount.amount > 0)


@dataclass(frozen=True, slots=True)
class Statement:
    statement_id: str
    #: the account as the bank names it: IBAN or account number, exactly as given
    account: str
    currency: str
    opening: Balance | None
    closing: Balance | None
    lines: tuple[StatementLine, ...]
    #: `camt.053`, `camt.054`, `mt940`, `bai2`, `ofx` or `csv`
    source_format: str
    #: SHA-256 of the whole file, so re-importing the same file is recognised at once
    file_hash: str
    source_name: str = ""
    #: e.g. `001.08` for camt; None where the format has no versions we distinguish
    format_version: str | None = None
    kind: StatementKind = StatementKind.STATEMENT
    created_at: dt.datetime | None = None
    #: where the file departs from its standard in ways that touch no amount, date or
    #: balance and was read anyway, each naming the line and what was accepted; stored
    #: with the statement so the leniency stays visible
    warnings: tuple[str, ...] = ()

    @property
    def lines_total(self) -> Money:
        total = Money(0, self.currency)
        for line in self.lines:
            total = total + line.amount
        return total


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_statement(
    *,
    statement_id: str,
    account: str,
    currency: str,
    opening: Balance | None,
    closing: Balance | None,
    lines: Iterable[StatementLine],
    source_format: str,
    data: bytes,
    source_name: str = "",
    format_version: str | None = None,
    kind: StatementKind = StatementKind.STATEMENT,
    created_at: dt.datetime | None = None,
    warnings: Iterable[str] = (),
) -> Statement:
    """The one way parsers build a `Statement`: it gives every line its identity."""
    return Statement(
        statement_id=statement_id,
        account=account,
        currency=currency,
        opening=opening,
        closing=closing,
        lines=identify_lines(account, currency, lines),
        source_format=source_format,
        file_hash=file_hash(data),
        source_name=source_name,
        format_version=format_version,
        kind=kind,
        created_at=created_at,
        warnings=tuple(warnings),
    )


def identify_lines(
    account: str, currency: str, lines: Iterable[StatementLine]
) -> tuple[StatementLine, ...]:
    """Give each line a hash of what identifies it, so that re-importing the same file
    or an overlapping statement recognises lines already known.

    Where the bank gives its own reference, that reference (with amount and booking
    date) identifies the line: banks keep it unique per account, and it survives a
    bank re-wording the description. Without one, every field counts. Identical lines
    (two 5.00 fees on one day, no reference) are told apart by their occurrence number
    among equals, which is the same in any statement that covers that whole day.
    """
    seen: Counter[tuple[str, ...]] = Counter()
    identified = []
    for line in lines:
        key = _identity_key(account, currency, line)
        seen[key] += 1
        digest = hashlib.sha256("\x1f".join((*key, str(seen[key]))).encode()).hexdigest()
        identified.append(dataclasses.replace(line, line_identity=digest))
    return tuple(identified)


def _identity_key(account: str, currency: str, line: StatementLine) -> tuple[str, ...]:
    common = (
        account.replace(" ", "").upper(),
        currency,
        str(to_minor(line.amount)) if line.amount.currency.code == currency
        else f"{line.amount.amount} {line.amount.currency.code}",
        line.booking_date.isoformat(),
    )
    if line.bank_reference:
        return (*common, "ref", line.bank_reference)
    return (
        *common,
        "fields",
        line.value_date.isoformat(),
        line.end_to_end_id or "",
        line.customer_reference or "",
        line.counterparty_account or "",
        " ".join(line.description.split()),
    )
