"""lending: loan products as versioned data, business-day calendars, the loan's product version and contractual maturity, overpayment moves

Revision ID: 0024
Revises: 0023
"""
import sqlalchemy as sa
from alembic import op

from ledger import JSONDoc, UTCDateTime

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'lending_products',
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('effective_from', sa.Date(), nullable=False),
        sa.Column('definition', JSONDoc, nullable=False),
        sa.Column('changed_by', sa.String(length=120), nullable=False),
        sa.Column('reason', sa.Text(), server_default='', nullable=False),
        sa.Column('recorded_at', UTCDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'retired')", name='ck_lending_products_status'),
        sa.CheckConstraint('version > 0', name='ck_lending_products_version'),
        sa.PrimaryKeyConstraint('code', 'version'),
    )
    op.create_table(
        'lending_calendar_days',
        sa.Column('market', sa.String(length=8), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('business_day', sa.Boolean(), nullable=False),
        sa.Column('name', sa.String(length=200), server_default='', nullable=False),
        sa.Column('loaded_by', sa.String(length=120), nullable=False),
        sa.Column('loaded_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('market', 'day'),
    )
    op.create_index('ix_lending_calendar_days_year', 'lending_calendar_days', ['market', 'year'])
    op.create_table(
        'lending_overpayment_moves',
        sa.Column('id', sa.String(length=160), nullable=False),
        sa.Column('loan_id', sa.String(length=80), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('amount_minor', sa.BigInteger(), nullable=False),
        sa.Column('moved_on', sa.Date(), nullable=False),
        sa.Column('target_loan_id', sa.String(length=80), nullable=True),
        sa.Column('payout_id', sa.String(length=120), nullable=True),
        sa.Column('entry_id', sa.Uuid(), nullable=False),
        sa.Column('actor', sa.String(length=120), nullable=False),
        sa.Column('recorded_at', UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('refund', 'apply')", name='ck_lending_overpayment_kind'),
        sa.CheckConstraint('amount_minor > 0', name='ck_lending_overpayment_amount'),
        sa.ForeignKeyConstraint(['loan_id'], ['lending_loans.id']),
        sa.ForeignKeyConstraint(['target_loan_id'], ['lending_loans.id']),
        sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_lending_overpayment_moves_loan_id', 'lending_overpayment_moves',
                    ['loan_id'])
    with op.batch_alter_table('lending_loans') as batch:
        batch.add_column(sa.Column('product_version', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('contractual_maturity', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('lending_loans') as batch:
        batch.drop_column('contractual_maturity')
        batch.drop_column('product_version')
    op.drop_index('ix_lending_overpayment_moves_loan_id', table_name='lending_overpayment_moves')
    op.drop_table('lending_overpayment_moves')
    op.drop_index('ix_lending_calendar_days_year', table_name='lending_calendar_days')
    op.drop_table('lending_calendar_days')
    op.drop_table('lending_products')
