"""Alembic environment: runs on the connection paycore hands it, or on
PAYCORE_DATABASE_URL when invoked as `alembic upgrade head`."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from paycore.db import ALL_METADATA, create_engine
from paycore.settings import Settings

target_metadata = list(ALL_METADATA)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    engine = create_engine(Settings.from_env().database_url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_from_settings())
