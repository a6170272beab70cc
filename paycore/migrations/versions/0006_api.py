"""paycore API: merchants' API keys and idempotent responses

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'api_keys',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('merchant_id', sa.String(length=120), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('secret_sha256', sa.String(length=64), nullable=False),
        sa.Column('scopes', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_api_keys_merchant_id', 'api_keys', ['merchant_id'], unique=False)
    op.create_table(
        'api_idempotency_records',
        sa.Column('merchant_id', sa.String(length=120), nullable=False),
        sa.Column('idempotency_key', sa.String(length=255), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('method', sa.String(length=10), nullable=False),
        sa.Column('path', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('locked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('response_status', sa.Integer(), nullable=True),
        sa.Column('response_headers', sa.JSON(), nullable=True),
        sa.Column('response_body', sa.LargeBinary(), nullable=True),
        sa.CheckConstraint("state IN ('in_progress', 'completed')",
                           name='ck_api_idempotency_records_state'),
        sa.PrimaryKeyConstraint('merchant_id', 'idempotency_key'),
    )
    op.create_index('ix_api_idempotency_records_created_at', 'api_idempotency_records',
                    ['created_at'], unique=False)
    op.create_table(
        'api_payout_owners',
        sa.Column('payout_id', sa.String(length=64), nullable=False),
        sa.Column('merchant_id', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('payout_id'),
    )
    op.create_index('ix_api_payout_owners_merchant_id', 'api_payout_owners', ['merchant_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_api_payout_owners_merchant_id', table_name='api_payout_owners')
    op.drop_table('api_payout_owners')
    op.drop_index('ix_api_idempotency_records_created_at', table_name='api_idempotency_records')
    op.drop_table('api_idempotency_records')
    op.drop_index('ix_api_keys_merchant_id', table_name='api_keys')
    op.drop_table('api_keys')
