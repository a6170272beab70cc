"""ledger: `ledger_post_entry`, the write function for one journal entry (every `post`),
with typed arguments and three statements: PostgreSQL re-prepares a plpgsql function's
statements and expressions in each transaction, and the batch function's ~70 cost a
single-entry transaction more than its work (server CPU per `post` ~635 -> ~470 us)

Revision ID: 0014
Revises: 0013
"""
from alembic import op

from ledger import ddl_post_entry

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in ddl_post_entry.create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in ddl_post_entry.drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
