"""Migration 0014's DDL: `ledger_post_entry`, the write function for one journal entry
(every `ledger.post` on PostgreSQL; `ledger.fastpath.post_entry` calls it).

`ledger_post_entries` (ledger.ddl) reads a batch from one JSON text and is built for
thousands of entries: ~70 statements and expressions, a JSON-reading statement, arrays
filled in place. PostgreSQL prepares a plpgsql function's statements and expressions again
in every transaction, and a `post` is usually a transaction of its own, so a single entry
paid for all of them each time. This function takes the entry as typed arguments and does
the same work with three statements (four when a leg names its account by code): lock and
read the accounts, look up the idempotency key, write. Measured on one writer, server CPU
per `post` in its own transaction: ~635 -> ~470 us; 32 writers (bench/ledger_bench.py's
per-entry workload): +14 % entries a second.

It keeps every promise of the batch function, and refuses in the same order as it and as
the Python write path: an unknown account; then the idempotency key (a replay answers
`replayed` with the stored entry's id, another request under the key
`idempotency-conflict`); fewer than two legs; per leg in order, a closed account, then a
currency that is not the account's; an entry that does not balance per currency; and last
a balance limit, naming the first account in id order that broke one. A refusal writes
nothing. The hashes are `ledger.chain`'s, built from the same pieces as the batch
function's (`ddl.leg_json_sql` makes the request hash's legs the same bytes). It runs as
the writer role (ledger.ddl, migration 0011), so the statement triggers skip its writes,
which it proves itself.
"""

from __future__ import annotations

from ledger.ddl import leg_json_sql, posting_hash_sql, writer_function_setup

SIGNATURE = ("ledger_post_entry(text, uuid, text, text, date, text, text, text, text, text, "
             "text, text, bigint[], text[], bigint[], text[])")

POST_ENTRY_FUNCTION = r"""
CREATE OR REPLACE FUNCTION ledger_post_entry(
    p_key text, p_id uuid, p_kind text, p_description text, p_effective date,
    p_external_ref text, p_metadata text, p_request_head text, p_request_tail text,
    p_head text, p_middle text, p_tail text,
    p_ids bigint[], p_codes text[], p_amounts bigint[], p_currencies text[],
    OUT o_status text, OUT o_detail text[], OUT o_entry_id uuid, OUT o_booked_at timestamptz,
    OUT o_effective date, OUT o_account_ids bigint[], OUT o_codes text[], OUT o_seqs bigint[],
    OUT o_balances bigint[])
LANGUAGE plpgsql SECURITY DEFINER SET jit = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  n int := coalesce(cardinality(p_amounts), 0);
  -- the locked accounts, in id order
  a_id bigint[]; a_code text[]; a_cur text[]; a_status text[]; a_limit text[];
  a_pd bigint[]; a_pc bigint[]; a_qd bigint[]; a_qc bigint[]; a_seq bigint[]; a_head text[];
  last_booked timestamptz;
  -- per leg: its account's place among them, and its posting's hash
  leg_k int[]; p_hash text[];
  req text := ''; prior_hash text; e_hash text; i int; k int; net bigint; short bigint;
  has_limit boolean := false; sum_e bigint := 0; mixed boolean := false;
BEGIN
  -- a malformed call, never a caller's mistake: Draft.from_request never makes one
  IF cardinality(p_ids) IS DISTINCT FROM n OR cardinality(p_codes) IS DISTINCT FROM n
     OR cardinality(p_currencies) IS DISTINCT FROM n
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
         max(s.last_booked_at)
    INTO a_id, a_code, a_cur, a_status, a_limit, a_pd, a_pc, a_qd, a_qc, a_seq, a_head,
         last_booked
    FROM (SELECT a.id, a.code, a.currency, a.status, a.balance_limit, b.posted_debits,
                 b.posted_credits, b.pending_debits, b.pending_credits, b.seq, b.head_hash,
                 b.last_booked_at
            FROM account_balances b JOIN accounts a ON a.id = b.account_id
           WHERE b.account_id = ANY (o_account_ids) ORDER BY b.account_id FOR UPDATE OF b) s;
  -- chain.request_hash: head || [[id,amount,"CUR"],...] || tail
  FOR i IN 1..n LOOP
    leg_k[i] := array_position(a_id, o_account_ids[i]);
    req := req || CASE WHEN i > 1 THEN ',' ELSE '' END || {leg_json};
  END LOOP;
  IF array_position(leg_k, NULL) IS NOT NULL THEN
    o_status := 'unknown-account'; o_detail := coalesce(a_id::text[], '{}');
    o_codes := coalesce(a_code, '{}');
    RETURN;
  END IF;
  req := encode(sha256(convert_to(p_request_head || '[' || req || ']' || p_request_tail,
                                  'UTF8')), 'hex');
  -- under the locks: a writer that held them and used the key has committed by now
  SELECT j.request_hash, j.id INTO prior_hash, o_entry_id
    FROM journal_entries j WHERE j.idempotency_key = p_key;
  IF FOUND THEN
    IF prior_hash = req THEN
      o_status := 'replayed';
    ELSE
      o_status := 'idempotency-conflict'; o_entry_id := NULL;
    END IF;
    RETURN;
  END IF;
  IF n < 2 THEN
    o_status := 'too-few-postings'; o_detail := ARRAY[n::text]; RETURN;
  END IF;
  -- booked under the locks, as the Python path does: an account's postings are booked in
  -- the order of their sequence numbers (greatest() passes over NULL: no postings yet)
  o_booked_at := greatest(clock_timestamp(), last_booked);
  o_effective := coalesce(p_effective, (o_booked_at AT TIME ZONE 'UTC')::date);
  e_hash := encode(sha256(convert_to(p_head || req || p_middle || '"'
    || to_char(o_effective, 'YYYY-MM-DD') || '","'
    || to_char(o_booked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00"'
    || p_tail, 'UTF8')), 'hex');
  FOR i IN 1..n LOOP
    k := leg_k[i];
    IF a_status[k] <> 'open' THEN
      o_status := 'account-closed'; o_detail := ARRAY[a_code[k]]; RETURN;
    ELSIF a_cur[k] <> p_currencies[i] THEN
      o_status := 'currency-mismatch'; o_detail := ARRAY[a_code[k], a_cur[k], p_currencies[i]];
      RETURN;
    END IF;
    IF p_currencies[i] = p_currencies[1] THEN
      sum_e := sum_e + p_amounts[i];
    ELSE
      mixed := true;
    END IF;
    -- (a refusal after this point still writes nothing: the write comes last)
    IF p_amounts[i] > 0 THEN
      a_pd[k] := a_pd[k] + p_amounts[i];
    ELSE
      a_pc[k] := a_pc[k] - p_amounts[i];
    END IF;
    a_seq[k] := a_seq[k] + 1; net := a_pd[k] - a_pc[k];
    -- chain.posting_hash
    a_head[k] := {posting_hash};
    o_seqs[i] := a_seq[k]; o_balances[i] := net; p_hash[i] := a_head[k];
    o_codes[i] := a_code[k];
    has_limit := has_limit OR a_limit[k] IS NOT NULL;
  END LOOP;
  -- balanced per currency; an entry in one currency needs no query
  IF mixed THEN
    SELECT array_agg(s.c || ' ' || s.d ORDER BY s.c) INTO o_detail
      FROM (SELECT l.c, sum(l.m) AS d FROM unnest(p_currencies, p_amounts) AS l(c, m)
             GROUP BY l.c HAVING sum(l.m) <> 0) s;
  ELSIF sum_e <> 0 THEN
    o_detail := ARRAY[p_currencies[1] || ' ' || sum_e];
  END IF;
  IF o_detail IS NOT NULL THEN
    o_status := 'unbalanced'; RETURN;
  END IF;
  IF has_limit THEN  -- every locked account is one of the legs'; they come in id order
    FOR k IN 1..cardinality(a_id) LOOP
      short := CASE a_limit[k]
        WHEN 'debits_must_not_exceed_credits' THEN a_pd[k] + a_qd[k] - a_pc[k]
        WHEN 'credits_must_not_exceed_debits' THEN a_pc[k] + a_qc[k] - a_pd[k] END;
      IF short > 0 THEN
        o_status := 'balance-limit-exceeded';
        o_detail := ARRAY[a_code[k], a_limit[k], short::text, a_cur[k]];
        RETURN;
      END IF;
    END LOOP;
  END IF;
  o_entry_id := p_id;
  WITH written_entries AS (
    INSERT INTO journal_entries (id, idempotency_key, request_hash, kind, description,
                                 effective_date, booked_at, external_ref, metadata, hash)
    VALUES (p_id, p_key, req, p_kind, p_description, o_effective, o_booked_at,
            p_external_ref, p_metadata::jsonb, e_hash)),
  written_postings AS (
    INSERT INTO postings (entry_id, leg_no, account_id, amount, currency, account_seq,
                          balance_after, booked_at, effective_date, hash)
    SELECT p_id, x.o, x.a, x.m, x.c, x.s, x.b, o_booked_at, o_effective, x.h
      FROM unnest(o_account_ids, p_amounts, p_currencies, o_seqs, o_balances, p_hash)
        WITH ORDINALITY AS x(a, m, c, s, b, h, o))
  UPDATE account_balances b
     SET posted_debits = x.pd, posted_credits = x.pc, seq = x.s, head_hash = x.h,
         last_booked_at = o_booked_at
    FROM unnest(a_id, a_pd, a_pc, a_seq, a_head) AS x(id, pd, pc, s, h)
   WHERE b.account_id = x.id;
  o_status := 'posted';
END $$
""".replace("{leg_json}", leg_json_sql("o_account_ids[i]", "p_amounts[i]", "p_currencies[i]")
            ).replace("{posting_hash}", posting_hash_sql("e_hash", "o_account_ids[i]", "p_amounts[i]",
                                                         "p_currencies[i]", " " * 6))

_PG_0014 = [
    POST_ENTRY_FUNCTION,
    # as the batch function (migration 0008): its look-ups never become scans of tables
    # that grew after the session planned them
    f"ALTER FUNCTION {SIGNATURE} SET enable_seqscan = off",
    writer_function_setup(SIGNATURE),
]
_PG_0014_UNDO = [f"DROP FUNCTION IF EXISTS {SIGNATURE}"]


def create_statements(dialect: str) -> list[str]:
    """Migration 0014 (PostgreSQL only: SQLite keeps the Python write path)."""
    return list(_PG_0014) if dialect == "postgresql" else []


def drop_statements(dialect: str) -> list[str]:
    return list(_PG_0014_UNDO) if dialect == "postgresql" else []
