"""paycore console: staff users, their sessions, and the append-only console audit trail

Revision ID: 0025
Revises: 0024
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

_AUDIT_MESSAGE = "console_audit is append-only"
_PG_FUNCTION = f"""
CREATE FUNCTION console_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
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
        'staff_users',
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('full_name', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('risk', 'finance', 'payments', 'controller', 'viewer')",
                           name='ck_staff_users_role'),
        sa.CheckConstraint("status IN ('active', 'disabled')", name='ck_staff_users_status'),
        sa.PrimaryKeyConstraint('username'),
    )
    op.create_table(
        'staff_sessions',
        sa.Column('token_sha256', sa.String(length=64), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('csrf_token', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['username'], ['staff_users.username']),
        sa.PrimaryKeyConstraint('token_sha256'),
    )
    op.create_index('ix_staff_sessions_username', 'staff_sessions', ['username'], unique=False)
    op.create_table(
        'console_audit',
        sa.Column('id', _id(), autoincrement=True, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=120), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('action', sa.String(length=60), nullable=False),
        sa.Column('subject', sa.String(length=160), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('details', _json(), nullable=False),
        sa.CheckConstraint("outcome IN ('done', 'refused')", name='ck_console_audit_outcome'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_console_audit_subject', 'console_audit', ['subject', 'id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_PG_FUNCTION)
        op.execute("CREATE TRIGGER console_audit_append_only BEFORE UPDATE OR DELETE "
                   "ON console_audit FOR EACH ROW EXECUTE FUNCTION console_audit_append_only()")
        op.execute("CREATE TRIGGER console_audit_no_truncate BEFORE TRUNCATE "
                   "ON console_audit FOR EACH STATEMENT EXECUTE FUNCTION "
                   "console_audit_append_only()")
    else:
        for verb in ('UPDATE', 'DELETE'):
            op.execute(f"CREATE TRIGGER console_audit_no_{verb.lower()} BEFORE {verb} "
                       f"ON console_audit BEGIN SELECT RAISE(ABORT, "
                       f"'{_AUDIT_MESSAGE}: {verb} is not allowed'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TABLE console_audit")
        op.execute("DROP FUNCTION console_audit_append_only()")
    else:
        op.drop_index('ix_console_audit_subject', table_name='console_audit')
        op.drop_table('console_audit')
    op.drop_index('ix_staff_sessions_username', table_name='staff_sessions')
    op.drop_table('staff_sessions')
    op.drop_table('staff_users')
