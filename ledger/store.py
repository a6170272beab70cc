"""Bulk writes, one statement per table and call whatever the number of rows.

On PostgreSQL rows travel as arrays through `unnest`, so 2 or 2,000 postings cost one
round trip and fire each statement-level trigger once. SQLite runs in-process, where
`executemany` is as cheap as it gets.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.schema import account_balances, journal_entries, postings


class PostingRow(NamedTuple):
    entry_id: uuid.UUID
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


BalanceRow = tuple[int, int, int, int, int, int, str]

_PG_INSERT_POSTINGS = sa.text(
    "INSERT INTO postings (entry_id, account_id, amount, currency, account_seq, balance_after,"
    " booked_at, effective_date, hash)"
    " SELECT * FROM unnest(CAST(:entry_id AS uuid[]), CAST(:account_id AS bigint[]),"
    " CAST(:amount AS bigint[]), CAST(:currency AS text[]), CAST(:account_seq AS bigint[]),"
    " CAST(:balance_after AS bigint[]), CAST(:booked_at AS timestamptz[]),"
    " CAST(:effective_date AS date[]), CAST(:hash AS text[]))"
)

_PG_INSERT_ENTRIES = sa.text(
    "INSERT INTO journal_entries (id, idempotency_key, request_hash, kind, description,"
    " effective_date, booked_at, reverses_entry_id, external_ref, metadata, hash)"
    " SELECT i, k, r, kd, d, ed, b, rv, x, CAST(m AS jsonb), h FROM unnest("
    " CAST(:id AS uuid[]), CAST(:idempotency_key AS text[]), CAST(:request_hash AS text[]),"
    " CAST(:kind AS text[]), CAST(:description AS text[]), CAST(:effective_date AS date[]),"
    " CAST(:booked_at AS timestamptz[]), CAST(:reverses_entry_id AS uuid[]),"
    " CAST(:external_ref AS text[]), CAST(:metadata AS text[]), CAST(:hash AS text[]))"
    " AS t(i, k, r, kd, d, ed, b, rv, x, m, h)"
)

_PG_SAVE_BALANCES = sa.text(
    "UPDATE account_balances AS b SET posted_debits = n.pd, posted_credits = n.pc,"
    " pending_debits = n.qd, pending_credits = n.qc, seq = n.s, head_hash = n.h"
    " FROM unnest(CAST(:id AS bigint[]), CAST(:pd AS bigint[]), CAST(:pc AS bigint[]),"
    " CAST(:qd AS bigint[]), CAST(:qc AS bigint[]), CAST(:s AS bigint[]), CAST(:h AS text[]))"
    " AS n(id, pd, pc, qd, qc, s, h) WHERE b.account_id = n.id"
)

_SQLITE_SAVE_BALANCES = (
    account_balances.update()
    .where(account_balances.c.account_id == sa.bindparam("b_id"))
    .values(
        posted_debits=sa.bindparam("b_pd"), posted_credits=sa.bindparam("b_pc"),
        pending_debits=sa.bindparam("b_qd"), pending_credits=sa.bindparam("b_qc"),
        seq=sa.bindparam("b_s"), head_hash=sa.bindparam("b_h"),
    )
)


def _columns(rows: Sequence[tuple[Any, ...]], names: Sequence[str]) -> dict[str, list[Any]]:
    return {name: list(col) for name, col in zip(names, zip(*rows, strict=True), strict=True)}


def _is_pg(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


async def insert_postings(conn: AsyncConnection, rows: Sequence[PostingRow]) -> None:
    if not rows:
        return
    if _is_pg(conn):
        await conn.execute(_PG_INSERT_POSTINGS, _columns(rows, PostingRow._fields))
    else:
        await conn.execute(postings.insert(), [r._asdict() for r in rows])


async def insert_entries(conn: AsyncConnection, rows: Sequence[EntryRow]) -> None:
    if not rows:
        return
    if _is_pg(conn):
        cols = _columns(rows, EntryRow._fields)
        cols["metadata"] = [json.dumps(m) for m in cols["metadata"]]
        cols["booked_at"] = [_utc(b) for b in cols["booked_at"]]
        await conn.execute(_PG_INSERT_ENTRIES, cols)
    else:
        await conn.execute(journal_entries.insert(), [r._asdict() for r in rows])


async def save_balances(conn: AsyncConnection, rows: Sequence[BalanceRow]) -> None:
    if _is_pg(conn):
        await conn.execute(
            _PG_SAVE_BALANCES, _columns(rows, ("id", "pd", "pc", "qd", "qc", "s", "h"))
        )
    else:
        await conn.execute(_SQLITE_SAVE_BALANCES, [
            {"b_id": r[0], "b_pd": r[1], "b_pc": r[2], "b_qd": r[3], "b_qc": r[4], "b_s": r[5],
             "b_h": r[6]}
            for r in rows
        ])
