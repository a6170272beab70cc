"""A small set of books for the console's tests: one staff user per role (and a second
payments operator), an application in the manual review queue, a reconciliation day with
an exception, a supplier payout one operator requested and another must approve, and a
bank account waiting for verification."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncEngine

import gateways
import ledger
import lending
import reconciliation
from lending import Borrower, LoanApplication, TradeRecord
from paycore.console import staff
from tests.reconciliation.builders import L, camt053, capture, payout, setup_bank

PASSWORD = "correct horse battery staple"
USERS = {"risk1": "risk", "fin1": "finance", "pay1": "payments", "pay2": "payments",
         "ctl1": "controller", "view1": "viewer"}
CONFIG = lending.DEFAULT_CONFIG
NO_COOLING = gateways.PayoutControls(cooling_off=dt.timedelta(0), approval_above={})


@dataclass(frozen=True)
class Seeded:
    loan_id: str
    exception_id: int
    bank: str
    day: dt.date
    payout_id: str
    unverified_account: str


def cny(amount: str) -> Money:
    return Money(Decimal(amount), "CNY")


def _months_before(day: dt.date, n: int) -> list[dt.date]:
    out, year, month = [], day.year, day.month
    for _ in range(n):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        out.append(dt.date(year, month, 15))
    return out[::-1]


async def seed(engine: AsyncEngine, today: dt.date) -> Seeded:
    async with engine.begin() as conn:
        for name, role in USERS.items():
            await staff.add_user(conn, name, role, PASSWORD, full_name=name.capitalize())

    # risk: a sales spike sends the application to a person
    await lending.open_books(engine, CONFIG)
    spike = ["30000.00", "28000.00", "31000.00", "29000.00", "33000.00", "160000.00"]
    async with engine.begin() as conn:
        sup = "sup-b"
        await lending.register_borrower(conn, Borrower(
            sup, "Spiky Supplies", "CNY", onboarded_on=today - dt.timedelta(days=800)), CONFIG)
        months = _months_before(today, 6)
        records = [TradeRecord("sale", f"sales-{m:%Y-%m}", m, cny(v))
                   for m, v in zip(months, spike, strict=True)]
        records += [TradeRecord("purchase_order", f"po-{sup}-{i}", today - dt.timedelta(days=3 * i),
                                cny("18000.00"), buyer_ref=f"buyer-{i % 4}") for i in range(8)]
        await lending.import_trade_records(conn, sup, records, today)
        result = await lending.apply_for_loan(conn, LoanApplication(
            sup, "supply_chain", cny("20000.00"), 45, today, loan_id="loan-sup-b-1"), CONFIG)
        assert result.loan.status.value == "manual_review", result.decision.reasons

    # finance: the bank shows a fee and a deposit the books do not know
    d1, d2 = today - dt.timedelta(days=2), today - dt.timedelta(days=1)
    async with engine.begin() as conn:
        bank = await setup_bank(conn, tolerance=500)
        await ledger.post_many(conn, [capture("icbc", "TXN-1", 10_000, d1),
                                      payout("PO-1", 4_000, d1)])
        lines = [L(10_000, d2, "TXN-1", "B1"), L(-300, d2, None, "B2", "SMS NOTIFICATION FEE"),
                 L(-4_000, d2, "PO-1", "B4")]
        await reconciliation.import_statement(conn, bank, camt053(lines, opening=20_000, start=d2))
        await reconciliation.reconcile(conn, bank, d2)
        [fee] = [e for e in await reconciliation.list_exceptions(conn, bank)
                 if e.amount_minor == -300]

    # payments: a supplier's verified account, a payout pay1 requested, an account to verify
    async with engine.begin() as conn:
        await ledger.ensure_account(conn, ledger.AccountSpec(
            "2202.payable.sup-p", "Payable to sup-p", ledger.AccountType.LIABILITY, "CNY",
            ledger.BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS))
        for code in ("1102.clearing.icbc", "1103.clearing.payout"):  # the bank's set-up opened them
            assert await ledger.find_account(conn, code) is not None
        await ledger.post(conn, ledger.EntryRequest(
            "capture:sup-p-1", "payment.capture", postings=[
                ledger.Posting("1102.clearing.icbc", debit=cny("5000.00")),
                ledger.Posting("2202.payable.sup-p", credit=cny("5000.00"))]))
        account = await gateways.add_account(conn, "sup-p", holder_name="Sup P Ltd",
                                             account_number="6222020200001234",
                                             bank_name="ICBC", actor="user:clerk")
        await gateways.verify_account(conn, account.id, actor="user:pay2")
        pending = await gateways.request_supplier_payout(conn, gateways.SupplierPayoutRequest(
            payout_id="po-console-1", supplier_id="sup-p", account_id=account.id,
            amount=cny("1200.00"), requested_by="user:pay1", manual=True,
            description="early settlement"), NO_COOLING)
        other = await gateways.add_account(conn, "sup-p", holder_name="Sup P Ltd",
                                           account_number="6222020200009999",
                                           bank_name="CCB", actor="user:pay1")
    return Seeded("loan-sup-b-1", fee.id, bank.code, d2, pending.id, other.id)
