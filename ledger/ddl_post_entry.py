"""`ledger_post_entry`, PostgreSQL's write function for one journal entry (every
`ledger.post`; `ledger.fastpath.post_entry` calls it).

`ledger_post_entries` (ledger.ddl) reads a batch from one JSON text and is built for
thousands of entries. PostgreSQL prepares a plpgsql function's statements and expressions
again in every transaction, and a `post` is usually a transaction of its own, so this
function takes the entry as typed arguments and does the same work with three statements
(four when a leg names its account by code): lock and read one balance row (lane) of each
account, look up the idempotency key, write. Measured on one writer, server CPU per
`post` in its own transaction: ~635 -> ~470 us.

It keeps every promise of the batch function, and refuses in the same order as it and as
the Python write path: an unknown account; then the idempotency key (a replay answers
`replayed` with the stored entry's id, another request under the key
`idempotency-conflict`); fewer than two legs; per leg in order, a closed account, then a
currency that is not the account's; an entry that does not balance per currency; and last
a balance limit, naming the first account in id order that broke one. A refusal writes
nothing. The hashes are `ledger.chain`'s, built from the same pieces, as the same bytes,
as the batch function's. It runs as the writer role (`ledger.ddl.WRITER_ROLE`), so the
statement triggers skip its writes, which it proves itself.

The live text (see ledger.ddl on how it is kept equal to the database's).
"""

from __future__ import annotations

POST_ENTRY = r"""
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
