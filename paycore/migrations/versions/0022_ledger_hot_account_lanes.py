"""ledger: hot accounts split into lanes — reserved

Revision ID: 0022
Revises: 0021
"""
from alembic import op  # noqa: F401

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
