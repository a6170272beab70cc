"""gateways's tables (SQLAlchemy Core), in a `MetaData` of its own; migration
`paycore/migrations/versions/0003_gateways.py` builds them (keep the two in step).

Money is integer minor units beside an ISO 4217 code. Status columns are the state
machines' values (`gateways.states`); every change of them is a compare-and-set.
"""

from __future__ import annotations

import sqlalchemy as sa

from ledger import IdColumn as Id
from ledger import JSONDoc, UTCDateTime

metadata = sa.MetaData()

RecordId = sa.String(64)



# Commission terms per supplier; `commission_ppm` is the rate in parts per million
# (30000 = 3 %), an exact integer.
supplier_terms = sa.Table(
    "supplier_terms",
    metadata,
    sa.Column("supplier_id", RecordId, primary_key=True),
    sa.Column("commission_ppm", sa.Integer, nullable=False),
    sa.Column("refund_commission", sa.String(16), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("commission_ppm >= 0 AND commission_ppm <= 1000000",
                       name="ck_supplier_terms_rate"),
    sa.CheckConstraint("refund_commission IN ('proportional', 'keep')",
                       name="ck_supplier_terms_refund_commission"),
)

payment_intents = sa.Table(
    "payment_intents",
    metadata,
    sa.Column("id", RecordId, primary_key=True),
    sa.Column("merchant_id", RecordId, nullable=False),
    sa.Column("order_id", RecordId, nullable=False),
    sa.Column("supplier_id", RecordId, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    #: the bank the customer chose (of the current attempt)
    sa.Column("bank", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("current_attempt_id", RecordId),
    #: captured amount and the commission taken on it (minor units)
    sa.Column("captured_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("commission_minor", sa.BigInteger, nullable=False, server_default="0"),
    #: refunds succeeded or in flight: never more than captured (a CHECK and a CAS)
    sa.Column("refund_reserved_minor", sa.BigInteger, nullable=False, server_default="0"),
    #: refunds succeeded, and the commission given back with them
    sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("refunded_commission_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("review_reason", sa.Text),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("merchant_id", "order_id", name="uq_payment_intents_merchant_order"),
    sa.CheckConstraint("amount_minor > 0", name="ck_payment_intents_amount"),
    sa.CheckConstraint(
        "refund_reserved_minor >= 0 AND refund_reserved_minor <= captured_minor "
        "AND refunded_minor >= 0 AND refunded_minor <= refund_reserved_minor",
        name="ck_payment_intents_refunds"),
    sa.Index("ix_payment_intents_merchant_created", "merchant_id", "created_at"),
    sa.Index("ix_payment_intents_status_expires", "status", "expires_at"),
)

# One per try at a bank; the order id the bank sees is the attempt id.
payment_attempts = sa.Table(
    "payment_attempts",
    metadata,
    sa.Column("id", RecordId, primary_key=True),
    sa.Column("intent_id", RecordId, sa.ForeignKey("payment_intents.id"), nullable=False,
              index=True),
    sa.Column("bank", sa.String(32), nullable=False),
    sa.Column("bank_merchant_id", RecordId, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("bank_payment_id", sa.String(128)),
    #: the bank's transaction id once it settled: the capture's external_ref
    sa.Column("bank_txn_id", sa.String(128)),
    #: what the checkout page needs (form fields or redirect), to render it again
    sa.Column("instruction", JSONDoc),
    sa.Column("failure_reason", sa.Text),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("settled_at", UTCDateTime()),
    sa.UniqueConstraint("bank", "bank_txn_id", name="uq_payment_attempts_bank_txn"),
    # the console's attempts in unknown or review, newest first (migration 0031)
    sa.Index("ix_payment_attempts_status_updated", "status", "updated_at"),
    # the console's charts: the last 7 days' attempts from the index alone (0033)
    sa.Index("ix_payment_attempts_created", "created_at", "bank", "status", "settled_at"),
)

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", RecordId, primary_key=True),
    sa.Column("intent_id", RecordId, sa.ForeignKey("payment_intents.id"), nullable=False,
              index=True),
    sa.Column("attempt_id", RecordId, sa.ForeignKey("payment_attempts.id"), nullable=False),
    sa.Column("bank", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    #: commission given back with this refund (set when it is posted)
    sa.Column("commission_minor", sa.BigInteger),
    #: the ledger hold reserving the refund while the bank has it (voided when settled)
    sa.Column("hold_id", sa.Uuid),
    sa.Column("bank_txn_id", sa.String(128)),
    sa.Column("failure_reason", sa.Text),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("settled_at", UTCDateTime()),
    sa.CheckConstraint("amount_minor > 0", name="ck_refunds_amount"),
    sa.UniqueConstraint("bank", "bank_txn_id", name="uq_refunds_bank_txn"),
    sa.Index("ix_refunds_status_updated", "status", "updated_at"),  # 0031
)

payouts = sa.Table(
    "payouts",
    metadata,
    #: the caller's id; sent to the bank as the end-to-end id; the entry's external_ref
    sa.Column("id", RecordId, primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("beneficiary_ref", sa.String(120), nullable=False, index=True),
    sa.Column("beneficiary_name", sa.String(200), nullable=False),
    #: needed to send the payout; never logged (see `gateways.redact`)
    sa.Column("beneficiary_account", sa.String(64), nullable=False),
    sa.Column("beneficiary_bank_name", sa.String(200), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("debit_account", sa.String(120), nullable=False),
    sa.Column("purpose", sa.String(80), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    #: failover order asked for (empty: the directory's order)
    sa.Column("banks", JSONDoc, nullable=False),
    #: the bank it was (last) handed to
    sa.Column("bank", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("hold_id", sa.Uuid, nullable=False),
    sa.Column("entry_id", sa.Uuid),
    sa.Column("bank_txn_id", sa.String(128)),
    sa.Column("submit_rounds", sa.Integer, nullable=False, server_default="0"),
    #: set when the bank's word was a qualified success (UnionPay A6): the money moved,
    #: and a person should look (`paycore payments review` lists it)
    sa.Column("review_reason", sa.Text),
    sa.Column("failure_reason", sa.Text),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("settled_at", UTCDateTime()),
    sa.CheckConstraint("amount_minor > 0", name="ck_payouts_amount"),
    sa.Index("ix_payouts_status_created", "status", "created_at"),
    # the console's payouts in unknown or review, newest first (migration 0031)
    sa.Index("ix_payouts_status_updated", "status", "updated_at"),
    sa.Index("ix_payouts_review_updated", "updated_at",
             postgresql_where=sa.text("review_reason IS NOT NULL"),
             sqlite_where=sa.text("review_reason IS NOT NULL")),
)

# Notifications applied: one row per bank transaction, the dedupe key.
bank_notifications = sa.Table(
    "bank_notifications",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("bank", sa.String(32), nullable=False),
    sa.Column("bank_txn_id", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("reference", RecordId, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("merchant_id", RecordId, nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("details", JSONDoc, nullable=False),
    sa.UniqueConstraint("bank", "bank_txn_id", name="uq_bank_notifications_bank_txn"),
)

# Notifications that changed nothing: forged, stale, replayed, malformed, mismatched,
# for an unknown reference, duplicates and contradictions. Headers redacted; the body is
# kept only as its digest and size.
notification_rejections = sa.Table(
    "notification_rejections",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("bank", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16)),
    sa.Column("reference", RecordId),
    sa.Column("bank_txn_id", sa.String(128)),
    sa.Column("headers", JSONDoc, nullable=False),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("body_size", sa.Integer, nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Index("ix_notification_rejections_received", "received_at"),
)

# The janitor's schedule: what to ask which bank about, and when next.
inquiries = sa.Table(
    "inquiries",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(16), nullable=False),
    sa.Column("subject_id", RecordId, nullable=False),
    sa.Column("bank", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_check_at", UTCDateTime(), nullable=False),
    sa.Column("last_outcome", sa.String(32)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("subject", "subject_id", name="uq_inquiries_subject"),
    sa.CheckConstraint("subject IN ('attempt', 'refund', 'payout')", name="ck_inquiries_subject"),
    sa.CheckConstraint("status IN ('open', 'done', 'review')", name="ck_inquiries_status"),
    sa.Index("ix_inquiries_status_next", "status", "next_check_at"),
)

# Every request that may move money, recorded (and committed) before it is sent, with
# what any later inquiry needs to name it to the bank: the order id and transaction time
# exactly as sent, the attempt number, and the bank's own id once an answer named it.
# The janitor and the refund path read it here, never from an adapter's memory.
bank_calls = sa.Table(
    "bank_calls",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(16), nullable=False),
    sa.Column("subject_id", RecordId, nullable=False),
    #: 1 for the first time this subject was handed to a bank, 2 after a failover, ...
    sa.Column("attempt_no", sa.Integer, nullable=False),
    sa.Column("bank", sa.String(32), nullable=False),
    #: the id the bank knows it by (UnionPay orderId), exactly as sent
    sa.Column("bank_order_id", sa.String(64), nullable=False),
    #: the transaction time exactly as sent (whole seconds; UnionPay txnTime)
    sa.Column("placed_at", UTCDateTime(), nullable=False),
    #: the bank's own id for it, once an answer or inquiry named one (UnionPay queryId)
    sa.Column("bank_ref", sa.String(128)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("subject", "subject_id", "attempt_no",
                        name="uq_bank_calls_subject_attempt"),
    sa.CheckConstraint("subject IN ('attempt', 'refund', 'payout')",
                       name="ck_bank_calls_subject"),
    sa.CheckConstraint("attempt_no >= 1", name="ck_bank_calls_attempt_no"),
)

# The circuit breakers' state per bank, shared by every process that calls the banks
# (`gateways.breakers`: conditional updates only), and shown by `paycore payments health`.
bank_health = sa.Table(
    "bank_health",
    metadata,
    sa.Column("bank", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    #: failures in the current window (since `window_started_at`); a success resets it
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
    sa.Column("opened_at", UTCDateTime()),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("window_started_at", UTCDateTime()),
    #: half-open: the one process allowed to probe the bank holds this token until then
    sa.Column("probe_token", sa.String(32)),
    sa.Column("probe_expires_at", UTCDateTime()),
    sa.CheckConstraint("state IN ('closed', 'open', 'half_open')", name="ck_bank_health_state"),
)

# -- payout controls (migration 0015): the register of suppliers' bank accounts, the
# supplier payouts drawn on it with their maker-checker decisions, and the audit trail.

#: A supplier's bank account. The number is kept only encrypted (AES-GCM, `key_id` names
#: the key; bound to the row id), beside a keyed hash (look-ups, duplicates) and its last
#: four characters (display). Verified by someone other than who added or last changed it;
#: usable for payouts once the cooling-off after `changed_at`/`verified_at` has passed.
beneficiary_accounts = sa.Table(
    "beneficiary_accounts",
    metadata,
    sa.Column("id", RecordId, primary_key=True),
    sa.Column("supplier_id", RecordId, nullable=False),
    sa.Column("holder_name", sa.String(140), nullable=False),
    sa.Column("bank_name", sa.String(140), nullable=False),
    sa.Column("account_ciphertext", sa.Text, nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("account_hmac", sa.String(64), nullable=False),
    sa.Column("account_last4", sa.String(4), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_by", sa.String(120), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    #: who last set the details (the account's maker) and when: the cooling-off's start
    sa.Column("changed_by", sa.String(120), nullable=False),
    sa.Column("changed_at", UTCDateTime(), nullable=False),
    sa.Column("verified_by", sa.String(120)),
    sa.Column("verified_at", UTCDateTime()),
    #: why the system (not a person) took the account out of use: a payout to it came
    #: back (it is `unverified` until a second person verifies it again); migration 0026
    sa.Column("status_reason", sa.String(500)),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    #: who typed the account number now registered (on add, or a change of the number):
    #: never its verifier, whoever changed other details since; migration 0029
    sa.Column("number_entered_by", sa.String(120), nullable=False),
    sa.CheckConstraint("status IN ('unverified', 'verified', 'retired')",
                       name="ck_beneficiary_accounts_status"),
    sa.CheckConstraint("status <> 'verified' OR (verified_by IS NOT NULL "
                       "AND lower(verified_by) <> lower(changed_by) "
                       "AND lower(verified_by) <> lower(number_entered_by))",
                       name="ck_beneficiary_accounts_four_eyes"),
    sa.Index("ix_beneficiary_accounts_supplier", "supplier_id", "status"),
    sa.Index("ix_beneficiary_accounts_hmac", "account_hmac"),
)

#: A payout from a supplier's payable to one of its registered accounts (the payouts row
#: carries only the masked number): who asked, whether a second person must approve, and
#: who did.
supplier_payouts = sa.Table(
    "supplier_payouts",
    metadata,
    sa.Column("payout_id", RecordId, sa.ForeignKey("payouts.id"), primary_key=True),
    sa.Column("supplier_id", RecordId, nullable=False, index=True),
    sa.Column("account_id", RecordId, sa.ForeignKey("beneficiary_accounts.id"), nullable=False),
    #: the account's `changed_at` when the payout was requested: a payout is approved and
    #: sent only while the account's details are still those
    sa.Column("account_changed_at", UTCDateTime(), nullable=False),
    sa.Column("requested_by", sa.String(120), nullable=False),
    #: why a second person must approve it (None: it needed no approval)
    sa.Column("approval_reason", sa.Text),
    sa.Column("decided_by", sa.String(120)),
    sa.Column("decision", sa.String(16)),
    sa.Column("decided_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("decision IS NULL OR decision IN ('approved', 'rejected')",
                       name="ck_supplier_payouts_decision"),
    sa.CheckConstraint("decision IS NULL OR decision <> 'approved' OR decided_by <> requested_by",
                       name="ck_supplier_payouts_four_eyes"),
)

#: Every change to the register and every payout decision: who, what, when. Append-only
#: (triggers refuse UPDATE and DELETE on both databases). Never holds an account number.
payout_control_audit = sa.Table(
    "payout_control_audit",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("supplier_id", RecordId, nullable=False),
    sa.Column("subject_id", RecordId, nullable=False),
    sa.Column("details", JSONDoc, nullable=False),
    sa.Index("ix_payout_control_audit_subject", "subject_id", "id"),
)

# -- payouts that come back, and certificates (migration 0017)

# What a person must look at about a payout: a return booked (with the bank's reason),
# a return that could not be booked (the payout had not succeeded, another amount), a
# notification that did not match the payout, or one that contradicted its outcome.
payout_reviews = sa.Table(
    "payout_reviews",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("payout_id", RecordId, nullable=False, index=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("bank", sa.String(32)),
    #: the bank's id of what it reported (the return's own id, for a return)
    sa.Column("bank_txn_id", sa.String(128)),
    #: what the bank stated (minor units), when it stated an amount
    sa.Column("amount_minor", sa.BigInteger),
    sa.Column("currency", sa.String(3)),
    #: the journal entry that booked it (a return), if any
    sa.Column("entry_id", sa.Uuid),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime()),
    sa.Column("resolved_by", sa.String(120)),
    sa.Column("resolution", sa.Text),
    sa.CheckConstraint("kind IN ('returned', 'return_not_booked', 'mismatch', 'conflict')",
                       name="ck_payout_reviews_kind"),
    sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_payout_reviews_status"),
    sa.Index("ix_payout_reviews_status_created", "status", "created_at"),
)

# The certificates each bank's protocol depends on, as the workers last saw them, so that
# `paycore payments health` warns before one expires.
bank_certificates = sa.Table(
    "bank_certificates",
    metadata,
    sa.Column("bank", sa.String(32), primary_key=True),
    sa.Column("role", sa.String(40), primary_key=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("serial", sa.String(64), nullable=False),
    sa.Column("not_before", UTCDateTime(), nullable=False),
    sa.Column("not_after", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
