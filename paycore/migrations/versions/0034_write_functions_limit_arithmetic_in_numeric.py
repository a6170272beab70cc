"""0034: the write functions' balance-limit arithmetic in numeric, so posted + pending past
64 bits is a shortfall, never an error.

A limited account's check was `posted_debits + pending_debits - posted_credits` (or the
credit side's) in bigint: each sum in range, but a funded account with a hold as large as
its balance made the next entry's sum pass 2**63-1, and `ledger_post_entry` /
`ledger_post_entries` raised "bigint out of range" (a 500 through the API, the caller's
transaction aborted) where the Python write path, exact in Python integers, refused the
entry with `BalanceLimitExceeded`. The shortfall is now numeric in both functions: the
same refusal, with the same shortfall, on both paths (tests/ledger/test_sums_past_64_bits.py).

Upgrade: the two functions' new text (CREATE OR REPLACE), their search_path pinned again.
Downgrade: their 0032 text, pinned again. SQLite has no server functions: nothing to do.

Revision ID: 0034
Revises: 0033
"""
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

_ENTRIES_SIGNATURE = "ledger_post_entries(jsonb)"
_ENTRY_SIGNATURE = ("ledger_post_entry(text,uuid,text,text,date,text,text,text,text,text,text,"
                    "text,bigint[],text[],bigint[],text[])")
# CREATE OR REPLACE keeps a function's owner and grants, not its ALTER FUNCTION ... SET
_PIN_SEARCH_PATH = f"""DO $$
DECLARE s text := current_schema();
BEGIN
  EXECUTE format('ALTER FUNCTION {_ENTRIES_SIGNATURE} SET search_path = %I, pg_temp', s);
  EXECUTE format('ALTER FUNCTION {_ENTRY_SIGNATURE} SET search_path = %I, pg_temp', s);
END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no server functions: it posts in Python
    op.execute(POST_ENTRIES_0034)
    op.execute(POST_ENTRY_0034)
    op.execute(_PIN_SEARCH_PATH)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(POST_ENTRIES_0032)
    op.execute(POST_ENTRY_0032)
    op.execute(_PIN_SEARCH_PATH)


# The functions' texts, copied from ledger/ddl.py and ledger/ddl_post_entry.py (never
# imported: editing ledger/ must not change what this revision builds).
POST_ENTRIES_0034 = r"""
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

POST_ENTRY_0034 = r"""
CREATE OR REPLACE FUNCTION ledger_post_entry(
    p_key text, p_id uuid, p_kind text, p_description text, p_effective date,
    p_external_ref text, p_metadata text, p_request_head text, p_request_tail text,
    p_head text, p_middle text, p_tail text,
    p_ids bigint[], p_codes text[], p_amounts bigint[], p_currencies text[],
    OUT o_status text, OUT o_detail text[], OUT o_entry_id uuid, OUT o_booked_at timestamptz,
    OUT o_effective date, OUT o_account_ids bigint[], OUT o_codes text[], OUT o_seqs bigint[],
    OUT o_balances bigint[])
LANGUAGE plpgsql SECURITY DEFINER
SET jit = off SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
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
  entry_hash text; net_balance bigint; shortfall numeric; has_limit boolean := false;
  out_of_range text[];  -- the first leg's account and side a running sum would overflow
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
           -- accounts too by their key: without it, and without statistics (a freshly
           -- loaded table), the join read every account (a cached plan for the session)
           WHERE b.account_id = ANY (o_account_ids) AND a.id = ANY (o_account_ids)
             AND b.lane = lane_slot % a.lanes
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
    -- each amount is in range; the lane's running sums must stay so (refused after the
    -- balance check; no sum is moved once one would overflow)
    IF out_of_range IS NULL AND (CASE WHEN p_amounts[i] > 0
        THEN account_posted_debits[k] > 9223372036854775807 - p_amounts[i]
        ELSE account_posted_credits[k] > 9223372036854775807 + p_amounts[i] END) THEN
      out_of_range := ARRAY[account_codes[k],
                            CASE WHEN p_amounts[i] > 0 THEN 'debits' ELSE 'credits' END];
    END IF;
    CONTINUE WHEN out_of_range IS NOT NULL;
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
  IF out_of_range IS NOT NULL THEN
    o_status := 'balance-out-of-range'; o_detail := out_of_range; RETURN;
  END IF;
  IF has_limit THEN  -- every locked account is one of the legs'; they come in id order
    FOR k IN 1..cardinality(account_ids) LOOP
      -- in numeric: posted + pending may pass 64 bits (a shortfall, never an error)
      shortfall := CASE account_limits[k]
        WHEN 'debits_must_not_exceed_credits'
          THEN account_posted_debits[k]::numeric + account_pending_debits[k]
               - account_posted_credits[k]
        WHEN 'credits_must_not_exceed_debits'
          THEN account_posted_credits[k]::numeric + account_pending_credits[k]
               - account_posted_debits[k]
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
END $$
"""

# 0032's texts (the downgrade)
POST_ENTRIES_0032 = r"""
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
  booked_text text; shortfall bigint; worst_account int; net_balance bigint;
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
END $$
"""

POST_ENTRY_0032 = r"""
CREATE OR REPLACE FUNCTION ledger_post_entry(
    p_key text, p_id uuid, p_kind text, p_description text, p_effective date,
    p_external_ref text, p_metadata text, p_request_head text, p_request_tail text,
    p_head text, p_middle text, p_tail text,
    p_ids bigint[], p_codes text[], p_amounts bigint[], p_currencies text[],
    OUT o_status text, OUT o_detail text[], OUT o_entry_id uuid, OUT o_booked_at timestamptz,
    OUT o_effective date, OUT o_account_ids bigint[], OUT o_codes text[], OUT o_seqs bigint[],
    OUT o_balances bigint[])
LANGUAGE plpgsql SECURITY DEFINER
SET jit = off SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
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
  out_of_range text[];  -- the first leg's account and side a running sum would overflow
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
           -- accounts too by their key: without it, and without statistics (a freshly
           -- loaded table), the join read every account (a cached plan for the session)
           WHERE b.account_id = ANY (o_account_ids) AND a.id = ANY (o_account_ids)
             AND b.lane = lane_slot % a.lanes
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
    -- each amount is in range; the lane's running sums must stay so (refused after the
    -- balance check; no sum is moved once one would overflow)
    IF out_of_range IS NULL AND (CASE WHEN p_amounts[i] > 0
        THEN account_posted_debits[k] > 9223372036854775807 - p_amounts[i]
        ELSE account_posted_credits[k] > 9223372036854775807 + p_amounts[i] END) THEN
      out_of_range := ARRAY[account_codes[k],
                            CASE WHEN p_amounts[i] > 0 THEN 'debits' ELSE 'credits' END];
    END IF;
    CONTINUE WHEN out_of_range IS NOT NULL;
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
  IF out_of_range IS NOT NULL THEN
    o_status := 'balance-out-of-range'; o_detail := out_of_range; RETURN;
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
END $$
"""
