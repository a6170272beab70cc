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


# --- migration 0002: PostgreSQL's one-round-trip write path ------------------------------
#
# `ledger_post_entries` does, inside the caller's transaction, what ledger.entries does in
# Python for a batch of entries: resolve account codes, lock the balance rows in account-id
# order, compare idempotency keys (with the store and within the batch), check each account
# (open, same currency), extend each account's hash chain, check the balance limits after
# each entry, and only then write. A refused batch writes nothing and raises nothing (so
# the caller's transaction stays usable): the refusal comes back as a status that the Python
# side turns into the precise `ledger.errors` error, checked in the same order as in Python.
# The hashes are the ones `ledger.chain` defines, built from the pieces chain.py hands in.
# Legs come flattened: entry i owns the next e_nlegs[i] of them (see ledger.fastpath).
# Generic plans: re-planning its statements on every call (plpgsql's custom plans) cost
# about a millisecond per single-entry post, more than running them.
_POST_ENTRIES_TEMPLATE = r"""
CREATE OR REPLACE FUNCTION ledger_post_entries(
    p_batch jsonb,
    OUT o_status text, OUT o_failed int, OUT o_detail text[], OUT o_entry_ids uuid[],
    OUT o_replayed boolean[], OUT o_booked_at timestamptz, OUT o_effective date[],
    OUT o_account_ids bigint[], OUT o_codes text[], OUT o_seqs bigint[],
    OUT o_balances bigint[])
LANGUAGE plpgsql{security} SET jit = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  e_keys text[]; e_ids uuid[]; e_kinds text[]; e_descriptions text[]; e_effective date[];
  e_external_refs text[]; e_metadata text[]; e_request_heads text[]; e_request_tails text[];
  e_heads text[]; e_middles text[]; e_tails text[]; e_nlegs int[];
  l_ids bigint[]; l_codes text[]; l_amounts bigint[]; l_currencies text[]; leg_e int[];
  legs bigint[];
  a_id bigint[] := '{}'; a_code text[] := '{}'; a_cur text[] := '{}';
  a_status text[] := '{}'; a_limit text[] := '{}'; a_pd bigint[] := '{}';
  a_pc bigint[] := '{}'; a_qd bigint[] := '{}'; a_qc bigint[] := '{}';
  a_seq bigint[] := '{}'; a_head text[] := '{}'; a_dirty boolean[] := '{}';
  leg_k int[]; req text[]; prior_hash text[]; prior_id uuid[]; first_of int[];
  e_hash text[]; p_hash text[]; hashed text;
  e int; i int; k int; first int := 1; last int; f int; n_entries int; n_legs int;
  eff date; today date; booked text; short bigint; worst int; net bigint;{declare}{declare_booked}
BEGIN
  -- the batch comes as one JSON text, [[entry, ...], [leg, ...]]: a single parameter is far
  -- cheaper for the client to send than seventeen arrays. One sort per list, under all
  -- the aggregates (an ORDER BY inside each aggregate sorted once per column).
  -- Both lists in one statement; each leg: account id or code, amount, currency, and its
  -- entry's place in the batch.
  SELECT e.*, l.*
    INTO e_keys, e_ids, e_kinds, e_descriptions, e_effective, e_external_refs, e_metadata,
         e_request_heads, e_request_tails, e_heads, e_middles, e_tails, e_nlegs,
         l_ids, l_codes, l_amounts, l_currencies, leg_e
    FROM (SELECT array_agg(x.v->>0), array_agg((x.v->>1)::uuid), array_agg(x.v->>2),
                 array_agg(x.v->>3), array_agg((x.v->>4)::date), array_agg(x.v->>5),
                 array_agg(x.v->>6), array_agg(x.v->>7), array_agg(x.v->>8),
                 array_agg(x.v->>9), array_agg(x.v->>10), array_agg(x.v->>11),
                 array_agg((x.v->>12)::int)
            FROM (SELECT j.v FROM jsonb_array_elements(p_batch->0) WITH ORDINALITY AS j(v, o)
                   ORDER BY j.o) x) e,
         (SELECT array_agg((x.v->>0)::bigint), array_agg(x.v->>1),
                 array_agg((x.v->>2)::bigint), array_agg(x.v->>3), array_agg((x.v->>4)::int)
            FROM (SELECT j.v FROM jsonb_array_elements(p_batch->1) WITH ORDINALITY AS j(v, o)
                   ORDER BY j.o) x) l;
  n_entries := cardinality(e_keys); n_legs := cardinality(l_ids);
  legs := l_ids;
  IF array_position(l_ids, NULL) IS NOT NULL THEN  -- some legs name their account by code
    SELECT array_agg(coalesce(l.id, a.id) ORDER BY l.o) INTO legs
      FROM unnest(l_ids, l_codes) WITH ORDINALITY AS l(id, code, o)
      LEFT JOIN accounts a ON l.id IS NULL AND a.code = l.code;
  END IF;
  -- one statement (a row-by-row loop appending to twelve arrays cost more than the locks)
  SELECT coalesce(array_agg(s.id), '{}'), coalesce(array_agg(s.code::text), '{}'),
         coalesce(array_agg(s.currency::text), '{}'), coalesce(array_agg(s.status::text), '{}'),
         coalesce(array_agg(s.balance_limit::text), '{}'),
         coalesce(array_agg(s.posted_debits), '{}'), coalesce(array_agg(s.posted_credits), '{}'),
         coalesce(array_agg(s.pending_debits), '{}'),
         coalesce(array_agg(s.pending_credits), '{}'), coalesce(array_agg(s.seq), '{}'),
         coalesce(array_agg(s.head_hash::text), '{}'),
         array_fill(false, ARRAY[count(*)::int]){lock_last_booked}
    INTO a_id, a_code, a_cur, a_status, a_limit, a_pd, a_pc, a_qd, a_qc, a_seq, a_head,
         a_dirty{into_last_booked}
    FROM (SELECT a.id, a.code, a.currency, a.status, a.balance_limit, b.posted_debits,
                 b.posted_credits, b.pending_debits, b.pending_credits, b.seq, b.head_hash{column_last_booked}
            FROM account_balances b JOIN accounts a ON a.id = b.account_id
           WHERE b.account_id = ANY (legs) ORDER BY b.account_id FOR UPDATE OF b) s;

  -- each leg's place among the locked accounts (NULL: no such account); per entry,
  -- chain.request_hash (head || [[id,amount,"CUR"],...] || tail), the entry its key
  -- already names (if any), and the first entry of the batch with the same key
  IF n_entries = 1 THEN
    -- one entry (every `post`): the same answers as the statement below, without its
    -- sorts, window and joins, which cost more to start than a single entry needs
    leg_k := array_fill(NULL::int, ARRAY[n_legs]);
    hashed := '';
    FOR i IN 1..n_legs LOOP
      leg_k[i] := array_position(a_id, legs[i]);
      hashed := hashed || CASE WHEN i > 1 THEN ',' ELSE '' END || {leg_json_one};
    END LOOP;
    req := ARRAY[encode(sha256(convert_to(e_request_heads[1] || '[' || hashed || ']'
      || e_request_tails[1], 'UTF8')), 'hex')];
    SELECT ARRAY[j.request_hash::text], ARRAY[j.id] INTO prior_hash, prior_id
      FROM journal_entries j WHERE j.idempotency_key = e_keys[1];
    IF NOT FOUND THEN
      prior_hash := ARRAY[NULL::text]; prior_id := ARRAY[NULL::uuid];
    END IF;
    first_of := ARRAY[1];
  ELSE
    WITH leg AS MATERIALIZED (
      SELECT l.i, l.e, l.id, a.k
        FROM unnest(legs, leg_e) WITH ORDINALITY AS l(id, e, i)
        LEFT JOIN unnest(a_id) WITH ORDINALITY AS a(id, k) ON a.id = l.id),
    -- the legs come in entry order, so one sort by (entry, leg) orders every entry's legs
    -- for its string_agg (no sort per entry), and one sort by entry orders the outputs
    h AS (
      SELECT s.e AS o, encode(sha256(convert_to(e_request_heads[s.e] || '[' || string_agg(
               {leg_json_batch}, ',') || ']' || e_request_tails[s.e], 'UTF8')), 'hex') AS hash
        FROM (SELECT leg.e, leg.i, leg.id FROM leg ORDER BY leg.e, leg.i) s GROUP BY s.e),
    dup AS (
      SELECT x.o, min(x.o) OVER (PARTITION BY x.key) AS first_of
        FROM unnest(e_keys) WITH ORDINALITY AS x(key, o))
    SELECT array_agg(r.hash), array_agg(r.request_hash), array_agg(r.id), array_agg(r.first_of),
           (SELECT array_agg(leg.k ORDER BY leg.i) FROM leg)
      INTO req, prior_hash, prior_id, first_of, leg_k
      FROM (SELECT h.hash, j.request_hash::text AS request_hash, j.id, dup.first_of::int
              FROM h JOIN dup ON dup.o = h.o
              LEFT JOIN journal_entries j ON j.idempotency_key = e_keys[h.o]
             ORDER BY h.o) r;
  END IF;
  IF array_position(leg_k, NULL) IS NOT NULL THEN
    o_status := 'unknown-account'; o_detail := a_id::text[]; o_codes := a_code;
    RETURN;
  END IF;

  -- booked under the locks, as the Python path does: an account's postings are booked in
  -- the order of their sequence numbers
  o_booked_at := {booked_at};
  today := (o_booked_at AT TIME ZONE 'UTC')::date;
  booked := to_char(o_booked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00';
  -- every output is filled in place, per entry or per leg (NULL: not written)
  o_entry_ids := array_fill(NULL::uuid, ARRAY[n_entries]);
  o_replayed := array_fill(true, ARRAY[n_entries]);
  o_effective := array_fill(NULL::date, ARRAY[n_entries]);
  e_hash := array_fill(NULL::text, ARRAY[n_entries]);
  o_seqs := array_fill(NULL::bigint, ARRAY[n_legs]);
  o_balances := array_fill(NULL::bigint, ARRAY[n_legs]);
  o_codes := array_fill(NULL::text, ARRAY[n_legs]);
  p_hash := array_fill(NULL::text, ARRAY[n_legs]);
  FOR e IN 1..n_entries LOOP
    last := first + e_nlegs[e] - 1;
    f := first_of[e];
    IF prior_id[e] IS NOT NULL OR f < e THEN  -- a replay, of a stored entry or of entry f
      IF req[e] <> coalesce(prior_hash[e], req[f]) THEN
        o_status := 'idempotency-conflict'; o_failed := e; RETURN;
      END IF;
      o_entry_ids[e] := coalesce(prior_id[e], o_entry_ids[f]);
      first := last + 1;
      CONTINUE;
    END IF;
    eff := coalesce(e_effective[e], today);
    e_hash[e] := encode(sha256(convert_to(e_heads[e] || req[e] || e_middles[e]
      || '"' || to_char(eff, 'YYYY-MM-DD') || '","' || booked || '"' || e_tails[e], 'UTF8')),
      'hex');
    worst := NULL;{entry_start}
    FOR i IN first..last LOOP
      k := leg_k[i];{leg_check}
      IF a_status[k] <> 'open' THEN
        o_status := 'account-closed'; o_failed := e; o_detail := ARRAY[a_code[k]]; RETURN;
      ELSIF a_cur[k] <> l_currencies[i] THEN
        o_status := 'currency-mismatch'; o_failed := e;
        o_detail := ARRAY[a_code[k], a_cur[k], l_currencies[i]]; RETURN;
      END IF;
      -- (a refusal after this point still writes nothing: the writes come last)
      IF l_amounts[i] > 0 THEN
        a_pd[k] := a_pd[k] + l_amounts[i];
      ELSE
        a_pc[k] := a_pc[k] - l_amounts[i];
      END IF;
      a_seq[k] := a_seq[k] + 1; a_dirty[k] := true; net := a_pd[k] - a_pc[k];
      -- chain.posting_hash
      a_head[k] := {posting_hash};
      o_seqs[i] := a_seq[k]; o_balances[i] := net; p_hash[i] := a_head[k];
      o_codes[i] := a_code[k];
      IF a_limit[k] IS NOT NULL THEN
        worst := 0;
      END IF;
    END LOOP;
{entry_end}    IF worst IS NOT NULL THEN
      -- limits after each entry; the first account in id order that broke one is named
      worst := NULL;
      FOR i IN first..last LOOP
        k := leg_k[i];
        IF a_limit[k] IS NOT NULL AND (worst IS NULL OR k < worst) THEN
          short := CASE a_limit[k]
            WHEN 'debits_must_not_exceed_credits' THEN a_pd[k] + a_qd[k] - a_pc[k]
            ELSE a_pc[k] + a_qc[k] - a_pd[k] END;
          IF short > 0 THEN
            worst := k;
            o_detail := ARRAY[a_code[k], a_limit[k], short::text, a_cur[k]];
          END IF;
        END IF;
      END LOOP;
      IF worst IS NOT NULL THEN
        o_status := 'balance-limit-exceeded'; o_failed := e; RETURN;
      END IF;
    END IF;
    o_entry_ids[e] := e_ids[e]; o_replayed[e] := false; o_effective[e] := eff;
    first := last + 1;
  END LOOP;
{batch_end}
{writes}  o_account_ids := legs;
  o_status := 'posted';
END $$
"""

# The write at the end of ledger_post_entries, from three statements' parts.
_INTO_POSTINGS = """INSERT INTO postings (entry_id, account_id, amount, currency, account_seq,
                          balance_after, booked_at, effective_date, hash)"""
_INSERT_POSTINGS = _INTO_POSTINGS + """
    SELECT e_ids[x.e], x.a, x.m, x.c, x.s, x.b, o_booked_at, o_effective[x.e], x.h
      FROM unnest(leg_e, legs, l_amounts, l_currencies, o_seqs, o_balances, p_hash)
        AS x(e, a, m, c, s, b, h)
     WHERE x.s IS NOT NULL"""
_INTO_ENTRIES = """INSERT INTO journal_entries (id, idempotency_key, request_hash, kind, description,
                                 effective_date, booked_at, external_ref, metadata, hash)"""
_INSERT_ENTRIES = _INTO_ENTRIES + """
    SELECT x.i, x.k, x.r, x.kd, x.d, x.ed, o_booked_at, x.x, x.m::jsonb, x.h
      FROM unnest(e_ids, e_keys, req, e_kinds, e_descriptions, o_effective,
                  e_external_refs, e_metadata, e_hash, o_replayed)
        AS x(i, k, r, kd, d, ed, x, m, h, rep)
     WHERE NOT x.rep"""
_SET_BALANCES = """UPDATE account_balances b
       SET posted_debits = x.pd, posted_credits = x.pc, seq = x.s, head_hash = x.h"""
_UPDATE_BALANCES = _SET_BALANCES + """
      FROM unnest(a_id, a_pd, a_pc, a_seq, a_head, a_dirty) AS x(id, pd, pc, s, h, dirty)
     WHERE b.account_id = x.id AND x.dirty"""
# A single entry that is not a replay: its row from scalars, all its legs, and every locked
# account (each is one of its legs'), so no filters
_INSERT_ONE_ENTRY = _INTO_ENTRIES + """
    VALUES (e_ids[1], e_keys[1], req[1], e_kinds[1], e_descriptions[1], o_effective[1],
            o_booked_at, e_external_refs[1], e_metadata[1]::jsonb, e_hash[1])"""
_INSERT_ONE_ENTRYS_POSTINGS = _INTO_POSTINGS + """
    SELECT e_ids[1], x.a, x.m, x.c, x.s, x.b, o_booked_at, o_effective[1], x.h
      FROM unnest(legs, l_amounts, l_currencies, o_seqs, o_balances, p_hash)
        AS x(a, m, c, s, b, h)"""
_UPDATE_ONE_ENTRYS_BALANCES = _SET_BALANCES + """
      FROM unnest(a_id, a_pd, a_pc, a_seq, a_head) AS x(id, pd, pc, s, h)
     WHERE b.account_id = x.id"""
# Up to revision 0007 the postings went first, in a statement of their own, and their entry
# after them (the foreign key from postings to entries was deferred to commit).
_WRITES_POSTINGS_FIRST = f"""  IF false = ANY (o_replayed) THEN
    -- postings first: the entries' trigger proves each entry balances against them
    {_INSERT_POSTINGS};
    {_INSERT_ENTRIES};
    {_UPDATE_BALANCES};
  END IF;
"""
# From revision 0008, one statement: the entries, their postings and the balance rows. Both
# statement triggers fire at its end, when every posting's entry exists and every entry has
# its postings, so the database proves the links itself (no per-row foreign-key checks,
# which cost about a third of the server's time per posting).
_WRITE_BATCH = f"""WITH written_entries AS ({_INSERT_ENTRIES}),
    written_postings AS ({_INSERT_POSTINGS})
    {_UPDATE_BALANCES};"""
_WRITES_ONE_STATEMENT = f"""  IF false = ANY (o_replayed) THEN
    {_WRITE_BATCH}
  END IF;
"""
# From revision 0011, a single entry (every `post`) has a statement of its own: the batch
# statement's unnest of ten arrays and its filters cost more to run for one entry (measured
# with one writer: ~50 us for the statement alone, ~20 us of the server's time per post)
_WRITES_ONE_OR_MANY = f"""  IF n_entries = 1 AND NOT o_replayed[1] THEN
    WITH written_entries AS ({_INSERT_ONE_ENTRY}),
    written_postings AS ({_INSERT_ONE_ENTRYS_POSTINGS})
    {_UPDATE_ONE_ENTRYS_BALANCES};
  ELSIF false = ANY (o_replayed) THEN
    {_WRITE_BATCH}
  END IF;
"""


# --- migration 0011: the write function proves its own writes -----------------------------
#
# The statement triggers re-check every write, whoever makes it. For ledger_post_entries'
# own writes that is the second time: it has just locked every account, checked each is
# open and has the posting's currency, and it writes each entry with its own new postings in
# one statement (a reused entry id is refused by the primary key). From 0011 it also proves
# the rest of what the triggers prove, each entry's legs are at least two and balance per
# currency, and the legs are the entries' own, and the triggers skip statements run by it:
# it runs as the NOLOGIN role WRITER_ROLE (SECURITY DEFINER, its search_path pinned to its
# own schema), and the triggers fire `WHEN (current_user <> WRITER_ROLE)`. A session gets
# past them only by deliberately becoming that role, as it could deliberately disable the
# triggers. Measured (bench/ledger_bench.py's shapes, one writer): ~12 % of the server's
# time per `post`, ~17 % per batched entry.
WRITER_ROLE = "paycore_ledger_writer"
_SELF_CHECKS = {
    "security": " SECURITY DEFINER",
    "declare": "\n  cur text; sum_e bigint; mixed boolean; off text[];",
    "entry_start": """
    IF e_nlegs[e] < 2 THEN
      o_status := 'too-few-postings'; o_failed := e; o_detail := ARRAY[e_nlegs[e]::text];
      RETURN;
    END IF;
    cur := l_currencies[first]; sum_e := 0; mixed := false; off := NULL;""",
    "leg_check": """
      IF leg_e[i] IS DISTINCT FROM e THEN  -- a malformed batch, never a caller's mistake
        RAISE EXCEPTION 'ledger_post_entries: leg % is given to entry %, but belongs to entry %',
          i, leg_e[i], e USING ERRCODE = 'invalid_parameter_value';
      END IF;
      IF l_currencies[i] = cur THEN
        sum_e := sum_e + l_amounts[i];
      ELSE
        mixed := true;
      END IF;""",
    "entry_end": """    -- balanced per currency; an entry in one currency needs no query
    IF mixed THEN
      SELECT array_agg(s.c || ' ' || s.d ORDER BY s.c) INTO off
        FROM (SELECT l.c, sum(l.m) AS d
                FROM unnest(l_currencies[first:last], l_amounts[first:last]) AS l(c, m)
               GROUP BY l.c HAVING sum(l.m) <> 0) s;
    ELSIF sum_e <> 0 THEN
      off := ARRAY[cur || ' ' || sum_e];
    END IF;
    IF off IS NOT NULL THEN
      o_status := 'unbalanced'; o_failed := e; o_detail := off; RETURN;
    END IF;
""",
    "batch_end": """  IF first <> n_legs + 1 THEN
    RAISE EXCEPTION 'ledger_post_entries: the entries own % legs, the batch has %',
      first - 1, n_legs USING ERRCODE = 'invalid_parameter_value';
  END IF;
""",
}


def leg_json_sql(account: str, amount: str, currency: str) -> str:
    """One leg of chain.legs_json, `[account_id,amount,"CUR"]`, as a SQL text expression: the
    single-entry and the batch request hash must build the very same bytes."""
    return f"""'[' || {account} || ',' || {amount} || ',"' || {currency} || '"]'"""


def posting_hash_sql(entry_hash: str, account: str, amount: str, currency: str,
                     indent: str) -> str:
    """chain.posting_hash of the posting just added to locked account `k` (its new `a_seq[k]`,
    the balance after it in `net`, the chain's previous link in `a_head[k]`), as a SQL text
    expression: both write functions must hash the very same bytes as Python."""
    return (f"encode(sha256(convert_to(a_head[k] || '|' || {entry_hash} || '|' || {account}\n"
            f"{indent}|| '|' || a_seq[k] || '|' || {amount} || '|' || {currency} || '|' || net,\n"
            f"{indent}'UTF8')), 'hex')")


def _post_entries_function(writes: str, self_checked: bool = False,
                           booked_in_order: bool = False) -> str:
    """The function's text; `self_checked` (from 0011) adds the checks that let it write
    without the statement triggers' re-checks, and makes it run as the writer role;
    `booked_in_order` (from 0012) books no earlier than any of its accounts' last posting."""
    pieces = {**(_SELF_CHECKS if self_checked else dict.fromkeys(_SELF_CHECKS, "")),
              **(_BOOKED_IN_ORDER if booked_in_order else _BOOKED_BY_CLOCK)}
    text = (_POST_ENTRIES_TEMPLATE.replace("{writes}", writes)
            .replace("{leg_json_one}", leg_json_sql("legs[i]", "l_amounts[i]", "l_currencies[i]"))
            .replace("{posting_hash}", posting_hash_sql("e_hash[e]", "legs[i]", "l_amounts[i]",
                                                        "l_currencies[i]", " " * 8))
            .replace("{leg_json_batch}",
                     leg_json_sql("s.id", "l_amounts[s.i]", "l_currencies[s.i]")))
    for name, piece in pieces.items():
        text = text.replace("{" + name + "}", piece)
    return text


# --- migration 0012: every account's postings are booked in sequence order ---------------
#
# A batch is booked at `clock_timestamp()` under the locks, or at the last booking time of
# any account it touches if that is later (another writer's clock, e.g. the Python write
# path's, may run ahead of the database's). So an account's postings are booked in the
# order of their sequence numbers, whoever wrote them, and `balance(as_of=)` and
# `statement()` find a booking time by a binary search over `(account_id, account_seq)`
# (ledger.queries): `ix_postings_account_booked` is no longer needed, and each posting
# stops paying for a random-page index insert. `account_balances.last_booked_at` is the
# booking time of the account's last posting, read and written with the balance row the
# writer locks anyway.
_BOOKED_BY_CLOCK = {"declare_booked": "", "lock_last_booked": "", "into_last_booked": "",
                    "column_last_booked": "", "booked_at": "clock_timestamp()"}
_BOOKED_IN_ORDER = {
    "declare_booked": " last_booked timestamptz;",
    "lock_last_booked": ", max(s.last_booked_at)",
    "into_last_booked": ", last_booked",
    "column_last_booked": ", b.last_booked_at",
    # greatest() passes over NULL: an account without postings has no last booking time
    "booked_at": "greatest(clock_timestamp(), last_booked)",
}
_WRITES_BOOKED_IN_ORDER = _WRITES_ONE_OR_MANY.replace(
    "seq = x.s, head_hash = x.h", "seq = x.s, head_hash = x.h, last_booked_at = o_booked_at")
assert _WRITES_BOOKED_IN_ORDER.count("last_booked_at") == 2

POST_ENTRIES_FUNCTION = _post_entries_function(_WRITES_ONE_STATEMENT)
#: from revision 0011: the same writes, with the checks that make the triggers' redundant
POST_ENTRIES_FUNCTION_SELF_CHECKED = _post_entries_function(_WRITES_ONE_OR_MANY,
                                                            self_checked=True)
#: from revision 0012: the same, booked in each account's sequence order
POST_ENTRIES_FUNCTION_BOOKED_IN_ORDER = _post_entries_function(
    _WRITES_BOOKED_IN_ORDER, self_checked=True, booked_in_order=True)
#: the function as revisions 0002 to 0007 left it (what a downgrade from 0008 restores)
POST_ENTRIES_FUNCTION_POSTINGS_FIRST = _post_entries_function(_WRITES_POSTINGS_FIRST)

# The triggers' statement-level queries: their cost estimates for a batch of a thousand
# rows pass `jit_above_cost`, and compiling them took ~150 ms per batch, far more than
# running them (~5 ms).
_NO_JIT_FUNCTIONS = ("ledger_check_new_entries()", "ledger_check_new_postings()")


def fastpath_create_statements(dialect: str) -> list[str]:
    """Migrations 0002 and 0007: the function as it was before 0008 (PostgreSQL only;
    SQLite keeps the Python write path)."""
    if dialect != "postgresql":
        return []
    return [POST_ENTRIES_FUNCTION_POSTINGS_FIRST,
            *(f"ALTER FUNCTION {f} SET jit = off" for f in _NO_JIT_FUNCTIONS)]


def fastpath_drop_statements(dialect: str) -> list[str]:
    if dialect != "postgresql":
        return []
    return [*(f"ALTER FUNCTION {f} RESET jit" for f in _NO_JIT_FUNCTIONS),
            "DROP FUNCTION IF EXISTS ledger_post_entries(jsonb)"]


# --- migration 0008: entries and postings prove their links without foreign keys ----------
#
# PostgreSQL checked each posting's entry (deferred, at commit) and account (at once) with a
# foreign key: a query and a row lock per posting, about a third of the server's time per
# posting (bench/ledger_bench.py). From 0008 the postings' statement trigger proves both for
# the whole statement, and an entry is written with its postings in one statement; accounts,
# which the triggers now stand in for the keys of, can no longer be deleted. SQLite keeps its
# foreign keys (its triggers run per row anyway) and gains the accounts rule.
CHECK_NEW_POSTINGS_BY_STATEMENT = r"""
CREATE OR REPLACE FUNCTION ledger_check_new_postings() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
DECLARE bad record;
BEGIN
  -- the account and the entry of every posting of the statement; one query, one row at most
  SELECT p.entry_id, p.account_id, p.currency, a.id IS NULL AS no_account,
         a.currency AS account_currency, a.status, e.id IS NULL AS no_entry
    INTO bad
    FROM new_postings p
    LEFT JOIN accounts a ON a.id = p.account_id
    LEFT JOIN journal_entries e ON e.id = p.entry_id
   WHERE a.id IS NULL OR p.currency <> a.currency OR a.status <> 'open' OR e.id IS NULL
   ORDER BY (a.id IS NULL OR p.currency <> a.currency OR a.status <> 'open') DESC
   LIMIT 1;
  IF FOUND THEN
    IF bad.no_account THEN
      RAISE EXCEPTION 'posting of entry % names account %, which does not exist',
        bad.entry_id, bad.account_id USING ERRCODE = 'foreign_key_violation';
    ELSIF bad.no_entry AND bad.currency = bad.account_currency AND bad.status = 'open' THEN
      RAISE EXCEPTION 'postings of journal entry % have no entry: write an entry and its '
        'postings in one statement', bad.entry_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RAISE EXCEPTION 'posting of entry % to account % rejected: currency % vs account % (%)',
      bad.entry_id, bad.account_id, bad.currency, bad.account_currency, bad.status
      USING ERRCODE = 'check_violation';
  END IF;
  -- an entry's postings are the ones written with it, none added later
  SELECT n.entry_id INTO bad
    FROM (SELECT entry_id, count(*) AS n FROM new_postings GROUP BY entry_id) n
   WHERE n.n <> (SELECT count(*) FROM postings p WHERE p.entry_id = n.entry_id)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'postings cannot be added to an existing journal entry (%)', bad.entry_id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$
"""
_WRITE_PATH_FUNCTIONS = ("ledger_post_entries(jsonb)", *_NO_JIT_FUNCTIONS)
_KEEP_ACCOUNTS_MESSAGE = "accounts are closed, never deleted: {op} on accounts is not allowed"
_PG_0008 = [
    "ALTER TABLE postings DROP CONSTRAINT postings_entry_id_fkey",
    "ALTER TABLE postings DROP CONSTRAINT postings_account_id_fkey",
    CHECK_NEW_POSTINGS_BY_STATEMENT,
    """
CREATE OR REPLACE FUNCTION ledger_keep_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'accounts are closed, never deleted: % on accounts is not allowed', TG_OP
    USING ERRCODE = 'restrict_violation';
END $$
""",
    "CREATE TRIGGER accounts_not_deleted BEFORE DELETE ON accounts "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_keep_accounts()",
    "CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_keep_accounts()",
    POST_ENTRIES_FUNCTION,
    # most entries carry no external reference: their NULLs need no index entries
    "DROP INDEX ix_journal_entries_external_ref",
    "CREATE INDEX ix_journal_entries_external_ref ON journal_entries (external_ref) "
    "WHERE external_ref IS NOT NULL",
    # Every read of the write path is by key. Its plans are generic and made once per
    # session, from the statistics of that moment: planned while the entries and postings
    # were few (a new ledger, or just after a VACUUM), a look-up became a scan of a table
    # that then grew under it; measured, 32 writers spent a quarter more server time per
    # entry until autovacuum's next ANALYZE. Without sequential scans the plans do not
    # depend on how big the tables were when the session started.
    *(f"ALTER FUNCTION {f} SET enable_seqscan = off" for f in _WRITE_PATH_FUNCTIONS),
]
_PG_0008_UNDO = [
    "DROP INDEX ix_journal_entries_external_ref",
    "CREATE INDEX ix_journal_entries_external_ref ON journal_entries (external_ref)",
    *(f"ALTER FUNCTION {f} RESET enable_seqscan" for f in _WRITE_PATH_FUNCTIONS),
    "DROP TRIGGER IF EXISTS accounts_not_deleted ON accounts",
    "DROP TRIGGER IF EXISTS accounts_no_truncate ON accounts",
    "DROP FUNCTION IF EXISTS ledger_keep_accounts()",
    _PG[1],  # ledger_check_new_postings as 0001 made it
    "ALTER FUNCTION ledger_check_new_postings() SET jit = off",
    POST_ENTRIES_FUNCTION_POSTINGS_FIRST,
    "ALTER TABLE postings ADD CONSTRAINT postings_account_id_fkey FOREIGN KEY (account_id) "
    "REFERENCES accounts (id)",
    "ALTER TABLE postings ADD CONSTRAINT postings_entry_id_fkey FOREIGN KEY (entry_id) "
    "REFERENCES journal_entries (id) DEFERRABLE INITIALLY DEFERRED",
]
_SQLITE_0008 = [
    "CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts "
    f"BEGIN SELECT RAISE(ABORT, '{_KEEP_ACCOUNTS_MESSAGE.format(op='DELETE')}'); END",
]
_SQLITE_0008_UNDO = ["DROP TRIGGER IF EXISTS accounts_no_delete"]


def trigger_links_create_statements(dialect: str) -> list[str]:
    """Migration 0008's DDL."""
    return list(_PG_0008 if dialect == "postgresql" else _SQLITE_0008)


def trigger_links_drop_statements(dialect: str) -> list[str]:
    return list(_PG_0008_UNDO if dialect == "postgresql" else _SQLITE_0008_UNDO)


# --- migration 0009: the statement triggers look up only the rows they were given ---------
#
# 0008's postings trigger joined the new postings to `accounts` and `journal_entries`, and
# the entries' trigger re-read every new entry's postings to sum them. Planned for a batch,
# those joins hashed the whole of both tables on every statement (measured: a batch of a
# thousand entries on a ledger of five thousand spent 7 ms there, growing with the ledger);
# planned for one entry, they were nested loops. Either plan then stayed for the session.
# From 0009 the postings trigger sums each entry's postings from the statement's own rows,
# and every look-up is one index probe per new row: the functions run without hash or merge
# joins, so their plans do not depend on how big the tables were when the session began.
#
# What the two triggers prove together, for any writer: the postings trigger, that each
# posting's account exists, is open and has its currency, that each posting's entry exists,
# that the entry has no postings but these (none added later to an older entry), and that
# they are at least two and balance per currency; the entries' trigger, that each new entry
# has postings at all (so they passed the postings trigger in the same statement).
CHECK_NEW_POSTINGS_BY_ROWS = r"""
CREATE OR REPLACE FUNCTION ledger_check_new_postings() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
DECLARE bad record;
BEGIN
  SELECT p.entry_id, p.account_id, p.currency, a.id IS NULL AS no_account,
         a.currency AS account_currency, a.status
    INTO bad
    FROM new_postings p
    LEFT JOIN accounts a ON a.id = p.account_id
   WHERE a.id IS NULL OR p.currency <> a.currency OR a.status <> 'open'
   LIMIT 1;
  IF FOUND THEN
    IF bad.no_account THEN
      RAISE EXCEPTION 'posting of entry % names account %, which does not exist',
        bad.entry_id, bad.account_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RAISE EXCEPTION 'posting of entry % to account % rejected: currency % vs account % (%)',
      bad.entry_id, bad.account_id, bad.currency, bad.account_currency, bad.status
      USING ERRCODE = 'check_violation';
  END IF;
  SELECT g.entry_id, e.id IS NULL AS no_entry, g.n, g.off,
         g.n <> (SELECT count(*) FROM postings p WHERE p.entry_id = g.entry_id) AS added
    INTO bad
    FROM (SELECT c.entry_id, sum(c.n) AS n,
                 string_agg(c.currency || ' ' || c.diff, ', ' ORDER BY c.currency)
                   FILTER (WHERE c.diff <> 0) AS off
            FROM (SELECT entry_id, currency, sum(amount) AS diff, count(*) AS n
                    FROM new_postings GROUP BY entry_id, currency) c
           GROUP BY c.entry_id) g
    LEFT JOIN journal_entries e ON e.id = g.entry_id
   WHERE e.id IS NULL OR g.n < 2 OR g.off IS NOT NULL
      OR g.n <> (SELECT count(*) FROM postings p WHERE p.entry_id = g.entry_id)
   LIMIT 1;
  IF FOUND THEN
    IF bad.no_entry THEN
      RAISE EXCEPTION 'postings of journal entry % have no entry: write an entry and its '
        'postings in one statement', bad.entry_id USING ERRCODE = 'foreign_key_violation';
    ELSIF bad.added THEN
      RAISE EXCEPTION 'postings cannot be added to an existing journal entry (%)',
        bad.entry_id USING ERRCODE = 'check_violation';
    ELSIF bad.n < 2 THEN
      RAISE EXCEPTION 'journal entry % has fewer than two postings', bad.entry_id
        USING ERRCODE = 'check_violation';
    END IF;
    RAISE EXCEPTION 'journal entry % does not balance: debits minus credits = % (minor units)',
      bad.entry_id, bad.off USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$
"""
CHECK_NEW_ENTRIES_HAVE_POSTINGS = r"""
CREATE OR REPLACE FUNCTION ledger_check_new_entries() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
DECLARE bad uuid;
BEGIN
  SELECT e.id INTO bad FROM new_entries e
   WHERE NOT EXISTS (SELECT 1 FROM postings p WHERE p.entry_id = e.id)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'journal entry % has fewer than two postings', bad
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$
"""
# (CREATE OR REPLACE drops a function's settings: each version re-applies all of its own)
_BY_ROWS = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin", "enable_bitmapscan")
_PG_0009 = [
    CHECK_NEW_POSTINGS_BY_ROWS,
    CHECK_NEW_ENTRIES_HAVE_POSTINGS,
    *(f"ALTER FUNCTION {f} SET {s} = off" for f in _NO_JIT_FUNCTIONS for s in _BY_ROWS),
]
_PG_0009_UNDO = [
    CHECK_NEW_POSTINGS_BY_STATEMENT,
    _PG[2],  # ledger_check_new_entries as 0001 made it
    *(f"ALTER FUNCTION {f} SET {s} = off" for f in _NO_JIT_FUNCTIONS
      for s in ("jit", "enable_seqscan")),
]


def trigger_rows_create_statements(dialect: str) -> list[str]:
    """Migration 0009's DDL (PostgreSQL only: SQLite's triggers run per row already)."""
    return list(_PG_0009) if dialect == "postgresql" else []


def trigger_rows_drop_statements(dialect: str) -> list[str]:
    return list(_PG_0009_UNDO) if dialect == "postgresql" else []


def post_entries_resort_create_statements(dialect: str) -> list[str]:
    """Migration 0010: `ledger_post_entries` reads its JSON in one statement; for a batch it
    builds the request hashes from one sort of the legs (not one per entry) and orders its
    outputs with one sort (not one per output); for a single entry it answers the same in
    plpgsql and one key look-up. CREATE OR REPLACE drops the function's settings, so 0008's
    is applied again."""
    if dialect != "postgresql":
        return []
    return [POST_ENTRIES_FUNCTION,
            "ALTER FUNCTION ledger_post_entries(jsonb) SET enable_seqscan = off"]


# --- migration 0011 (see WRITER_ROLE above) ----------------------------------------------
_SKIP_FOR_WRITER = f"WHEN (current_user <> '{WRITER_ROLE}') "
_TRIGGERS_0011 = [
    "DROP TRIGGER postings_check ON postings",
    "CREATE TRIGGER postings_check AFTER INSERT ON postings REFERENCING NEW TABLE AS "
    f"new_postings FOR EACH STATEMENT {_SKIP_FOR_WRITER}"
    "EXECUTE FUNCTION ledger_check_new_postings()",
    "DROP TRIGGER journal_entries_balanced ON journal_entries",
    "CREATE TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries REFERENCING NEW "
    f"TABLE AS new_entries FOR EACH STATEMENT {_SKIP_FOR_WRITER}"
    "EXECUTE FUNCTION ledger_check_new_entries()",
]
# what the writer reads and writes, and nothing else; the role is the cluster's, shared by
# every schema that holds a paycore ledger, so it is created once and never dropped
_WRITER_GRANTS = [
    ("USAGE", "SCHEMA {schema}"),
    ("SELECT", "TABLE accounts"),
    ("SELECT, UPDATE", "TABLE account_balances"),
    ("SELECT, INSERT", "TABLE journal_entries, postings"),
    ("USAGE", "SEQUENCE postings_id_seq"),
]


def _writer_privileges(verb: str, to_or_from: str,
                       grants: list[tuple[str, str]] | None = None) -> str:
    """GRANT ... TO / REVOKE ... FROM the writer role, as plpgsql lines (`s`: the schema)."""
    lines = []
    for what, on in _WRITER_GRANTS if grants is None else grants:
        statement = f"{verb} {what} ON {on} {to_or_from} {WRITER_ROLE}"
        lines.append(f"  EXECUTE format('{statement.replace('{schema}', '%I')}', s);"
                     if "{schema}" in on else f"  {statement};")
    return "\n".join(lines)


def _writer_function(signature: str) -> str:
    """plpgsql lines that make `signature` a write function run as the writer role."""
    return f"""  -- the function resolves its tables in its own schema only, whoever calls it
  EXECUTE format('ALTER FUNCTION {signature} SET search_path = %I, pg_temp', s);
  ALTER FUNCTION {signature} OWNER TO {WRITER_ROLE};
  -- it writes with the writer's rights: only the roles granted it may call it (the one that
  -- migrates the ledger, and whom it grants), no longer every role that can see the schema
  REVOKE EXECUTE ON FUNCTION {signature} FROM PUBLIC;
  GRANT EXECUTE ON FUNCTION {signature} TO CURRENT_USER;"""


def _writer_setup(grants: list[tuple[str, str]] | None = None) -> str:
    return f"""DO $$
DECLARE s text := current_schema();
BEGIN
  BEGIN
    CREATE ROLE {WRITER_ROLE} NOLOGIN;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another schema's migration made it
  END;
{_writer_privileges("GRANT", "TO", grants)}
{_writer_function("ledger_post_entries(jsonb)")}
END $$"""


def writer_function_setup(signature: str) -> str:
    """Make another write function (its table privileges granted already by 0011 and
    0013) run as the writer role, callable only by the migrating role and whom it grants."""
    return f"""DO $$
DECLARE s text := current_schema();
BEGIN
{_writer_function(signature)}
END $$"""


def _writer_teardown() -> str:
    return f"""DO $$
DECLARE s text := current_schema();
BEGIN
  ALTER FUNCTION ledger_post_entries(jsonb) OWNER TO CURRENT_USER;
  GRANT EXECUTE ON FUNCTION ledger_post_entries(jsonb) TO PUBLIC;
{_writer_privileges("REVOKE", "FROM")}
END $$"""


# what every version of the function from 0011 on needs again after CREATE OR REPLACE,
# which keeps the owner and grants but not ALTER's settings
_FUNCTION_SETTINGS = [
    "ALTER FUNCTION ledger_post_entries(jsonb) SET enable_seqscan = off",
    _writer_setup(),
]
_PG_0011 = [POST_ENTRIES_FUNCTION_SELF_CHECKED, *_FUNCTION_SETTINGS, *_TRIGGERS_0011]
_PG_0011_UNDO = [
    _writer_teardown(),
    POST_ENTRIES_FUNCTION,  # CREATE OR REPLACE: SECURITY INVOKER, and no pinned search_path
    "ALTER FUNCTION ledger_post_entries(jsonb) SET enable_seqscan = off",
    *(_TRIGGERS_0011[0], _PG[-2], _TRIGGERS_0011[2], _PG[-1]),
]


def self_checked_create_statements(dialect: str) -> list[str]:
    """Migration 0011's DDL (PostgreSQL only: SQLite has no write function)."""
    return list(_PG_0011) if dialect == "postgresql" else []


def self_checked_drop_statements(dialect: str) -> list[str]:
    return list(_PG_0011_UNDO) if dialect == "postgresql" else []


# --- migration 0012 (see _BOOKED_IN_ORDER above) -----------------------------------------
_PG_0012 = [POST_ENTRIES_FUNCTION_BOOKED_IN_ORDER, *_FUNCTION_SETTINGS]
_PG_0012_UNDO = [POST_ENTRIES_FUNCTION_SELF_CHECKED, *_FUNCTION_SETTINGS]


def booked_in_order_create_statements(dialect: str) -> list[str]:
    """Migration 0012's function (PostgreSQL only: SQLite books in Python)."""
    return list(_PG_0012) if dialect == "postgresql" else []


def booked_in_order_drop_statements(dialect: str) -> list[str]:
    return list(_PG_0012_UNDO) if dialect == "postgresql" else []


# --- migration 0013: a posting is (entry id, leg number) ----------------------------------
#
# Postings lose their surrogate `id`: its sequence (a nextval per posting) and its primary
# key index (an insert per posting) served nothing the entry's own key cannot. The primary
# key is now (entry_id, leg_no), which also finds an entry's postings in leg order, so
# `ix_postings_entry_id` goes too. Measured (one writer, batches of 1,000 entries, server
# CPU): ~54 -> ~48 us an entry. Leg numbers are the legs' places in the request, from 1.
_INTO_NUMBERED_POSTINGS = """INSERT INTO postings (entry_id, leg_no, account_id, amount, currency,
                          account_seq, balance_after, booked_at, effective_date, hash)"""
# the legs come in entry order; a replayed entry's legs are filtered out whole
_INSERT_NUMBERED_POSTINGS = _INTO_NUMBERED_POSTINGS + """
    SELECT e_ids[x.e], row_number() OVER (PARTITION BY x.e ORDER BY x.o), x.a, x.m, x.c, x.s,
           x.b, o_booked_at, o_effective[x.e], x.h
      FROM unnest(leg_e, legs, l_amounts, l_currencies, o_seqs, o_balances, p_hash)
        WITH ORDINALITY AS x(e, a, m, c, s, b, h, o)
     WHERE x.s IS NOT NULL"""
_INSERT_ONE_ENTRYS_NUMBERED_POSTINGS = _INTO_NUMBERED_POSTINGS + """
    SELECT e_ids[1], x.o, x.a, x.m, x.c, x.s, x.b, o_booked_at, o_effective[1], x.h
      FROM unnest(legs, l_amounts, l_currencies, o_seqs, o_balances, p_hash)
        WITH ORDINALITY AS x(a, m, c, s, b, h, o)"""
_WRITES_NUMBERED = (_WRITES_BOOKED_IN_ORDER
                    .replace(_INSERT_ONE_ENTRYS_POSTINGS, _INSERT_ONE_ENTRYS_NUMBERED_POSTINGS)
                    .replace(_INSERT_POSTINGS, _INSERT_NUMBERED_POSTINGS))
assert _WRITES_NUMBERED.count("leg_no") == 2
#: from revision 0013: the same, writing postings by (entry id, leg number)
POST_ENTRIES_FUNCTION_NUMBERED_LEGS = _post_entries_function(
    _WRITES_NUMBERED, self_checked=True, booked_in_order=True)
# the writer no longer draws posting ids from a sequence
_FUNCTION_SETTINGS_0013 = [_FUNCTION_SETTINGS[0],
                           _writer_setup([g for g in _WRITER_GRANTS if "SEQUENCE" not in g[1]])]
_PG_0013 = [
    # the statement trigger that forbids UPDATE would refuse the numbering of old postings
    "ALTER TABLE postings DISABLE TRIGGER postings_append_only",
    "ALTER TABLE postings ADD COLUMN leg_no integer",
    "UPDATE postings p SET leg_no = n.leg_no FROM (SELECT id, row_number() OVER "
    "(PARTITION BY entry_id ORDER BY id) AS leg_no FROM postings) n WHERE n.id = p.id",
    "ALTER TABLE postings ENABLE TRIGGER postings_append_only",
    "ALTER TABLE postings ALTER COLUMN leg_no SET NOT NULL",
    "ALTER TABLE postings DROP CONSTRAINT postings_pkey",
    "ALTER TABLE postings DROP COLUMN id",  # and its sequence, which the column owns
    "ALTER TABLE postings ADD CONSTRAINT postings_pkey PRIMARY KEY (entry_id, leg_no)",
    "DROP INDEX ix_postings_entry_id",
    POST_ENTRIES_FUNCTION_NUMBERED_LEGS,
    *_FUNCTION_SETTINGS_0013,
]
_PG_0013_UNDO = [
    "CREATE INDEX ix_postings_entry_id ON postings (entry_id)",
    "ALTER TABLE postings DROP CONSTRAINT postings_pkey",
    # ids in the order of the entries' (time-ordered) ids and their legs
    "ALTER TABLE postings ADD COLUMN id bigserial",
    "ALTER TABLE postings DISABLE TRIGGER postings_append_only",
    "UPDATE postings p SET id = n.id FROM (SELECT entry_id, leg_no, row_number() OVER "
    "(ORDER BY entry_id, leg_no) AS id FROM postings) n "
    "WHERE n.entry_id = p.entry_id AND n.leg_no = p.leg_no",
    "ALTER TABLE postings ENABLE TRIGGER postings_append_only",
    "SELECT setval('postings_id_seq', coalesce((SELECT max(id) FROM postings), 0) + 1, false)",
    "ALTER TABLE postings ADD CONSTRAINT postings_pkey PRIMARY KEY (id)",
    "ALTER TABLE postings DROP COLUMN leg_no",
    f"GRANT USAGE ON SEQUENCE postings_id_seq TO {WRITER_ROLE}",
    POST_ENTRIES_FUNCTION_BOOKED_IN_ORDER,
    *_FUNCTION_SETTINGS,
]


def numbered_legs_create_statements(dialect: str) -> list[str]:
    """Migration 0013 on PostgreSQL (SQLite's table is rebuilt by the migration itself)."""
    return list(_PG_0013) if dialect == "postgresql" else []


def numbered_legs_drop_statements(dialect: str) -> list[str]:
    return list(_PG_0013_UNDO) if dialect == "postgresql" else []


def sqlite_triggers_naming_postings() -> dict[str, str]:
    """name -> DDL of SQLite's triggers that are on `postings` or read it: dropped before the
    table is rebuilt (SQLite re-checks every trigger when a table is renamed) and made
    again after."""
    return {t.split()[2]: t for t in _SQLITE if "postings" in t}


# Migration 0020: the checkpoint log is append-only like the entries (the same rejecting
# function on PostgreSQL, which migration 0001 made).
_PG_0020 = [
    "CREATE TRIGGER ledger_checkpoints_append_only BEFORE UPDATE OR DELETE ON "
    "ledger_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()",
    "CREATE TRIGGER ledger_checkpoints_no_truncate BEFORE TRUNCATE ON ledger_checkpoints "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()",
]
_SQLITE_0020 = [
    f"CREATE TRIGGER ledger_checkpoints_no_{op.lower()} BEFORE {op} ON ledger_checkpoints "
    f"BEGIN SELECT RAISE(ABORT, 'the checkpoint log is append-only: {op} on "
    "ledger_checkpoints is not allowed'); END"
    for op in ("UPDATE", "DELETE")
]


def checkpoint_log_create_statements(dialect: str) -> list[str]:
    return list(_PG_0020) if dialect == "postgresql" else list(_SQLITE_0020)


def checkpoint_log_drop_statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS ledger_checkpoints_{s} ON ledger_checkpoints"
                for s in ("append_only", "no_truncate")]
    return [f"DROP TRIGGER IF EXISTS ledger_checkpoints_no_{op}" for op in ("update", "delete")]
