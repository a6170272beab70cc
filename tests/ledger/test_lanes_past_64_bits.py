"""An account of several lanes keeps each lane's sums in 64 bits (BalanceOutOfRange), but
its balance — the lanes' sum — may pass them: the books must still answer and prove it.
`balance()`, `trial_balance()` and the balance sheet summed the lanes in SQL, which
SQLite refused with 'integer overflow' while `verify()`, `balance(as_of=)` and
`statement()` (which add up in Python) answered."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import ledger
from ledger import AccountSpec, AccountType, EntryRequest, Posting
from tests.ledger.chart import cny

#: 2**62 + 1 fen: one lane keeps it once; two lanes' together pass 2**63 - 1
UNITS = 2**62 + 1
BIG = cny(Decimal(UNITS) / 100)
HOT = "1102.clearing.hot"


async def test_an_account_whose_lanes_sum_past_64_bits_is_answered_and_proved(db):
    async with db.begin() as conn:
        await ledger.open_account(conn, AccountSpec(HOT, "Hot clearing", AccountType.ASSET,
                                                    "CNY"))
        for n in range(4):
            await ledger.open_account(conn, AccountSpec(f"3001.capital.{n}", "Capital",
                                                        AccountType.EQUITY, "CNY"))
        # many lanes: writers on different sessions (PostgreSQL) or drawn at random
        # (SQLite) post to different ones
        await ledger.add_lanes(conn, HOT, 64)
    posted = 0
    async with contextlib.AsyncExitStack() as stack:
        # four sessions open at once: on PostgreSQL each holds its own lane slot
        sessions = [await stack.enter_async_context(db.connect()) for _ in range(4)]
        for n, conn in enumerate(sessions):
            try:
                async with conn.begin():
                    await ledger.post(conn, EntryRequest(f"big-{n}", "test.big", [
                        Posting(HOT, debit=BIG), Posting(f"3001.capital.{n}", credit=BIG)]))
                posted += 1
            except ledger.BalanceOutOfRange:  # the lane of an earlier one: it keeps one
                pass
    assert posted >= 2
    net = posted * UNITS
    assert net > 2**63 - 1
    today = dt.datetime.now(dt.UTC).date()
    async with db.connect() as conn:
        report = await ledger.verify(conn)
        assert report.ok, report.discrepancies
        assert (await ledger.balance(conn, HOT)).posted.amount == Decimal(net) / 100
        assert (await ledger.balance(conn, HOT, as_of=today)).posted.amount == Decimal(net) / 100
        tb = await ledger.trial_balance(conn)
        [row] = [r for r in tb.rows if r.code == HOT]
        assert (row.debit, row.credit) == (net, 0)
        assert tb.totals["CNY"] == (net, net)
        assert tb.by_type[(AccountType.ASSET, "CNY")] == net
        sheets = await ledger.balance_sheet(conn)
        [sheet] = [s for s in sheets if s.currency == "CNY"]
        assert sheet.assets.total == net
        as_of = await ledger.trial_balance_as_of(conn, today)
        assert [(r.code, r.debit, r.credit) for r in as_of.rows] == \
            [(r.code, r.debit, r.credit) for r in tb.rows]
