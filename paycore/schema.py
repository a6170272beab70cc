"""paycore's own tables (the HTTP API's keys and idempotent responses), in a `MetaData`
of their own; migrations in `paycore/migrations/versions` build them."""

from __future__ import annotations

import sqlalchemy as sa

from ledger import UTCDateTime

metadata = sa.MetaData()



#: A merchant's API key. Only a SHA-256 digest of the secret is kept: the key is 256 random
#: bits, so a fast hash is enough (nothing to brute-force), and `id` (public, printed in the
#: key itself) finds the row without comparing secrets in SQL.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("merchant_id", sa.String(120), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    #: space-separated, as in OAuth 2.0
    sa.Column("scopes", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    #: the person the key belongs to (migration 0015): maker-checker compares people, so
    #: one person's two keys are still one person; None: the key is its own identity
    sa.Column("holder", sa.String(120), nullable=True),
)

#: One row per (merchant, Idempotency-Key): claimed `in_progress` before the request runs
#: (the primary key makes concurrent duplicates lose the insert), then `completed` with the
#: response it produced, which every retry with the same key and body gets back verbatim.
idempotency_records = sa.Table(
    "api_idempotency_records",
    metadata,
    sa.Column("merchant_id", sa.String(120), primary_key=True),
    sa.Column("idempotency_key", sa.String(255), primary_key=True),
    #: SHA-256 of method, path and query, and body bytes
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("path", sa.Text(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    #: when the current attempt claimed the key; a stale claim (crashed server) may be taken over
    sa.Column("locked_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Column("response_status", sa.Integer(), nullable=True),
    #: [[name, value], ...] of the headers worth replaying (content-type, location, ...)
    sa.Column("response_headers", sa.JSON(), nullable=True),
    sa.Column("response_body", sa.LargeBinary(), nullable=True),
    sa.CheckConstraint("state IN ('in_progress', 'completed')",
                       name="ck_api_idempotency_records_state"),
    sa.Index("ix_api_idempotency_records_created_at", "created_at"),
)

#: Which merchant asked for a payout through the API (gateways' payouts belong to the
#: marketplace and carry no merchant): a merchant reads only the payouts it requested.
api_payout_owners = sa.Table(
    "api_payout_owners",
    metadata,
    sa.Column("payout_id", sa.String(64), primary_key=True),
    sa.Column("merchant_id", sa.String(120), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

#: Which suppliers a merchant's keys may act for (register accounts, request and approve
#: payouts) (migration 0015). No row, no access: a merchant never touches the money of a
#: supplier it was not bound to by an operator.
api_supplier_bindings = sa.Table(
    "api_supplier_bindings",
    metadata,
    sa.Column("merchant_id", sa.String(120), primary_key=True),
    sa.Column("supplier_id", sa.String(64), primary_key=True),
    sa.Column("created_by", sa.String(120), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

#: Fixed-window request counters shared by every API worker process (an in-memory counter
#: would let each of `paycore serve`'s workers allow the full rate): one row per bucket
#: (e.g. "notifications:<client address>") and window, counted up by an upsert; windows
#: that have ended are deleted as new ones begin, so the table holds about one row per
#: bucket seen in the last two windows.
api_rate_limits = sa.Table(
    "api_rate_limits",
    metadata,
    sa.Column("bucket", sa.String(200), primary_key=True),
    #: the window's start, in whole seconds since the Unix epoch
    sa.Column("window_start", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("hits", sa.Integer(), nullable=False),
    sa.Index("ix_api_rate_limits_window_start", "window_start"),
)
