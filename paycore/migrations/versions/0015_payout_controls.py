"""payout controls: suppliers' bank-account register (encrypted), supplier payouts with maker-checker, an append-only audit, API key holders and merchant-supplier bindings

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_AUDIT_MESSAGE = "payout_control_audit is append-only"
_PG_FUNCTION = f"""
CREATE FUNCTION payout_control_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '{_AUDIT_MESSAGE}: % is not allowed', TG_OP;
END $$
"""


def _id() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _json() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'beneficiary_accounts',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('supplier_id', sa.String(length=64), nullable=False),
        sa.Column('holder_name', sa.String(length=140), nullable=False),
        sa.Column('bank_name', sa.String(length=140), nullable=False),
        sa.Column('account_ciphertext', sa.Text(), nullable=False),
        sa.Column('key_id', sa.String(length=32), nullable=False),
        sa.Column('account_hmac', sa.String(length=64), nullable=False),
        sa.Column('account_last4', sa.String(length=4), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_by', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('changed_by', sa.String(length=120), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('verified_by', sa.String(length=120), nullable=True),
        sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('unverified', 'verified', 'retired')",
                           name='ck_beneficiary_accounts_status'),
        sa.CheckConstraint("status <> 'verified' OR (verified_by IS NOT NULL "
                           "AND verified_by <> changed_by)",
                           name='ck_beneficiary_accounts_four_eyes'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_beneficiary_accounts_supplier', 'beneficiary_accounts',
                    ['supplier_id', 'status'], unique=False)
    op.create_index('ix_beneficiary_accounts_hmac', 'beneficiary_accounts',
                    ['account_hmac'], unique=False)
    op.create_table(
        'supplier_payouts',
        sa.Column('payout_id', sa.String(length=64), nullable=False),
        sa.Column('supplier_id', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.String(length=64), nullable=False),
        sa.Column('account_changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('requested_by', sa.String(length=120), nullable=False),
        sa.Column('approval_reason', sa.Text(), nullable=True),
        sa.Column('decided_by', sa.String(length=120), nullable=True),
        sa.Column('decision', sa.String(length=16), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("decision IS NULL OR decision IN ('approved', 'rejected')",
                           name='ck_supplier_payouts_decision'),
        sa.CheckConstraint("decision IS NULL OR decision <> 'approved' OR decided_by <> requested_by",
                           name='ck_supplier_payouts_four_eyes'),
        sa.ForeignKeyConstraint(['account_id'], ['beneficiary_accounts.id']),
        sa.ForeignKeyConstraint(['payout_id'], ['payouts.id']),
        sa.PrimaryKeyConstraint('payout_id'),
    )
    op.create_index('ix_supplier_payouts_supplier_id', 'supplier_payouts', ['supplier_id'],
                    unique=False)
    op.create_table(
        'payout_control_audit',
        sa.Column('id', _id(), autoincrement=True, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=120), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('supplier_id', sa.String(length=64), nullable=False),
        sa.Column('subject_id', sa.String(length=64), nullable=False),
        sa.Column('details', _json(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_payout_control_audit_subject', 'payout_control_audit',
                    ['subject_id', 'id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_PG_FUNCTION)
        op.execute("CREATE TRIGGER payout_control_audit_append_only BEFORE UPDATE OR DELETE "
                   "ON payout_control_audit FOR EACH ROW EXECUTE FUNCTION "
                   "payout_control_audit_append_only()")
        op.execute("CREATE TRIGGER payout_control_audit_no_truncate BEFORE TRUNCATE "
                   "ON payout_control_audit FOR EACH STATEMENT EXECUTE FUNCTION "
                   "payout_control_audit_append_only()")
    else:
        for verb in ('UPDATE', 'DELETE'):
            op.execute(f"CREATE TRIGGER payout_control_audit_no_{verb.lower()} BEFORE {verb} "
                       f"ON payout_control_audit BEGIN SELECT RAISE(ABORT, "
                       f"'{_AUDIT_MESSAGE}: {verb} is not allowed'); END")
    with op.batch_alter_table('api_keys') as batch_op:
        batch_op.add_column(sa.Column('holder', sa.String(length=120), nullable=True))
    op.create_table(
        'api_supplier_bindings',
        sa.Column('merchant_id', sa.String(length=120), nullable=False),
        sa.Column('supplier_id', sa.String(length=64), nullable=False),
        sa.Column('created_by', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('merchant_id', 'supplier_id'),
    )


def downgrade() -> None:
    op.drop_table('api_supplier_bindings')
    with op.batch_alter_table('api_keys') as batch_op:
        batch_op.drop_column('holder')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TABLE payout_control_audit")
        op.execute("DROP FUNCTION payout_control_audit_append_only()")
    else:
        op.drop_index('ix_payout_control_audit_subject', table_name='payout_control_audit')
        op.drop_table('payout_control_audit')
    op.drop_index('ix_supplier_payouts_supplier_id', table_name='supplier_payouts')
    op.drop_table('supplier_payouts')
    op.drop_index('ix_beneficiary_accounts_hmac', table_name='beneficiary_accounts')
    op.drop_index('ix_beneficiary_accounts_supplier', table_name='beneficiary_accounts')
    op.drop_table('beneficiary_accounts')
