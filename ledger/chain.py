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


def _fields(values: list[Any]) -> str:
    """A fixed-order list of fields; only the metadata (a dict) needs its keys sorted.
    Encoding a list is unambiguous and several times cheaper than a sorted dict."""
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def _metadata(metadata: Mapping[str, Any]) -> str:
    return canonical_json(dict(metadata)) if metadata else "{}"


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
    return _digest(_fields([
        "request/1", kind, description, effective_date.isoformat() if effective_date else None,
        external_ref, _metadata(metadata), str(reverses_entry_id) if reverses_entry_id else None,
        [list(leg) for leg in legs], _metadata(extra or {}),
    ]))


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
    return _digest(_fields([
        "entry/1", str(entry_id), idempotency_key, request_hash, kind, description,
        effective_date.isoformat(),
        booked_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        str(reverses_entry_id) if reverses_entry_id else None, external_ref, _metadata(metadata),
    ]))


def posting_hash(
    prev: str, entry: str, account_id: int, seq: int, amount: int, currency: str,
    balance_after: int,
) -> str:
    return _digest(f"{prev}|{entry}|{account_id}|{seq}|{amount}|{currency}|{balance_after}")
