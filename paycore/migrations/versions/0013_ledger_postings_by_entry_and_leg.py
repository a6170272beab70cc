"""ledger: a posting is (entry id, leg number): the surrogate `postings.id`, its sequence and
its index go, and the primary key (entry_id, leg_no) also stands in for
`ix_postings_entry_id`; one nextval and one index insert fewer per posting

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

from ledger import ddl

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_COMMON = ('account_id', 'amount', 'currency', 'account_seq', 'balance_after', 'booked_at',
           'effective_date', 'hash')


def _columns() -> list[sa.schema.SchemaItem]:
    return [
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
        sa.UniqueConstraint('account_id', 'account_seq', name='uq_postings_account_seq'),
    ]


def _rebuild_on_sqlite(table: list[sa.schema.SchemaItem], select_new: str, indexes: bool) -> None:
    """SQLite alters a primary key only by building the table anew: the triggers that name
    `postings` are dropped first (a rename re-checks them all) and made again after."""
    triggers = ddl.sqlite_triggers_naming_postings()
    for name in triggers:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.create_table('postings_rebuilt', *table)
    names = ", ".join(c.name for c in table if isinstance(c, sa.Column))
    op.execute(f"INSERT INTO postings_rebuilt ({names}) {select_new}")
    op.drop_table('postings')
    op.rename_table('postings_rebuilt', 'postings')
    if indexes:
        op.create_index('ix_postings_entry_id', 'postings', ['entry_id'], unique=False)
    for statement in triggers.values():
        op.execute(statement)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        _rebuild_on_sqlite(
            [sa.Column('entry_id', sa.Uuid(), nullable=False),
             sa.Column('leg_no', sa.Integer(), autoincrement=False, nullable=False),
             *_columns(), sa.PrimaryKeyConstraint('entry_id', 'leg_no')],
            "SELECT entry_id, row_number() OVER (PARTITION BY entry_id ORDER BY id), "
            f"{', '.join(_COMMON)} FROM postings",
            indexes=False)
        return
    for statement in ddl.numbered_legs_create_statements(dialect):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        _rebuild_on_sqlite(
            [sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
             sa.Column('entry_id', sa.Uuid(), nullable=False),
             *_columns(), sa.PrimaryKeyConstraint('id')],
            "SELECT row_number() OVER (ORDER BY entry_id, leg_no), entry_id, "
            f"{', '.join(_COMMON)} FROM postings",
            indexes=True)
        return
    for statement in ddl.numbered_legs_drop_statements(dialect):
        op.execute(statement)
