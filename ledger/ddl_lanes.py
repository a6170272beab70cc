"""Migration 0022's DDL: hot accounts split into lanes.

An account with `lanes` = N keeps N balance rows in `account_balances`, one per lane, each
with its own posted and pending sums, sequence, last booking time and chain head. A
writer locks one lane of each account it touches, so N writers can post to one hot
account at once. Lane L numbers its postings from `L * LANE_STRIDE + 1` in the account's
one `account_seq` column (lane 0 keeps the numbers every account had before lanes), so
`(account_id, account_seq)` stays every posting's identity, one unique index serves every
lane's binary search, and the hashes are `ledger.chain`'s, unchanged.

Which lane: each database session claims a slot number once (`ledger_lane_slot()`: the
lowest session-level advisory lock in paycore's class that no live session holds) and
writes to lane `slot % lanes` of every account, so a pool of N connections spreads over N
lanes without two sessions colliding while N <= lanes, and one connection's writes to an
account stay in one lane. Rows are still locked in account-id order (one lane per
account per statement), so writers cannot deadlock.

The write functions are 0013's `ledger_post_entries` and 0014's `ledger_post_entry` with
that lock and the lane in their balance-row update; their older texts stay in
`ledger.ddl` and `ledger.ddl_post_entry` for the older migrations.
"""

from __future__ import annotations

from ledger import ddl, ddl_post_entry

#: session-level advisory locks (this class, slot) are the sessions' lane slots
_SLOT_LOCK_CLASS = 1346459980  # 'PAYL'

LANE_SLOT_FUNCTION = f"""
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
     AND l.classid = {_SLOT_LOCK_CLASS}::oid AND l.objsubid = 2 AND l.granted;
  IF slot IS NULL THEN
    LOOP
      EXIT WHEN pg_try_advisory_lock({_SLOT_LOCK_CLASS}, k);
      k := k + 1;
    END LOOP;
    slot := k;
  END IF;
  PERFORM set_config('paycore.ledger_lane_slot', slot::text, false);
  RETURN slot;
END $$
"""


def _replace(text: str, old: str, new: str, count: int = 1) -> str:
    found = text.count(old)
    if found != count:
        raise AssertionError(f"expected {count} of {old!r} in the function text, found {found}")
    return text.replace(old, new)


def _lock_one_lane(text: str, keys: str, coalesced: bool) -> str:
    # the lanes' array rides along the locked read, in the same account-id order
    lane_agg = "coalesce(array_agg(s.lane), '{}')" if coalesced else "array_agg(s.lane)"
    text = _replace(text, "max(s.last_booked_at)\n", f"max(s.last_booked_at), {lane_agg}\n")
    text = _replace(text, "a_dirty, last_booked\n" if coalesced else "last_booked\n",
                    "a_dirty, last_booked, a_lane\n" if coalesced else "last_booked, a_lane\n")
    text = _replace(text, "b.last_booked_at\n            FROM account_balances b",
                    "b.last_booked_at, b.lane\n            FROM account_balances b")
    text = _replace(text, f"WHERE b.account_id = ANY ({keys}) ORDER BY b.account_id",
                    f"WHERE b.account_id = ANY ({keys}) AND b.lane = lane_slot % a.lanes\n"
                    "           ORDER BY b.account_id")
    return text


def _update_the_lane(text: str, count: int) -> str:
    text = _replace(text, "FROM unnest(a_id, a_pd", "FROM unnest(a_id, a_lane, a_pd", count)
    text = _replace(text, "AS x(id, pd", "AS x(id, lane, pd", count)
    return _replace(text, "WHERE b.account_id = x.id", "WHERE b.account_id = x.id AND b.lane = x.lane",
                    count)


def _declare_lanes(text: str) -> str:
    return _replace(text, "\nBEGIN\n",
                    "\n  lane_slot int := ledger_lane_slot(); a_lane int[] := '{}';\nBEGIN\n")


POST_ENTRIES_FUNCTION_LANES = _update_the_lane(_lock_one_lane(_declare_lanes(
    ddl.POST_ENTRIES_FUNCTION_NUMBERED_LEGS), "legs", coalesced=True), 2)
POST_ENTRY_FUNCTION_LANES = _update_the_lane(_lock_one_lane(_declare_lanes(
    ddl_post_entry.POST_ENTRY_FUNCTION), "o_account_ids", coalesced=False), 1)

_BATCH = "ledger_post_entries(jsonb)"
_PG = [
    LANE_SLOT_FUNCTION,
    POST_ENTRIES_FUNCTION_LANES,
    *ddl._FUNCTION_SETTINGS_0013,
    POST_ENTRY_FUNCTION_LANES,
    f"ALTER FUNCTION {ddl_post_entry.SIGNATURE} SET enable_seqscan = off",
    ddl.writer_function_setup(ddl_post_entry.SIGNATURE),
]
_PG_UNDO = [
    ddl.POST_ENTRIES_FUNCTION_NUMBERED_LEGS,
    *ddl._FUNCTION_SETTINGS_0013,
    *ddl_post_entry.create_statements("postgresql"),
    "DROP FUNCTION IF EXISTS ledger_lane_slot()",
]


def create_statements(dialect: str) -> list[str]:
    """The write functions of migration 0022 (PostgreSQL only: SQLite writes in Python)."""
    return list(_PG) if dialect == "postgresql" else []


def drop_statements(dialect: str) -> list[str]:
    """Back to 0013's and 0014's functions (run after the lanes' rows are folded away)."""
    return list(_PG_UNDO) if dialect == "postgresql" else []
