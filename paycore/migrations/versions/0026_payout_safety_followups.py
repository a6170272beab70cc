"""gateways/lending: loan proceeds only to the register (borrowers' plaintext payout accounts dropped), an account a payout came back from is suspended (status_reason), payouts' old plaintext numbers masked

- `lending_borrowers.payout_name`, `payout_account`, `payout_bank` are dropped: a loan's
  proceeds go to the borrower's verified account in gateways' register (encrypted, verified
  by a second person, cooled off), like every supplier payout. A number stored there was
  never verified by anyone, so it is not carried into the register as if it were; each
  borrower that had one gets a row in `payout_control_audit`
  (`borrower.payout_account_dropped`, masked number and holder) so an operator knows whose
  account to register. Downgrade adds the columns back, empty.
- `beneficiary_accounts.status_reason`: why an account is not usable when the system
  (not a person) took it out of use — a payout to it came back (退票): it is `unverified`
  with the bank's reason until a second person verifies it again.
- `payouts.beneficiary_account` of payouts recorded before the register (0015) kept the
  full number: masked in place (last four). The payouts table is the payout's domain
  state, not the ledger (the journal is untouched and never held a number). A payout of
  those still waiting to be sent is withdrawn by the submitter, never sent to a masked
  number (gateways.payout_accounts). Downgrade cannot unmask: the numbers stay masked.

Revision ID: 0026
Revises: 0025
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ledger import UTCDateTime

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

_ACTOR = 'system:migration-0026'


def _mask(number: str) -> str:
    # gateways.account_keys.mask, kept here as it is today: a migration does not change
    # with the code
    return '***' + number[-4:] if len(number) > 4 else '***'


def _audit_table() -> sa.TableClause:
    return sa.table(
        'payout_control_audit',
        sa.column('at', UTCDateTime()), sa.column('actor', sa.String()),
        sa.column('action', sa.String()), sa.column('supplier_id', sa.String()),
        sa.column('subject_id', sa.String()),
        sa.column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')))


def upgrade() -> None:
    bind = op.get_bind()
    borrowers = sa.table('lending_borrowers', sa.column('id', sa.String()),
                         sa.column('payout_name', sa.String()),
                         sa.column('payout_account', sa.String()),
                         sa.column('payout_bank', sa.String()))
    had = bind.execute(sa.select(borrowers).where(
        borrowers.c.payout_account.is_not(None), borrowers.c.payout_account != '')
        .order_by(borrowers.c.id)).all()
    now = dt.datetime.now(dt.UTC)
    if had:
        bind.execute(_audit_table().insert(), [dict(
            at=now, actor=_ACTOR, action='borrower.payout_account_dropped',
            supplier_id=row.id[:64], subject_id=row.id[:64],
            details={'account': _mask(row.payout_account), 'holder_name': row.payout_name or '',
                     'bank_name': row.payout_bank or '',
                     'why': 'kept in plain text and never verified: register the account '
                            '(paycore beneficiaries add) and have a second person verify it '
                            'before loan proceeds are paid out'})
            for row in had])
    # plain ALTER TABLE on both databases (SQLite >= 3.35): no table rebuild, so the loans
    # that refer to their borrower stay as they are
    for column in ('payout_name', 'payout_account', 'payout_bank'):
        op.execute(f'ALTER TABLE lending_borrowers DROP COLUMN {column}')

    op.add_column('beneficiary_accounts',
                  sa.Column('status_reason', sa.String(length=500), nullable=True))

    payouts = sa.table('payouts', sa.column('id', sa.String()),
                       sa.column('beneficiary_account', sa.String()))
    plain = bind.execute(sa.select(payouts.c.id, payouts.c.beneficiary_account).where(
        ~payouts.c.beneficiary_account.contains('*'))).all()
    for row in plain:
        bind.execute(payouts.update().where(payouts.c.id == row.id).values(
            beneficiary_account=_mask(row.beneficiary_account)))


def downgrade() -> None:
    op.execute('ALTER TABLE beneficiary_accounts DROP COLUMN status_reason')
    op.add_column('lending_borrowers',
                  sa.Column('payout_name', sa.String(length=200), nullable=True))
    op.add_column('lending_borrowers',
                  sa.Column('payout_account', sa.String(length=64), nullable=True))
    op.add_column('lending_borrowers',
                  sa.Column('payout_bank', sa.String(length=120), nullable=True))
