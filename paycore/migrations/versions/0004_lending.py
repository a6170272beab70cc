"""lending: borrowers, imported trade records, loans and their events, underwriting
decisions, repayments, settlement offsets

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lending_borrowers',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payable_account', sa.String(length=120), nullable=False),
    sa.Column('onboarded_on', sa.Date(), nullable=False),
    sa.Column('credit_cap_minor', sa.BigInteger(), nullable=True),
    sa.Column('payout_name', sa.String(length=200), nullable=True),
    sa.Column('payout_account', sa.String(length=64), nullable=True),
    sa.Column('payout_bank', sa.String(length=120), nullable=True),
    sa.Column('data_imported_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('supplier', 'merchant')", name='ck_lending_borrowers_kind'),
    sa.CheckConstraint('credit_cap_minor IS NULL OR credit_cap_minor >= 0', name='ck_lending_borrowers_cap'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('lending_loans',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('borrower_id', sa.String(length=80), nullable=False),
    sa.Column('product_code', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('requested_minor', sa.BigInteger(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('term_days', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_on', sa.Date(), nullable=False),
    sa.Column('applied_on', sa.Date(), nullable=False),
    sa.Column('disbursed_on', sa.Date(), nullable=True),
    sa.Column('maturity', sa.Date(), nullable=True),
    sa.Column('extensions', sa.Integer(), server_default='0', nullable=False),
    sa.Column('disbursement_mode', sa.String(length=16), nullable=True),
    sa.Column('payout_id', sa.String(length=120), nullable=True),
    sa.Column('accrued_through', sa.Date(), nullable=True),
    sa.Column('principal_repaid_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('interest_accrued_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('interest_paid_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('penalty_accrued_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('penalty_paid_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('fees_charged_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('fees_paid_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('overpaid_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('written_off_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('recovered_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('funding_interest_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('max_dpd', sa.Integer(), server_default='0', nullable=False),
    sa.Column('version', sa.Integer(), server_default='0', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('applied', 'manual_review', 'approved', 'declined', 'disbursed', 'active', 'extended', 'overdue', 'repaid', 'written_off', 'recovered')", name='ck_lending_loans_status'),
    sa.CheckConstraint('amount_minor > 0 AND requested_minor > 0 AND term_days > 0 AND extensions >= 0 AND principal_repaid_minor >= 0 AND principal_repaid_minor <= amount_minor AND interest_paid_minor >= 0 AND interest_paid_minor <= interest_accrued_minor AND penalty_paid_minor >= 0 AND penalty_paid_minor <= penalty_accrued_minor AND fees_paid_minor >= 0 AND fees_paid_minor <= fees_charged_minor AND overpaid_minor >= 0 AND written_off_minor >= 0 AND recovered_minor >= 0', name='ck_lending_loans_amounts'),
    sa.ForeignKeyConstraint(['borrower_id'], ['lending_borrowers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_lending_loans_borrower', 'lending_loans', ['borrower_id', 'status'], unique=False)
    op.create_index('ix_lending_loans_status', 'lending_loans', ['status', 'accrued_through'], unique=False)
    op.create_table('lending_settlement_offsets',
    sa.Column('settlement_id', sa.String(length=120), nullable=False),
    sa.Column('borrower_id', sa.String(length=80), nullable=False),
    sa.Column('settled_on', sa.Date(), nullable=False),
    sa.Column('available_minor', sa.BigInteger(), nullable=False),
    sa.Column('offset_minor', sa.BigInteger(), nullable=False),
    sa.Column('payout_minor', sa.BigInteger(), nullable=False),
    sa.Column('payout_id', sa.String(length=120), nullable=True),
    sa.Column('entry_id', sa.Uuid(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], ),
    sa.PrimaryKeyConstraint('settlement_id', 'borrower_id')
    )
    op.create_table('lending_trade_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('borrower_id', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('record_ref', sa.String(length=120), nullable=False),
    sa.Column('record_date', sa.Date(), nullable=False),
    sa.Column('buyer_ref', sa.String(length=120), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('imported_on', sa.Date(), nullable=False),
    sa.CheckConstraint("kind IN ('purchase_order', 'return', 'sale')", name='ck_lending_trade_records_kind'),
    sa.CheckConstraint('amount_minor >= 0', name='ck_lending_trade_records_amount'),
    sa.ForeignKeyConstraint(['borrower_id'], ['lending_borrowers.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('borrower_id', 'kind', 'record_ref', name='uq_lending_trade_records_ref')
    )
    op.create_table('lending_decisions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.String(length=80), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('decided_by', sa.String(length=120), nullable=False),
    sa.Column('decided_on', sa.Date(), nullable=False),
    sa.Column('policy_version', sa.String(length=40), nullable=False),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('inputs', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('credit_line', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IN ('approve', 'decline', 'manual_review')", name='ck_lending_decisions_outcome'),
    sa.ForeignKeyConstraint(['loan_id'], ['lending_loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_lending_decisions_loan_id'), 'lending_decisions', ['loan_id'], unique=False)
    op.create_table('lending_loan_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.String(length=80), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('event_on', sa.Date(), nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('actor', sa.String(length=120), server_default='system', nullable=False),
    sa.Column('entry_id', sa.Uuid(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], ),
    sa.ForeignKeyConstraint(['loan_id'], ['lending_loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_lending_loan_events_loan_id'), 'lending_loan_events', ['loan_id'], unique=False)
    op.create_table('lending_repayments',
    sa.Column('id', sa.String(length=160), nullable=False),
    sa.Column('loan_id', sa.String(length=80), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('principal_minor', sa.BigInteger(), nullable=False),
    sa.Column('interest_minor', sa.BigInteger(), nullable=False),
    sa.Column('penalty_minor', sa.BigInteger(), nullable=False),
    sa.Column('fees_minor', sa.BigInteger(), nullable=False),
    sa.Column('excess_minor', sa.BigInteger(), nullable=False),
    sa.Column('principal_after_minor', sa.BigInteger(), nullable=False),
    sa.Column('allocation', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('settlement_id', sa.String(length=120), nullable=True),
    sa.Column('entry_id', sa.Uuid(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source IN ('bank', 'offset', 'recovery')", name='ck_lending_repayments_source'),
    sa.CheckConstraint('amount_minor > 0', name='ck_lending_repayments_amount'),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], ),
    sa.ForeignKeyConstraint(['loan_id'], ['lending_loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_lending_repayments_loan_id'), 'lending_repayments', ['loan_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_lending_repayments_loan_id'), table_name='lending_repayments')
    op.drop_table('lending_repayments')
    op.drop_index(op.f('ix_lending_loan_events_loan_id'), table_name='lending_loan_events')
    op.drop_table('lending_loan_events')
    op.drop_index(op.f('ix_lending_decisions_loan_id'), table_name='lending_decisions')
    op.drop_table('lending_decisions')
    op.drop_table('lending_trade_records')
    op.drop_table('lending_settlement_offsets')
    op.drop_index('ix_lending_loans_status', table_name='lending_loans')
    op.drop_index('ix_lending_loans_borrower', table_name='lending_loans')
    op.drop_table('lending_loans')
    op.drop_table('lending_borrowers')
