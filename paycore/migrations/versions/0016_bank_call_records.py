"""gateways: bank call records (what every inquiry needs, persisted before the bank call) and payouts' review flag

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'bank_calls',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('subject', sa.String(length=16), nullable=False),
        sa.Column('subject_id', sa.String(length=64), nullable=False),
        sa.Column('attempt_no', sa.Integer(), nullable=False),
        sa.Column('bank', sa.String(length=32), nullable=False),
        sa.Column('bank_order_id', sa.String(length=64), nullable=False),
        sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('bank_ref', sa.String(length=128), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("subject IN ('attempt', 'refund', 'payout')",
                           name='ck_bank_calls_subject'),
        sa.CheckConstraint('attempt_no >= 1', name='ck_bank_calls_attempt_no'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('subject', 'subject_id', 'attempt_no',
                            name='uq_bank_calls_subject_attempt'),
    )
    with op.batch_alter_table('payouts') as batch_op:
        batch_op.add_column(sa.Column('review_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payouts') as batch_op:
        batch_op.drop_column('review_reason')
    op.drop_table('bank_calls')
