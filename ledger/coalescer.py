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
`post` in the caller's transaction. Several processes each run their own coalescer against the same
database; the ledger's row locks order them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections import deque
from dataclasses import dataclass, field

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger import fastpath
from ledger.engine import is_retryable
from ledger.entries import Draft, load_entries, post_each
from ledger.errors import CoalescerClosed, LedgerError, SubmitOutcomeUnknown, SubmitQueueFull
from ledger.ids import new_entry_id_texts
from ledger.types import EntryRequest, JournalEntry

log = structlog.get_logger("ledger.coalescer")

Outcome = JournalEntry | BaseException


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


class Coalescer:
    """Coalesces this process's callers' entries into few transactions (see the module)."""

    def __init__(self, engine: AsyncEngine, *, max_batch: int = 500, max_wait_us: int = 2_000,
                 max_queue: int = 10_000, attempts: int = 5, base_delay_ms: int = 10) -> None:
        if max_batch < 1 or max_queue < 1 or attempts < 1 or max_wait_us < 0:
            raise ValueError("max_batch, max_queue and attempts must be at least 1, "
                             "max_wait_us not negative")
        self.engine = engine
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
        """Post what is queued, batch after batch; end when the queue is empty (the next
        `submit` starts a new writer)."""
        batch: list[_Queued] = []
        try:
            while self._queue:
                await self._gather()
                batch = [self._queue.popleft()
                         for _ in range(min(self.max_batch, len(self._queue)))]
                self._last_batch = len(batch)
                for queued, outcome in zip(batch, await self._settle(batch), strict=True):
                    if queued.future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        queued.future.set_exception(outcome)
                    else:
                        queued.future.set_result(outcome)
                batch = []
                # let the callers just answered run, so their next entries join the next batch
                await asyncio.sleep(0)
        except BaseException as exc:  # cancelled (the loop is stopping), or a bug
            for queued in batch:
                if not queued.future.done():
                    queued.future.set_exception(SubmitOutcomeUnknown(
                        queued.request.idempotency_key, f"the writer stopped: {exc!r}"))
            while self._queue:
                queued = self._queue.popleft()
                if not queued.future.done():
                    queued.future.set_exception(CoalescerClosed())
            raise
        finally:
            self._writer = None

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
        dialect = getattr(self.engine, "dialect", None)
        return getattr(dialect, "name", None) == "postgresql"

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
