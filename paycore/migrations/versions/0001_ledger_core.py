"""ledger core: accounts, balances, journal entries, postings, holds, and the triggers that
keep the books append-only and balanced.

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 12:36:19.694643
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ledger import ddl

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=120), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance_limit', sa.String(length=40), nullable=True),
    sa.Column('owner_ref', sa.String(length=120), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='open', nullable=False),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("balance_limit IS NULL OR balance_limit IN ('debits_must_not_exceed_credits', 'credits_must_not_exceed_debits')", name='ck_accounts_balance_limit'),
    sa.CheckConstraint("status IN ('open', 'closed')", name='ck_accounts_status'),
    sa.CheckConstraint("type IN ('asset', 'liability', 'equity', 'income', 'expense')", name='ck_accounts_type'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_owner_ref'), ['owner_ref'], unique=False)

    op.create_table('journal_entries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=80), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('booked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reverses_entry_id', sa.Uuid(), nullable=True),
    sa.Column('external_ref', sa.String(length=200), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['reverses_entry_id'], ['journal_entries.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key'),
    sa.UniqueConstraint('reverses_entry_id')
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_entries_external_ref'), ['external_ref'], unique=False)

    op.create_table('account_balances',
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('balance_limit', sa.String(length=40), nullable=True),
    sa.Column('posted_debits', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('posted_credits', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('pending_debits', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('pending_credits', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('seq', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint("balance_limit IS NULL OR (balance_limit = 'debits_must_not_exceed_credits'     AND posted_debits + pending_debits <= posted_credits) OR (balance_limit = 'credits_must_not_exceed_debits'     AND posted_credits + pending_credits <= posted_debits)", name='ck_account_balances_limit'),
    sa.CheckConstraint('posted_debits >= 0 AND posted_credits >= 0 AND pending_debits >= 0 AND pending_credits >= 0 AND seq >= 0', name='ck_account_balances_non_negative'),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_table('holds',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=80), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('external_ref', sa.String(length=200), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('posted_entry_id', sa.Uuid(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'posted', 'voided', 'expired')", name='ck_holds_status'),
    sa.ForeignKeyConstraint(['posted_entry_id'], ['journal_entries.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_holds_external_ref'), ['external_ref'], unique=False)
        batch_op.create_index('ix_holds_pending_expiry', ['status', 'expires_at'], unique=False)

    op.create_table('postings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entry_id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('account_seq', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('booked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('amount <> 0', name='ck_postings_amount_nonzero'),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], initially='DEFERRED', deferrable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'account_seq', name='uq_postings_account_seq')
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index('ix_postings_account_booked', ['account_id', 'booked_at', 'account_seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_postings_entry_id'), ['entry_id'], unique=False)

    op.create_table('hold_legs',
    sa.Column('hold_id', sa.Uuid(), nullable=False),
    sa.Column('leg_no', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.CheckConstraint('amount <> 0', name='ck_hold_legs_amount_nonzero'),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['hold_id'], ['holds.id'], ),
    sa.PrimaryKeyConstraint('hold_id', 'leg_no')
    )
    with op.batch_alter_table('hold_legs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hold_legs_account_id'), ['account_id'], unique=False)

    for statement in ddl.create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in ddl.drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    with op.batch_alter_table('hold_legs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hold_legs_account_id'))

    op.drop_table('hold_legs')
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_postings_entry_id'))
        batch_op.drop_index('ix_postings_account_booked')

    op.drop_table('postings')
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.drop_index('ix_holds_pending_expiry')
        batch_op.drop_index(batch_op.f('ix_holds_external_ref'))

    op.drop_table('holds')
    op.drop_table('account_balances')
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_entries_external_ref'))

    op.drop_table('journal_entries')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_owner_ref'))

    op.drop_table('accounts')
