"""0033: the console's loan book and exposure read summaries kept by the loans' own
writes; indexes for the overdue list by amount and for the charts.

1. `lending_book_by_maturity`: per product, currency and maturity date, the running loans
   (disbursed, active, extended, overdue) and their principal outstanding. The loan book's
   summary by product and days-past-due bucket summed every running loan (a scan of the
   book: ~70 ms of SQL at 100k loans on an idle machine, ~160-290 ms of page under load);
   a loan's bucket depends only on its maturity and today, so the page now groups these
   few hundred rows by bucket instead. A running loan without a maturity (none is made so)
   is kept under 9999-12-31, which is "current" like the loan book always showed it.
2. `lending_exposure`: per borrower, the open loans (running or approved) and their
   exposure (principal outstanding, or the approved amount not yet drawn) — what
   exposure per borrower summed over the book for every page.
3. `lending_book_cohorts`: the loans the book's history reads (disbursed; running,
   written off, repaid or recovered) grouped by everything their bucket on a past day
   depends on — product version, currency, maturity, disbursement date, the day they
   closed, the day they were written off — with their count, principal outstanding and
   written-off amount. lending.portfolio_history (the console's loan book over 90 days,
   each week as it stood then) grouped every loan of the book for each chart (~165 ms of
   SQL at 100k loans, idle); it now reads these groups, then moves the few loans whose
   events say otherwise (a write-off event, an extension after the first day) and adds
   back the principal repaid after each day from the repayments, as before: the same
   true history. No NULL in a key (a primary key): a loan without a product version is
   kept under -1, "no maturity / not closed / not written off" under 9999-12-31.

   All three are kept by triggers on lending_loans, in the transaction of the loan's own
   change (nothing to refresh, never stale): a row's share leaves its old key and joins
   its new one. PostgreSQL: one trigger per statement over its old and new rows, the
   shares summed per key first, so a change that moves no share (an accrual, active ->
   overdue) touches no summary row and takes no lock on one, the rows a statement moves
   are locked in key order, and a bulk load is one upsert per key. A summary row is
   locked only by a loan change that moves money on it; loans are changed after their
   own row lock and a borrower's in the order every writer already uses (earliest
   maturity first), and a deadlock PostgreSQL breaks is retried by ledger.transact.
   SQLite (one writer at a time): row triggers, each only when the share moved.
   PostgreSQL: a TRUNCATE of lending_loans empties them (row triggers do not fire).
   The backfill sums the loans already there.
4. Indexes: lending_loans (amount_minor, id) — the loan book and the overdue list by
   amount read the largest loans first instead of sorting every overdue loan;
   payment_attempts (created_at, bank, status, settled_at) — the charts' last 7 days of
   attempts, read from the index alone; recon_statement_lines (booking_date,
   bank_account_id, status) — the daily match rate of the last 14 days; and
   lending_loan_events (to_status, event_on, loan_id) — the loan book history's write-offs
   and extensions, without reading every status change of every loan; lending_repayments
   (paid_on) — the history's principal repaid after its first day.

Downgrade: drops the triggers, their functions (and the cohort key type), the three
tables and the indexes.

Revision ID: 0033
Revises: 0032
"""
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

_TABLES = [
    """CREATE TABLE lending_book_by_maturity (
        product_code VARCHAR(40) NOT NULL,
        currency VARCHAR(3) NOT NULL,
        maturity DATE NOT NULL,
        loans INTEGER NOT NULL,
        principal_minor BIGINT NOT NULL,
        CONSTRAINT pk_lending_book_by_maturity PRIMARY KEY (product_code, currency, maturity)
    )""",
    """CREATE TABLE lending_book_cohorts (
        product_code VARCHAR(40) NOT NULL,
        product_version INTEGER NOT NULL,
        currency VARCHAR(3) NOT NULL,
        maturity DATE NOT NULL,
        disbursed_on DATE NOT NULL,
        closed_on DATE NOT NULL,
        written_off_on DATE NOT NULL,
        loans INTEGER NOT NULL,
        principal_minor BIGINT NOT NULL,
        written_off_minor BIGINT NOT NULL,
        CONSTRAINT pk_lending_book_cohorts PRIMARY KEY (product_code, product_version,
            currency, maturity, disbursed_on, closed_on, written_off_on)
    )""",
    "CREATE INDEX ix_lending_book_cohorts_closed ON lending_book_cohorts (closed_on)",
    """CREATE TABLE lending_exposure (
        borrower_id VARCHAR(80) NOT NULL,
        loans INTEGER NOT NULL,
        exposure_minor BIGINT NOT NULL,
        CONSTRAINT pk_lending_exposure PRIMARY KEY (borrower_id)
    )""",
]

_INDEXES = [
    "CREATE INDEX ix_lending_loans_amount ON lending_loans (amount_minor, id)",
    "CREATE INDEX ix_payment_attempts_created ON payment_attempts "
    "(created_at, bank, status, settled_at)",
    "CREATE INDEX ix_recon_lines_booking ON recon_statement_lines "
    "(booking_date, bank_account_id, status)",
    "CREATE INDEX ix_lending_loan_events_status_on ON lending_loan_events "
    "(to_status, event_on, loan_id)",
    "CREATE INDEX ix_lending_repayments_paid_on ON lending_repayments (paid_on)",
]

_RUNNING = "('disbursed', 'active', 'extended', 'overdue')"
_OPEN = "('disbursed', 'active', 'extended', 'overdue', 'approved')"
_CLOSED = "('repaid', 'recovered')"
# the loans the book's history reads: disbursed, and running, written off or closed
_IN_COHORTS = ("{row}.disbursed_on IS NOT NULL AND {row}.status IN ('disbursed', 'active', "
               "'extended', 'overdue', 'written_off', 'repaid', 'recovered')")

_BACKFILL = [
    f"""INSERT INTO lending_book_by_maturity (product_code, currency, maturity, loans,
                                             principal_minor)
        SELECT product_code, currency, COALESCE(maturity, DATE '9999-12-31'), count(*),
               sum(amount_minor - principal_repaid_minor)
        FROM lending_loans WHERE status IN {_RUNNING}
        GROUP BY product_code, currency, COALESCE(maturity, DATE '9999-12-31')""",
    f"""INSERT INTO lending_book_cohorts (product_code, product_version, currency, maturity,
            disbursed_on, closed_on, written_off_on, loans, principal_minor, written_off_minor)
        SELECT product_code, COALESCE(product_version, -1), currency,
               COALESCE(maturity, DATE '9999-12-31'), disbursed_on,
               CASE WHEN status IN {_CLOSED} THEN status_on ELSE DATE '9999-12-31' END,
               CASE WHEN status = 'written_off' THEN status_on ELSE DATE '9999-12-31' END,
               count(*), sum(amount_minor - principal_repaid_minor), sum(written_off_minor)
        FROM lending_loans WHERE {_IN_COHORTS.format(row="lending_loans")}
        GROUP BY 1, 2, 3, 4, 5, 6, 7""",
    f"""INSERT INTO lending_exposure (borrower_id, loans, exposure_minor)
        SELECT borrower_id, count(*),
               sum(CASE WHEN status IN {_RUNNING} THEN amount_minor - principal_repaid_minor
                        ELSE amount_minor END)
        FROM lending_loans WHERE status IN {_OPEN} GROUP BY borrower_id""",
]

# PostgreSQL: statement-level triggers with the statement's old and new rows (transition
# tables). Each summary takes the changed rows' shares, -1 for an old row and +1 for a
# new one, summed per key: a key whose sums are all zero (an accrual, active -> overdue)
# is not touched, so no lock is taken on it; the others are upserted in key order, so
# two statements lock the summary rows they share in the same order; and a bulk load of
# many loans is one upsert per key, not one per loan (a row trigger updating the same
# summary row 100,000 times in one transaction walked ever longer version chains).
_PG_UPSERTS = f"""
    INSERT INTO lending_book_by_maturity AS b (product_code, currency, maturity, loans,
                                               principal_minor)
    SELECT product_code, currency, COALESCE(maturity, DATE '9999-12-31'), sum(sign),
           sum(sign * (amount_minor - principal_repaid_minor))
    FROM changed WHERE status IN {_RUNNING}
    GROUP BY 1, 2, 3
    HAVING sum(sign) <> 0 OR sum(sign * (amount_minor - principal_repaid_minor)) <> 0
    ORDER BY 1, 2, 3
    ON CONFLICT (product_code, currency, maturity) DO UPDATE
       SET loans = b.loans + EXCLUDED.loans,
           principal_minor = b.principal_minor + EXCLUDED.principal_minor;
    INSERT INTO lending_book_cohorts AS c (product_code, product_version, currency, maturity,
        disbursed_on, closed_on, written_off_on, loans, principal_minor, written_off_minor)
    SELECT product_code, COALESCE(product_version, -1), currency,
           COALESCE(maturity, DATE '9999-12-31'), disbursed_on,
           CASE WHEN status IN {_CLOSED} THEN status_on ELSE DATE '9999-12-31' END,
           CASE WHEN status = 'written_off' THEN status_on ELSE DATE '9999-12-31' END,
           sum(sign), sum(sign * (amount_minor - principal_repaid_minor)),
           sum(sign * written_off_minor)
    FROM changed WHERE {_IN_COHORTS.format(row="changed")}
    GROUP BY 1, 2, 3, 4, 5, 6, 7
    HAVING sum(sign) <> 0 OR sum(sign * (amount_minor - principal_repaid_minor)) <> 0
           OR sum(sign * written_off_minor) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (product_code, product_version, currency, maturity, disbursed_on, closed_on,
                 written_off_on) DO UPDATE
       SET loans = c.loans + EXCLUDED.loans,
           principal_minor = c.principal_minor + EXCLUDED.principal_minor,
           written_off_minor = c.written_off_minor + EXCLUDED.written_off_minor;
    INSERT INTO lending_exposure AS e (borrower_id, loans, exposure_minor)
    SELECT borrower_id, sum(sign),
           sum(sign * CASE WHEN status IN {_RUNNING} THEN amount_minor - principal_repaid_minor
                           ELSE amount_minor END)
    FROM changed WHERE status IN {_OPEN}
    GROUP BY 1
    HAVING sum(sign) <> 0
        OR sum(sign * CASE WHEN status IN {_RUNNING} THEN amount_minor - principal_repaid_minor
                           ELSE amount_minor END) <> 0
    ORDER BY 1
    ON CONFLICT (borrower_id) DO UPDATE
       SET loans = e.loans + EXCLUDED.loans,
           exposure_minor = e.exposure_minor + EXCLUDED.exposure_minor;"""


def _pg_function(name: str, changed: str) -> str:
    """The trigger function of one kind of statement: each upsert reads that statement's
    changed rows as `changed`."""
    body = _PG_UPSERTS.replace("    INSERT INTO", f"    WITH changed AS ({changed})\n    INSERT INTO")
    return (f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN{body}\n"
            "  RETURN NULL;\nEND $$")


_PG_FUNCTIONS = {
    "lending_loans_inserted": "SELECT *, 1 AS sign FROM new_loans",
    "lending_loans_updated": "SELECT *, -1 AS sign FROM old_loans "
                             "UNION ALL SELECT *, 1 AS sign FROM new_loans",
    "lending_loans_deleted": "SELECT *, -1 AS sign FROM old_loans",
}

_PG_TRUNCATE_FUNCTION = """CREATE FUNCTION lending_loans_summaries_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE lending_book_by_maturity, lending_book_cohorts, lending_exposure;
  RETURN NULL;
END $$"""

_PG_TRIGGERS = [
    "CREATE TRIGGER lending_loans_inserted AFTER INSERT ON lending_loans "
    "REFERENCING NEW TABLE AS new_loans "
    "FOR EACH STATEMENT EXECUTE FUNCTION lending_loans_inserted()",
    "CREATE TRIGGER lending_loans_updated AFTER UPDATE ON lending_loans "
    "REFERENCING OLD TABLE AS old_loans NEW TABLE AS new_loans "
    "FOR EACH STATEMENT EXECUTE FUNCTION lending_loans_updated()",
    "CREATE TRIGGER lending_loans_deleted AFTER DELETE ON lending_loans "
    "REFERENCING OLD TABLE AS old_loans "
    "FOR EACH STATEMENT EXECUTE FUNCTION lending_loans_deleted()",
    "CREATE TRIGGER lending_loans_summaries_truncated AFTER TRUNCATE ON lending_loans "
    "FOR EACH STATEMENT EXECUTE FUNCTION lending_loans_summaries_truncated()",
]

# SQLite: one trigger per side of a change (the old share leaves, the new one joins), each
# only when the share moved; the single writer needs no care for locks.
_SAME_BOOK_SHARE = (f"(OLD.status IN {_RUNNING}) = (NEW.status IN {_RUNNING}) "
                    "AND OLD.product_code = NEW.product_code AND OLD.currency = NEW.currency "
                    "AND OLD.maturity IS NEW.maturity "
                    "AND OLD.amount_minor - OLD.principal_repaid_minor "
                    "= NEW.amount_minor - NEW.principal_repaid_minor")
_DRAWN_OLD = (f"CASE WHEN OLD.status IN {_RUNNING} "
              "THEN OLD.amount_minor - OLD.principal_repaid_minor ELSE OLD.amount_minor END")
_DRAWN_NEW = (f"CASE WHEN NEW.status IN {_RUNNING} "
              "THEN NEW.amount_minor - NEW.principal_repaid_minor ELSE NEW.amount_minor END")
_SAME_EXPOSURE_SHARE = (f"(OLD.status IN {_OPEN}) = (NEW.status IN {_OPEN}) "
                        f"AND OLD.borrower_id = NEW.borrower_id AND {_DRAWN_OLD} = {_DRAWN_NEW}")


def _sqlite_book_leave(row: str) -> str:
    return (f"UPDATE lending_book_by_maturity SET loans = loans - 1, principal_minor = "
            f"principal_minor - ({row}.amount_minor - {row}.principal_repaid_minor) "
            f"WHERE product_code = {row}.product_code AND currency = {row}.currency "
            f"AND maturity = COALESCE({row}.maturity, '9999-12-31');")


_SQLITE_BOOK_JOIN = (
    "INSERT INTO lending_book_by_maturity (product_code, currency, maturity, loans, "
    "principal_minor) VALUES (NEW.product_code, NEW.currency, "
    "COALESCE(NEW.maturity, '9999-12-31'), 1, NEW.amount_minor - NEW.principal_repaid_minor) "
    "ON CONFLICT (product_code, currency, maturity) DO UPDATE SET loans = loans + 1, "
    "principal_minor = principal_minor + excluded.principal_minor;")


def _sqlite_exposure_leave(row: str, drawn: str) -> str:
    return (f"UPDATE lending_exposure SET loans = loans - 1, exposure_minor = exposure_minor "
            f"- ({drawn}) WHERE borrower_id = {row}.borrower_id;")


_SQLITE_EXPOSURE_JOIN = (
    f"INSERT INTO lending_exposure (borrower_id, loans, exposure_minor) VALUES "
    f"(NEW.borrower_id, 1, {_DRAWN_NEW}) ON CONFLICT (borrower_id) DO UPDATE SET "
    f"loans = loans + 1, exposure_minor = exposure_minor + excluded.exposure_minor;")

_COHORT_KEY = {
    "product_code": "{row}.product_code",
    "product_version": "COALESCE({row}.product_version, -1)",
    "currency": "{row}.currency",
    "maturity": "COALESCE({row}.maturity, '9999-12-31')",
    "disbursed_on": "{row}.disbursed_on",
    "closed_on": f"CASE WHEN {{row}}.status IN {_CLOSED} THEN {{row}}.status_on "
                 "ELSE '9999-12-31' END",
    "written_off_on": "CASE WHEN {row}.status = 'written_off' THEN {row}.status_on "
                      "ELSE '9999-12-31' END",
}
_SAME_COHORT_SHARE = " AND ".join(
    [f"({_IN_COHORTS.format(row='OLD')}) = ({_IN_COHORTS.format(row='NEW')})",
     *(f"{e.format(row='OLD')} IS {e.format(row='NEW')}" for e in _COHORT_KEY.values()),
     "OLD.amount_minor - OLD.principal_repaid_minor "
     "= NEW.amount_minor - NEW.principal_repaid_minor",
     "OLD.written_off_minor = NEW.written_off_minor"])


def _sqlite_cohort_leave(row: str) -> str:
    where = " AND ".join(f"{c} = {e.format(row=row)}" for c, e in _COHORT_KEY.items())
    return (f"UPDATE lending_book_cohorts SET loans = loans - 1, principal_minor = "
            f"principal_minor - ({row}.amount_minor - {row}.principal_repaid_minor), "
            f"written_off_minor = written_off_minor - {row}.written_off_minor WHERE {where};")


_SQLITE_COHORT_JOIN = (
    f"INSERT INTO lending_book_cohorts ({', '.join(_COHORT_KEY)}, loans, principal_minor, "
    f"written_off_minor) VALUES ({', '.join(e.format(row='NEW') for e in _COHORT_KEY.values())}"
    f", 1, NEW.amount_minor - NEW.principal_repaid_minor, NEW.written_off_minor) "
    f"ON CONFLICT ({', '.join(_COHORT_KEY)}) DO UPDATE SET loans = loans + 1, "
    f"principal_minor = principal_minor + excluded.principal_minor, "
    f"written_off_minor = written_off_minor + excluded.written_off_minor;")

_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER lending_cohort_insert AFTER INSERT ON lending_loans "
    f"WHEN {_IN_COHORTS.format(row='NEW')} BEGIN {_SQLITE_COHORT_JOIN} END",
    f"CREATE TRIGGER lending_cohort_update_leave AFTER UPDATE ON lending_loans "
    f"WHEN {_IN_COHORTS.format(row='OLD')} AND NOT ({_SAME_COHORT_SHARE}) "
    f"BEGIN {_sqlite_cohort_leave('OLD')} END",
    f"CREATE TRIGGER lending_cohort_update_join AFTER UPDATE ON lending_loans "
    f"WHEN {_IN_COHORTS.format(row='NEW')} AND NOT ({_SAME_COHORT_SHARE}) "
    f"BEGIN {_SQLITE_COHORT_JOIN} END",
    f"CREATE TRIGGER lending_cohort_delete AFTER DELETE ON lending_loans "
    f"WHEN {_IN_COHORTS.format(row='OLD')} BEGIN {_sqlite_cohort_leave('OLD')} END",
    f"CREATE TRIGGER lending_book_insert AFTER INSERT ON lending_loans "
    f"WHEN NEW.status IN {_RUNNING} BEGIN {_SQLITE_BOOK_JOIN} END",
    f"CREATE TRIGGER lending_book_update_leave AFTER UPDATE ON lending_loans "
    f"WHEN OLD.status IN {_RUNNING} AND NOT ({_SAME_BOOK_SHARE}) "
    f"BEGIN {_sqlite_book_leave('OLD')} END",
    f"CREATE TRIGGER lending_book_update_join AFTER UPDATE ON lending_loans "
    f"WHEN NEW.status IN {_RUNNING} AND NOT ({_SAME_BOOK_SHARE}) "
    f"BEGIN {_SQLITE_BOOK_JOIN} END",
    f"CREATE TRIGGER lending_book_delete AFTER DELETE ON lending_loans "
    f"WHEN OLD.status IN {_RUNNING} BEGIN {_sqlite_book_leave('OLD')} END",
    f"CREATE TRIGGER lending_exposure_insert AFTER INSERT ON lending_loans "
    f"WHEN NEW.status IN {_OPEN} BEGIN {_SQLITE_EXPOSURE_JOIN} END",
    f"CREATE TRIGGER lending_exposure_update_leave AFTER UPDATE ON lending_loans "
    f"WHEN OLD.status IN {_OPEN} AND NOT ({_SAME_EXPOSURE_SHARE}) "
    f"BEGIN {_sqlite_exposure_leave('OLD', _DRAWN_OLD)} END",
    f"CREATE TRIGGER lending_exposure_update_join AFTER UPDATE ON lending_loans "
    f"WHEN NEW.status IN {_OPEN} AND NOT ({_SAME_EXPOSURE_SHARE}) "
    f"BEGIN {_SQLITE_EXPOSURE_JOIN} END",
    f"CREATE TRIGGER lending_exposure_delete AFTER DELETE ON lending_loans "
    f"WHEN OLD.status IN {_OPEN} BEGIN {_sqlite_exposure_leave('OLD', _DRAWN_OLD)} END",
]
_SQLITE_TRIGGER_NAMES = ["lending_cohort_insert", "lending_cohort_update_leave",
                         "lending_cohort_update_join", "lending_cohort_delete",
                         "lending_book_insert", "lending_book_update_leave",
                         "lending_book_update_join", "lending_book_delete",
                         "lending_exposure_insert", "lending_exposure_update_leave",
                         "lending_exposure_update_join", "lending_exposure_delete"]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in [*_TABLES, *_INDEXES]:
        op.execute(statement)
    for statement in _BACKFILL:
        # SQLite stores a date as its ISO text: the same sentinel without the DATE keyword
        op.execute(statement if postgresql else statement.replace("DATE '9999", "'9999"))
    if postgresql:
        for name, changed in _PG_FUNCTIONS.items():
            op.execute(_pg_function(name, changed))
        op.execute(_PG_TRUNCATE_FUNCTION)
        for statement in _PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in [*_PG_FUNCTIONS, "lending_loans_summaries_truncated"]:
            op.execute(f"DROP TRIGGER {name} ON lending_loans")
            op.execute(f"DROP FUNCTION {name}()")
    else:
        for name in _SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER {name}")
    for name in ("ix_lending_repayments_paid_on", "ix_lending_loan_events_status_on", "ix_recon_lines_booking",
                 "ix_payment_attempts_created", "ix_lending_loans_amount"):
        op.execute(f"DROP INDEX {name}")
    op.execute("DROP TABLE lending_exposure")
    op.execute("DROP TABLE lending_book_cohorts")
    op.execute("DROP TABLE lending_book_by_maturity")
