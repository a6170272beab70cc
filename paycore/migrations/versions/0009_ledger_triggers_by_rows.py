"""ledger on PostgreSQL: the statement triggers check only the rows they were given, by
index look-ups (an entry's balance is summed from the statement's own postings), instead of
joins that a batch's plan made into hashes of the whole accounts and entries tables

Revision ID: 0009
Revises: 0008
"""
from alembic import op

from ledger import ddl

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in ddl.trigger_rows_create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in ddl.trigger_rows_drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
