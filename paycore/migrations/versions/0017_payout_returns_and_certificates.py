"""gateways: payout_reviews (returned payouts, mismatched or contradicting payout
notifications, for a person) and bank_certificates (expiry warnings)

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'payout_reviews',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('payout_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('bank', sa.String(length=32), nullable=True),
        sa.Column('bank_txn_id', sa.String(length=128), nullable=True),
        sa.Column('amount_minor', sa.BigInteger(), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=True),
        sa.Column('entry_id', sa.Uuid(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolved_by', sa.String(length=120), nullable=True),
        sa.Column('resolution', sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('returned', 'return_not_booked', 'mismatch', 'conflict')",
            name='ck_payout_reviews_kind'),
        sa.CheckConstraint("status IN ('open', 'resolved')", name='ck_payout_reviews_status'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('payout_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_payout_reviews_payout_id', ['payout_id'], unique=False)
        batch_op.create_index('ix_payout_reviews_status_created', ['status', 'created_at'],
                              unique=False)
    op.create_table(
        'bank_certificates',
        sa.Column('bank', sa.String(length=32), nullable=False),
        sa.Column('role', sa.String(length=40), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('serial', sa.String(length=64), nullable=False),
        sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
        sa.Column('not_after', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('bank', 'role'),
    )


def downgrade() -> None:
    op.drop_table('bank_certificates')
    with op.batch_alter_table('payout_reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_payout_reviews_status_created')
        batch_op.drop_index('ix_payout_reviews_payout_id')
    op.drop_table('payout_reviews')
