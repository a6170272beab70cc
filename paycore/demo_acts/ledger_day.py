"""Act 1 of the demo: the ledger on its own — a chart, a day of entries, holds, a reversal,
and bad input refused with the books untouched."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from moneyed import Money

import ledger
from ledger import AccountSpec, AccountType, BalanceLimit, EntryRequest, HoldRequest, Posting
from paycore.demo_acts.context import DemoContext
from paycore.render import short_id

LIMIT_LIABILITY = BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS
LIMIT_ASSET = BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS
#: gateways.postings' CLEARING_LANES and COMMISSION_LANES
HOT_LANES = 16

CHART = [
    AccountSpec("1001.bank.icbc", "ICBC operating account", AccountType.ASSET, "CNY",
                balance_limit=LIMIT_ASSET),
    # the hot accounts every capture touches, in lanes as checkout opens them
    AccountSpec("1102.clearing.icbc", "ICBC gateway clearing", AccountType.ASSET, "CNY",
                lanes=HOT_LANES),
    AccountSpec("1102.clearing.cmb", "CMB gateway clearing", AccountType.ASSET, "CNY",
                lanes=HOT_LANES),
    AccountSpec("1103.clearing.payout", "Payouts in flight", AccountType.ASSET, "CNY"),
    AccountSpec("2202.payable.sup-001", "Payable to Hangzhou Silk Co.", AccountType.LIABILITY,
                "CNY", balance_limit=LIMIT_LIABILITY, owner_ref="supplier:sup-001"),
    AccountSpec("2202.payable.sup-002", "Payable to Ningbo Tools Ltd.", AccountType.LIABILITY,
                "CNY", balance_limit=LIMIT_LIABILITY, owner_ref="supplier:sup-002"),
    AccountSpec("2202.payable.sup-003", "Payable to Yiwu Toys Factory", AccountType.LIABILITY,
                "CNY", balance_limit=LIMIT_LIABILITY, owner_ref="supplier:sup-003"),
    AccountSpec("3001.equity.capital", "Paid-in capital", AccountType.EQUITY, "CNY"),
    AccountSpec("6001.income.commission", "Marketplace commission", AccountType.INCOME, "CNY",
                lanes=HOT_LANES),
    AccountSpec("6602.expense.bank_fees", "Bank fees", AccountType.EXPENSE, "CNY"),
]

COMMISSION = Decimal("0.03")
ORDERS = [  # order id, bank, supplier, amount
    ("ord-1001", "icbc", "sup-001", "1280.00"),
    ("ord-1002", "cmb", "sup-002", "356.40"),
    ("ord-1003", "icbc", "sup-003", "89.90"),
    ("ord-1004", "cmb", "sup-001", "2400.00"),
    ("ord-1005", "icbc", "sup-002", "129.99"),
    ("ord-1006", "cmb", "sup-003", "45.00"),
]


def cny(value: str | Decimal) -> Money:
    return Money(Decimal(value), "CNY")


def capture(order: str, bank: str, supplier: str, gross: Decimal, day: dt.date) -> EntryRequest:
    fee = (gross * COMMISSION).quantize(Decimal("0.01"))
    return EntryRequest(
        idempotency_key=f"capture:{order}", kind="payment.capture", effective_date=day,
        description=f"Order {order} paid at {bank.upper()}", external_ref=order,
        postings=[
            Posting(f"1102.clearing.{bank}", debit=cny(gross)),
            Posting(f"2202.payable.{supplier}", credit=cny(gross - fee)),
            Posting("6001.income.commission", credit=cny(fee)),
        ],
    )


async def run(ctx: DemoContext) -> None:
    engine, console, day = ctx.engine, ctx.console, ctx.day
    step = ctx.step

    step("The books open")
    async with engine.begin() as conn:
        for spec in CHART:
            await ledger.open_account(conn, spec)
        await ledger.post(conn, EntryRequest(
            "capital:2026", "equity.contribution", effective_date=day,
            description="Founders' capital", postings=[
                Posting("1001.bank.icbc", debit=cny("50000.00")),
                Posting("3001.equity.capital", credit=cny("50000.00")),
            ]))
    console.print(f"Opened {len(CHART)} accounts (CNY) and booked the founders' capital.")

    step("A day of entries: captures booked by hand")
    async with engine.begin() as conn:
        entries = await ledger.post_many(conn, [
            capture(o, b, s, Decimal(a), day) for o, b, s, a in ORDERS
        ])
    for e in entries:
        gross = e.postings[0].money.amount
        console.print(f"  {e.external_ref}: {gross:>9,} CNY  → supplier "
                      f"{e.postings[1].money.amount:>9,}, commission {e.postings[2].money.amount:>6,}")

    step("A partial refund, a bank fee, and a mistake put right")
    async with engine.begin() as conn:
        await ledger.post(conn, EntryRequest(
            "refund:ord-1004:1", "payment.refund", effective_date=day, external_ref="ord-1004",
            description="Partial refund of ord-1004 (one item returned)", postings=[
                Posting("2202.payable.sup-001", debit=cny("582.00")),
                Posting("6001.income.commission", debit=cny("18.00")),
                Posting("1102.clearing.cmb", credit=cny("600.00")),
            ]))
        fee = EntryRequest("fee:cmb:day", "bank.fee", effective_date=day,
                           description="CMB gateway fee for the day", postings=[
                               Posting("6602.expense.bank_fees", debit=cny("8.40")),
                               Posting("1102.clearing.cmb", credit=cny("8.40")),
                           ])
        await ledger.post(conn, fee)
        twice = await ledger.post(conn, EntryRequest(
            "fee:cmb:day:dup", "bank.fee", effective_date=day,
            description="CMB gateway fee (keyed in twice)", postings=list(fee.postings)))
        reversal = await ledger.reverse(conn, twice.id, description="Fee was keyed in twice")
    console.print("  refund of 600.00 on ord-1004: supplier gives back 582.00, commission 18.00")
    console.print("  CMB fee 8.40 booked; a duplicate of it booked by mistake and reversed "
                  f"(entry {short_id(reversal.id)} reverses {short_id(twice.id)})")

    step("Two-phase holds: a transfer reserved, partly posted; another voided")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    async with engine.begin() as conn:
        payout1 = await ledger.hold(conn, HoldRequest(
            "payout:sup-001:1", "payout", expires_at=soon, external_ref="po-77001",
            description="Transfer to Hangzhou Silk Co. from the ICBC operating account",
            postings=[
                Posting("2202.payable.sup-001", debit=cny("2500.00")),
                Posting("1001.bank.icbc", credit=cny("2500.00")),
            ]))
        payout2 = await ledger.hold(conn, HoldRequest(
            "payout:sup-003:1", "payout", expires_at=soon, external_ref="po-77002",
            description="Transfer to Yiwu Toys Factory from the ICBC operating account",
            postings=[
                Posting("2202.payable.sup-003", debit=cny("100.00")),
                Posting("1001.bank.icbc", credit=cny("100.00")),
            ]))
        bal = await ledger.balance(conn, "2202.payable.sup-001")
    console.print(f"  held 2,500.00 for Hangzhou Silk: posted {bal.posted.amount:,}, "
                  f"available {bal.available.amount:,}")
    async with engine.begin() as conn:
        await ledger.post_hold(conn, payout1.id, amount=cny("2300.00"))
        await ledger.void_hold(conn, payout2.id)
    console.print("  the bank paid 2,300.00 of it (the rest released); the Yiwu transfer "
                  "was cancelled (hold voided)")

    step("Bad input is refused, and the books are untouched")
    async with engine.connect() as conn:
        before = await ledger.verify(conn)
    refusals: list[tuple[str, EntryRequest]] = [
        ("same key, same body (a retry)", capture("ord-1001", "icbc", "sup-001",
                                                  Decimal("1280.00"), day)),
        ("same key, different amount", capture("ord-1001", "icbc", "sup-001",
                                               Decimal("1290.00"), day)),
        ("unbalanced", EntryRequest("bad:1", "manual", [
            Posting("1001.bank.icbc", debit=cny("10.00")),
            Posting("6001.income.commission", credit=cny("9.99"))])),
        ("wrong currency", EntryRequest("bad:2", "manual", [
            Posting("1001.bank.icbc", debit=Money("10.00", "USD")),
            Posting("6001.income.commission", credit=Money("10.00", "USD"))])),
        ("pay a supplier more than owed", EntryRequest("bad:3", "payout", [
            Posting("2202.payable.sup-002", debit=cny("9999.00")),
            Posting("1103.clearing.payout", credit=cny("9999.00"))])),
        ("unknown account", EntryRequest("bad:4", "manual", [
            Posting("1102.clearing.nowhere", debit=cny("1.00")),
            Posting("1001.bank.icbc", credit=cny("1.00"))])),
    ]
    for label, request in refusals:
        try:
            async with engine.begin() as conn:
                result = await ledger.post(conn, request)
            console.print(f"  {label}: [green]replayed[/green] entry {short_id(result.id)}, "
                          f"nothing new posted" if result.replayed else f"  {label}: posted?!")
        except ledger.LedgerError as exc:
            console.print(f"  {label}: [red]{type(exc).__name__}[/red]: {exc}")
    async with engine.connect() as conn:
        after = await ledger.verify(conn)
    same = (before.entries, before.postings) == (after.entries, after.postings)
    console.print(f"  entries before {before.entries}, after {after.entries}: "
                  + ("[green]books untouched[/green]" if same else "[red]CHANGED[/red]"))
