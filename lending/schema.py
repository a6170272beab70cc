"""lending's tables (SQLAlchemy Core), in a `MetaData` of its own; migrations in
`paycore/migrations/versions/0004_lending.py` build them.

Amounts are BIGINT minor units of the loan's currency. A loan's running figures (principal
repaid, interest accrued and paid, ...) live on its row beside its status and a `version`;
every change is a compare-and-set `UPDATE ... WHERE status = :expected AND version = :v`,
made in the same transaction as the journal entry that books it.
"""

from __future__ import annotations

import sqlalchemy as sa

from ledger import IdColumn as Id
from ledger import JSONDoc, UTCDateTime

metadata = sa.MetaData()




_STATUSES = ("applied", "manual_review", "approved", "declined", "disbursed", "active",
             "extended", "overdue", "repaid", "written_off", "recovered")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


borrowers = sa.Table(
    "lending_borrowers",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    #: the ledger account the marketplace owes this borrower on (2202.payable.<id>)
    sa.Column("payable_account", sa.String(120), nullable=False),
    #: selling on the marketplace since (tenure)
    sa.Column("onboarded_on", sa.Date, nullable=False),
    #: a cap a risk officer set on this borrower's credit line
    sa.Column("credit_cap_minor", sa.BigInteger),
    # where a borrower is paid is not kept here: loan proceeds go to their verified account
    # in gateways' register (encrypted), like every supplier payout (migration 0026)
    #: when purchase orders / returns / sales were last imported; None: never
    sa.Column("data_imported_on", sa.Date),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('supplier', 'merchant')", name="ck_lending_borrowers_kind"),
    sa.CheckConstraint("credit_cap_minor IS NULL OR credit_cap_minor >= 0",
                       name="ck_lending_borrowers_cap"),
)

# Purchase orders, returns and settled sales imported from CSV or the API; one row per
# record, so a re-import adds nothing.
trade_records = sa.Table(
    "lending_trade_records",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("borrower_id", sa.String(80), sa.ForeignKey("lending_borrowers.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("record_ref", sa.String(120), nullable=False),
    sa.Column("record_date", sa.Date, nullable=False),
    sa.Column("buyer_ref", sa.String(120)),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("imported_on", sa.Date, nullable=False),
    sa.UniqueConstraint("borrower_id", "kind", "record_ref", name="uq_lending_trade_records_ref"),
    sa.CheckConstraint("kind IN ('purchase_order', 'return', 'sale')",
                       name="ck_lending_trade_records_kind"),
    sa.CheckConstraint("amount_minor >= 0", name="ck_lending_trade_records_amount"),
)

loans = sa.Table(
    "lending_loans",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("borrower_id", sa.String(80), sa.ForeignKey("lending_borrowers.id"), nullable=False),
    sa.Column("product_code", sa.String(40), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("requested_minor", sa.BigInteger, nullable=False),
    #: principal: as applied for, or as approved
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("term_days", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    #: the date of the last status change (the lifecycle refuses earlier dates)
    sa.Column("status_on", sa.Date, nullable=False),
    sa.Column("applied_on", sa.Date, nullable=False),
    sa.Column("disbursed_on", sa.Date),
    sa.Column("maturity", sa.Date),
    sa.Column("extensions", sa.Integer, nullable=False, server_default="0"),
    sa.Column("disbursement_mode", sa.String(16)),
    sa.Column("payout_id", sa.String(120)),
    #: the last loan-day accrued (the night before it is in); None: nothing accrued yet
    sa.Column("accrued_through", sa.Date),
    sa.Column("principal_repaid_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("interest_accrued_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("interest_paid_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("penalty_accrued_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("penalty_paid_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("fees_charged_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("fees_paid_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("overpaid_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("written_off_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("recovered_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("funding_interest_minor", sa.BigInteger, nullable=False, server_default="0"),
    #: the most days past due this loan has been (past loan behaviour)
    sa.Column("max_dpd", sa.Integer, nullable=False, server_default="0"),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    #: the version of its product the loan was booked under (None: booked before 0024,
    #: under the product as built into the code)
    sa.Column("product_version", sa.Integer),
    #: start + term, before the product's roll convention moved it off a holiday;
    #: `maturity` is the rolled date the loan is due on (None: booked before 0024)
    sa.Column("contractual_maturity", sa.Date),
    sa.CheckConstraint(_in("status", _STATUSES), name="ck_lending_loans_status"),
    sa.CheckConstraint(
        "amount_minor > 0 AND requested_minor > 0 AND term_days > 0 AND extensions >= 0 "
        "AND principal_repaid_minor >= 0 AND principal_repaid_minor <= amount_minor "
        "AND interest_paid_minor >= 0 AND interest_paid_minor <= interest_accrued_minor "
        "AND penalty_paid_minor >= 0 AND penalty_paid_minor <= penalty_accrued_minor "
        "AND fees_paid_minor >= 0 AND fees_paid_minor <= fees_charged_minor "
        "AND overpaid_minor >= 0 AND written_off_minor >= 0 AND recovered_minor >= 0",
        name="ck_lending_loans_amounts",
    ),
    sa.Index("ix_lending_loans_borrower", "borrower_id", "status"),
    sa.Index("ix_lending_loans_status", "status", "accrued_through"),
    # the console's loan book by due date, due this week, overdue (migration 0031)
    sa.Index("ix_lending_loans_maturity", "maturity", "id"),
    # covers the console's book by product and bucket and exposure per borrower (0031)
    sa.Index("ix_lending_loans_book", "status", "borrower_id", "product_code", "currency",
             "maturity", "amount_minor", "principal_repaid_minor"),
    # the loan book and the overdue list by amount, largest first (0033)
    sa.Index("ix_lending_loans_amount", "amount_minor", "id"),
)

# The running loans (disbursed, active, extended, overdue) and their principal outstanding
# per product, currency and maturity date: the console's book by days-past-due bucket
# sums these rows (a loan's bucket depends only on its maturity and the day), not the
# book. Kept by triggers on lending_loans in the loan change's own transaction (migration
# 0033); a running loan without a maturity is kept under 9999-12-31 ("current").
book_by_maturity = sa.Table(
    "lending_book_by_maturity",
    metadata,
    sa.Column("product_code", sa.String(40), primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("maturity", sa.Date, primary_key=True),
    sa.Column("loans", sa.Integer, nullable=False),
    sa.Column("principal_minor", sa.BigInteger, nullable=False),
)

# The loans the book's history reads (disbursed; running, written off, repaid or
# recovered), grouped by everything their bucket on a past day depends on: product
# version, currency, maturity, disbursement date, the day they closed (repaid or
# recovered) and the day they were written off, with the count and their principal
# outstanding and written-off amount now. Kept by the triggers on lending_loans (0033);
# lending.portfolio_history reads these groups instead of every loan. The keys have no
# NULL (a primary key): product_version -1 is "booked before versions" (NULL on the
# loan), 9999-12-31 is "no maturity", "not closed", "not written off".
book_cohorts = sa.Table(
    "lending_book_cohorts",
    metadata,
    sa.Column("product_code", sa.String(40), primary_key=True),
    sa.Column("product_version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("maturity", sa.Date, primary_key=True),
    sa.Column("disbursed_on", sa.Date, primary_key=True),
    sa.Column("closed_on", sa.Date, primary_key=True),
    sa.Column("written_off_on", sa.Date, primary_key=True),
    sa.Column("loans", sa.Integer, nullable=False),
    sa.Column("principal_minor", sa.BigInteger, nullable=False),
    sa.Column("written_off_minor", sa.BigInteger, nullable=False),
    sa.Index("ix_lending_book_cohorts_closed", "closed_on"),
)

# Each borrower's open loans (running or approved) and exposure: principal outstanding on
# running loans plus approved amounts not drawn. Kept by the same triggers (0033).
exposure = sa.Table(
    "lending_exposure",
    metadata,
    sa.Column("borrower_id", sa.String(80), primary_key=True),
    sa.Column("loans", sa.Integer, nullable=False),
    sa.Column("exposure_minor", sa.BigInteger, nullable=False),
)

# Every status change of a loan, in order: the audit trail of the lifecycle.
loan_events = sa.Table(
    "lending_loan_events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("loan_id", sa.String(80), sa.ForeignKey("lending_loans.id"), nullable=False,
              index=True),
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("event_on", sa.Date, nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("actor", sa.String(120), nullable=False, server_default="system"),
    sa.Column("entry_id", sa.Uuid, sa.ForeignKey("journal_entries.id")),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    # the loan book history's write-offs and extensions, not every status change (0033)
    sa.Index("ix_lending_loan_events_status_on", "to_status", "event_on", "loan_id"),
)

# Underwriting decisions with their reasons and every input used, for audit. A manual
# review adds a second row: the officer's decision and comment.
decisions = sa.Table(
    "lending_decisions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("loan_id", sa.String(80), sa.ForeignKey("lending_loans.id"), nullable=False,
              index=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("decided_by", sa.String(120), nullable=False),
    sa.Column("decided_on", sa.Date, nullable=False),
    sa.Column("policy_version", sa.String(40), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("reasons", JSONDoc, nullable=False),
    sa.Column("inputs", JSONDoc, nullable=False),
    sa.Column("credit_line", JSONDoc, nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("outcome IN ('approve', 'decline', 'manual_review')",
                       name="ck_lending_decisions_outcome"),
)

# Money received for a loan (bank transfer, settlement offset, recovery), and how the
# waterfall applied it.
repayments = sa.Table(
    "lending_repayments",
    metadata,
    sa.Column("id", sa.String(160), primary_key=True),
    sa.Column("loan_id", sa.String(80), sa.ForeignKey("lending_loans.id"), nullable=False,
              index=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("paid_on", sa.Date, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("principal_minor", sa.BigInteger, nullable=False),
    sa.Column("interest_minor", sa.BigInteger, nullable=False),
    sa.Column("penalty_minor", sa.BigInteger, nullable=False),
    sa.Column("fees_minor", sa.BigInteger, nullable=False),
    sa.Column("excess_minor", sa.BigInteger, nullable=False),
    #: principal outstanding after this repayment (for the accrual's principal changes)
    sa.Column("principal_after_minor", sa.BigInteger, nullable=False),
    sa.Column("allocation", JSONDoc, nullable=False),
    sa.Column("settlement_id", sa.String(120)),
    sa.Column("entry_id", sa.Uuid, sa.ForeignKey("journal_entries.id"), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("source IN ('bank', 'offset', 'recovery')",
                       name="ck_lending_repayments_source"),
    sa.CheckConstraint("amount_minor > 0", name="ck_lending_repayments_amount"),
    # the loan book history's principal repaid after a day (0033)
    sa.Index("ix_lending_repayments_paid_on", "paid_on"),
)

# What one settlement applied to one borrower's loans: the run's idempotency record.
settlement_offsets = sa.Table(
    "lending_settlement_offsets",
    metadata,
    sa.Column("settlement_id", sa.String(120), primary_key=True),
    #: a supplier or merchant id; not necessarily a borrower
    sa.Column("borrower_id", sa.String(80), primary_key=True),
    sa.Column("settled_on", sa.Date, nullable=False),
    sa.Column("available_minor", sa.BigInteger, nullable=False),
    sa.Column("offset_minor", sa.BigInteger, nullable=False),
    sa.Column("payout_minor", sa.BigInteger, nullable=False),
    sa.Column("payout_id", sa.String(120)),
    sa.Column("entry_id", sa.Uuid, sa.ForeignKey("journal_entries.id")),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
)


# Loan products as data: every definition, change and retirement is a new row (the rows
# are the audit trail); a loan names the (code, version) it was booked under.
products = sa.Table(
    "lending_products",
    metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    #: new loans applied for on or after this day take this version
    sa.Column("effective_from", sa.Date, nullable=False),
    #: the product's terms (lending.catalogue.to_definition)
    sa.Column("definition", JSONDoc, nullable=False),
    sa.Column("changed_by", sa.String(120), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('active', 'retired')", name="ck_lending_products_status"),
    sa.CheckConstraint("version > 0", name="ck_lending_products_version"),
)

# Official business-day lists loaded per market and year (public holidays, and working
# weekend days such as China's make-up days); a loaded year replaces the holidays
# package's data for that year.
calendar_days = sa.Table(
    "lending_calendar_days",
    metadata,
    sa.Column("market", sa.String(8), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("business_day", sa.Boolean, nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("loaded_by", sa.String(120), nullable=False),
    sa.Column("loaded_at", UTCDateTime(), nullable=False),
    sa.Index("ix_lending_calendar_days_year", "market", "year"),
)

# What became of money a borrower paid beyond what a loan owed (held in 2203): refunded
# to their verified bank account by a payout, or applied to another of their loans.
overpayment_moves = sa.Table(
    "lending_overpayment_moves",
    metadata,
    sa.Column("id", sa.String(160), primary_key=True),
    sa.Column("loan_id", sa.String(80), sa.ForeignKey("lending_loans.id"), nullable=False,
              index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("moved_on", sa.Date, nullable=False),
    sa.Column("target_loan_id", sa.String(80), sa.ForeignKey("lending_loans.id")),
    sa.Column("payout_id", sa.String(120)),
    sa.Column("entry_id", sa.Uuid, sa.ForeignKey("journal_entries.id"), nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('refund', 'apply')", name="ck_lending_overpayment_kind"),
    sa.CheckConstraint("amount_minor > 0", name="ck_lending_overpayment_amount"),
)
