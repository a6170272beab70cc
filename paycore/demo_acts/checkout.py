"""Act 2: checkout — customers pay through the three sandbox banks (UnionPay-style signed
forms, a JSON REST bank, an SM2/SM3 XML bank), over real HTTP on loopback; the banks'
notifications arrive at our receiver over HTTP; a lost notification is found by the status
inquiry, a duplicate is applied once, a refund times out after the bank debited and is
settled by inquiry, and a supplier is paid out (failing over from a bank answering 503).
It ends with the ledger's clearing, payable and commission beside the banks' own books.

Leaves for later acts: `ctx.shared["sandbox_fleet"]` (the running `SandboxFleet`),
`ctx.shared["banks"]` (a `gateways.BankDirectory`), `ctx.shared["suppliers"]` (ids) and
`ctx.shared["checkout_runtime"]` (stops the banks and the receiver: `aclose()`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from moneyed import Money
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

import gateways
import ledger
from gateways import BankDirectory, IntentRequest, SupplierPayoutRequest, SupplierTerms
from gateways.sandbox import Fault, SandboxFleet, SandboxSettings
from gateways.sandbox.book import MovementKind
from gateways.sandbox.server import LoopbackServer
from paycore.demo_acts.context import DemoContext
from paycore.payout_controls import install_account_keys

BANKS = ("unionpay", "restbank", "smbank")
SUPPLIERS = {  # supplier: (commission rate, refund commission policy)
    "sup-001": (Decimal("0.03"), gateways.RefundCommission.PROPORTIONAL),
    "sup-002": (Decimal("0.025"), gateways.RefundCommission.PROPORTIONAL),
    "sup-003": (Decimal("0.05"), gateways.RefundCommission.KEEP),
}
ORDERS = [  # order, bank, supplier, amount, fault, what happens
    ("co-2001", "unionpay", "sup-001", "268.00", None, ""),
    ("co-2002", "restbank", "sup-002", "1399.90", None, ""),
    ("co-2003", "smbank", "sup-003", "45.50", None, ""),
    ("co-2004", "unionpay", "sup-002", "820.00", Fault.DUPLICATE_NOTIFY,
     "notified twice: applied once"),
    ("co-2005", "restbank", "sup-001", "99.99", Fault.NO_NOTIFY,
     "no notification: the status inquiry found it paid"),
    ("co-2006", "smbank", "sup-001", "3120.00", None, "refunded in part (refund timed out)"),
    ("co-2007", "unionpay", "sup-003", "15.80", Fault.BAD_SIGNATURE,
     "first notification forged: refused; the signed retry applied"),
    ("co-2008", "restbank", "sup-003", "560.00", None, ""),
    ("co-2009", "smbank", "sup-002", "77.70", Fault.OUT_OF_ORDER_NOTIFY,
     "notification out of order"),
    ("co-2010", "unionpay", "sup-001", "1288.88", None, ""),
    ("co-2011", "restbank", "sup-002", "430.00", None, ""),
    ("co-2012", "smbank", "sup-003", "999.00", None, ""),
]
REFUND_ORDER, REFUND_AMOUNT = "co-2006", "1200.00"
PAYOUT_SUPPLIER, PAYOUT_AMOUNT = "sup-002", "2000.00"
#: a second, smaller payout that the beneficiary's bank sends back (退票)
RETURNED_AMOUNT, RETURN_REASON = "300.00", "name on the account does not match (户名不符)"
#: each supplier's bank account in the register (entered at onboarding, verified by a
#: second person): payouts go nowhere else
ACCOUNTS = {"sup-001": ("Hangzhou Silk Co.", "6222020200112233445", "ICBC Hangzhou"),
            "sup-002": ("Ningbo Tools Ltd.", "6222021001122334455", "ICBC Ningbo"),
            "sup-003": ("Yiwu Crafts Co.", "6228480012345678901", "ABC Yiwu")}
#: the demo's payout rules: a day of cooling-off after a change; above 10,000.00 CNY (and
#: any manual payout) a second person approves
CONTROLS = gateways.PayoutControls(cooling_off=dt.timedelta(hours=24),
                                   approval_above={"CNY": 1_000_000})
MERCHANT = "marketplace"
SETTINGS = SandboxSettings(hang_seconds=1.0, late_notify_seconds=0.2,
                           retry_delays=(0.05, 0.1, 0.2, 0.4))
ADAPTER_TIMEOUT = 0.5


def cny(value: str | Decimal) -> Money:
    return Money(Decimal(value), "CNY")


def _amt(minor: int) -> str:
    return f"{Decimal(minor) / 100:,.2f}"


@dataclass
class CheckoutRuntime:
    """The banks and the receiver this act started, kept running for later acts."""

    stack: contextlib.AsyncExitStack
    fleet: SandboxFleet
    banks: BankDirectory
    receiver_url: str
    notes: list[str] = field(default_factory=list)

    async def aclose(self) -> None:
        await self.stack.aclose()


async def _receiver(stack: contextlib.AsyncExitStack,
                    engine: AsyncEngine) -> tuple[str, str, Callable[[BankDirectory], None]]:
    """Serve bank notifications on loopback: the HTTP API's own routes if the API has
    payment routes (their path prefix is what the module exempts from idempotency), else
    a bare ASGI receiver calling `gateways.handle_notification`. Returns the notify base
    URL, what serves it, and how to hand it the directory once that exists (the directory
    carries the URL, so the server has to listen first)."""
    prefix = None
    with contextlib.suppress(ImportError):
        payments = importlib.import_module("paycore.api.payments")
        prefix = next(iter(getattr(payments, "IDEMPOTENCY_EXEMPT", ())), None)
    if prefix:
        from paycore.api.app import create_app
        api = create_app(engine)
        server = LoopbackServer(api, name="paycore-api")
        base = await server.start()
        stack.push_async_callback(server.stop)

        def give_api(banks: BankDirectory) -> None:
            api.state.banks = banks
        return f"{base}{prefix.rstrip('/')}", "the paycore HTTP API", give_api
    receiver = gateways.NotificationReceiver(engine, BankDirectory([]), prefix="/notify")
    server = LoopbackServer(receiver, name="receiver")
    base = await server.start()
    stack.push_async_callback(server.stop)

    def give_receiver(banks: BankDirectory) -> None:
        receiver.banks = banks
    return f"{base}/notify", "a bare ASGI receiver (gateways.NotificationReceiver)", give_receiver


async def start_banks(engine: AsyncEngine) -> CheckoutRuntime:
    stack = contextlib.AsyncExitStack()
    try:
        fleet = await stack.enter_async_context(
            SandboxFleet.start(BANKS, settings=SETTINGS, client_timeout=ADAPTER_TIMEOUT))
        notify_base, served_by, hand_over = await _receiver(stack, engine)
        banks = BankDirectory([fleet.adapter(code, timeout=ADAPTER_TIMEOUT) for code in BANKS],
                              notify_base_url=notify_base,
                              payout_order=("restbank", "unionpay", "smbank"),
                              timeout=dt.timedelta(seconds=5))
        hand_over(banks)
    except BaseException:
        await stack.aclose()
        raise
    return CheckoutRuntime(stack, fleet, banks, notify_base, [served_by])


async def run(ctx: DemoContext) -> None:
    engine, console = ctx.engine, ctx.console

    ctx.step("Checkout: three sandbox banks open on loopback")
    rt = await start_banks(engine)
    ctx.shared["checkout_runtime"] = rt
    ctx.shared["sandbox_fleet"] = rt.fleet
    ctx.shared["banks"] = rt.banks
    ctx.shared["suppliers"] = list(SUPPLIERS)
    fleet, banks = rt.fleet, rt.banks
    for code in BANKS:
        console.print(f"  {code:<9} {fleet.base_url(code)}  merchant {banks.get(code).merchant_id}")
    console.print(f"  notifications to {rt.receiver_url}/<bank>, served by {rt.notes[0]}")
    async with engine.begin() as conn:
        for supplier, (rate, policy) in SUPPLIERS.items():
            await gateways.set_supplier_terms(conn, SupplierTerms(supplier, rate, policy))
    console.print("  commission: " + ", ".join(
        f"{s} {r * 100:.1f} % (refunds: {p.value})" for s, (r, p) in SUPPLIERS.items()))
    ctx.shared["payout_accounts"] = await _register_accounts(ctx)

    ctx.step("A dozen customers pay, each at the bank they chose")
    intents: dict[str, gateways.Checkout] = {}
    for order, bank, supplier, amount, fault, _ in ORDERS:
        co = await gateways.create_intent(engine, banks, IntentRequest(
            merchant_id=MERCHANT, order_id=order, supplier_id=supplier, amount=cny(amount),
            bank=bank, description=f"Order {order}"))
        if fault is not None:
            fleet.bank(bank).faults.set(co.attempt.id, fault)
        assert co.instruction is not None
        paid = await fleet.bank(bank).customer_pays(co.instruction)
        if not paid.paid:
            console.print(f"  [red]{order}: the pay page said {paid.status_code}[/red]")
        intents[order] = co
    await fleet.drain()

    # the lost notification: half an hour on, at the order's expiry, the janitor asks
    janitor = await gateways.run_janitor(engine, banks,
                                         now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=32))
    console.print(f"  {janitor.summary()} (its pass half an hour later)")
    await _orders_table(ctx, intents)

    ctx.step("A partial refund; the bank's answer times out after it debited")
    refund_intent = intents[REFUND_ORDER].intent
    fleet.bank(intents[REFUND_ORDER].attempt.bank).faults.set(
        "rfco2006a", Fault.TIMEOUT_AFTER_DEBIT, Fault.NO_NOTIFY)
    refund = await gateways.refund_payment(engine, banks, refund_intent.id, cny(REFUND_AMOUNT),
                                           reason="two of five items returned",
                                           refund_id="rfco2006a", merchant_id=MERCHANT)
    console.print(f"  refund {refund.id} of {REFUND_AMOUNT}: [yellow]{refund.status.value}[/yellow]"
                  " — the bank may have paid it; nothing is booked, nothing is guessed")
    report = await gateways.run_janitor(engine, banks)
    async with engine.connect() as conn:
        refund = await gateways.get_refund(conn, refund.id)
        intent = await gateways.get_intent(conn, refund_intent.id)
    console.print(f"  the status inquiry: refund {refund.status.value} (bank refund id "
                  f"{refund.bank_txn_id}); commission given back {_amt(refund.commission_minor or 0)}"
                  f" — {report.summary()}")
    try:
        await gateways.refund_payment(engine, banks, refund_intent.id, cny("2000.00"))
    except gateways.RefundExceedsCaptured as exc:
        console.print(f"  a second refund of 2,000.00: [red]{type(exc).__name__}[/red]: {exc}")
    console.print(f"  refundable left on {REFUND_ORDER}: {intent.refundable.amount:,} CNY")

    ctx.step("A supplier is paid out; the first bank answers 503 and the payout fails over")
    await _unverified_account_refused(ctx)
    async with engine.begin() as conn:
        payable = await ledger.balance(conn, f"2202.payable.{PAYOUT_SUPPLIER}")
        payout = await gateways.request_supplier_payout(conn, SupplierPayoutRequest(
            payout_id=f"po-{ctx.day:%Y%m%d}-{PAYOUT_SUPPLIER}", supplier_id=PAYOUT_SUPPLIER,
            account_id=ctx.shared["payout_accounts"][PAYOUT_SUPPLIER],
            amount=cny(PAYOUT_AMOUNT), requested_by="user:li.wei", manual=True,
            description=f"Settlement to {PAYOUT_SUPPLIER}"), CONTROLS)
    console.print(f"  {PAYOUT_SUPPLIER} is owed {payable.available.amount:,}; li.wei asks for "
                  f"payout {payout.id} of {PAYOUT_AMOUNT} to its verified account "
                  f"{payout.beneficiary.account_number}: reserved (a ledger hold), "
                  f"[yellow]{payout.status.value}[/yellow] — no bank sees it yet")
    try:
        async with engine.begin() as conn:
            await gateways.approve_payout(conn, payout.id, actor="user:li.wei", controls=CONTROLS)
    except gateways.FourEyesViolation as exc:
        console.print(f"  li.wei approving it himself: [red]{type(exc).__name__}[/red]: {exc}")
    async with engine.begin() as conn:
        payout = await gateways.approve_payout(conn, payout.id, actor="user:chen.jing",
                                               controls=CONTROLS)
    console.print(f"  chen.jing (a second person) approves it: {payout.status.value}")
    fleet.bank("restbank").faults.set(payout.id, Fault.SERVER_ERROR, server_errors=1)
    [payout] = await gateways.submit_payouts(engine, banks, payout_ids=[payout.id])
    await fleet.drain()
    await gateways.run_janitor(engine, banks)
    async with engine.connect() as conn:
        payout = await gateways.get_payout(conn, payout.id)
    console.print(f"  restbank answered 503 (nothing reached it) → sent to {payout.bank}: "
                  f"{payout.status.value}, hold posted (external_ref {payout.id})")

    await _returned_payout(ctx, rt)

    ctx.step("The books beside the banks' own books")
    await _books_table(ctx, rt)


async def _returned_payout(ctx: DemoContext, rt: CheckoutRuntime) -> None:
    """A paid payout comes back from the beneficiary's bank: booked back, once."""
    ctx.step("A paid payout comes back (退票): booked back to the supplier, once, for review")
    engine, banks, fleet = ctx.engine, rt.banks, rt.fleet
    async with engine.begin() as conn:
        payout = await gateways.request_supplier_payout(conn, SupplierPayoutRequest(
            payout_id=f"po-{ctx.day:%Y%m%d}-{PAYOUT_SUPPLIER}-2", supplier_id=PAYOUT_SUPPLIER,
            account_id=ctx.shared["payout_accounts"][PAYOUT_SUPPLIER],
            amount=cny(RETURNED_AMOUNT), requested_by="system:settlement", manual=False,
            description=f"Balance to {PAYOUT_SUPPLIER}"), CONTROLS)
    [payout] = await gateways.submit_payouts(engine, banks, payout_ids=[payout.id])
    await fleet.drain()
    async with engine.connect() as conn:
        payout = await gateways.get_payout(conn, payout.id)
    assert payout.bank is not None
    ctx.console.print(f"  payout {payout.id} of {RETURNED_AMOUNT} paid by {payout.bank}: "
                      f"{payout.status.value}")
    bank = fleet.bank(payout.bank)
    bank.faults.set(payout.id, Fault.DUPLICATE_NOTIFY)  # the bank tells us twice
    bank.return_payout(payout.id, RETURN_REASON)
    await fleet.drain()
    async with engine.connect() as conn:
        payout = await gateways.get_payout(conn, payout.id)
        [item] = [r for r in await gateways.list_payout_reviews(conn)
                  if r.payout_id == payout.id]
        payable = await ledger.balance(conn, f"2202.payable.{PAYOUT_SUPPLIER}")
    ctx.console.print(f"  {payout.bank} notifies it returned ({RETURN_REASON}), twice: payout "
                      f"[yellow]{payout.status.value}[/yellow]; booked once as payout.return "
                      f"(Dr 1103.clearing.payout, Cr 2202.payable.{PAYOUT_SUPPLIER}), the "
                      f"supplier is owed {payable.available.amount:,} again")
    ctx.console.print(f"  review item {item.id} for a person: {item.detail}")


async def _orders_table(ctx: DemoContext, intents: dict[str, gateways.Checkout]) -> None:
    table = Table(title="Orders")
    for col in ("order", "bank", "supplier", "amount", "status", "commission", "what happened"):
        table.add_column(col, justify="right" if col in ("amount", "commission") else "left")
    notes = {o: n for o, _, _, _, _, n in ORDERS}
    async with ctx.engine.connect() as conn:
        for order, co in intents.items():
            intent = await gateways.get_intent(conn, co.intent.id)
            style = "green" if intent.status.paid else "red"
            table.add_row(order, co.attempt.bank, intent.supplier_id, _amt(intent.amount_minor),
                          f"[{style}]{intent.status.value}[/{style}]",
                          _amt(intent.commission_minor), notes[order])
        rejected = Counter(r.reason for r in await gateways.list_rejections(conn, limit=1000))
    ctx.console.print(table)
    ctx.console.print("  notifications that changed nothing (logged, secrets redacted): " + (
        ", ".join(f"{reason} x {n}" for reason, n in sorted(rejected.items())) or "none"))


async def _books_table(ctx: DemoContext, rt: CheckoutRuntime) -> None:
    engine, fleet = ctx.engine, rt.fleet
    table = Table(title="Clearing per bank: the ledger and the bank agree")
    for col in ("bank", "bank: captured", "bank: refunded", "bank: paid out", "bank: fees",
                "ledger 1102.clearing", "agree"):
        table.add_column(col, justify="left" if col in ("bank", "agree") else "right")
    async with engine.connect() as conn:
        ours = Counter[str]()
        for p in await gateways.list_payouts(conn, status=gateways.PayoutState.SUCCEEDED,
                                             limit=10_000):
            ours[p.bank or ""] += p.amount_minor
        all_ok = True
        for code in BANKS:
            book = fleet.bank(code).book
            captured = sum(m.amount_minor for m in book.by_kind(MovementKind.CAPTURE))
            refunded = sum(m.amount_minor for m in book.by_kind(MovementKind.REFUND))
            paid_out = (sum(m.amount_minor for m in book.by_kind(MovementKind.PAYOUT))
                        - sum(m.amount_minor for m in book.by_kind(MovementKind.RETURN)))
            fees = sum(m.fee_minor for m in book.by_kind(MovementKind.CAPTURE))
            clearing = (await ledger.balance(conn, f"1102.clearing.{code}")).posted_net
            ok = clearing == captured - refunded and paid_out == (ours.get(code) or 0)
            all_ok &= ok
            table.add_row(code, _amt(captured), _amt(refunded), _amt(paid_out), _amt(fees),
                          _amt(clearing), "[green]yes[/green]" if ok else "[red]NO[/red]")
        ctx.console.print(table)
        ctx.console.print("  clearing = captured - refunded at each bank; payouts the banks "
                          "made (less those returned) = payouts we posted (less returns: a "
                          "returned payout is no longer succeeded); the banks' fees are booked when "
                          "reconciliation proves them from the statement")
        sums = Table(title="Suppliers and commission (ledger)")
        for col in ("account", "balance"):
            sums.add_column(col, justify="left" if col == "account" else "right")
        for code in [*(f"2202.payable.{s}" for s in SUPPLIERS), "6001.income.commission",
                     "1103.clearing.payout"]:
            bal = await ledger.balance(conn, code)
            sums.add_row(code, f"{bal.posted.amount:,}")
        ctx.console.print(sums)
        verify = await ledger.verify(conn)
    ctx.console.print(("  books and banks agree; " if all_ok else "  [red]MISMATCH[/red]; ")
                      + verify.summary())


async def _register_accounts(ctx: DemoContext) -> dict[str, str]:
    """Each supplier's account, entered at onboarding three days ago and verified by a
    second person (past the cooling-off); numbers encrypted under the deployment's key
    ring, or a key made for this demo run."""
    try:
        gateways.current_account_keys()
    except gateways.AccountKeysMissing:
        if not install_account_keys():
            gateways.use_account_keys(gateways.AccountKeys([("demo", os.urandom(32))]))
    onboarded = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    found: dict[str, str] = {}
    async with ctx.engine.begin() as conn:
        for supplier, (holder, number, bank) in ACCOUNTS.items():
            known = [a for a in await gateways.list_accounts(conn, supplier)
                     if a.status is gateways.AccountState.VERIFIED]
            if known:
                found[supplier] = known[0].id
                continue
            account = await gateways.add_account(conn, supplier, holder_name=holder,
                                                 account_number=number, bank_name=bank,
                                                 actor="user:onboarding", now=onboarded)
            await gateways.verify_account(conn, account.id, actor="user:compliance",
                                          now=onboarded)
            found[supplier] = account.id
    ctx.console.print("  suppliers' bank accounts (encrypted at rest, verified by a second "
                      "person): " + ", ".join(f"{s} ***{n[-4:]}" for s, (_, n, _) in
                                              ACCOUNTS.items()))
    return found


async def _unverified_account_refused(ctx: DemoContext) -> None:
    """Someone enters a new account for the supplier and asks to pay it at once: refused."""
    async with ctx.engine.begin() as conn:
        fresh = await gateways.add_account(
            conn, PAYOUT_SUPPLIER, holder_name="Ningbo Tools Ltd.",
            account_number="6217000099990001", bank_name="CCB Ningbo", actor="user:li.wei")
    try:
        async with ctx.engine.begin() as conn:
            await gateways.request_supplier_payout(conn, SupplierPayoutRequest(
                payout_id=f"po-{ctx.day:%Y%m%d}-{PAYOUT_SUPPLIER}-new",
                supplier_id=PAYOUT_SUPPLIER, account_id=fresh.id, amount=cny("500.00"),
                requested_by="user:li.wei", manual=True), CONTROLS)
    except gateways.AccountNotUsable as exc:
        ctx.console.print(f"  a payout to a just-entered account {fresh.masked_number}: "
                          f"[red]refused[/red] ({exc}); books untouched")
