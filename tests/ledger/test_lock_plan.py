"""PostgreSQL: the write functions lock the legs' balance rows with a join that reads the
accounts by their primary key whatever the table statistics say (migration 0032).

Without statistics (a freshly loaded accounts table) a join that named the legs' ids on
account_balances only read every account (a merge join over the whole primary-key index,
or a hash join over the table), and the functions' generic plan kept that plan for the
session: 14 ms of a 15 ms call at 10,000 accounts. The plans are read with EXPLAIN of the
functions' own lock statement, cut from ledger/ddl*.py (test_migrations holds the database
to that text), planned as the functions plan it (a generic plan, their settings)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import ddl, ddl_post_entry

ACCOUNTS = 10_000
# the lock statement of each write function, and the name its legs' ids go by there
FUNCTIONS = {"ledger_post_entries": (ddl.POST_ENTRIES, "leg_account_ids"),
             "ledger_post_entry": (ddl_post_entry.POST_ENTRY, "o_account_ids")}


def lock_statement(function_text: str, ids_name: str) -> str:
    """The function's `SELECT ... FOR UPDATE OF b` of the balance rows, its variables as
    parameters: $1 the legs' ids, $2 the lane slot."""
    found = re.findall(r"\((SELECT a\.id, .*?FOR UPDATE OF b)\) s;", function_text, re.S)
    assert len(found) == 1, found
    statement = re.sub(r"--[^\n]*", "", found[0])
    assert ids_name in statement and "lane_slot" in statement
    return statement.replace(ids_name, "$1").replace("lane_slot", "$2")


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def accounts_reads(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [node for node in nodes(plan) if node.get("Relation Name") == "accounts"]


def read_by_key(node: dict[str, Any]) -> bool:
    """The node reads accounts through its primary key, for the given ids only (an index
    condition on id), not every account (a sequential scan, or the whole index)."""
    if node["Node Type"] == "Bitmap Heap Scan":
        index = next(n for n in nodes(node) if n["Node Type"] == "Bitmap Index Scan")
        return index["Index Name"] == "accounts_pkey" and "id = ANY" in index["Index Cond"]
    return (node["Node Type"] in ("Index Scan", "Index Only Scan")
            and node["Index Name"] == "accounts_pkey" and "Index Cond" in node)


def array(ids: list[int]) -> str:
    """The ids as an array literal (EXECUTE takes no bound parameters)."""
    return "'{" + ",".join(str(int(i)) for i in ids) + "}'"


async def plan(conn, statement: str, ids: list[int]) -> dict[str, Any]:
    """The plan PostgreSQL makes for `statement` (as `lock_balances`) and executes for `ids`."""
    if await conn.scalar(sa.text(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = 'lock_balances'")):
        await conn.exec_driver_sql("DEALLOCATE lock_balances")
    await conn.exec_driver_sql(f"PREPARE lock_balances(bigint[], int) AS {statement}")
    text = await conn.scalar(sa.text(
        f"EXPLAIN (FORMAT JSON) EXECUTE lock_balances({array(ids)}, 3)"))
    return dict((json.loads(text) if isinstance(text, str) else text)[0]["Plan"])


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_the_lock_reads_accounts_by_key_without_statistics(db):
    async with db.connect() as conn:  # never committed: no statistics, nothing kept
        await conn.exec_driver_sql(
            "INSERT INTO accounts (id, code, name, type, currency, metadata, opened_at, lanes)"
            f" SELECT g, 'plan.' || g, 'plan', 'asset', 'CNY', '{{}}', now(), 1 + g % 4"
            f" FROM generate_series(1, {ACCOUNTS}) g")
        await conn.exec_driver_sql(
            "INSERT INTO account_balances (account_id, lane, seq, head_hash)"
            " SELECT a.id, l, l * 1099511627776, repeat('0', 64) FROM accounts a,"
            " generate_series(0, a.lanes - 1) l")
        assert await conn.scalar(sa.text(
            "SELECT count(*) FROM pg_stats WHERE tablename = 'accounts'"
            " AND schemaname = current_schema()")) == 0
        # as the functions plan: one generic plan, their settings
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.exec_driver_sql("SET LOCAL jit = off")
        legs = [17, 4242, 9001]

        # the setting reproduces the fault: the statement as it stood read every account
        _, ids_name = FUNCTIONS["ledger_post_entry"]
        before = lock_statement(ddl_post_entry.POST_ENTRY, ids_name).replace(
            " AND a.id = ANY ($1)", "")
        assert "a.id = ANY" not in before
        for seqscan in ("off", "on"):
            await conn.exec_driver_sql(f"SET LOCAL enable_seqscan = {seqscan}")
            reads = accounts_reads(await plan(conn, before, legs))
            assert reads and not any(map(read_by_key, reads)), (seqscan, reads)

        for analyzed in (False, True):
            if analyzed:
                await conn.exec_driver_sql("ANALYZE accounts")
                await conn.exec_driver_sql("ANALYZE account_balances")
            for name, (text, ids_name) in FUNCTIONS.items():
                statement = lock_statement(text, ids_name)
                for seqscan in ("off", "on"):  # the functions say off; either way
                    await conn.exec_driver_sql(f"SET LOCAL enable_seqscan = {seqscan}")
                    reads = accounts_reads(await plan(conn, statement, legs))
                    assert reads and all(map(read_by_key, reads)), (name, analyzed, seqscan,
                                                                    reads)
            # the same rows as the join on account_balances alone: one lane per leg
            rows = (await conn.execute(sa.text(
                f"EXECUTE lock_balances({array(legs)}, 3)"))).all()
            assert [row[0] for row in rows] == legs
        await conn.rollback()
