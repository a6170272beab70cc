"""paycore's own tables (the HTTP API's keys and idempotent responses), in a `MetaData`
of their own; migrations in `paycore/migrations/versions` build them."""

from __future__ import annotations

import sqlalchemy as sa

from ledger import IdColumn, JSONDoc, UTCDateTime

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

# -- running as a service (migration 0023): the job queue, webhook endpoints and deliveries

#: The job queue. A worker takes a `queued` job whose `run_after` has come with one
#: conditional UPDATE (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serializes writers),
#: holds it under a lease it renews while it works (`lease_expires_at`), and finishes it with
#: another conditional UPDATE naming itself: a worker that died is found by its lapsed lease
#: and its job queued again. `dedupe_key` makes each scheduled occurrence (`accrual:2026-12-07`)
#: one job however many workers schedule it. A run split into chunks (the accrual) is a
#: parent `waiting` for its children (`parent_id`), which count themselves done into it.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("dedupe_key", sa.String(200), nullable=True, unique=True),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("run_after", UTCDateTime(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer(), nullable=False),
    sa.Column("lease_owner", sa.String(120), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("parent_id", sa.BigInteger(), nullable=True),
    #: progress of a long job (a parent: chunks done of chunks), shown by `paycore jobs list`
    sa.Column("progress_done", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("progress_total", sa.BigInteger(), nullable=True),
    sa.Column("result", sa.JSON(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    #: the API request that queued it (X-Request-ID), bound in the worker's logs with the
    #: job's id: one id follows the work from the request to the job that finished it
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.CheckConstraint(
        "status IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'canceled')",
        name="ck_jobs_status"),
    sa.Index("ix_jobs_due", "status", "run_after"),
    sa.Index("ix_jobs_parent", "parent_id"),
    sa.Index("ix_jobs_kind_status", "kind", "status"),
)

#: A merchant's webhook endpoint. Two secrets during a rotation: events are signed with
#: both until `previous_secret_expires_at`, so the merchant can switch without a gap.
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.String(120), nullable=False, index=True),
    sa.Column("url", sa.Text(), nullable=False),
    #: space-separated topics (`payment.captured payout.paid`), or `*` for all
    sa.Column("topics", sa.Text(), nullable=False),
    #: the signing secrets, sealed under the account key ring (`secret_key_id` names the
    #: key; NULL: stored plain before migration 0027, sealed by `paycore webhooks rekey`)
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("previous_secret", sa.String(200), nullable=True),
    sa.Column("previous_secret_expires_at", UTCDateTime(), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("description", sa.Text(), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("disabled_at", UTCDateTime(), nullable=True),
    sa.Column("secret_key_id", sa.String(32), nullable=True),
    sa.Column("previous_secret_key_id", sa.String(32), nullable=True),
    sa.CheckConstraint("status IN ('enabled', 'disabled')", name="ck_webhook_endpoints_status"),
)

#: One event to one endpoint: attempts with exponential back-off over days, then `failed`.
#: `object_key` and `event_seq` are the event's, copied so that "no earlier undelivered event
#: of this object for this endpoint" (per-object order) is one index probe.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("endpoint_id", sa.String(40), sa.ForeignKey("webhook_endpoints.id"),
              nullable=False),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("event_seq", sa.BigInteger(), nullable=False),
    sa.Column("object_key", sa.String(160), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    #: a dispatcher holds a delivery it is sending until then (another may take it after)
    sa.Column("locked_until", UTCDateTime(), nullable=True),
    sa.Column("last_status_code", sa.Integer(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("delivered_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')",
                       name="ck_webhook_deliveries_status"),
    sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_event"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_order", "endpoint_id", "object_key", "status", "event_seq"),
)

# -- the operations console (migration 0025): staff users, their sessions, the audit trail

#: A person who works in the console. Separate from merchants' API keys: a key never opens
#: a console page. The password is an argon2id hash (argon2-cffi); `failed_logins` counts
#: failures since the last success and `locked_until` holds the lock-out they earned.
staff_users = sa.Table(
    "staff_users",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("full_name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime(), nullable=True),
    #: set by `paycore staff reset`: the next login must choose a new password
    sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("last_login_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("role IN ('risk', 'finance', 'payments', 'controller', 'viewer')",
                       name="ck_staff_users_role"),
    sa.CheckConstraint("status IN ('active', 'disabled')", name="ck_staff_users_status"),
)

#: A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, so a
#: copy of the table opens no session. Each session has its own CSRF token for its forms.
staff_sessions = sa.Table(
    "staff_sessions",
    metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), sa.ForeignKey("staff_users.username"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Index("ix_staff_sessions_username", "username"),
)

#: Every decision taken in the console (and every staff-user change), who, when, what and
#: why, and what came of it ("done" or "refused" with the reason). Append-only: a trigger
#: on both databases refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL).
console_audit = sa.Table(
    "console_audit",
    metadata,
    sa.Column("id", IdColumn, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("subject", sa.String(160), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("details", JSONDoc, nullable=False),
    sa.CheckConstraint("outcome IN ('done', 'refused')", name="ck_console_audit_outcome"),
    sa.Index("ix_console_audit_subject", "subject", "id"),
)
