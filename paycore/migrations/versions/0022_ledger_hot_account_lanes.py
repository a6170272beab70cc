"""ledger: hot accounts split into lanes — `accounts.lanes`, one `account_balances` row per
(account, lane) with its own sums, sequence range, chain head and last booking time; the
write functions lock one lane per account (the session's slot, `ledger_lane_slot()`), so
writers to one unlimited account no longer queue on one row. Every existing row is lane 0.

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

from ledger import ddl_lanes

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

_STRIDE = 1 << 40
_LANES_CHECK = "lanes >= 1 AND (balance_limit IS NULL OR lanes = 1)"
_LANE_SEQ_CHECK = f"lane >= 0 AND seq >= lane * {_STRIDE} AND seq < (lane + 1) * {_STRIDE}"
_LIMIT_CHECK = (
    "balance_limit IS NULL OR (balance_limit = 'debits_must_not_exceed_credits'"
    "     AND posted_debits + pending_debits <= posted_credits)"
    " OR (balance_limit = 'credits_must_not_exceed_debits'"
    "     AND posted_credits + pending_credits <= posted_debits)")
_NON_NEGATIVE_CHECK = ("posted_debits >= 0 AND posted_credits >= 0 AND pending_debits >= 0"
                       " AND pending_credits >= 0 AND seq >= 0")
_COLUMNS = ("account_id", "balance_limit", "posted_debits", "posted_credits", "pending_debits",
            "pending_credits", "seq", "head_hash", "last_booked_at")


def _balances_table(name: str, laned: bool) -> None:
    op.create_table(
        name,
        sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=False, nullable=False),
        *([sa.Column('lane', sa.Integer(), server_default='0', autoincrement=False,
                     nullable=False)] if laned else []),
        sa.Column('balance_limit', sa.String(length=40), nullable=True),
        sa.Column('posted_debits', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('posted_credits', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('pending_debits', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('pending_credits', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('seq', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('head_hash', sa.String(length=64), nullable=False),
        sa.Column('last_booked_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_LIMIT_CHECK, name='ck_account_balances_limit'),
        sa.CheckConstraint(_NON_NEGATIVE_CHECK, name='ck_account_balances_non_negative'),
        *([sa.CheckConstraint(_LANE_SEQ_CHECK, name='ck_account_balances_lane_seq')]
          if laned else []),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.PrimaryKeyConstraint('account_id', *(['lane'] if laned else [])),
    )


def _rebuild_balances_on_sqlite(laned: bool) -> None:
    """SQLite changes a primary key only by building the table anew (nothing refers to
    `account_balances`, and no trigger names it)."""
    _balances_table('account_balances_rebuilt', laned)
    names = ", ".join(_COLUMNS)
    op.execute(f"INSERT INTO account_balances_rebuilt ({names}) SELECT {names} "
               "FROM account_balances" + ("" if laned else " WHERE lane = 0"))
    op.drop_table('account_balances')
    op.rename_table('account_balances_rebuilt', 'account_balances')


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        # (a column's own CHECK: SQLite adds no table constraint without a rebuild, and
        # rebuilding `accounts` would trip every foreign key that names it)
        op.execute("ALTER TABLE accounts ADD COLUMN lanes INTEGER DEFAULT '1' NOT NULL "
                   f"CONSTRAINT ck_accounts_lanes CHECK ({_LANES_CHECK})")
        _rebuild_balances_on_sqlite(laned=True)
        return
    op.add_column('accounts', sa.Column('lanes', sa.Integer(), server_default='1',
                                        nullable=False))
    op.create_check_constraint('ck_accounts_lanes', 'accounts', _LANES_CHECK)
    op.add_column('account_balances', sa.Column('lane', sa.Integer(), server_default='0',
                                                autoincrement=False, nullable=False))
    op.drop_constraint('account_balances_pkey', 'account_balances', type_='primary')
    op.create_primary_key('account_balances_pkey', 'account_balances', ['account_id', 'lane'])
    op.create_check_constraint('ck_account_balances_lane_seq', 'account_balances',
                               _LANE_SEQ_CHECK)
    for statement in ddl_lanes.create_statements(dialect):
        op.execute(statement)


def _refuse_if_lanes_hold_postings() -> None:
    laned = op.get_bind().execute(sa.text(
        "SELECT a.code FROM account_balances b JOIN accounts a ON a.id = b.account_id"
        f" WHERE b.lane > 0 AND (b.seq > b.lane * {_STRIDE} OR b.pending_debits > 0"
        " OR b.pending_credits > 0) ORDER BY a.code LIMIT 5")).scalars().all()
    if laned:
        raise RuntimeError(
            "cannot downgrade below 0022: postings live in lanes other than lane 0 of "
            f"{', '.join(laned)}; a ledger without lanes has no place for them (their "
            "sequence numbers and chains are their lanes')")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _refuse_if_lanes_hold_postings()
    if dialect == 'sqlite':
        _rebuild_balances_on_sqlite(laned=False)
        op.execute("ALTER TABLE accounts DROP COLUMN lanes")
        return
    for statement in ddl_lanes.drop_statements(dialect):
        op.execute(statement)
    op.execute("DELETE FROM account_balances WHERE lane > 0")
    op.drop_constraint('ck_account_balances_lane_seq', 'account_balances', type_='check')
    op.drop_constraint('account_balances_pkey', 'account_balances', type_='primary')
    op.create_primary_key('account_balances_pkey', 'account_balances', ['account_id'])
    op.drop_column('account_balances', 'lane')
    op.drop_constraint('ck_accounts_lanes', 'accounts', type_='check')
    op.drop_column('accounts', 'lanes')
