"""`paycore balance ACCOUNT`, answered on the database driver alone (#18 §5).

A person's most frequent question of the books is one account's balance now. Through the
full CLI that costs typer's pydantic coercion, SQLAlchemy with its asyncio extension (which
loads the ORM) and structlog before the first byte is read: ~1.6 s of start-up for a
two-statement read. Here the same two reads go straight to the driver the URL names
(`sqlite3` for the embedded file, asyncpg for PostgreSQL, the URL's `options` as server
settings exactly as `paycore.db.create_engine` passes them), and the answer is built with
the ledger's own `Balance`, so its amounts and text are the full command's.

This module only ever answers the plain case and otherwise steps aside: any other
argument (`--as-of`, `--help`), a URL form it does not know, an unknown account, a
missing file, any driver error — it returns None and the full command runs, so every
refusal and message stays the one `ledger.balance` gives.
tests/paycore/test_balance_lookup.py holds its answer equal to `ledger.balance`'s on
SQLite and PostgreSQL (lanes, holds, both normal sides).
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ledger.types import AccountType, Balance
from paycore.settings import normalise_database_url, server_settings

ACCOUNT_SQL = "SELECT id, code, currency, type FROM accounts WHERE {column} = {mark}"
#: each lane's sums are 64-bit; they are added up in Python (any width), as ledger.balance does
LANES_SQL = ("SELECT posted_debits, posted_credits, pending_debits, pending_credits "
             "FROM account_balances WHERE account_id = {mark}")
SQLITE_PREFIX = "sqlite+aiosqlite:///"
POSTGRES_PREFIX = "postgresql+asyncpg://"


def balance_line(balance: Balance) -> str:
    """What `paycore balance` prints for a current balance."""
    return (f"{balance.account_code}: posted {balance.posted.amount:,} {balance.currency}, "
            f"pending {balance.pending.amount:,}, available {balance.available.amount:,}")


def current_balance(url: str, account: str) -> Balance | None:
    """The account's current balance read on the driver alone, or None when this cannot
    answer (the full command then runs and answers or refuses)."""
    url = normalise_database_url(url)
    # isdecimal, not isdigit: '²' is a digit int() does not read (a code, as the full command)
    ref: int | str = int(account) if account.isdecimal() else account
    try:
        if url.startswith(SQLITE_PREFIX):
            return _from_sqlite(url[len(SQLITE_PREFIX):], ref)
        if url.startswith(POSTGRES_PREFIX):
            return _from_postgresql(url, ref)
    except (OSError, sqlite3.Error, ValueError):
        return None
    except Exception as exc:  # asyncpg's errors, imported only on that path
        if type(exc).__module__.startswith("asyncpg"):
            return None
        raise
    return None


def _balance(account: Any, lanes: list[Any]) -> Balance | None:
    if account is None or not lanes:
        return None
    account_id, code, currency, type_ = account
    return Balance(int(account_id), code, currency, AccountType(type_).debit_normal,
                   sum(int(r[0]) - int(r[1]) for r in lanes),
                   sum(int(r[2]) for r in lanes), sum(int(r[3]) for r in lanes))


def _from_sqlite(path: str, ref: int | str) -> Balance | None:
    if "?" in path:
        return None  # the URL's query: the full engine reads it
    # the file the full command opens: SQLAlchemy decodes the URL's path ('%2E' is '.')
    path = unquote(path)
    if not path or path == ":memory:":
        return None
    # read-only: a mistyped path must not leave an empty database file behind
    # (quoted: a '#' or '?' in a file name must not end the path)
    conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=30)
    try:
        column = "id" if isinstance(ref, int) else "code"
        account = conn.execute(ACCOUNT_SQL.format(column=column, mark="?"), (ref,)).fetchone()
        if account is None:
            return None
        lanes = conn.execute(LANES_SQL.format(mark="?"), (account[0],)).fetchall()
        return _balance(account, lanes)
    finally:
        conn.close()


def _from_postgresql(url: str, ref: int | str) -> Balance | None:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if set(query) - {"options"} or not parts.path.strip("/"):
        return None  # ssl and other connection options: the full engine knows them
    connect: dict[str, Any] = {
        "host": parts.hostname, "port": parts.port,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "database": unquote(parts.path.lstrip("/")),
        "server_settings": server_settings(" ".join(query.get("options", []))),
    }
    import asyncio

    import asyncpg

    async def read() -> Balance | None:
        conn = await asyncpg.connect(**connect)
        try:
            column = "id" if isinstance(ref, int) else "code"
            account = await conn.fetchrow(ACCOUNT_SQL.format(column=column, mark="$1"), ref)
            if account is None:
                return None
            lanes = await conn.fetch(LANES_SQL.format(mark="$1"), account[0])
            return _balance(account, list(lanes))
        finally:
            await conn.close()

    return asyncio.run(read())
