"""ledger on PostgreSQL: `ledger_post_entries` builds its request hashes from one sort of the
legs (not one sort per entry) and orders its outputs with one sort (not one per output)

The function's text lives in `ledger.ddl`; the interface and the hashes are unchanged, so a
downgrade has nothing to undo.

Revision ID: 0010
Revises: 0009
"""
from alembic import op

from ledger import ddl

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in ddl.post_entries_resort_create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    pass
