"""`ledger_lane_slot()`: which lane of an account a database session writes to.

An account with `lanes` = N keeps N balance rows in `account_balances`, one per lane, each
with its own posted and pending sums, sequence, last booking time and chain head. A
writer locks one lane of each account it touches, so N writers can post to one hot
account at once. Lane L numbers its postings from `L * LANE_STRIDE + 1` in the account's
one `account_seq` column (ledger.schema), so `(account_id, account_seq)` stays every
posting's identity and the hashes are `ledger.chain`'s, unchanged.

Each session claims a slot number once (the lowest session-level advisory lock in
paycore's class, 1346459980 or 'PAYL', that no live session holds) and writes to lane `slot % lanes` of every
account, so a pool of N connections spreads over N lanes without two sessions colliding
while N <= lanes, and one connection's writes to an account stay in one lane. Rows are
still locked in account-id order (one lane per account per statement), so writers cannot
deadlock. The write functions (ledger.ddl, ledger.ddl_post_entry) call it.

The live text (see ledger.ddl on how it is kept equal to the database's).
"""

from __future__ import annotations

LANE_SLOT = r"""
CREATE OR REPLACE FUNCTION ledger_lane_slot() RETURNS int
LANGUAGE plpgsql VOLATILE AS $$
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
END $$
"""
