"""Which bank, and whether to call it now: the `BankDirectory` (bank code -> adapter), the
per-bank circuit breakers and time-outs, and bank health.

A breaker opens after `failure_threshold` consecutive failures (`BankUnavailable`, or a
time-out), refuses calls while open (`CircuitOpen`, a `BankUnavailable`: nothing reached the
bank, so the caller may fail over), lets one trial call through after `cool_down`
(half-open), and closes again on its success. A definite answer from the bank — even a
refusal — is a success for the breaker: the bank is up.

Each directory's breakers live in its process until `share_breakers(engine)`: then their
state is the database's (`gateways.breakers`), one breaker per bank for every process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

import structlog

from gateways.bank import BankGateway, BankRejected, BankUnavailable, OutcomeUnknown
from gateways.errors import UnknownBank

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from gateways.breakers import Admission, SharedBreakers

__all__ = ["BankDirectory", "BankHealth", "BreakerState", "CircuitBreaker", "CircuitOpen"]

T = TypeVar("T")
log = structlog.get_logger("gateways.routing")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CircuitOpen(BankUnavailable):
    """The bank's circuit breaker is open: the call was not made."""


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BankHealth:
    bank: str
    state: BreakerState
    consecutive_failures: int
    opened_at: dt.datetime | None
    last_error: str | None


class CircuitBreaker:
    def __init__(self, bank: str, *, failure_threshold: int = 5,
                 cool_down: dt.timedelta = dt.timedelta(seconds=30),
                 clock: Callable[[], dt.datetime] = _utcnow) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.bank = bank
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self.clock = clock
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at: dt.datetime | None = None
        self.last_error: str | None = None

    def allows(self) -> bool:
        """May a call go to the bank now? An open breaker past its cool-down turns
        half-open and lets calls through until one fails (open again) or succeeds."""
        if self.state is BreakerState.OPEN:
            assert self.opened_at is not None
            if self.clock() - self.opened_at < self.cool_down:
                return False
            self.state = BreakerState.HALF_OPEN
            log.info("circuit.half_open", bank=self.bank)
        return True

    def record_success(self) -> None:
        if self.state is not BreakerState.CLOSED:
            log.info("circuit.closed", bank=self.bank)
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = None

    def record_failure(self, error: str) -> None:
        self.consecutive_failures += 1
        self.last_error = error
        if self.state is BreakerState.HALF_OPEN or (
                self.state is BreakerState.CLOSED
                and self.consecutive_failures >= self.failure_threshold):
            self.state = BreakerState.OPEN
            self.opened_at = self.clock()
            log.warning("circuit.open", bank=self.bank, failures=self.consecutive_failures,
                        error=error)

    def health(self) -> BankHealth:
        return BankHealth(self.bank, self.state, self.consecutive_failures, self.opened_at,
                          self.last_error)


class BankDirectory:
    """The configured banks: code -> adapter, with a breaker and a time-out each.

    `notify_base_url`: the banks post their notifications to `{notify_base_url}/{code}`
    (the HTTP API routes that path to `gateways.handle_notification`).
    `payout_order`: the default failover order for payouts (default: all, as given).
    """

    def __init__(
        self,
        banks: Iterable[BankGateway],
        *,
        notify_base_url: str = "http://127.0.0.1:8000/v1/notifications",
        payout_order: Sequence[str] = (),
        timeout: dt.timedelta = dt.timedelta(seconds=10),
        timeouts: dict[str, dt.timedelta] | None = None,
        failure_threshold: int = 5,
        cool_down: dt.timedelta = dt.timedelta(seconds=30),
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._banks = {bank.code: bank for bank in banks}
        self.notify_base_url = notify_base_url.rstrip("/")
        self.payout_order = tuple(payout_order) or tuple(self._banks)
        for code in self.payout_order:
            self.get(code)
        self._timeouts = {code: (timeouts or {}).get(code, timeout) for code in self._banks}
        self._failure_threshold, self._cool_down, self._clock = failure_threshold, cool_down, clock
        #: the breakers' state in the database, for all processes (`share_breakers`)
        self.shared: SharedBreakers | None = None
        self._breakers = {
            code: CircuitBreaker(code, failure_threshold=failure_threshold,
                                 cool_down=cool_down, clock=clock)
            for code in self._banks}

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self._banks)

    def get(self, code: str) -> BankGateway:
        try:
            return self._banks[code]
        except KeyError:
            raise UnknownBank(code) from None

    def __contains__(self, code: object) -> bool:
        return code in self._banks

    def notify_url(self, code: str) -> str:
        return f"{self.notify_base_url}/{code}"

    def breaker(self, code: str) -> CircuitBreaker:
        self.get(code)
        return self._breakers[code]

    def health(self) -> list[BankHealth]:
        return [self._breakers[code].health() for code in self._banks]

    def share_breakers(self, engine: AsyncEngine, *,
                       window: dt.timedelta = dt.timedelta(seconds=60)) -> SharedBreakers:
        """Keep the breakers' state in the database (`bank_health`), shared with every
        process that does the same: a bank one process finds down is not called by any,
        and only one process probes it when the cool-down ends."""
        from gateways.breakers import SharedBreakers

        self.shared = SharedBreakers(engine, failure_threshold=self._failure_threshold,
                                     window=window, cool_down=self._cool_down,
                                     clock=self._clock)
        return self.shared

    async def call(self, code: str, operation: Callable[[BankGateway], Awaitable[T]], *,
                   moves_money: bool) -> T:
        """Call the bank through its breaker, within its time-out.

        A time-out becomes `OutcomeUnknown` when the call `moves_money` (the bank may have
        acted) and `BankUnavailable` for an inquiry (asking changes nothing)."""
        bank = self.get(code)
        breaker = self._breakers[code]
        admission: Admission | None = None
        if self.shared is not None:
            admission = await self.shared.admit(code, breaker)
        elif not breaker.allows():
            raise CircuitOpen(code, "circuit breaker open: not calling the bank")
        try:
            async with asyncio.timeout(self._timeouts[code].total_seconds()):
                result = await operation(bank)
        except TimeoutError:
            await self._failed(breaker, admission, "time-out")
            if moves_money:
                raise OutcomeUnknown(code, "no answer within the time-out") from None
            raise BankUnavailable(code, "no answer within the time-out") from None
        except (BankUnavailable, OutcomeUnknown) as exc:
            await self._failed(breaker, admission, type(exc).__name__)
            raise
        except BankRejected:
            await self._succeeded(breaker, admission)
            raise
        await self._succeeded(breaker, admission)
        return result

    async def _failed(self, breaker: CircuitBreaker, admission: Admission | None,
                      error: str) -> None:
        if self.shared is None or admission is None:
            breaker.record_failure(error)
        else:
            await self.shared.record_failure(admission, error, breaker)

    async def _succeeded(self, breaker: CircuitBreaker, admission: Admission | None) -> None:
        if self.shared is None or admission is None:
            breaker.record_success()
        else:
            await self.shared.record_success(admission, breaker)
