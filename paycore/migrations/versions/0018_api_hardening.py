"""paycore API: rate-limit counters shared by the API's worker processes (api_rate_limits)

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'api_rate_limits',
        sa.Column('bucket', sa.String(length=200), nullable=False),
        sa.Column('window_start', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('bucket', 'window_start'),
    )
    op.create_index('ix_api_rate_limits_window_start', 'api_rate_limits', ['window_start'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_api_rate_limits_window_start', table_name='api_rate_limits')
    op.drop_table('api_rate_limits')
