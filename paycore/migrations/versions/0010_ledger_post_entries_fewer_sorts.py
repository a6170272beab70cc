"""ledger on PostgreSQL: `ledger_post_entries` with fewer and cheaper statements: its JSON read
in one statement; for a batch, request hashes built from one sort of the legs (not one sort
per entry) and outputs ordered with one sort (not one per output); for a single entry (every
`post`), request hash, leg places and idempotency look-up in plpgsql and one key look-up
instead of that statement's sorts, window and joins

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
