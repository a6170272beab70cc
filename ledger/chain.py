"""Hashes that make the books tamper-evident.

An entry's hash covers its own fields. Each posting's hash covers the previous posting of
the same account, the entry's hash and the posting's own fields, so editing any row, even
with the triggers disabled, breaks a chain that `verify()` walks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

#: the link before an account's first posting
GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def request_hash(
    *,
    kind: str,
    description: str,
    effective_date: dt.date | None,
    external_ref: str | None,
    metadata: Mapping[str, Any],
    reverses_entry_id: uuid.UUID | None,
    legs: Iterable[tuple[int, int, str]],
    extra: Mapping[str, Any] | None = None,
) -> str:
    """What an idempotency key is compared on: the request as the caller sent it, with
    account codes resolved to ids so that naming an account either way is the same request."""
    return _digest(canonical_json({
        "kind": kind,
        "description": description,
        "effective_date": effective_date.isoformat() if effective_date else None,
        "external_ref": external_ref,
        "metadata": dict(metadata),
        "reverses": str(reverses_entry_id) if reverses_entry_id else None,
        "legs": [list(leg) for leg in legs],
        "extra": dict(extra or {}),
    }))


def entry_hash(
    *,
    entry_id: uuid.UUID,
    idempotency_key: str,
    request_hash: str,
    kind: str,
    description: str,
    effective_date: dt.date,
    booked_at: dt.datetime,
    reverses_entry_id: uuid.UUID | None,
    external_ref: str | None,
    metadata: Mapping[str, Any],
) -> str:
    return _digest(canonical_json({
        "id": str(entry_id),
        "key": idempotency_key,
        "request": request_hash,
        "kind": kind,
        "description": description,
        "effective_date": effective_date.isoformat(),
        "booked_at": booked_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "reverses": str(reverses_entry_id) if reverses_entry_id else None,
        "external_ref": external_ref,
        "metadata": dict(metadata),
    }))


def posting_hash(
    prev: str, entry: str, account_id: int, seq: int, amount: int, currency: str,
    balance_after: int,
) -> str:
    return _digest(f"{prev}|{entry}|{account_id}|{seq}|{amount}|{currency}|{balance_after}")
