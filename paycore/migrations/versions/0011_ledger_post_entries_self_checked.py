"""ledger on PostgreSQL: `ledger_post_entries` proves its own writes (each entry's legs at
least two, balanced per currency, its own) and runs as the NOLOGIN role
`paycore_ledger_writer`, whose statements the two statement triggers skip; every other
writer is re-checked by them as before

Revision ID: 0011
Revises: 0010
"""
from alembic import op

from ledger import ddl

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in ddl.self_checked_create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in ddl.self_checked_drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
