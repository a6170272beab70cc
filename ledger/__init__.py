"""paycore's append-only double-entry ledger.

Every function that writes takes the caller's `AsyncConnection`, so a domain's own state
change and its journal entry commit together or not at all. Entries that need no other
state in the caller's transaction can instead be submitted to a `Coalescer`, which commits
many callers' entries in one transaction and answers each with its own outcome.
"""

import importlib
from typing import TYPE_CHECKING, Any

# light: plain Python, py-moneyed and the ledger's own value types (no SQLAlchemy), so
# `ledger.AccountType` in a CLI option or `except ledger.LedgerError` costs nothing
from ledger.errors import (
    AccountClosed,
    AccountError,
    AccountExists,
    AccountNotEmpty,
    AlreadyReversed,
    BalanceLimitExceeded,
    BalanceOutOfRange,
    CheckpointError,
    CoalescerClosed,
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
    SubmitError,
    SubmitOutcomeUnknown,
    SubmitQueueFull,
    UnbalancedEntry,
    UnknownAccount,
)
from ledger.money import from_minor, minor_exponent, to_minor
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

if TYPE_CHECKING:
    from ledger.accounts import (
        add_lanes,
        close_account,
        ensure_account,
        find_account,
        get_account,
        list_accounts,
        open_account,
    )
    from ledger.checkpoints import (
        AccountLeaf,
        AccountProof,
        Checkpoint,
        CheckpointHead,
        load_checkpoint,
        load_proof,
        prove,
        take_checkpoint,
    )
    from ledger.coalescer import Coalescer
    from ledger.engine import create_engine, is_retryable, transact
    from ledger.entries import (
        find_entry,
        get_entry,
        load_entries,
        post,
        post_each,
        post_many,
        reverse,
    )
    from ledger.financial_statements import (
        BalanceSheet,
        IncomeStatement,
        StatementSection,
        balance_sheet,
        income_statement,
        trial_balance_as_of,
    )
    from ledger.holds import expire_holds, hold, load_holds, post_hold, void_hold
    from ledger.lookups import (
        BookedPosting,
        lane_heads,
        lane_postings_query,
        lane_start,
        last_sequence,
        net_by_value_date,
        postings_after,
        postings_after_query,
    )
    from ledger.outbox import (
        INTERNAL,
        INTERNAL_AUDIENCES,
        OutboxEvent,
        outbox_events,
        record_event,
        sequence_events,
    )
    from ledger.proof import trial_balance, verify
    from ledger.queries import balance, statement

    # column types every package's tables share (ids, JSON documents, aware UTC timestamps)
    from ledger.schema import Id as IdColumn
    from ledger.schema import JSONDoc, UTCDateTime, metadata
    from ledger.signing import SigningKey, public_key_from_pem, trusted_keys

#: names whose modules load when first read (PEP 562 `__getattr__` below): everything that
#: needs SQLAlchemy (the schema, accounts, entries, queries, the engine), checkpoints and
#: their signing crypto, proofs, financial statements, holds, lookups, the outbox and the
#: coalescer. Every `paycore` command imports the ledger, and `paycore --help` needs none of
#: them (#18 §5: SQLAlchemy alone was ~0.4 s of a 0.8 s `--help`); a balance loads the
#: schema, engine and queries, and nothing else here.
_LAZY = {
    "ledger.accounts": ("add_lanes", "close_account", "ensure_account", "find_account",
        "get_account", "list_accounts", "open_account"),
    "ledger.checkpoints": ("AccountLeaf", "AccountProof", "Checkpoint", "CheckpointHead",
        "load_checkpoint", "load_proof", "prove", "take_checkpoint"),
    "ledger.coalescer": ("Coalescer",),
    "ledger.engine": ("create_engine", "is_retryable", "transact"),
    "ledger.entries": ("find_entry", "get_entry", "load_entries", "post", "post_each",
        "post_many", "reverse"),
    "ledger.financial_statements": ("BalanceSheet", "IncomeStatement", "StatementSection",
        "balance_sheet", "income_statement", "trial_balance_as_of"),
    "ledger.holds": ("expire_holds", "hold", "load_holds", "post_hold", "void_hold"),
    "ledger.lookups": ("BookedPosting", "lane_heads", "lane_postings_query", "lane_start",
        "last_sequence", "net_by_value_date", "postings_after", "postings_after_query"),
    "ledger.outbox": ("INTERNAL", "INTERNAL_AUDIENCES", "OutboxEvent", "outbox_events",
        "record_event", "sequence_events"),
    "ledger.proof": ("trial_balance", "verify"),
    "ledger.queries": ("balance", "statement"),
    "ledger.schema": ("IdColumn", "JSONDoc", "UTCDateTime", "metadata"),
    "ledger.signing": ("SigningKey", "public_key_from_pem", "trusted_keys"),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}
#: a name the package gives differently from its module
_RENAMED = {"IdColumn": "Id"}


def __getattr__(name: str) -> Any:
    module = _LAZY_NAMES.get(name)
    if module is None:
        # `ledger.fastpath` after a plain `import ledger`: a submodule, loaded when read
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as missing:
            if missing.name != f"{__name__}.{name}":
                raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value
    return value


__all__ = [
    "INTERNAL",
    "INTERNAL_AUDIENCES",
    "Account",
    "AccountClosed",
    "AccountError",
    "AccountExists",
    "AccountLeaf",
    "AccountNotEmpty",
    "AccountProof",
    "AccountRef",
    "AccountSpec",
    "AccountStatement",
    "AccountStatus",
    "AccountType",
    "AlreadyReversed",
    "Balance",
    "BalanceLimit",
    "BalanceLimitExceeded",
    "BalanceOutOfRange",
    "BalanceSheet",
    "BookedPosting",
    "Checkpoint",
    "CheckpointError",
    "CheckpointHead",
    "Coalescer",
    "CoalescerClosed",
    "CurrencyMismatch",
    "EntryNotFound",
    "EntryRequest",
    "Hold",
    "HoldAlreadyResolved",
    "HoldAmountExceeded",
    "HoldError",
    "HoldExpired",
    "HoldLeg",
    "HoldNotFound",
    "HoldRequest",
    "HoldStatus",
    "IdColumn",
    "IdempotencyConflict",
    "IncomeStatement",
    "InvalidAmount",
    "InvalidRequest",
    "JSONDoc",
    "JournalEntry",
    "LedgerError",
    "OutboxEvent",
    "PostedPosting",
    "Posting",
    "SigningKey",
    "StatementLine",
    "StatementSection",
    "SubmitError",
    "SubmitOutcomeUnknown",
    "SubmitQueueFull",
    "TrialBalance",
    "TrialBalanceRow",
    "UTCDateTime",
    "UnbalancedEntry",
    "UnknownAccount",
    "VerifyReport",
    "add_lanes",
    "balance",
    "balance_sheet",
    "close_account",
    "create_engine",
    "ensure_account",
    "expire_holds",
    "find_account",
    "find_entry",
    "from_minor",
    "get_account",
    "get_entry",
    "hold",
    "income_statement",
    "is_retryable",
    "lane_heads",
    "lane_postings_query",
    "lane_start",
    "last_sequence",
    "list_accounts",
    "load_checkpoint",
    "load_entries",
    "load_holds",
    "load_proof",
    "metadata",
    "minor_exponent",
    "net_by_value_date",
    "open_account",
    "outbox_events",
    "post",
    "post_each",
    "post_hold",
    "post_many",
    "postings_after",
    "postings_after_query",
    "prove",
    "public_key_from_pem",
    "record_event",
    "reverse",
    "sequence_events",
    "statement",
    "take_checkpoint",
    "to_minor",
    "transact",
    "trial_balance",
    "trial_balance_as_of",
    "trusted_keys",
    "verify",
    "void_hold",
]
