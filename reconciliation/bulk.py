"""Writing many rows in one statement.

On PostgreSQL a chunk of rows goes in as one `INSERT ... SELECT FROM unnest(arrays)` and
a status change as one `UPDATE ... WHERE id = ANY(array)`: one round trip and one plan
whatever the chunk size, where an executemany pays per batch of VALUES. SQLite, in
process, takes the plain executemany.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def _pg_type(column: sa.Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, sa.TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, sa.Uuid):
        return "uuid"
    if isinstance(kind, sa.BigInteger):
        return "bigint"
    if isinstance(kind, sa.Integer):
        return "integer"
    if isinstance(kind, sa.Boolean):
        return "boolean"
    if isinstance(kind, sa.DateTime):
        return "timestamptz"
    if isinstance(kind, sa.Date):
        return "date"
    if isinstance(kind, sa.JSON):
        return "jsonb"
    return "text"


def _pg_value(column: sa.Column[Any], value: Any) -> Any:
    if value is not None and _pg_type(column) == "jsonb":
        return json.dumps(value)
    return value


async def insert_rows(conn: AsyncConnection, table: sa.Table, rows: Sequence[Mapping[str, Any]],
                      *, skip_conflicts_on: Sequence[str] = (), returning: str | None = None
                      ) -> list[Any]:
    """Insert `rows` (all with the same keys); with `skip_conflicts_on`, rows that would
    violate that unique key are left out. Returns the `returning` column of the rows
    inserted (empty without it)."""
    if not rows:
        return []
    columns = list(rows[0].keys())
    if conn.dialect.name != "postgresql":
        stmt: Any = sqlite.insert(table)
        if skip_conflicts_on:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
        if returning:
            stmt = stmt.returning(table.c[returning])
            return [r[0] for r in (await conn.execute(stmt, list(rows))).all()]
        await conn.execute(stmt, list(rows))
        return []
    arrays = ", ".join(f"CAST(:{c} AS {_pg_type(table.c[c])}[])" for c in columns)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"
    if skip_conflicts_on:
        sql += f" ON CONFLICT ({', '.join(skip_conflicts_on)}) DO NOTHING"
    if returning:
        sql += f" RETURNING {returning}"
    params = {c: [_pg_value(table.c[c], r[c]) for r in rows] for c in columns}
    result = await conn.execute(sa.text(sql), params)
    return [r[0] for r in result.all()] if returning else []


async def update_where_in(conn: AsyncConnection, table: sa.Table, key: str, ids: Sequence[int],
                          values: Mapping[str, Any], *, extra_where: Any = None) -> None:
    """`UPDATE table SET values WHERE key IN ids [AND extra_where]`."""
    if not ids:
        return
    column = table.c[key]
    if conn.dialect.name == "postgresql":
        where = column == sa.func.any(sa.bindparam("ids", list(ids),
                                                   type_=postgresql.ARRAY(sa.BigInteger)))
        stmt = table.update().where(where)
        if extra_where is not None:
            stmt = stmt.where(extra_where)
        await conn.execute(stmt.values(**values))
        return
    for start in range(0, len(ids), 1000):
        stmt = table.update().where(column.in_(list(ids[start:start + 1000])))
        if extra_where is not None:
            stmt = stmt.where(extra_where)
        await conn.execute(stmt.values(**values))
