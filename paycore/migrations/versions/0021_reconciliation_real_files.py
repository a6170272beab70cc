"""reconciliation: statements keep the warnings of a lenient read; lines carry a review flag

`recon_statements.warnings` lists what was read although it departs from the format's
standard (e.g. an MT940 customer reference longer than 16 characters);
`recon_statement_lines.review_flag` says why a batch line is kept out of the
net-of-fees rule (its details contradict the entry) until a person looks.

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTER TABLE on both databases (SQLite adds and, from 3.35, drops a column
    # in place), so the tables that refer to these are left alone
    op.add_column('recon_statements', sa.Column(
        'warnings',
        sa.JSON(none_as_null=True).with_variant(
            postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'),
        nullable=True))
    op.add_column('recon_statement_lines', sa.Column('review_flag', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('recon_statement_lines', 'review_flag')
    op.drop_column('recon_statements', 'warnings')
