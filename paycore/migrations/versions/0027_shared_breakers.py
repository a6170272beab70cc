"""gateways: circuit-breaker state shared by all processes; webhook secrets sealed — reserved

Revision ID: 0027
Revises: 0026
"""
from alembic import op  # noqa: F401

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
