"""Property: every write path of the ledger gives the same random requests the same
outcomes and leaves the same books, down to the bytes it hashed.

The paths (each writes into books of its own: an SQLite file or a PostgreSQL schema):

- ``post``: `ledger.post`, one request per transaction, in the caller's transaction.
  SQLite: the Python write path (`entries.write_drafts`, raising the first refusal).
  PostgreSQL: the one-entry server function `ledger_post_entry`.
- ``post_many``: `ledger.post_many`, all or nothing: the whole remaining sequence in one
  transaction; on a refusal, the longest prefix that posts is found by bisection (probes
  rolled back), committed, and the next request is the refused one. PostgreSQL: the batch
  function `ledger_post_entries` (`ledger_post_entry` for a prefix of one); SQLite: the
  Python path over the batch.
- ``post_each``: `ledger.post_each`, the whole sequence in one call, each request with its
  own outcome. PostgreSQL: `ledger_post_entries`, called again without each refused
  request; SQLite: the Python path that undoes a refused entry's effect in memory.
- ``submit``: a `ledger.Coalescer` (one writer task, batches of `max_batch`), every
  request submitted at once; it posts each batch as `post_each` does (PostgreSQL: the
  batch function; SQLite: the Python path) and answers after COMMIT.
- PostgreSQL only, ``python.post`` and ``python.post_each``: the same calls with the
  server functions out of the way (`ledger.store.driver` answering None, as it does on
  SQLite), i.e. the Python write path running against PostgreSQL — the path `reverse`
  and the holds take there. On SQLite these two are the ``post`` and ``post_each`` paths
  already, and there is no server function to step around, so they are not listed; the
  server-function paths exist only on PostgreSQL (SQLite keeps the Python write path), so
  on SQLite ``post``/``post_many``/``post_each`` run the Python path's three shapes. The
  PostgreSQL run is never skipped under CI=true: `make_engine`'s rule (no PostgreSQL is a
  failure there) applies to it, and conftest fails a CI run with any skipped PostgreSQL
  test.

What must agree, request by request and book by book:

- each request's outcome: posted, replayed or refused; a refusal's error class and message;
  an entry's key, kind, description, value date, reference, metadata and postings (account,
  amount, currency, sequence number, running balance);
- the books: per account and lane, the postings in sequence order with their entries' keys
  and leg numbers and the running balances; the balance rows; every entry's request hash
  (account ids, amounts and currencies as hashed: it covers no id or time, so it is
  compared as stored).

An entry's hash covers its id and booking time, which no write path lets the caller fix
(PostgreSQL books under its own clock and the ids are drawn at random), and each posting's
hash chains over its entry's. So per path the test first proves that every stored hash is
`ledger.chain`'s function of the stored fields (the bytes the writer hashed are the ones
`chain` builds: the request hash from the stored legs, the entry hash, each posting's link
and each lane's head), then rebuilds every entry hash and every chain with `chain`'s own
functions from the same fields but a fixed id (derived from the idempotency key) and a
fixed booking time (and a fixed value date where the entry took its booking date), and
compares those rebuilt hashes and chain heads across paths.

Lanes: which lane a writer takes is the session's (PostgreSQL: `ledger_lane_slot()`; SQLite:
a random draw), so two paths would put the same postings in different lanes, with other
sequence numbers and running balances. The test fixes the slot (the session setting
`paycore.ledger_lane_slot` on PostgreSQL, the draw on SQLite) at 5, so accounts of 2, 3
and 4 lanes write lanes 1, 2 and 1 — not lane 0 — and checks they did.

Each example opens the same accounts, in the same order, in every path's books (so their
ids agree), under a prefix of its own. At the end `ledger.verify` runs on every set of
books. Hypothesis does not run async tests: one event loop (`asyncio.Runner`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
from ledger import AccountSpec, AccountType, BalanceLimit, EntryRequest, Posting, chain, fastpath, store
from ledger.schema import LANE_STRIDE, account_balances, accounts, journal_entries, postings
from paycore import db as paycore_db
from tests.conftest import CI, PG_URL, _plain_dsn, drop_schema, pg_unreachable_reason

T = TypeVar("T")

#: the lane slot every writer of this test takes (see the module's docstring)
SLOT = 5
#: a value date no entry takes from its booking time while this test can run
VALUE_DATE = dt.date(2024, 2, 29)
#: what the rebuilt hashes put in place of each entry's id, booking time, booked value date
ID_SPACE = uuid.UUID("6f0b9a5e-31a4-4c1e-9d65-0c2ad3a8d1e7")
NORMAL_BOOKED_AT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
NORMAL_VALUE_DATE = dt.date(2000, 1, 1)

EXPONENT = {"CNY": 2, "USD": 2, "JPY": 0}

#: (suffix, type, currency, limit, lanes), opened in this order (limited accounts' ids fall
#: between and around the others', so "the first account in id order" is tested both ways)
ACCOUNTS = [
    ("hot.clearing", AccountType.ASSET, "CNY", None, 2),
    ("wallet.1", AccountType.LIABILITY, "CNY", BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS, 1),
    ("cash", AccountType.ASSET, "CNY", None, 1),
    ("hot.fees", AccountType.INCOME, "CNY", None, 3),
    ("bank", AccountType.ASSET, "CNY", BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS, 1),
    ("wallet.2", AccountType.LIABILITY, "CNY", BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS, 1),
    ("usd.cash", AccountType.ASSET, "USD", None, 1),
    ("hot.usd", AccountType.INCOME, "USD", None, 4),
    ("usd.wallet", AccountType.LIABILITY, "USD", BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS, 1),
    ("jpy.cash", AccountType.ASSET, "JPY", None, 1),
    ("hot.jpy", AccountType.INCOME, "JPY", None, 2),
    ("closed", AccountType.ASSET, "CNY", None, 1),  # closed as soon as opened
]

#: a mix that reaches every outcome, the same key twice in one batch with the same request
#: (named by ids, then by codes) and with another, and a refused key posted later
EVERY_OUTCOME: list[Op] = [
    ("fund", 1, 500, 0, 0),  # posted
    ("repeat", 1, 1, 0, 1),  # k0 again, its accounts named by id: replayed
    ("conflict", 1, 1, 0, 0),  # k0 with another description: IdempotencyConflict
    ("spend", 1, 600, 1, 0),  # wallet 1 holds 5.00: BalanceLimitExceeded
    ("unbalanced", 1, 5, 2, 0),  # UnbalancedEntry
    ("mismatch", 1, 5, 3, 0),  # CNY to a USD account: CurrencyMismatch
    ("unknown", 1, 5, 4, 0),  # UnknownAccount
    ("capture", 2, 300, 5, 63),  # three legs, two of them lane accounts
    ("fx", 1, 40, 6, 5),  # two currencies, lane accounts in both
    ("payout", 2, 100, 7, 0),  # the bank's limit: BalanceLimitExceeded
    ("deposit", 1, 200, 8, 8),
    ("payout", 2, 100, 7, 2),  # k7 again, now covered: posted
    ("repeat", 1, 1, 0, 3),  # the refused spend (k1) again: refused again
    ("unknown.id", 1, 7, 9, 0),  # UnknownAccount by id
    ("closed", 1, 7, 9, 0),  # AccountClosed
    ("huge", 1, 7, 9, 0),  # InvalidAmount
    ("huge.id", 1, 7, 9, 0),  # InvalidRequest
    ("vast", 1, 1, 10, 0),  # 2**62 + 1 fen to cash: posted
    ("vast", 1, 2, 11, 3),  # and again: past cash's 64-bit debits, BalanceOutOfRange
    ("fund", 1, 9, 12, 0),  # cash's debits still take an amount that fits: posted
    ("vast.credit", 2, 3, 13, 0),  # the USD wallet's credits: posted, then
    ("vast.credit", 2, 4, 14, 1),  # BalanceOutOfRange
]

SQLITE_PATHS = ["post", "post_many", "post_each", "submit"]
PG_PATHS = [*SQLITE_PATHS, "python.post", "python.post_each"]

#: one request: (what, wallet 1 or 2, amount, key number, variant bits)
Op = tuple[str, int, int, int, int]
WHAT = ["fund", "fund", "spend", "spend", "capture", "capture", "deposit", "payout", "split",
        "fx", "usd.fund", "usd.spend", "jpy", "unbalanced", "unbalanced.fx", "mismatch",
        "mismatch.lane", "unknown", "unknown.id", "closed", "huge", "huge.id", "repeat",
        "repeat", "conflict", "vast", "vast.credit"]
ops = st.tuples(st.sampled_from(WHAT), st.integers(1, 2), st.integers(1, 600),
                st.integers(0, 9), st.integers(0, 63))

#: calls of the server functions, by function (a server path must have used them)
SERVER_CALLS: Counter[str] = Counter()


def money(units: int, currency: str) -> Money:
    return Money(Decimal(units).scaleb(-EXPONENT[currency]), currency)


@dataclass
class Chart:
    """One example's accounts: code -> id, the same in every path's books."""

    prefix: str
    ids: dict[str, int]

    def ref(self, suffix: str, by_id: bool) -> ledger.AccountRef:
        code = f"{self.prefix}.{suffix}"
        return self.ids[code] if by_id else code


def build(chart: Chart, mix: Sequence[Op]) -> list[EntryRequest]:
    """The requests of a mix, on `chart`'s accounts and the keys of its prefix."""
    out: list[EntryRequest] = []
    for what, wallet, units, key_no, variant in mix:
        if what in {"repeat", "conflict"}:
            if not out:
                continue
            earlier = out[(key_no * 7 + variant) % len(out)]
            if what == "repeat":  # the same request, its accounts named the other way
                out.append(_renamed(chart, earlier) if variant & 1 else earlier)
            else:  # the same key, another request
                out.append(EntryRequest(earlier.idempotency_key, earlier.kind,
                                        earlier.postings, effective_date=earlier.effective_date,
                                        description=earlier.description + " (again)",
                                        external_ref=earlier.external_ref,
                                        metadata=earlier.metadata))
            continue

        legs = _legs(chart, what, f"wallet.{wallet}", units, key_no, variant)
        out.append(EntryRequest(
            f"{chart.prefix}:k{key_no}", f"test.{what}", legs,
            effective_date=VALUE_DATE if variant & 4 else None,
            description=["", "café ✓ \"quoted\" \\ back\nslash"][variant >> 3 & 1],
            external_ref=f"ref/{key_no}" if variant & 16 else None,
            metadata=({"order": f"o{key_no}", "ünï": [1, "✓", None], "a": {"z": 2, "b": True}}
                      if variant & 32 else {}),
        ))
    return out


def _legs(chart: Chart, what: str, w: str, units: int, key_no: int, variant: int,
          ) -> list[Posting]:
    """The postings of one request of kind `what` (`w`: the wallet it uses)."""

    def a(suffix: str, leg: int) -> ledger.AccountRef:
        # variant bits 0 and 1: legs named by id (even legs, odd legs)
        return chart.ref(suffix, bool(variant >> (leg % 2) & 1))

    def cny(n: int) -> Money:
        return money(n, "CNY")

    def usd(n: int) -> Money:
        return money(n, "USD")

    fee = units // 10
    every: dict[str, list[Posting]] = {
        "fund": [Posting(a("cash", 0), debit=cny(units)),
                 Posting(a(w, 1), credit=cny(units))],
        "spend": [Posting(a(w, 0), debit=cny(units)),
                  Posting(a("cash", 1), credit=cny(units))],
        "capture": [Posting(a("hot.clearing", 0), debit=cny(units)),
                    Posting(a(w, 1), credit=cny(units - fee)),
                    *([Posting(a("hot.fees", 2), credit=cny(fee))] if fee else [])],
        "deposit": [Posting(a("bank", 0), debit=cny(units)),
                    Posting(a("hot.clearing", 1), credit=cny(units))],
        # two limited accounts: wallet 1's id is below the bank's, wallet 2's above
        "payout": [Posting(a(w, 0), debit=cny(units)),
                   Posting(a("bank", 1), credit=cny(units))],
        # one account twice in an entry
        "split": [Posting(a("hot.clearing", 0), debit=cny(units)),
                  Posting(a("hot.fees", 1), credit=cny(units + fee)),
                  Posting(a("hot.clearing", 2), debit=cny(fee + 1)),
                  Posting(a("cash", 3), credit=cny(1))],
        # balanced per currency, two currencies, lane accounts in both
        "fx": [Posting(a("usd.cash", 0), debit=usd(units)),
               Posting(a("hot.usd", 1), credit=usd(units)),
               Posting(a("cash", 2), debit=cny(units * 7 + fee)),
               Posting(a("hot.fees", 3), credit=cny(units * 7 + fee))],
        "usd.fund": [Posting(a("usd.cash", 0), debit=usd(units)),
                     Posting(a("usd.wallet", 1), credit=usd(units))],
        "usd.spend": [Posting(a("usd.wallet", 0), debit=usd(units)),
                      Posting(a("hot.usd", 1), credit=usd(units))],
        "jpy": [Posting(a("jpy.cash", 0), debit=money(units, "JPY")),
                Posting(a("hot.jpy", 1), credit=money(units, "JPY"))],
        "unbalanced": [Posting(a("cash", 0), debit=cny(units + 1)),
                       Posting(a(w, 1), credit=cny(units))],
        "unbalanced.fx": [Posting(a("usd.cash", 0), debit=usd(units)),
                          Posting(a("hot.usd", 1), credit=usd(units)),
                          Posting(a("cash", 2), debit=cny(units)),
                          Posting(a("hot.fees", 3), credit=cny(units + 1))],
        "mismatch": [Posting(a("usd.cash", 0), debit=cny(units)),
                     Posting(a("cash", 1), credit=cny(units))],
        "mismatch.lane": [Posting(a("usd.cash", 0), debit=usd(units)),
                          Posting(a("hot.clearing", 1), credit=usd(units))],
        "unknown": [Posting(a("cash", 0), debit=cny(units)),
                    Posting(f"{chart.prefix}.nowhere", credit=cny(units))],
        "unknown.id": [Posting(a("hot.fees", 0), debit=cny(units)),
                       Posting(10**12 + key_no, credit=cny(units))],
        "closed": [Posting(a("cash", 0), debit=cny(units)),
                   Posting(a("closed", 1), credit=cny(units))],
        # past the books' 64-bit integers: an amount, an account id
        "huge": [Posting(a("cash", 0), debit=cny(2**63 + units)),
                 Posting(a("hot.fees", 1), credit=cny(2**63 + units))],
        "huge.id": [Posting(a("cash", 0), debit=cny(units)),
                    Posting(2**63 + key_no, credit=cny(units))],
        # each amount in range, but twice is past a lane's 64-bit running sum: cash's
        # debits, or the USD wallet's credits (BalanceOutOfRange from the second on)
        "vast": [Posting(a("cash", 0), debit=cny(2**62 + units)),
                 Posting(a("hot.fees", 1), credit=cny(2**62 + units))],
        "vast.credit": [Posting(a("usd.wallet", 0), credit=usd(2**62 + units)),
                        Posting(a("hot.usd", 1), debit=usd(2**62 + units))],
    }
    return every[what]


def _renamed(chart: Chart, request: EntryRequest) -> EntryRequest:
    """The request with every account named the other way (code <-> id): the same request."""
    codes = {v: k for k, v in chart.ids.items()}

    def other(ref: ledger.AccountRef) -> ledger.AccountRef:
        if isinstance(ref, int):
            return codes.get(ref, ref)
        return chart.ids.get(ref, ref)

    return EntryRequest(request.idempotency_key, request.kind,
                        [Posting(other(p.account), debit=p.debit, credit=p.credit)
                         for p in request.postings],
                        effective_date=request.effective_date, description=request.description,
                        external_ref=request.external_ref, metadata=request.metadata)


# --- the write paths -------------------------------------------------------------------

Outcome = ledger.JournalEntry | ledger.LedgerError


async def by_post(engine: AsyncEngine, requests: Sequence[EntryRequest], _: int) -> list[Outcome]:
    out: list[Outcome] = []
    for request in requests:
        try:
            async with engine.begin() as conn:
                out.append(await ledger.post(conn, request))
        except ledger.LedgerError as exc:
            out.append(exc)
    return out


class _Probe(Exception):
    """Rolls back a probe of `post_many` that posted."""


async def _many(engine: AsyncEngine, requests: Sequence[EntryRequest], *, keep: bool,
                ) -> list[ledger.JournalEntry] | ledger.LedgerError:
    got: list[ledger.JournalEntry] = []
    try:
        async with engine.begin() as conn:
            got = await ledger.post_many(conn, requests)
            if not keep:
                raise _Probe
    except ledger.LedgerError as exc:
        return exc
    except _Probe:
        pass
    return got


async def by_post_many(engine: AsyncEngine, requests: Sequence[EntryRequest], _: int,
                       ) -> list[Outcome]:
    """All or nothing: the rest in one call; on a refusal, the longest prefix that posts
    (bisection: a prefix refuses iff it holds the first refused request) is committed and
    the request after it takes the refusal."""
    out: list[Outcome | None] = [None] * len(requests)
    at = 0
    while at < len(requests):
        rest = requests[at:]
        whole = await _many(engine, rest, keep=True)
        if not isinstance(whole, ledger.LedgerError):
            out[at:] = whole
            break
        lo, hi, refusal = 0, len(rest), whole  # rest[:lo] posts, rest[:hi] refuses
        while hi - lo > 1:
            mid = (lo + hi) // 2
            probe = await _many(engine, rest[:mid], keep=False)
            if isinstance(probe, ledger.LedgerError):
                hi, refusal = mid, probe
            else:
                lo = mid
        if lo:
            posted = await _many(engine, rest[:lo], keep=True)
            assert not isinstance(posted, ledger.LedgerError), (posted, lo)
            out[at:at + lo] = posted
        out[at + lo] = refusal
        at += hi
    assert all(x is not None for x in out)
    return [x for x in out if x is not None]


async def by_post_each(engine: AsyncEngine, requests: Sequence[EntryRequest], _: int,
                       ) -> list[Outcome]:
    async with engine.begin() as conn:
        return await ledger.post_each(conn, requests)


async def by_submit(engine: AsyncEngine, requests: Sequence[EntryRequest], max_batch: int,
                    ) -> list[Outcome]:
    # one writer (the default): with several, batches run at once and postings to an
    # account in several lanes take the order of their commits, not the queue's (the
    # coalescer keeps queue order only for one-lane accounts); with every session on one
    # lane here, that shows as other sequence numbers and running balances
    coalescer = ledger.Coalescer(engine, max_batch=max_batch, writers=1)
    try:
        got = await asyncio.gather(*(coalescer.submit(r) for r in requests),
                                   return_exceptions=True)
    finally:
        await coalescer.close()
    for x in got:  # anything but an entry or a refusal is a failure of the test
        if not isinstance(x, ledger.JournalEntry | ledger.LedgerError):
            raise x
    return [x for x in got if isinstance(x, ledger.JournalEntry | ledger.LedgerError)]


async def _no_driver(conn: Any) -> None:
    """`store.driver` as on SQLite: no server function to call."""
    return None


def python_path(write: Callable[[AsyncEngine, Sequence[EntryRequest], int],
                                Awaitable[list[Outcome]]]
                ) -> Callable[[AsyncEngine, Sequence[EntryRequest], int],
                              Awaitable[list[Outcome]]]:
    async def run(engine: AsyncEngine, requests: Sequence[EntryRequest], n: int,
                  ) -> list[Outcome]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(store, "driver", _no_driver)
            return await write(engine, requests, n)
    return run


WRITE = {
    "post": by_post, "post_many": by_post_many, "post_each": by_post_each, "submit": by_submit,
    "python.post": python_path(by_post), "python.post_each": python_path(by_post_each),
}


def count_server_calls(mp: pytest.MonkeyPatch) -> None:
    """Count the calls of PostgreSQL's write functions (every call of `ledger_post_entries`
    is built by `fastpath._batch`; every call of `ledger_post_entry` by `post_entry`)."""
    batch, one = fastpath._batch, fastpath.post_entry

    def counted_batch(*args: Any, **kwargs: Any) -> str:
        SERVER_CALLS["ledger_post_entries"] += 1
        return batch(*args, **kwargs)

    async def counted_one(*args: Any, **kwargs: Any) -> Any:
        SERVER_CALLS["ledger_post_entry"] += 1
        return await one(*args, **kwargs)

    mp.setattr(fastpath, "_batch", counted_batch)
    mp.setattr(fastpath, "post_entry", counted_one)


class FixedLane:
    """SQLite's lane draw, fixed at the slot's lane (`store._draw.randrange(lanes)`)."""

    def randrange(self, lanes: int) -> int:
        return SLOT % lanes


# --- what a path answered and stored, made comparable ----------------------------------

def value_date(effective: dt.date, booked_at: dt.datetime) -> dt.date | str:
    """An entry's value date, or 'booked' when it is its booking date (no date asked for)."""
    if effective == booked_at.astimezone(dt.UTC).date() and effective != VALUE_DATE:
        return "booked"
    return effective


def outcome(x: Outcome) -> tuple[Any, ...]:
    if isinstance(x, ledger.LedgerError):
        return ("refused", type(x).__name__, str(x))
    return ("replayed" if x.replayed else "posted", x.idempotency_key, x.kind, x.description,
            value_date(x.effective_date, x.booked_at), x.external_ref, dict(x.metadata),
            x.reverses_entry_id,
            tuple((p.account_id, p.account_code, p.amount, p.currency, p.account_seq,
                   p.balance_after) for p in x.postings))


def normal_id(key: str) -> uuid.UUID:
    return uuid.uuid5(ID_SPACE, key)


async def stored_books(engine: AsyncEngine, prefix: str,
                       answered: Sequence[Outcome]) -> dict[str, Any]:
    """The example's books as stored, each hash proved to be `chain`'s of the stored fields,
    and the hashes rebuilt with a fixed id, booking time and booked value date."""
    async with engine.connect() as conn:
        account_rows = (await conn.execute(
            sa.select(accounts.c.id, accounts.c.code, accounts.c.currency,
                      accounts.c.balance_limit, accounts.c.lanes, accounts.c.status)
            .where(accounts.c.code.like(prefix + ".%")).order_by(accounts.c.id))).all()
        ids = [r.id for r in account_rows]
        balance_rows = (await conn.execute(
            sa.select(account_balances).where(account_balances.c.account_id.in_(ids))
            .order_by(account_balances.c.account_id, account_balances.c.lane))).all()
        entry_rows = (await conn.execute(
            sa.select(journal_entries).where(journal_entries.c.idempotency_key.like(prefix + ":%"))
            .order_by(journal_entries.c.idempotency_key))).all()
        posting_rows = (await conn.execute(
            sa.select(postings).where(postings.c.entry_id.in_([e.id for e in entry_rows]))
            .order_by(postings.c.account_id, postings.c.account_seq))).all()
    assert {p.account_id for p in posting_rows} <= set(ids)

    # every entry this path answered with is the one stored under its key
    by_key = {e.idempotency_key: e for e in entry_rows}
    for x in answered:
        if isinstance(x, ledger.JournalEntry):
            e = by_key[x.idempotency_key]
            assert (x.id, x.booked_at, x.effective_date) == (e.id, e.booked_at, e.effective_date)

    legs: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for p in sorted(posting_rows, key=lambda p: (p.entry_id, p.leg_no)):
        legs[p.entry_id].append(p)
    rebuilt: dict[uuid.UUID, str] = {}
    entries_out = []
    for e in entry_rows:
        when = value_date(e.effective_date, e.booked_at)
        asked = None if when == "booked" else e.effective_date
        assert [p.leg_no for p in legs[e.id]] == list(range(1, len(legs[e.id]) + 1))
        for p in legs[e.id]:
            assert (p.booked_at, p.effective_date) == (e.booked_at, e.effective_date)
        # the bytes the writer hashed are the ones chain builds from what it stored
        assert e.request_hash == chain.request_hash(
            kind=e.kind, description=e.description, effective_date=asked,
            external_ref=e.external_ref, metadata=e.metadata,
            reverses_entry_id=e.reverses_entry_id,
            legs=[(p.account_id, p.amount, p.currency) for p in legs[e.id]]), e.idempotency_key
        fields: dict[str, Any] = dict(
            idempotency_key=e.idempotency_key, request_hash=e.request_hash, kind=e.kind,
            description=e.description, reverses_entry_id=e.reverses_entry_id,
            external_ref=e.external_ref, metadata=e.metadata)
        assert e.hash == chain.entry_hash(entry_id=e.id, effective_date=e.effective_date,
                                          booked_at=e.booked_at, **fields), e.idempotency_key
        rebuilt[e.id] = chain.entry_hash(
            entry_id=normal_id(e.idempotency_key), booked_at=NORMAL_BOOKED_AT,
            effective_date=NORMAL_VALUE_DATE if when == "booked" else e.effective_date,
            **fields)
        entries_out.append((e.idempotency_key, e.request_hash, e.kind, e.description, when,
                            e.external_ref, e.metadata, e.reverses_entry_id, rebuilt[e.id]))

    key_of = {e.id: e.idempotency_key for e in entry_rows}
    hash_of = {e.id: e.hash for e in entry_rows}
    lanes: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for p in posting_rows:
        lanes[(p.account_id, p.account_seq // LANE_STRIDE)].append(p)
    heads: dict[tuple[int, int], tuple[str, str, int, int, dt.datetime | None]] = {}
    postings_out = []
    for (account_id, lane), lane_postings in lanes.items():
        stored_link = rebuilt_link = chain.GENESIS
        net, booked = 0, None
        for n, p in enumerate(lane_postings, start=1):
            assert p.account_seq == lane * LANE_STRIDE + n
            net += p.amount
            assert p.balance_after == net
            assert booked is None or p.booked_at >= booked  # booked in sequence order
            booked = p.booked_at
            stored_link = chain.posting_hash(stored_link, hash_of[p.entry_id], account_id,
                                             p.account_seq, p.amount, p.currency, net)
            assert p.hash == stored_link, (account_id, p.account_seq)
            rebuilt_link = chain.posting_hash(rebuilt_link, rebuilt[p.entry_id], account_id,
                                              p.account_seq, p.amount, p.currency, net)
            postings_out.append((account_id, lane, p.account_seq, key_of[p.entry_id],
                                 p.leg_no, p.amount, p.currency, p.balance_after))
        heads[(account_id, lane)] = (stored_link, rebuilt_link, lane_postings[-1].account_seq,
                                     net, booked)
    balances_out = []
    lanes_of = {r.id: r.lanes for r in account_rows}
    for b in balance_rows:
        stored_link, rebuilt_link, seq, net, booked = heads.get(
            (b.account_id, b.lane), (chain.GENESIS, chain.GENESIS, b.lane * LANE_STRIDE, 0, None))
        assert (b.head_hash, b.seq, b.posted_debits - b.posted_credits, b.last_booked_at) == (
            stored_link, seq, net, booked), (b.account_id, b.lane)
        if seq != b.lane * LANE_STRIDE:  # written: the slot's lane, never another
            assert b.lane == SLOT % lanes_of[b.account_id], (b.account_id, b.lane)
        balances_out.append((b.account_id, b.lane, b.balance_limit, b.posted_debits,
                             b.posted_credits, b.pending_debits, b.pending_credits, b.seq,
                             rebuilt_link))
    return {
        "accounts": [tuple(r) for r in account_rows],
        "entries": entries_out,
        "postings": postings_out,
        "balances": balances_out,
    }


# --- the harness -----------------------------------------------------------------------

class Books:
    """One path's books (an SQLite file, or a PostgreSQL schema), migrated once."""

    def __init__(self, engine: AsyncEngine, schema: str | None) -> None:
        self.engine, self.schema = engine, schema

    @classmethod
    async def open(cls, backend: str, path: Path) -> Books:
        # Neither side waits for its commits to reach the disk: what is compared is what
        # each path wrote, not whether it survives a crash, and each example commits dozens
        # of times on a machine whose disk other test runs share.
        if backend == "sqlite":
            engine = paycore_db.create_engine(f"sqlite+aiosqlite:///{path}")

            @sa.event.listens_for(engine.sync_engine, "connect")
            def no_fsync(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA synchronous = OFF")
                cursor.close()

            await paycore_db.upgrade(engine)
            return cls(engine, None)
        schema = f"t_{uuid.uuid4().hex[:16]}"
        admin = await asyncpg.connect(_plain_dsn(PG_URL))
        try:
            await admin.execute(f"CREATE SCHEMA {schema}")
        finally:
            await admin.close()
        engine = paycore_db.create_engine(PG_URL, pool_size=4, max_overflow=4, connect_args={
            "server_settings": {"search_path": schema, "synchronous_commit": "off",
                                "paycore.ledger_lane_slot": str(SLOT)}})
        books = cls(engine, schema)
        await paycore_db.upgrade(engine)
        return books

    async def close(self) -> None:
        await self.engine.dispose()
        if self.schema:
            await drop_schema(self.schema)

    async def open_chart(self, prefix: str) -> dict[str, int]:
        async with self.engine.begin() as conn:
            ids = {
                f"{prefix}.{suffix}": (await ledger.open_account(conn, AccountSpec(
                    f"{prefix}.{suffix}", suffix, kind, currency, balance_limit=limit,
                    lanes=lanes))).id
                for suffix, kind, currency, limit, lanes in ACCOUNTS
            }
            await ledger.close_account(conn, f"{prefix}.closed")
            return ids


def first_difference(a: Sequence[Any], b: Sequence[Any]) -> str:
    for n, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"at {n}:\n  {x!r}\n  {y!r}"
    return f"lengths {len(a)} and {len(b)}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_write_path_answers_and_hashes_alike(backend: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if backend == "postgresql":
        reason = pg_unreachable_reason()
        if reason:
            if CI:
                pytest.fail(f"{reason}; under CI=true PostgreSQL tests must run")
            pytest.skip(reason)
    paths = PG_PATHS if backend == "postgresql" else SQLITE_PATHS
    monkeypatch.setattr(store, "_draw", FixedLane())
    count_server_calls(monkeypatch)
    loop = asyncio.Runner()

    def run(awaitable: Awaitable[T]) -> T:
        return loop.run(awaitable)  # type: ignore[arg-type]

    books: dict[str, Books] = {}
    try:
        for name in paths:  # (one at a time: Alembic's context is the process's)
            books[name] = run(Books.open(backend, tmp_path / f"{name}.sqlite"))
        calls: Counter[str] = Counter()
        seen: Counter[str] = Counter()  # the outcomes the examples reached

        @settings(max_examples=10 if backend == "postgresql" else 20, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow,
                                         HealthCheck.function_scoped_fixture])
        @given(mix=st.lists(ops, min_size=4, max_size=14),
               max_batch=st.sampled_from([1, 3, 500]))
        @example(mix=EVERY_OUTCOME, max_batch=500)
        def check(mix: list[Op], max_batch: int) -> None:
            prefix = f"w{uuid.uuid4().hex[:12]}"

            async def example() -> None:
                charts = dict(zip(paths, await asyncio.gather(
                    *(books[name].open_chart(prefix) for name in paths)), strict=True))
                reference = paths[0]
                for name in paths:
                    assert charts[name] == charts[reference], "account ids differ"
                requests = build(Chart(prefix, charts[reference]), mix)
                answers: dict[str, list[tuple[Any, ...]]] = {}
                stored: dict[str, dict[str, Any]] = {}
                for name in paths:
                    before = SERVER_CALLS.copy()
                    got = await WRITE[name](books[name].engine, requests, max_batch)
                    calls[name] += (SERVER_CALLS - before).total()
                    assert len(got) == len(requests), name
                    answers[name] = [outcome(x) for x in got]
                    try:
                        stored[name] = await stored_books(books[name].engine, prefix, got)
                    except AssertionError as exc:
                        raise AssertionError(f"{name}'s books: {exc}") from exc
                for name in paths[1:]:
                    assert answers[name] == answers[reference], (
                        f"{name} answered otherwise than {reference} "
                        + first_difference(answers[name], answers[reference]))
                    for part in stored[reference]:
                        assert stored[name][part] == stored[reference][part], (
                            f"{name}'s books differ from {reference}'s in {part} "
                            + first_difference(stored[name][part], stored[reference][part]))
                for answer in answers[reference]:
                    seen[answer[1] if answer[0] == "refused" else answer[0]] += 1

            run(example())

        check()
        for name, b in books.items():
            async def proof(engine: AsyncEngine = b.engine) -> ledger.VerifyReport:
                async with engine.connect() as conn:
                    return await ledger.verify(conn)
            report = run(proof())
            assert report.ok, (name, report.discrepancies)
    finally:
        for b in books.values():
            run(b.close())
        loop.close()
    # the server paths called the server functions, the Python ones never did
    if backend == "postgresql":
        for name in ("post", "post_many", "post_each", "submit"):
            assert calls[name] > 0, (name, calls)
        assert calls["python.post"] == calls["python.post_each"] == 0, calls
    else:
        assert calls.total() == 0, calls
    # the mixes reached every kind of outcome
    assert {"posted", "replayed", "BalanceLimitExceeded", "UnbalancedEntry", "UnknownAccount",
            "CurrencyMismatch", "IdempotencyConflict", "AccountClosed", "InvalidAmount",
            "InvalidRequest", "BalanceOutOfRange"} <= seen.keys(), seen
