"""Helpers shared by the payment-core tests: the chart a checkout needs, and sums."""

from __future__ import annotations

from decimal import Decimal

from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from ledger import AccountSpec, AccountType, BalanceLimit, EntryRequest, Posting


def cny(value: str) -> Money:
    return Money(Decimal(value), "CNY")


async def open_payable(conn: AsyncConnection, supplier: str, funded: str | None = None) -> None:
    """A supplier payable (and, to fund it, a clearing account), optionally with money."""
    await ledger.ensure_account(conn, AccountSpec(
        f"2202.payable.{supplier}", f"Payable to {supplier}", AccountType.LIABILITY, "CNY",
        balance_limit=BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS, owner_ref=f"supplier:{supplier}"))
    if funded:
        await ledger.ensure_account(conn, AccountSpec(
            "1102.clearing.seed", "seed clearing", AccountType.ASSET, "CNY"))
        await ledger.post(conn, EntryRequest(
            f"seed:{supplier}:{funded}", "test.seed", [
                Posting("1102.clearing.seed", debit=cny(funded)),
                Posting(f"2202.payable.{supplier}", credit=cny(funded))]))


async def balance_minor(engine: AsyncEngine, code: str) -> tuple[int, int, int]:
    """(posted net debit-minus-credit, pending debits, pending credits) in minor units."""
    async with engine.connect() as conn:
        if await ledger.find_account(conn, code) is None:
            return (0, 0, 0)
        b = await ledger.balance(conn, code)
    return (b.posted_net, b.pending_debits, b.pending_credits)


async def assert_books_prove(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        report = await ledger.verify(conn)
        tb = await ledger.trial_balance(conn)
    assert report.ok, report.summary()
    assert tb.balanced
