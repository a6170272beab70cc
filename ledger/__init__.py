"""paycore's append-only double-entry ledger.

Every function that writes takes the caller's `AsyncConnection`, so a domain's own state
change and its journal entry commit together or not at all.
"""

from ledger.accounts import (
    close_account,
    ensure_account,
    find_account,
    get_account,
    list_accounts,
    open_account,
)
from ledger.engine import create_engine, is_retryable, transact
from ledger.entries import find_entry, get_entry, load_entries, post, post_many, reverse
from ledger.errors import (
    AccountClosed,
    AccountError,
    AccountExists,
    AccountNotEmpty,
    AlreadyReversed,
    BalanceLimitExceeded,
    CurrencyMismatch,
    EntryNotFound,
    HoldAlreadyResolved,
    HoldAmountExceeded,
    HoldError,
    HoldExpired,
    HoldNotFound,
    IdempotencyConflict,
    InvalidAmount,
    InvalidRequest,
    LedgerError,
    UnbalancedEntry,
    UnknownAccount,
)
from ledger.holds import expire_holds, hold, load_holds, post_hold, void_hold
from ledger.lookups import (
    BookedPosting,
    last_sequence,
    net_by_value_date,
    postings_after,
    postings_after_query,
)
from ledger.money import from_minor, minor_exponent, to_minor
from ledger.proof import trial_balance, verify
from ledger.queries import balance, statement
from ledger.schema import metadata
from ledger.types import (
    Account,
    AccountRef,
    AccountSpec,
    AccountStatement,
    AccountStatus,
    AccountType,
    Balance,
    BalanceLimit,
    EntryRequest,
    Hold,
    HoldLeg,
    HoldRequest,
    HoldStatus,
    JournalEntry,
    PostedPosting,
    Posting,
    StatementLine,
    TrialBalance,
    TrialBalanceRow,
    VerifyReport,
)

__all__ = [
    "Account", "AccountClosed", "AccountError", "AccountExists", "AccountNotEmpty",
    "AccountRef", "AccountSpec", "AccountStatement", "AccountStatus", "AccountType",
    "AlreadyReversed", "Balance", "BalanceLimit", "BalanceLimitExceeded", "BookedPosting",
    "CurrencyMismatch",
    "EntryNotFound", "EntryRequest", "Hold", "HoldAlreadyResolved", "HoldAmountExceeded",
    "HoldError", "HoldExpired", "HoldLeg", "HoldNotFound", "HoldRequest", "HoldStatus",
    "IdempotencyConflict", "InvalidAmount", "InvalidRequest", "JournalEntry", "LedgerError",
    "PostedPosting", "Posting", "StatementLine", "TrialBalance", "TrialBalanceRow",
    "UnbalancedEntry", "UnknownAccount", "VerifyReport", "balance", "close_account",
    "create_engine", "ensure_account", "expire_holds", "find_account", "find_entry",
    "from_minor", "get_account", "get_entry", "hold", "is_retryable", "last_sequence",
    "list_accounts",
    "load_entries", "load_holds", "metadata", "minor_exponent", "net_by_value_date",
    "open_account", "post",
    "post_hold", "post_many", "postings_after", "postings_after_query", "reverse", "statement",
    "to_minor", "transact",
    "trial_balance", "verify", "void_hold",
]
