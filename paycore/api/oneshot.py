"""One statement, one round trip: on PostgreSQL a statement that stands alone (a key's
lookup, an idempotency claim or its completion) runs in autocommit, so it is not wrapped
in BEGIN and COMMIT/ROLLBACK of its own — two round trips fewer, each a system call on
both sides and the server's transaction bookkeeping. Its COMMIT is as durable as any.

SQLite keeps its transaction: paycore's SQLite engine begins every transaction with
`BEGIN IMMEDIATE` (the write lock), which an autocommit connection would never commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["one_statement"]


@contextlib.asynccontextmanager
async def one_statement(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for exactly one statement, committed when it returns."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")
        return
    async with engine.begin() as conn:
        yield conn
