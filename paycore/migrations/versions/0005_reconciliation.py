"""reconciliation: bank accounts, statements, lines, book items, matches, exceptions, audit

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recon_bank_accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=60), nullable=False),
    sa.Column('bank_account_number', sa.String(length=60), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('bank_ledger_account', sa.String(length=120), nullable=False),
    sa.Column('clearing_account', sa.String(length=120), nullable=False),
    sa.Column('payout_clearing_account', sa.String(length=120), nullable=False),
    sa.Column('fee_account', sa.String(length=120), nullable=False),
    sa.Column('differences_account', sa.String(length=120), nullable=False),
    sa.Column('tolerance_minor', sa.BigInteger(), nullable=False),
    sa.Column('rules', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('tolerance_minor >= 0', name='ck_recon_bank_accounts_tolerance'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('recon_book_items',
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('account_seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('entry_id', sa.Uuid(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=80), nullable=False),
    sa.Column('external_ref', sa.String(length=200), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.CheckConstraint("status IN ('open', 'matched', 'resolved', 'void')", name='ck_recon_items_status'),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], ),
    sa.PrimaryKeyConstraint('account_id', 'account_seq')
    )
    op.create_index('ix_recon_items_entry', 'recon_book_items', ['entry_id'], unique=False)
    op.create_index('ix_recon_items_open_amount', 'recon_book_items', ['account_id', 'status', 'amount_minor'], unique=False)
    op.create_index('ix_recon_items_open_date', 'recon_book_items', ['account_id', 'status', 'effective_date'], unique=False)
    op.create_index('ix_recon_items_ref', 'recon_book_items', ['external_ref'], unique=False)
    op.create_table('recon_matches',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('bank_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('fee_minor', sa.BigInteger(), nullable=False),
    sa.Column('difference_minor', sa.BigInteger(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['bank_account_id'], ['recon_bank_accounts.id'], ),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_recon_matches_account', 'recon_matches', ['bank_account_id', 'created_at'], unique=False)
    op.create_table('recon_statements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('bank_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('statement_ref', sa.String(length=200), nullable=False),
    sa.Column('file_hash', sa.String(length=64), nullable=False),
    sa.Column('source_name', sa.String(length=300), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('format_version', sa.String(length=16), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=True),
    sa.Column('period_end', sa.Date(), nullable=True),
    sa.Column('opening_minor', sa.BigInteger(), nullable=True),
    sa.Column('opening_date', sa.Date(), nullable=True),
    sa.Column('opening_derived', sa.Boolean(), nullable=False),
    sa.Column('closing_minor', sa.BigInteger(), nullable=True),
    sa.Column('closing_date', sa.Date(), nullable=True),
    sa.Column('line_count', sa.Integer(), nullable=False),
    sa.Column('new_line_count', sa.Integer(), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('imported_by', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['bank_account_id'], ['recon_bank_accounts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('bank_account_id', 'file_hash', 'statement_ref', name='uq_recon_statements_file')
    )
    op.create_index('ix_recon_statements_account_closing', 'recon_statements', ['bank_account_id', 'closing_date'], unique=False)
    op.create_table('recon_sync_cursors',
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_table('recon_match_items',
    sa.Column('match_id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('account_seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['account_id', 'account_seq'], ['recon_book_items.account_id', 'recon_book_items.account_seq'], ),
    sa.ForeignKeyConstraint(['match_id'], ['recon_matches.id'], ),
    sa.PrimaryKeyConstraint('account_id', 'account_seq')
    )
    op.create_index(op.f('ix_recon_match_items_match_id'), 'recon_match_items', ['match_id'], unique=False)
    op.create_table('recon_statement_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('bank_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('statement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('line_identity', sa.String(length=64), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('value_date', sa.Date(), nullable=False),
    sa.Column('booking_date', sa.Date(), nullable=False),
    sa.Column('bank_reference', sa.String(length=200), nullable=True),
    sa.Column('end_to_end_id', sa.String(length=200), nullable=True),
    sa.Column('customer_reference', sa.String(length=200), nullable=True),
    sa.Column('counterparty_name', sa.String(length=300), nullable=True),
    sa.Column('counterparty_account', sa.String(length=100), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('transaction_code', sa.String(length=60), nullable=True),
    sa.Column('reversal', sa.Boolean(), nullable=False),
    sa.Column('batch', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.CheckConstraint("status IN ('open', 'matched', 'resolved')", name='ck_recon_lines_status'),
    sa.ForeignKeyConstraint(['bank_account_id'], ['recon_bank_accounts.id'], ),
    sa.ForeignKeyConstraint(['statement_id'], ['recon_statements.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('bank_account_id', 'line_identity', name='uq_recon_lines_identity')
    )
    op.create_index('ix_recon_lines_e2e', 'recon_statement_lines', ['bank_account_id', 'end_to_end_id'], unique=False)
    op.create_index('ix_recon_lines_open', 'recon_statement_lines', ['bank_account_id', 'status', 'booking_date'], unique=False)
    op.create_table('recon_exceptions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('bank_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('line_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('item_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('item_account_seq', sa.BigInteger(), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('candidates', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=120), nullable=True),
    sa.Column('resolution', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('match_id', sa.Uuid(), nullable=True),
    sa.CheckConstraint("kind IN ('statement_line', 'book_item')", name='ck_recon_exceptions_kind'),
    sa.CheckConstraint("status IN ('open', 'resolved')", name='ck_recon_exceptions_status'),
    sa.ForeignKeyConstraint(['bank_account_id'], ['recon_bank_accounts.id'], ),
    sa.ForeignKeyConstraint(['line_id'], ['recon_statement_lines.id'], ),
    sa.ForeignKeyConstraint(['match_id'], ['recon_matches.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_account_id', 'item_account_seq', name='uq_recon_exceptions_item'),
    sa.UniqueConstraint('line_id')
    )
    op.create_index('ix_recon_exceptions_open', 'recon_exceptions', ['bank_account_id', 'status', 'date'], unique=False)
    op.create_table('recon_match_lines',
    sa.Column('match_id', sa.Uuid(), nullable=False),
    sa.Column('line_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['line_id'], ['recon_statement_lines.id'], ),
    sa.ForeignKeyConstraint(['match_id'], ['recon_matches.id'], ),
    sa.PrimaryKeyConstraint('line_id')
    )
    op.create_index(op.f('ix_recon_match_lines_match_id'), 'recon_match_lines', ['match_id'], unique=False)
    op.create_table('recon_audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('bank_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('exception_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('match_id', sa.Uuid(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['bank_account_id'], ['recon_bank_accounts.id'], ),
    sa.ForeignKeyConstraint(['exception_id'], ['recon_exceptions.id'], ),
    sa.ForeignKeyConstraint(['match_id'], ['recon_matches.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_recon_audit_account', 'recon_audit', ['bank_account_id', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_recon_audit_account', table_name='recon_audit')
    op.drop_table('recon_audit')
    op.drop_index(op.f('ix_recon_match_lines_match_id'), table_name='recon_match_lines')
    op.drop_table('recon_match_lines')
    op.drop_index('ix_recon_exceptions_open', table_name='recon_exceptions')
    op.drop_table('recon_exceptions')
    op.drop_index('ix_recon_lines_open', table_name='recon_statement_lines')
    op.drop_index('ix_recon_lines_e2e', table_name='recon_statement_lines')
    op.drop_table('recon_statement_lines')
    op.drop_index(op.f('ix_recon_match_items_match_id'), table_name='recon_match_items')
    op.drop_table('recon_match_items')
    op.drop_table('recon_sync_cursors')
    op.drop_index('ix_recon_statements_account_closing', table_name='recon_statements')
    op.drop_table('recon_statements')
    op.drop_index('ix_recon_matches_account', table_name='recon_matches')
    op.drop_table('recon_matches')
    op.drop_index('ix_recon_items_ref', table_name='recon_book_items')
    op.drop_index('ix_recon_items_open_date', table_name='recon_book_items')
    op.drop_index('ix_recon_items_open_amount', table_name='recon_book_items')
    op.drop_index('ix_recon_items_entry', table_name='recon_book_items')
    op.drop_table('recon_book_items')
    op.drop_table('recon_bank_accounts')
