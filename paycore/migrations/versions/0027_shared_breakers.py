"""gateways and service: circuit-breaker state shared by all processes (bank_health gains the failure window and the half-open probe token); webhook secrets sealed under the key ring; jobs carry the request id that queued them

`bank_health` becomes the breakers' shared state, read and updated with conditional
updates by every API and job worker (`gateways.breakers`): the start of the current failure
window, and the half-open probe a single process holds (token, until when). `state` is
checked.

`webhook_endpoints.secret` / `previous_secret` hold the signing secrets sealed (AES-GCM under
the account key ring, bound to the endpoint); `secret_key_id` / `previous_secret_key_id`
name the key (NULL: a secret stored before this revision, still plain until `paycore
webhooks rekey` seals it).

`jobs.request_id`: the API request that queued the job (the worker logs it with the job id).

Revision ID: 0027
Revises: 0026
"""
import sqlalchemy as sa
from alembic import op

from ledger import UTCDateTime

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bank_health', schema=None) as batch_op:
        batch_op.add_column(sa.Column('window_started_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('probe_token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('probe_expires_at', UTCDateTime(), nullable=True))
        batch_op.create_check_constraint(
            'ck_bank_health_state', "state IN ('closed', 'open', 'half_open')")
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.String(length=100),
                              type_=sa.String(length=200), existing_nullable=False)
        batch_op.alter_column('previous_secret', existing_type=sa.String(length=100),
                              type_=sa.String(length=200), existing_nullable=True)
        batch_op.add_column(sa.Column('secret_key_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_key_id', sa.String(length=32),
                                      nullable=True))
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=128), nullable=True))


def downgrade() -> None:
    sealed = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM webhook_endpoints WHERE secret_key_id IS NOT NULL "
        "OR previous_secret_key_id IS NOT NULL")).scalar()
    if sealed:
        raise RuntimeError(
            f"{sealed} webhook endpoint(s) hold sealed secrets, which the older schema would "
            "read as plain text: rotate or delete them before downgrading below 0027")
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('request_id')
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_column('previous_secret_key_id')
        batch_op.drop_column('secret_key_id')
        batch_op.alter_column('previous_secret', existing_type=sa.String(length=200),
                              type_=sa.String(length=100), existing_nullable=True)
        batch_op.alter_column('secret', existing_type=sa.String(length=200),
                              type_=sa.String(length=100), existing_nullable=False)
    with op.batch_alter_table('bank_health', schema=None) as batch_op:
        batch_op.drop_constraint('ck_bank_health_state', type_='check')
        batch_op.drop_column('probe_expires_at')
        batch_op.drop_column('probe_token')
        batch_op.drop_column('window_started_at')
