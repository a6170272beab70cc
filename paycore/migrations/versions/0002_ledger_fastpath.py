"""ledger: the write path's server-side pieces: PostgreSQL's one-round-trip
`ledger_post_entry` function, and no JIT for the triggers' statement-level queries

Revision ID: 0002
Revises: 0001
"""
from alembic import op

from ledger import ddl

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in ddl.fastpath_create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in ddl.fastpath_drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
