"""Transport failures mapped to what the payment core may do next (gateways/bank.py):

- nothing reached the bank (connection refused, connect/pool time-out) or the bank
  answered 5xx before accepting: `BankUnavailable` (safe to retry or fail over);
- the request was sent and then the answer was lost (read/write time-out, connection
  dropped mid-answer), or the bank's gateway said 504: `OutcomeUnknown`;
- an answer we cannot trust (bad signature, malformed) to a request that may have been
  taken: `OutcomeUnknown` as well, since only an inquiry can tell.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Self, SupportsFloat

import httpx
import structlog

from gateways.bank import BankUnavailable, OutcomeUnknown

__all__ = ["DEFAULT_TIMEOUT", "Duration", "HttpAdapter", "as_timedelta", "make_client", "send"]

log = structlog.get_logger("gateways.adapters")

#: a duration: a `timedelta`, or a number of seconds (as asyncio and httpx take them);
#: money never comes near these, but the package keeps the binary-fraction type out of
#: its signatures all the same (tests/test_no_float_near_money.py)
Duration = dt.timedelta | SupportsFloat

DEFAULT_TIMEOUT: Duration = dt.timedelta(seconds=10)


def as_timedelta(value: Duration) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        return value
    return dt.timedelta(seconds=value.__float__())


def make_client(
    timeout: Duration, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    seconds = as_timedelta(timeout).total_seconds()
    return httpx.AsyncClient(
        timeout=httpx.Timeout(seconds, connect=min(seconds, 5.0)),
        transport=transport,
        trust_env=False,
        follow_redirects=False,
    )


async def send(
    client: httpx.AsyncClient,
    bank: str,
    method: str,
    url: str,
    *,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One HTTP exchange; raises `BankUnavailable` / `OutcomeUnknown` per the contract.
    A 5xx answer raises too; any other status is returned for the adapter to read."""
    try:
        response = await client.request(method, url, content=content, headers=headers)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        log.warning("bank unreachable", bank=bank, method=method, error=type(exc).__name__)
        raise BankUnavailable(bank, f"{method} did not reach the bank ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        # Read/write time-out, connection reset or closed mid-answer: the bank may have it.
        log.warning("bank answer lost", bank=bank, method=method, error=type(exc).__name__)
        raise OutcomeUnknown(
            bank, f"{method} was sent but no answer came back ({type(exc).__name__})"
        ) from exc
    if response.status_code == 504:
        raise OutcomeUnknown(bank, "the bank's gateway timed out (504) after taking the request")
    if response.status_code >= 500:
        log.warning("bank refused with 5xx", bank=bank, status=response.status_code)
        raise BankUnavailable(bank, f"the bank answered {response.status_code} before accepting")
    return response


class HttpAdapter:
    """What every adapter shares: its bank's code and the one HTTP client it closes."""

    _code: str
    _client: httpx.AsyncClient

    @property
    def code(self) -> str:
        return self._code

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

