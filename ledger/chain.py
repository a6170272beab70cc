"""Hashes that make the books tamper-evident.

An entry's hash covers its own fields. Each posting's hash covers the previous posting of
the same account, the entry's hash and the posting's own fields, so editing any row, even
with the triggers disabled, breaks a chain that `verify()` walks.

PostgreSQL's write functions (`ledger.fastpath`) compute the same hashes in SQL, where
some fields are only known under the account locks: the account ids behind codes, each
account's chain head and sequence, the booking time. So each JSON text is built here in
pieces (`*_parts`) around those fields, and the SQL joins the pieces with the fields in
the same canonical form; `request_hash` and `entry_hash` join them the same way, so both
sides hash the very same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

#: the link before an account's first posting
GENESIS = "0" * 64

# built once: json.dumps with non-default arguments builds an encoder on every call
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
#: a fixed-order list of fields; only the metadata (a dict) needs its keys sorted.
#: Encoding a list is unambiguous and several times cheaper than a sorted dict.
_fields = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def canonical_json(value: Any) -> str:
    return _canonical(value)


def _metadata(metadata: Mapping[str, Any]) -> str:
    return _canonical(dict(metadata)) if metadata else "{}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class RequestParts(NamedTuple):
    """The request's JSON text before and after its legs, `[[account_id,amount,"CUR"],...]`."""

    head: str
    tail: str


def request_parts(
    *,
    kind: str,
    description: str,
    effective_date: dt.date | None,
    external_ref: str | None,
    metadata: Mapping[str, Any],
    reverses_entry_id: uuid.UUID | None,
    extra: Mapping[str, Any] | None = None,
) -> RequestParts:
    head = _fields([
        "request/1", kind, description, effective_date.isoformat() if effective_date else None,
        external_ref, _metadata(metadata), str(reverses_entry_id) if reverses_entry_id else None,
    ])
    return RequestParts(head[:-1] + ",", "," + _fields(_metadata(extra or {})) + "]")


def legs_json(legs: Iterable[tuple[int, int, str]]) -> str:
    # currency codes are ISO 4217 letters: nothing in them needs escaping
    return "[" + ",".join(f'[{a:d},{m:d},"{c}"]' for a, m, c in legs) + "]"


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
    # the same text as request_parts(...) around legs_json(legs), in one encoding
    return _digest(_fields([
        "request/1", kind, description, effective_date.isoformat() if effective_date else None,
        external_ref, _metadata(metadata), str(reverses_entry_id) if reverses_entry_id else None,
        [list(leg) for leg in legs], _metadata(extra or {}),
    ]))


class EntryParts(NamedTuple):
    """An entry's JSON text around its request hash, effective date and booking time:
    head + '<request hash>' + middle + '"<date>","<booked>"' + tail."""

    head: str
    middle: str
    tail: str


def entry_parts(
    *,
    entry_id: uuid.UUID,
    idempotency_key: str,
    kind: str,
    description: str,
    reverses_entry_id: uuid.UUID | None,
    external_ref: str | None,
    metadata: Mapping[str, Any],
) -> EntryParts:
    return EntryParts(entry_head(entry_id, idempotency_key), *entry_middle_and_tail(
        kind=kind, description=description, reverses_entry_id=reverses_entry_id,
        external_ref=external_ref, metadata=metadata))


def entry_head(entry_id: uuid.UUID | str, idempotency_key: str) -> str:
    """`EntryParts.head`: the part that differs from entry to entry."""
    # the text of _fields(["entry/1", id, key]) without its closing bracket
    return '["entry/1","' + str(entry_id) + '",' + _fields(idempotency_key) + ',"'


def entry_middle_and_tail(
    *,
    kind: str,
    description: str,
    reverses_entry_id: uuid.UUID | None,
    external_ref: str | None,
    metadata: Mapping[str, Any],
) -> tuple[str, str]:
    """`EntryParts.middle` and `.tail`: often the same for a whole batch."""
    return ('",' + _fields([kind, description])[1:-1] + ",",
            "," + _fields([str(reverses_entry_id) if reverses_entry_id else None, external_ref,
                           _metadata(metadata)])[1:])


def booked_text(booked_at: dt.datetime) -> str:
    """The booking time as hashed: UTC, microseconds, '+00:00'."""
    return booked_at.astimezone(dt.UTC).isoformat(timespec="microseconds")


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
    # the same text as entry_parts(...) joined around the hash, date and booking time
    return _digest(_fields([
        "entry/1", str(entry_id), idempotency_key, request_hash, kind, description,
        effective_date.isoformat(), booked_text(booked_at),
        str(reverses_entry_id) if reverses_entry_id else None, external_ref, _metadata(metadata),
    ]))


def posting_hash(
    prev: str, entry: str, account_id: int, seq: int, amount: int, currency: str,
    balance_after: int,
) -> str:
    return _digest(f"{prev}|{entry}|{account_id}|{seq}|{amount}|{currency}|{balance_after}")
