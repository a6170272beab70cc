"""gateways/api: four eyes compare people, not spellings — `beneficiary_accounts.number_entered_by` (who typed the number: never its verifier, in the CHECK too), actors and key holders in one spelling

- `beneficiary_accounts.number_entered_by`: who typed the account number now registered.
  Filled from the payout-control audit trail (the last `account.added`, or
  `account.changed` that set a number), else the account's creator. The four-eyes CHECK
  now refuses a verifier equal to it or to `changed_by`, compared case-insensitively.
  An account verified today by the person who typed its number (possible before: a
  cosmetic change by someone else let her) is made `unverified` again with a
  `status_reason`, and the trail says so (`account.verification_withdrawn`).
- Actors are compared in one spelling (trimmed, lower-case: gateways'
  `normalise_actor`): the register's and supplier payouts' actor columns and API keys'
  holders are brought to it. A payout approved by its own requester under another
  spelling is left as recorded (money may have left; it cannot be undone here) and named
  in the trail (`payout.four_eyes_breach_found`) for someone to look at.

The audit trail itself is append-only and keeps its spellings. Downgrade drops the column
and restores the old CHECK; spellings stay normalised.

Revision ID: 0029
Revises: 0028
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ledger import UTCDateTime

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

_ACTOR = 'system:migration-0029'
_OLD_CHECK = "status <> 'verified' OR (verified_by IS NOT NULL AND verified_by <> changed_by)"
_NEW_CHECK = ("status <> 'verified' OR (verified_by IS NOT NULL "
              "AND lower(verified_by) <> lower(changed_by) "
              "AND lower(verified_by) <> lower(number_entered_by))")
_FOUR_EYES = 'ck_beneficiary_accounts_four_eyes'


def _normal(actor: str | None) -> str | None:
    # gateways.beneficiaries.normalise_actor as of this revision
    if actor is None:
        return None
    kind, sep, name = actor.strip().partition(':')
    return f'{kind.strip().lower()}{sep}{name.strip().casefold()}'


def _audit_table() -> sa.TableClause:
    return sa.table(
        'payout_control_audit',
        sa.column('id', sa.Integer()), sa.column('at', UTCDateTime()),
        sa.column('actor', sa.String()), sa.column('action', sa.String()),
        sa.column('supplier_id', sa.String()), sa.column('subject_id', sa.String()),
        sa.column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')))


def _accounts_table(with_entered_by: bool) -> sa.Table:
    """beneficiary_accounts as it stands (for SQLite's table rebuild, which cannot reflect
    named CHECKs reliably)."""
    columns: list[sa.Column[object]] = [
        sa.Column('id', sa.String(length=64), primary_key=True),
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
        sa.Column('status_reason', sa.String(length=500), nullable=True),
    ]
    if with_entered_by:
        columns.append(sa.Column('number_entered_by', sa.String(length=120), nullable=False))
    return sa.Table(
        'beneficiary_accounts', sa.MetaData(), *columns,
        sa.CheckConstraint("status IN ('unverified', 'verified', 'retired')",
                           name='ck_beneficiary_accounts_status'),
        sa.CheckConstraint(_NEW_CHECK if with_entered_by else _OLD_CHECK, name=_FOUR_EYES),
        sa.Index('ix_beneficiary_accounts_supplier', 'supplier_id', 'status'),
        sa.Index('ix_beneficiary_accounts_hmac', 'account_hmac'))


def _entered_by(bind: sa.Connection) -> dict[str, str]:
    """Who typed each account's current number, from the trail (oldest first)."""
    trail = _audit_table()
    found: dict[str, str] = {}
    for row in bind.execute(sa.select(trail.c.subject_id, trail.c.actor, trail.c.action,
                                      trail.c.details)
                            .where(trail.c.action.in_(('account.added', 'account.changed')))
                            .order_by(trail.c.id)):
        if row.action == 'account.added' or 'account' in (row.details or {}):
            found[row.subject_id] = _normal(row.actor) or row.actor
    return found


def _normalise_accounts(bind: sa.Connection, now: dt.datetime) -> None:
    accounts = sa.table('beneficiary_accounts', *(sa.column(c) for c in (
        'id', 'supplier_id', 'status', 'created_by', 'changed_by', 'verified_by',
        'number_entered_by')), sa.column('verified_at', UTCDateTime()),
        sa.column('status_reason', sa.String()), sa.column('updated_at', UTCDateTime()))
    typed = _entered_by(bind)
    withdrawn = []
    for row in bind.execute(sa.select(accounts)).all():
        entered = typed.get(row.id) or _normal(row.created_by)
        values: dict[str, object] = {
            'created_by': _normal(row.created_by), 'changed_by': _normal(row.changed_by),
            'verified_by': _normal(row.verified_by), 'number_entered_by': entered}
        if row.status == 'verified' and values['verified_by'] in (entered,
                                                                  values['changed_by']):
            values.update(status='unverified', verified_by=None, verified_at=None,
                          updated_at=now,
                          status_reason=f"verified by {row.verified_by}, who entered its "
                                        "number: a second person must verify it "
                                        "(migration 0029)")
            withdrawn.append(row)
        bind.execute(accounts.update().where(accounts.c.id == row.id).values(**values))
    if withdrawn:
        bind.execute(_audit_table().insert(), [dict(
            at=now, actor=_ACTOR, action='account.verification_withdrawn',
            supplier_id=row.supplier_id, subject_id=row.id,
            details={'verified_by': row.verified_by,
                     'why': 'the verifier entered the account number'})
            for row in withdrawn])


def _normalise_payouts_and_keys(bind: sa.Connection, now: dt.datetime) -> None:
    payouts = sa.table('supplier_payouts', sa.column('payout_id'), sa.column('supplier_id'),
                       sa.column('requested_by'), sa.column('decided_by'),
                       sa.column('decision'))
    breaches = []
    for row in bind.execute(sa.select(payouts)).all():
        requested, decided = _normal(row.requested_by), _normal(row.decided_by)
        if row.decision == 'approved' and requested == decided:
            breaches.append(row)  # the CHECK (decided_by <> requested_by) keeps them apart
            continue
        bind.execute(payouts.update().where(payouts.c.payout_id == row.payout_id).values(
            requested_by=requested, decided_by=decided))
    if breaches:
        bind.execute(_audit_table().insert(), [dict(
            at=now, actor=_ACTOR, action='payout.four_eyes_breach_found',
            supplier_id=row.supplier_id, subject_id=row.payout_id,
            details={'requested_by': row.requested_by, 'approved_by': row.decided_by,
                     'why': 'one person under two spellings requested and approved it'})
            for row in breaches])
    keys = sa.table('api_keys', sa.column('id'), sa.column('holder'))
    for row in bind.execute(sa.select(keys).where(keys.c.holder.is_not(None))).all():
        bind.execute(keys.update().where(keys.c.id == row.id).values(
            holder=row.holder.strip().lower()))


def upgrade() -> None:
    bind = op.get_bind()
    now = dt.datetime.now(dt.UTC)
    op.add_column('beneficiary_accounts',
                  sa.Column('number_entered_by', sa.String(length=120), nullable=True))
    _normalise_accounts(bind, now)
    _normalise_payouts_and_keys(bind, now)
    if bind.dialect.name == 'sqlite':
        # a CHECK changes only with a rebuild; supplier_payouts refers to the table, so its
        # foreign keys are checked at commit (the new table has the old one's name by then)
        op.execute('PRAGMA defer_foreign_keys = ON')
        with op.batch_alter_table('beneficiary_accounts', recreate='always',
                                  copy_from=_accounts_table(with_entered_by=True)) as batch:
            batch.alter_column('number_entered_by', existing_type=sa.String(length=120),
                               nullable=False)
        return
    op.alter_column('beneficiary_accounts', 'number_entered_by', nullable=False)
    op.drop_constraint(_FOUR_EYES, 'beneficiary_accounts', type_='check')
    op.create_check_constraint(_FOUR_EYES, 'beneficiary_accounts', _NEW_CHECK)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        op.execute('PRAGMA defer_foreign_keys = ON')
        with op.batch_alter_table('beneficiary_accounts', recreate='always',
                                  copy_from=_accounts_table(with_entered_by=True)) as batch:
            batch.drop_constraint(_FOUR_EYES, type_='check')
            batch.drop_column('number_entered_by')
            batch.create_check_constraint(_FOUR_EYES, sa.text(_OLD_CHECK))
        return
    op.drop_constraint(_FOUR_EYES, 'beneficiary_accounts', type_='check')
    op.drop_column('beneficiary_accounts', 'number_entered_by')
    op.create_check_constraint(_FOUR_EYES, 'beneficiary_accounts', _OLD_CHECK)
