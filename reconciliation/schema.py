"""reconciliation's tables (SQLAlchemy Core), in a `MetaData` of its own; migrations in
`paycore/migrations/versions` build them.

| table | holds |
| --- | --- |
| `recon_bank_accounts` | a bank account and the ledger accounts it reconciles against |
| `recon_statements` | each imported statement: period, balances, file hash, format |
| `recon_statement_lines` | each bank movement once (unique line identity per account) |
| `recon_book_items` | the postings on the reconciled ledger accounts, copied in sequence |
| `recon_sync_cursors` | how far each lane of a ledger account's postings has been copied |
| `recon_matches` | a match of lines with book items, and the entry it posted |
| `recon_match_lines` / `recon_match_items` | the two sides of a match (each at most once) |
| `recon_exceptions` | what is left unmatched, with suggested candidates, until resolved |
| `recon_audit` | who did what, when and why |
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ledger import IdColumn as Id
from ledger import JSONDoc, UTCDateTime

metadata = sa.MetaData()

#: absent is SQL NULL, not a JSON `null`, so `IS NULL` finds it
OptionalJSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True),
                                                       "postgresql")



bank_accounts = sa.Table(
    "recon_bank_accounts",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    #: short name, e.g. `icbc`: the `<bank>` in `1001.bank.<bank>`
    sa.Column("code", sa.String(60), nullable=False, unique=True),
    #: the account as the bank names it on its statements (IBAN, number); None = any
    sa.Column("bank_account_number", sa.String(60)),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("bank_ledger_account", sa.String(120), nullable=False),
    sa.Column("clearing_account", sa.String(120), nullable=False),
    sa.Column("payout_clearing_account", sa.String(120), nullable=False),
    sa.Column("fee_account", sa.String(120), nullable=False),
    sa.Column("differences_account", sa.String(120), nullable=False),
    sa.Column("tolerance_minor", sa.BigInteger, nullable=False),
    #: which rules run, and their parameters (see `reconciliation.config.MatchingRules`)
    sa.Column("rules", JSONDoc, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("tolerance_minor >= 0", name="ck_recon_bank_accounts_tolerance"),
)

statements = sa.Table(
    "recon_statements",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("bank_account_id", Id, sa.ForeignKey("recon_bank_accounts.id"), nullable=False),
    #: the bank's statement id
    sa.Column("statement_ref", sa.String(200), nullable=False),
    sa.Column("file_hash", sa.String(64), nullable=False),
    sa.Column("source_name", sa.String(300), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("format_version", sa.String(16)),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("period_start", sa.Date),
    sa.Column("period_end", sa.Date),
    sa.Column("opening_minor", sa.BigInteger),
    sa.Column("opening_date", sa.Date),
    sa.Column("opening_derived", sa.Boolean, nullable=False),
    sa.Column("closing_minor", sa.BigInteger),
    sa.Column("closing_date", sa.Date),
    sa.Column("line_count", sa.Integer, nullable=False),
    sa.Column("new_line_count", sa.Integer, nullable=False),
    sa.Column("imported_at", UTCDateTime(), nullable=False),
    sa.Column("imported_by", sa.String(120), nullable=False),
    #: what was read leniently (a reference longer than the standard allows, ...): a list
    #: of messages naming line and deviation; NULL when the file kept to its standard
    sa.Column("warnings", OptionalJSON),
    sa.UniqueConstraint("bank_account_id", "file_hash", "statement_ref",
                        name="uq_recon_statements_file"),
    sa.Index("ix_recon_statements_account_closing", "bank_account_id", "closing_date"),
)

statement_lines = sa.Table(
    "recon_statement_lines",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("bank_account_id", Id, sa.ForeignKey("recon_bank_accounts.id"), nullable=False),
    #: the statement that first brought the line
    sa.Column("statement_id", Id, sa.ForeignKey("recon_statements.id"), nullable=False),
    sa.Column("line_identity", sa.String(64), nullable=False),
    #: signed from our side: money in > 0
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("value_date", sa.Date, nullable=False),
    sa.Column("booking_date", sa.Date, nullable=False),
    sa.Column("bank_reference", sa.String(200)),
    sa.Column("end_to_end_id", sa.String(200)),
    sa.Column("customer_reference", sa.String(200)),
    sa.Column("counterparty_name", sa.String(300)),
    sa.Column("counterparty_account", sa.String(100)),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("transaction_code", sa.String(60)),
    sa.Column("reversal", sa.Boolean, nullable=False),
    sa.Column("batch", OptionalJSON),
    #: open, matched (by a rule or a person), resolved (adjustment or write-off)
    sa.Column("status", sa.String(16), nullable=False),
    #: why no rule may book this line's batch until a person looked (its details
    #: contradict the entry); NULL for an ordinary line
    sa.Column("review_flag", sa.Text),
    sa.UniqueConstraint("bank_account_id", "line_identity", name="uq_recon_lines_identity"),
    sa.CheckConstraint("status IN ('open', 'matched', 'resolved')", name="ck_recon_lines_status"),
    sa.Index("ix_recon_lines_open", "bank_account_id", "status", "booking_date"),
    sa.Index("ix_recon_lines_e2e", "bank_account_id", "end_to_end_id"),
    # a statement's unmatched lines, counted on the console's statements page (0031)
    sa.Index("ix_recon_lines_statement_status", "statement_id", "status"),
    # the console's daily match rate of the last days, every bank account (0033)
    sa.Index("ix_recon_lines_booking", "booking_date", "bank_account_id", "status"),
)

book_items = sa.Table(
    "recon_book_items",
    metadata,
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), primary_key=True,
              autoincrement=False),
    sa.Column("account_seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.Uuid, sa.ForeignKey("journal_entries.id"), nullable=False),
    #: signed minor units as posted: debit > 0
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("kind", sa.String(80), nullable=False),
    sa.Column("external_ref", sa.String(200)),
    sa.Column("description", sa.Text, nullable=False),
    #: open, matched, resolved, void (reversed in the books)
    sa.Column("status", sa.String(16), nullable=False),
    sa.CheckConstraint("status IN ('open', 'matched', 'resolved', 'void')",
                       name="ck_recon_items_status"),
    sa.Index("ix_recon_items_open_date", "account_id", "status", "effective_date"),
    sa.Index("ix_recon_items_open_amount", "account_id", "status", "amount_minor"),
    sa.Index("ix_recon_items_ref", "external_ref"),
    sa.Index("ix_recon_items_entry", "entry_id"),
)

# one row per (account, lane): an account split into lanes commits each lane's postings
# independently, so one position per account would skip a lower lane's (migration 0028)
sync_cursors = sa.Table(
    "recon_sync_cursors",
    metadata,
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), primary_key=True,
              autoincrement=False),
    sa.Column("lane", sa.Integer, primary_key=True, autoincrement=False, server_default="0"),
    #: the lane's last posting copied (`ledger.lane_start(lane)` before its first)
    sa.Column("last_seq", sa.BigInteger, nullable=False),
)

matches = sa.Table(
    "recon_matches",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("bank_account_id", Id, sa.ForeignKey("recon_bank_accounts.id"), nullable=False),
    #: the rule that made it, or `manual`, `adjustment`, `write_off`
    sa.Column("rule", sa.String(32), nullable=False),
    #: what the bank kept (gross - net) on a batch settlement, minor units
    sa.Column("fee_minor", sa.BigInteger, nullable=False),
    #: written off to the differences account, minor units
    sa.Column("difference_minor", sa.BigInteger, nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("entry_id", sa.Uuid, sa.ForeignKey("journal_entries.id")),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(120), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Index("ix_recon_matches_account", "bank_account_id", "created_at"),
)

match_lines = sa.Table(
    "recon_match_lines",
    metadata,
    sa.Column("match_id", sa.Uuid, sa.ForeignKey("recon_matches.id"), nullable=False,
              index=True),
    # a statement line is explained once
    sa.Column("line_id", Id, sa.ForeignKey("recon_statement_lines.id"), primary_key=True,
              autoincrement=False),
)

match_items = sa.Table(
    "recon_match_items",
    metadata,
    sa.Column("match_id", sa.Uuid, sa.ForeignKey("recon_matches.id"), nullable=False,
              index=True),
    # a posting is reconciled at most once: its identity is the primary key
    sa.Column("account_id", Id, primary_key=True, autoincrement=False),
    sa.Column("account_seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.ForeignKeyConstraint(["account_id", "account_seq"],
                            ["recon_book_items.account_id", "recon_book_items.account_seq"]),
)

exceptions = sa.Table(
    "recon_exceptions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    #: None for an item on an account several bank accounts share (the payout clearing
    #: account): until a statement shows it, no one knows which bank it belongs to
    sa.Column("bank_account_id", Id, sa.ForeignKey("recon_bank_accounts.id")),
    #: `statement_line` (the bank says, the books do not) or `book_item` (the reverse)
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("line_id", Id, sa.ForeignKey("recon_statement_lines.id"), unique=True),
    sa.Column("item_account_id", Id),
    sa.Column("item_account_seq", sa.BigInteger),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("reference", sa.String(200)),
    sa.Column("description", sa.Text, nullable=False),
    #: suggested counterparts, best first: [{"kind", "id", "amount_minor", "date", "score"}]
    sa.Column("candidates", JSONDoc, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("opened_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime()),
    sa.Column("resolved_by", sa.String(120)),
    #: auto_match, manual_match, adjustment, write_off
    sa.Column("resolution", sa.String(16)),
    sa.Column("reason", sa.Text),
    sa.Column("match_id", sa.Uuid, sa.ForeignKey("recon_matches.id")),
    sa.UniqueConstraint("item_account_id", "item_account_seq", name="uq_recon_exceptions_item"),
    sa.CheckConstraint("kind IN ('statement_line', 'book_item')", name="ck_recon_exceptions_kind"),
    sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_recon_exceptions_status"),
    sa.Index("ix_recon_exceptions_open", "bank_account_id", "status", "date"),
    sa.Index("ix_recon_exceptions_status_date", "status", "date", "id"),  # 0031
)

audit = sa.Table(
    "recon_audit",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("bank_account_id", Id, sa.ForeignKey("recon_bank_accounts.id")),
    sa.Column("exception_id", Id, sa.ForeignKey("recon_exceptions.id")),
    sa.Column("match_id", sa.Uuid, sa.ForeignKey("recon_matches.id")),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("details", JSONDoc, nullable=False),
    sa.Index("ix_recon_audit_account", "bank_account_id", "at"),
)
