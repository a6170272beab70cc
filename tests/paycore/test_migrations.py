from __future__ import annotations

import ast
import re
import uuid

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import ledger
from ledger import ddl
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
        # PostgreSQL proves these two links with the postings' statement trigger instead of
        # row-by-row foreign keys (ledger.ddl; tests/ledger/test_database_rules.py)
        by_trigger = [d for d in differences if d[0] == "add_fk"
                      and d[1].parent.name == "postings"
                      and [c.name for c in d[1].columns] in (["entry_id"], ["account_id"])]
        assert len(by_trigger) == 2, differences
        differences = [d for d in differences if d not in by_trigger]
    assert differences == []


def test_the_baseline_reads_no_code():
    """The baseline's SQL is frozen in it: it imports nothing but Alembic, so editing a
    package cannot change what it builds."""
    tree = ast.parse((paycore_db.MIGRATIONS / "versions" / "baseline.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported == {"alembic"}


def _normal(text: str) -> str:
    """SQL text with each run of whitespace as one space."""
    return re.sub(r"\s+", " ", text).strip()


async def _live_functions_made_in(conn, schema: str) -> dict[str, str]:
    """pg_get_functiondef of ledger.ddl's live functions, made in a schema of their own."""
    live = f"live_{uuid.uuid4().hex[:12]}"
    await conn.execute(sa.text(f"CREATE SCHEMA {live}"))
    await conn.execute(sa.text(f"SET LOCAL search_path = {live}"))
    for text in ddl.postgresql_functions().values():
        await conn.execute(sa.text(text))
    made = await _functions_in(conn, live)
    await conn.execute(sa.text(f"SET LOCAL search_path = {schema}"))
    return made


async def _functions_in(conn, schema: str) -> dict[str, str]:
    rows = (await conn.execute(sa.text(
        "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
        " WHERE p.pronamespace = CAST(:s AS regnamespace) AND p.proname LIKE 'ledger\\_%'"),
        {"s": schema})).all()
    # the migration pins each write function's search_path to its own schema
    return {name: _normal(definition.replace(f"{schema}.", "").replace(
        f" SET search_path TO '{schema}', 'pg_temp'", "")) for name, definition in rows}


async def test_the_database_holds_the_live_functions_and_triggers_of_ledger(db):
    """What the migrations made is what ledger/ddl*.py says, word for word: a function or
    trigger changed in ledger/ without a migration that makes it fails here (and a
    migration that changes one without ledger/ fails too)."""
    tables = ("accounts", "account_balances", "journal_entries", "postings", "holds",
              "hold_legs", "ledger_checkpoints")
    async with db.connect() as conn:  # left without a commit: the live functions' schema goes
        if db.dialect.name == "postgresql":
            schema = await conn.scalar(sa.text("SELECT current_schema()"))
            held = await _functions_in(conn, schema)
            live = await _live_functions_made_in(conn, schema)
            triggers = (await conn.execute(sa.text(
                "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c"
                " ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
                " AND c.relnamespace = CAST(:s AS regnamespace) AND c.relname IN :tables")
                .bindparams(sa.bindparam("tables", expanding=True)),
                {"s": schema, "tables": list(tables)})).scalars().all()
            triggers = [t.replace(f"{schema}.", "") for t in triggers]
            assert held.keys() == live.keys() == ddl.postgresql_functions().keys()
            for name in held:
                assert held[name] == live[name], name
        else:
            triggers = (await conn.execute(sa.text(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN :tables")
                .bindparams(sa.bindparam("tables", expanding=True)),
                {"tables": list(tables)})).scalars().all()
    assert sorted(map(_normal, triggers)) == sorted(map(_normal, ddl.triggers(db.dialect.name)))


async def test_downgrade_removes_everything_and_upgrade_rebuilds(db):
    from alembic import command

    async with db.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(paycore_db.alembic_config(c), "base"))
    assert await paycore_db.current_revision(db) is None
    async with db.connect() as conn:
        if db.dialect.name == "postgresql":
            left = (await conn.execute(sa.text(
                "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
                " UNION ALL SELECT proname FROM pg_proc"
                " WHERE pronamespace = current_schema()::regnamespace"))).scalars().all()
            writer_uses_schema = await conn.scalar(sa.text(
                f"SELECT has_schema_privilege('{ddl.WRITER_ROLE}', current_schema(), 'USAGE')"))
            assert not writer_uses_schema
        else:
            left = (await conn.execute(sa.text(
                "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))).scalars().all()
    assert set(left) <= {"alembic_version", "alembic_version_pkc"}, left
    await paycore_db.upgrade(db)
    async with db.begin() as conn:
        await ledger.open_account(conn, ledger.AccountSpec("1", "one", ledger.AccountType.ASSET, "CNY"))
