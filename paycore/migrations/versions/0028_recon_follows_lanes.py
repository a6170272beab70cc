"""reconciliation: the ledger follower keeps a cursor per (account, lane) — `recon_sync_cursors`
gains `lane` in its primary key, so a laned account's lower lanes are never skipped.

An existing cursor becomes the cursor of the lane its position is in. The one-position
follower read every lane up to that position when it moved there, and within a lane
postings commit in sequence order, so that lane is exact up to it; higher lanes get no
row (read from their start: nothing above the position was read); lower lanes also get
none and are read again from their start, because the old follower may have skipped some
of their postings — what it did copy is not copied twice (book items are keyed by the
posting's identity, and the copy skips existing ones).

Downgrade keeps one position per account: the lowest of its lanes' positions (a lane
without a row counts from its start), so the old follower misses nothing; what it reads
again is again skipped by the items' key.

Revision ID: 0028
Revises: 0027
"""
import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

_STRIDE = 1 << 40  # ledger.schema.LANE_STRIDE as of migration 0022


def _cursors_table(name: str, laned: bool) -> None:
    op.create_table(
        name,
        sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=False, nullable=False),
        *([sa.Column('lane', sa.Integer(), server_default='0', autoincrement=False,
                     nullable=False)] if laned else []),
        sa.Column('last_seq', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('account_id', *(['lane'] if laned else [])),
    )


def _rebuild_sqlite(laned: bool, copy: str) -> None:
    """SQLite cannot change a primary key in place: a new table, filled, renamed."""
    _cursors_table('recon_sync_cursors_rebuilt', laned)
    op.execute(copy.replace('{target}', 'recon_sync_cursors_rebuilt'))
    op.drop_table('recon_sync_cursors')
    op.rename_table('recon_sync_cursors_rebuilt', 'recon_sync_cursors')


def upgrade() -> None:
    if op.get_context().dialect.name == 'sqlite':
        _rebuild_sqlite(True, "INSERT INTO {target} (account_id, lane, last_seq) "
                              f"SELECT account_id, last_seq / {_STRIDE}, last_seq "
                              "FROM recon_sync_cursors")
        return
    op.add_column('recon_sync_cursors', sa.Column('lane', sa.Integer(), server_default='0',
                                                  autoincrement=False, nullable=False))
    op.execute(f"UPDATE recon_sync_cursors SET lane = last_seq / {_STRIDE}")
    op.drop_constraint('recon_sync_cursors_pkey', 'recon_sync_cursors', type_='primary')
    op.create_primary_key('recon_sync_cursors_pkey', 'recon_sync_cursors', ['account_id', 'lane'])


# each account followed: the lowest of its lanes' positions, a lane without a row at its start
_LOWEST = (
    f"SELECT b.account_id, min(coalesce(c.last_seq, b.lane * {_STRIDE})) AS last_seq"
    " FROM account_balances b LEFT JOIN recon_sync_cursors c"
    " ON c.account_id = b.account_id AND c.lane = b.lane"
    " WHERE b.account_id IN (SELECT account_id FROM recon_sync_cursors)"
    " GROUP BY b.account_id")


def downgrade() -> None:
    if op.get_context().dialect.name == 'sqlite':
        _rebuild_sqlite(False, "INSERT INTO {target} (account_id, last_seq) " + _LOWEST)
        return
    op.execute("CREATE TEMPORARY TABLE recon_sync_cursors_lowest AS " + _LOWEST)
    op.execute("DELETE FROM recon_sync_cursors")
    op.drop_constraint('recon_sync_cursors_pkey', 'recon_sync_cursors', type_='primary')
    op.drop_column('recon_sync_cursors', 'lane')
    op.create_primary_key('recon_sync_cursors_pkey', 'recon_sync_cursors', ['account_id'])
    op.execute("INSERT INTO recon_sync_cursors (account_id, last_seq)"
               " SELECT account_id, last_seq FROM recon_sync_cursors_lowest")
    op.execute("DROP TABLE recon_sync_cursors_lowest")
