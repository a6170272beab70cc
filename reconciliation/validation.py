"""The statement invariants, checked in one place after any parser.

1. Every balance and line is in the statement's currency (and in the account's, when
   the caller knows it).
2. Opening balance plus the sum of the lines is the closing balance, whenever the bank
   stated both. A derived balance proves nothing and is not checked here.
"""

from __future__ import annotations

from reconciliation.errors import StatementCurrencyMismatch, UnbalancedStatement
from reconciliation.statement import Statement


def validate_statement(statement: Statement, *, account_currency: str | None = None) -> None:
    _check_currencies(statement, account_currency)
    _check_balances_add_up(statement)


def _check_currencies(statement: Statement, account_currency: str | None) -> None:
    expected = statement.currency
    if account_currency is not None and account_currency.upper() != expected:
        raise StatementCurrencyMismatch(
            statement.statement_id, account_currency.upper(), expected, "the statement"
        )
    for label, balance in (("opening balance", statement.opening),
                           ("closing balance", statement.closing)):
        if balance is not None and balance.amount.currency.code != expected:
            raise StatementCurrencyMismatch(
                statement.statement_id, expected, balance.amount.currency.code, f"the {label}"
            )
    for number, line in enumerate(statement.lines, start=1):
        if line.amount.currency.code != expected:
            ref = f" ({line.bank_reference})" if line.bank_reference else ""
            raise StatementCurrencyMismatch(
                statement.statement_id, expected, line.amount.currency.code,
                f"line {number}{ref}",
            )


def _check_balances_add_up(statement: Statement) -> None:
    opening, closing = statement.opening, statement.closing
    if opening is None or closing is None or opening.derived or closing.derived:
        return
    lines_total = statement.lines_total
    if opening.amount + lines_total != closing.amount:
        raise UnbalancedStatement(
            statement.statement_id, statement.source_format, opening.amount, lines_total,
            closing.amount,
        )
