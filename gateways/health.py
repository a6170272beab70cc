"""Bank health: the circuit breakers' state, kept in `bank_health` so that another process
(`paycore payments health`, an operator's dashboard) sees what the workers see. A directory
whose breakers are shared (`BankDirectory.share_breakers`) keeps that table current call by
call; `save_bank_health` then writes only the certificates."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateways.certificates import save_bank_certificates
from gateways.routing import BankDirectory, BankHealth, BreakerState
from gateways.schema import bank_health
from gateways.store import utcnow

__all__ = ["bank_health_report", "load_bank_health", "save_bank_health"]


def bank_health_report(banks: BankDirectory) -> list[BankHealth]:
    """This process's view: each bank's breaker."""
    return banks.health()


async def save_bank_health(conn: AsyncConnection, banks: BankDirectory) -> None:
    """The breakers' state, and the certificates the banks depend on (warning in the
    logs about any that expires within 30 days: `gateways.certificates`)."""
    now = utcnow()
    await save_bank_certificates(conn, banks, now=now)
    if banks.shared is not None:
        return  # the breakers' state is the table's already, kept by every process
    for h in banks.health():
        values = {"state": h.state.value, "consecutive_failures": h.consecutive_failures,
                  "opened_at": h.opened_at, "last_error": h.last_error, "updated_at": now}
        done = await conn.execute(bank_health.update().where(bank_health.c.bank == h.bank)
                                  .values(**values))
        if done.rowcount == 0:
            await conn.execute(bank_health.insert().values(bank=h.bank, **values))


async def load_bank_health(conn: AsyncConnection) -> list[BankHealth]:
    rows = await conn.execute(sa.select(bank_health).order_by(bank_health.c.bank))
    return [BankHealth(r.bank, BreakerState(r.state), r.consecutive_failures, r.opened_at,
                       r.last_error) for r in rows]
