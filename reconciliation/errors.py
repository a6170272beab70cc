"""Why a statement file was refused: a small hierarchy a caller can catch precisely.

Every error is raised before anything is stored, so a refused file leaves no trace.
"""

from __future__ import annotations

from decimal import Decimal

from moneyed import Money

from ledger import minor_exponent


def format_money(money: Money) -> str:
    """`1,000.00 CNY`: how finance reads an amount, at the currency's own precision."""
    places = minor_exponent(money.currency.code)
    amount: Decimal = money.amount
    if amount == amount.quantize(Decimal(1).scaleb(-places)):
        text = f"{amount:,.{places}f}"
    else:  # never round in a message about money that does not add up
        text = f"{amount:,f}"
    return f"{text} {money.currency.code}"


class ReconciliationError(Exception):
    """Base of every error this package raises on purpose: reading a statement, matching,
    resolving, reporting."""

    code = "reconciliation-error"


class StatementError(ReconciliationError):
    """Base of every error raised on purpose while reading a statement."""

    #: a short machine-readable name, used as the problem type by the HTTP API
    code = "statement-error"


class UnreadableStatement(StatementError):
    """The file is not a well-formed statement of its format: truncated, garbled, or
    carrying a value that cannot be read exactly (e.g. 1.001 CNY)."""

    code = "unreadable-statement"

    def __init__(self, format: str, where: str, reason: str, *, source_name: str = "") -> None:
        self.format = format
        #: the line number or XML element at which reading failed
        self.where = where
        self.reason = reason
        self.source_name = source_name
        name = f" {source_name!r}" if source_name else ""
        super().__init__(f"cannot read {format} file{name} at {where}: {reason}")


class UnknownStatementFormat(StatementError):
    """The bytes are none of the formats we can detect; name one (or give a CSV profile)."""

    code = "unknown-statement-format"


class UnbalancedStatement(StatementError):
    """Opening balance plus the statement's lines is not its closing balance: the bank
    file is incomplete or wrong, and nothing from it may be booked."""

    code = "unbalanced-statement"

    def __init__(
        self, statement_id: str, format: str, opening: Money, lines_total: Money, closing: Money
    ) -> None:
        self.statement_id = statement_id
        self.format = format
        self.opening = opening
        self.lines_total = lines_total
        self.computed_closing: Money = opening + lines_total
        self.closing = closing
        #: what the lines say minus what the bank says
        self.difference: Money = self.computed_closing - closing
        super().__init__(
            f"statement {statement_id} ({format}) does not add up: "
            f"opening {format_money(opening)} + lines {format_money(lines_total)} = "
            f"{format_money(self.computed_closing)}, but closing balance is "
            f"{format_money(closing)} (difference {format_money(self.difference)})"
        )


class StatementCurrencyMismatch(StatementError):
    """A balance or line is in another currency than the statement's account."""

    code = "statement-currency-mismatch"

    def __init__(self, statement_id: str, expected: str, found: str, where: str) -> None:
        self.statement_id = statement_id
        self.expected = expected
        self.found = found
        self.where = where
        super().__init__(
            f"statement {statement_id}: {where} is in {found}, but the account is kept in "
            f"{expected}"
        )


class UnknownBankAccount(ReconciliationError):
    code = "unknown-bank-account"


class ExceptionNotOpen(ReconciliationError):
    """The exception does not exist, or someone resolved it already."""

    code = "exception-not-open"


class InvalidResolution(ReconciliationError):
    """A resolution that would not explain the exception: amounts that do not agree, a
    write-off above the tolerance, items already matched, a missing reason."""

    code = "invalid-resolution"


class StatementForAnotherAccount(StatementError):
    """The file is a statement of another bank account than the one named."""

    code = "statement-for-another-account"


class AmbiguousStatementFile(StatementError):
    """The file holds statements of several accounts and the bank account names none of
    them: which statement is this account's cannot be guessed."""

    code = "ambiguous-statement-file"


class InvalidCsvProfile(StatementError):
    """A CSV profile with an unknown, missing or mistyped field, or fields that cannot go
    together; the message names each and suggests the field meant."""

    code = "invalid-csv-profile"
