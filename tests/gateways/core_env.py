"""The payment core against the real sandbox banks: the banks on loopback, our
notification receiver on loopback (a bare ASGI app calling `handle_notification`), a
`BankDirectory` of real adapters, and a migrated database."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import gateways
import ledger
from gateways import BankDirectory, IntentRequest, NotificationReceiver, SupplierTerms
from gateways.sandbox import SandboxFleet, SandboxSettings
from gateways.sandbox.book import MovementKind
from gateways.sandbox.fleet import _bank_class
from gateways.sandbox.server import LoopbackServer

from .core_helpers import cny

FAST = SandboxSettings(hang_seconds=3.0, late_notify_seconds=0.2, slow_seconds=1.0,
                       retry_delays=(0.02, 0.05, 0.1), opening_balance_minor=100_000_000)
#: the adapters' own read time-out: shorter than the sandbox's hang, and long enough that
#: a loaded machine (two cores shared by everything) does not turn answers into time-outs
ADAPTER_TIMEOUT = 1.5


def available_banks() -> tuple[str, ...]:
    """The sandbox banks committed so far (the fleet grows bank by bank)."""
    found = []
    for code in ("restbank", "unionpay", "smbank"):
        try:
            _bank_class(code)
        except (ImportError, ValueError):
            continue
        found.append(code)
    return tuple(found)


@dataclass
class Env:
    engine: AsyncEngine
    fleet: SandboxFleet
    banks: BankDirectory
    clock_offset: list[dt.timedelta]

    def advance(self, delta: dt.timedelta) -> None:
        """Move the directory's clock (the circuit breakers' cool-down) forward."""
        self.clock_offset[0] += delta

    async def terms(self, supplier: str = "sup-001", rate: str = "0.03",
                    refund_commission: str = "proportional") -> None:
        async with self.engine.begin() as conn:
            await gateways.set_supplier_terms(conn, SupplierTerms(
                supplier, Decimal(rate), gateways.RefundCommission(refund_commission)))

    async def checkout(self, amount: str = "100.00", bank: str = "restbank",
                       order: str | None = None, supplier: str = "sup-001",
                       merchant: str = "m-1") -> gateways.Checkout:
        order = order or f"ord-{amount}-{bank}-{dt.datetime.now().timestamp()}"
        return await gateways.create_intent(self.engine, self.banks, IntentRequest(
            merchant_id=merchant, order_id=order, supplier_id=supplier, amount=cny(amount),
            bank=bank, description="two mugs"))

    async def pay(self, checkout: gateways.Checkout, *, decline: bool = False) -> None:
        assert checkout.instruction is not None
        result = await self.fleet.bank(checkout.attempt.bank).customer_pays(
            checkout.instruction, decline=decline)
        assert result.status_code == 200, result.text

    async def intent(self, intent_id: str) -> gateways.PaymentIntent:
        async with self.engine.connect() as conn:
            return await gateways.get_intent(conn, intent_id)

    async def rejections(self) -> list[str]:
        from gateways.schema import notification_rejections
        async with self.engine.connect() as conn:
            return list((await conn.execute(sa.select(notification_rejections.c.reason)
                                            .order_by(notification_rejections.c.id))).scalars())

    async def entries(self, kind: str) -> list[ledger.JournalEntry]:
        from ledger.schema import journal_entries  # test-only peek at the ledger's table
        async with self.engine.connect() as conn:
            ids = list((await conn.execute(sa.select(journal_entries.c.id).where(
                journal_entries.c.kind == kind))).scalars())
            return await ledger.load_entries(conn, ids) if ids else []

    async def assert_agrees_with_banks(self) -> None:
        """After the dust settles: each bank's clearing account equals what the bank's own
        book shows captured less refunded; payouts in flight equal what banks paid out;
        every entry balances and `verify` is clean."""
        for code in self.fleet.banks:
            book = self.fleet.bank(code).book
            captured = sum(m.amount_minor for m in book.by_kind(MovementKind.CAPTURE))
            refunded = sum(m.amount_minor for m in book.by_kind(MovementKind.REFUND))
            clearing = await _posted(self.engine, f"1102.clearing.{code}")
            assert clearing == captured - refunded, (code, clearing, captured, refunded)
        # payouts the banks made, less those that came back (退票)
        paid_out = sum(m.amount_minor for code in self.fleet.banks
                       for m in self.fleet.bank(code).book.by_kind(MovementKind.PAYOUT))
        paid_out -= sum(m.amount_minor for code in self.fleet.banks
                        for m in self.fleet.bank(code).book.by_kind(MovementKind.RETURN))
        assert -await _posted(self.engine, "1103.clearing.payout") == paid_out
        async with self.engine.connect() as conn:
            report = await ledger.verify(conn)
            assert report.ok, report.summary()
            assert (await ledger.trial_balance(conn)).balanced


async def _posted(engine: AsyncEngine, code: str) -> int:
    async with engine.connect() as conn:
        if await ledger.find_account(conn, code) is None:
            return 0
        return (await ledger.balance(conn, code)).posted_net


@contextlib.asynccontextmanager
async def checkout_env(engine: AsyncEngine, banks: Sequence[str] = ("restbank",), *,
                       receiver: bool = True, failure_threshold: int = 5,
                       payout_order: Sequence[str] = (),
                       adapter_timeout: float = ADAPTER_TIMEOUT) -> AsyncIterator[Env]:
    offset = [dt.timedelta(0)]

    def clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC) + offset[0]

    async with SandboxFleet.start(banks, settings=FAST,
                                  client_timeout=adapter_timeout) as fleet:
        adapters = [fleet.adapter(code, timeout=adapter_timeout) for code in banks]
        placeholder = BankDirectory(adapters)
        app = NotificationReceiver(engine, placeholder, prefix="/notify")
        server = LoopbackServer(app, name="receiver")
        # without a receiver, notifications go to a closed port (refused), for tests
        # that hand the captured notifications to handle_notification themselves
        base = (await server.start() if receiver else "http://127.0.0.1:9") + "/notify"
        try:
            directory = BankDirectory(adapters, notify_base_url=base, payout_order=payout_order,
                                      timeout=dt.timedelta(seconds=5),
                                      failure_threshold=failure_threshold,
                                      cool_down=dt.timedelta(seconds=30), clock=clock)
            app.banks = directory
            yield Env(engine, fleet, directory, offset)
        finally:
            await server.stop()
