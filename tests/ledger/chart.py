"""A small marketplace chart of accounts shared by the ledger tests."""

from __future__ import annotations

from decimal import Decimal

from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
from ledger import AccountSpec, AccountType, BalanceLimit

CHART = [
    AccountSpec("1102.clearing.icbc", "ICBC clearing", AccountType.ASSET, "CNY"),
    AccountSpec("1001.bank.icbc", "ICBC bank account", AccountType.ASSET, "CNY",
                balance_limit=BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS),
    AccountSpec("2202.payable.s1", "Supplier 1 payable", AccountType.LIABILITY, "CNY",
                balance_limit=BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS, owner_ref="supplier:1"),
    AccountSpec("2202.payable.s2", "Supplier 2 payable", AccountType.LIABILITY, "CNY",
                balance_limit=BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS, owner_ref="supplier:2"),
    AccountSpec("6001.income.commission", "Commission income", AccountType.INCOME, "CNY"),
    AccountSpec("6602.expense.bank_fees", "Bank fees", AccountType.EXPENSE, "CNY"),
    AccountSpec("3001.equity.capital", "Paid-in capital", AccountType.EQUITY, "CNY"),
    AccountSpec("1102.clearing.usd", "USD clearing", AccountType.ASSET, "USD"),
    AccountSpec("2202.payable.usd", "USD supplier payable", AccountType.LIABILITY, "USD"),
]


def cny(amount: str | int) -> Money:
    return Money(Decimal(str(amount)), "CNY")


def usd(amount: str | int) -> Money:
    return Money(Decimal(str(amount)), "USD")


async def open_chart(engine: AsyncEngine) -> dict[str, ledger.Account]:
    async with engine.begin() as conn:
        return {spec.code: await ledger.open_account(conn, spec) for spec in CHART}


def capture(key: str, amount: str, commission: str, supplier: str = "2202.payable.s1",
            **kw: object) -> ledger.EntryRequest:
    gross, fee = Decimal(amount), Decimal(commission)
    legs = [
        ledger.Posting("1102.clearing.icbc", debit=cny(gross)),
        ledger.Posting(supplier, credit=cny(gross - fee)),
    ]
    if fee:
        legs.append(ledger.Posting("6001.income.commission", credit=cny(fee)))
    return ledger.EntryRequest(
        idempotency_key=key, kind="payment.capture",
        postings=legs,
        **kw,  # type: ignore[arg-type]
    )
