"""The coalescing write path: many callers' entries, one transaction, one COMMIT.

`Coalescer.submit(request)` queues an entry that needs no other state in the caller's
transaction (an API transfer, an import line, an accrual, an internal service's entry) and
waits for it. One writer task per coalescer (per process) takes what is queued, posts it
with `post_each` in one transaction, and answers each caller with its own outcome only
after COMMIT returned. On PostgreSQL a batch is one round trip: the write function is
called outside any transaction block, so the server commits it before it answers (no
BEGIN and COMMIT to wait for); a refusal wrote nothing and the rest of the batch goes
again in a call of its own, as it would in one transaction:

- each entry's outcome is what posting the entries one by one with `post` in queue order
  would have given: a refusal refuses that entry alone, limits are checked entry by entry
  (the next entry sees the books without a refused one), the same key twice is one entry
  and a replay (or an `IdempotencyConflict` if the requests differ);
- a failed transaction (deadlock, serialization failure, lost connection, a key another
  process took first) is run again whole, a bounded number of times; idempotency keys make
  the re-run a replay of whatever an earlier attempt may have committed, and an entry
  keeps its id from attempt to attempt on PostgreSQL, so a replay of that id is the
  caller's own post. An entry whose COMMIT outcome stays unknown gets
  `SubmitOutcomeUnknown`, never an acknowledgement;
- an error that is neither a refusal nor a lost connection (the database refusing one
  entry's data) splits the batch in halves until it is that entry's alone;
- a caller cancelled while waiting does not take its entry back: once queued, it is posted
  exactly once, and its key makes the caller's own retry a replay;
- the queue is bounded: past `max_queue` waiting entries, `submit` raises
  `SubmitQueueFull` at once and queues nothing.

The batch is adaptive: the writer takes everything queued (up to `max_batch`); while
callers are many it waits up to `max_wait_us` microseconds for as many entries as the
last batch had, so a busy writer commits full batches and an idle one commits a lone entry
at once. Writes that must commit with domain state (a capture with its intent) keep using
`post` in the caller's transaction. Several processes each run their own coalescer against
the same database; the ledger's row locks order them.

Several writers (`writers=N`, default 1): up to N batches are posted at once, each on a
connection of its own, and a burst of queued entries is shared among the free writers
(parts of at least `SPLIT_FLOOR`), so one batch is prepared and sent while another is in
the database. The promises stay those of one writer, because a batch waits before its
first call until every earlier running batch that posts to a one-lane account it posts to
is settled: on such an account (every account with a balance limit is one) limits are
checked, and sequence numbers and running balances given, in queue order. An account in
several lanes takes no order (each connection writes its own lane), and neither do batches
with no account in common. An entry whose key a running batch holds waits (with every
entry queued after it) until that batch is settled, so the same key in two writers is one
entry and a replay. Codes are resolved to ids as entries name them (one look-up per code
not seen before) and the accounts in several lanes are read every `_LANED_EVERY_S`
seconds. The cost: each batch is a call of its own (its fixed server cost is paid once a
batch, so a split burst costs more CPU), which pays off only while the database and the
process have CPU to spare; on a saturated 2-core machine one writer was faster
(bench/submit_bench.py --writers N).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger import fastpath
from ledger.engine import is_retryable
from ledger.entries import Draft, load_entries, post_each
from ledger.errors import CoalescerClosed, LedgerError, SubmitOutcomeUnknown, SubmitQueueFull
from ledger.ids import new_entry_id_texts
from ledger.schema import accounts
from ledger.types import EntryRequest, JournalEntry

log = structlog.get_logger("ledger.coalescer")

#: a batch is split among free writers only into parts of at least this many entries
SPLIT_FLOOR = 8
#: accounts' ids by code a coalescer remembers
_CODES_KEPT = 100_000
#: how often (seconds) a coalescer reads again which accounts are in several lanes
_LANED_EVERY_S = 300
_LANED = "SELECT id FROM accounts WHERE lanes > 1"
_IDS_OF = "SELECT code, id FROM accounts WHERE code = ANY($1::text[])"

Outcome = JournalEntry | BaseException


@dataclass(eq=False)
class _Batch:
    """What one writer posts, and what later batches wait for to keep the queue's order."""

    entries: list[_Queued]
    #: the one-lane accounts (ids) its entries post to, once known; None: not known, so a
    #: later batch waits for it whatever it touches
    rows: frozenset[int] | None = None
    #: set once `rows` is known (or given up on)
    known: asyncio.Event = field(default_factory=asyncio.Event)
    #: set once its entries are settled: nothing of it holds a lock or is still to be written
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class _Queued:
    request: EntryRequest
    future: asyncio.Future[JournalEntry]
    #: the entry id an earlier attempt wrote this request under, when that attempt's COMMIT
    #: failed and may nonetheless have happened (a replay of this id is then our own post)
    maybe_posted: uuid.UUID | None = field(default=None)
    #: PostgreSQL: the id its entry gets, the same in every call and attempt (text)
    entry_id: str | None = field(default=None)


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc` says the connection to the database broke (the server may or may not
    have done what was last sent)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, ConnectionError | TimeoutError | OSError):
        return True
    sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    # 08: connection exception; 57P01-57P03: the server shut down or is starting
    if sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}:
        return True
    return type(orig).__name__ in {"ConnectionDoesNotExistError", "InterfaceError",
                                   "InternalClientError"}


def _dialect(engine: AsyncEngine) -> str | None:
    return getattr(getattr(engine, "dialect", None), "name", None)


class Coalescer:
    """Coalesces this process's callers' entries into few transactions (see the module)."""

    def __init__(self, engine: AsyncEngine, *, max_batch: int = 500, max_wait_us: int = 2_000,
                 max_queue: int = 10_000, attempts: int = 5, base_delay_ms: int = 10,
                 writers: int = 1) -> None:
        if max_batch < 1 or max_queue < 1 or attempts < 1 or max_wait_us < 0 or writers < 1:
            raise ValueError("max_batch, max_queue, attempts and writers must be at least 1, "
                             "max_wait_us not negative")
        self.engine = engine
        self.writers = writers
        self.max_batch = max_batch
        self.max_wait_us = max_wait_us
        self.max_queue = max_queue
        self.attempts = attempts
        self.base_delay_ms = base_delay_ms
        self._queue: deque[_Queued] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._last_batch = 1
        self._enough: asyncio.Event | None = None
        #: the batches being posted, in the order they were taken from the queue
        self._running: list[_Batch] = []
        self._tasks: set[asyncio.Task[None]] = set()
        #: set whenever a batch is settled (a writer is free, its keys are no longer in flight)
        self._settled = asyncio.Event()
        #: idempotency keys of the entries being posted, and how many of each
        self._in_flight: dict[str, int] = {}
        #: accounts' ids by code, as far as seen (neither ever changes)
        self._ids: dict[str, int] = {}
        #: the accounts in more than one lane (lanes are added, never removed), and when
        #: they were read (monotonic ns; None: never)
        self._laned: frozenset[int] = frozenset()
        self._laned_at: int | None = None
        #: batches committed and entries they held (for tests and metrics)
        self.batches = 0
        self.entries = 0

    @property
    def queued(self) -> int:
        """Entries waiting for the writer (not counting the batch it is posting)."""
        return len(self._queue)

    def start(self) -> None:
        """Take entries (a new coalescer already does; this reopens a closed one)."""
        self._closed = False

    async def close(self) -> None:
        """Take no more entries, and return once every queued one is settled."""
        self._closed = True
        if self._writer is not None:
            await asyncio.shield(self._writer)
        while self._tasks:
            await asyncio.shield(asyncio.gather(*self._tasks, return_exceptions=True))

    async def __aenter__(self) -> Coalescer:
        self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def submit(self, request: EntryRequest) -> JournalEntry:
        """Queue `request` and return its entry once its transaction has committed (a
        replay if its key was already posted); raise its refusal otherwise."""
        if self._closed:
            raise CoalescerClosed()
        if len(self._queue) >= self.max_queue:
            raise SubmitQueueFull(self.max_queue)
        future: asyncio.Future[JournalEntry] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(request, future))
        if self._enough is not None and len(self._queue) >= self._last_batch:
            self._enough.set()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name="ledger-coalescer")
        # a cancelled caller cancels its future, not its entry: the entry stays queued and
        # is posted exactly once, and the writer answers nobody for it
        return await future

    # -- the writer ---------------------------------------------------------------------

    async def _write(self) -> None:
        """Take what is queued, batch after batch, each to a free writer; end when the queue
        is empty (the next `submit` starts a new one). A batch stops before an entry whose
        key a running batch holds: that entry waits until the running one is settled."""
        try:
            while self._queue:
                while len(self._running) >= self.writers:
                    await self._wait_settled()
                await self._gather()
                batch = self._take()
                if batch is None:  # the first entry's key is being posted
                    await self._wait_settled()
                    continue
                self._last_batch = len(batch.entries)
                earlier = [b for b in self._running if not b.done.is_set()]
                self._running.append(batch)
                for queued in batch.entries:
                    key = queued.request.idempotency_key
                    self._in_flight[key] = self._in_flight.get(key, 0) + 1
                task = asyncio.create_task(self._post(batch, earlier), name="ledger-writer")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                # let the writer start, and callers just answered queue their next entries
                await asyncio.sleep(0)
        except BaseException:  # cancelled (the loop is stopping), or a bug
            while self._queue:
                queued = self._queue.popleft()
                if not queued.future.done():
                    queued.future.set_exception(CoalescerClosed())
            raise
        finally:
            self._writer = None

    async def _wait_settled(self) -> None:
        self._settled.clear()
        await self._settled.wait()

    def _take(self) -> _Batch | None:
        """The next batch from the head of the queue: all of it up to `max_batch`, or, with
        writers free beside this one, a share of it (at least `SPLIT_FLOOR` entries), so
        that one batch is written while the next is prepared; never an entry whose key a
        running batch holds, nor any after it."""
        n = min(self.max_batch, len(self._queue))
        free = self.writers - len(self._running)
        if free > 1 and n > SPLIT_FLOOR:
            share = max(SPLIT_FLOOR, -(-n // free))
            if share < n and not self._would_wait(share, n):
                n = share
        entries: list[_Queued] = []
        for queued in self._queue:
            if len(entries) == n or queued.request.idempotency_key in self._in_flight:
                break
            entries.append(queued)
        if not entries:
            return None
        for _ in entries:
            self._queue.popleft()
        return _Batch(entries)

    def _would_wait(self, share: int, n: int) -> bool:
        """Whether the queue's first `share` entries and the next ones up to `n` post to a
        one-lane account in common (as far as the accounts seen so far tell): then the
        second part would wait for the first, and splitting only costs a call."""
        first: set[int] = set()
        rest: set[int] = set()
        for k, queued in enumerate(itertools.islice(self._queue, n)):
            rows = first if k < share else rest
            for posting in queued.request.postings:
                ref = posting.account
                account_id = ref if isinstance(ref, int) else self._ids.get(ref)
                if account_id is not None and account_id not in self._laned:
                    rows.add(account_id)
        return not first.isdisjoint(rest)

    async def _post(self, batch: _Batch, earlier: list[_Batch]) -> None:
        """One writer: wait for the earlier batches it must follow, post, answer."""
        try:
            if self.writers > 1:
                await self._follow(batch, earlier)
            outcomes = await self._settle(batch.entries)
            if self.writers > 1:
                self._learn(outcomes)
            for queued, outcome in zip(batch.entries, outcomes, strict=True):
                if queued.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    queued.future.set_exception(outcome)
                else:
                    queued.future.set_result(outcome)
        except BaseException as exc:  # cancelled (the loop is stopping), or a bug
            for queued in batch.entries:
                if not queued.future.done():
                    queued.future.set_exception(SubmitOutcomeUnknown(
                        queued.request.idempotency_key, f"the writer stopped: {exc!r}"))
            if not isinstance(exc, Exception):
                raise
            log.error("ledger.coalescer.writer_failed", error=repr(exc))
        finally:
            batch.known.set()
            batch.done.set()
            self._running.remove(batch)
            for queued in batch.entries:
                key = queued.request.idempotency_key
                left = self._in_flight.pop(key) - 1
                if left:
                    self._in_flight[key] = left
            self._settled.set()

    async def _follow(self, batch: _Batch, earlier: list[_Batch]) -> None:
        """Keep the queue's order where it decides an outcome: wait until every earlier
        running batch that posts to a one-lane account this one posts to is settled (a
        limit is checked, and a sequence number and running balance given, in queue
        order). Accounts in several lanes take no order: each writer posts to its own."""
        try:
            batch.rows = await self._one_lane_rows(batch.entries)
        except Exception as exc:  # not known: follow every earlier batch
            log.warning("ledger.coalescer.accounts_unknown", error=repr(exc))
        finally:
            batch.known.set()
        for before in earlier:
            if before.done.is_set():
                continue
            await before.known.wait()
            if batch.rows is None or before.rows is None or not batch.rows.isdisjoint(
                    before.rows):
                await before.done.wait()

    async def _one_lane_rows(self, entries: list[_Queued]) -> frozenset[int]:
        """The ids of the one-lane accounts the entries post to (an account that does not
        exist is none). Codes not seen before are looked up, and the accounts in several
        lanes are read again every `_LANED_EVERY_S` seconds (one with lanes added since
        is taken for one-lane meanwhile: a needless wait, never a lost order)."""
        now = time.monotonic_ns()
        stale = self._laned_at is None or now - self._laned_at > _LANED_EVERY_S * 10**9
        codes = {posting.account for queued in entries for posting in queued.request.postings
                 if isinstance(posting.account, str) and posting.account not in self._ids}
        if codes or stale:
            async with self.engine.connect() as conn:
                if stale:
                    laned = await self._fetch(conn, _LANED, sa.select(accounts.c.id).where(
                        accounts.c.lanes > 1))
                    self._laned, self._laned_at = frozenset(row[0] for row in laned), now
                if codes:
                    found = await self._fetch(conn, _IDS_OF, sa.select(
                        accounts.c.code, accounts.c.id).where(accounts.c.code.in_(codes)),
                        list(codes))
                    if len(self._ids) > _CODES_KEPT:
                        self._ids.clear()
                    self._ids.update((code, account_id) for code, account_id in found)
        out = set()
        for queued in entries:
            for posting in queued.request.postings:
                ref = posting.account
                account_id = ref if isinstance(ref, int) else self._ids.get(ref)
                if account_id is not None and account_id not in self._laned:
                    out.add(account_id)
        return frozenset(out)

    async def _fetch(self, conn: AsyncConnection, sql: str, query: sa.Select[Any],
                     *args: Any) -> list[tuple[Any, ...]]:
        """Rows of a look-up: on PostgreSQL one statement outside a transaction block (one
        round trip), elsewhere through SQLAlchemy."""
        if self._one_round_trip():
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            return [tuple(row) for row in await raw.fetch(sql, *args)]
        return [tuple(row) for row in await conn.execute(query)]

    def _learn(self, outcomes: list[Outcome]) -> None:
        """Accounts' ids by code, from the postings just written or replayed."""
        if len(self._ids) > _CODES_KEPT:
            self._ids.clear()
        for outcome in outcomes:
            if isinstance(outcome, JournalEntry):
                for posting in outcome.postings:
                    self._ids[posting.account_code] = posting.account_id

    async def _gather(self) -> None:
        """While callers are many, wait (up to `max_wait_us`) until as many entries are queued
        as the last batch held: full batches under load, no wait when idle."""
        target = min(self.max_batch, self._last_batch)
        if self.max_wait_us <= 0 or len(self._queue) >= target:
            return
        self._enough = asyncio.Event()
        try:
            await asyncio.wait_for(self._enough.wait(), self.max_wait_us / 1_000_000)
        except TimeoutError:
            pass
        finally:
            self._enough = None

    def _one_round_trip(self) -> bool:
        """PostgreSQL: each call of the write function is a transaction of its own."""
        return _dialect(self.engine) == "postgresql"

    async def _settle(self, batch: list[_Queued]) -> list[Outcome]:
        """Each entry's outcome, once known: committed, refused, or not acknowledged."""
        failure: BaseException | None = None
        one_round_trip = self._one_round_trip()
        for attempt in range(1, self.attempts + 1):
            committing = False
            written: list[tuple[_Queued, uuid.UUID]] = []
            try:
                if one_round_trip:  # (each call answers after its own COMMIT)
                    outcomes = await self._post_committed(batch)
                else:
                    async with self.engine.begin() as conn:
                        outcomes = await post_each(conn, [q.request for q in batch])
                        written = [(q, o.id) for q, o in zip(batch, outcomes, strict=True)
                                   if isinstance(o, JournalEntry) and not o.replayed]
                        committing = True
                # COMMIT returned: now, and only now, the entries are the callers'
                self.batches += 1
                self.entries += sum(1 for o in outcomes
                                    if isinstance(o, JournalEntry) and not o.replayed)
                return [self._own(q, o) for q, o in zip(batch, outcomes, strict=True)]
            except Exception as exc:
                failure = exc
                lost = connection_lost(exc)
                if one_round_trip and lost:
                    # the call in flight may have committed, under the ids it was sent with
                    for queued in batch:
                        if queued.entry_id is not None:
                            queued.maybe_posted = uuid.UUID(queued.entry_id)
                elif committing and not one_round_trip:
                    # COMMIT failed: it may have happened all the same
                    for queued, entry_id in written:
                        queued.maybe_posted = entry_id
                elif not (is_retryable(exc) or lost):
                    # neither a refusal nor a lost connection, before COMMIT: nothing was
                    # written; find the entry it belongs to, so it fails that entry alone
                    if len(batch) > 1:
                        half = len(batch) // 2
                        return [*await self._settle(batch[:half]),
                                *await self._settle(batch[half:])]
                    return [self._unsettled(batch[0], exc)]
                log.warning("ledger.coalescer.batch_failed", attempt=attempt,
                            entries=len(batch), at_commit=committing or (one_round_trip and lost),
                            error=repr(exc))
                if attempt < self.attempts:
                    delay_ms = self.base_delay_ms * 2 ** (attempt - 1)
                    await asyncio.sleep((delay_ms + random.randrange(delay_ms + 1)) / 1000)
        assert failure is not None
        return [self._unsettled(q, failure) for q in batch]

    async def _post_committed(self, batch: list[_Queued]) -> list[JournalEntry | LedgerError]:
        """PostgreSQL, one round trip a batch: `post_each`'s outcomes, each call of the write
        function outside any transaction block, so that it commits before it answers (no
        BEGIN and no COMMIT to wait for). A refusal wrote nothing and the rest go again,
        as in one transaction; each entry keeps its id from call to call, so a call whose
        answer was lost is known by its ids when the retry finds them."""
        out: list[JournalEntry | LedgerError | None] = [None] * len(batch)
        drafts: list[Draft] = []
        at: list[int] = []  # each draft's place in the batch
        for n, queued in enumerate(batch):
            try:
                drafts.append(Draft.from_request(queued.request))
            except LedgerError as exc:
                out[n] = exc
                continue
            at.append(n)
        if drafts:
            fresh = [batch[n] for n in at if batch[n].entry_id is None]
            for queued, entry_id in zip(fresh, new_entry_id_texts(len(fresh)), strict=True):
                queued.entry_id = entry_id
            async with self.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                written = await fastpath.post_each(
                    raw, drafts, [batch[n].entry_id or "" for n in at])
                for n, x in zip(at, written, strict=True):
                    if isinstance(x, JournalEntry):  # committed: its own if a retry finds it
                        batch[n].maybe_posted = x.id
                replays = [x for x in written if isinstance(x, uuid.UUID)]
                loaded = {e.id: e for e in await load_entries(conn, replays, replayed=True)}
            for n, x in zip(at, written, strict=True):
                out[n] = loaded[x] if isinstance(x, uuid.UUID) else x
        return [x for x in out if x is not None]

    @staticmethod
    def _own(queued: _Queued, outcome: JournalEntry | LedgerError) -> Outcome:
        """A replay of the very entry an earlier attempt of this batch wrote is this
        caller's own post, not a replay."""
        if (isinstance(outcome, JournalEntry) and outcome.replayed
                and outcome.id == queued.maybe_posted):
            return dataclasses.replace(outcome, replayed=False)
        return outcome

    @staticmethod
    def _unsettled(queued: _Queued, failure: BaseException) -> BaseException:
        """The error for an entry no attempt settled: not acknowledged either way. Only an
        entry an attempt wrote before its COMMIT failed may have been posted."""
        if queued.maybe_posted is not None:
            return SubmitOutcomeUnknown(queued.request.idempotency_key, repr(failure))
        return failure
