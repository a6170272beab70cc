"""Posting journal entries: `post`, `post_many`, `reverse`, and reading them back."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import chain, fastpath, store
from ledger.books import LockedAccounts
from ledger.errors import (
    AlreadyReversed,
    BalanceOutOfRange,
    EntryNotFound,
    IdempotencyConflict,
    InvalidAmount,
    InvalidRequest,
    LedgerError,
    UnbalancedEntry,
    UnknownAccount,
)
from ledger.ids import new_entry_id
from ledger.money import from_minor, to_minor
from ledger.schema import accounts, journal_entries, postings
from ledger.types import AccountRef, EntryRequest, JournalEntry, PostedPosting, Posting

log = structlog.get_logger("ledger")


class Leg(NamedTuple):
    """A validated posting: signed minor units (debit > 0), not yet tied to an account row."""

    account: AccountRef
    amount: int
    currency: str


#: the largest amount and account id the books keep: their columns are signed 64-bit
#: integers on both databases (a larger one reached the driver and failed there, with
#: another error on each write path)
BIGINT_MAX = 2**63 - 1


def legs_from_postings(idempotency_key: str, items: Iterable[Posting]) -> list[Leg]:
    """Validate postings on their own: one side each, positive, exact, within the books'
    64-bit integers, balanced per currency."""
    legs: list[Leg] = []
    for p in items:
        if not isinstance(p, Posting):
            raise InvalidRequest(f"entry {idempotency_key!r}: expected Posting, got {p!r}")
        if isinstance(p.account, int) and not -BIGINT_MAX - 1 <= p.account <= BIGINT_MAX:
            raise InvalidRequest(f"entry {idempotency_key!r}: {p.account} is not an account id "
                                 "(ids are 64-bit integers)")
        if (p.debit is None) == (p.credit is None):
            raise InvalidRequest(
                f"entry {idempotency_key!r}: a posting to {p.account!r} needs exactly one of "
                "debit or credit"
            )
        money = p.debit if p.debit is not None else p.credit
        assert money is not None
        units = to_minor(money)
        if units <= 0:
            raise InvalidAmount(
                f"entry {idempotency_key!r}: posting to {p.account!r} must be positive, "
                f"got {money.amount} {money.currency.code}"
            )
        if units > BIGINT_MAX:
            raise InvalidAmount(
                f"entry {idempotency_key!r}: posting to {p.account!r} of {money.amount} "
                f"{money.currency.code} is more than the books keep ({BIGINT_MAX} minor units)"
            )
        legs.append(Leg(p.account, units if p.debit is not None else -units, money.currency.code))
    require_balanced(idempotency_key, legs)
    return legs


def require_balanced(idempotency_key: str, legs: Sequence[Leg]) -> None:
    """At least two legs, balanced per currency, and each currency's debits (so its
    credits) totalling no more than the books' 64-bit integers: every leg in range is not
    enough, since the databases sum an entry's legs in 64 bits (SQLite's balance trigger
    raised 'integer overflow', the server functions 'bigint out of range'); with the
    totals in range, every partial sum of an entry's legs is too."""
    if len(legs) < 2:
        raise InvalidRequest(
            f"entry {idempotency_key!r} needs at least two postings, got {len(legs)}"
        )
    # the usual entry has one currency: a plain sum, no per-currency table
    currency, total, debits = legs[0].currency, 0, 0
    for leg in legs:
        if leg.currency != currency:
            break
        total += leg.amount
        if leg.amount > 0:
            debits += leg.amount
    else:
        if total:
            raise UnbalancedEntry(idempotency_key,
                                  {currency: str(from_minor(total, currency).amount)})
        if debits > BIGINT_MAX:
            _refuse_total(idempotency_key, currency, debits)
        return
    sums: dict[str, int] = defaultdict(int)
    debit_sums: dict[str, int] = defaultdict(int)
    for leg in legs:
        sums[leg.currency] += leg.amount
        if leg.amount > 0:
            debit_sums[leg.currency] += leg.amount
    off = {cur: str(from_minor(total, cur).amount) for cur, total in sums.items() if total}
    if off:
        raise UnbalancedEntry(idempotency_key, off)
    for cur, debits in sorted(debit_sums.items()):
        if debits > BIGINT_MAX:
            _refuse_total(idempotency_key, cur, debits)


def _refuse_total(idempotency_key: str, currency: str, debits: int) -> None:
    raise InvalidAmount(
        f"entry {idempotency_key!r}: its debits and its credits in {currency} each total "
        f"{from_minor(debits, currency).amount} {currency}, more than the books keep in one "
        f"entry ({BIGINT_MAX} minor units); split it into several entries"
    )


@dataclass
class Draft:
    """An entry about to be written, before the accounts are locked."""

    idempotency_key: str
    kind: str
    legs: list[Leg]
    effective_date: dt.date | None
    description: str = ""
    external_ref: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reverses_entry_id: uuid.UUID | None = None
    #: request fields that are not postings but make two requests different (e.g. a hold id)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_request(cls, request: EntryRequest) -> Draft:
        if not request.idempotency_key:
            raise InvalidRequest("every journal entry needs an idempotency key")
        if not request.kind:
            raise InvalidRequest(f"entry {request.idempotency_key!r} needs a kind")
        return cls(
            idempotency_key=request.idempotency_key,
            kind=request.kind,
            legs=legs_from_postings(request.idempotency_key, request.postings),
            effective_date=request.effective_date,
            description=request.description,
            external_ref=request.external_ref,
            metadata=dict(request.metadata),
        )

    def request_hash(self, books: LockedAccounts) -> str:
        return chain.request_hash(
            kind=self.kind, description=self.description, effective_date=self.effective_date,
            external_ref=self.external_ref, metadata=self.metadata,
            reverses_entry_id=self.reverses_entry_id,
            legs=[(books[leg.account].id, leg.amount, leg.currency) for leg in self.legs],
            extra=self.extra,
        )


def _debug_logged() -> bool:
    """Whether the configured logger keeps debug lines (a logger that cannot say: yes)."""
    enabled = getattr(log, "is_enabled_for", None)
    return enabled is None or bool(enabled(logging.DEBUG))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def post(conn: AsyncConnection, request: EntryRequest) -> JournalEntry:
    """Post one balanced entry in the caller's transaction; a replay returns the original."""
    [entry] = await post_many(conn, [request])
    return entry


async def post_many(conn: AsyncConnection, requests: Sequence[EntryRequest]) -> list[JournalEntry]:
    """Post many entries in the caller's transaction: all of them, or (on error) none."""
    drafts = [Draft.from_request(r) for r in requests]
    if not drafts:
        return []
    driver = await store.driver(conn)
    if driver is None:  # SQLite
        books = await LockedAccounts.lock(conn, (leg.account for d in drafts for leg in d.legs))
        return await write_drafts(conn, drafts, books)
    written = await fastpath.post_entries(driver, drafts)
    return await _with_replays(conn, written)


async def post_each(
    conn: AsyncConnection, requests: Sequence[EntryRequest]
) -> list[JournalEntry | LedgerError]:
    """Post many entries in the caller's transaction, each with its own outcome: the same
    outcomes, in the same order, as posting them one by one with `post` (a refused entry
    writes nothing and the entries after it see the books without it; a key given twice
    is one entry, then a replay or an `IdempotencyConflict`). Refusals are answered, not
    raised, so the transaction stays usable; any other error (the database's) is raised
    and leaves the transaction to be rolled back."""
    out: list[JournalEntry | LedgerError | None] = [None] * len(requests)
    drafts: list[Draft] = []
    at: list[int] = []  # each draft's place in `requests`
    for n, request in enumerate(requests):
        try:
            drafts.append(Draft.from_request(request))
        except LedgerError as exc:
            out[n] = exc
            continue
        at.append(n)
    if drafts:
        driver = await store.driver(conn)
        if driver is None:  # SQLite
            for n, outcome in zip(at, await _write_each(conn, drafts), strict=True):
                out[n] = outcome
        else:
            written = await fastpath.post_each(driver, drafts)
            posted = [x for x in written if not isinstance(x, LedgerError)]
            loaded = iter(await _with_replays(conn, posted))
            for n, x in zip(at, written, strict=True):
                out[n] = x if isinstance(x, LedgerError) else next(loaded)
    return [x for x in out if x is not None]


async def _write_each(conn: AsyncConnection, drafts: Sequence[Draft]) -> list[JournalEntry | LedgerError]:
    """The Python path of `post_each`: an unknown account refuses the drafts that name it,
    the others are written by `write_drafts`, which records each refusal instead of
    raising it."""
    out: list[JournalEntry | LedgerError | None] = [None] * len(drafts)
    live = list(range(len(drafts)))
    try:
        books = await LockedAccounts.lock(conn, (leg.account for d in drafts for leg in d.legs))
    except UnknownAccount as exc:
        unknown = set(exc.refs)
        live = []
        for n, d in enumerate(drafts):
            refs = {leg.account for leg in d.legs} & unknown
            if refs:
                out[n] = UnknownAccount([*sorted(r for r in refs if isinstance(r, int)),
                                         *sorted(r for r in refs if isinstance(r, str))])
            else:
                live.append(n)
        books = await LockedAccounts.lock(
            conn, (leg.account for n in live for leg in drafts[n].legs))
    refused: dict[int, LedgerError] = {}
    written = iter(await write_drafts(conn, [drafts[n] for n in live], books, refused=refused))
    for k, n in enumerate(live):
        out[n] = refused[k] if k in refused else next(written)
    return [x for x in out if x is not None]


async def _with_replays(
    conn: AsyncConnection, written: Sequence[JournalEntry | uuid.UUID]
) -> list[JournalEntry]:
    """The written entries, with the replayed ones (given by id) loaded; each logged."""
    replayed_ids = [x for x in written if isinstance(x, uuid.UUID)]
    replayed = {e.id: e for e in await load_entries(conn, replayed_ids, replayed=True)}
    result = [replayed[x] if isinstance(x, uuid.UUID) else x for x in written]
    if not _debug_logged():  # a batch of thousands: not even the arguments of a dropped line
        return result
    for entry in result:
        log.debug("journal_entry.replayed" if entry.replayed else "journal_entry.posted",
                  entry_id=str(entry.id), idempotency_key=entry.idempotency_key, kind=entry.kind)
    return result


async def write_drafts(
    conn: AsyncConnection, drafts: Sequence[Draft], books: LockedAccounts,
    *, refused: dict[int, LedgerError] | None = None,
) -> list[JournalEntry]:
    """The one write path: idempotency, validation, chain links, limits, then three statements.

    `books` must already hold the locks of every account the drafts touch. Without
    `refused`, the first refusal raises and nothing is written. With it, a refused draft is
    recorded there by its place in `drafts` and left out, its effect on the locked balances
    undone, so the next draft sees the books without it (as if each were posted on its
    own); the answer then holds the other drafts' entries, in order.
    """
    hashes = [d.request_hash(books) for d in drafts]
    existing = await store.find_idempotency_keys(conn, list({d.idempotency_key for d in drafts}))
    await _refuse_second_reversals(conn, [d for d in drafts if d.reverses_entry_id], existing)

    booked_at = books.booking_time(utcnow())
    out: list[JournalEntry | uuid.UUID] = []
    seen: dict[str, tuple[uuid.UUID, str]] = {}
    entry_rows: list[store.EntryRow] = []
    posting_rows: list[store.PostingRow] = []
    for n, (draft, request_hash) in enumerate(zip(drafts, hashes, strict=True)):
        key = draft.idempotency_key
        prior = existing.get(key) or seen.get(key)
        if prior is not None:
            if prior[1] != request_hash:
                if refused is None:
                    raise IdempotencyConflict(key)
                refused[n] = IdempotencyConflict(key)
                continue
            out.append(prior[0])
            continue
        if refused is None:
            entry, e_row, p_rows = _book(draft, request_hash, booked_at, books)
        else:
            undo = books.undo_point(leg.account for leg in draft.legs)
            try:
                entry, e_row, p_rows = _book(draft, request_hash, booked_at, books)
            except LedgerError as exc:
                undo()
                refused[n] = exc
                continue
        seen[key] = (entry.id, request_hash)
        out.append(entry)
        entry_rows.append(e_row)
        posting_rows.extend(p_rows)

    await store.write(conn, posting_rows, entry_rows, books.dirty_rows())
    return await _with_replays(conn, out)


def _book(
    draft: Draft, request_hash: str, booked_at: dt.datetime, books: LockedAccounts
) -> tuple[JournalEntry, store.EntryRow, list[store.PostingRow]]:
    entry_id = new_entry_id()
    effective = draft.effective_date or booked_at.date()
    e_hash = chain.entry_hash(
        entry_id=entry_id, idempotency_key=draft.idempotency_key, request_hash=request_hash,
        kind=draft.kind, description=draft.description, effective_date=effective,
        booked_at=booked_at, reverses_entry_id=draft.reverses_entry_id,
        external_ref=draft.external_ref, metadata=draft.metadata,
    )
    for leg in draft.legs:
        books[leg.account].require_postable(leg.currency)
    posted: list[PostedPosting] = []
    rows: list[store.PostingRow] = []
    for leg_no, leg in enumerate(draft.legs, start=1):
        state = books[leg.account]
        # each amount is in range; their running sum on the lane must be too (checked after
        # every leg's account is postable and before the limits, as the server functions do)
        if (state.posted_debits > BIGINT_MAX - leg.amount if leg.amount > 0
                else state.posted_credits > BIGINT_MAX + leg.amount):
            raise BalanceOutOfRange(state.code, "debits" if leg.amount > 0 else "credits",
                                    draft.idempotency_key)
        state.post(leg.amount, booked_at)
        balance_after = state.posted_net
        link = chain.posting_hash(state.head_hash, e_hash, state.id, state.seq, leg.amount,
                                  leg.currency, balance_after)
        state.head_hash = link
        rows.append(store.PostingRow(entry_id, leg_no, state.id, leg.amount, leg.currency, state.seq,
                                     balance_after, booked_at, effective, link))
        posted.append(PostedPosting(state.id, state.code, leg.amount, leg.currency, state.seq,
                                    balance_after))
    books.check_limits((p.account_id for p in posted), draft.idempotency_key)
    entry = JournalEntry(
        id=entry_id, idempotency_key=draft.idempotency_key, kind=draft.kind,
        description=draft.description, effective_date=effective, booked_at=booked_at,
        reverses_entry_id=draft.reverses_entry_id, external_ref=draft.external_ref,
        metadata=dict(draft.metadata), postings=tuple(posted),
    )
    row = store.EntryRow(entry_id, draft.idempotency_key, request_hash, draft.kind,
                         draft.description, effective, booked_at, draft.reverses_entry_id,
                         draft.external_ref, dict(draft.metadata), e_hash)
    return entry, row, rows


async def _refuse_second_reversals(
    conn: AsyncConnection, drafts: Sequence[Draft], existing: Mapping[str, Any]
) -> None:
    targets = [d.reverses_entry_id for d in drafts if d.idempotency_key not in existing]
    if not targets:
        return
    rows = await conn.execute(
        sa.select(journal_entries.c.reverses_entry_id, journal_entries.c.id)
        .where(journal_entries.c.reverses_entry_id.in_(targets))
    )
    for row in rows:
        raise AlreadyReversed(row.reverses_entry_id, row.id)
    if len(set(targets)) != len(targets):
        raise InvalidRequest("the same entry cannot be reversed twice in one batch")


async def reverse(
    conn: AsyncConnection,
    entry_id: uuid.UUID,
    *,
    idempotency_key: str | None = None,
    effective_date: dt.date | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> JournalEntry:
    """Post the mirror of an entry, linked to it by `reverses_entry_id`; only once."""
    [original] = await load_entries(conn, [entry_id])
    draft = Draft(
        idempotency_key=idempotency_key or f"reverse:{entry_id}",
        kind=f"{original.kind}.reversal",
        legs=[Leg(p.account_id, -p.amount, p.currency) for p in original.postings],
        effective_date=effective_date,
        description=description if description is not None else f"Reversal of {original.kind}",
        external_ref=original.external_ref,
        metadata=dict(metadata or {}),
        reverses_entry_id=original.id,
    )
    books = await LockedAccounts.lock(conn, (leg.account for leg in draft.legs))
    [entry] = await write_drafts(conn, [draft], books)
    return entry


async def get_entry(conn: AsyncConnection, entry_id: uuid.UUID) -> JournalEntry:
    [entry] = await load_entries(conn, [entry_id])
    return entry


async def find_entry(conn: AsyncConnection, idempotency_key: str) -> JournalEntry | None:
    entry_id = await conn.scalar(
        sa.select(journal_entries.c.id).where(journal_entries.c.idempotency_key == idempotency_key)
    )
    if entry_id is None:
        return None
    return (await load_entries(conn, [entry_id]))[0]


async def load_entries(
    conn: AsyncConnection, ids: Sequence[uuid.UUID], *, replayed: bool = False
) -> list[JournalEntry]:
    """Entries with their postings, in the order of `ids`."""
    if not ids:
        return []
    by_id: dict[uuid.UUID, Any] = {}
    legs: dict[uuid.UUID, list[PostedPosting]] = defaultdict(list)
    for chunk in _chunks(list(dict.fromkeys(ids)), 1000):
        for row in await conn.execute(
            sa.select(journal_entries).where(journal_entries.c.id.in_(chunk))
        ):
            by_id[row.id] = row
        for p in await conn.execute(
            sa.select(postings.c.entry_id, postings.c.account_id, accounts.c.code,
                      postings.c.amount, postings.c.currency, postings.c.account_seq,
                      postings.c.balance_after)
            .join(accounts, accounts.c.id == postings.c.account_id)
            .where(postings.c.entry_id.in_(chunk))
            .order_by(postings.c.entry_id, postings.c.leg_no)
        ):
            legs[p.entry_id].append(PostedPosting(p.account_id, p.code, p.amount, p.currency,
                                                  p.account_seq, p.balance_after))
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise EntryNotFound(missing[0])
    return [
        JournalEntry(
            id=r.id, idempotency_key=r.idempotency_key, kind=r.kind, description=r.description,
            effective_date=r.effective_date, booked_at=r.booked_at,
            reverses_entry_id=r.reverses_entry_id, external_ref=r.external_ref,
            metadata=r.metadata, postings=tuple(legs[r.id]), replayed=replayed,
        )
        for r in (by_id[i] for i in ids)
    ]


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
