"""0036: drop 0035's trigger; a moved payment intent is announced after its commit instead.

0035 notified channel `paycore_intent_moved` from a trigger in the transaction that moved
the intent. PostgreSQL takes a database-wide lock when a notifying transaction commits and
holds it through the commit's WAL flush, so every capture (which moves its intent) would
have committed one at a time, whatever its hot-account lanes. The notification handler
now sends the NOTIFY itself after its commit, in a statement of its own with
`synchronous_commit` off (`gateways.intent_changes.announce`).

Downgrade: 0035's trigger and function again. SQLite: nothing to do.

Revision ID: 0036
Revises: 0035
"""
from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

UPGRADE = [
    "DROP TRIGGER IF EXISTS payment_intents_moved ON payment_intents",
    "DROP FUNCTION IF EXISTS payment_intent_moved()",
]
DOWNGRADE = [
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


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
