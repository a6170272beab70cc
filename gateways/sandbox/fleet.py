"""Start the sandbox banks together, in-process on loopback, for tests and the demo.

    async with SandboxFleet.start() as fleet:            # unionpay, restbank, smbank
        adapter = fleet.adapter("restbank")              # a ready BankGateway
        instruction = await adapter.create_payment(order)
        await fleet.bank("restbank").customer_pays(instruction)   # "click" Pay
        await fleet.drain()                              # all notifications delivered
        name, data = fleet.statement_file("restbank", day)

Each bank generates its own keys at start, keeps its own book, and is stopped (with
every adapter the fleet handed out) when the block ends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from gateways.adapters import BankAdapter
from gateways.adapters._http import DEFAULT_TIMEOUT, Duration
from gateways.sandbox.base import SandboxBank, SandboxSettings

__all__ = ["BANK_CODES", "SandboxFleet"]

BANK_CODES = ("unionpay", "restbank", "smbank")


def _bank_class(code: str) -> type[Any]:
    # Imported lazily: each bank module pulls in its own crypto and protocol code.
    if code == "restbank":
        from gateways.sandbox.restbank import RestBankSandbox
        return RestBankSandbox
    if code == "unionpay":
        from gateways.sandbox.unionpay import UnionPaySandbox
        return UnionPaySandbox
    if code == "smbank":
        from gateways.sandbox.smbank import SmBankSandbox
        return SmBankSandbox
    raise ValueError(f"no sandbox bank {code!r}; known: {', '.join(BANK_CODES)}")


class SandboxFleet:
    def __init__(self, banks: dict[str, SandboxBank], client_timeout: Duration) -> None:
        self.banks = banks
        self.client_timeout = client_timeout
        self._adapters: list[BankAdapter] = []
        self._day: dt.date | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        banks: Sequence[str] = BANK_CODES,
        *,
        settings: SandboxSettings | None = None,
        business_day: dt.date | None = None,
        client_timeout: Duration = DEFAULT_TIMEOUT,
    ) -> AsyncIterator[SandboxFleet]:
        """`settings` apply to every bank; `business_day` fixes the day the banks book
        on (default: today in UTC; change later with `set_business_day`)."""
        fleet = cls({}, client_timeout)
        fleet._day = business_day
        clock: Callable[[], dt.date] = fleet.business_day
        try:
            for code in banks:
                bank: SandboxBank = _bank_class(code)(settings=settings, business_day=clock)
                fleet.banks[code] = bank
                await bank.start()
            yield fleet
        finally:
            await fleet.stop()

    async def stop(self) -> None:
        for adapter in self._adapters:
            await adapter.aclose()
        self._adapters.clear()
        for bank in self.banks.values():
            await bank.stop()

    # ------------------------------------------------------------------ access

    def bank(self, code: str) -> SandboxBank:
        try:
            return self.banks[code]
        except KeyError:
            raise ValueError(f"the fleet has no bank {code!r}") from None

    def base_url(self, code: str) -> str:
        return self.bank(code).base_url

    def credentials(self, code: str) -> Any:
        """The merchant's credentials for `code` (what its adapter is built from)."""
        return self.bank(code).credentials()

    def adapter(self, code: str, *, timeout: Duration | None = None) -> BankAdapter:
        """A new adapter for `code`, closed with the fleet."""
        adapter = self.bank(code).adapter(timeout=timeout if timeout is not None else self.client_timeout)
        self._adapters.append(adapter)
        return adapter

    def adapters(self, *, timeout: Duration | None = None) -> dict[str, BankAdapter]:
        return {code: self.adapter(code, timeout=timeout) for code in self.banks}

    # ------------------------------------------------------------------ time, notifications

    def business_day(self) -> dt.date:
        return self._day or dt.datetime.now(dt.UTC).date()

    def set_business_day(self, day: dt.date | None) -> None:
        self._day = day

    async def drain(self) -> None:
        """Wait until every bank has delivered (or given up) every notification,
        including held (out-of-order) ones."""
        for bank in self.banks.values():
            await bank.drain_notifications()

    # ------------------------------------------------------------------ statements

    def statement_file(
        self, code: str, day: dt.date, *, format: str | None = None
    ) -> tuple[str, bytes]:
        """The bank's statement of the merchant's settlement account for `day`, in the
        bank's own format (unionpay MT940, restbank BAI2, smbank camt.053) or `format`:
        (file name, bytes)."""
        return self.bank(code).statement_file(day, format)

    def add_bank_charge(self, code: str, amount_minor: int, *, day: dt.date | None = None,
                        description: str = "ACCOUNT MAINTENANCE FEE") -> None:
        """A charge on the settlement account the merchant's books do not know."""
        self.bank(code).add_bank_charge(amount_minor, day=day, description=description)
