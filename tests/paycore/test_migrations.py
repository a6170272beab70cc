from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import ledger
from paycore import db as paycore_db


def _head() -> str | None:
    return ScriptDirectory.from_config(paycore_db.alembic_config()).get_current_head()


async def test_upgrade_on_an_up_to_date_database_is_a_no_op(db):
    before = await paycore_db.current_revision(db)
    await paycore_db.upgrade(db)
    assert await paycore_db.current_revision(db) == before == _head()


async def test_migrated_schema_matches_the_schema_in_code(db):
    combined = sa.MetaData()
    for package_metadata in paycore_db.ALL_METADATA:
        for table in package_metadata.tables.values():
            table.to_metadata(combined)

    def diff(sync_conn):
        return compare_metadata(MigrationContext.configure(sync_conn), combined)

    async with db.connect() as conn:
        differences = await conn.run_sync(diff)
    if db.dialect.name == "postgresql":
        # migration 0008: PostgreSQL proves these two links with the postings' statement
        # trigger instead of row-by-row foreign keys (tests/ledger/test_database_rules.py)
        by_trigger = [d for d in differences if d[0] == "add_fk"
                      and d[1].parent.name == "postings"
                      and [c.name for c in d[1].columns] in (["entry_id"], ["account_id"])]
        assert len(by_trigger) == 2, differences
        differences = [d for d in differences if d not in by_trigger]
    assert differences == []


async def test_downgrade_removes_everything_and_upgrade_rebuilds(db):
    from alembic import command

    async with db.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(paycore_db.alembic_config(c), "base"))
    assert await paycore_db.current_revision(db) is None
    await paycore_db.upgrade(db)
    async with db.begin() as conn:
        await ledger.open_account(conn, ledger.AccountSpec("1", "one", ledger.AccountType.ASSET, "CNY"))
