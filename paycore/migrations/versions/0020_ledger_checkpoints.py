"""ledger: the checkpoint log (`ledger_checkpoints`), one append-only row per signed checkpoint

Revision ID: 0020
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

from ledger import ddl

revision = '0020'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ledger_checkpoints',
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('key_id', sa.String(length=64), nullable=False),
        sa.Column('root', sa.String(length=64), nullable=False),
        sa.Column('entry_count', sa.BigInteger(), nullable=False),
        sa.Column('account_count', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('hash'),
    )
    for statement in ddl.checkpoint_log_create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in ddl.checkpoint_log_drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table('ledger_checkpoints')
