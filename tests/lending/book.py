"""Shared set-up for the persisted lending tests: a configured book and a good borrower."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from types import MappingProxyType

from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
import lending
from ledger import AccountSpec, AccountType, EntryRequest, Posting
from lending import Borrower, LendingConfig, LoanApplication, TradeRecord

DAY = dt.date(2026, 3, 2)
CLEARING = "1102.clearing.testbank"

#: the issue's ACT/360 vector needs 10 % a year on the ACT/360 product
MICRO_10 = dataclasses.replace(lending.MERCHANT_MICRO_LOAN, code="micro_10",
                               annual_rate=Decimal("0.10"), origination_fee=None)
CONFIG = LendingConfig(
    products=MappingProxyType({p.code: p for p in (lending.SUPPLY_CHAIN_LOAN,
                                                   lending.MERCHANT_MICRO_LOAN, MICRO_10)}),
    funding=None,
)
FUNDED = dataclasses.replace(CONFIG, funding=lending.FundingLine())


def cny(value: str) -> Money:
    return Money(Decimal(value), "CNY")


def days(n: int) -> dt.date:
    return DAY + dt.timedelta(days=n)


async def credit_payable(conn: AsyncConnection, supplier: str, amount: str, key: str,
                         on: dt.date = DAY) -> None:
    """What a checkout capture does to the supplier payable (without the commission)."""
    await ledger.ensure_account(conn, AccountSpec(CLEARING, "Test bank clearing",
                                                  AccountType.ASSET, "CNY"))
    await ledger.post(conn, EntryRequest(key, "payment.capture", effective_date=on, postings=[
        Posting(CLEARING, debit=cny(amount)),
        Posting(f"2202.payable.{supplier}", credit=cny(amount)),
    ]))


async def good_borrower(conn: AsyncConnection, supplier: str = "sup-001", *,
                        receivables: str = "50000.00", config: LendingConfig = CONFIG,
                        imported_on: dt.date = DAY, on: dt.date = DAY) -> Borrower:
    """Two years on the marketplace, six steady months of sales, three buyers."""
    borrower = await lending.register_borrower(conn, Borrower(
        supplier, f"Supplier {supplier}", "CNY", onboarded_on=on - dt.timedelta(days=730),
    ), config)
    first = on.replace(day=15)
    months = [(first - dt.timedelta(days=30 * k)).replace(day=15) for k in range(6, 0, -1)]
    records = [TradeRecord("sale", f"sales-{m:%Y-%m}", m, cny("100000.00")) for m in months]
    records += [TradeRecord("purchase_order", f"po-{i}", on - dt.timedelta(days=i),
                            cny("10000.00"), buyer_ref=f"buyer-{i % 3}") for i in range(6)]
    await lending.import_trade_records(conn, supplier, records, imported_on)
    if receivables:
        await credit_payable(conn, supplier, receivables, f"capture:{supplier}:seed")
    return borrower


async def approved(conn: AsyncConnection, loan_id: str, *, amount: str = "10000.00",
                   term: int = 30, product: str = "supply_chain", supplier: str = "sup-001",
                   on: dt.date = DAY, config: LendingConfig = CONFIG) -> lending.LoanRecord:
    result = await lending.apply_for_loan(conn, LoanApplication(
        supplier, product, cny(amount), term, on, loan_id=loan_id), config)
    assert result.decision.outcome is lending.Outcome.APPROVE, result.decision.reasons
    return result.loan


async def disbursed(conn: AsyncConnection, loan_id: str, *, on: dt.date = DAY,
                    config: LendingConfig = CONFIG, **kw: object) -> lending.LoanRecord:
    await approved(conn, loan_id, on=on, config=config, **kw)  # type: ignore[arg-type]
    return (await lending.disburse_loan(conn, loan_id, on, config)).loan


async def verify_ok(engine: AsyncEngine, config: LendingConfig = CONFIG) -> None:
    async with engine.connect() as conn:
        report = await ledger.verify(conn)
        assert report.ok, report.summary()
        check = await lending.reconcile_with_ledger(conn, config)
        assert check.ok, check.differences


async def posted(engine: AsyncEngine, code: str) -> int:
    async with engine.connect() as conn:
        if await ledger.find_account(conn, code) is None:
            return 0
        return ledger.to_minor((await ledger.balance(conn, code)).posted)


async def entry_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await ledger.verify(conn)).entries
