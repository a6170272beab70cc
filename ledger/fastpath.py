"""PostgreSQL: a batch of journal entries (one, for `post`) in one round trip, through
`ledger_post_entries` (migration 0002, DDL in `ledger.ddl`), inside the caller's
transaction.

What needs no database stays here: validating each request (`Draft.from_request`) and
the JSON pieces of its hashes (`ledger.chain`). The function does the rest under the locks
and answers with a status; a refusal wrote nothing, and becomes the same `ledger.errors`
error the Python write path raises, after the same checks in the same order.

A batch larger than CHUNK goes in chunks (`post_in_chunks`), so that the client's Python
work on one chunk overlaps the server's work on another, with the same outcomes as one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ledger import chain
from ledger.errors import (
    AccountClosed,
    BalanceLimitExceeded,
    CurrencyMismatch,
    IdempotencyConflict,
    LedgerError,
    UnknownAccount,
)
from ledger.money import from_minor
from ledger.types import EntryRequest, JournalEntry, PostedPosting

if TYPE_CHECKING:  # ledger.entries calls this module
    from ledger.entries import Draft

POST_ENTRIES = "SELECT * FROM ledger_post_entries($1::jsonb)"
#: entries per call when a large batch is split (post_in_chunks): a few chunks are enough to
#: keep both cores busy, and each call has a fixed cost of its own
CHUNK = 250
#: the balance rows of a whole batch, locked in account-id order as one call would
LOCK_ACCOUNTS = (
    "SELECT b.account_id FROM account_balances b WHERE b.account_id = ANY ($1::bigint[])"
    " OR b.account_id IN (SELECT a.id FROM accounts a WHERE a.code = ANY ($2::text[]))"
    " ORDER BY b.account_id FOR UPDATE"
)
SAVEPOINT = "SAVEPOINT ledger_post_in_chunks"
RELEASE = "RELEASE SAVEPOINT ledger_post_in_chunks"
UNDO = "ROLLBACK TO SAVEPOINT ledger_post_in_chunks; RELEASE SAVEPOINT ledger_post_in_chunks"
_batch_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


async def post_entries(raw: Any, drafts: Sequence[Draft]) -> list[JournalEntry | uuid.UUID]:
    """Post `drafts` on the asyncpg connection `raw` (in a transaction): per draft, the new
    entry, or the id of the entry its idempotency key already names (a replay, for the
    caller to load)."""
    row = await raw.fetchrow(POST_ENTRIES, _batch(drafts))
    if row["o_status"] != "posted":
        raise _refusal(drafts, row["o_status"], row)
    return _written(drafts, row)


async def post_in_chunks(
    raw: Any, requests: Sequence[EntryRequest], draft_of: Callable[[EntryRequest], Draft]
) -> list[JournalEntry | uuid.UUID]:
    """`post_entries` for a large batch, CHUNK entries per call, so that Python prepares
    (and afterwards reads) one chunk while the server works on another: the two run on
    different cores instead of taking turns. The same promises as one call:
    - every account of the batch is locked first, in account-id order (no deadlock between
      writers), before anything is written;
    - the chunks run in order, each under the locks and seeing the ones before it, so
      account chains, sequences, limits and idempotency keys (a key repeated in a later
      chunk replays, or conflicts with, the earlier entry) come out as in one call;
    - all or nothing: the chunks run inside a savepoint; on a refusal or an invalid request
      it is rolled back, and the whole batch is sent again as one call, which writes nothing
      and raises the very error (checked in the very order) that one call raises. The
      caller's transaction stays usable, as after one refused call.
    `draft_of` validates a request (`Draft.from_request`): chunk by chunk, overlapped too.
    """
    chunks = [requests[at:at + CHUNK] for at in range(0, len(requests), CHUNK)]
    ids, codes = _account_refs(requests)
    await raw.execute(SAVEPOINT)
    pending: asyncio.Future[Any] = asyncio.ensure_future(raw.fetch(LOCK_ACCOUNTS, ids, codes))
    out: list[JournalEntry | uuid.UUID] = []
    try:
        await asyncio.sleep(0)  # let the statement leave for the server first
        drafts = [draft_of(r) for r in chunks[0]]
        batch = _batch(drafts)
        await pending
        pending = asyncio.ensure_future(raw.fetchrow(POST_ENTRIES, batch))
        for chunk in chunks[1:]:
            await asyncio.sleep(0)
            next_drafts = [draft_of(r) for r in chunk]
            next_batch = _batch(next_drafts)
            row = await pending
            if row["o_status"] != "posted":
                raise _Refused
            pending = asyncio.ensure_future(raw.fetchrow(POST_ENTRIES, next_batch))
            out += _written(drafts, row)  # while the server works on the next chunk
            drafts = next_drafts
        row = await pending
        if row["o_status"] != "posted":
            raise _Refused
        out += _written(drafts, row)
    except (LedgerError, _Refused):
        await _settle(pending)
        await raw.execute(UNDO)
        # the whole batch in one call: its error is the one to raise
        return await post_entries(raw, [draft_of(r) for r in requests])
    except BaseException:
        await _settle(pending)
        raise
    await raw.execute(RELEASE)
    return out


class _Refused(Exception):
    """A chunk was refused (see post_in_chunks)."""


async def _settle(pending: asyncio.Future[Any]) -> None:
    """Wait for a statement still in flight: the connection runs one at a time."""
    if not pending.done():
        with contextlib.suppress(Exception):
            await pending


def _account_refs(requests: Sequence[EntryRequest]) -> tuple[list[int], list[str]]:
    """The accounts the (not yet validated) requests name, by id and by code."""
    ids: set[int] = set()
    codes: set[str] = set()
    for r in requests:
        for p in r.postings:
            account = getattr(p, "account", None)
            if type(account) is int:
                ids.add(account)
            elif type(account) is str:
                codes.add(account)
    return sorted(ids), sorted(codes)


def _batch(drafts: Sequence[Draft]) -> str:
    """One JSON text, [[entry, ...], [leg, ...]], the field order ledger_post_entries reads."""
    entries: list[list[Any]] = []
    legs: list[list[Any]] = []
    request_parts, entry_parts, canonical = chain.request_parts, chain.entry_parts, \
        chain.canonical_json
    for d in drafts:
        entry_id = uuid.uuid4()
        request = request_parts(
            kind=d.kind, description=d.description, effective_date=d.effective_date,
            external_ref=d.external_ref, metadata=d.metadata, reverses_entry_id=None,
        )
        head, middle, tail = entry_parts(
            entry_id=entry_id, idempotency_key=d.idempotency_key, kind=d.kind,
            description=d.description, reverses_entry_id=None, external_ref=d.external_ref,
            metadata=d.metadata,
        )
        entries.append([
            d.idempotency_key, str(entry_id), d.kind, d.description,
            d.effective_date.isoformat() if d.effective_date else None, d.external_ref,
            canonical(dict(d.metadata)) if d.metadata else "{}", request.head, request.tail,
            head, middle, tail, len(d.legs),
        ])
        for leg in d.legs:
            account = leg.account
            legs.append([account, None, leg.amount, leg.currency] if isinstance(account, int)
                        else [None, account, leg.amount, leg.currency])
    return _batch_json([entries, legs])


def _written(drafts: Sequence[Draft], row: Any) -> list[JournalEntry | uuid.UUID]:
    """What a call that posted answered, per draft: the new entry, or a replayed id."""
    out: list[JournalEntry | uuid.UUID] = []
    booked_at = row["o_booked_at"]
    account_ids, codes, seqs, balances = (row["o_account_ids"], row["o_codes"], row["o_seqs"],
                                          row["o_balances"])
    at = 0  # the first leg of the entry (legs of every entry, replayed ones included)
    for d, entry_id, replayed, eff in zip(drafts, row["o_entry_ids"], row["o_replayed"],
                                          row["o_effective"], strict=True):
        n = len(d.legs)
        if replayed:
            out.append(entry_id)
            at += n
            continue
        postings = tuple(
            PostedPosting(account_ids[j], codes[j], leg.amount, leg.currency, seqs[j],
                          balances[j])
            for j, leg in enumerate(d.legs, start=at)
        )
        at += n
        out.append(JournalEntry(
            id=entry_id, idempotency_key=d.idempotency_key, kind=d.kind,
            description=d.description, effective_date=eff, booked_at=booked_at,
            reverses_entry_id=None, external_ref=d.external_ref, metadata=dict(d.metadata),
            postings=postings,
        ))
    return out


def _refusal(drafts: Sequence[Draft], status: str, row: Any) -> LedgerError:
    detail = row["o_detail"]
    if status == "unknown-account":
        locked_ids = {int(i) for i in detail}
        locked_codes = set(row["o_codes"])
        refs = [leg.account for d in drafts for leg in d.legs]
        ids = sorted({r for r in refs if isinstance(r, int)})
        codes = sorted({r for r in refs if isinstance(r, str)})
        return UnknownAccount([i for i in ids if i not in locked_ids]
                              + [c for c in codes if c not in locked_codes])
    draft = drafts[row["o_failed"] - 1]
    if status == "idempotency-conflict":
        return IdempotencyConflict(draft.idempotency_key)
    if status == "account-closed":
        return AccountClosed(detail[0])
    if status == "currency-mismatch":
        return CurrencyMismatch(detail[0], detail[1], detail[2])
    if status == "balance-limit-exceeded":
        code, limit, short, currency = detail
        return BalanceLimitExceeded(code, limit, f"{from_minor(int(short), currency).amount} "
                                    f"{currency}", draft.idempotency_key)
    raise AssertionError(f"ledger_post_entries answered {status!r}")
