"""ledger: every account's postings are booked in the order of their sequence numbers
(`account_balances.last_booked_at`, which every writer reads and moves forward under the
account's lock), so a booking time is found by a binary search over `(account_id,
account_seq)` and `ix_postings_account_booked` goes: a random-page index insert fewer per posting
(two per two-leg entry)

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

from ledger import ddl

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('account_balances', sa.Column('last_booked_at', sa.DateTime(timezone=True), nullable=True))
    # the booking time of each account's last posting (its sequence number is the balance row's)
    op.execute(
        "UPDATE account_balances SET last_booked_at = (SELECT p.booked_at FROM postings p"
        " WHERE p.account_id = account_balances.account_id"
        " AND p.account_seq = account_balances.seq)"
    )
    op.drop_index('ix_postings_account_booked', table_name='postings')
    for statement in ddl.booked_in_order_create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in ddl.booked_in_order_drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    op.create_index('ix_postings_account_booked', 'postings', ['account_id', 'booked_at', 'account_seq'], unique=False)
    with op.batch_alter_table('account_balances', schema=None) as batch_op:
        batch_op.drop_column('last_booked_at')
