"""The database: one engine, and the Alembic migrations that build its schema."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

import gateways
import ledger
import lending
import reconciliation
from paycore import schema

MIGRATIONS = Path(__file__).parent / "migrations"

#: every package's tables, for Alembic and for the schema-matches-migrations test
ALL_METADATA: tuple[sa.MetaData, ...] = (
    ledger.metadata, gateways.metadata, lending.metadata, reconciliation.metadata,
    schema.metadata,
)


def create_engine(url: str, **kwargs: object) -> AsyncEngine:
    # a failed statement's error text never quotes its parameters (account numbers, names):
    # SQLAlchemy says "[SQL parameters hidden due to hide_parameters=True]" instead
    kwargs.setdefault("hide_parameters", True)
    return ledger.create_engine(url, **kwargs)


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to `revision`; a no-op on an up-to-date database."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
