"""The ledger's tables (SQLAlchemy Core). Triggers live in `ledger.ddl`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

#: BIGINT ids everywhere except SQLite, whose rowid alias must be INTEGER
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in and out, on PostgreSQL and on SQLite (which stores text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(120), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("balance_limit", sa.String(40)),
    sa.Column("owner_ref", sa.String(120), index=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("metadata", JSONDoc, nullable=False),
    sa.Column("opened_at", UTCDateTime(), nullable=False),
    #: how many balance rows (lanes) the account's postings spread over (migration 0022):
    #: more than one lets that many writers post to it at once; a limit needs one
    sa.Column("lanes", sa.Integer, nullable=False, server_default="1"),
    sa.CheckConstraint(
        "type IN ('asset', 'liability', 'equity', 'income', 'expense')", name="ck_accounts_type"
    ),
    sa.CheckConstraint("status IN ('open', 'closed')", name="ck_accounts_status"),
    sa.CheckConstraint(
        "balance_limit IS NULL OR balance_limit IN "
        "('debits_must_not_exceed_credits', 'credits_must_not_exceed_debits')",
        name="ck_accounts_balance_limit",
    ),
    # a balance limit is checked against one running balance: one lane
    sa.CheckConstraint("lanes >= 1 AND (balance_limit IS NULL OR lanes = 1)",
                       name="ck_accounts_lanes"),
)

#: lane L of an account numbers its postings from L * LANE_STRIDE + 1 (ledger.ddl_lanes)
LANE_STRIDE = 1 << 40

# One row per lane of an account (most accounts: one, lane 0), locked by every writer
# that posts to that lane. The limit is copied here so the database can enforce it in a
# CHECK without a join. An account's balance is the sum of its lanes' rows.
account_balances = sa.Table(
    "account_balances",
    metadata,
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), primary_key=True, autoincrement=False),
    sa.Column("lane", sa.Integer, primary_key=True, autoincrement=False, server_default="0"),
    sa.Column("balance_limit", sa.String(40)),
    sa.Column("posted_debits", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("posted_credits", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("pending_debits", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("pending_credits", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"),
    #: hash of the lane's last posting: the head of its tamper-evidence chain
    sa.Column("head_hash", sa.String(64), nullable=False),
    #: booking time of the lane's last posting: a writer books no earlier (migration
    #: 0012), so a lane's postings are booked in the order of their sequence numbers
    sa.Column("last_booked_at", UTCDateTime()),
    sa.CheckConstraint(
        "posted_debits >= 0 AND posted_credits >= 0 AND pending_debits >= 0 "
        "AND pending_credits >= 0 AND seq >= 0",
        name="ck_account_balances_non_negative",
    ),
    sa.CheckConstraint(
        "balance_limit IS NULL"
        " OR (balance_limit = 'debits_must_not_exceed_credits'"
        "     AND posted_debits + pending_debits <= posted_credits)"
        " OR (balance_limit = 'credits_must_not_exceed_debits'"
        "     AND posted_credits + pending_credits <= posted_debits)",
        name="ck_account_balances_limit",
    ),
    # each lane's sequence numbers stay in its own range of the account's
    sa.CheckConstraint(
        f"lane >= 0 AND seq >= lane * {LANE_STRIDE} AND seq < (lane + 1) * {LANE_STRIDE}",
        name="ck_account_balances_lane_seq",
    ),
)

journal_entries = sa.Table(
    "journal_entries",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(80), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("booked_at", UTCDateTime(), nullable=False),
    sa.Column(
        "reverses_entry_id",
        sa.Uuid,
        sa.ForeignKey("journal_entries.id"),
        unique=True,  # an entry can be reversed once, enforced by the database
    ),
    sa.Column("external_ref", sa.String(200)),
    sa.Column("metadata", JSONDoc, nullable=False),
    #: hash over the entry's own fields; each posting's chain link covers it
    sa.Column("hash", sa.String(64), nullable=False),
    # most entries have no external reference (PostgreSQL leaves their NULLs out: 0008)
    sa.Index("ix_journal_entries_external_ref", "external_ref",
             postgresql_where=sa.text("external_ref IS NOT NULL")),
)

# A posting is keyed by its entry and its leg number (migration 0013: no surrogate id,
# whose sequence and index cost every posting a nextval and an index insert of their own).
postings = sa.Table(
    "postings",
    metadata,
    # SQLite writes the postings before their entry, so the entry's insert trigger can prove
    # the entry balances; the foreign key is checked at commit. PostgreSQL writes both in
    # one statement and proves this link and the account's with the postings' statement
    # trigger instead of these two keys (migration 0008, ledger.ddl).
    sa.Column(
        "entry_id",
        sa.Uuid,
        sa.ForeignKey("journal_entries.id", deferrable=True, initially="DEFERRED"),
        primary_key=True,
    ),
    #: the leg's place in its entry, from 1, as the request gave the legs
    sa.Column("leg_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("account_seq", sa.BigInteger, nullable=False),
    sa.Column("balance_after", sa.BigInteger, nullable=False),
    sa.Column("booked_at", UTCDateTime(), nullable=False),
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.CheckConstraint("amount <> 0", name="ck_postings_amount_nonzero"),
    # an account's postings in sequence order, which is also booking order (migration
    # 0012): balances as of a time and statements search it (ledger.queries)
    sa.UniqueConstraint("account_id", "account_seq", name="uq_postings_account_seq"),
)

holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(80), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("external_ref", sa.String(200), index=True),
    sa.Column("metadata", JSONDoc, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime()),
    sa.Column("posted_entry_id", sa.Uuid, sa.ForeignKey("journal_entries.id")),
    sa.CheckConstraint(
        "status IN ('pending', 'posted', 'voided', 'expired')", name="ck_holds_status"
    ),
    sa.Index("ix_holds_pending_expiry", "status", "expires_at"),
)

hold_legs = sa.Table(
    "hold_legs",
    metadata,
    sa.Column("hold_id", sa.Uuid, sa.ForeignKey("holds.id"), primary_key=True),
    sa.Column("leg_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.CheckConstraint("amount <> 0", name="ck_hold_legs_amount_nonzero"),
)

# The ledger's own record of each signed checkpoint (ledger.checkpoints): append-only like
# the entries, so a checkpoint cannot be quietly forgotten while the triggers are on, and
# verify() refuses books with fewer entries than the last checkpoint counted.
ledger_checkpoints = sa.Table(
    "ledger_checkpoints",
    metadata,
    #: SHA-256 of the signed statement (the checkpoint's canonical head)
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("taken_at", UTCDateTime(), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    #: the Merkle root over the accounts' leaves
    sa.Column("root", sa.String(64), nullable=False),
    sa.Column("entry_count", sa.BigInteger, nullable=False),
    sa.Column("account_count", sa.BigInteger, nullable=False),
)
