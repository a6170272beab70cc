"""The HTTP API's settings, from the environment (beside `paycore.settings.Settings`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from paycore.settings import Settings


@dataclass(frozen=True)
class ApiSettings:
    #: where `paycore serve` listens; loopback unless told otherwise
    host: str = "127.0.0.1"
    port: int = 8000
    #: the URL banks and browsers reach this API at (notification and return URLs)
    public_url: str = "http://127.0.0.1:8000"
    #: problem `type` URIs are this base plus the error's code (RFC 9457 §3.1.1)
    problem_base_uri: str = "https://paycore.example/problems/"
    #: a claimed Idempotency-Key whose request has not finished after this long is taken
    #: to belong to a crashed server and may be claimed again
    idempotency_lock_seconds: int = 300
    #: largest body any route takes (a route may set a smaller `max_body_size`); checked
    #: against Content-Length before reading, and while reading a body sent without one
    max_body_bytes: int = 8 * 1024 * 1024
    #: bank notifications come without an API key: at most this many per client address
    #: per window may fail the bank's verification (forged, stale, replayed, malformed),
    #: counted across every worker process; past it every notification from the address
    #: is answered 429 with Retry-After until the window ends (a bank sends it again
    #: later). Verified notifications are not counted: a bank's own rate is never limited.
    notification_rate_limit: int = 1200
    notification_rate_window_seconds: int = 60
    #: account-code prefixes a `ledger:write` key may post to through POST
    #: /v1/ledger/entries besides the internal services' own range (codes starting with
    #: 9, which no domain uses); every other account is a domain's (supplier payables,
    #: loans, clearing...) and refused unless listed here. PAYCORE_LEDGER_API_ACCOUNTS,
    #: comma-separated, e.g. "1102.clearing.,9"; empty by default
    ledger_accounts: tuple[str, ...] = ()
    #: how long a worker process trusts an API key it has verified before it reads the
    #: key's row again (PAYCORE_API_KEY_CACHE_SECONDS; 0: read it on every request). A key
    #: revoked by another process (`paycore apikeys revoke`) is refused by every process
    #: within this many seconds; one revoked through `revoke_api_key` in this process, at
    #: once
    key_cache_seconds: int = 5
    log_format: str = "auto"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, base: Settings | None = None) -> ApiSettings:
        base = base or Settings.from_env()
        env = os.environ
        host = env.get("PAYCORE_API_HOST", cls.host)
        port = int(env.get("PAYCORE_API_PORT", str(cls.port)))
        return cls(
            host=host,
            port=port,
            public_url=env.get("PAYCORE_API_PUBLIC_URL", f"http://{host}:{port}").rstrip("/"),
            problem_base_uri=env.get("PAYCORE_API_PROBLEM_BASE_URI", cls.problem_base_uri),
            idempotency_lock_seconds=int(env.get("PAYCORE_API_IDEMPOTENCY_LOCK_SECONDS",
                                                 str(cls.idempotency_lock_seconds))),
            max_body_bytes=int(env.get("PAYCORE_API_MAX_BODY_BYTES", str(cls.max_body_bytes))),
            notification_rate_limit=int(env.get("PAYCORE_API_NOTIFICATION_RATE_LIMIT",
                                                str(cls.notification_rate_limit))),
            notification_rate_window_seconds=int(env.get(
                "PAYCORE_API_NOTIFICATION_RATE_WINDOW_SECONDS",
                str(cls.notification_rate_window_seconds))),
            ledger_accounts=tuple(p.strip() for p in env.get(
                "PAYCORE_LEDGER_API_ACCOUNTS", "").split(",") if p.strip()),
            key_cache_seconds=int(env.get("PAYCORE_API_KEY_CACHE_SECONDS",
                                          str(cls.key_cache_seconds))),
            log_format=base.log_format,
            log_level=base.log_level,
        )
