"""Rules the database enforces on its own, whoever writes to it.

The code checks every rule first and raises a precise `ledger.errors` error; these
triggers are the second line, so that a bug or a hand-written SQL statement cannot
unbalance, rewrite or delete the books.
"""

from __future__ import annotations

APPEND_ONLY_MESSAGE = "ledger is append-only: {op} on {table} is not allowed; post a reversing entry"

_PG = [
    """
CREATE OR REPLACE FUNCTION ledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger is append-only: % on % is not allowed; post a reversing entry',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$
""",
    """
CREATE OR REPLACE FUNCTION ledger_check_new_postings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  -- one query on the common path; it runs once per statement, however many rows
  SELECT p.entry_id, p.account_id, p.currency, a.currency AS account_currency, a.status,
         e.id IS NOT NULL AS entry_exists
    INTO bad
    FROM new_postings p
    JOIN accounts a ON a.id = p.account_id
    LEFT JOIN journal_entries e ON e.id = p.entry_id
   WHERE p.currency <> a.currency OR a.status <> 'open' OR e.id IS NOT NULL
   LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  ELSIF bad.entry_exists THEN
    RAISE EXCEPTION 'postings cannot be added to an existing journal entry (%)', bad.entry_id
      USING ERRCODE = 'check_violation';
  END IF;
  RAISE EXCEPTION 'posting of entry % to account % rejected: currency % vs account % (%)',
    bad.entry_id, bad.account_id, bad.currency, bad.account_currency, bad.status
    USING ERRCODE = 'check_violation';
END $$
""",
    """
CREATE OR REPLACE FUNCTION ledger_check_new_entries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  SELECT e.id, coalesce(sum(t.n), 0) AS n, string_agg(t.currency || ' ' || t.diff, ', ')
         FILTER (WHERE t.diff <> 0) AS off
    INTO bad
    FROM new_entries e
    LEFT JOIN LATERAL (
      SELECT p.currency, sum(p.amount) AS diff, count(*) AS n
        FROM postings p WHERE p.entry_id = e.id GROUP BY p.currency) t ON true
   GROUP BY e.id
  HAVING coalesce(sum(t.n), 0) < 2 OR bool_or(t.diff <> 0)
   LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  ELSIF bad.n < 2 THEN
    RAISE EXCEPTION 'journal entry % has fewer than two postings', bad.id
      USING ERRCODE = 'check_violation';
  END IF;
  RAISE EXCEPTION 'journal entry % does not balance: debits minus credits = % (minor units)',
    bad.id, bad.off USING ERRCODE = 'check_violation';
END $$
""",
]
for _table in ("journal_entries", "postings"):
    _PG += [
        f"CREATE TRIGGER {_table}_append_only BEFORE UPDATE OR DELETE ON {_table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()",
        f"CREATE TRIGGER {_table}_no_truncate BEFORE TRUNCATE ON {_table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()",
    ]
_PG += [
    "CREATE TRIGGER postings_check AFTER INSERT ON postings REFERENCING NEW TABLE AS new_postings "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_new_postings()",
    "CREATE TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries "
    "REFERENCING NEW TABLE AS new_entries "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_new_entries()",
]

_SQLITE: list[str] = []
for _table in ("journal_entries", "postings"):
    for _op in ("UPDATE", "DELETE"):
        _msg = APPEND_ONLY_MESSAGE.format(op=_op, table=_table)
        _SQLITE.append(
            f"CREATE TRIGGER {_table}_no_{_op.lower()} BEFORE {_op} ON {_table} "
            f"BEGIN SELECT RAISE(ABORT, '{_msg}'); END"
        )
_SQLITE += [
    """
CREATE TRIGGER postings_check BEFORE INSERT ON postings
BEGIN
  SELECT RAISE(ABORT, 'posting currency does not match its account currency')
   WHERE NEW.currency <> (SELECT currency FROM accounts WHERE id = NEW.account_id);
  SELECT RAISE(ABORT, 'posting to an account that is not open')
   WHERE (SELECT status FROM accounts WHERE id = NEW.account_id) <> 'open';
  SELECT RAISE(ABORT, 'postings cannot be added to an existing journal entry')
   WHERE EXISTS (SELECT 1 FROM journal_entries WHERE id = NEW.entry_id);
END
""",
    """
CREATE TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries
BEGIN
  SELECT RAISE(ABORT, 'journal entry has fewer than two postings')
   WHERE (SELECT count(*) FROM postings WHERE entry_id = NEW.id) < 2;
  SELECT RAISE(ABORT, 'journal entry does not balance per currency')
   WHERE EXISTS (SELECT 1 FROM postings WHERE entry_id = NEW.id
                  GROUP BY currency HAVING sum(amount) <> 0);
END
""",
]

_PG_DROP = [
    *(f"DROP TRIGGER IF EXISTS {t}_{s} ON {t}" for t in ("journal_entries", "postings")
      for s in ("append_only", "no_truncate")),
    "DROP TRIGGER IF EXISTS postings_check ON postings",
    "DROP TRIGGER IF EXISTS journal_entries_balanced ON journal_entries",
    "DROP FUNCTION IF EXISTS ledger_check_new_entries()",
    "DROP FUNCTION IF EXISTS ledger_check_new_postings()",
    "DROP FUNCTION IF EXISTS ledger_reject_change()",
]
_SQLITE_DROP = [
    *(f"DROP TRIGGER IF EXISTS {t}_no_{op}" for t in ("journal_entries", "postings")
      for op in ("update", "delete")),
    "DROP TRIGGER IF EXISTS postings_check",
    "DROP TRIGGER IF EXISTS journal_entries_balanced",
]


def create_statements(dialect: str) -> list[str]:
    """The trigger DDL for `dialect` ('postgresql' or 'sqlite')."""
    if dialect == "postgresql":
        return list(_PG)
    if dialect == "sqlite":
        return list(_SQLITE)
    raise NotImplementedError(f"paycore's ledger runs on PostgreSQL or SQLite, not {dialect}")


def drop_statements(dialect: str) -> list[str]:
    return list(_PG_DROP if dialect == "postgresql" else _SQLITE_DROP)
