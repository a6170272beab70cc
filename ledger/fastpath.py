"""PostgreSQL: journal entries in one round trip, inside the caller's transaction: a batch
through `ledger_post_entries` (migration 0002, DDL in `ledger.ddl`), one entry (every
`post`) through `ledger_post_entry` (migration 0014, `ledger.ddl_post_entry`).

What needs no database stays here: validating each request (`Draft.from_request`) and
the JSON pieces of its hashes (`ledger.chain`). The function does the rest under the locks
and answers with a status; a refusal wrote nothing, and becomes the same `ledger.errors`
error the Python write path raises, after the same checks in the same order.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from ledger import chain
from ledger.errors import (
    AccountClosed,
    BalanceLimitExceeded,
    BalanceOutOfRange,
    CurrencyMismatch,
    IdempotencyConflict,
    InvalidRequest,
    LedgerError,
    UnbalancedEntry,
    UnknownAccount,
)
from ledger.ids import new_entry_id_texts
from ledger.money import from_minor
from ledger.types import JournalEntry, PostedPosting

if TYPE_CHECKING:  # ledger.entries calls this module
    from ledger.entries import Draft

POST_ENTRIES = "SELECT * FROM ledger_post_entries($1::jsonb)"
POST_ENTRY = ("SELECT * FROM ledger_post_entry("
              + ", ".join(f"${n}" for n in range(1, 17)) + ")")
#: The hash parts that depend only on what entries usually share (kind, description, value
#: date, reference, metadata), by that combination: a batch's entries share them, and a
#: service posts the same few kinds of entry over and over. Pure functions of the key.
_SHARED_PARTS: dict[tuple[Any, ...], tuple[str | None, str, str, str, str]] = {}
_SHARED_PARTS_KEPT = 4096
_batch_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


async def post_entries(raw: Any, drafts: Sequence[Draft]) -> list[JournalEntry | uuid.UUID]:
    """Post `drafts` on the asyncpg connection `raw` (in a transaction): per draft, the new
    entry, or the id of the entry its idempotency key already names (a replay, for the
    caller to load). One draft (every `post`) goes to `ledger_post_entry`, more to
    `ledger_post_entries`."""
    if len(drafts) == 1:
        return [await post_entry(raw, drafts[0])]
    return await post_batch(raw, drafts)


async def post_batch(raw: Any, drafts: Sequence[Draft]) -> list[JournalEntry | uuid.UUID]:
    """`post_entries` through the batch function, whatever the number of drafts."""
    row = await raw.fetchrow(POST_ENTRIES, _batch(drafts))
    status = row["o_status"]
    if status != "posted":
        raise _refusal(drafts, status, row["o_detail"], row["o_codes"], row["o_failed"])
    return _written(drafts, row)


async def post_each(
    raw: Any, drafts: Sequence[Draft], entry_ids: Sequence[str] | None = None,
) -> list[JournalEntry | uuid.UUID | LedgerError]:
    """`post_entries`, each draft with its own outcome, as if posted one by one in order:
    a refused draft (the function wrote nothing and the transaction stays usable) gets its
    error and the rest go again without it, so each later draft sees the books without
    it. An unknown account refuses every draft that names one. A batch without refusals
    costs one call; each refusal one more.

    `entry_ids` (text, one per draft) are the ids a new entry gets, the same in every call
    (the coalescer's, so that it knows what an unanswered call may have written); new ones
    per call without them. Outside a transaction each call commits on its own: a refusal
    wrote nothing, so the next call sees the same books but for other writers' entries."""
    out: list[JournalEntry | uuid.UUID | LedgerError | None] = [None] * len(drafts)
    live = list(range(len(drafts)))
    while live:
        batch = [drafts[i] for i in live]
        ids = None if entry_ids is None else [entry_ids[i] for i in live]
        if len(batch) == 1:
            try:
                out[live[0]] = await post_entry(raw, batch[0], None if ids is None else ids[0])
            except LedgerError as exc:
                out[live[0]] = exc
            break
        row = await raw.fetchrow(POST_ENTRIES, _batch(batch, ids))
        status = row["o_status"]
        if status == "posted":
            for i, written in zip(live, _written(batch, row), strict=True):
                out[i] = written
            break
        if status == "unknown-account":  # (detail: the ids of the accounts that were found)
            found_ids, found_codes = {int(i) for i in row["o_detail"]}, set(row["o_codes"])
            left = []
            for i in live:
                missing = _missing_accounts(drafts[i], found_ids, found_codes)
                if missing:
                    out[i] = UnknownAccount(missing)
                else:
                    left.append(i)
            if len(left) == len(live):
                raise AssertionError("ledger_post_entries named no draft's account unknown")
            live = left
            continue
        failed = row["o_failed"]
        out[live[failed - 1]] = _refusal(batch, status, row["o_detail"], row["o_codes"], failed)
        del live[failed - 1]
    return [x for x in out if x is not None]


def _missing_accounts(draft: Draft, found_ids: set[int], found_codes: set[str]) -> list[object]:
    """The accounts a draft names that do not exist, as `UnknownAccount` lists them."""
    refs = [leg.account for leg in draft.legs]
    ids = sorted({r for r in refs if isinstance(r, int) and r not in found_ids})
    codes = sorted({r for r in refs if isinstance(r, str) and r not in found_codes})
    return [*ids, *codes]


async def post_entry(raw: Any, draft: Draft, entry_id: str | None = None,
                     ) -> JournalEntry | uuid.UUID:
    """One draft through `ledger_post_entry` (migration 0014): typed arguments, no JSON to
    read, and a fraction of the batch function's statements and expressions, which
    PostgreSQL prepares again in every transaction. `entry_id`: the new entry's id (text;
    a new one without it)."""
    metadata, _, request_head, request_tail, middle, tail = _shared_parts(draft)
    if entry_id is None:
        [entry_id] = new_entry_id_texts(1)
    ids: list[int | None] = []
    codes: list[str | None] = []
    for leg in draft.legs:
        account = leg.account
        if isinstance(account, int):
            ids.append(account)
            codes.append(None)
        else:
            ids.append(None)
            codes.append(account)
    row = await raw.fetchrow(
        POST_ENTRY, draft.idempotency_key, entry_id, draft.kind, draft.description,
        draft.effective_date, draft.external_ref, metadata, request_head, request_tail,
        chain.entry_head(entry_id, draft.idempotency_key), middle, tail, ids, codes,
        [leg.amount for leg in draft.legs], [leg.currency for leg in draft.legs])
    status = row["o_status"]
    if status == "replayed":
        return cast(uuid.UUID, row["o_entry_id"])
    if status != "posted":
        raise _refusal((draft,), status, row["o_detail"], row["o_codes"], 1)
    return JournalEntry(
        id=row["o_entry_id"], idempotency_key=draft.idempotency_key, kind=draft.kind,
        description=draft.description, effective_date=row["o_effective"],
        booked_at=row["o_booked_at"], reverses_entry_id=None, external_ref=draft.external_ref,
        metadata=dict(draft.metadata),
        postings=tuple(
            PostedPosting(account_id, code, leg.amount, leg.currency, seq, balance)
            for account_id, code, seq, balance, leg in zip(
                row["o_account_ids"], row["o_codes"], row["o_seqs"], row["o_balances"],
                draft.legs, strict=True)),
    )


def _shared_parts(d: Draft) -> tuple[str, str | None, str, str, str, str]:
    """The draft's canonical metadata, and the hash parts that depend only on what entries
    usually share: (metadata, effective date, request head and tail, entry middle and
    tail)."""
    metadata = chain.canonical_json(dict(d.metadata)) if d.metadata else "{}"
    key = (d.kind, d.description, d.effective_date, d.external_ref, metadata)
    parts = _SHARED_PARTS.get(key)
    if parts is None:
        if len(_SHARED_PARTS) > _SHARED_PARTS_KEPT:
            _SHARED_PARTS.clear()
        request = chain.request_parts(
            kind=d.kind, description=d.description, effective_date=d.effective_date,
            external_ref=d.external_ref, metadata=d.metadata, reverses_entry_id=None,
        )
        middle, tail = chain.entry_middle_and_tail(
            kind=d.kind, description=d.description, reverses_entry_id=None,
            external_ref=d.external_ref, metadata=d.metadata,
        )
        parts = _SHARED_PARTS[key] = (
            d.effective_date.isoformat() if d.effective_date else None,
            request.head, request.tail, middle, tail)
    return (metadata, *parts)


def _batch(drafts: Sequence[Draft], entry_ids: Sequence[str] | None = None) -> str:
    """One JSON text, [[entry, ...], [leg, ...]], the field order ledger_post_entries reads;
    a leg ends with its entry's place in the batch (from 1). `entry_ids`: the new entries'
    ids (text; new ones without them)."""
    entries: list[list[Any]] = []
    legs: list[list[Any]] = []
    head_of, shared_parts = chain.entry_head, _shared_parts
    if entry_ids is None:
        entry_ids = new_entry_id_texts(len(drafts))
    for n, (d, entry_id) in enumerate(zip(drafts, entry_ids, strict=True), start=1):
        metadata, effective, request_head, request_tail, middle, tail = shared_parts(d)
        entries.append([
            d.idempotency_key, entry_id, d.kind, d.description, effective, d.external_ref,
            metadata, request_head, request_tail, head_of(entry_id, d.idempotency_key),
            middle, tail, len(d.legs),
        ])
        for leg in d.legs:
            account = leg.account
            legs.append([account, None, leg.amount, leg.currency, n] if isinstance(account, int)
                        else [None, account, leg.amount, leg.currency, n])
    return _batch_json([entries, legs])


def _written(drafts: Sequence[Draft], row: Any) -> list[JournalEntry | uuid.UUID]:
    """What a call that posted answered, per draft: the new entry, or a replayed id."""
    out: list[JournalEntry | uuid.UUID] = []
    booked_at = row["o_booked_at"]
    # every leg's posting in one pass (a replayed entry's legs have no sequence number)
    posted = [
        PostedPosting(account_id, code, leg.amount, leg.currency, seq, balance)
        if seq is not None else None
        for account_id, code, seq, balance, leg in zip(
            row["o_account_ids"], row["o_codes"], row["o_seqs"], row["o_balances"],
            (leg for d in drafts for leg in d.legs), strict=True)
    ]
    at = 0  # the first leg of the entry (legs of every entry, replayed ones included)
    for d, entry_id, replayed, eff in zip(drafts, row["o_entry_ids"], row["o_replayed"],
                                          row["o_effective"], strict=True):
        n = len(d.legs)
        if replayed:
            out.append(entry_id)
            at += n
            continue
        postings = cast(tuple[PostedPosting, ...], tuple(posted[at:at + n]))
        at += n
        out.append(JournalEntry(
            id=entry_id, idempotency_key=d.idempotency_key, kind=d.kind,
            description=d.description, effective_date=eff, booked_at=booked_at,
            reverses_entry_id=None, external_ref=d.external_ref, metadata=dict(d.metadata),
            postings=postings,
        ))
    return out


def _refusal(drafts: Sequence[Draft], status: str, detail: Sequence[str],
             locked_codes: Sequence[str], failed: int) -> LedgerError:
    """The error for a write function's refusal of draft number `failed` (from 1)."""
    if status == "unknown-account":  # (detail: the ids of the accounts that were found)
        locked_ids = {int(i) for i in detail}
        found_codes = set(locked_codes)
        refs = [leg.account for d in drafts for leg in d.legs]
        ids = sorted({r for r in refs if isinstance(r, int)})
        codes = sorted({r for r in refs if isinstance(r, str)})
        return UnknownAccount([i for i in ids if i not in locked_ids]
                              + [c for c in codes if c not in found_codes])
    draft = drafts[failed - 1]
    if status == "idempotency-conflict":
        return IdempotencyConflict(draft.idempotency_key)
    if status == "account-closed":
        return AccountClosed(detail[0])
    if status == "currency-mismatch":
        return CurrencyMismatch(detail[0], detail[1], detail[2])
    if status == "too-few-postings":  # (Draft.from_request refuses these first)
        return InvalidRequest(f"entry {draft.idempotency_key!r} needs at least two postings, "
                              f"got {detail[0]}")
    if status == "unbalanced":
        off = {cur: str(from_minor(int(units), cur).amount)
               for cur, units in (item.split(" ") for item in detail)}
        return UnbalancedEntry(draft.idempotency_key, off)
    if status == "balance-limit-exceeded":
        code, limit, short, currency = detail
        return BalanceLimitExceeded(code, limit, f"{from_minor(int(short), currency).amount} "
                                    f"{currency}", draft.idempotency_key)
    if status == "balance-out-of-range":  # (detail: the account's code, debits or credits)
        return BalanceOutOfRange(detail[0], detail[1], draft.idempotency_key)
    raise AssertionError(f"the write function answered {status!r}")
