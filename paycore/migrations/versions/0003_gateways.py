"""gateways: payment intents, attempts, refunds, payouts, notifications, inquiries,
supplier terms, bank health

Revision ID: 0003
Revises: 0002

The tables are built from `gateways.schema` (copied into a MetaData of this migration's
own), so schema and migration cannot drift; a later change to those tables gets a
migration of its own with explicit operations.
"""
import sqlalchemy as sa
from alembic import op

from gateways import schema

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _tables() -> sa.MetaData:
    frozen = sa.MetaData()
    for table in schema.metadata.sorted_tables:
        table.to_metadata(frozen)
    return frozen


def upgrade() -> None:
    _tables().create_all(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    _tables().drop_all(op.get_bind(), checkfirst=False)
