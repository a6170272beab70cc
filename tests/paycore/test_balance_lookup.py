"""`paycore balance ACCOUNT` on the driver alone (paycore.balance_lookup, #18 §5) answers
exactly what `ledger.balance` answers, on SQLite and PostgreSQL — an account spread over
lanes by writers on several connections, pending holds, debit- and credit-normal accounts,
by code and by id — and steps aside (None: the full command runs) wherever it cannot; a
fresh `paycore balance` process that it answers imports neither typer, pydantic,
SQLAlchemy nor structlog."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ledger
from ledger import AccountSpec, AccountType, HoldRequest, Posting
from paycore import db as paycore_db
from paycore.balance_lookup import balance_line, current_balance
from tests.conftest import make_migrated_engine, url_of
from tests.ledger.chart import capture, cny, open_chart

HOT = "6001.income.commission"
ACCOUNTS = ("1102.clearing.icbc", "2202.payable.s1", "2202.payable.s2", HOT,
            "1001.bank.icbc", "3001.equity.capital", "1102.clearing.usd")


async def _books(db) -> None:
    """Captures from eight connections at once into a commission account of four lanes,
    a pending hold on a supplier's payable, and a capital injection."""
    await open_chart(db)
    async with db.begin() as conn:
        await ledger.add_lanes(conn, HOT, 4)
        await ledger.post(conn, ledger.EntryRequest("capital", "equity.injection", [
            Posting("1001.bank.icbc", debit=cny("5000.00")),
            Posting("3001.equity.capital", credit=cny("5000.00"))]))

    async def one(n: int) -> None:
        async with db.begin() as conn:
            await ledger.post(conn, capture(f"cap-{n}", f"{100 + n}.37", f"{n}.05"))

    await asyncio.gather(*(one(n) for n in range(8)))
    async with db.begin() as conn:
        await ledger.hold(conn, HoldRequest("refund-hold", "refund", [
            Posting("2202.payable.s1", debit=cny("12.34")),
            Posting("1102.clearing.icbc", credit=cny("12.34"))],
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)))


async def test_the_drivers_answer_is_the_ledgers(db) -> None:
    await _books(db)
    url = url_of(db)
    async with db.connect() as conn:
        for code in ACCOUNTS:
            expected = await ledger.balance(conn, code)
            by_code = await asyncio.to_thread(current_balance, url, code)
            by_id = await asyncio.to_thread(current_balance, url, str(expected.account_id))
            assert by_code == expected, code
            assert by_id == expected, code
            assert balance_line(by_code) == balance_line(expected)
        lanes = await ledger.balance(conn, HOT)
    # the commission is really spread: the sum is over several balance rows
    assert lanes.posted.amount == sum(cny(f"{n}.05").amount for n in range(8))
    pending = await asyncio.to_thread(current_balance, url, "2202.payable.s1")
    # a pending debit on a credit-normal account (the refund reserved) lowers it
    assert pending is not None and pending.pending_debits == 1234
    assert pending.pending.amount == -cny("12.34").amount


async def test_it_steps_aside_where_it_cannot_answer(db, tmp_path) -> None:
    await open_chart(db)
    url = url_of(db)
    assert await asyncio.to_thread(current_balance, url, "9999.no.such") is None
    assert await asyncio.to_thread(current_balance, url, "987654") is None
    missing = tmp_path / "nowhere" / "books.sqlite"
    assert current_balance(f"sqlite+aiosqlite:///{missing}", HOT) is None
    assert not missing.parent.exists()  # read-only: no empty database left behind
    assert current_balance("sqlite+aiosqlite://", HOT) is None  # in memory: nothing to read
    # a file name with URI characters is that file, not a shorter path
    odd = tmp_path / "books#1?.sqlite"
    (tmp_path / "books").write_bytes(b"")
    assert current_balance(f"sqlite+aiosqlite:///{odd}", HOT) is None
    assert not odd.exists()
    assert current_balance("mysql://x@localhost/books", HOT) is None
    if db.dialect.name == "postgresql":
        # connection options it does not know (ssl, timeouts): the full engine reads them
        assert await asyncio.to_thread(current_balance, url + "&sslmode=require", HOT) is None


#: runs `paycore` as its console script does, then names the heavy modules it imported
PROBE = """
import json, sys
from paycore.entry import main
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
heavy = ("typer", "pydantic", "sqlalchemy", "structlog", "rich", "aiosqlite")
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}))
"""


def _paycore(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAYCORE_DATABASE_URL": url, "PAYCORE_LOG_LEVEL": "WARNING"}
    env.pop("PAYCORE_ACCOUNT_KEYS", None)
    return subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True,
                          text=True, check=False, cwd=Path(__file__).resolve().parents[2])


async def test_a_plain_balance_process_loads_no_heavy_module(db) -> None:
    await _books(db)
    url = url_of(db)
    async with db.connect() as conn:
        expected = balance_line(await ledger.balance(conn, HOT))
    done = await asyncio.to_thread(_paycore, ["balance", HOT], url)
    *printed, probe = done.stdout.strip().splitlines()
    assert printed == [expected], done.stderr
    assert json.loads(probe) == {"code": 0, "loaded": []}
    # an unknown account is the full command's refusal (it then loads the full CLI)
    refused = await asyncio.to_thread(_paycore, ["balance", "9999.no.such"], url)
    assert json.loads(refused.stdout.strip().splitlines()[-1])["code"] == 2
    assert "UnknownAccount" in refused.stderr and "9999.no.such" in refused.stderr
    # --as-of is the full command's too
    as_of = await asyncio.to_thread(_paycore, ["balance", HOT, "--as-of", "2000-01-01"], url)
    assert as_of.stdout.startswith(f"{HOT}: posted 0.00 CNY"), as_of.stderr
    assert "(as of 2000-01-02 00:00:00+00:00)" in as_of.stdout


@pytest.mark.parametrize("account_type", [AccountType.ASSET, AccountType.LIABILITY])
async def test_an_empty_account_reads_zero(db, account_type) -> None:
    async with db.begin() as conn:
        account = await ledger.open_account(conn, AccountSpec(
            "9001.test.empty", "Empty", account_type, "USD"))
    found = await asyncio.to_thread(current_balance, url_of(db), "9001.test.empty")
    async with db.connect() as conn:
        assert found == await ledger.balance(conn, account.id)
    assert found is not None and balance_line(found) == \
        "9001.test.empty: posted 0.00 USD, pending 0.00, available 0.00"


async def test_a_percent_encoded_sqlite_path_is_the_file_the_full_command_opens(tmp_path):
    """SQLAlchemy decodes the URL's path ('%2E' is '.'): the full command opens
    paycore.sqlite. The lookup quoted the raw path, so it opened a file literally named
    'paycore%2Esqlite' — here an older copy of the books — and printed its balance. (A
    file-name question, so SQLite alone.)"""
    engine, _ = await make_migrated_engine("sqlite", tmp_path)
    try:
        await open_chart(engine)
        async with engine.begin() as conn:
            await ledger.post(conn, capture("cap-1", "100.00", "3.00"))
        await engine.dispose()
        shutil.copyfile(tmp_path / "paycore.sqlite", tmp_path / "paycore%2Esqlite")
        async with engine.begin() as conn:
            await ledger.post(conn, capture("cap-2", "200.00", "6.00"))
        url = f"sqlite+aiosqlite:///{tmp_path}/paycore%2Esqlite"
        full = paycore_db.create_engine(url)
        try:
            async with full.connect() as conn:
                expected = await ledger.balance(conn, "2202.payable.s1")
        finally:
            await full.dispose()
        assert expected.posted_net == -29_100  # both captures: the file the URL names
        found = await asyncio.to_thread(current_balance, url, "2202.payable.s1")
        assert found == expected
    finally:
        await engine.dispose()


async def test_a_digit_int_cannot_read_steps_aside(db) -> None:
    # '²' is a digit to str.isdigit, not to int(): the lookup raised ValueError before
    await open_chart(db)
    assert await asyncio.to_thread(current_balance, url_of(db), "²") is None
