"""Sums past the books' 64-bit integers are the ledger's own refusals on every write path,
on both databases, and leave the books as they were: an entry whose debits (and so its
credits) total past 2**63-1 minor units although each leg is in range, a hold that would
take an account's pending debits or credits past it, and a balance limit whose arithmetic
(posted + pending) passes it. Before, SQLite raised 'integer overflow' (the entries'
balance trigger) or OverflowError, and PostgreSQL 'bigint out of range' from the write
functions or the driver: an error no caller could tell from a broken database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from moneyed import Money

import ledger
from ledger import EntryRequest, HoldRequest, Posting
from tests.ledger.chart import cny, open_chart

LARGEST = 2**63 - 1
#: 2**62 + 1 fen: each leg in range, two of them on one side of an entry are not
BIG = cny(Decimal(2**62 + 1) / 100)


def minor(units: int) -> Money:
    return cny(Decimal(units) / 100)


def soon() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)


def two_big_debits(key: str) -> EntryRequest:
    """Balanced, every account's sums in range, but 2**63 + 2 fen of debits in all."""
    return EntryRequest(key, "test.vast", [
        Posting("1102.clearing.icbc", debit=BIG),
        Posting("6602.expense.bank_fees", debit=BIG),
        Posting("6001.income.commission", credit=BIG),
        Posting("3001.equity.capital", credit=BIG),
    ])


async def books_unchanged(db) -> None:
    async with db.connect() as conn:
        report = await ledger.verify(conn)
        assert report.ok, report.discrepancies
        assert report.entries == 0 and report.holds_pending == 0
        for code in ("1102.clearing.icbc", "6602.expense.bank_fees", "6001.income.commission",
                     "3001.equity.capital"):
            assert (await ledger.balance(conn, code)).posted.amount == 0


async def test_an_entry_whose_debits_total_past_64_bits_is_refused_on_every_path(db):
    await open_chart(db)
    for post in ("post", "post_many", "post_each", "coalescer"):
        with pytest.raises(ledger.InvalidAmount, match="total"):
            if post == "coalescer":
                async with ledger.Coalescer(db) as coalescer:
                    await coalescer.submit(two_big_debits(f"vast-{post}"))
                continue
            async with db.begin() as conn:
                if post == "post":
                    await ledger.post(conn, two_big_debits("vast-post"))
                elif post == "post_many":
                    await ledger.post_many(conn, [two_big_debits("vast-many-1"),
                                                  two_big_debits("vast-many-2")])
                else:
                    [outcome] = await ledger.post_each(conn, [two_big_debits("vast-each")])
                    raise outcome if isinstance(outcome, Exception) else AssertionError(outcome)
        await books_unchanged(db)


async def test_an_entry_of_exactly_the_largest_total_posts_and_verifies(db):
    """The refusal starts one fen past what the books keep: 2**63-1 in all posts."""
    await open_chart(db)
    async with db.begin() as conn:
        entry = await ledger.post(conn, EntryRequest("largest", "test.vast", [
            Posting("1102.clearing.icbc", debit=minor(2**62)),
            Posting("6602.expense.bank_fees", debit=minor(2**62 - 1)),
            Posting("3001.equity.capital", credit=minor(LARGEST)),
        ]))
    assert sum(p.amount for p in entry.postings if p.amount > 0) == LARGEST
    async with db.connect() as conn:
        report = await ledger.verify(conn)
        assert report.ok, report.discrepancies
        # equity is credit-normal: its balance reads positive
        assert (await ledger.balance(conn, "3001.equity.capital")).posted == minor(LARGEST)


@pytest.mark.parametrize("side", ["debits", "credits"])
async def test_a_hold_past_64_bits_of_pending_is_refused(db, side):
    await open_chart(db)
    account = "1102.clearing.icbc"

    def hold_of(key: str, other: str) -> HoldRequest:
        legs = [Posting(account, debit=BIG), Posting(other, credit=BIG)]
        if side == "credits":
            legs = [Posting(other, debit=BIG), Posting(account, credit=BIG)]
        return HoldRequest(key, "test.hold", legs, expires_at=soon())

    async with db.begin() as conn:
        await ledger.hold(conn, hold_of("h-1", "6001.income.commission"))
    with pytest.raises(ledger.BalanceOutOfRange) as refused:
        async with db.begin() as conn:
            await ledger.hold(conn, hold_of("h-2", "3001.equity.capital"))
    assert refused.value.account_code == account
    assert refused.value.side == f"pending {side}"
    async with db.connect() as conn:
        bal = await ledger.balance(conn, account)
        report = await ledger.verify(conn)
        assert (await ledger.balance(conn, "3001.equity.capital")).pending_debits == 0
        assert (await ledger.balance(conn, "3001.equity.capital")).pending_credits == 0
    assert report.ok, report.discrepancies
    assert report.holds_pending == 1
    pending = bal.pending_debits if side == "debits" else bal.pending_credits
    assert pending == 2**62 + 1


@pytest.mark.parametrize("limit", ["credits_must_not_exceed_debits",
                                   "debits_must_not_exceed_credits"])
async def test_a_balance_limit_past_64_bits_is_the_limits_refusal(db, limit):
    """posted + pending past 2**63-1 on a limited account: the entry breaks the limit (by
    2**62 + 1 fen) and is refused as such on every path, not with an integer error."""
    await open_chart(db)
    if limit == "credits_must_not_exceed_debits":  # the bank account: funded, then a hold
        account, other = "1001.bank.icbc", "3001.equity.capital"
        fund = [Posting(account, debit=BIG), Posting(other, credit=BIG)]
        reserve = [Posting(account, credit=BIG), Posting("6602.expense.bank_fees", debit=BIG)]
        spend = [Posting(account, credit=BIG), Posting("6602.expense.bank_fees", debit=BIG)]
    else:  # the supplier's payable: owed, then a payout held
        account, other = "2202.payable.s1", "1102.clearing.icbc"
        fund = [Posting(other, debit=BIG), Posting(account, credit=BIG)]
        reserve = [Posting(account, debit=BIG), Posting("1001.bank.icbc", credit=BIG)]
        spend = [Posting(account, debit=BIG), Posting("6001.income.commission", credit=BIG)]
    async with db.begin() as conn:
        await ledger.post(conn, EntryRequest("fund", "test.fund", fund))
        if limit == "credits_must_not_exceed_debits":
            await ledger.hold(conn, HoldRequest("reserve", "test.hold", reserve,
                                                expires_at=soon()))
    if limit == "debits_must_not_exceed_credits":
        # the bank account's own limit would refuse the payout hold's credit: fund it
        async with db.begin() as conn:
            await ledger.post(conn, EntryRequest("fund-bank", "test.fund", [
                Posting("1001.bank.icbc", debit=BIG), Posting("3001.equity.capital", credit=BIG)]))
            await ledger.hold(conn, HoldRequest("reserve", "test.hold", reserve,
                                                expires_at=soon()))
    for post in ("post", "post_many", "post_each"):
        async with db.begin() as conn:
            if post == "post":
                with pytest.raises(ledger.BalanceLimitExceeded) as refused:
                    await ledger.post(conn, EntryRequest("spend", "test.spend", spend))
            elif post == "post_many":
                with pytest.raises(ledger.BalanceLimitExceeded) as refused:
                    await ledger.post_many(conn, [
                        EntryRequest("spend-0", "test.spend", [
                            Posting("6602.expense.bank_fees", debit=cny("1.00")),
                            Posting("3001.equity.capital", credit=cny("1.00"))]),
                        EntryRequest("spend", "test.spend", spend)])
                await conn.rollback()
                continue
            else:
                outcomes = await ledger.post_each(conn, [
                    EntryRequest("spend", "test.spend", spend),
                    EntryRequest("after", "test.after", [
                        Posting("6602.expense.bank_fees", debit=cny("1.00")),
                        Posting("3001.equity.capital", credit=cny("1.00"))])])
                assert isinstance(outcomes[0], ledger.BalanceLimitExceeded), outcomes
                assert isinstance(outcomes[1], ledger.JournalEntry), outcomes  # still usable
                refused_error = outcomes[0]
        error = refused.value if post != "post_each" else refused_error
        assert error.account_code == account
        assert error.limit == limit
        assert error.shortfall == f"{BIG.amount} CNY"
    async with db.connect() as conn:
        report = await ledger.verify(conn)
        assert report.ok, report.discrepancies
        assert (await ledger.find_entry(conn, "spend")) is None
        assert (await ledger.find_entry(conn, "after")) is not None
