"""console: indexes for the operations console's list pages at 1M postings and 100k loans

Measured by `bench/console_bench.py` (issue #19): each list page orders and filters on
one of these, so it reads a page's rows instead of scanning the table.

- `recon_statement_lines (statement_id, status)`: a statement's unmatched lines, counted
  per statement on the statements page (before: a scan of every line per statement).
- `payment_attempts`, `refunds (status, updated_at)` and `payouts (status, updated_at)`,
  and `payouts (updated_at)` where a review reason is set: the payments page's records in
  `unknown` or review, newest first.
- `lending_loans (maturity, id)`: the loan book sorted by due date, due this week, overdue.
- `lending_loans (status, borrower_id, product_code, currency, maturity, amount_minor,
  principal_repaid_minor)`: covers the loan book's summary by product and bucket and the
  exposure per borrower, so both sum the index alone (an index-only scan), not the loans.
- `recon_exceptions (status, date, id)`: the exceptions queue across bank accounts.

Indexes only: no data changes; downgrade drops them.

Revision ID: 0031
Revises: 0029
"""
import sqlalchemy as sa
from alembic import op

revision = '0031'
down_revision = '0029'
branch_labels = None
depends_on = None

_INDEXES = (
    ('ix_recon_lines_statement_status', 'recon_statement_lines', ['statement_id', 'status']),
    ('ix_payment_attempts_status_updated', 'payment_attempts', ['status', 'updated_at']),
    ('ix_refunds_status_updated', 'refunds', ['status', 'updated_at']),
    ('ix_payouts_status_updated', 'payouts', ['status', 'updated_at']),
    ('ix_lending_loans_maturity', 'lending_loans', ['maturity', 'id']),
    ('ix_lending_loans_book', 'lending_loans', ['status', 'borrower_id', 'product_code',
                                                'currency', 'maturity', 'amount_minor',
                                                'principal_repaid_minor']),
    ('ix_recon_exceptions_status_date', 'recon_exceptions', ['status', 'date', 'id']),
)


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)
    op.create_index('ix_payouts_review_updated', 'payouts', ['updated_at'],
                    postgresql_where=sa.text('review_reason IS NOT NULL'),
                    sqlite_where=sa.text('review_reason IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_payouts_review_updated', table_name='payouts')
    for name, table, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
