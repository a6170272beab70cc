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


async def test_migrations_0012_and_0013_carry_a_posted_ledger_down_and_up(db):
    """A ledger with postings goes down to 0011 (postings with surrogate ids, no last
    booking times) and back up: every posting keeps its entry, leg order, chain and
    balances, the last booking times are filled in again, and the books still prove out."""
    import datetime as dt

    from alembic import command

    from tests.ledger.chart import capture, open_chart

    await open_chart(db)
    posted = []
    for n in range(4):
        async with db.begin() as conn:
            posted += await ledger.post_many(conn, [capture(f"m-{n}-{i}", f"{10 + i}.00", "1.00")
                                                    for i in range(3)])
    async with db.begin() as conn:
        posted.append(await ledger.reverse(conn, posted[0].id))

    async with db.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(paycore_db.alembic_config(c), "0011"))
    async with db.connect() as conn:
        old_ids = (await conn.execute(sa.text(
            "SELECT id FROM postings ORDER BY id"))).scalars().all()
        columns = {c["name"] for c in await conn.run_sync(
            lambda s: sa.inspect(s).get_columns("postings"))}
    assert old_ids == list(range(1, len(old_ids) + 1)) and "leg_no" not in columns

    await paycore_db.upgrade(db)
    async with db.connect() as conn:
        report = await ledger.verify(conn)
        again = await ledger.load_entries(conn, [e.id for e in posted])
        at_first = await ledger.balance(conn, "1102.clearing.icbc", as_of=posted[2].booked_at)
        last = (await conn.execute(sa.text(
            "SELECT a.code, b.last_booked_at FROM account_balances b JOIN accounts a"
            " ON a.id = b.account_id WHERE a.code = '1102.clearing.icbc'"))).one()
    assert report.ok, report.discrepancies
    assert [e.postings for e in again] == [e.postings for e in posted]
    assert at_first.posted.amount == 10 + 11 + 12
    stored = last.last_booked_at
    if isinstance(stored, str):  # SQLite hands back its text through plain SQL
        stored = dt.datetime.fromisoformat(stored).replace(tzinfo=dt.UTC)
    assert stored == posted[-1].booked_at
    async with db.begin() as conn:  # and it takes new entries
        more = await ledger.post(conn, capture("m-after", "5.00", "0.50"))
    assert more.postings[0].account_seq == 14  # 12 captures and a reversal before it
