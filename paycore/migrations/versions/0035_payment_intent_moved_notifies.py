"""0035: a payment intent whose status changes notifies channel `paycore_intent_moved`
with its id, on PostgreSQL, so a checkout page waiting on `GET
/v1/payment-intents/{id}?wait=N` in any worker process hears the move as it commits
(LISTEN/NOTIFY deliver on commit, never for a rolled-back change) instead of polling.

A trigger, not a statement in each writer: every path that moves an intent (notification,
inquiry, janitor, expiry, console, cancel) notifies without a round trip of its own.
SQLite has no NOTIFY: its waiters re-read the intent every 100 ms.

Revision ID: 0035
Revises: 0034
"""
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

UPGRADE = [
    """CREATE FUNCTION payment_intent_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('paycore_intent_moved', NEW.id);
    RETURN NULL;
END
$$""",
    """CREATE TRIGGER payment_intents_moved AFTER UPDATE OF status ON payment_intents
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION payment_intent_moved()""",
]
DOWNGRADE = [
    "DROP TRIGGER IF EXISTS payment_intents_moved ON payment_intents",
    "DROP FUNCTION IF EXISTS payment_intent_moved()",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
