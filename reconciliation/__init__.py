"""Bank statement reconciliation: import camt.053/camt.054, MT940, BAI2, OFX and CSV into
one `Statement` type, store it idempotently, match its lines against the books, queue
what stays unmatched, and report the bank balance against the book balance.

    async with engine.begin() as conn:
        bank = await configure_bank_account(conn, BankAccountConfig.for_bank("icbc", "CNY"))
        await import_statement(conn, bank, data, source_name="icbc-2026-11-22.xml")
        result = await reconcile(conn, bank, dt.date(2026, 11, 22))
        report = await build_report(conn, bank, dt.date(2026, 11, 22))
"""

from __future__ import annotations

from reconciliation.config import (
    BankAccount,
    BankAccountConfig,
    MatchingRules,
    configure_bank_account,
    get_bank_account,
    list_bank_accounts,
)
from reconciliation.detect import detect_format
from reconciliation.engine import ReconcileResult, reconcile
from reconciliation.errors import (
    AmbiguousStatementFile,
    ExceptionNotOpen,
    InvalidCsvProfile,
    InvalidResolution,
    ReconciliationError,
    StatementCurrencyMismatch,
    StatementError,
    StatementForAnotherAccount,
    UnbalancedStatement,
    UnknownBankAccount,
    UnknownStatementFormat,
    UnreadableStatement,
)
from reconciliation.exceptions import ExceptionRecord, get_exception, list_exceptions
from reconciliation.items import sync_book_items
from reconciliation.parsers import FORMATS, CsvProfile, StatementParser, parser_for
from reconciliation.parsers.csv_profile import EXAMPLE as CSV_PROFILE_EXAMPLE
from reconciliation.reading import parse_statement
from reconciliation.report import ReconciliationReport, build_report, spreadsheet_text
from reconciliation.resolution import (
    audit_trail,
    match_manually,
    parse_item_key,
    post_adjustment,
    resolve_by_match,
    write_off,
)
from reconciliation.schema import metadata
from reconciliation.selection import Selection, SkippedStatement, select_for_account
from reconciliation.statement import (
    Balance,
    BatchDetails,
    Statement,
    StatementKind,
    StatementLine,
    file_hash,
)
from reconciliation.store import ImportResult, import_statement, read_for_account, store_statements
from reconciliation.validation import validate_statement

__all__ = [
    "CSV_PROFILE_EXAMPLE",
    "FORMATS",
    "AmbiguousStatementFile",
    "Balance",
    "BankAccount",
    "BankAccountConfig",
    "BatchDetails",
    "CsvProfile",
    "ExceptionNotOpen",
    "ExceptionRecord",
    "ImportResult",
    "InvalidCsvProfile",
    "InvalidResolution",
    "MatchingRules",
    "ReconcileResult",
    "ReconciliationError",
    "ReconciliationReport",
    "Selection",
    "SkippedStatement",
    "Statement",
    "StatementCurrencyMismatch",
    "StatementError",
    "StatementForAnotherAccount",
    "StatementKind",
    "StatementLine",
    "StatementParser",
    "UnbalancedStatement",
    "UnknownBankAccount",
    "UnknownStatementFormat",
    "UnreadableStatement",
    "audit_trail",
    "build_report",
    "configure_bank_account",
    "detect_format",
    "file_hash",
    "get_bank_account",
    "get_exception",
    "import_statement",
    "list_bank_accounts",
    "list_exceptions",
    "match_manually",
    "metadata",
    "parse_item_key",
    "parse_statement",
    "parser_for",
    "post_adjustment",
    "read_for_account",
    "reconcile",
    "resolve_by_match",
    "select_for_account",
    "spreadsheet_text",
    "store_statements",
    "sync_book_items",
    "validate_statement",
    "write_off",
]
