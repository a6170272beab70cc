"""ledger: `ledger_post_entries` v2 on PostgreSQL: each leg names its entry's place in the
batch, the JSON is read with one sort per list, and the legs' account places are found in
the same statement as the request hashes (fewer statements per call, each cheaper to start)

The function's text lives in `ledger.ddl` (0002 creates it from there too); this revision
re-creates it on databases that were upgraded before the change. The Python side sends the
v2 batch, which the v1 function also reads (it ignores the extra field), so a downgrade
has nothing to undo.

Revision ID: 0007
Revises: 0006
"""
from alembic import op

from ledger import ddl

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in ddl.fastpath_create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    pass
