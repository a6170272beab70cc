"""A deadlock injected once into a function a unit of work calls: PostgreSQL's own
deadlock cannot be produced on demand, and what is under test is that the unit is run
again whole (ledger.transact, on the SQLSTATE ledger.is_retryable reads)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import OperationalError


class _Deadlock(Exception):
    sqlstate = "40P01"  # deadlock_detected


def deadlocking_once(real: Callable[..., Awaitable[Any]]
                     ) -> tuple[Callable[..., Awaitable[Any]], list[int]]:
    """(a stand-in for `real` whose first call raises a deadlock as asyncpg's would reach
    SQLAlchemy, the list of its calls)."""
    calls: list[int] = []

    async def stand_in(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("UPDATE ...", {}, _Deadlock("deadlock detected"))
        return await real(*args, **kwargs)

    return stand_in, calls
