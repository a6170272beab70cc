"""baseline: the whole schema, every package's tables, indexes, constraints, triggers and
functions, and on PostgreSQL the ledger's writer role and its grants, as the migrations up
to 0031 built it (squashed: nothing has been released).

The SQL is frozen here, written by `paycore/migrations/freeze_baseline.py`; nothing in
this file reads the code, so editing `ledger/` (or anything else) cannot change what this
revision builds. A live function's text also stands in `ledger/ddl*.py`, and
tests/paycore/test_migrations.py fails when the two differ: changing a function means a
new migration.

Databases: its revision id is 0031, the head it replaces, so a database built by exactly
that chain is current. A database at any older revision of the old chain cannot be
upgraded (those revisions are gone): build it anew. Downgrade drops everything this
revision made, except the cluster-wide roles (other schemas may use them).

Revision ID: 0031
Revises:
"""
from alembic import op

revision = '0031'
down_revision = None
branch_labels = None
depends_on = None


def _statements(which: dict[str, list[str]]) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect not in which:
        raise NotImplementedError(f"paycore runs on PostgreSQL or SQLite, not {dialect}")
    return which[dialect]


def upgrade() -> None:
    for statement in _statements(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(DOWNGRADE):
        op.execute(statement)


# Everything below is written by paycore/migrations/freeze_baseline.py: do not edit by hand.

POSTGRESQL = [
    r"""CREATE FUNCTION console_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  RAISE EXCEPTION 'console_audit is append-only: % is not allowed', TG_OP;
END $$""",
    r"""CREATE FUNCTION ledger_check_new_entries() RETURNS trigger
    LANGUAGE plpgsql
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
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
END $$""",
    r"""CREATE FUNCTION ledger_check_new_postings() RETURNS trigger
    LANGUAGE plpgsql
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
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
END $$""",
    r"""CREATE FUNCTION ledger_keep_accounts() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  RAISE EXCEPTION 'accounts are closed, never deleted: % on accounts is not allowed', TG_OP
    USING ERRCODE = 'restrict_violation';
END $$""",
    r"""CREATE FUNCTION ledger_lane_slot() RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE slot int; k int := 0;
BEGIN
  slot := nullif(current_setting('paycore.ledger_lane_slot', true), '')::int;
  IF slot IS NOT NULL THEN
    RETURN slot;
  END IF;
  -- a slot this session claimed in a transaction that rolled back (and with it the
  -- setting; the advisory lock is the session's and stays)
  SELECT min(l.objid::text::int) INTO slot FROM pg_locks l
   WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
     AND l.classid = 1346459980::oid AND l.objsubid = 2 AND l.granted;
  IF slot IS NULL THEN
    LOOP
      EXIT WHEN pg_try_advisory_lock(1346459980, k);
      k := k + 1;
    END LOOP;
    slot := k;
  END IF;
  PERFORM set_config('paycore.ledger_lane_slot', slot::text, false);
  RETURN slot;
END $$""",
    r"""CREATE FUNCTION ledger_post_entries(p_batch jsonb, OUT o_status text, OUT o_failed integer, OUT o_detail text[], OUT o_entry_ids uuid[], OUT o_replayed boolean[], OUT o_booked_at timestamp with time zone, OUT o_effective date[], OUT o_account_ids bigint[], OUT o_codes text[], OUT o_seqs bigint[], OUT o_balances bigint[]) RETURNS record
    LANGUAGE plpgsql SECURITY DEFINER
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    AS $$
DECLARE
  -- per entry, in batch order (from the JSON)
  entry_keys text[]; entry_ids uuid[]; entry_kinds text[]; entry_descriptions text[];
  entry_effective_dates date[]; entry_external_refs text[]; entry_metadata text[];
  entry_request_heads text[]; entry_request_tails text[]; entry_hash_heads text[];
  entry_hash_middles text[]; entry_hash_tails text[]; entry_leg_counts int[];
  -- per entry, worked out here
  request_hashes text[]; entry_hashes text[]; prior_hash text[]; prior_id uuid[];
  first_with_same_key int[];
  -- per leg, in batch order: as given (an account id, or NULL and a code), then resolved
  leg_given_ids bigint[]; leg_given_codes text[]; leg_amounts bigint[]; leg_currencies text[];
  leg_entries int[]; leg_account_ids bigint[]; leg_account_places int[]; posting_hashes text[];
  -- per locked balance row (one lane of each account), in account-id order
  account_ids bigint[] := '{}'; account_codes text[] := '{}'; account_currencies text[] := '{}';
  account_statuses text[] := '{}'; account_limits text[] := '{}';
  account_posted_debits bigint[] := '{}'; account_posted_credits bigint[] := '{}';
  account_pending_debits bigint[] := '{}'; account_pending_credits bigint[] := '{}';
  account_seqs bigint[] := '{}'; account_chain_heads text[] := '{}';
  account_touched boolean[] := '{}'; account_lanes int[] := '{}';
  lane_slot int := ledger_lane_slot(); last_booked timestamptz;
  -- e: an entry's place in the batch; i: a leg's; k: an account's among the locked rows
  e int; i int; k int; first_leg int := 1; last_leg int; same_key_entry int;
  n_entries int; n_legs int; legs_json text; entry_effective_date date; today date;
  booked_text text; shortfall bigint; worst_account int; net_balance bigint;
  first_currency text; first_currency_sum bigint; mixed_currencies boolean; imbalances text[];
  has_limit boolean;
BEGIN
  -- the batch comes as one JSON text, [[entry, ...], [leg, ...]]: a single parameter is far
  -- cheaper for the client to send than seventeen arrays. One sort per list, under all
  -- the aggregates (an ORDER BY inside each aggregate sorted once per column).
  -- Both lists in one statement; each leg: account id or code, amount, currency, and its
  -- entry's place in the batch.
  SELECT e.*, l.*
    INTO entry_keys, entry_ids, entry_kinds, entry_descriptions, entry_effective_dates,
         entry_external_refs, entry_metadata, entry_request_heads, entry_request_tails,
         entry_hash_heads, entry_hash_middles, entry_hash_tails, entry_leg_counts,
         leg_given_ids, leg_given_codes, leg_amounts, leg_currencies, leg_entries
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
  n_entries := cardinality(entry_keys); n_legs := cardinality(leg_given_ids);
  leg_account_ids := leg_given_ids;
  IF array_position(leg_given_ids, NULL) IS NOT NULL THEN  -- some legs name an account by code
    SELECT array_agg(coalesce(l.id, a.id) ORDER BY l.o) INTO leg_account_ids
      FROM unnest(leg_given_ids, leg_given_codes) WITH ORDINALITY AS l(id, code, o)
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
         array_fill(false, ARRAY[count(*)::int]), max(s.last_booked_at),
         coalesce(array_agg(s.lane), '{}')
    INTO account_ids, account_codes, account_currencies, account_statuses, account_limits,
         account_posted_debits, account_posted_credits, account_pending_debits,
         account_pending_credits, account_seqs, account_chain_heads, account_touched,
         last_booked, account_lanes
    FROM (SELECT a.id, a.code, a.currency, a.status, a.balance_limit, b.posted_debits,
                 b.posted_credits, b.pending_debits, b.pending_credits, b.seq, b.head_hash,
                 b.last_booked_at, b.lane
            FROM account_balances b JOIN accounts a ON a.id = b.account_id
           WHERE b.account_id = ANY (leg_account_ids) AND b.lane = lane_slot % a.lanes
           ORDER BY b.account_id FOR UPDATE OF b) s;

  -- each leg's place among the locked accounts (NULL: no such account); per entry,
  -- chain.request_hash (head || [[id,amount,"CUR"],...] || tail), the entry its key
  -- already names (if any), and the first entry of the batch with the same key
  IF n_entries = 1 THEN
    -- one entry (every `post`): the same answers as the statement below, without its
    -- sorts, window and joins, which cost more to start than a single entry needs
    leg_account_places := array_fill(NULL::int, ARRAY[n_legs]);
    legs_json := '';
    FOR i IN 1..n_legs LOOP
      leg_account_places[i] := array_position(account_ids, leg_account_ids[i]);
      legs_json := legs_json || CASE WHEN i > 1 THEN ',' ELSE '' END
        || '[' || leg_account_ids[i] || ',' || leg_amounts[i] || ',"' || leg_currencies[i] || '"]';
    END LOOP;
    request_hashes := ARRAY[encode(sha256(convert_to(
      entry_request_heads[1] || '[' || legs_json || ']' || entry_request_tails[1], 'UTF8')), 'hex')];
    SELECT ARRAY[j.request_hash::text], ARRAY[j.id] INTO prior_hash, prior_id
      FROM journal_entries j WHERE j.idempotency_key = entry_keys[1];
    IF NOT FOUND THEN
      prior_hash := ARRAY[NULL::text]; prior_id := ARRAY[NULL::uuid];
    END IF;
    first_with_same_key := ARRAY[1];
  ELSE
    WITH leg AS MATERIALIZED (
      SELECT l.i, l.e, l.id, a.k
        FROM unnest(leg_account_ids, leg_entries) WITH ORDINALITY AS l(id, e, i)
        LEFT JOIN unnest(account_ids) WITH ORDINALITY AS a(id, k) ON a.id = l.id),
    -- the legs come in entry order, so one sort by (entry, leg) orders every entry's legs
    -- for its string_agg (no sort per entry), and one sort by entry orders the outputs
    h AS (
      SELECT s.e AS o, encode(sha256(convert_to(entry_request_heads[s.e] || '[' || string_agg(
               '[' || s.id || ',' || leg_amounts[s.i] || ',"' || leg_currencies[s.i] || '"]', ',')
               || ']' || entry_request_tails[s.e], 'UTF8')), 'hex') AS hash
        FROM (SELECT leg.e, leg.i, leg.id FROM leg ORDER BY leg.e, leg.i) s GROUP BY s.e),
    dup AS (
      SELECT x.o, min(x.o) OVER (PARTITION BY x.key) AS first_of
        FROM unnest(entry_keys) WITH ORDINALITY AS x(key, o))
    SELECT array_agg(r.hash), array_agg(r.request_hash), array_agg(r.id), array_agg(r.first_of),
           (SELECT array_agg(leg.k ORDER BY leg.i) FROM leg)
      INTO request_hashes, prior_hash, prior_id, first_with_same_key, leg_account_places
      FROM (SELECT h.hash, j.request_hash::text AS request_hash, j.id, dup.first_of::int
              FROM h JOIN dup ON dup.o = h.o
              LEFT JOIN journal_entries j ON j.idempotency_key = entry_keys[h.o]
             ORDER BY h.o) r;
  END IF;
  IF array_position(leg_account_places, NULL) IS NOT NULL THEN
    o_status := 'unknown-account'; o_detail := account_ids::text[]; o_codes := account_codes;
    RETURN;
  END IF;

  -- booked under the locks, as the Python path does: an account's postings are booked in
  -- the order of their sequence numbers
  o_booked_at := greatest(clock_timestamp(), last_booked);
  today := (o_booked_at AT TIME ZONE 'UTC')::date;
  booked_text := to_char(o_booked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
    || '+00:00';
  -- every output is filled in place, per entry or per leg (NULL: not written)
  o_entry_ids := array_fill(NULL::uuid, ARRAY[n_entries]);
  o_replayed := array_fill(true, ARRAY[n_entries]);
  o_effective := array_fill(NULL::date, ARRAY[n_entries]);
  entry_hashes := array_fill(NULL::text, ARRAY[n_entries]);
  o_seqs := array_fill(NULL::bigint, ARRAY[n_legs]);
  o_balances := array_fill(NULL::bigint, ARRAY[n_legs]);
  o_codes := array_fill(NULL::text, ARRAY[n_legs]);
  posting_hashes := array_fill(NULL::text, ARRAY[n_legs]);
  FOR e IN 1..n_entries LOOP
    last_leg := first_leg + entry_leg_counts[e] - 1;
    same_key_entry := first_with_same_key[e];
    -- a replay, of a stored entry or of an earlier one in the batch
    IF prior_id[e] IS NOT NULL OR same_key_entry < e THEN
      IF request_hashes[e] <> coalesce(prior_hash[e], request_hashes[same_key_entry]) THEN
        o_status := 'idempotency-conflict'; o_failed := e; RETURN;
      END IF;
      o_entry_ids[e] := coalesce(prior_id[e], o_entry_ids[same_key_entry]);
      first_leg := last_leg + 1;
      CONTINUE;
    END IF;
    entry_effective_date := coalesce(entry_effective_dates[e], today);
    entry_hashes[e] := encode(sha256(convert_to(
      entry_hash_heads[e] || request_hashes[e] || entry_hash_middles[e] || '"'
      || to_char(entry_effective_date, 'YYYY-MM-DD') || '","' || booked_text || '"'
      || entry_hash_tails[e], 'UTF8')), 'hex');
    IF entry_leg_counts[e] < 2 THEN
      o_status := 'too-few-postings'; o_failed := e; o_detail := ARRAY[entry_leg_counts[e]::text];
      RETURN;
    END IF;
    first_currency := leg_currencies[first_leg]; first_currency_sum := 0;
    mixed_currencies := false; imbalances := NULL; has_limit := false;
    FOR i IN first_leg..last_leg LOOP
      k := leg_account_places[i];
      IF leg_entries[i] IS DISTINCT FROM e THEN  -- a malformed batch, never a caller's mistake
        RAISE EXCEPTION 'ledger_post_entries: leg % is given to entry %, but belongs to entry %',
          i, leg_entries[i], e USING ERRCODE = 'invalid_parameter_value';
      END IF;
      IF leg_currencies[i] = first_currency THEN
        first_currency_sum := first_currency_sum + leg_amounts[i];
      ELSE
        mixed_currencies := true;
      END IF;
      IF account_statuses[k] <> 'open' THEN
        o_status := 'account-closed'; o_failed := e; o_detail := ARRAY[account_codes[k]]; RETURN;
      ELSIF account_currencies[k] <> leg_currencies[i] THEN
        o_status := 'currency-mismatch'; o_failed := e;
        o_detail := ARRAY[account_codes[k], account_currencies[k], leg_currencies[i]]; RETURN;
      END IF;
      -- (a refusal after this point still writes nothing: the writes come last)
      IF leg_amounts[i] > 0 THEN
        account_posted_debits[k] := account_posted_debits[k] + leg_amounts[i];
      ELSE
        account_posted_credits[k] := account_posted_credits[k] - leg_amounts[i];
      END IF;
      account_seqs[k] := account_seqs[k] + 1; account_touched[k] := true;
      net_balance := account_posted_debits[k] - account_posted_credits[k];
      -- chain.posting_hash
      account_chain_heads[k] := encode(sha256(convert_to(
        account_chain_heads[k] || '|' || entry_hashes[e] || '|' || leg_account_ids[i]
        || '|' || account_seqs[k] || '|' || leg_amounts[i] || '|' || leg_currencies[i]
        || '|' || net_balance, 'UTF8')), 'hex');
      o_seqs[i] := account_seqs[k]; o_balances[i] := net_balance;
      posting_hashes[i] := account_chain_heads[k];
      o_codes[i] := account_codes[k];
      has_limit := has_limit OR account_limits[k] IS NOT NULL;
    END LOOP;
    -- balanced per currency; an entry in one currency needs no query
    IF mixed_currencies THEN
      SELECT array_agg(s.c || ' ' || s.d ORDER BY s.c) INTO imbalances
        FROM (SELECT l.c, sum(l.m) AS d
                FROM unnest(leg_currencies[first_leg:last_leg],
                            leg_amounts[first_leg:last_leg]) AS l(c, m)
               GROUP BY l.c HAVING sum(l.m) <> 0) s;
    ELSIF first_currency_sum <> 0 THEN
      imbalances := ARRAY[first_currency || ' ' || first_currency_sum];
    END IF;
    IF imbalances IS NOT NULL THEN
      o_status := 'unbalanced'; o_failed := e; o_detail := imbalances; RETURN;
    END IF;
    IF has_limit THEN
      -- limits after each entry; the first account in id order that broke one is named
      worst_account := NULL;
      FOR i IN first_leg..last_leg LOOP
        k := leg_account_places[i];
        IF account_limits[k] IS NOT NULL AND (worst_account IS NULL OR k < worst_account) THEN
          shortfall := CASE account_limits[k]
            WHEN 'debits_must_not_exceed_credits'
              THEN account_posted_debits[k] + account_pending_debits[k] - account_posted_credits[k]
            ELSE account_posted_credits[k] + account_pending_credits[k] - account_posted_debits[k]
          END;
          IF shortfall > 0 THEN
            worst_account := k;
            o_detail := ARRAY[account_codes[k], account_limits[k], shortfall::text,
                              account_currencies[k]];
          END IF;
        END IF;
      END LOOP;
      IF worst_account IS NOT NULL THEN
        o_status := 'balance-limit-exceeded'; o_failed := e; RETURN;
      END IF;
    END IF;
    o_entry_ids[e] := entry_ids[e]; o_replayed[e] := false;
    o_effective[e] := entry_effective_date;
    first_leg := last_leg + 1;
  END LOOP;
  IF first_leg <> n_legs + 1 THEN
    RAISE EXCEPTION 'ledger_post_entries: the entries own % legs, the batch has %',
      first_leg - 1, n_legs USING ERRCODE = 'invalid_parameter_value';
  END IF;

  IF n_entries = 1 AND NOT o_replayed[1] THEN
    -- one entry, not a replay: its row from scalars, all its legs, and every locked row
    -- (each is one of its legs'), so no filters
    WITH written_entries AS (
      INSERT INTO journal_entries (id, idempotency_key, request_hash, kind, description,
                                   effective_date, booked_at, external_ref, metadata, hash)
      VALUES (entry_ids[1], entry_keys[1], request_hashes[1], entry_kinds[1],
              entry_descriptions[1], o_effective[1], o_booked_at, entry_external_refs[1],
              entry_metadata[1]::jsonb, entry_hashes[1])),
    written_postings AS (
      INSERT INTO postings (entry_id, leg_no, account_id, amount, currency,
                            account_seq, balance_after, booked_at, effective_date, hash)
      SELECT entry_ids[1], x.o, x.a, x.m, x.c, x.s, x.b, o_booked_at, o_effective[1], x.h
        FROM unnest(leg_account_ids, leg_amounts, leg_currencies, o_seqs, o_balances,
                    posting_hashes) WITH ORDINALITY AS x(a, m, c, s, b, h, o))
    UPDATE account_balances b
       SET posted_debits = x.pd, posted_credits = x.pc, seq = x.s, head_hash = x.h,
           last_booked_at = o_booked_at
      FROM unnest(account_ids, account_lanes, account_posted_debits, account_posted_credits,
                  account_seqs, account_chain_heads) AS x(id, lane, pd, pc, s, h)
     WHERE b.account_id = x.id AND b.lane = x.lane;
  ELSIF false = ANY (o_replayed) THEN
    -- one statement: the entries, their postings (a replayed entry's legs left out) and
    -- the balance rows the batch moved
    WITH written_entries AS (
      INSERT INTO journal_entries (id, idempotency_key, request_hash, kind, description,
                                   effective_date, booked_at, external_ref, metadata, hash)
      SELECT x.i, x.k, x.r, x.kd, x.d, x.ed, o_booked_at, x.x, x.m::jsonb, x.h
        FROM unnest(entry_ids, entry_keys, request_hashes, entry_kinds, entry_descriptions,
                    o_effective, entry_external_refs, entry_metadata, entry_hashes, o_replayed)
          AS x(i, k, r, kd, d, ed, x, m, h, rep)
       WHERE NOT x.rep),
    written_postings AS (
      INSERT INTO postings (entry_id, leg_no, account_id, amount, currency,
                            account_seq, balance_after, booked_at, effective_date, hash)
      SELECT entry_ids[x.e], row_number() OVER (PARTITION BY x.e ORDER BY x.o), x.a, x.m,
             x.c, x.s, x.b, o_booked_at, o_effective[x.e], x.h
        FROM unnest(leg_entries, leg_account_ids, leg_amounts, leg_currencies, o_seqs,
                    o_balances, posting_hashes) WITH ORDINALITY AS x(e, a, m, c, s, b, h, o)
       WHERE x.s IS NOT NULL)
    UPDATE account_balances b
       SET posted_debits = x.pd, posted_credits = x.pc, seq = x.s, head_hash = x.h,
           last_booked_at = o_booked_at
      FROM unnest(account_ids, account_lanes, account_posted_debits, account_posted_credits,
                  account_seqs, account_chain_heads, account_touched)
        AS x(id, lane, pd, pc, s, h, touched)
     WHERE b.account_id = x.id AND b.lane = x.lane AND x.touched;
  END IF;
  o_account_ids := leg_account_ids;
  o_status := 'posted';
END $$""",
    r"""CREATE FUNCTION ledger_post_entry(p_key text, p_id uuid, p_kind text, p_description text, p_effective date, p_external_ref text, p_metadata text, p_request_head text, p_request_tail text, p_head text, p_middle text, p_tail text, p_ids bigint[], p_codes text[], p_amounts bigint[], p_currencies text[], OUT o_status text, OUT o_detail text[], OUT o_entry_id uuid, OUT o_booked_at timestamp with time zone, OUT o_effective date, OUT o_account_ids bigint[], OUT o_codes text[], OUT o_seqs bigint[], OUT o_balances bigint[]) RETURNS record
    LANGUAGE plpgsql SECURITY DEFINER
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    AS $$
DECLARE
  leg_count int := coalesce(cardinality(p_amounts), 0);
  -- the locked balance rows (one lane of each account), in account-id order
  account_ids bigint[]; account_codes text[]; account_currencies text[];
  account_statuses text[]; account_limits text[];
  account_posted_debits bigint[]; account_posted_credits bigint[];
  account_pending_debits bigint[]; account_pending_credits bigint[];
  account_seqs bigint[]; account_chain_heads text[]; account_lanes int[] := '{}';
  lane_slot int := ledger_lane_slot(); last_booked timestamptz;
  -- per leg: its account's place among them, and its posting's hash
  leg_account_places int[]; posting_hashes text[];
  -- i: a leg's place; k: an account's among the locked rows
  i int; k int; legs_json text := ''; entry_request_hash text; stored_request_hash text;
  entry_hash text; net_balance bigint; shortfall bigint; has_limit boolean := false;
  first_currency_sum bigint := 0; mixed_currencies boolean := false;
BEGIN
  -- a malformed call, never a caller's mistake: Draft.from_request never makes one
  IF cardinality(p_ids) IS DISTINCT FROM leg_count
     OR cardinality(p_codes) IS DISTINCT FROM leg_count
     OR cardinality(p_currencies) IS DISTINCT FROM leg_count
     OR array_position(p_amounts, NULL) IS NOT NULL
     OR array_position(p_currencies, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'ledger_post_entry: each leg needs an account, an amount and a currency '
      '(% ids, % codes, % amounts, % currencies)', cardinality(p_ids), cardinality(p_codes),
      cardinality(p_amounts), cardinality(p_currencies) USING ERRCODE = 'invalid_parameter_value';
  END IF;
  o_account_ids := p_ids;
  IF array_position(p_ids, NULL) IS NOT NULL THEN  -- some legs name their account by code
    SELECT array_agg(coalesce(l.id, a.id) ORDER BY l.o) INTO o_account_ids
      FROM unnest(p_ids, p_codes) WITH ORDINALITY AS l(id, code, o)
      LEFT JOIN accounts a ON l.id IS NULL AND a.code = l.code;
  END IF;
  SELECT array_agg(s.id), array_agg(s.code::text), array_agg(s.currency::text),
         array_agg(s.status::text), array_agg(s.balance_limit::text),
         array_agg(s.posted_debits), array_agg(s.posted_credits), array_agg(s.pending_debits),
         array_agg(s.pending_credits), array_agg(s.seq), array_agg(s.head_hash::text),
         max(s.last_booked_at), array_agg(s.lane)
    INTO account_ids, account_codes, account_currencies, account_statuses, account_limits,
         account_posted_debits, account_posted_credits, account_pending_debits,
         account_pending_credits, account_seqs, account_chain_heads, last_booked, account_lanes
    FROM (SELECT a.id, a.code, a.currency, a.status, a.balance_limit, b.posted_debits,
                 b.posted_credits, b.pending_debits, b.pending_credits, b.seq, b.head_hash,
                 b.last_booked_at, b.lane
            FROM account_balances b JOIN accounts a ON a.id = b.account_id
           WHERE b.account_id = ANY (o_account_ids) AND b.lane = lane_slot % a.lanes
           ORDER BY b.account_id FOR UPDATE OF b) s;
  -- chain.request_hash: head || [[id,amount,"CUR"],...] || tail
  FOR i IN 1..leg_count LOOP
    leg_account_places[i] := array_position(account_ids, o_account_ids[i]);
    legs_json := legs_json || CASE WHEN i > 1 THEN ',' ELSE '' END
      || '[' || o_account_ids[i] || ',' || p_amounts[i] || ',"' || p_currencies[i] || '"]';
  END LOOP;
  IF array_position(leg_account_places, NULL) IS NOT NULL THEN
    o_status := 'unknown-account'; o_detail := coalesce(account_ids::text[], '{}');
    o_codes := coalesce(account_codes, '{}');
    RETURN;
  END IF;
  entry_request_hash := encode(sha256(convert_to(
    p_request_head || '[' || legs_json || ']' || p_request_tail, 'UTF8')), 'hex');
  -- under the locks: a writer that held them and used the key has committed by now
  SELECT j.request_hash, j.id INTO stored_request_hash, o_entry_id
    FROM journal_entries j WHERE j.idempotency_key = p_key;
  IF FOUND THEN
    IF stored_request_hash = entry_request_hash THEN
      o_status := 'replayed';
    ELSE
      o_status := 'idempotency-conflict'; o_entry_id := NULL;
    END IF;
    RETURN;
  END IF;
  IF leg_count < 2 THEN
    o_status := 'too-few-postings'; o_detail := ARRAY[leg_count::text]; RETURN;
  END IF;
  -- booked under the locks, as the Python path does: an account's postings are booked in
  -- the order of their sequence numbers (greatest() passes over NULL: no postings yet)
  o_booked_at := greatest(clock_timestamp(), last_booked);
  o_effective := coalesce(p_effective, (o_booked_at AT TIME ZONE 'UTC')::date);
  entry_hash := encode(sha256(convert_to(p_head || entry_request_hash || p_middle || '"'
    || to_char(o_effective, 'YYYY-MM-DD') || '","'
    || to_char(o_booked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00"'
    || p_tail, 'UTF8')), 'hex');
  FOR i IN 1..leg_count LOOP
    k := leg_account_places[i];
    IF account_statuses[k] <> 'open' THEN
      o_status := 'account-closed'; o_detail := ARRAY[account_codes[k]]; RETURN;
    ELSIF account_currencies[k] <> p_currencies[i] THEN
      o_status := 'currency-mismatch';
      o_detail := ARRAY[account_codes[k], account_currencies[k], p_currencies[i]];
      RETURN;
    END IF;
    IF p_currencies[i] = p_currencies[1] THEN
      first_currency_sum := first_currency_sum + p_amounts[i];
    ELSE
      mixed_currencies := true;
    END IF;
    -- (a refusal after this point still writes nothing: the write comes last)
    IF p_amounts[i] > 0 THEN
      account_posted_debits[k] := account_posted_debits[k] + p_amounts[i];
    ELSE
      account_posted_credits[k] := account_posted_credits[k] - p_amounts[i];
    END IF;
    account_seqs[k] := account_seqs[k] + 1;
    net_balance := account_posted_debits[k] - account_posted_credits[k];
    -- chain.posting_hash
    account_chain_heads[k] := encode(sha256(convert_to(
      account_chain_heads[k] || '|' || entry_hash || '|' || o_account_ids[i]
      || '|' || account_seqs[k] || '|' || p_amounts[i] || '|' || p_currencies[i]
      || '|' || net_balance, 'UTF8')), 'hex');
    o_seqs[i] := account_seqs[k]; o_balances[i] := net_balance;
    posting_hashes[i] := account_chain_heads[k];
    o_codes[i] := account_codes[k];
    has_limit := has_limit OR account_limits[k] IS NOT NULL;
  END LOOP;
  -- balanced per currency; an entry in one currency needs no query
  IF mixed_currencies THEN
    SELECT array_agg(s.c || ' ' || s.d ORDER BY s.c) INTO o_detail
      FROM (SELECT l.c, sum(l.m) AS d FROM unnest(p_currencies, p_amounts) AS l(c, m)
             GROUP BY l.c HAVING sum(l.m) <> 0) s;
  ELSIF first_currency_sum <> 0 THEN
    o_detail := ARRAY[p_currencies[1] || ' ' || first_currency_sum];
  END IF;
  IF o_detail IS NOT NULL THEN
    o_status := 'unbalanced'; RETURN;
  END IF;
  IF has_limit THEN  -- every locked account is one of the legs'; they come in id order
    FOR k IN 1..cardinality(account_ids) LOOP
      shortfall := CASE account_limits[k]
        WHEN 'debits_must_not_exceed_credits'
          THEN account_posted_debits[k] + account_pending_debits[k] - account_posted_credits[k]
        WHEN 'credits_must_not_exceed_debits'
          THEN account_posted_credits[k] + account_pending_credits[k] - account_posted_debits[k]
      END;
      IF shortfall > 0 THEN
        o_status := 'balance-limit-exceeded';
        o_detail := ARRAY[account_codes[k], account_limits[k], shortfall::text,
                          account_currencies[k]];
        RETURN;
      END IF;
    END LOOP;
  END IF;
  o_entry_id := p_id;
  WITH written_entries AS (
    INSERT INTO journal_entries (id, idempotency_key, request_hash, kind, description,
                                 effective_date, booked_at, external_ref, metadata, hash)
    VALUES (p_id, p_key, entry_request_hash, p_kind, p_description, o_effective, o_booked_at,
            p_external_ref, p_metadata::jsonb, entry_hash)),
  written_postings AS (
    INSERT INTO postings (entry_id, leg_no, account_id, amount, currency, account_seq,
                          balance_after, booked_at, effective_date, hash)
    SELECT p_id, x.o, x.a, x.m, x.c, x.s, x.b, o_booked_at, o_effective, x.h
      FROM unnest(o_account_ids, p_amounts, p_currencies, o_seqs, o_balances, posting_hashes)
        WITH ORDINALITY AS x(a, m, c, s, b, h, o))
  UPDATE account_balances b
     SET posted_debits = x.pd, posted_credits = x.pc, seq = x.s, head_hash = x.h,
         last_booked_at = o_booked_at
    FROM unnest(account_ids, account_lanes, account_posted_debits, account_posted_credits,
                account_seqs, account_chain_heads) AS x(id, lane, pd, pc, s, h)
   WHERE b.account_id = x.id AND b.lane = x.lane;
  o_status := 'posted';
END $$""",
    r"""CREATE FUNCTION ledger_reject_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  RAISE EXCEPTION 'ledger is append-only: % on % is not allowed; post a reversing entry',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$""",
    r"""CREATE FUNCTION payout_control_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  RAISE EXCEPTION 'payout_control_audit is append-only: % is not allowed', TG_OP;
END $$""",
    r"""CREATE TABLE account_balances (
    account_id bigint NOT NULL,
    balance_limit character varying(40),
    posted_debits bigint DEFAULT '0'::bigint NOT NULL,
    posted_credits bigint DEFAULT '0'::bigint NOT NULL,
    pending_debits bigint DEFAULT '0'::bigint NOT NULL,
    pending_credits bigint DEFAULT '0'::bigint NOT NULL,
    seq bigint DEFAULT '0'::bigint NOT NULL,
    head_hash character varying(64) NOT NULL,
    last_booked_at timestamp with time zone,
    lane integer DEFAULT 0 NOT NULL,
    CONSTRAINT ck_account_balances_lane_seq CHECK (((lane >= 0) AND (seq >= (lane * '1099511627776'::bigint)) AND (seq < ((lane + 1) * '1099511627776'::bigint)))),
    CONSTRAINT ck_account_balances_limit CHECK (((balance_limit IS NULL) OR (((balance_limit)::text = 'debits_must_not_exceed_credits'::text) AND ((posted_debits + pending_debits) <= posted_credits)) OR (((balance_limit)::text = 'credits_must_not_exceed_debits'::text) AND ((posted_credits + pending_credits) <= posted_debits)))),
    CONSTRAINT ck_account_balances_non_negative CHECK (((posted_debits >= 0) AND (posted_credits >= 0) AND (pending_debits >= 0) AND (pending_credits >= 0) AND (seq >= 0)))
)""",
    r"""CREATE TABLE accounts (
    id bigint NOT NULL,
    code character varying(120) NOT NULL,
    name character varying(200) NOT NULL,
    type character varying(16) NOT NULL,
    currency character varying(3) NOT NULL,
    balance_limit character varying(40),
    owner_ref character varying(120),
    status character varying(16) DEFAULT 'open'::character varying NOT NULL,
    metadata jsonb NOT NULL,
    opened_at timestamp with time zone NOT NULL,
    lanes integer DEFAULT 1 NOT NULL,
    CONSTRAINT ck_accounts_balance_limit CHECK (((balance_limit IS NULL) OR (balance_limit IN ('debits_must_not_exceed_credits', 'credits_must_not_exceed_debits')))),
    CONSTRAINT ck_accounts_lanes CHECK (((lanes >= 1) AND ((balance_limit IS NULL) OR (lanes = 1)))),
    CONSTRAINT ck_accounts_status CHECK ((status IN ('open', 'closed'))),
    CONSTRAINT ck_accounts_type CHECK ((type IN ('asset', 'liability', 'equity', 'income', 'expense')))
)""",
    r"""CREATE SEQUENCE accounts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE accounts_id_seq OWNED BY accounts.id""",
    r"""CREATE TABLE api_idempotency_records (
    merchant_id character varying(120) NOT NULL,
    idempotency_key character varying(255) NOT NULL,
    request_hash character varying(64) NOT NULL,
    method character varying(10) NOT NULL,
    path text NOT NULL,
    state character varying(16) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    locked_at timestamp with time zone NOT NULL,
    completed_at timestamp with time zone,
    response_status integer,
    response_headers json,
    response_body bytea,
    CONSTRAINT ck_api_idempotency_records_state CHECK ((state IN ('in_progress', 'completed')))
)""",
    r"""CREATE TABLE api_keys (
    id character varying(32) NOT NULL,
    merchant_id character varying(120) NOT NULL,
    name character varying(200) NOT NULL,
    secret_sha256 character varying(64) NOT NULL,
    scopes text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    holder character varying(120)
)""",
    r"""CREATE TABLE api_payout_owners (
    payout_id character varying(64) NOT NULL,
    merchant_id character varying(120) NOT NULL,
    created_at timestamp with time zone NOT NULL
)""",
    r"""CREATE TABLE api_rate_limits (
    bucket character varying(200) NOT NULL,
    window_start bigint NOT NULL,
    hits integer NOT NULL
)""",
    r"""CREATE TABLE api_supplier_bindings (
    merchant_id character varying(120) NOT NULL,
    supplier_id character varying(64) NOT NULL,
    created_by character varying(120) NOT NULL,
    created_at timestamp with time zone NOT NULL
)""",
    r"""CREATE TABLE bank_calls (
    id bigint NOT NULL,
    subject character varying(16) NOT NULL,
    subject_id character varying(64) NOT NULL,
    attempt_no integer NOT NULL,
    bank character varying(32) NOT NULL,
    bank_order_id character varying(64) NOT NULL,
    placed_at timestamp with time zone NOT NULL,
    bank_ref character varying(128),
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT ck_bank_calls_attempt_no CHECK ((attempt_no >= 1)),
    CONSTRAINT ck_bank_calls_subject CHECK ((subject IN ('attempt', 'refund', 'payout')))
)""",
    r"""CREATE SEQUENCE bank_calls_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE bank_calls_id_seq OWNED BY bank_calls.id""",
    r"""CREATE TABLE bank_certificates (
    bank character varying(32) NOT NULL,
    role character varying(40) NOT NULL,
    subject text NOT NULL,
    serial character varying(64) NOT NULL,
    not_before timestamp with time zone NOT NULL,
    not_after timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
)""",
    r"""CREATE TABLE bank_health (
    bank character varying(32) NOT NULL,
    state character varying(16) NOT NULL,
    consecutive_failures integer NOT NULL,
    opened_at timestamp with time zone,
    last_error text,
    updated_at timestamp with time zone NOT NULL,
    window_started_at timestamp with time zone,
    probe_token character varying(32),
    probe_expires_at timestamp with time zone,
    CONSTRAINT ck_bank_health_state CHECK ((state IN ('closed', 'open', 'half_open')))
)""",
    r"""CREATE TABLE bank_notifications (
    id bigint NOT NULL,
    bank character varying(32) NOT NULL,
    bank_txn_id character varying(128) NOT NULL,
    kind character varying(16) NOT NULL,
    reference character varying(64) NOT NULL,
    outcome character varying(16) NOT NULL,
    amount_minor bigint NOT NULL,
    currency character varying(3) NOT NULL,
    merchant_id character varying(64) NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone NOT NULL,
    details jsonb NOT NULL
)""",
    r"""CREATE SEQUENCE bank_notifications_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE bank_notifications_id_seq OWNED BY bank_notifications.id""",
    r"""CREATE TABLE beneficiary_accounts (
    id character varying(64) NOT NULL,
    supplier_id character varying(64) NOT NULL,
    holder_name character varying(140) NOT NULL,
    bank_name character varying(140) NOT NULL,
    account_ciphertext text NOT NULL,
    key_id character varying(32) NOT NULL,
    account_hmac character varying(64) NOT NULL,
    account_last4 character varying(4) NOT NULL,
    status character varying(16) NOT NULL,
    created_by character varying(120) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    changed_by character varying(120) NOT NULL,
    changed_at timestamp with time zone NOT NULL,
    verified_by character varying(120),
    verified_at timestamp with time zone,
    updated_at timestamp with time zone NOT NULL,
    status_reason character varying(500),
    number_entered_by character varying(120) NOT NULL,
    CONSTRAINT ck_beneficiary_accounts_four_eyes CHECK ((((status)::text <> 'verified'::text) OR ((verified_by IS NOT NULL) AND (lower((verified_by)::text) <> lower((changed_by)::text)) AND (lower((verified_by)::text) <> lower((number_entered_by)::text))))),
    CONSTRAINT ck_beneficiary_accounts_status CHECK ((status IN ('unverified', 'verified', 'retired')))
)""",
    r"""CREATE TABLE console_audit (
    id bigint NOT NULL,
    at timestamp with time zone NOT NULL,
    actor character varying(120) NOT NULL,
    role character varying(16) NOT NULL,
    action character varying(60) NOT NULL,
    subject character varying(160) NOT NULL,
    reason text NOT NULL,
    outcome character varying(16) NOT NULL,
    details jsonb NOT NULL,
    CONSTRAINT ck_console_audit_outcome CHECK ((outcome IN ('done', 'refused')))
)""",
    r"""CREATE SEQUENCE console_audit_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE console_audit_id_seq OWNED BY console_audit.id""",
    r"""CREATE TABLE hold_legs (
    hold_id uuid NOT NULL,
    leg_no integer NOT NULL,
    account_id bigint NOT NULL,
    amount bigint NOT NULL,
    currency character varying(3) NOT NULL,
    CONSTRAINT ck_hold_legs_amount_nonzero CHECK ((amount <> 0))
)""",
    r"""CREATE TABLE holds (
    id uuid NOT NULL,
    idempotency_key character varying(200) NOT NULL,
    request_hash character varying(64) NOT NULL,
    kind character varying(80) NOT NULL,
    description text NOT NULL,
    external_ref character varying(200),
    metadata jsonb NOT NULL,
    status character varying(16) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    resolved_at timestamp with time zone,
    posted_entry_id uuid,
    CONSTRAINT ck_holds_status CHECK ((status IN ('pending', 'posted', 'voided', 'expired')))
)""",
    r"""CREATE TABLE inquiries (
    id bigint NOT NULL,
    subject character varying(16) NOT NULL,
    subject_id character varying(64) NOT NULL,
    bank character varying(32) NOT NULL,
    status character varying(16) NOT NULL,
    tries integer DEFAULT 0 NOT NULL,
    next_check_at timestamp with time zone NOT NULL,
    last_outcome character varying(32),
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT ck_inquiries_status CHECK ((status IN ('open', 'done', 'review'))),
    CONSTRAINT ck_inquiries_subject CHECK ((subject IN ('attempt', 'refund', 'payout')))
)""",
    r"""CREATE SEQUENCE inquiries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE inquiries_id_seq OWNED BY inquiries.id""",
    r"""CREATE TABLE jobs (
    id bigint NOT NULL,
    kind character varying(64) NOT NULL,
    dedupe_key character varying(200),
    payload json NOT NULL,
    status character varying(16) NOT NULL,
    run_after timestamp with time zone NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer NOT NULL,
    lease_owner character varying(120),
    lease_expires_at timestamp with time zone,
    parent_id bigint,
    progress_done bigint DEFAULT '0'::bigint NOT NULL,
    progress_total bigint,
    result json,
    last_error text,
    created_at timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    request_id character varying(128),
    CONSTRAINT ck_jobs_status CHECK ((status IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'canceled')))
)""",
    r"""CREATE SEQUENCE jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE jobs_id_seq OWNED BY jobs.id""",
    r"""CREATE TABLE journal_entries (
    id uuid NOT NULL,
    idempotency_key character varying(200) NOT NULL,
    request_hash character varying(64) NOT NULL,
    kind character varying(80) NOT NULL,
    description text NOT NULL,
    effective_date date NOT NULL,
    booked_at timestamp with time zone NOT NULL,
    reverses_entry_id uuid,
    external_ref character varying(200),
    metadata jsonb NOT NULL,
    hash character varying(64) NOT NULL
)""",
    r"""CREATE TABLE ledger_checkpoints (
    hash character varying(64) NOT NULL,
    taken_at timestamp with time zone NOT NULL,
    key_id character varying(64) NOT NULL,
    root character varying(64) NOT NULL,
    entry_count bigint NOT NULL,
    account_count bigint NOT NULL
)""",
    r"""CREATE TABLE lending_borrowers (
    id character varying(80) NOT NULL,
    name character varying(200) NOT NULL,
    kind character varying(16) NOT NULL,
    currency character varying(3) NOT NULL,
    payable_account character varying(120) NOT NULL,
    onboarded_on date NOT NULL,
    credit_cap_minor bigint,
    data_imported_on date,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT ck_lending_borrowers_cap CHECK (((credit_cap_minor IS NULL) OR (credit_cap_minor >= 0))),
    CONSTRAINT ck_lending_borrowers_kind CHECK ((kind IN ('supplier', 'merchant')))
)""",
    r"""CREATE TABLE lending_calendar_days (
    market character varying(8) NOT NULL,
    day date NOT NULL,
    year integer NOT NULL,
    business_day boolean NOT NULL,
    name character varying(200) DEFAULT ''::character varying NOT NULL,
    loaded_by character varying(120) NOT NULL,
    loaded_at timestamp with time zone NOT NULL
)""",
    r"""CREATE TABLE lending_decisions (
    id bigint NOT NULL,
    loan_id character varying(80) NOT NULL,
    outcome character varying(16) NOT NULL,
    decided_by character varying(120) NOT NULL,
    decided_on date NOT NULL,
    policy_version character varying(40) NOT NULL,
    comment text DEFAULT ''::text NOT NULL,
    reasons jsonb NOT NULL,
    inputs jsonb NOT NULL,
    credit_line jsonb NOT NULL,
    recorded_at timestamp with time zone NOT NULL,
    CONSTRAINT ck_lending_decisions_outcome CHECK ((outcome IN ('approve', 'decline', 'manual_review')))
)""",
    r"""CREATE SEQUENCE lending_decisions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE lending_decisions_id_seq OWNED BY lending_decisions.id""",
    r"""CREATE TABLE lending_loan_events (
    id bigint NOT NULL,
    loan_id character varying(80) NOT NULL,
    from_status character varying(16),
    to_status character varying(16) NOT NULL,
    event_on date NOT NULL,
    note text DEFAULT ''::text NOT NULL,
    actor character varying(120) DEFAULT 'system'::character varying NOT NULL,
    entry_id uuid,
    recorded_at timestamp with time zone NOT NULL
)""",
    r"""CREATE SEQUENCE lending_loan_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE lending_loan_events_id_seq OWNED BY lending_loan_events.id""",
    r"""CREATE TABLE lending_loans (
    id character varying(80) NOT NULL,
    borrower_id character varying(80) NOT NULL,
    product_code character varying(40) NOT NULL,
    currency character varying(3) NOT NULL,
    requested_minor bigint NOT NULL,
    amount_minor bigint NOT NULL,
    term_days integer NOT NULL,
    status character varying(16) NOT NULL,
    status_on date NOT NULL,
    applied_on date NOT NULL,
    disbursed_on date,
    maturity date,
    extensions integer DEFAULT 0 NOT NULL,
    disbursement_mode character varying(16),
    payout_id character varying(120),
    accrued_through date,
    principal_repaid_minor bigint DEFAULT '0'::bigint NOT NULL,
    interest_accrued_minor bigint DEFAULT '0'::bigint NOT NULL,
    interest_paid_minor bigint DEFAULT '0'::bigint NOT NULL,
    penalty_accrued_minor bigint DEFAULT '0'::bigint NOT NULL,
    penalty_paid_minor bigint DEFAULT '0'::bigint NOT NULL,
    fees_charged_minor bigint DEFAULT '0'::bigint NOT NULL,
    fees_paid_minor bigint DEFAULT '0'::bigint NOT NULL,
    overpaid_minor bigint DEFAULT '0'::bigint NOT NULL,
    written_off_minor bigint DEFAULT '0'::bigint NOT NULL,
    recovered_minor bigint DEFAULT '0'::bigint NOT NULL,
    funding_interest_minor bigint DEFAULT '0'::bigint NOT NULL,
    max_dpd integer DEFAULT 0 NOT NULL,
    version integer DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    product_version integer,
    contractual_maturity date,
    CONSTRAINT ck_lending_loans_amounts CHECK (((amount_minor > 0) AND (requested_minor > 0) AND (term_days > 0) AND (extensions >= 0) AND (principal_repaid_minor >= 0) AND (principal_repaid_minor <= amount_minor) AND (interest_paid_minor >= 0) AND (interest_paid_minor <= interest_accrued_minor) AND (penalty_paid_minor >= 0) AND (penalty_paid_minor <= penalty_accrued_minor) AND (fees_paid_minor >= 0) AND (fees_paid_minor <= fees_charged_minor) AND (overpaid_minor >= 0) AND (written_off_minor >= 0) AND (recovered_minor >= 0))),
    CONSTRAINT ck_lending_loans_status CHECK ((status IN ('applied', 'manual_review', 'approved', 'declined', 'disbursed', 'active', 'extended', 'overdue', 'repaid', 'written_off', 'recovered')))
)""",
    r"""CREATE TABLE lending_overpayment_moves (
    id character varying(160) NOT NULL,
    loan_id character varying(80) NOT NULL,
    kind character varying(16) NOT NULL,
    amount_minor bigint NOT NULL,
    moved_on date NOT NULL,
    target_loan_id character varying(80),
    payout_id character varying(120),
    entry_id uuid NOT NULL,
    actor character varying(120) NOT NULL,
    recorded_at timestamp with time zone NOT NULL,
    CONSTRAINT ck_lending_overpayment_amount CHECK ((amount_minor > 0)),
    CONSTRAINT ck_lending_overpayment_kind CHECK ((kind IN ('refund', 'apply')))
)""",
    r"""CREATE TABLE lending_products (
    code character varying(40) NOT NULL,
    version integer NOT NULL,
    status character varying(16) NOT NULL,
    effective_from date NOT NULL,
    definition jsonb NOT NULL,
    changed_by character varying(120) NOT NULL,
    reason text DEFAULT ''::text NOT NULL,
    recorded_at timestamp with time zone NOT NULL,
    CONSTRAINT ck_lending_products_status CHECK ((status IN ('active', 'retired'))),
    CONSTRAINT ck_lending_products_version CHECK ((version > 0))
)""",
    r"""CREATE TABLE lending_repayments (
    id character varying(160) NOT NULL,
    loan_id character varying(80) NOT NULL,
    source character varying(16) NOT NULL,
    paid_on date NOT NULL,
    amount_minor bigint NOT NULL,
    principal_minor bigint NOT NULL,
    interest_minor bigint NOT NULL,
    penalty_minor bigint NOT NULL,
    fees_minor bigint NOT NULL,
    excess_minor bigint NOT NULL,
    principal_after_minor bigint NOT NULL,
    allocation jsonb NOT NULL,
    settlement_id character varying(120),
    entry_id uuid NOT NULL,
    recorded_at timestamp with time zone NOT NULL,
    CONSTRAINT ck_lending_repayments_amount CHECK ((amount_minor > 0)),
    CONSTRAINT ck_lending_repayments_source CHECK ((source IN ('bank', 'offset', 'recovery')))
)""",
    r"""CREATE TABLE lending_settlement_offsets (
    settlement_id character varying(120) NOT NULL,
    borrower_id character varying(80) NOT NULL,
    settled_on date NOT NULL,
    available_minor bigint NOT NULL,
    offset_minor bigint NOT NULL,
    payout_minor bigint NOT NULL,
    payout_id character varying(120),
    entry_id uuid,
    recorded_at timestamp with time zone NOT NULL
)""",
    r"""CREATE TABLE lending_trade_records (
    id bigint NOT NULL,
    borrower_id character varying(80) NOT NULL,
    kind character varying(16) NOT NULL,
    record_ref character varying(120) NOT NULL,
    record_date date NOT NULL,
    buyer_ref character varying(120),
    amount_minor bigint NOT NULL,
    currency character varying(3) NOT NULL,
    source character varying(16) NOT NULL,
    imported_on date NOT NULL,
    CONSTRAINT ck_lending_trade_records_amount CHECK ((amount_minor >= 0)),
    CONSTRAINT ck_lending_trade_records_kind CHECK ((kind IN ('purchase_order', 'return', 'sale')))
)""",
    r"""CREATE SEQUENCE lending_trade_records_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE lending_trade_records_id_seq OWNED BY lending_trade_records.id""",
    r"""CREATE TABLE notification_rejections (
    id bigint NOT NULL,
    bank character varying(32) NOT NULL,
    reason character varying(32) NOT NULL,
    detail text NOT NULL,
    kind character varying(16),
    reference character varying(64),
    bank_txn_id character varying(128),
    headers jsonb NOT NULL,
    body_sha256 character varying(64) NOT NULL,
    body_size integer NOT NULL,
    received_at timestamp with time zone NOT NULL
)""",
    r"""CREATE SEQUENCE notification_rejections_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE notification_rejections_id_seq OWNED BY notification_rejections.id""",
    r"""CREATE TABLE outbox_events (
    id character varying(40) NOT NULL,
    seq bigint,
    topic character varying(64) NOT NULL,
    object_type character varying(32) NOT NULL,
    object_id character varying(120) NOT NULL,
    audience character varying(120) NOT NULL,
    payload jsonb NOT NULL,
    occurred_at timestamp with time zone NOT NULL
)""",
    r"""CREATE TABLE payment_attempts (
    id character varying(64) NOT NULL,
    intent_id character varying(64) NOT NULL,
    bank character varying(32) NOT NULL,
    bank_merchant_id character varying(64) NOT NULL,
    status character varying(16) NOT NULL,
    amount_minor bigint NOT NULL,
    currency character varying(3) NOT NULL,
    bank_payment_id character varying(128),
    bank_txn_id character varying(128),
    instruction jsonb,
    failure_reason text,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    settled_at timestamp with time zone
)""",
    r"""CREATE TABLE payment_intents (
    id character varying(64) NOT NULL,
    merchant_id character varying(64) NOT NULL,
    order_id character varying(64) NOT NULL,
    supplier_id character varying(64) NOT NULL,
    amount_minor bigint NOT NULL,
    currency character varying(3) NOT NULL,
    bank character varying(32),
    status character varying(16) NOT NULL,
    description text NOT NULL,
    current_attempt_id character varying(64),
    captured_minor bigint DEFAULT '0'::bigint NOT NULL,
    commission_minor bigint DEFAULT '0'::bigint NOT NULL,
    refund_reserved_minor bigint DEFAULT '0'::bigint NOT NULL,
    refunded_minor bigint DEFAULT '0'::bigint NOT NULL,
    refunded_commission_minor bigint DEFAULT '0'::bigint NOT NULL,
    review_reason text,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT ck_payment_intents_amount CHECK ((amount_minor > 0)),
    CONSTRAINT ck_payment_intents_refunds CHECK (((refund_reserved_minor >= 0) AND (refund_reserved_minor <= captured_minor) AND (refunded_minor >= 0) AND (refunded_minor <= refund_reserved_minor)))
)""",
    r"""CREATE TABLE payout_control_audit (
    id bigint NOT NULL,
    at timestamp with time zone NOT NULL,
    actor character varying(120) NOT NULL,
    action character varying(40) NOT NULL,
    supplier_id character varying(64) NOT NULL,
    subject_id character varying(64) NOT NULL,
    details jsonb NOT NULL
)""",
    r"""CREATE SEQUENCE payout_control_audit_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE payout_control_audit_id_seq OWNED BY payout_control_audit.id""",
    r"""CREATE TABLE payout_reviews (
    id bigint NOT NULL,
    payout_id character varying(64) NOT NULL,
    kind character varying(24) NOT NULL,
    status character varying(16) NOT NULL,
    detail text NOT NULL,
    bank character varying(32),
    bank_txn_id character varying(128),
    amount_minor bigint,
    currency character varying(3),
    entry_id uuid,
    created_at timestamp with time zone NOT NULL,
    resolved_at timestamp with time zone,
    resolved_by character varying(120),
    resolution text,
    CONSTRAINT ck_payout_reviews_kind CHECK ((kind IN ('returned', 'return_not_booked', 'mismatch', 'conflict'))),
    CONSTRAINT ck_payout_reviews_status CHECK ((status IN ('open', 'resolved')))
)""",
    r"""CREATE SEQUENCE payout_reviews_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE payout_reviews_id_seq OWNED BY payout_reviews.id""",
    r"""CREATE TABLE payouts (
    id character varying(64) NOT NULL,
    request_hash character varying(64) NOT NULL,
    beneficiary_ref character varying(120) NOT NULL,
    beneficiary_name character varying(200) NOT NULL,
    beneficiary_account character varying(64) NOT NULL,
    beneficiary_bank_name character varying(200) NOT NULL,
    amount_minor bigint NOT NULL,
    currency character varying(3) NOT NULL,
    debit_account character varying(120) NOT NULL,
    purpose character varying(80) NOT NULL,
    description text NOT NULL,
    banks jsonb NOT NULL,
    bank character varying(32),
    status character varying(16) NOT NULL,
    hold_id uuid NOT NULL,
    entry_id uuid,
    bank_txn_id character varying(128),
    submit_rounds integer DEFAULT 0 NOT NULL,
    failure_reason text,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    settled_at timestamp with time zone,
    review_reason text,
    CONSTRAINT ck_payouts_amount CHECK ((amount_minor > 0))
)""",
    r"""CREATE TABLE postings (
    entry_id uuid NOT NULL,
    account_id bigint NOT NULL,
    amount bigint NOT NULL,
    currency character varying(3) NOT NULL,
    account_seq bigint NOT NULL,
    balance_after bigint NOT NULL,
    booked_at timestamp with time zone NOT NULL,
    effective_date date NOT NULL,
    hash character varying(64) NOT NULL,
    leg_no integer NOT NULL,
    CONSTRAINT ck_postings_amount_nonzero CHECK ((amount <> 0))
)""",
    r"""CREATE TABLE recon_audit (
    id bigint NOT NULL,
    at timestamp with time zone NOT NULL,
    actor character varying(120) NOT NULL,
    action character varying(40) NOT NULL,
    bank_account_id bigint,
    exception_id bigint,
    match_id uuid,
    reason text NOT NULL,
    details jsonb NOT NULL
)""",
    r"""CREATE SEQUENCE recon_audit_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE recon_audit_id_seq OWNED BY recon_audit.id""",
    r"""CREATE TABLE recon_bank_accounts (
    id bigint NOT NULL,
    code character varying(60) NOT NULL,
    bank_account_number character varying(60),
    currency character varying(3) NOT NULL,
    bank_ledger_account character varying(120) NOT NULL,
    clearing_account character varying(120) NOT NULL,
    payout_clearing_account character varying(120) NOT NULL,
    fee_account character varying(120) NOT NULL,
    differences_account character varying(120) NOT NULL,
    tolerance_minor bigint NOT NULL,
    rules jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT ck_recon_bank_accounts_tolerance CHECK ((tolerance_minor >= 0))
)""",
    r"""CREATE SEQUENCE recon_bank_accounts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE recon_bank_accounts_id_seq OWNED BY recon_bank_accounts.id""",
    r"""CREATE TABLE recon_book_items (
    account_id bigint NOT NULL,
    account_seq bigint NOT NULL,
    entry_id uuid NOT NULL,
    amount_minor bigint NOT NULL,
    currency character varying(3) NOT NULL,
    effective_date date NOT NULL,
    kind character varying(80) NOT NULL,
    external_ref character varying(200),
    description text NOT NULL,
    status character varying(16) NOT NULL,
    CONSTRAINT ck_recon_items_status CHECK ((status IN ('open', 'matched', 'resolved', 'void')))
)""",
    r"""CREATE TABLE recon_exceptions (
    id bigint NOT NULL,
    bank_account_id bigint,
    kind character varying(16) NOT NULL,
    line_id bigint,
    item_account_id bigint,
    item_account_seq bigint,
    amount_minor bigint NOT NULL,
    currency character varying(3) NOT NULL,
    date date NOT NULL,
    reference character varying(200),
    description text NOT NULL,
    candidates jsonb NOT NULL,
    status character varying(16) NOT NULL,
    opened_at timestamp with time zone NOT NULL,
    resolved_at timestamp with time zone,
    resolved_by character varying(120),
    resolution character varying(16),
    reason text,
    match_id uuid,
    CONSTRAINT ck_recon_exceptions_kind CHECK ((kind IN ('statement_line', 'book_item'))),
    CONSTRAINT ck_recon_exceptions_status CHECK ((status IN ('open', 'resolved')))
)""",
    r"""CREATE SEQUENCE recon_exceptions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE recon_exceptions_id_seq OWNED BY recon_exceptions.id""",
    r"""CREATE TABLE recon_match_items (
    match_id uuid NOT NULL,
    account_id bigint NOT NULL,
    account_seq bigint NOT NULL
)""",
    r"""CREATE TABLE recon_match_lines (
    match_id uuid NOT NULL,
    line_id bigint NOT NULL
)""",
    r"""CREATE TABLE recon_matches (
    id uuid NOT NULL,
    bank_account_id bigint NOT NULL,
    rule character varying(32) NOT NULL,
    fee_minor bigint NOT NULL,
    difference_minor bigint NOT NULL,
    score integer NOT NULL,
    entry_id uuid,
    created_at timestamp with time zone NOT NULL,
    created_by character varying(120) NOT NULL,
    reason text NOT NULL
)""",
    r"""CREATE TABLE recon_statement_lines (
    id bigint NOT NULL,
    bank_account_id bigint NOT NULL,
    statement_id bigint NOT NULL,
    line_identity character varying(64) NOT NULL,
    amount_minor bigint NOT NULL,
    currency character varying(3) NOT NULL,
    value_date date NOT NULL,
    booking_date date NOT NULL,
    bank_reference character varying(200),
    end_to_end_id character varying(200),
    customer_reference character varying(200),
    counterparty_name character varying(300),
    counterparty_account character varying(100),
    description text NOT NULL,
    transaction_code character varying(60),
    reversal boolean NOT NULL,
    batch jsonb,
    status character varying(16) NOT NULL,
    review_flag text,
    CONSTRAINT ck_recon_lines_status CHECK ((status IN ('open', 'matched', 'resolved')))
)""",
    r"""CREATE SEQUENCE recon_statement_lines_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE recon_statement_lines_id_seq OWNED BY recon_statement_lines.id""",
    r"""CREATE TABLE recon_statements (
    id bigint NOT NULL,
    bank_account_id bigint NOT NULL,
    statement_ref character varying(200) NOT NULL,
    file_hash character varying(64) NOT NULL,
    source_name character varying(300) NOT NULL,
    format character varying(16) NOT NULL,
    format_version character varying(16),
    kind character varying(16) NOT NULL,
    currency character varying(3) NOT NULL,
    period_start date,
    period_end date,
    opening_minor bigint,
    opening_date date,
    opening_derived boolean NOT NULL,
    closing_minor bigint,
    closing_date date,
    line_count integer NOT NULL,
    new_line_count integer NOT NULL,
    imported_at timestamp with time zone NOT NULL,
    imported_by character varying(120) NOT NULL,
    warnings jsonb
)""",
    r"""CREATE SEQUENCE recon_statements_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE recon_statements_id_seq OWNED BY recon_statements.id""",
    r"""CREATE TABLE recon_sync_cursors (
    account_id bigint NOT NULL,
    last_seq bigint NOT NULL,
    lane integer DEFAULT 0 NOT NULL
)""",
    r"""CREATE TABLE refunds (
    id character varying(64) NOT NULL,
    intent_id character varying(64) NOT NULL,
    attempt_id character varying(64) NOT NULL,
    bank character varying(32) NOT NULL,
    status character varying(16) NOT NULL,
    amount_minor bigint NOT NULL,
    currency character varying(3) NOT NULL,
    reason text NOT NULL,
    commission_minor bigint,
    hold_id uuid,
    bank_txn_id character varying(128),
    failure_reason text,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    settled_at timestamp with time zone,
    CONSTRAINT ck_refunds_amount CHECK ((amount_minor > 0))
)""",
    r"""CREATE TABLE staff_sessions (
    token_sha256 character varying(64) NOT NULL,
    username character varying(64) NOT NULL,
    csrf_token character varying(64) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone
)""",
    r"""CREATE TABLE staff_users (
    username character varying(64) NOT NULL,
    full_name character varying(200) NOT NULL,
    role character varying(16) NOT NULL,
    password_hash character varying(200) NOT NULL,
    status character varying(16) NOT NULL,
    failed_logins integer DEFAULT 0 NOT NULL,
    locked_until timestamp with time zone,
    must_change_password boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    last_login_at timestamp with time zone,
    CONSTRAINT ck_staff_users_role CHECK ((role IN ('risk', 'finance', 'payments', 'controller', 'viewer'))),
    CONSTRAINT ck_staff_users_status CHECK ((status IN ('active', 'disabled')))
)""",
    r"""CREATE TABLE supplier_payouts (
    payout_id character varying(64) NOT NULL,
    supplier_id character varying(64) NOT NULL,
    account_id character varying(64) NOT NULL,
    account_changed_at timestamp with time zone NOT NULL,
    requested_by character varying(120) NOT NULL,
    approval_reason text,
    decided_by character varying(120),
    decision character varying(16),
    decided_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT ck_supplier_payouts_decision CHECK (((decision IS NULL) OR (decision IN ('approved', 'rejected')))),
    CONSTRAINT ck_supplier_payouts_four_eyes CHECK (((decision IS NULL) OR ((decision)::text <> 'approved'::text) OR ((decided_by)::text <> (requested_by)::text)))
)""",
    r"""CREATE TABLE supplier_terms (
    supplier_id character varying(64) NOT NULL,
    commission_ppm integer NOT NULL,
    refund_commission character varying(16) NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT ck_supplier_terms_rate CHECK (((commission_ppm >= 0) AND (commission_ppm <= 1000000))),
    CONSTRAINT ck_supplier_terms_refund_commission CHECK ((refund_commission IN ('proportional', 'keep')))
)""",
    r"""CREATE TABLE webhook_deliveries (
    id bigint NOT NULL,
    endpoint_id character varying(40) NOT NULL,
    event_id character varying(40) NOT NULL,
    event_seq bigint NOT NULL,
    object_key character varying(160) NOT NULL,
    status character varying(16) NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone NOT NULL,
    locked_until timestamp with time zone,
    last_status_code integer,
    last_error text,
    created_at timestamp with time zone NOT NULL,
    delivered_at timestamp with time zone,
    CONSTRAINT ck_webhook_deliveries_status CHECK ((status IN ('pending', 'delivered', 'failed')))
)""",
    r"""CREATE SEQUENCE webhook_deliveries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1""",
    r"""ALTER SEQUENCE webhook_deliveries_id_seq OWNED BY webhook_deliveries.id""",
    r"""CREATE TABLE webhook_endpoints (
    id character varying(40) NOT NULL,
    merchant_id character varying(120) NOT NULL,
    url text NOT NULL,
    topics text NOT NULL,
    secret character varying(200) NOT NULL,
    previous_secret character varying(200),
    previous_secret_expires_at timestamp with time zone,
    status character varying(16) NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    disabled_at timestamp with time zone,
    secret_key_id character varying(32),
    previous_secret_key_id character varying(32),
    CONSTRAINT ck_webhook_endpoints_status CHECK ((status IN ('enabled', 'disabled')))
)""",
    r"""ALTER TABLE ONLY accounts ALTER COLUMN id SET DEFAULT nextval('accounts_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY bank_calls ALTER COLUMN id SET DEFAULT nextval('bank_calls_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY bank_notifications ALTER COLUMN id SET DEFAULT nextval('bank_notifications_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY console_audit ALTER COLUMN id SET DEFAULT nextval('console_audit_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY inquiries ALTER COLUMN id SET DEFAULT nextval('inquiries_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY jobs ALTER COLUMN id SET DEFAULT nextval('jobs_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY lending_decisions ALTER COLUMN id SET DEFAULT nextval('lending_decisions_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY lending_loan_events ALTER COLUMN id SET DEFAULT nextval('lending_loan_events_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY lending_trade_records ALTER COLUMN id SET DEFAULT nextval('lending_trade_records_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY notification_rejections ALTER COLUMN id SET DEFAULT nextval('notification_rejections_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY payout_control_audit ALTER COLUMN id SET DEFAULT nextval('payout_control_audit_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY payout_reviews ALTER COLUMN id SET DEFAULT nextval('payout_reviews_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY recon_audit ALTER COLUMN id SET DEFAULT nextval('recon_audit_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY recon_bank_accounts ALTER COLUMN id SET DEFAULT nextval('recon_bank_accounts_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY recon_exceptions ALTER COLUMN id SET DEFAULT nextval('recon_exceptions_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY recon_statement_lines ALTER COLUMN id SET DEFAULT nextval('recon_statement_lines_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY recon_statements ALTER COLUMN id SET DEFAULT nextval('recon_statements_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY webhook_deliveries ALTER COLUMN id SET DEFAULT nextval('webhook_deliveries_id_seq'::regclass)""",
    r"""ALTER TABLE ONLY account_balances
    ADD CONSTRAINT account_balances_pkey PRIMARY KEY (account_id, lane)""",
    r"""ALTER TABLE ONLY accounts
    ADD CONSTRAINT accounts_code_key UNIQUE (code)""",
    r"""ALTER TABLE ONLY accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY api_idempotency_records
    ADD CONSTRAINT api_idempotency_records_pkey PRIMARY KEY (merchant_id, idempotency_key)""",
    r"""ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY api_payout_owners
    ADD CONSTRAINT api_payout_owners_pkey PRIMARY KEY (payout_id)""",
    r"""ALTER TABLE ONLY api_rate_limits
    ADD CONSTRAINT api_rate_limits_pkey PRIMARY KEY (bucket, window_start)""",
    r"""ALTER TABLE ONLY api_supplier_bindings
    ADD CONSTRAINT api_supplier_bindings_pkey PRIMARY KEY (merchant_id, supplier_id)""",
    r"""ALTER TABLE ONLY bank_calls
    ADD CONSTRAINT bank_calls_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY bank_certificates
    ADD CONSTRAINT bank_certificates_pkey PRIMARY KEY (bank, role)""",
    r"""ALTER TABLE ONLY bank_health
    ADD CONSTRAINT bank_health_pkey PRIMARY KEY (bank)""",
    r"""ALTER TABLE ONLY bank_notifications
    ADD CONSTRAINT bank_notifications_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY beneficiary_accounts
    ADD CONSTRAINT beneficiary_accounts_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY console_audit
    ADD CONSTRAINT console_audit_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY hold_legs
    ADD CONSTRAINT hold_legs_pkey PRIMARY KEY (hold_id, leg_no)""",
    r"""ALTER TABLE ONLY holds
    ADD CONSTRAINT holds_idempotency_key_key UNIQUE (idempotency_key)""",
    r"""ALTER TABLE ONLY holds
    ADD CONSTRAINT holds_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY inquiries
    ADD CONSTRAINT inquiries_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY jobs
    ADD CONSTRAINT jobs_dedupe_key_key UNIQUE (dedupe_key)""",
    r"""ALTER TABLE ONLY jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY journal_entries
    ADD CONSTRAINT journal_entries_idempotency_key_key UNIQUE (idempotency_key)""",
    r"""ALTER TABLE ONLY journal_entries
    ADD CONSTRAINT journal_entries_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY journal_entries
    ADD CONSTRAINT journal_entries_reverses_entry_id_key UNIQUE (reverses_entry_id)""",
    r"""ALTER TABLE ONLY ledger_checkpoints
    ADD CONSTRAINT ledger_checkpoints_pkey PRIMARY KEY (hash)""",
    r"""ALTER TABLE ONLY lending_borrowers
    ADD CONSTRAINT lending_borrowers_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY lending_calendar_days
    ADD CONSTRAINT lending_calendar_days_pkey PRIMARY KEY (market, day)""",
    r"""ALTER TABLE ONLY lending_decisions
    ADD CONSTRAINT lending_decisions_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY lending_loan_events
    ADD CONSTRAINT lending_loan_events_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY lending_loans
    ADD CONSTRAINT lending_loans_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY lending_overpayment_moves
    ADD CONSTRAINT lending_overpayment_moves_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY lending_products
    ADD CONSTRAINT lending_products_pkey PRIMARY KEY (code, version)""",
    r"""ALTER TABLE ONLY lending_repayments
    ADD CONSTRAINT lending_repayments_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY lending_settlement_offsets
    ADD CONSTRAINT lending_settlement_offsets_pkey PRIMARY KEY (settlement_id, borrower_id)""",
    r"""ALTER TABLE ONLY lending_trade_records
    ADD CONSTRAINT lending_trade_records_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY notification_rejections
    ADD CONSTRAINT notification_rejections_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY outbox_events
    ADD CONSTRAINT outbox_events_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY outbox_events
    ADD CONSTRAINT outbox_events_seq_key UNIQUE (seq)""",
    r"""ALTER TABLE ONLY payment_attempts
    ADD CONSTRAINT payment_attempts_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY payment_intents
    ADD CONSTRAINT payment_intents_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY payout_control_audit
    ADD CONSTRAINT payout_control_audit_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY payout_reviews
    ADD CONSTRAINT payout_reviews_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY payouts
    ADD CONSTRAINT payouts_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY postings
    ADD CONSTRAINT postings_pkey PRIMARY KEY (entry_id, leg_no)""",
    r"""ALTER TABLE ONLY recon_audit
    ADD CONSTRAINT recon_audit_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY recon_bank_accounts
    ADD CONSTRAINT recon_bank_accounts_code_key UNIQUE (code)""",
    r"""ALTER TABLE ONLY recon_bank_accounts
    ADD CONSTRAINT recon_bank_accounts_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY recon_book_items
    ADD CONSTRAINT recon_book_items_pkey PRIMARY KEY (account_id, account_seq)""",
    r"""ALTER TABLE ONLY recon_exceptions
    ADD CONSTRAINT recon_exceptions_line_id_key UNIQUE (line_id)""",
    r"""ALTER TABLE ONLY recon_exceptions
    ADD CONSTRAINT recon_exceptions_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY recon_match_items
    ADD CONSTRAINT recon_match_items_pkey PRIMARY KEY (account_id, account_seq)""",
    r"""ALTER TABLE ONLY recon_match_lines
    ADD CONSTRAINT recon_match_lines_pkey PRIMARY KEY (line_id)""",
    r"""ALTER TABLE ONLY recon_matches
    ADD CONSTRAINT recon_matches_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY recon_statement_lines
    ADD CONSTRAINT recon_statement_lines_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY recon_statements
    ADD CONSTRAINT recon_statements_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY recon_sync_cursors
    ADD CONSTRAINT recon_sync_cursors_pkey PRIMARY KEY (account_id, lane)""",
    r"""ALTER TABLE ONLY refunds
    ADD CONSTRAINT refunds_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY staff_sessions
    ADD CONSTRAINT staff_sessions_pkey PRIMARY KEY (token_sha256)""",
    r"""ALTER TABLE ONLY staff_users
    ADD CONSTRAINT staff_users_pkey PRIMARY KEY (username)""",
    r"""ALTER TABLE ONLY supplier_payouts
    ADD CONSTRAINT supplier_payouts_pkey PRIMARY KEY (payout_id)""",
    r"""ALTER TABLE ONLY supplier_terms
    ADD CONSTRAINT supplier_terms_pkey PRIMARY KEY (supplier_id)""",
    r"""ALTER TABLE ONLY bank_calls
    ADD CONSTRAINT uq_bank_calls_subject_attempt UNIQUE (subject, subject_id, attempt_no)""",
    r"""ALTER TABLE ONLY bank_notifications
    ADD CONSTRAINT uq_bank_notifications_bank_txn UNIQUE (bank, bank_txn_id)""",
    r"""ALTER TABLE ONLY inquiries
    ADD CONSTRAINT uq_inquiries_subject UNIQUE (subject, subject_id)""",
    r"""ALTER TABLE ONLY lending_trade_records
    ADD CONSTRAINT uq_lending_trade_records_ref UNIQUE (borrower_id, kind, record_ref)""",
    r"""ALTER TABLE ONLY payment_attempts
    ADD CONSTRAINT uq_payment_attempts_bank_txn UNIQUE (bank, bank_txn_id)""",
    r"""ALTER TABLE ONLY payment_intents
    ADD CONSTRAINT uq_payment_intents_merchant_order UNIQUE (merchant_id, order_id)""",
    r"""ALTER TABLE ONLY postings
    ADD CONSTRAINT uq_postings_account_seq UNIQUE (account_id, account_seq)""",
    r"""ALTER TABLE ONLY recon_exceptions
    ADD CONSTRAINT uq_recon_exceptions_item UNIQUE (item_account_id, item_account_seq)""",
    r"""ALTER TABLE ONLY recon_statement_lines
    ADD CONSTRAINT uq_recon_lines_identity UNIQUE (bank_account_id, line_identity)""",
    r"""ALTER TABLE ONLY recon_statements
    ADD CONSTRAINT uq_recon_statements_file UNIQUE (bank_account_id, file_hash, statement_ref)""",
    r"""ALTER TABLE ONLY refunds
    ADD CONSTRAINT uq_refunds_bank_txn UNIQUE (bank, bank_txn_id)""",
    r"""ALTER TABLE ONLY webhook_deliveries
    ADD CONSTRAINT uq_webhook_deliveries_event UNIQUE (endpoint_id, event_id)""",
    r"""ALTER TABLE ONLY webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id)""",
    r"""ALTER TABLE ONLY webhook_endpoints
    ADD CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (id)""",
    r"""CREATE INDEX ix_accounts_owner_ref ON accounts USING btree (owner_ref)""",
    r"""CREATE INDEX ix_api_idempotency_records_created_at ON api_idempotency_records USING btree (created_at)""",
    r"""CREATE INDEX ix_api_keys_merchant_id ON api_keys USING btree (merchant_id)""",
    r"""CREATE INDEX ix_api_payout_owners_merchant_id ON api_payout_owners USING btree (merchant_id)""",
    r"""CREATE INDEX ix_api_rate_limits_window_start ON api_rate_limits USING btree (window_start)""",
    r"""CREATE INDEX ix_beneficiary_accounts_hmac ON beneficiary_accounts USING btree (account_hmac)""",
    r"""CREATE INDEX ix_beneficiary_accounts_supplier ON beneficiary_accounts USING btree (supplier_id, status)""",
    r"""CREATE INDEX ix_console_audit_subject ON console_audit USING btree (subject, id)""",
    r"""CREATE INDEX ix_hold_legs_account_id ON hold_legs USING btree (account_id)""",
    r"""CREATE INDEX ix_holds_external_ref ON holds USING btree (external_ref)""",
    r"""CREATE INDEX ix_holds_pending_expiry ON holds USING btree (status, expires_at)""",
    r"""CREATE INDEX ix_inquiries_status_next ON inquiries USING btree (status, next_check_at)""",
    r"""CREATE INDEX ix_jobs_due ON jobs USING btree (status, run_after)""",
    r"""CREATE INDEX ix_jobs_kind_status ON jobs USING btree (kind, status)""",
    r"""CREATE INDEX ix_jobs_parent ON jobs USING btree (parent_id)""",
    r"""CREATE INDEX ix_journal_entries_external_ref ON journal_entries USING btree (external_ref) WHERE (external_ref IS NOT NULL)""",
    r"""CREATE INDEX ix_lending_calendar_days_year ON lending_calendar_days USING btree (market, year)""",
    r"""CREATE INDEX ix_lending_decisions_loan_id ON lending_decisions USING btree (loan_id)""",
    r"""CREATE INDEX ix_lending_loan_events_loan_id ON lending_loan_events USING btree (loan_id)""",
    r"""CREATE INDEX ix_lending_loans_book ON lending_loans USING btree (status, borrower_id, product_code, currency, maturity, amount_minor, principal_repaid_minor)""",
    r"""CREATE INDEX ix_lending_loans_borrower ON lending_loans USING btree (borrower_id, status)""",
    r"""CREATE INDEX ix_lending_loans_maturity ON lending_loans USING btree (maturity, id)""",
    r"""CREATE INDEX ix_lending_loans_status ON lending_loans USING btree (status, accrued_through)""",
    r"""CREATE INDEX ix_lending_overpayment_moves_loan_id ON lending_overpayment_moves USING btree (loan_id)""",
    r"""CREATE INDEX ix_lending_repayments_loan_id ON lending_repayments USING btree (loan_id)""",
    r"""CREATE INDEX ix_notification_rejections_received ON notification_rejections USING btree (received_at)""",
    r"""CREATE INDEX ix_outbox_events_audience_seq ON outbox_events USING btree (audience, seq)""",
    r"""CREATE INDEX ix_outbox_events_object ON outbox_events USING btree (object_type, object_id)""",
    r"""CREATE INDEX ix_payment_attempts_intent_id ON payment_attempts USING btree (intent_id)""",
    r"""CREATE INDEX ix_payment_attempts_status_updated ON payment_attempts USING btree (status, updated_at)""",
    r"""CREATE INDEX ix_payment_intents_merchant_created ON payment_intents USING btree (merchant_id, created_at)""",
    r"""CREATE INDEX ix_payment_intents_status_expires ON payment_intents USING btree (status, expires_at)""",
    r"""CREATE INDEX ix_payout_control_audit_subject ON payout_control_audit USING btree (subject_id, id)""",
    r"""CREATE INDEX ix_payout_reviews_payout_id ON payout_reviews USING btree (payout_id)""",
    r"""CREATE INDEX ix_payout_reviews_status_created ON payout_reviews USING btree (status, created_at)""",
    r"""CREATE INDEX ix_payouts_beneficiary_ref ON payouts USING btree (beneficiary_ref)""",
    r"""CREATE INDEX ix_payouts_review_updated ON payouts USING btree (updated_at) WHERE (review_reason IS NOT NULL)""",
    r"""CREATE INDEX ix_payouts_status_created ON payouts USING btree (status, created_at)""",
    r"""CREATE INDEX ix_payouts_status_updated ON payouts USING btree (status, updated_at)""",
    r"""CREATE INDEX ix_recon_audit_account ON recon_audit USING btree (bank_account_id, at)""",
    r"""CREATE INDEX ix_recon_exceptions_open ON recon_exceptions USING btree (bank_account_id, status, date)""",
    r"""CREATE INDEX ix_recon_exceptions_status_date ON recon_exceptions USING btree (status, date, id)""",
    r"""CREATE INDEX ix_recon_items_entry ON recon_book_items USING btree (entry_id)""",
    r"""CREATE INDEX ix_recon_items_open_amount ON recon_book_items USING btree (account_id, status, amount_minor)""",
    r"""CREATE INDEX ix_recon_items_open_date ON recon_book_items USING btree (account_id, status, effective_date)""",
    r"""CREATE INDEX ix_recon_items_ref ON recon_book_items USING btree (external_ref)""",
    r"""CREATE INDEX ix_recon_lines_e2e ON recon_statement_lines USING btree (bank_account_id, end_to_end_id)""",
    r"""CREATE INDEX ix_recon_lines_open ON recon_statement_lines USING btree (bank_account_id, status, booking_date)""",
    r"""CREATE INDEX ix_recon_lines_statement_status ON recon_statement_lines USING btree (statement_id, status)""",
    r"""CREATE INDEX ix_recon_match_items_match_id ON recon_match_items USING btree (match_id)""",
    r"""CREATE INDEX ix_recon_match_lines_match_id ON recon_match_lines USING btree (match_id)""",
    r"""CREATE INDEX ix_recon_matches_account ON recon_matches USING btree (bank_account_id, created_at)""",
    r"""CREATE INDEX ix_recon_statements_account_closing ON recon_statements USING btree (bank_account_id, closing_date)""",
    r"""CREATE INDEX ix_refunds_intent_id ON refunds USING btree (intent_id)""",
    r"""CREATE INDEX ix_refunds_status_updated ON refunds USING btree (status, updated_at)""",
    r"""CREATE INDEX ix_staff_sessions_username ON staff_sessions USING btree (username)""",
    r"""CREATE INDEX ix_supplier_payouts_supplier_id ON supplier_payouts USING btree (supplier_id)""",
    r"""CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries USING btree (status, next_attempt_at)""",
    r"""CREATE INDEX ix_webhook_deliveries_order ON webhook_deliveries USING btree (endpoint_id, object_key, status, event_seq)""",
    r"""CREATE INDEX ix_webhook_endpoints_merchant_id ON webhook_endpoints USING btree (merchant_id)""",
    r"""CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts FOR EACH STATEMENT EXECUTE FUNCTION ledger_keep_accounts()""",
    r"""CREATE TRIGGER accounts_not_deleted BEFORE DELETE ON accounts FOR EACH STATEMENT EXECUTE FUNCTION ledger_keep_accounts()""",
    r"""CREATE TRIGGER console_audit_append_only BEFORE DELETE OR UPDATE ON console_audit FOR EACH ROW EXECUTE FUNCTION console_audit_append_only()""",
    r"""CREATE TRIGGER console_audit_no_truncate BEFORE TRUNCATE ON console_audit FOR EACH STATEMENT EXECUTE FUNCTION console_audit_append_only()""",
    r"""CREATE TRIGGER journal_entries_append_only BEFORE DELETE OR UPDATE ON journal_entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()""",
    r"""CREATE TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT WHEN ((CURRENT_USER <> 'paycore_ledger_writer'::name)) EXECUTE FUNCTION ledger_check_new_entries()""",
    r"""CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()""",
    r"""CREATE TRIGGER ledger_checkpoints_append_only BEFORE DELETE OR UPDATE ON ledger_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()""",
    r"""CREATE TRIGGER ledger_checkpoints_no_truncate BEFORE TRUNCATE ON ledger_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()""",
    r"""CREATE TRIGGER payout_control_audit_append_only BEFORE DELETE OR UPDATE ON payout_control_audit FOR EACH ROW EXECUTE FUNCTION payout_control_audit_append_only()""",
    r"""CREATE TRIGGER payout_control_audit_no_truncate BEFORE TRUNCATE ON payout_control_audit FOR EACH STATEMENT EXECUTE FUNCTION payout_control_audit_append_only()""",
    r"""CREATE TRIGGER postings_append_only BEFORE DELETE OR UPDATE ON postings FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()""",
    r"""CREATE TRIGGER postings_check AFTER INSERT ON postings REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT WHEN ((CURRENT_USER <> 'paycore_ledger_writer'::name)) EXECUTE FUNCTION ledger_check_new_postings()""",
    r"""CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()""",
    r"""ALTER TABLE ONLY account_balances
    ADD CONSTRAINT account_balances_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts(id)""",
    r"""ALTER TABLE ONLY hold_legs
    ADD CONSTRAINT hold_legs_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts(id)""",
    r"""ALTER TABLE ONLY hold_legs
    ADD CONSTRAINT hold_legs_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES holds(id)""",
    r"""ALTER TABLE ONLY holds
    ADD CONSTRAINT holds_posted_entry_id_fkey FOREIGN KEY (posted_entry_id) REFERENCES journal_entries(id)""",
    r"""ALTER TABLE ONLY journal_entries
    ADD CONSTRAINT journal_entries_reverses_entry_id_fkey FOREIGN KEY (reverses_entry_id) REFERENCES journal_entries(id)""",
    r"""ALTER TABLE ONLY lending_decisions
    ADD CONSTRAINT lending_decisions_loan_id_fkey FOREIGN KEY (loan_id) REFERENCES lending_loans(id)""",
    r"""ALTER TABLE ONLY lending_loan_events
    ADD CONSTRAINT lending_loan_events_entry_id_fkey FOREIGN KEY (entry_id) REFERENCES journal_entries(id)""",
    r"""ALTER TABLE ONLY lending_loan_events
    ADD CONSTRAINT lending_loan_events_loan_id_fkey FOREIGN KEY (loan_id) REFERENCES lending_loans(id)""",
    r"""ALTER TABLE ONLY lending_loans
    ADD CONSTRAINT lending_loans_borrower_id_fkey FOREIGN KEY (borrower_id) REFERENCES lending_borrowers(id)""",
    r"""ALTER TABLE ONLY lending_overpayment_moves
    ADD CONSTRAINT lending_overpayment_moves_entry_id_fkey FOREIGN KEY (entry_id) REFERENCES journal_entries(id)""",
    r"""ALTER TABLE ONLY lending_overpayment_moves
    ADD CONSTRAINT lending_overpayment_moves_loan_id_fkey FOREIGN KEY (loan_id) REFERENCES lending_loans(id)""",
    r"""ALTER TABLE ONLY lending_overpayment_moves
    ADD CONSTRAINT lending_overpayment_moves_target_loan_id_fkey FOREIGN KEY (target_loan_id) REFERENCES lending_loans(id)""",
    r"""ALTER TABLE ONLY lending_repayments
    ADD CONSTRAINT lending_repayments_entry_id_fkey FOREIGN KEY (entry_id) REFERENCES journal_entries(id)""",
    r"""ALTER TABLE ONLY lending_repayments
    ADD CONSTRAINT lending_repayments_loan_id_fkey FOREIGN KEY (loan_id) REFERENCES lending_loans(id)""",
    r"""ALTER TABLE ONLY lending_settlement_offsets
    ADD CONSTRAINT lending_settlement_offsets_entry_id_fkey FOREIGN KEY (entry_id) REFERENCES journal_entries(id)""",
    r"""ALTER TABLE ONLY lending_trade_records
    ADD CONSTRAINT lending_trade_records_borrower_id_fkey FOREIGN KEY (borrower_id) REFERENCES lending_borrowers(id)""",
    r"""ALTER TABLE ONLY payment_attempts
    ADD CONSTRAINT payment_attempts_intent_id_fkey FOREIGN KEY (intent_id) REFERENCES payment_intents(id)""",
    r"""ALTER TABLE ONLY recon_audit
    ADD CONSTRAINT recon_audit_bank_account_id_fkey FOREIGN KEY (bank_account_id) REFERENCES recon_bank_accounts(id)""",
    r"""ALTER TABLE ONLY recon_audit
    ADD CONSTRAINT recon_audit_exception_id_fkey FOREIGN KEY (exception_id) REFERENCES recon_exceptions(id)""",
    r"""ALTER TABLE ONLY recon_audit
    ADD CONSTRAINT recon_audit_match_id_fkey FOREIGN KEY (match_id) REFERENCES recon_matches(id)""",
    r"""ALTER TABLE ONLY recon_book_items
    ADD CONSTRAINT recon_book_items_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts(id)""",
    r"""ALTER TABLE ONLY recon_book_items
    ADD CONSTRAINT recon_book_items_entry_id_fkey FOREIGN KEY (entry_id) REFERENCES journal_entries(id)""",
    r"""ALTER TABLE ONLY recon_exceptions
    ADD CONSTRAINT recon_exceptions_bank_account_id_fkey FOREIGN KEY (bank_account_id) REFERENCES recon_bank_accounts(id)""",
    r"""ALTER TABLE ONLY recon_exceptions
    ADD CONSTRAINT recon_exceptions_line_id_fkey FOREIGN KEY (line_id) REFERENCES recon_statement_lines(id)""",
    r"""ALTER TABLE ONLY recon_exceptions
    ADD CONSTRAINT recon_exceptions_match_id_fkey FOREIGN KEY (match_id) REFERENCES recon_matches(id)""",
    r"""ALTER TABLE ONLY recon_match_items
    ADD CONSTRAINT recon_match_items_account_id_account_seq_fkey FOREIGN KEY (account_id, account_seq) REFERENCES recon_book_items(account_id, account_seq)""",
    r"""ALTER TABLE ONLY recon_match_items
    ADD CONSTRAINT recon_match_items_match_id_fkey FOREIGN KEY (match_id) REFERENCES recon_matches(id)""",
    r"""ALTER TABLE ONLY recon_match_lines
    ADD CONSTRAINT recon_match_lines_line_id_fkey FOREIGN KEY (line_id) REFERENCES recon_statement_lines(id)""",
    r"""ALTER TABLE ONLY recon_match_lines
    ADD CONSTRAINT recon_match_lines_match_id_fkey FOREIGN KEY (match_id) REFERENCES recon_matches(id)""",
    r"""ALTER TABLE ONLY recon_matches
    ADD CONSTRAINT recon_matches_bank_account_id_fkey FOREIGN KEY (bank_account_id) REFERENCES recon_bank_accounts(id)""",
    r"""ALTER TABLE ONLY recon_matches
    ADD CONSTRAINT recon_matches_entry_id_fkey FOREIGN KEY (entry_id) REFERENCES journal_entries(id)""",
    r"""ALTER TABLE ONLY recon_statement_lines
    ADD CONSTRAINT recon_statement_lines_bank_account_id_fkey FOREIGN KEY (bank_account_id) REFERENCES recon_bank_accounts(id)""",
    r"""ALTER TABLE ONLY recon_statement_lines
    ADD CONSTRAINT recon_statement_lines_statement_id_fkey FOREIGN KEY (statement_id) REFERENCES recon_statements(id)""",
    r"""ALTER TABLE ONLY recon_statements
    ADD CONSTRAINT recon_statements_bank_account_id_fkey FOREIGN KEY (bank_account_id) REFERENCES recon_bank_accounts(id)""",
    r"""ALTER TABLE ONLY recon_sync_cursors
    ADD CONSTRAINT recon_sync_cursors_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts(id)""",
    r"""ALTER TABLE ONLY refunds
    ADD CONSTRAINT refunds_attempt_id_fkey FOREIGN KEY (attempt_id) REFERENCES payment_attempts(id)""",
    r"""ALTER TABLE ONLY refunds
    ADD CONSTRAINT refunds_intent_id_fkey FOREIGN KEY (intent_id) REFERENCES payment_intents(id)""",
    r"""ALTER TABLE ONLY staff_sessions
    ADD CONSTRAINT staff_sessions_username_fkey FOREIGN KEY (username) REFERENCES staff_users(username)""",
    r"""ALTER TABLE ONLY supplier_payouts
    ADD CONSTRAINT supplier_payouts_account_id_fkey FOREIGN KEY (account_id) REFERENCES beneficiary_accounts(id)""",
    r"""ALTER TABLE ONLY supplier_payouts
    ADD CONSTRAINT supplier_payouts_payout_id_fkey FOREIGN KEY (payout_id) REFERENCES payouts(id)""",
    r"""ALTER TABLE ONLY webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_endpoint_id_fkey FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints(id)""",
    r"""DO $$
DECLARE s text := current_schema();
BEGIN
  BEGIN
    CREATE ROLE paycore_ledger_writer NOLOGIN;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- the cluster's: another schema's migration made it
  END;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO paycore_ledger_writer', s);
  GRANT SELECT, UPDATE ON TABLE account_balances TO paycore_ledger_writer;
  GRANT SELECT ON TABLE accounts TO paycore_ledger_writer;
  GRANT INSERT, SELECT ON TABLE journal_entries TO paycore_ledger_writer;
  GRANT INSERT, SELECT ON TABLE postings TO paycore_ledger_writer;
  EXECUTE format('ALTER FUNCTION ledger_post_entries(jsonb) SET search_path = %I, pg_temp', s);
  ALTER FUNCTION ledger_post_entries(jsonb) OWNER TO paycore_ledger_writer;
  REVOKE EXECUTE ON FUNCTION ledger_post_entries(jsonb) FROM PUBLIC;
  GRANT EXECUTE ON FUNCTION ledger_post_entries(jsonb) TO CURRENT_USER;
  EXECUTE format('ALTER FUNCTION ledger_post_entry(text,uuid,text,text,date,text,text,text,text,text,text,text,bigint[],text[],bigint[],text[]) SET search_path = %I, pg_temp', s);
  ALTER FUNCTION ledger_post_entry(text,uuid,text,text,date,text,text,text,text,text,text,text,bigint[],text[],bigint[],text[]) OWNER TO paycore_ledger_writer;
  REVOKE EXECUTE ON FUNCTION ledger_post_entry(text,uuid,text,text,date,text,text,text,text,text,text,text,bigint[],text[],bigint[],text[]) FROM PUBLIC;
  GRANT EXECUTE ON FUNCTION ledger_post_entry(text,uuid,text,text,date,text,text,text,text,text,text,text,bigint[],text[],bigint[],text[]) TO CURRENT_USER;
END $$""",
]

SQLITE = [
    r"""CREATE TABLE accounts (
	id INTEGER NOT NULL, 
	code VARCHAR(120) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	type VARCHAR(16) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	balance_limit VARCHAR(40), 
	owner_ref VARCHAR(120), 
	status VARCHAR(16) DEFAULT 'open' NOT NULL, 
	metadata JSON NOT NULL, 
	opened_at DATETIME NOT NULL, lanes INTEGER DEFAULT '1' NOT NULL CONSTRAINT ck_accounts_lanes CHECK (lanes >= 1 AND (balance_limit IS NULL OR lanes = 1)), 
	PRIMARY KEY (id), 
	CONSTRAINT ck_accounts_balance_limit CHECK (balance_limit IS NULL OR balance_limit IN ('debits_must_not_exceed_credits', 'credits_must_not_exceed_debits')), 
	CONSTRAINT ck_accounts_status CHECK (status IN ('open', 'closed')), 
	CONSTRAINT ck_accounts_type CHECK (type IN ('asset', 'liability', 'equity', 'income', 'expense')), 
	UNIQUE (code)
)""",
    r"""CREATE INDEX ix_accounts_owner_ref ON accounts (owner_ref)""",
    r"""CREATE TABLE journal_entries (
	id CHAR(32) NOT NULL, 
	idempotency_key VARCHAR(200) NOT NULL, 
	request_hash VARCHAR(64) NOT NULL, 
	kind VARCHAR(80) NOT NULL, 
	description TEXT NOT NULL, 
	effective_date DATE NOT NULL, 
	booked_at DATETIME NOT NULL, 
	reverses_entry_id CHAR(32), 
	external_ref VARCHAR(200), 
	metadata JSON NOT NULL, 
	hash VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(reverses_entry_id) REFERENCES journal_entries (id), 
	UNIQUE (idempotency_key), 
	UNIQUE (reverses_entry_id)
)""",
    r"""CREATE INDEX ix_journal_entries_external_ref ON journal_entries (external_ref)""",
    r"""CREATE TABLE holds (
	id CHAR(32) NOT NULL, 
	idempotency_key VARCHAR(200) NOT NULL, 
	request_hash VARCHAR(64) NOT NULL, 
	kind VARCHAR(80) NOT NULL, 
	description TEXT NOT NULL, 
	external_ref VARCHAR(200), 
	metadata JSON NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	resolved_at DATETIME, 
	posted_entry_id CHAR(32), 
	PRIMARY KEY (id), 
	CONSTRAINT ck_holds_status CHECK (status IN ('pending', 'posted', 'voided', 'expired')), 
	FOREIGN KEY(posted_entry_id) REFERENCES journal_entries (id), 
	UNIQUE (idempotency_key)
)""",
    r"""CREATE INDEX ix_holds_external_ref ON holds (external_ref)""",
    r"""CREATE INDEX ix_holds_pending_expiry ON holds (status, expires_at)""",
    r"""CREATE TABLE hold_legs (
	hold_id CHAR(32) NOT NULL, 
	leg_no INTEGER NOT NULL, 
	account_id INTEGER NOT NULL, 
	amount BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	PRIMARY KEY (hold_id, leg_no), 
	CONSTRAINT ck_hold_legs_amount_nonzero CHECK (amount <> 0), 
	FOREIGN KEY(account_id) REFERENCES accounts (id), 
	FOREIGN KEY(hold_id) REFERENCES holds (id)
)""",
    r"""CREATE INDEX ix_hold_legs_account_id ON hold_legs (account_id)""",
    r"""CREATE TRIGGER journal_entries_no_update BEFORE UPDATE ON journal_entries BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on journal_entries is not allowed; post a reversing entry'); END""",
    r"""CREATE TRIGGER journal_entries_no_delete BEFORE DELETE ON journal_entries BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on journal_entries is not allowed; post a reversing entry'); END""",
    r"""CREATE TABLE bank_notifications (
	id INTEGER NOT NULL, 
	bank VARCHAR(32) NOT NULL, 
	bank_txn_id VARCHAR(128) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	reference VARCHAR(64) NOT NULL, 
	outcome VARCHAR(16) NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	merchant_id VARCHAR(64) NOT NULL, 
	occurred_at DATETIME NOT NULL, 
	received_at DATETIME NOT NULL, 
	details JSON NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_bank_notifications_bank_txn UNIQUE (bank, bank_txn_id)
)""",
    r"""CREATE TABLE inquiries (
	id INTEGER NOT NULL, 
	subject VARCHAR(16) NOT NULL, 
	subject_id VARCHAR(64) NOT NULL, 
	bank VARCHAR(32) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	tries INTEGER DEFAULT '0' NOT NULL, 
	next_check_at DATETIME NOT NULL, 
	last_outcome VARCHAR(32), 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_inquiries_status CHECK (status IN ('open', 'done', 'review')), 
	CONSTRAINT ck_inquiries_subject CHECK (subject IN ('attempt', 'refund', 'payout')), 
	CONSTRAINT uq_inquiries_subject UNIQUE (subject, subject_id)
)""",
    r"""CREATE INDEX ix_inquiries_status_next ON inquiries (status, next_check_at)""",
    r"""CREATE TABLE notification_rejections (
	id INTEGER NOT NULL, 
	bank VARCHAR(32) NOT NULL, 
	reason VARCHAR(32) NOT NULL, 
	detail TEXT NOT NULL, 
	kind VARCHAR(16), 
	reference VARCHAR(64), 
	bank_txn_id VARCHAR(128), 
	headers JSON NOT NULL, 
	body_sha256 VARCHAR(64) NOT NULL, 
	body_size INTEGER NOT NULL, 
	received_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
)""",
    r"""CREATE INDEX ix_notification_rejections_received ON notification_rejections (received_at)""",
    r"""CREATE TABLE payment_intents (
	id VARCHAR(64) NOT NULL, 
	merchant_id VARCHAR(64) NOT NULL, 
	order_id VARCHAR(64) NOT NULL, 
	supplier_id VARCHAR(64) NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	bank VARCHAR(32), 
	status VARCHAR(16) NOT NULL, 
	description TEXT NOT NULL, 
	current_attempt_id VARCHAR(64), 
	captured_minor BIGINT DEFAULT '0' NOT NULL, 
	commission_minor BIGINT DEFAULT '0' NOT NULL, 
	refund_reserved_minor BIGINT DEFAULT '0' NOT NULL, 
	refunded_minor BIGINT DEFAULT '0' NOT NULL, 
	refunded_commission_minor BIGINT DEFAULT '0' NOT NULL, 
	review_reason TEXT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_payment_intents_amount CHECK (amount_minor > 0), 
	CONSTRAINT ck_payment_intents_refunds CHECK (refund_reserved_minor >= 0 AND refund_reserved_minor <= captured_minor AND refunded_minor >= 0 AND refunded_minor <= refund_reserved_minor), 
	CONSTRAINT uq_payment_intents_merchant_order UNIQUE (merchant_id, order_id)
)""",
    r"""CREATE INDEX ix_payment_intents_merchant_created ON payment_intents (merchant_id, created_at)""",
    r"""CREATE INDEX ix_payment_intents_status_expires ON payment_intents (status, expires_at)""",
    r"""CREATE TABLE payouts (
	id VARCHAR(64) NOT NULL, 
	request_hash VARCHAR(64) NOT NULL, 
	beneficiary_ref VARCHAR(120) NOT NULL, 
	beneficiary_name VARCHAR(200) NOT NULL, 
	beneficiary_account VARCHAR(64) NOT NULL, 
	beneficiary_bank_name VARCHAR(200) NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	debit_account VARCHAR(120) NOT NULL, 
	purpose VARCHAR(80) NOT NULL, 
	description TEXT NOT NULL, 
	banks JSON NOT NULL, 
	bank VARCHAR(32), 
	status VARCHAR(16) NOT NULL, 
	hold_id CHAR(32) NOT NULL, 
	entry_id CHAR(32), 
	bank_txn_id VARCHAR(128), 
	submit_rounds INTEGER DEFAULT '0' NOT NULL, 
	failure_reason TEXT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	settled_at DATETIME, review_reason TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_payouts_amount CHECK (amount_minor > 0)
)""",
    r"""CREATE INDEX ix_payouts_beneficiary_ref ON payouts (beneficiary_ref)""",
    r"""CREATE INDEX ix_payouts_status_created ON payouts (status, created_at)""",
    r"""CREATE TABLE supplier_terms (
	supplier_id VARCHAR(64) NOT NULL, 
	commission_ppm INTEGER NOT NULL, 
	refund_commission VARCHAR(16) NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (supplier_id), 
	CONSTRAINT ck_supplier_terms_refund_commission CHECK (refund_commission IN ('proportional', 'keep')), 
	CONSTRAINT ck_supplier_terms_rate CHECK (commission_ppm >= 0 AND commission_ppm <= 1000000)
)""",
    r"""CREATE TABLE payment_attempts (
	id VARCHAR(64) NOT NULL, 
	intent_id VARCHAR(64) NOT NULL, 
	bank VARCHAR(32) NOT NULL, 
	bank_merchant_id VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	bank_payment_id VARCHAR(128), 
	bank_txn_id VARCHAR(128), 
	instruction JSON, 
	failure_reason TEXT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	settled_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(intent_id) REFERENCES payment_intents (id), 
	CONSTRAINT uq_payment_attempts_bank_txn UNIQUE (bank, bank_txn_id)
)""",
    r"""CREATE INDEX ix_payment_attempts_intent_id ON payment_attempts (intent_id)""",
    r"""CREATE TABLE refunds (
	id VARCHAR(64) NOT NULL, 
	intent_id VARCHAR(64) NOT NULL, 
	attempt_id VARCHAR(64) NOT NULL, 
	bank VARCHAR(32) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	reason TEXT NOT NULL, 
	commission_minor BIGINT, 
	hold_id CHAR(32), 
	bank_txn_id VARCHAR(128), 
	failure_reason TEXT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	settled_at DATETIME, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_refunds_amount CHECK (amount_minor > 0), 
	FOREIGN KEY(attempt_id) REFERENCES payment_attempts (id), 
	FOREIGN KEY(intent_id) REFERENCES payment_intents (id), 
	CONSTRAINT uq_refunds_bank_txn UNIQUE (bank, bank_txn_id)
)""",
    r"""CREATE INDEX ix_refunds_intent_id ON refunds (intent_id)""",
    r"""CREATE TABLE lending_borrowers (
	id VARCHAR(80) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	payable_account VARCHAR(120) NOT NULL, 
	onboarded_on DATE NOT NULL, 
	credit_cap_minor BIGINT, 
	data_imported_on DATE, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_lending_borrowers_kind CHECK (kind IN ('supplier', 'merchant')), 
	CONSTRAINT ck_lending_borrowers_cap CHECK (credit_cap_minor IS NULL OR credit_cap_minor >= 0)
)""",
    r"""CREATE TABLE lending_loans (
	id VARCHAR(80) NOT NULL, 
	borrower_id VARCHAR(80) NOT NULL, 
	product_code VARCHAR(40) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	requested_minor BIGINT NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	term_days INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	status_on DATE NOT NULL, 
	applied_on DATE NOT NULL, 
	disbursed_on DATE, 
	maturity DATE, 
	extensions INTEGER DEFAULT '0' NOT NULL, 
	disbursement_mode VARCHAR(16), 
	payout_id VARCHAR(120), 
	accrued_through DATE, 
	principal_repaid_minor BIGINT DEFAULT '0' NOT NULL, 
	interest_accrued_minor BIGINT DEFAULT '0' NOT NULL, 
	interest_paid_minor BIGINT DEFAULT '0' NOT NULL, 
	penalty_accrued_minor BIGINT DEFAULT '0' NOT NULL, 
	penalty_paid_minor BIGINT DEFAULT '0' NOT NULL, 
	fees_charged_minor BIGINT DEFAULT '0' NOT NULL, 
	fees_paid_minor BIGINT DEFAULT '0' NOT NULL, 
	overpaid_minor BIGINT DEFAULT '0' NOT NULL, 
	written_off_minor BIGINT DEFAULT '0' NOT NULL, 
	recovered_minor BIGINT DEFAULT '0' NOT NULL, 
	funding_interest_minor BIGINT DEFAULT '0' NOT NULL, 
	max_dpd INTEGER DEFAULT '0' NOT NULL, 
	version INTEGER DEFAULT '0' NOT NULL, 
	updated_at DATETIME NOT NULL, product_version INTEGER, contractual_maturity DATE, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_lending_loans_status CHECK (status IN ('applied', 'manual_review', 'approved', 'declined', 'disbursed', 'active', 'extended', 'overdue', 'repaid', 'written_off', 'recovered')), 
	CONSTRAINT ck_lending_loans_amounts CHECK (amount_minor > 0 AND requested_minor > 0 AND term_days > 0 AND extensions >= 0 AND principal_repaid_minor >= 0 AND principal_repaid_minor <= amount_minor AND interest_paid_minor >= 0 AND interest_paid_minor <= interest_accrued_minor AND penalty_paid_minor >= 0 AND penalty_paid_minor <= penalty_accrued_minor AND fees_paid_minor >= 0 AND fees_paid_minor <= fees_charged_minor AND overpaid_minor >= 0 AND written_off_minor >= 0 AND recovered_minor >= 0), 
	FOREIGN KEY(borrower_id) REFERENCES lending_borrowers (id)
)""",
    r"""CREATE INDEX ix_lending_loans_borrower ON lending_loans (borrower_id, status)""",
    r"""CREATE INDEX ix_lending_loans_status ON lending_loans (status, accrued_through)""",
    r"""CREATE TABLE lending_settlement_offsets (
	settlement_id VARCHAR(120) NOT NULL, 
	borrower_id VARCHAR(80) NOT NULL, 
	settled_on DATE NOT NULL, 
	available_minor BIGINT NOT NULL, 
	offset_minor BIGINT NOT NULL, 
	payout_minor BIGINT NOT NULL, 
	payout_id VARCHAR(120), 
	entry_id CHAR(32), 
	recorded_at DATETIME NOT NULL, 
	PRIMARY KEY (settlement_id, borrower_id), 
	FOREIGN KEY(entry_id) REFERENCES journal_entries (id)
)""",
    r"""CREATE TABLE lending_trade_records (
	id INTEGER NOT NULL, 
	borrower_id VARCHAR(80) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	record_ref VARCHAR(120) NOT NULL, 
	record_date DATE NOT NULL, 
	buyer_ref VARCHAR(120), 
	amount_minor BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	source VARCHAR(16) NOT NULL, 
	imported_on DATE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_lending_trade_records_kind CHECK (kind IN ('purchase_order', 'return', 'sale')), 
	CONSTRAINT ck_lending_trade_records_amount CHECK (amount_minor >= 0), 
	FOREIGN KEY(borrower_id) REFERENCES lending_borrowers (id), 
	CONSTRAINT uq_lending_trade_records_ref UNIQUE (borrower_id, kind, record_ref)
)""",
    r"""CREATE TABLE lending_decisions (
	id INTEGER NOT NULL, 
	loan_id VARCHAR(80) NOT NULL, 
	outcome VARCHAR(16) NOT NULL, 
	decided_by VARCHAR(120) NOT NULL, 
	decided_on DATE NOT NULL, 
	policy_version VARCHAR(40) NOT NULL, 
	comment TEXT DEFAULT '' NOT NULL, 
	reasons JSON NOT NULL, 
	inputs JSON NOT NULL, 
	credit_line JSON NOT NULL, 
	recorded_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_lending_decisions_outcome CHECK (outcome IN ('approve', 'decline', 'manual_review')), 
	FOREIGN KEY(loan_id) REFERENCES lending_loans (id)
)""",
    r"""CREATE INDEX ix_lending_decisions_loan_id ON lending_decisions (loan_id)""",
    r"""CREATE TABLE lending_loan_events (
	id INTEGER NOT NULL, 
	loan_id VARCHAR(80) NOT NULL, 
	from_status VARCHAR(16), 
	to_status VARCHAR(16) NOT NULL, 
	event_on DATE NOT NULL, 
	note TEXT DEFAULT '' NOT NULL, 
	actor VARCHAR(120) DEFAULT 'system' NOT NULL, 
	entry_id CHAR(32), 
	recorded_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(entry_id) REFERENCES journal_entries (id), 
	FOREIGN KEY(loan_id) REFERENCES lending_loans (id)
)""",
    r"""CREATE INDEX ix_lending_loan_events_loan_id ON lending_loan_events (loan_id)""",
    r"""CREATE TABLE lending_repayments (
	id VARCHAR(160) NOT NULL, 
	loan_id VARCHAR(80) NOT NULL, 
	source VARCHAR(16) NOT NULL, 
	paid_on DATE NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	principal_minor BIGINT NOT NULL, 
	interest_minor BIGINT NOT NULL, 
	penalty_minor BIGINT NOT NULL, 
	fees_minor BIGINT NOT NULL, 
	excess_minor BIGINT NOT NULL, 
	principal_after_minor BIGINT NOT NULL, 
	allocation JSON NOT NULL, 
	settlement_id VARCHAR(120), 
	entry_id CHAR(32) NOT NULL, 
	recorded_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_lending_repayments_source CHECK (source IN ('bank', 'offset', 'recovery')), 
	CONSTRAINT ck_lending_repayments_amount CHECK (amount_minor > 0), 
	FOREIGN KEY(entry_id) REFERENCES journal_entries (id), 
	FOREIGN KEY(loan_id) REFERENCES lending_loans (id)
)""",
    r"""CREATE INDEX ix_lending_repayments_loan_id ON lending_repayments (loan_id)""",
    r"""CREATE TABLE recon_bank_accounts (
	id INTEGER NOT NULL, 
	code VARCHAR(60) NOT NULL, 
	bank_account_number VARCHAR(60), 
	currency VARCHAR(3) NOT NULL, 
	bank_ledger_account VARCHAR(120) NOT NULL, 
	clearing_account VARCHAR(120) NOT NULL, 
	payout_clearing_account VARCHAR(120) NOT NULL, 
	fee_account VARCHAR(120) NOT NULL, 
	differences_account VARCHAR(120) NOT NULL, 
	tolerance_minor BIGINT NOT NULL, 
	rules JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_recon_bank_accounts_tolerance CHECK (tolerance_minor >= 0), 
	UNIQUE (code)
)""",
    r"""CREATE TABLE recon_book_items (
	account_id INTEGER NOT NULL, 
	account_seq BIGINT NOT NULL, 
	entry_id CHAR(32) NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	effective_date DATE NOT NULL, 
	kind VARCHAR(80) NOT NULL, 
	external_ref VARCHAR(200), 
	description TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	PRIMARY KEY (account_id, account_seq), 
	CONSTRAINT ck_recon_items_status CHECK (status IN ('open', 'matched', 'resolved', 'void')), 
	FOREIGN KEY(account_id) REFERENCES accounts (id), 
	FOREIGN KEY(entry_id) REFERENCES journal_entries (id)
)""",
    r"""CREATE INDEX ix_recon_items_entry ON recon_book_items (entry_id)""",
    r"""CREATE INDEX ix_recon_items_open_amount ON recon_book_items (account_id, status, amount_minor)""",
    r"""CREATE INDEX ix_recon_items_open_date ON recon_book_items (account_id, status, effective_date)""",
    r"""CREATE INDEX ix_recon_items_ref ON recon_book_items (external_ref)""",
    r"""CREATE TABLE recon_matches (
	id CHAR(32) NOT NULL, 
	bank_account_id INTEGER NOT NULL, 
	rule VARCHAR(32) NOT NULL, 
	fee_minor BIGINT NOT NULL, 
	difference_minor BIGINT NOT NULL, 
	score INTEGER NOT NULL, 
	entry_id CHAR(32), 
	created_at DATETIME NOT NULL, 
	created_by VARCHAR(120) NOT NULL, 
	reason TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(bank_account_id) REFERENCES recon_bank_accounts (id), 
	FOREIGN KEY(entry_id) REFERENCES journal_entries (id)
)""",
    r"""CREATE INDEX ix_recon_matches_account ON recon_matches (bank_account_id, created_at)""",
    r"""CREATE TABLE recon_statements (
	id INTEGER NOT NULL, 
	bank_account_id INTEGER NOT NULL, 
	statement_ref VARCHAR(200) NOT NULL, 
	file_hash VARCHAR(64) NOT NULL, 
	source_name VARCHAR(300) NOT NULL, 
	format VARCHAR(16) NOT NULL, 
	format_version VARCHAR(16), 
	kind VARCHAR(16) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	period_start DATE, 
	period_end DATE, 
	opening_minor BIGINT, 
	opening_date DATE, 
	opening_derived BOOLEAN NOT NULL, 
	closing_minor BIGINT, 
	closing_date DATE, 
	line_count INTEGER NOT NULL, 
	new_line_count INTEGER NOT NULL, 
	imported_at DATETIME NOT NULL, 
	imported_by VARCHAR(120) NOT NULL, warnings JSON, 
	PRIMARY KEY (id), 
	FOREIGN KEY(bank_account_id) REFERENCES recon_bank_accounts (id), 
	CONSTRAINT uq_recon_statements_file UNIQUE (bank_account_id, file_hash, statement_ref)
)""",
    r"""CREATE INDEX ix_recon_statements_account_closing ON recon_statements (bank_account_id, closing_date)""",
    r"""CREATE TABLE recon_match_items (
	match_id CHAR(32) NOT NULL, 
	account_id INTEGER NOT NULL, 
	account_seq BIGINT NOT NULL, 
	PRIMARY KEY (account_id, account_seq), 
	FOREIGN KEY(account_id, account_seq) REFERENCES recon_book_items (account_id, account_seq), 
	FOREIGN KEY(match_id) REFERENCES recon_matches (id)
)""",
    r"""CREATE INDEX ix_recon_match_items_match_id ON recon_match_items (match_id)""",
    r"""CREATE TABLE recon_statement_lines (
	id INTEGER NOT NULL, 
	bank_account_id INTEGER NOT NULL, 
	statement_id INTEGER NOT NULL, 
	line_identity VARCHAR(64) NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	value_date DATE NOT NULL, 
	booking_date DATE NOT NULL, 
	bank_reference VARCHAR(200), 
	end_to_end_id VARCHAR(200), 
	customer_reference VARCHAR(200), 
	counterparty_name VARCHAR(300), 
	counterparty_account VARCHAR(100), 
	description TEXT NOT NULL, 
	transaction_code VARCHAR(60), 
	reversal BOOLEAN NOT NULL, 
	batch JSON, 
	status VARCHAR(16) NOT NULL, review_flag TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_recon_lines_status CHECK (status IN ('open', 'matched', 'resolved')), 
	FOREIGN KEY(bank_account_id) REFERENCES recon_bank_accounts (id), 
	FOREIGN KEY(statement_id) REFERENCES recon_statements (id), 
	CONSTRAINT uq_recon_lines_identity UNIQUE (bank_account_id, line_identity)
)""",
    r"""CREATE INDEX ix_recon_lines_e2e ON recon_statement_lines (bank_account_id, end_to_end_id)""",
    r"""CREATE INDEX ix_recon_lines_open ON recon_statement_lines (bank_account_id, status, booking_date)""",
    r"""CREATE TABLE recon_exceptions (
	id INTEGER NOT NULL, 
	bank_account_id INTEGER, 
	kind VARCHAR(16) NOT NULL, 
	line_id INTEGER, 
	item_account_id INTEGER, 
	item_account_seq BIGINT, 
	amount_minor BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	date DATE NOT NULL, 
	reference VARCHAR(200), 
	description TEXT NOT NULL, 
	candidates JSON NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	opened_at DATETIME NOT NULL, 
	resolved_at DATETIME, 
	resolved_by VARCHAR(120), 
	resolution VARCHAR(16), 
	reason TEXT, 
	match_id CHAR(32), 
	PRIMARY KEY (id), 
	CONSTRAINT ck_recon_exceptions_kind CHECK (kind IN ('statement_line', 'book_item')), 
	CONSTRAINT ck_recon_exceptions_status CHECK (status IN ('open', 'resolved')), 
	FOREIGN KEY(bank_account_id) REFERENCES recon_bank_accounts (id), 
	FOREIGN KEY(line_id) REFERENCES recon_statement_lines (id), 
	FOREIGN KEY(match_id) REFERENCES recon_matches (id), 
	CONSTRAINT uq_recon_exceptions_item UNIQUE (item_account_id, item_account_seq), 
	UNIQUE (line_id)
)""",
    r"""CREATE INDEX ix_recon_exceptions_open ON recon_exceptions (bank_account_id, status, date)""",
    r"""CREATE TABLE recon_match_lines (
	match_id CHAR(32) NOT NULL, 
	line_id INTEGER NOT NULL, 
	PRIMARY KEY (line_id), 
	FOREIGN KEY(line_id) REFERENCES recon_statement_lines (id), 
	FOREIGN KEY(match_id) REFERENCES recon_matches (id)
)""",
    r"""CREATE INDEX ix_recon_match_lines_match_id ON recon_match_lines (match_id)""",
    r"""CREATE TABLE recon_audit (
	id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	actor VARCHAR(120) NOT NULL, 
	action VARCHAR(40) NOT NULL, 
	bank_account_id INTEGER, 
	exception_id INTEGER, 
	match_id CHAR(32), 
	reason TEXT NOT NULL, 
	details JSON NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(bank_account_id) REFERENCES recon_bank_accounts (id), 
	FOREIGN KEY(exception_id) REFERENCES recon_exceptions (id), 
	FOREIGN KEY(match_id) REFERENCES recon_matches (id)
)""",
    r"""CREATE INDEX ix_recon_audit_account ON recon_audit (bank_account_id, at)""",
    r"""CREATE TABLE api_keys (
	id VARCHAR(32) NOT NULL, 
	merchant_id VARCHAR(120) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	secret_sha256 VARCHAR(64) NOT NULL, 
	scopes TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	revoked_at DATETIME, holder VARCHAR(120), 
	PRIMARY KEY (id)
)""",
    r"""CREATE INDEX ix_api_keys_merchant_id ON api_keys (merchant_id)""",
    r"""CREATE TABLE api_idempotency_records (
	merchant_id VARCHAR(120) NOT NULL, 
	idempotency_key VARCHAR(255) NOT NULL, 
	request_hash VARCHAR(64) NOT NULL, 
	method VARCHAR(10) NOT NULL, 
	path TEXT NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	locked_at DATETIME NOT NULL, 
	completed_at DATETIME, 
	response_status INTEGER, 
	response_headers JSON, 
	response_body BLOB, 
	PRIMARY KEY (merchant_id, idempotency_key), 
	CONSTRAINT ck_api_idempotency_records_state CHECK (state IN ('in_progress', 'completed'))
)""",
    r"""CREATE INDEX ix_api_idempotency_records_created_at ON api_idempotency_records (created_at)""",
    r"""CREATE TABLE api_payout_owners (
	payout_id VARCHAR(64) NOT NULL, 
	merchant_id VARCHAR(120) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (payout_id)
)""",
    r"""CREATE INDEX ix_api_payout_owners_merchant_id ON api_payout_owners (merchant_id)""",
    r"""CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts BEGIN SELECT RAISE(ABORT, 'accounts are closed, never deleted: DELETE on accounts is not allowed'); END""",
    r"""CREATE TABLE "postings" (
	entry_id CHAR(32) NOT NULL, 
	leg_no INTEGER NOT NULL, 
	account_id INTEGER NOT NULL, 
	amount BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	account_seq BIGINT NOT NULL, 
	balance_after BIGINT NOT NULL, 
	booked_at DATETIME NOT NULL, 
	effective_date DATE NOT NULL, 
	hash VARCHAR(64) NOT NULL, 
	PRIMARY KEY (entry_id, leg_no), 
	CONSTRAINT ck_postings_amount_nonzero CHECK (amount <> 0), 
	FOREIGN KEY(account_id) REFERENCES accounts (id), 
	FOREIGN KEY(entry_id) REFERENCES journal_entries (id) DEFERRABLE INITIALLY DEFERRED, 
	CONSTRAINT uq_postings_account_seq UNIQUE (account_id, account_seq)
)""",
    r"""CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on postings is not allowed; post a reversing entry'); END""",
    r"""CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on postings is not allowed; post a reversing entry'); END""",
    r"""CREATE TRIGGER postings_check BEFORE INSERT ON postings
BEGIN
  SELECT RAISE(ABORT, 'posting currency does not match its account currency')
   WHERE NEW.currency <> (SELECT currency FROM accounts WHERE id = NEW.account_id);
  SELECT RAISE(ABORT, 'posting to an account that is not open')
   WHERE (SELECT status FROM accounts WHERE id = NEW.account_id) <> 'open';
  SELECT RAISE(ABORT, 'postings cannot be added to an existing journal entry')
   WHERE EXISTS (SELECT 1 FROM journal_entries WHERE id = NEW.entry_id);
END""",
    r"""CREATE TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries
BEGIN
  SELECT RAISE(ABORT, 'journal entry has fewer than two postings')
   WHERE (SELECT count(*) FROM postings WHERE entry_id = NEW.id) < 2;
  SELECT RAISE(ABORT, 'journal entry does not balance per currency')
   WHERE EXISTS (SELECT 1 FROM postings WHERE entry_id = NEW.id
                  GROUP BY currency HAVING sum(amount) <> 0);
END""",
    r"""CREATE TABLE supplier_payouts (
	payout_id VARCHAR(64) NOT NULL, 
	supplier_id VARCHAR(64) NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	account_changed_at DATETIME NOT NULL, 
	requested_by VARCHAR(120) NOT NULL, 
	approval_reason TEXT, 
	decided_by VARCHAR(120), 
	decision VARCHAR(16), 
	decided_at DATETIME, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (payout_id), 
	CONSTRAINT ck_supplier_payouts_decision CHECK (decision IS NULL OR decision IN ('approved', 'rejected')), 
	CONSTRAINT ck_supplier_payouts_four_eyes CHECK (decision IS NULL OR decision <> 'approved' OR decided_by <> requested_by), 
	FOREIGN KEY(account_id) REFERENCES beneficiary_accounts (id), 
	FOREIGN KEY(payout_id) REFERENCES payouts (id)
)""",
    r"""CREATE INDEX ix_supplier_payouts_supplier_id ON supplier_payouts (supplier_id)""",
    r"""CREATE TABLE payout_control_audit (
	id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	actor VARCHAR(120) NOT NULL, 
	action VARCHAR(40) NOT NULL, 
	supplier_id VARCHAR(64) NOT NULL, 
	subject_id VARCHAR(64) NOT NULL, 
	details JSON NOT NULL, 
	PRIMARY KEY (id)
)""",
    r"""CREATE INDEX ix_payout_control_audit_subject ON payout_control_audit (subject_id, id)""",
    r"""CREATE TRIGGER payout_control_audit_no_update BEFORE UPDATE ON payout_control_audit BEGIN SELECT RAISE(ABORT, 'payout_control_audit is append-only: UPDATE is not allowed'); END""",
    r"""CREATE TRIGGER payout_control_audit_no_delete BEFORE DELETE ON payout_control_audit BEGIN SELECT RAISE(ABORT, 'payout_control_audit is append-only: DELETE is not allowed'); END""",
    r"""CREATE TABLE api_supplier_bindings (
	merchant_id VARCHAR(120) NOT NULL, 
	supplier_id VARCHAR(64) NOT NULL, 
	created_by VARCHAR(120) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (merchant_id, supplier_id)
)""",
    r"""CREATE TABLE bank_calls (
	id INTEGER NOT NULL, 
	subject VARCHAR(16) NOT NULL, 
	subject_id VARCHAR(64) NOT NULL, 
	attempt_no INTEGER NOT NULL, 
	bank VARCHAR(32) NOT NULL, 
	bank_order_id VARCHAR(64) NOT NULL, 
	placed_at DATETIME NOT NULL, 
	bank_ref VARCHAR(128), 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_bank_calls_subject CHECK (subject IN ('attempt', 'refund', 'payout')), 
	CONSTRAINT ck_bank_calls_attempt_no CHECK (attempt_no >= 1), 
	CONSTRAINT uq_bank_calls_subject_attempt UNIQUE (subject, subject_id, attempt_no)
)""",
    r"""CREATE TABLE payout_reviews (
	id INTEGER NOT NULL, 
	payout_id VARCHAR(64) NOT NULL, 
	kind VARCHAR(24) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	detail TEXT NOT NULL, 
	bank VARCHAR(32), 
	bank_txn_id VARCHAR(128), 
	amount_minor BIGINT, 
	currency VARCHAR(3), 
	entry_id CHAR(32), 
	created_at DATETIME NOT NULL, 
	resolved_at DATETIME, 
	resolved_by VARCHAR(120), 
	resolution TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_payout_reviews_kind CHECK (kind IN ('returned', 'return_not_booked', 'mismatch', 'conflict')), 
	CONSTRAINT ck_payout_reviews_status CHECK (status IN ('open', 'resolved'))
)""",
    r"""CREATE INDEX ix_payout_reviews_payout_id ON payout_reviews (payout_id)""",
    r"""CREATE INDEX ix_payout_reviews_status_created ON payout_reviews (status, created_at)""",
    r"""CREATE TABLE bank_certificates (
	bank VARCHAR(32) NOT NULL, 
	role VARCHAR(40) NOT NULL, 
	subject TEXT NOT NULL, 
	serial VARCHAR(64) NOT NULL, 
	not_before DATETIME NOT NULL, 
	not_after DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (bank, role)
)""",
    r"""CREATE TABLE api_rate_limits (
	bucket VARCHAR(200) NOT NULL, 
	window_start BIGINT NOT NULL, 
	hits INTEGER NOT NULL, 
	PRIMARY KEY (bucket, window_start)
)""",
    r"""CREATE INDEX ix_api_rate_limits_window_start ON api_rate_limits (window_start)""",
    r"""CREATE TABLE ledger_checkpoints (
	hash VARCHAR(64) NOT NULL, 
	taken_at DATETIME NOT NULL, 
	key_id VARCHAR(64) NOT NULL, 
	root VARCHAR(64) NOT NULL, 
	entry_count BIGINT NOT NULL, 
	account_count BIGINT NOT NULL, 
	PRIMARY KEY (hash)
)""",
    r"""CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints BEGIN SELECT RAISE(ABORT, 'the checkpoint log is append-only: UPDATE on ledger_checkpoints is not allowed'); END""",
    r"""CREATE TRIGGER ledger_checkpoints_no_delete BEFORE DELETE ON ledger_checkpoints BEGIN SELECT RAISE(ABORT, 'the checkpoint log is append-only: DELETE on ledger_checkpoints is not allowed'); END""",
    r"""CREATE TABLE "account_balances" (
	account_id INTEGER NOT NULL, 
	lane INTEGER DEFAULT '0' NOT NULL, 
	balance_limit VARCHAR(40), 
	posted_debits BIGINT DEFAULT '0' NOT NULL, 
	posted_credits BIGINT DEFAULT '0' NOT NULL, 
	pending_debits BIGINT DEFAULT '0' NOT NULL, 
	pending_credits BIGINT DEFAULT '0' NOT NULL, 
	seq BIGINT DEFAULT '0' NOT NULL, 
	head_hash VARCHAR(64) NOT NULL, 
	last_booked_at DATETIME, 
	PRIMARY KEY (account_id, lane), 
	CONSTRAINT ck_account_balances_limit CHECK (balance_limit IS NULL OR (balance_limit = 'debits_must_not_exceed_credits'     AND posted_debits + pending_debits <= posted_credits) OR (balance_limit = 'credits_must_not_exceed_debits'     AND posted_credits + pending_credits <= posted_debits)), 
	CONSTRAINT ck_account_balances_non_negative CHECK (posted_debits >= 0 AND posted_credits >= 0 AND pending_debits >= 0 AND pending_credits >= 0 AND seq >= 0), 
	CONSTRAINT ck_account_balances_lane_seq CHECK (lane >= 0 AND seq >= lane * 1099511627776 AND seq < (lane + 1) * 1099511627776), 
	FOREIGN KEY(account_id) REFERENCES accounts (id)
)""",
    r"""CREATE TABLE outbox_events (
	id VARCHAR(40) NOT NULL, 
	seq INTEGER, 
	topic VARCHAR(64) NOT NULL, 
	object_type VARCHAR(32) NOT NULL, 
	object_id VARCHAR(120) NOT NULL, 
	audience VARCHAR(120) NOT NULL, 
	payload JSON NOT NULL, 
	occurred_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (seq)
)""",
    r"""CREATE INDEX ix_outbox_events_audience_seq ON outbox_events (audience, seq)""",
    r"""CREATE INDEX ix_outbox_events_object ON outbox_events (object_type, object_id)""",
    r"""CREATE TABLE jobs (
	id INTEGER NOT NULL, 
	kind VARCHAR(64) NOT NULL, 
	dedupe_key VARCHAR(200), 
	payload JSON NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	run_after DATETIME NOT NULL, 
	attempts INTEGER DEFAULT '0' NOT NULL, 
	max_attempts INTEGER NOT NULL, 
	lease_owner VARCHAR(120), 
	lease_expires_at DATETIME, 
	parent_id BIGINT, 
	progress_done BIGINT DEFAULT '0' NOT NULL, 
	progress_total BIGINT, 
	result JSON, 
	last_error TEXT, 
	created_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, request_id VARCHAR(128), 
	PRIMARY KEY (id), 
	CONSTRAINT ck_jobs_status CHECK (status IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'canceled')), 
	UNIQUE (dedupe_key)
)""",
    r"""CREATE INDEX ix_jobs_due ON jobs (status, run_after)""",
    r"""CREATE INDEX ix_jobs_parent ON jobs (parent_id)""",
    r"""CREATE INDEX ix_jobs_kind_status ON jobs (kind, status)""",
    r"""CREATE TABLE webhook_deliveries (
	id INTEGER NOT NULL, 
	endpoint_id VARCHAR(40) NOT NULL, 
	event_id VARCHAR(40) NOT NULL, 
	event_seq BIGINT NOT NULL, 
	object_key VARCHAR(160) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER DEFAULT '0' NOT NULL, 
	next_attempt_at DATETIME NOT NULL, 
	locked_until DATETIME, 
	last_status_code INTEGER, 
	last_error TEXT, 
	created_at DATETIME NOT NULL, 
	delivered_at DATETIME, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_webhook_deliveries_status CHECK (status IN ('pending', 'delivered', 'failed')), 
	FOREIGN KEY(endpoint_id) REFERENCES webhook_endpoints (id), 
	CONSTRAINT uq_webhook_deliveries_event UNIQUE (endpoint_id, event_id)
)""",
    r"""CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)""",
    r"""CREATE INDEX ix_webhook_deliveries_order ON webhook_deliveries (endpoint_id, object_key, status, event_seq)""",
    r"""CREATE TABLE lending_products (
	code VARCHAR(40) NOT NULL, 
	version INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	effective_from DATE NOT NULL, 
	definition JSON NOT NULL, 
	changed_by VARCHAR(120) NOT NULL, 
	reason TEXT DEFAULT '' NOT NULL, 
	recorded_at DATETIME NOT NULL, 
	PRIMARY KEY (code, version), 
	CONSTRAINT ck_lending_products_status CHECK (status IN ('active', 'retired')), 
	CONSTRAINT ck_lending_products_version CHECK (version > 0)
)""",
    r"""CREATE TABLE lending_calendar_days (
	market VARCHAR(8) NOT NULL, 
	day DATE NOT NULL, 
	year INTEGER NOT NULL, 
	business_day BOOLEAN NOT NULL, 
	name VARCHAR(200) DEFAULT '' NOT NULL, 
	loaded_by VARCHAR(120) NOT NULL, 
	loaded_at DATETIME NOT NULL, 
	PRIMARY KEY (market, day)
)""",
    r"""CREATE INDEX ix_lending_calendar_days_year ON lending_calendar_days (market, year)""",
    r"""CREATE TABLE lending_overpayment_moves (
	id VARCHAR(160) NOT NULL, 
	loan_id VARCHAR(80) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	moved_on DATE NOT NULL, 
	target_loan_id VARCHAR(80), 
	payout_id VARCHAR(120), 
	entry_id CHAR(32) NOT NULL, 
	actor VARCHAR(120) NOT NULL, 
	recorded_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_lending_overpayment_kind CHECK (kind IN ('refund', 'apply')), 
	CONSTRAINT ck_lending_overpayment_amount CHECK (amount_minor > 0), 
	FOREIGN KEY(loan_id) REFERENCES lending_loans (id), 
	FOREIGN KEY(target_loan_id) REFERENCES lending_loans (id), 
	FOREIGN KEY(entry_id) REFERENCES journal_entries (id)
)""",
    r"""CREATE INDEX ix_lending_overpayment_moves_loan_id ON lending_overpayment_moves (loan_id)""",
    r"""CREATE TABLE staff_users (
	username VARCHAR(64) NOT NULL, 
	full_name VARCHAR(200) NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	password_hash VARCHAR(200) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	failed_logins INTEGER DEFAULT '0' NOT NULL, 
	locked_until DATETIME, 
	must_change_password BOOLEAN DEFAULT 0 NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	last_login_at DATETIME, 
	PRIMARY KEY (username), 
	CONSTRAINT ck_staff_users_role CHECK (role IN ('risk', 'finance', 'payments', 'controller', 'viewer')), 
	CONSTRAINT ck_staff_users_status CHECK (status IN ('active', 'disabled'))
)""",
    r"""CREATE TABLE staff_sessions (
	token_sha256 VARCHAR(64) NOT NULL, 
	username VARCHAR(64) NOT NULL, 
	csrf_token VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	revoked_at DATETIME, 
	PRIMARY KEY (token_sha256), 
	FOREIGN KEY(username) REFERENCES staff_users (username)
)""",
    r"""CREATE INDEX ix_staff_sessions_username ON staff_sessions (username)""",
    r"""CREATE TABLE console_audit (
	id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	actor VARCHAR(120) NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	action VARCHAR(60) NOT NULL, 
	subject VARCHAR(160) NOT NULL, 
	reason TEXT NOT NULL, 
	outcome VARCHAR(16) NOT NULL, 
	details JSON NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_console_audit_outcome CHECK (outcome IN ('done', 'refused'))
)""",
    r"""CREATE INDEX ix_console_audit_subject ON console_audit (subject, id)""",
    r"""CREATE TRIGGER console_audit_no_update BEFORE UPDATE ON console_audit BEGIN SELECT RAISE(ABORT, 'console_audit is append-only: UPDATE is not allowed'); END""",
    r"""CREATE TRIGGER console_audit_no_delete BEFORE DELETE ON console_audit BEGIN SELECT RAISE(ABORT, 'console_audit is append-only: DELETE is not allowed'); END""",
    r"""CREATE TABLE "bank_health" (
	bank VARCHAR(32) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	consecutive_failures INTEGER NOT NULL, 
	opened_at DATETIME, 
	last_error TEXT, 
	updated_at DATETIME NOT NULL, 
	window_started_at DATETIME, 
	probe_token VARCHAR(32), 
	probe_expires_at DATETIME, 
	PRIMARY KEY (bank), 
	CONSTRAINT ck_bank_health_state CHECK (state IN ('closed', 'open', 'half_open'))
)""",
    r"""CREATE TABLE "webhook_endpoints" (
	id VARCHAR(40) NOT NULL, 
	merchant_id VARCHAR(120) NOT NULL, 
	url TEXT NOT NULL, 
	topics TEXT NOT NULL, 
	secret VARCHAR(200) NOT NULL, 
	previous_secret VARCHAR(200), 
	previous_secret_expires_at DATETIME, 
	status VARCHAR(16) NOT NULL, 
	description TEXT DEFAULT ('') NOT NULL, 
	created_at DATETIME NOT NULL, 
	disabled_at DATETIME, 
	secret_key_id VARCHAR(32), 
	previous_secret_key_id VARCHAR(32), 
	PRIMARY KEY (id), 
	CONSTRAINT ck_webhook_endpoints_status CHECK (status IN ('enabled', 'disabled'))
)""",
    r"""CREATE INDEX ix_webhook_endpoints_merchant_id ON webhook_endpoints (merchant_id)""",
    r"""CREATE TABLE "recon_sync_cursors" (
	account_id INTEGER NOT NULL, 
	lane INTEGER DEFAULT '0' NOT NULL, 
	last_seq BIGINT NOT NULL, 
	PRIMARY KEY (account_id, lane), 
	FOREIGN KEY(account_id) REFERENCES accounts (id)
)""",
    r"""CREATE TABLE "beneficiary_accounts" (
	id VARCHAR(64) NOT NULL, 
	supplier_id VARCHAR(64) NOT NULL, 
	holder_name VARCHAR(140) NOT NULL, 
	bank_name VARCHAR(140) NOT NULL, 
	account_ciphertext TEXT NOT NULL, 
	key_id VARCHAR(32) NOT NULL, 
	account_hmac VARCHAR(64) NOT NULL, 
	account_last4 VARCHAR(4) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_by VARCHAR(120) NOT NULL, 
	created_at DATETIME NOT NULL, 
	changed_by VARCHAR(120) NOT NULL, 
	changed_at DATETIME NOT NULL, 
	verified_by VARCHAR(120), 
	verified_at DATETIME, 
	updated_at DATETIME NOT NULL, 
	status_reason VARCHAR(500), 
	number_entered_by VARCHAR(120) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_beneficiary_accounts_status CHECK (status IN ('unverified', 'verified', 'retired')), 
	CONSTRAINT ck_beneficiary_accounts_four_eyes CHECK (status <> 'verified' OR (verified_by IS NOT NULL AND lower(verified_by) <> lower(changed_by) AND lower(verified_by) <> lower(number_entered_by)))
)""",
    r"""CREATE INDEX ix_beneficiary_accounts_supplier ON beneficiary_accounts (supplier_id, status)""",
    r"""CREATE INDEX ix_beneficiary_accounts_hmac ON beneficiary_accounts (account_hmac)""",
    r"""CREATE INDEX ix_recon_lines_statement_status ON recon_statement_lines (statement_id, status)""",
    r"""CREATE INDEX ix_payment_attempts_status_updated ON payment_attempts (status, updated_at)""",
    r"""CREATE INDEX ix_refunds_status_updated ON refunds (status, updated_at)""",
    r"""CREATE INDEX ix_payouts_status_updated ON payouts (status, updated_at)""",
    r"""CREATE INDEX ix_lending_loans_maturity ON lending_loans (maturity, id)""",
    r"""CREATE INDEX ix_lending_loans_book ON lending_loans (status, borrower_id, product_code, currency, maturity, amount_minor, principal_repaid_minor)""",
    r"""CREATE INDEX ix_recon_exceptions_status_date ON recon_exceptions (status, date, id)""",
    r"""CREATE INDEX ix_payouts_review_updated ON payouts (updated_at) WHERE review_reason IS NOT NULL""",
]

POSTGRESQL_DOWNGRADE = [
    r"""DROP TABLE IF EXISTS account_balances CASCADE""",
    r"""DROP TABLE IF EXISTS accounts CASCADE""",
    r"""DROP TABLE IF EXISTS api_idempotency_records CASCADE""",
    r"""DROP TABLE IF EXISTS api_keys CASCADE""",
    r"""DROP TABLE IF EXISTS api_payout_owners CASCADE""",
    r"""DROP TABLE IF EXISTS api_rate_limits CASCADE""",
    r"""DROP TABLE IF EXISTS api_supplier_bindings CASCADE""",
    r"""DROP TABLE IF EXISTS bank_calls CASCADE""",
    r"""DROP TABLE IF EXISTS bank_certificates CASCADE""",
    r"""DROP TABLE IF EXISTS bank_health CASCADE""",
    r"""DROP TABLE IF EXISTS bank_notifications CASCADE""",
    r"""DROP TABLE IF EXISTS beneficiary_accounts CASCADE""",
    r"""DROP TABLE IF EXISTS console_audit CASCADE""",
    r"""DROP TABLE IF EXISTS hold_legs CASCADE""",
    r"""DROP TABLE IF EXISTS holds CASCADE""",
    r"""DROP TABLE IF EXISTS inquiries CASCADE""",
    r"""DROP TABLE IF EXISTS jobs CASCADE""",
    r"""DROP TABLE IF EXISTS journal_entries CASCADE""",
    r"""DROP TABLE IF EXISTS ledger_checkpoints CASCADE""",
    r"""DROP TABLE IF EXISTS lending_borrowers CASCADE""",
    r"""DROP TABLE IF EXISTS lending_calendar_days CASCADE""",
    r"""DROP TABLE IF EXISTS lending_decisions CASCADE""",
    r"""DROP TABLE IF EXISTS lending_loan_events CASCADE""",
    r"""DROP TABLE IF EXISTS lending_loans CASCADE""",
    r"""DROP TABLE IF EXISTS lending_overpayment_moves CASCADE""",
    r"""DROP TABLE IF EXISTS lending_products CASCADE""",
    r"""DROP TABLE IF EXISTS lending_repayments CASCADE""",
    r"""DROP TABLE IF EXISTS lending_settlement_offsets CASCADE""",
    r"""DROP TABLE IF EXISTS lending_trade_records CASCADE""",
    r"""DROP TABLE IF EXISTS notification_rejections CASCADE""",
    r"""DROP TABLE IF EXISTS outbox_events CASCADE""",
    r"""DROP TABLE IF EXISTS payment_attempts CASCADE""",
    r"""DROP TABLE IF EXISTS payment_intents CASCADE""",
    r"""DROP TABLE IF EXISTS payout_control_audit CASCADE""",
    r"""DROP TABLE IF EXISTS payout_reviews CASCADE""",
    r"""DROP TABLE IF EXISTS payouts CASCADE""",
    r"""DROP TABLE IF EXISTS postings CASCADE""",
    r"""DROP TABLE IF EXISTS recon_audit CASCADE""",
    r"""DROP TABLE IF EXISTS recon_bank_accounts CASCADE""",
    r"""DROP TABLE IF EXISTS recon_book_items CASCADE""",
    r"""DROP TABLE IF EXISTS recon_exceptions CASCADE""",
    r"""DROP TABLE IF EXISTS recon_match_items CASCADE""",
    r"""DROP TABLE IF EXISTS recon_match_lines CASCADE""",
    r"""DROP TABLE IF EXISTS recon_matches CASCADE""",
    r"""DROP TABLE IF EXISTS recon_statement_lines CASCADE""",
    r"""DROP TABLE IF EXISTS recon_statements CASCADE""",
    r"""DROP TABLE IF EXISTS recon_sync_cursors CASCADE""",
    r"""DROP TABLE IF EXISTS refunds CASCADE""",
    r"""DROP TABLE IF EXISTS staff_sessions CASCADE""",
    r"""DROP TABLE IF EXISTS staff_users CASCADE""",
    r"""DROP TABLE IF EXISTS supplier_payouts CASCADE""",
    r"""DROP TABLE IF EXISTS supplier_terms CASCADE""",
    r"""DROP TABLE IF EXISTS webhook_deliveries CASCADE""",
    r"""DROP TABLE IF EXISTS webhook_endpoints CASCADE""",
    r"""DROP FUNCTION IF EXISTS console_audit_append_only()""",
    r"""DROP FUNCTION IF EXISTS ledger_check_new_entries()""",
    r"""DROP FUNCTION IF EXISTS ledger_check_new_postings()""",
    r"""DROP FUNCTION IF EXISTS ledger_keep_accounts()""",
    r"""DROP FUNCTION IF EXISTS ledger_lane_slot()""",
    r"""DROP FUNCTION IF EXISTS ledger_post_entries(jsonb)""",
    r"""DROP FUNCTION IF EXISTS ledger_post_entry(text,uuid,text,text,date,text,text,text,text,text,text,text,bigint[],text[],bigint[],text[])""",
    r"""DROP FUNCTION IF EXISTS ledger_reject_change()""",
    r"""DROP FUNCTION IF EXISTS payout_control_audit_append_only()""",
    r"""DO $$
DECLARE s text := current_schema();
BEGIN
  EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM paycore_ledger_writer', s);
END $$""",
]

SQLITE_DOWNGRADE = [
    r"""DROP TABLE IF EXISTS recon_sync_cursors""",
    r"""DROP TABLE IF EXISTS bank_health""",
    r"""DROP TABLE IF EXISTS console_audit""",
    r"""DROP TABLE IF EXISTS staff_sessions""",
    r"""DROP TABLE IF EXISTS staff_users""",
    r"""DROP TABLE IF EXISTS lending_overpayment_moves""",
    r"""DROP TABLE IF EXISTS lending_calendar_days""",
    r"""DROP TABLE IF EXISTS lending_products""",
    r"""DROP TABLE IF EXISTS webhook_deliveries""",
    r"""DROP TABLE IF EXISTS webhook_endpoints""",
    r"""DROP TABLE IF EXISTS jobs""",
    r"""DROP TABLE IF EXISTS outbox_events""",
    r"""DROP TABLE IF EXISTS account_balances""",
    r"""DROP TABLE IF EXISTS ledger_checkpoints""",
    r"""DROP TABLE IF EXISTS api_rate_limits""",
    r"""DROP TABLE IF EXISTS bank_certificates""",
    r"""DROP TABLE IF EXISTS payout_reviews""",
    r"""DROP TABLE IF EXISTS bank_calls""",
    r"""DROP TABLE IF EXISTS api_supplier_bindings""",
    r"""DROP TABLE IF EXISTS payout_control_audit""",
    r"""DROP TABLE IF EXISTS supplier_payouts""",
    r"""DROP TABLE IF EXISTS beneficiary_accounts""",
    r"""DROP TABLE IF EXISTS postings""",
    r"""DROP TABLE IF EXISTS api_payout_owners""",
    r"""DROP TABLE IF EXISTS api_idempotency_records""",
    r"""DROP TABLE IF EXISTS api_keys""",
    r"""DROP TABLE IF EXISTS recon_audit""",
    r"""DROP TABLE IF EXISTS recon_match_lines""",
    r"""DROP TABLE IF EXISTS recon_exceptions""",
    r"""DROP TABLE IF EXISTS recon_statement_lines""",
    r"""DROP TABLE IF EXISTS recon_match_items""",
    r"""DROP TABLE IF EXISTS recon_statements""",
    r"""DROP TABLE IF EXISTS recon_matches""",
    r"""DROP TABLE IF EXISTS recon_book_items""",
    r"""DROP TABLE IF EXISTS recon_bank_accounts""",
    r"""DROP TABLE IF EXISTS lending_repayments""",
    r"""DROP TABLE IF EXISTS lending_loan_events""",
    r"""DROP TABLE IF EXISTS lending_decisions""",
    r"""DROP TABLE IF EXISTS lending_trade_records""",
    r"""DROP TABLE IF EXISTS lending_settlement_offsets""",
    r"""DROP TABLE IF EXISTS lending_loans""",
    r"""DROP TABLE IF EXISTS lending_borrowers""",
    r"""DROP TABLE IF EXISTS refunds""",
    r"""DROP TABLE IF EXISTS payment_attempts""",
    r"""DROP TABLE IF EXISTS supplier_terms""",
    r"""DROP TABLE IF EXISTS payouts""",
    r"""DROP TABLE IF EXISTS payment_intents""",
    r"""DROP TABLE IF EXISTS notification_rejections""",
    r"""DROP TABLE IF EXISTS inquiries""",
    r"""DROP TABLE IF EXISTS bank_notifications""",
    r"""DROP TABLE IF EXISTS hold_legs""",
    r"""DROP TABLE IF EXISTS holds""",
    r"""DROP TABLE IF EXISTS journal_entries""",
    r"""DROP TABLE IF EXISTS accounts""",
]

UPGRADE = {"postgresql": POSTGRESQL, "sqlite": SQLITE}
DOWNGRADE = {"postgresql": POSTGRESQL_DOWNGRADE, "sqlite": SQLITE_DOWNGRADE}
