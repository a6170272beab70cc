"""Circuit breakers shared by every process that calls the banks: the API's workers, the
job workers, a janitor run by hand. Their state is the `bank_health` row of each bank,
changed only by conditional UPDATEs, so processes never overwrite each other's view:

- closed: calls go through. A failure adds one to the failures of the current window
  (a failure after `window` has passed starts a new window at one); the failure that
  reaches `failure_threshold` turns the row `open` in the same statement — in every
  process at once, since they all read this row before calling.
- open: no process calls the bank until `cool_down` has passed since `opened_at`.
- half-open: after the cool-down, the first process to swap in its own `probe_token`
  (an UPDATE conditional on the row still being open, or on the previous probe's lease
  having lapsed) makes the one trial call; the others are refused meanwhile. The probe's
  success closes the breaker, its failure opens it again (both conditional on the token:
  a probe whose lease lapsed and was re-taken changes nothing).

The shared state is advice about the bank, not part of the books: when the database
cannot be read or written, the process falls back to its own in-memory breaker (and logs
it) rather than refusing to call banks it has no news of.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateways.routing import BreakerState, CircuitBreaker, CircuitOpen
from gateways.schema import bank_health

__all__ = ["Admission", "SharedBreakers"]

log = structlog.get_logger("gateways.breakers")

_READ = sa.select(bank_health).where(bank_health.c.bank == sa.bindparam("bank"))


@dataclass(frozen=True)
class Admission:
    """Leave to call a bank now: `probe` is the half-open token this process holds;
    `failures` the failures the row counted when read (a success resets them)."""
    bank: str
    probe: str | None
    failures: int
    #: the shared row could not be read: this process's own breaker decided
    local: bool = False


class SharedBreakers:
    def __init__(self, engine: AsyncEngine, *, failure_threshold: int = 5,
                 window: dt.timedelta = dt.timedelta(seconds=60),
                 cool_down: dt.timedelta = dt.timedelta(seconds=30),
                 probe_lease: dt.timedelta | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.engine = engine
        self.failure_threshold = failure_threshold
        self.window = window
        self.cool_down = cool_down
        #: how long a probe may take before another process may probe instead
        self.probe_lease = probe_lease or max(cool_down, dt.timedelta(seconds=30))
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def _now(self) -> dt.datetime:
        return self.clock()

    async def _ensure(self, bank: str) -> None:
        insert = (postgresql.insert(bank_health) if self.engine.dialect.name == "postgresql"
                  else sqlite.insert(bank_health))
        async with self.engine.begin() as conn:
            await conn.execute(insert.values(
                bank=bank, state=BreakerState.CLOSED.value, consecutive_failures=0,
                updated_at=self._now()).on_conflict_do_nothing(index_elements=["bank"]))

    async def admit(self, bank: str, local: CircuitBreaker) -> Admission:
        """Leave to call `bank`, or `CircuitOpen`. `local` mirrors what was read (this
        process's `BankDirectory.health()`), and decides alone if the database is away."""
        try:
            return await self._admit(bank, local)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.warning("circuit.shared_state_unavailable", bank=bank, error=repr(exc))
            if not local.allows():
                raise CircuitOpen(bank, "circuit breaker open: not calling the bank") from None
            return Admission(bank, None, local.consecutive_failures, local=True)

    async def _admit(self, bank: str, local: CircuitBreaker) -> Admission:
        now = self._now()
        async with self.engine.connect() as conn:
            if self.engine.dialect.name == "postgresql":
                # one read standing alone: no BEGIN and ROLLBACK round trips around it
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            row = (await conn.execute(_READ, {"bank": bank})).first()
        if row is None:
            await self._ensure(bank)
            _mirror(local, BreakerState.CLOSED, 0, None, None)
            return Admission(bank, None, 0)
        state = BreakerState(row.state)
        _mirror(local, state, row.consecutive_failures, row.opened_at, row.last_error)
        if state is BreakerState.CLOSED:
            return Admission(bank, None, row.consecutive_failures)
        if state is BreakerState.OPEN and row.opened_at is not None \
                and now - row.opened_at < self.cool_down:
            raise CircuitOpen(bank, "circuit breaker open: not calling the bank")
        if state is BreakerState.HALF_OPEN and row.probe_expires_at is not None \
                and row.probe_expires_at > now:
            raise CircuitOpen(bank, "circuit breaker half-open: another process is probing "
                                    "the bank")
        token = secrets.token_hex(16)
        h = bank_health.c
        async with self.engine.begin() as conn:
            taken = await conn.execute(bank_health.update().where(
                h.bank == bank,
                sa.or_(sa.and_(h.state == BreakerState.OPEN.value,
                               sa.or_(h.opened_at.is_(None),
                                      h.opened_at <= now - self.cool_down)),
                       sa.and_(h.state == BreakerState.HALF_OPEN.value,
                               sa.or_(h.probe_expires_at.is_(None),
                                      h.probe_expires_at <= now))))
                .values(state=BreakerState.HALF_OPEN.value, probe_token=token,
                        probe_expires_at=now + self.probe_lease, updated_at=now))
        if taken.rowcount != 1:
            raise CircuitOpen(bank, "circuit breaker half-open: another process is probing "
                                    "the bank")
        log.info("circuit.half_open", bank=bank, probe="this process")
        local.state = BreakerState.HALF_OPEN
        return Admission(bank, token, row.consecutive_failures)

    async def record_success(self, admission: Admission, local: CircuitBreaker) -> None:
        local.record_success()
        if admission.local or (admission.probe is None and admission.failures <= 0):
            return  # a closed breaker that counted no failures: nothing to write
        h = bank_health.c
        now = self._now()
        try:
            async with self.engine.begin() as conn:
                if admission.probe is not None:
                    done = await conn.execute(bank_health.update().where(
                        h.bank == admission.bank, h.probe_token == admission.probe).values(
                        state=BreakerState.CLOSED.value, consecutive_failures=0,
                        window_started_at=None, opened_at=None, probe_token=None,
                        probe_expires_at=None, updated_at=now))
                    if done.rowcount == 1:
                        log.info("circuit.closed", bank=admission.bank)
                elif admission.failures > 0:
                    # only a closed breaker's count; one opened meanwhile stays open
                    await conn.execute(bank_health.update().where(
                        h.bank == admission.bank, h.state == BreakerState.CLOSED.value,
                        h.consecutive_failures > 0).values(
                        consecutive_failures=0, window_started_at=None, updated_at=now))
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.warning("circuit.shared_state_unavailable", bank=admission.bank, error=repr(exc))

    async def record_failure(self, admission: Admission, error: str,
                             local: CircuitBreaker) -> None:
        local.record_failure(error)
        if admission.local:
            return
        h = bank_health.c
        now = self._now()
        try:
            async with self.engine.begin() as conn:
                if admission.probe is not None:
                    done = await conn.execute(bank_health.update().where(
                        h.bank == admission.bank, h.probe_token == admission.probe).values(
                        state=BreakerState.OPEN.value, opened_at=now, probe_token=None,
                        probe_expires_at=None, last_error=error[:500],
                        consecutive_failures=h.consecutive_failures + 1, updated_at=now))
                    if done.rowcount == 1:
                        log.warning("circuit.open", bank=admission.bank, error=error,
                                    after="the half-open probe failed")
                    return
                stale = sa.or_(h.window_started_at.is_(None),
                               h.window_started_at <= now - self.window)
                failures = sa.case((stale, 1), else_=h.consecutive_failures + 1)
                row = (await conn.execute(bank_health.update().where(
                    h.bank == admission.bank, h.state == BreakerState.CLOSED.value).values(
                    consecutive_failures=failures,
                    window_started_at=sa.case((stale, now), else_=h.window_started_at),
                    state=sa.case((failures >= self.failure_threshold,
                                   BreakerState.OPEN.value), else_=BreakerState.CLOSED.value),
                    opened_at=sa.case((failures >= self.failure_threshold, now),
                                      else_=h.opened_at),
                    last_error=error[:500], updated_at=now)
                    .returning(h.state, h.consecutive_failures))).first()
            if row is not None and row.state == BreakerState.OPEN.value:
                log.warning("circuit.open", bank=admission.bank, failures=row.consecutive_failures,
                            error=error)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.warning("circuit.shared_state_unavailable", bank=admission.bank, error=repr(exc))


def _mirror(local: CircuitBreaker, state: BreakerState, failures: int,
            opened_at: dt.datetime | None, last_error: str | None) -> None:
    """This process's breaker shows the shared state last read (`BankDirectory.health`,
    /v1/banks/health), and starts from it should the database become unreachable."""
    local.state = state
    local.consecutive_failures = failures
    local.opened_at = opened_at
    local.last_error = last_error
