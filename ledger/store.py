"""The write path's statements: the locked read, the idempotency look-up, the bulk writes.

PostgreSQL: rows travel as arrays through `unnest`, so 2 or 2,000 postings cost one round
trip and fire each statement-level trigger once. The statements are plain SQL with `$n`
parameters, run on the asyncpg connection underneath the caller's SQLAlchemy connection,
inside the transaction SQLAlchemy began: measured, SQLAlchemy's execute costs about 150 µs
of client CPU per statement over asyncpg's own, which was most of the ledger's overhead
against the raw-asyncpg ceiling (bench/ledger_bench.py).

SQLite runs in-process, where SQLAlchemy Core and `executemany` are as cheap as it gets.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.schema import account_balances, accounts, journal_entries, postings


class PostingRow(NamedTuple):
    entry_id: uuid.UUID
    leg_no: int
    account_id: int
    amount: int
    currency: str
    account_seq: int
    balance_after: int
    booked_at: dt.datetime
    effective_date: dt.date
    hash: str


class EntryRow(NamedTuple):
    id: uuid.UUID
    idempotency_key: str
    request_hash: str
    kind: str
    description: str
    effective_date: dt.date
    booked_at: dt.datetime
    reverses_entry_id: uuid.UUID | None
    external_ref: str | None
    metadata: dict[str, Any]
    hash: str


#: (account id, lane, posted debits, posted credits, pending debits, pending credits,
#: sequence number, chain head, last booking time)
BalanceRow = tuple[int, int, int, int, int, int, int, str, dt.datetime | None]

# --- PostgreSQL ------------------------------------------------------------------------

_LOCK_SELECT = (
    "SELECT a.id, a.code, a.type, a.currency, a.status, a.balance_limit, b.posted_debits,"
    " b.posted_credits, b.pending_debits, b.pending_credits, b.seq, b.head_hash,"
    " b.last_booked_at, b.lane, a.lanes"
    " FROM account_balances b JOIN accounts a ON a.id = b.account_id"
)
# one lane of each account: the session's (ledger.ddl_lanes), or lane 0 (holds)
_SESSION_LANE = " AND b.lane = ledger_lane_slot() % a.lanes"
_LANE_ZERO = " AND b.lane = 0"
_PG_LOCK_BY_ID = (
    _LOCK_SELECT + " WHERE b.account_id = ANY($1::bigint[]){lane}"
    " ORDER BY b.account_id FOR UPDATE OF b"
)
_PG_LOCK_BY_ID_OR_CODE = (
    _LOCK_SELECT + " WHERE b.account_id IN (SELECT id FROM accounts"
    " WHERE id = ANY($1::bigint[]) OR code = ANY($2::text[])){lane}"
    " ORDER BY b.account_id FOR UPDATE OF b"
)
_PG_FIND_KEYS = (
    "SELECT idempotency_key, id, request_hash FROM journal_entries"
    " WHERE idempotency_key = ANY($1::text[])"
)
_PG_BALANCES = (
    "UPDATE account_balances AS b SET posted_debits = n.pd, posted_credits = n.pc,"
    " pending_debits = n.qd, pending_credits = n.qc, seq = n.s, head_hash = n.h,"
    " last_booked_at = n.lb"
    " FROM unnest(${}::bigint[], ${}::int[], ${}::bigint[], ${}::bigint[], ${}::bigint[],"
    " ${}::bigint[], ${}::bigint[], ${}::text[], ${}::timestamptz[])"
    " AS n(id, lane, pd, pc, qd, qc, s, h, lb)"
    " WHERE b.account_id = n.id AND b.lane = n.lane"
)
_PG_WRITE_BALANCES = _PG_BALANCES.format(*range(1, 10))
# Entries, their postings and the balance rows they changed, in one statement: the
# postings' statement trigger (migration 0008) finds each posting's entry, and the entries'
# trigger proves each entry balances against its postings, both at the statement's end.
_PG_WRITE_ENTRIES = (
    "WITH written_entries AS (INSERT INTO journal_entries (id, idempotency_key, request_hash,"
    " kind, description, effective_date, booked_at, reverses_entry_id, external_ref, metadata,"
    " hash) SELECT i, k, r, kd, d, ed, b, rv, x, m::jsonb, h FROM unnest($1::uuid[],"
    " $2::text[], $3::text[], $4::text[], $5::text[], $6::date[], $7::timestamptz[],"
    " $8::uuid[], $9::text[], $10::text[], $11::text[])"
    " AS t(i, k, r, kd, d, ed, b, rv, x, m, h)),"
    " written_postings AS (INSERT INTO postings (entry_id, leg_no, account_id, amount,"
    " currency, account_seq, balance_after, booked_at, effective_date, hash)"
    " SELECT * FROM unnest($12::uuid[], $13::int[], $14::bigint[], $15::bigint[],"
    " $16::text[], $17::bigint[], $18::bigint[], $19::timestamptz[], $20::date[],"
    " $21::text[])) "
    + _PG_BALANCES.format(*range(22, 31))
)


class _Driver:
    """The asyncpg connection under `conn`, for statements inside the caller's transaction."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    @classmethod
    async def of(cls, conn: AsyncConnection) -> _Driver | None:
        """None unless PostgreSQL with the caller's transaction already begun on the server:
        a statement run here before that would commit on its own."""
        if conn.dialect.name != "postgresql":
            return None
        sync = conn.sync_connection
        if sync is None or sync.closed:
            return None
        # the already checked-out pool connection: attribute access, no await, no I/O
        raw = sync.connection.driver_connection
        if raw is None:
            return None
        if not raw.is_in_transaction() and sync.in_transaction():
            await _begin_on_server(sync.connection.dbapi_connection)
        return cls(raw) if raw.is_in_transaction() else None


async def _begin_on_server(adapted: Any) -> None:
    """Send the BEGIN that SQLAlchemy's asyncpg adapter would send before its first
    statement, through the adapter, so that SQLAlchemy commits or rolls back that very
    transaction. Without the adapter's hooks (another SQLAlchemy version), nothing: the
    caller then falls back to running its statement through SQLAlchemy."""
    start = getattr(adapted, "_start_transaction", None)
    mutex = getattr(adapted, "_execute_mutex", None)
    if start is None or mutex is None or not hasattr(adapted, "_transaction"):
        return
    async with mutex:
        if adapted._transaction is None:
            await start()


async def driver(conn: AsyncConnection) -> Any | None:
    """The asyncpg connection under `conn`, in the caller's transaction (begun on the
    server if SQLAlchemy has begun it only on the client); None on SQLite, or when there is
    no transaction to run in."""
    found = await _Driver.of(conn)
    return None if found is None else found.raw


async def _pg_fetch(conn: AsyncConnection, sql: str, *args: Any) -> list[Any]:
    driver = await _Driver.of(conn)
    if driver is not None:
        return list(await driver.raw.fetch(sql, *args))
    # SQLAlchemy's first statement begins the transaction
    return list((await conn.exec_driver_sql(sql, args)).all())


async def _pg_execute(conn: AsyncConnection, sql: str, *args: Any) -> None:
    driver = await _Driver.of(conn)
    if driver is not None:
        await driver.raw.execute(sql, *args)
    else:
        await conn.exec_driver_sql(sql, args)


def _transpose(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


# --- SQLite ----------------------------------------------------------------------------

#: the lane a SQLite writer takes (not security: spreading postings)
_draw = random.Random()

_LOCK_COLUMNS = (
    accounts.c.id, accounts.c.code, accounts.c.type, accounts.c.currency, accounts.c.status,
    accounts.c.balance_limit, account_balances.c.posted_debits,
    account_balances.c.posted_credits, account_balances.c.pending_debits,
    account_balances.c.pending_credits, account_balances.c.seq, account_balances.c.head_hash,
    account_balances.c.last_booked_at, account_balances.c.lane, accounts.c.lanes,
)
# every lane's row: the write picks one per account (SQLite has one writer at a time)
_LITE_LOCK = (
    sa.select(*_LOCK_COLUMNS)
    .select_from(account_balances.join(accounts, accounts.c.id == account_balances.c.account_id))
    .where(sa.or_(accounts.c.id.in_(sa.bindparam("ids", expanding=True)),
                  accounts.c.code.in_(sa.bindparam("codes", expanding=True))))
    .order_by(account_balances.c.account_id, account_balances.c.lane)
)
_LITE_FIND_KEYS = sa.select(
    journal_entries.c.idempotency_key, journal_entries.c.id, journal_entries.c.request_hash
).where(journal_entries.c.idempotency_key.in_(sa.bindparam("keys", expanding=True)))
_LITE_SAVE_BALANCES = (
    account_balances.update()
    .where(account_balances.c.account_id == sa.bindparam("b_id"),
           account_balances.c.lane == sa.bindparam("b_lane"))
    .values(
        posted_debits=sa.bindparam("b_pd"), posted_credits=sa.bindparam("b_pc"),
        pending_debits=sa.bindparam("b_qd"), pending_credits=sa.bindparam("b_qc"),
        seq=sa.bindparam("b_s"), head_hash=sa.bindparam("b_h"),
        last_booked_at=sa.bindparam("b_lb"),
    )
)


# --- the operations ----------------------------------------------------------------------

def _is_pg(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


async def lock_balances(conn: AsyncConnection, ids: list[int], codes: list[str],
                        *, lane_zero: bool = False) -> list[Any]:
    """One balance row (with its account) of each of these accounts, locked in account-id
    order (`FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds the write
    lock): lane 0 with `lane_zero`, else the lane this writer uses (PostgreSQL: the
    session's slot; SQLite: one drawn at random, every writer there being alone)."""
    if _is_pg(conn):
        lane = _LANE_ZERO if lane_zero else _SESSION_LANE
        if codes:
            return await _pg_fetch(conn, _PG_LOCK_BY_ID_OR_CODE.format(lane=lane), ids, codes)
        return await _pg_fetch(conn, _PG_LOCK_BY_ID.format(lane=lane), ids)
    rows = list((await conn.execute(_LITE_LOCK, {"ids": ids, "codes": codes})).all())
    picked: dict[int, int] = {}
    out = []
    for row in rows:
        lanes = row.lanes
        if row.id not in picked:
            picked[row.id] = 0 if lane_zero or lanes == 1 else _draw.randrange(lanes)
        if row.lane == picked[row.id]:
            out.append(row)
    return out


async def lock_all_lanes(conn: AsyncConnection, account_id: int) -> list[Any]:
    """Every lane's balance row of the account, locked in lane order."""
    query = (sa.select(account_balances).where(account_balances.c.account_id == account_id)
             .order_by(account_balances.c.lane))
    if _is_pg(conn):
        query = query.with_for_update()
    return list((await conn.execute(query)).all())


async def find_idempotency_keys(
    conn: AsyncConnection, keys: Sequence[str]
) -> dict[str, tuple[uuid.UUID, str]]:
    """key -> (entry id, request hash) for the keys already used."""
    found: dict[str, tuple[uuid.UUID, str]] = {}
    for start in range(0, len(keys), 1000):
        chunk = list(keys[start:start + 1000])
        if _is_pg(conn):
            rows = await _pg_fetch(conn, _PG_FIND_KEYS, chunk)
        else:
            rows = list((await conn.execute(_LITE_FIND_KEYS, {"keys": chunk})).all())
        for key, entry_id, request_hash in rows:
            found[key] = (entry_id, request_hash)
    return found


async def write(
    conn: AsyncConnection,
    posting_rows: Sequence[PostingRow],
    entry_rows: Sequence[EntryRow],
    balance_rows: Sequence[BalanceRow],
) -> None:
    """Write new postings and entries and the balance rows they changed (all under lock)."""
    if _is_pg(conn):
        balances = _transpose(balance_rows, 9)
        if entry_rows:
            entries = _transpose(entry_rows, 11)
            entries[9] = [json.dumps(m) for m in entries[9]]
            await _pg_execute(conn, _PG_WRITE_ENTRIES, *entries, *_transpose(posting_rows, 10),
                              *balances)
        elif balance_rows:
            await _pg_execute(conn, _PG_WRITE_BALANCES, *balances)
        return
    if posting_rows:
        await conn.execute(postings.insert(), [r._asdict() for r in posting_rows])
    if entry_rows:
        await conn.execute(journal_entries.insert(), [r._asdict() for r in entry_rows])
    if balance_rows:
        await conn.execute(_LITE_SAVE_BALANCES, [
            {"b_id": r[0], "b_lane": r[1], "b_pd": r[2], "b_pc": r[3], "b_qd": r[4],
             "b_qc": r[5], "b_s": r[6], "b_h": r[7], "b_lb": r[8]}
            for r in balance_rows
        ])
