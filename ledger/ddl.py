"""The ledger's rules and write functions, as the database holds them.

The code checks every rule first and raises a precise `ledger.errors` error; the triggers
are the second line, so that a bug or a hand-written SQL statement cannot unbalance,
rewrite or delete the books. On PostgreSQL the write functions (`ledger_post_entries`
here, `ledger_post_entry` in `ledger.ddl_post_entry`) post entries in one round trip
(`ledger.fastpath`); SQLite posts them in Python.

These are the live texts, and only those. The baseline migration
(paycore/migrations/versions/baseline.py) froze what the database holds; nothing there
reads this module, and tests/paycore/test_migrations.py fails when the database's
functions or triggers differ from these. To change one: change it here and write a
migration that makes the database's text the same (e.g. CREATE OR REPLACE with the new
text, copied into the migration, and its settings again: CREATE OR REPLACE keeps a
function's owner and grants, not its `ALTER FUNCTION ... SET`).

What the triggers prove, on PostgreSQL once per statement: the postings trigger, that
each posting's account exists, is open and has its currency, that each posting's entry
exists, that the entry has no postings but these (none added later to an older entry), and
that they are at least two and balance per currency; the entries' trigger, that each new
entry has postings at all (so they passed the postings trigger in the same statement). No
foreign keys from postings to entries and accounts on PostgreSQL (a query and a row lock
per posting): the trigger stands in for them, so accounts are never deleted. Every
look-up is an index probe per new row (no hash or merge joins, no sequential scans, no
JIT): the plans do not depend on how big the tables were when a session planned them.
SQLite's triggers run per row, and it keeps its foreign keys.

The write functions prove their own writes (they lock every account, check it, and write
each entry with its postings in one statement), and run as the NOLOGIN role
`WRITER_ROLE` (SECURITY DEFINER, `search_path` pinned to their own schema by the
migration), whose statements the two statement triggers skip (`WHEN (CURRENT_USER <>
...)`). A session gets past the triggers only by deliberately becoming that role.
"""

from __future__ import annotations

from ledger import ddl_lanes, ddl_post_entry

#: the role the write functions run as; the cluster's, shared by every schema with a ledger
WRITER_ROLE = "paycore_ledger_writer"

REJECT_CHANGE = r"""
CREATE OR REPLACE FUNCTION ledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger is append-only: % on % is not allowed; post a reversing entry',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$
"""

KEEP_ACCOUNTS = r"""
CREATE OR REPLACE FUNCTION ledger_keep_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'accounts are closed, never deleted: % on accounts is not allowed', TG_OP
    USING ERRCODE = 'restrict_violation';
END $$
"""

CHECK_NEW_POSTINGS = r"""
CREATE OR REPLACE FUNCTION ledger_check_new_postings() RETURNS trigger
LANGUAGE plpgsql SET jit = off SET enable_seqscan = off SET enable_hashjoin = off
SET enable_mergejoin = off SET enable_bitmapscan = off AS $$
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

CHECK_NEW_ENTRIES = r"""
CREATE OR REPLACE FUNCTION ledger_check_new_entries() RETURNS trigger
LANGUAGE plpgsql SET jit = off SET enable_seqscan = off SET enable_hashjoin = off
SET enable_mergejoin = off SET enable_bitmapscan = off AS $$
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

# `ledger_post_entries` does, inside the caller's transaction, what ledger.entries does in
# Python for a batch of entries: resolve account codes, lock one balance row (lane) of each
# account in account-id order, compare idempotency keys (with the store and within the
# batch), check each account (open, same currency) and each entry (two legs or more,
# balanced per currency), extend each account's hash chain, check the balance limits after
# each entry, and only then write. A refused batch writes nothing and raises nothing (so
# the caller's transaction stays usable): the refusal comes back as a status that
# ledger.fastpath turns into the precise `ledger.errors` error, checked in the same order
# as in Python. The hashes are `ledger.chain`'s, built from the pieces it hands in. The
# batch is one JSON text, [[entry, ...], [leg, ...]]; entry i owns the next
# entry_leg_counts[i] legs. A batch is booked at clock_timestamp() under the locks, or at
# the last booking time of any account it touches if that is later, so an account's
# postings are booked in the order of their sequence numbers. Generic plans: re-planning
# its statements on every call cost more than running them.
POST_ENTRIES = r"""
CREATE OR REPLACE FUNCTION ledger_post_entries(
    p_batch jsonb,
    OUT o_status text, OUT o_failed int, OUT o_detail text[], OUT o_entry_ids uuid[],
    OUT o_replayed boolean[], OUT o_booked_at timestamptz, OUT o_effective date[],
    OUT o_account_ids bigint[], OUT o_codes text[], OUT o_seqs bigint[],
    OUT o_balances bigint[])
LANGUAGE plpgsql SECURITY DEFINER
SET jit = off SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
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
  booked_text text; shortfall numeric; worst_account int; net_balance bigint;
  out_of_range text[];  -- the first leg's account and side a running sum would overflow
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
           -- accounts too by their key: without it, and without statistics (a freshly
           -- loaded table), the join read every account (a cached plan for the session)
           WHERE b.account_id = ANY (leg_account_ids) AND a.id = ANY (leg_account_ids)
             AND b.lane = lane_slot % a.lanes
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
    mixed_currencies := false; imbalances := NULL; has_limit := false; out_of_range := NULL;
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
      -- each amount is in range; the lane's running sums must stay so (refused after the
      -- balance check; no sum is moved once one would overflow)
      IF out_of_range IS NULL AND (CASE WHEN leg_amounts[i] > 0
          THEN account_posted_debits[k] > 9223372036854775807 - leg_amounts[i]
          ELSE account_posted_credits[k] > 9223372036854775807 + leg_amounts[i] END) THEN
        out_of_range := ARRAY[account_codes[k],
                              CASE WHEN leg_amounts[i] > 0 THEN 'debits' ELSE 'credits' END];
      END IF;
      CONTINUE WHEN out_of_range IS NOT NULL;
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
    IF out_of_range IS NOT NULL THEN
      o_status := 'balance-out-of-range'; o_failed := e; o_detail := out_of_range; RETURN;
    END IF;
    IF has_limit THEN
      -- limits after each entry; the first account in id order that broke one is named
      worst_account := NULL;
      FOR i IN first_leg..last_leg LOOP
        k := leg_account_places[i];
        IF account_limits[k] IS NOT NULL AND (worst_account IS NULL OR k < worst_account) THEN
          -- in numeric: posted + pending may pass 64 bits (a shortfall, never an error)
          shortfall := CASE account_limits[k]
            WHEN 'debits_must_not_exceed_credits'
              THEN account_posted_debits[k]::numeric + account_pending_debits[k]
                   - account_posted_credits[k]
            ELSE account_posted_credits[k]::numeric + account_pending_credits[k]
                 - account_posted_debits[k]
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
END $$
"""

_TRIGGER_WHEN = f"WHEN ((CURRENT_USER <> '{WRITER_ROLE}'::name))"

#: PostgreSQL's triggers, as `pg_get_triggerdef` prints them (without the schema)
POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts FOR EACH STATEMENT "
    "EXECUTE FUNCTION ledger_keep_accounts()",
    "CREATE TRIGGER accounts_not_deleted BEFORE DELETE ON accounts FOR EACH STATEMENT "
    "EXECUTE FUNCTION ledger_keep_accounts()",
    *(f"CREATE TRIGGER {table}_append_only BEFORE DELETE OR UPDATE ON {table} FOR EACH "
      "STATEMENT EXECUTE FUNCTION ledger_reject_change()"
      for table in ("journal_entries", "postings", "ledger_checkpoints")),
    *(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT "
      "EXECUTE FUNCTION ledger_reject_change()"
      for table in ("journal_entries", "postings", "ledger_checkpoints")),
    "CREATE TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries REFERENCING NEW "
    f"TABLE AS new_entries FOR EACH STATEMENT {_TRIGGER_WHEN} "
    "EXECUTE FUNCTION ledger_check_new_entries()",
    "CREATE TRIGGER postings_check AFTER INSERT ON postings REFERENCING NEW TABLE AS "
    f"new_postings FOR EACH STATEMENT {_TRIGGER_WHEN} "
    "EXECUTE FUNCTION ledger_check_new_postings()",
]

_APPEND_ONLY = "ledger is append-only: {op} on {table} is not allowed; post a reversing entry"

#: SQLite's triggers, as `sqlite_master` holds them
SQLITE_TRIGGERS = [
    *(f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
      f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY.format(op=op, table=table)}'); END"
      for table in ("journal_entries", "postings") for op in ("UPDATE", "DELETE")),
    "CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts BEGIN SELECT RAISE(ABORT, "
    "'accounts are closed, never deleted: DELETE on accounts is not allowed'); END",
    *(f"CREATE TRIGGER ledger_checkpoints_no_{op.lower()} BEFORE {op} ON ledger_checkpoints "
      f"BEGIN SELECT RAISE(ABORT, 'the checkpoint log is append-only: {op} on "
      "ledger_checkpoints is not allowed'); END"
      for op in ("UPDATE", "DELETE")),
    """CREATE TRIGGER postings_check BEFORE INSERT ON postings
BEGIN
  SELECT RAISE(ABORT, 'posting currency does not match its account currency')
   WHERE NEW.currency <> (SELECT currency FROM accounts WHERE id = NEW.account_id);
  SELECT RAISE(ABORT, 'posting to an account that is not open')
   WHERE (SELECT status FROM accounts WHERE id = NEW.account_id) <> 'open';
  SELECT RAISE(ABORT, 'postings cannot be added to an existing journal entry')
   WHERE EXISTS (SELECT 1 FROM journal_entries WHERE id = NEW.entry_id);
END""",
    """CREATE TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries
BEGIN
  SELECT RAISE(ABORT, 'journal entry has fewer than two postings')
   WHERE (SELECT count(*) FROM postings WHERE entry_id = NEW.id) < 2;
  SELECT RAISE(ABORT, 'journal entry does not balance per currency')
   WHERE EXISTS (SELECT 1 FROM postings WHERE entry_id = NEW.id
                  GROUP BY currency HAVING sum(amount) <> 0);
END""",
]


def postgresql_functions() -> dict[str, str]:
    """Every ledger function PostgreSQL holds: name -> its CREATE OR REPLACE statement."""
    return {"ledger_reject_change": REJECT_CHANGE, "ledger_keep_accounts": KEEP_ACCOUNTS,
            "ledger_check_new_postings": CHECK_NEW_POSTINGS,
            "ledger_check_new_entries": CHECK_NEW_ENTRIES,
            "ledger_lane_slot": ddl_lanes.LANE_SLOT,
            "ledger_post_entries": POST_ENTRIES,
            "ledger_post_entry": ddl_post_entry.POST_ENTRY}


def triggers(dialect: str) -> list[str]:
    """The ledger's triggers on `dialect` ('postgresql' or 'sqlite')."""
    if dialect == "postgresql":
        return list(POSTGRESQL_TRIGGERS)
    if dialect == "sqlite":
        return list(SQLITE_TRIGGERS)
    raise NotImplementedError(f"paycore's ledger runs on PostgreSQL or SQLite, not {dialect}")
