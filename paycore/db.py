"""The database: one engine, and the Alembic migrations that build its schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

import ledger
from paycore.settings import server_settings

if TYPE_CHECKING:  # Alembic is imported by the functions that migrate, not by every command
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def all_metadata() -> tuple[sa.MetaData, ...]:
    """Every package's tables, for Alembic and for the schema-matches-migrations test.
    The domains are imported here, not with this module: every CLI command reads
    `paycore.db`, and `paycore balance` needs none of them."""
    import gateways
    import ledger.outbox  # its table joins ledger.metadata when it loads (lazily, since #18)
    import lending
    import reconciliation
    from paycore import schema

    return (ledger.metadata, gateways.metadata, lending.metadata, reconciliation.metadata,
            schema.metadata)


def __getattr__(name: str) -> tuple[sa.MetaData, ...]:
    # `ALL_METADATA` is computed when read, not when this module is imported: reading
    # every domain's tables at import would load them all for every CLI command
    if name == "ALL_METADATA":
        return all_metadata()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_engine(url: str, **kwargs: object) -> AsyncEngine:
    # a failed statement's error text never quotes its parameters (account numbers, names):
    # SQLAlchemy says "[SQL parameters hidden due to hide_parameters=True]" instead
    kwargs.setdefault("hide_parameters", True)
    # A PostgreSQL URL may carry libpq's `options` parameter, as psql takes it
    # (`?options=-csearch_path%3Dtenant_a`): its `-c name=value` settings go to the server
    # at connect (asyncpg's `server_settings`), so every process (CLI, serve, janitor)
    # can be pointed at one schema by its URL alone.
    parsed = sa.make_url(url)
    options = parsed.query.get("options")
    if parsed.get_backend_name() == "postgresql" and options is not None:
        settings = server_settings(options if isinstance(options, str) else " ".join(options))
        connect_args: dict[str, Any] = dict(kwargs.pop("connect_args", None) or {})  # type: ignore[call-overload]
        connect_args["server_settings"] = {**settings,
                                           **(connect_args.get("server_settings") or {})}
        kwargs["connect_args"] = connect_args
        return ledger.create_engine(parsed.difference_update_query(["options"]), **kwargs)
    return ledger.create_engine(url, **kwargs)


def alembic_config(connection: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to `revision`; a no-op on an up-to-date database."""
    from alembic import command

    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
