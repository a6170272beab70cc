"""Transport failures mapped to what the payment core may do next (gateways/bank.py), in
one place. The rule: only what *proves* the request never arrived may fail over.

- `BankUnavailable` (safe to retry or fail over): no connection was ever made, so no byte
  of the request left (connection refused, the name did not resolve, connect or pool
  time-out: httpx's `ConnectError`, `ConnectTimeout`, `PoolTimeout`); or the bank
  answered with its own documented "not processed" code, which each adapter recognises
  (`not_processed=` below; e.g. the REST bank's 503 `not_processed`, UnionPay's signed
  respCode 02/06, the SM bank's signed ResultCode 9001);
- `OutcomeUnknown` (the record goes to `unknown`, only an inquiry settles it): everything
  else that is not a readable answer: read/write time-outs, a connection reset or closed
  after sending, and **every 5xx without that code: 500, 502, 503 and 504 alike**. A 500
  or 502 can come from a gateway after the bank booked the request; a 503 can be a load
  balancer that never passed it on, or the bank failing after it booked: nothing in a
  bare 503 proves which, so it is not taken as proof;
- an answer we cannot trust (bad signature, malformed) to a request that may have been
  taken: `OutcomeUnknown` as well, since only an inquiry can tell.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Self, SupportsFloat

import httpx
import structlog

from gateways.bank import BankUnavailable, OutcomeUnknown

__all__ = [
    "DEFAULT_TIMEOUT",
    "NEVER_SENT",
    "Duration",
    "HttpAdapter",
    "as_timedelta",
    "make_client",
    "send",
]

log = structlog.get_logger("gateways.adapters")

#: a duration: a `timedelta`, or a number of seconds (as asyncio and httpx take them);
#: money never comes near these, but the package keeps the binary-fraction type out of
#: its signatures all the same (tests/test_no_float_near_money.py)
Duration = dt.timedelta | SupportsFloat

DEFAULT_TIMEOUT: Duration = dt.timedelta(seconds=10)

#: httpx's errors raised before any byte of the request was written: no connection was
#: made (refused, DNS failure, TLS handshake failed, connect time-out) or none was free
NEVER_SENT: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


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
    not_processed: Callable[[httpx.Response], bool] | None = None,
) -> httpx.Response:
    """One HTTP exchange; raises `BankUnavailable` / `OutcomeUnknown` per the rule above.
    A 5xx answer raises too (`BankUnavailable` only when `not_processed(response)`, the
    bank's documented "not processed" answer); any other status is returned for the
    adapter to read."""
    try:
        response = await client.request(method, url, content=content, headers=headers)
    except NEVER_SENT as exc:
        log.warning("bank unreachable", bank=bank, method=method, error=type(exc).__name__)
        raise BankUnavailable(bank, f"{method} did not reach the bank ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        # Read/write time-out, connection reset or closed mid-answer: the bank may have it.
        log.warning("bank answer lost", bank=bank, method=method, error=type(exc).__name__)
        raise OutcomeUnknown(
            bank, f"{method} was sent but no answer came back ({type(exc).__name__})"
        ) from exc
    if response.status_code >= 500:
        if not_processed is not None and not_processed(response):
            log.warning("bank did not process", bank=bank, status=response.status_code)
            raise BankUnavailable(bank, f"the bank answered {response.status_code} with its "
                                  "documented 'not processed' code")
        log.warning("bank answered 5xx", bank=bank, status=response.status_code)
        raise OutcomeUnknown(bank, f"the bank answered {response.status_code}: it may have "
                             "taken the request first")
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

