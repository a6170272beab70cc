"""ledger: on PostgreSQL, an entry and its postings are written in one statement and the
postings' statement trigger proves each posting's entry and account, in place of two
foreign keys checked row by row (a query and a row lock per posting); accounts can no
longer be deleted, on either database, since the triggers stand in for those keys

Revision ID: 0008
Revises: 0007
"""
from alembic import op

from ledger import ddl

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in ddl.trigger_links_create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in ddl.trigger_links_drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
