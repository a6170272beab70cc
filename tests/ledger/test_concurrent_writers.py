"""Concurrent writers over a handful of accounts, so that they collide all the time.

Each writer is an asyncio task with a connection of its own (the engine's pool is larger
than the number of writers), runs every unit of work through `ledger.transact` (retry on
deadlock or serialization failure), and records what the ledger acknowledged. Afterwards
the books are read back with plain SQL and must show: every stored balance equal to the
sum of its postings and to the sum of the acknowledged entries, every currency summing to
zero, no balance limit broken, every acknowledged entry present exactly once and nothing
else, pending amounts equal to the holds still pending, and `verify()` clean.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from ledger import AccountSpec, AccountType, BalanceLimit, EntryRequest, HoldRequest, Posting
from tests.conftest import drop_database, make_migrated_engine
from tests.ledger.chart import cny

T = TypeVar("T")

#: (writers, operations per writer); SQLite serializes every writer on its file lock
LOAD = {"postgresql": (40, 20), "sqlite": (8, 15)}

BANK = "1001.bank"
CLEARING = "1102.clearing"
S1, S2 = "2202.payable.s1", "2202.payable.s2"
INCOME = "6001.income"
CAPITAL = "3001.capital"

ACCOUNTS = [
    AccountSpec(BANK, "Bank", AccountType.ASSET, "CNY",
                balance_limit=BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS),
    AccountSpec(CLEARING, "Clearing", AccountType.ASSET, "CNY"),
    AccountSpec(S1, "Supplier 1", AccountType.LIABILITY, "CNY",
                balance_limit=BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS),
    AccountSpec(S2, "Supplier 2", AccountType.LIABILITY, "CNY",
                balance_limit=BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS),
    AccountSpec(INCOME, "Commission", AccountType.INCOME, "CNY"),
    AccountSpec(CAPITAL, "Capital", AccountType.EQUITY, "CNY"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
async def wide_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """Like the `db` fixture, with a pool wider than the number of writers."""
    engine, schema = await make_migrated_engine(request.param, tmp_path, pool_size=48, max_overflow=8)
    try:
        async with engine.begin() as conn:
            for spec in ACCOUNTS:
                await ledger.open_account(conn, spec)
        yield engine
    finally:
        await engine.dispose()
        if schema:
            await drop_database(schema)


def units(amount: int) -> Any:
    """Minor units of CNY as Money."""
    return cny(f"{amount // 100}.{amount % 100:02d}")


def entry(key: str, kind: str, *legs: tuple[str, int]) -> EntryRequest:
    return EntryRequest(key, kind, [
        Posting(code, debit=units(a)) if a > 0 else Posting(code, credit=units(-a))
        for code, a in legs
    ])


@dataclass
class Journal:
    """What the writers were told, shared by all of them."""

    #: entry id -> its legs as acknowledged (account code, signed minor units)
    acked: dict[uuid.UUID, list[tuple[str, int]]] = field(default_factory=dict)
    #: every id acknowledged as newly posted, in order (a duplicate would show up here)
    acked_ids: list[uuid.UUID] = field(default_factory=list)
    #: hold id -> (legs, status the writer last saw)
    holds: dict[uuid.UUID, tuple[list[tuple[str, int]], str]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)

    def ack(self, posted: ledger.JournalEntry) -> None:
        assert not posted.replayed
        self.acked_ids.append(posted.id)
        self.acked[posted.id] = [(p.account_code, p.amount) for p in posted.postings]


class Writer:
    def __init__(self, engine: AsyncEngine, journal: Journal, n: int) -> None:
        self.engine = engine
        self.journal = journal
        self.n = n
        self.rng = random.Random(n)
        self.count = 0
        #: this writer's own acknowledged requests, for replays
        self.sent: list[tuple[EntryRequest, uuid.UUID]] = []
        self.pending: list[uuid.UUID] = []

    def key(self, what: str) -> str:
        self.count += 1
        return f"w{self.n}-{what}-{self.count}"

    async def tx(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        return await ledger.transact(self.engine, work, attempts=10)

    async def post(self, request: EntryRequest) -> None:
        try:
            posted = await self.tx(lambda conn: ledger.post(conn, request))
        except ledger.BalanceLimitExceeded:
            self.journal.outcomes["rejected: limit"] += 1
            return
        self.journal.ack(posted)
        self.sent.append((request, posted.id))
        self.journal.outcomes[f"posted: {request.kind}"] += 1

    async def step(self, op: str | None = None, amount: int | None = None) -> None:
        rng = self.rng
        supplier = rng.choice([S1, S2])
        op = op or rng.choice(["capture", "capture", "fund", "payout", "payout", "settle", "transfer",
                         "hold", "hold", "resolve", "resolve", "replay", "conflict", "reverse"])
        amount = amount or rng.randint(1, 50_000)
        if op == "capture":
            fee = amount // 50
            await self.post(entry(self.key(op), "payment.capture", (CLEARING, amount),
                                  (supplier, -(amount - fee)), *([(INCOME, -fee)] if fee else [])))
        elif op == "fund":
            await self.post(entry(self.key(op), "capital.funding", (BANK, amount),
                                  (CAPITAL, -amount)))
        elif op == "payout":
            # pays a supplier out of the bank: breaks a limit whenever either runs short
            await self.post(entry(self.key(op), "supplier.payout", (supplier, amount),
                                  (BANK, -amount)))
        elif op == "settle":
            await self.post(entry(self.key(op), "clearing.settle", (BANK, amount),
                                  (CLEARING, -amount)))
        elif op == "transfer":
            other = S2 if supplier == S1 else S1
            await self.post(entry(self.key(op), "supplier.transfer", (supplier, amount),
                                  (other, -amount)))
        elif op == "hold":
            await self.hold(supplier, amount)
        elif op == "resolve" and self.pending:
            await self.resolve(self.pending.pop(rng.randrange(len(self.pending))))
        elif op == "replay" and self.sent:
            request, entry_id = rng.choice(self.sent)
            again = await self.tx(lambda conn: ledger.post(conn, request))
            assert again.replayed and again.id == entry_id
            self.journal.outcomes["replayed"] += 1
        elif op == "conflict" and self.sent:
            request, _ = rng.choice(self.sent)
            other = EntryRequest(request.idempotency_key, request.kind, request.postings,
                                 description="something else")
            with pytest.raises(ledger.IdempotencyConflict):
                await self.tx(lambda conn: ledger.post(conn, other))
            self.journal.outcomes["conflict"] += 1
        elif op == "reverse" and self.sent:
            request, entry_id = self.sent.pop(rng.randrange(len(self.sent)))
            try:
                reversal = await self.tx(lambda conn: ledger.reverse(conn, entry_id))
            except ledger.BalanceLimitExceeded:
                self.journal.outcomes["rejected: limit"] += 1
                self.sent.append((request, entry_id))
                return
            self.journal.ack(reversal)
            self.journal.outcomes["posted: reversal"] += 1
            with pytest.raises(ledger.AlreadyReversed):
                await self.tx(lambda conn: ledger.reverse(conn, entry_id,
                                                          idempotency_key=self.key("again")))

    async def hold(self, supplier: str, amount: int) -> None:
        request = HoldRequest(self.key("hold"), "supplier.payout", [
            Posting(supplier, debit=units(amount)), Posting(BANK, credit=units(amount)),
        ], expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        try:
            held = await self.tx(lambda conn: ledger.hold(conn, request))
        except ledger.BalanceLimitExceeded:
            self.journal.outcomes["rejected: limit (hold)"] += 1
            return
        self.journal.holds[held.id] = ([(leg.account_code, leg.amount) for leg in held.legs],
                                       "pending")
        self.pending.append(held.id)
        self.journal.outcomes["held"] += 1

    async def resolve(self, hold_id: uuid.UUID, how: str | None = None) -> None:
        legs, _ = self.journal.holds[hold_id]
        how = how or self.rng.choice(["full", "part", "void"])
        if how == "void":
            voided = await self.tx(lambda conn: ledger.void_hold(conn, hold_id))
            assert voided.status is ledger.HoldStatus.VOIDED
            self.journal.holds[hold_id] = (legs, "voided")
        else:
            reserved = max(a for _, a in legs)
            amount = None if how == "full" else units(self.rng.randint(1, reserved))
            posted = await self.tx(lambda conn: ledger.post_hold(conn, hold_id, amount=amount))
            self.journal.ack(posted)
            self.journal.holds[hold_id] = (legs, "posted")
        self.journal.outcomes[f"hold: {how}"] += 1

    async def run(self, steps: int) -> None:
        for _ in range(steps):
            await self.step()

    async def one_of_each(self) -> None:
        """Every kind of operation once more, on its own, so that the mix the test asserts
        happened whatever the interleaving of the random run was."""
        await self.step("fund", 10_000_000)
        for op in ("replay", "conflict", "reverse"):
            await self.step("capture", 100_000)
            # only the capture just posted: reversing it cannot break a limit
            earlier, self.sent = self.sent[:-1], self.sent[-1:]
            await self.step(op)
            self.sent = earlier + self.sent
        await self.step("payout", 10**12)  # more than any supplier or the bank holds
        await self.post(entry(self.key("capture"), "payment.capture", (CLEARING, 100_000),
                              (S1, -98_000), (INCOME, -2_000)))
        for how in ("full", "part", "void"):
            await self.hold(S1, 1_000)
            await self.resolve(self.pending.pop(), how)


class StartLine:
    """Holds every racer's first attempt until all of them are inside a transaction of their
    own, so that the race really overlaps (PostgreSQL only: on SQLite `BEGIN IMMEDIATE`
    already serializes the racers, and one waiting here would hold the file lock)."""

    def __init__(self, engine: AsyncEngine, racers: int) -> None:
        self.racers = racers if engine.dialect.name == "postgresql" else 0
        self.arrived = 0
        self.go = asyncio.Event()
        if not self.racers:
            self.go.set()

    def then(self, work: Callable[[AsyncConnection], Awaitable[T]]
             ) -> Callable[[AsyncConnection], Awaitable[T]]:
        async def wrapped(conn: AsyncConnection) -> T:
            await conn.execute(sa.text("SELECT 1"))  # the transaction has begun
            if not self.go.is_set():
                self.arrived += 1
                if self.arrived >= self.racers:
                    self.go.set()
                await self.go.wait()
            return await work(conn)

        return wrapped


async def test_many_writers_colliding_on_six_accounts_keep_the_books(
        wide_db: AsyncEngine) -> None:
    backend = wide_db.dialect.name
    writers, steps = LOAD[backend]
    journal = Journal()
    crew = [Writer(wide_db, journal, n) for n in range(writers)]
    await asyncio.gather(*(w.run(steps) for w in crew))
    await crew[0].one_of_each()

    outcomes = journal.outcomes
    # the mix really happened: collisions with limits, holds both ways, replays, conflicts
    assert outcomes["rejected: limit"] > 0
    for seen in ("posted: payment.capture", "posted: supplier.payout", "held", "hold: full",
                 "hold: part", "hold: void", "replayed", "conflict", "posted: reversal"):
        assert outcomes[seen] > 0, (seen, outcomes)

    async with wide_db.connect() as conn:
        codes = {r.id: r.code for r in await conn.execute(sa.text("SELECT id, code FROM accounts"))}
        stored = {codes[r.account_id]: r for r in await conn.execute(sa.text(
            "SELECT account_id, balance_limit, posted_debits, posted_credits, pending_debits,"
            " pending_credits, seq FROM account_balances"))}
        sums = {codes[r.account_id]: r for r in await conn.execute(sa.text(
            "SELECT account_id, sum(amount) AS net,"
            " sum(CASE WHEN amount > 0 THEN amount ELSE 0 END) AS debits,"
            " sum(CASE WHEN amount < 0 THEN -amount ELSE 0 END) AS credits,"
            " count(*) AS n, max(account_seq) AS top FROM postings GROUP BY account_id"))}
        per_currency = {r.currency: int(r.total) for r in await conn.execute(sa.text(
            "SELECT currency, sum(amount) AS total FROM postings GROUP BY currency"))}
        entry_rows = [(uuid.UUID(str(r.id)), r.n) for r in await conn.execute(sa.text(
            "SELECT id, count(*) OVER (PARTITION BY idempotency_key) AS n FROM journal_entries"))]
        posted_legs: dict[uuid.UUID, list[tuple[str, int]]] = defaultdict(list)
        for r in await conn.execute(sa.text(
                "SELECT p.entry_id, a.code, p.amount FROM postings p"
                " JOIN accounts a ON a.id = p.account_id ORDER BY p.entry_id, p.leg_no")):
            posted_legs[uuid.UUID(str(r.entry_id))].append((r.code, r.amount))
        hold_status = {uuid.UUID(str(r.id)): r.status
                       for r in await conn.execute(sa.text("SELECT id, status FROM holds"))}
        report = await ledger.verify(conn)

    # every account's stored balance equals the sum of its postings, with no gap in its
    # sequence, and equals what the acknowledged entries add up to (no lost update)
    expected: dict[str, int] = defaultdict(int)
    for legs in journal.acked.values():
        for code, amount in legs:
            expected[code] += amount
    for code, row in stored.items():
        s = sums.get(code)
        debits, credits, n, top = (int(s.debits), int(s.credits), s.n, s.top) if s else (
            0, 0, 0, 0)
        assert (row.posted_debits, row.posted_credits) == (debits, credits), code
        assert row.seq == n == top, code
        assert row.posted_debits - row.posted_credits == expected[code], code
    # money is conserved per currency
    assert per_currency and all(total == 0 for total in per_currency.values()), per_currency
    # no balance limit was broken, pending amounts included
    for code, row in stored.items():
        if row.balance_limit == BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS:
            assert row.posted_debits + row.pending_debits <= row.posted_credits, code
        elif row.balance_limit == BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS:
            assert row.posted_credits + row.pending_credits <= row.posted_debits, code
    # every acknowledged entry is present exactly once, with its legs; nothing else is
    assert len(journal.acked_ids) == len(set(journal.acked_ids))
    assert sorted(i for i, _ in entry_rows) == sorted(journal.acked_ids)
    assert all(n == 1 for _, n in entry_rows)
    assert dict(posted_legs) == journal.acked
    # holds: statuses as the writers saw them, pending amounts equal to the holds left
    assert hold_status == {h: status for h, (_, status) in journal.holds.items()}
    pending: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for legs, status in journal.holds.values():
        if status == "pending":
            for code, amount in legs:
                pending[code][0 if amount > 0 else 1] += abs(amount)
    for code, row in stored.items():
        assert [row.pending_debits, row.pending_credits] == pending.get(code, [0, 0]), code
    # and the ledger's own proof agrees, chains intact
    assert report.ok, report.discrepancies
    assert report.entries == len(journal.acked_ids)
    assert report.postings == sum(len(legs) for legs in journal.acked.values())


async def test_concurrent_posts_with_one_key_and_one_body_post_once(wide_db: AsyncEngine) -> None:
    async with wide_db.begin() as conn:
        await ledger.post(conn, entry("seed", "capital.funding", (BANK, 10_000), (CAPITAL, -10_000)))
    request = entry("same-key", "supplier.payout", (CLEARING, 700), (BANK, -700))
    racers = 32 if wide_db.dialect.name == "postgresql" else 8
    start = StartLine(wide_db, racers)

    async def once() -> ledger.JournalEntry:
        return await ledger.transact(
            wide_db, start.then(lambda conn: ledger.post(conn, request)), attempts=10)

    results = await asyncio.gather(*(once() for _ in range(racers)))
    assert len({r.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    async with wide_db.connect() as conn:
        assert await conn.scalar(sa.text(
            "SELECT count(*) FROM journal_entries WHERE idempotency_key = 'same-key'")) == 1
        assert (await ledger.balance(conn, BANK)).posted == units(10_000 - 700)
        assert (await ledger.verify(conn)).ok


async def test_concurrent_posts_with_one_key_and_different_bodies(wide_db: AsyncEngine) -> None:
    """Racers on disjoint accounts do not wait on each other's locks: exactly one wins, the
    others are told the key is taken (an IdempotencyConflict), never a raw database error."""
    bodies = [
        entry("taken", "t", (CLEARING, 100), (INCOME, -100)),
        entry("taken", "t", (BANK, 200), (CAPITAL, -200)),
        entry("taken", "t", (CLEARING, 300), (S1, -300)),
    ]
    racers = [bodies[n % len(bodies)] for n in range(12)]
    start = StartLine(wide_db, len(racers))

    async def once(request: EntryRequest) -> ledger.JournalEntry | Exception:
        try:
            return await ledger.transact(
                wide_db, start.then(lambda conn: ledger.post(conn, request)), attempts=10)
        except ledger.IdempotencyConflict as exc:
            return exc

    results = await asyncio.gather(*(once(r) for r in racers))
    won = [r for r in results if isinstance(r, ledger.JournalEntry)]
    assert len({r.id for r in won}) == 1
    assert sum(not r.replayed for r in won) == 1
    winner = won[0]
    winning_legs = [(p.account_code, p.amount) for p in winner.postings]

    def legs(request: EntryRequest) -> list[tuple[str, int]]:
        return [(str(p.account), ledger.to_minor(p.debit) if p.debit else
                 -ledger.to_minor(p.credit)) for p in request.postings]  # type: ignore[arg-type]

    for request, result in zip(racers, results, strict=True):
        if isinstance(result, ledger.JournalEntry):
            assert legs(request) == winning_legs  # a racer with the winner's body: a replay
        else:
            assert legs(request) != winning_legs
            assert result.idempotency_key == "taken"
    async with wide_db.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM journal_entries")) == 1
        assert (await ledger.verify(conn)).ok


async def test_racing_post_and_void_of_one_hold_resolve_it_once(wide_db: AsyncEngine) -> None:
    async with wide_db.begin() as conn:
        await ledger.post(conn, entry("seed", "fund", (CLEARING, 50_000), (S1, -50_000)))
        await ledger.post(conn, entry("seed-bank", "fund", (BANK, 50_000), (CAPITAL, -50_000)))
        held = await ledger.hold(conn, HoldRequest("h", "payout", [
            Posting(S1, debit=units(30_000)), Posting(BANK, credit=units(30_000)),
        ], expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)))

    start = StartLine(wide_db, 16)

    async def attempt(n: int) -> str:
        try:
            if n % 2:
                await ledger.transact(
                    wide_db, start.then(lambda conn: ledger.void_hold(conn, held.id)))
                return "voided"
            await ledger.transact(
                wide_db, start.then(lambda conn: ledger.post_hold(conn, held.id)))
            return "posted"
        except ledger.HoldAlreadyResolved:
            return "refused"

    outcomes = await asyncio.gather(*(attempt(n) for n in range(16)))
    async with wide_db.connect() as conn:
        final = (await ledger.load_holds(conn, [held.id]))[0].status.value
        entries = await conn.scalar(sa.text("SELECT count(*) FROM journal_entries"))
        s1 = await ledger.balance(conn, S1)
        report = await ledger.verify(conn)
    # the first resolution wins; the same resolution again is idempotent (a void of a voided
    # hold, a post of a posted hold under its default key), the other one is refused
    assert final in ("posted", "voided")
    other = "voided" if final == "posted" else "posted"
    assert other not in outcomes
    assert outcomes.count("refused") == 8
    assert entries == (3 if final == "posted" else 2)
    assert (s1.pending_debits, s1.pending_credits) == (0, 0)
    assert s1.posted == units(50_000 - (30_000 if final == "posted" else 0))
    assert report.ok, report.discrepancies


async def test_concurrent_holds_with_one_key_and_different_bodies(wide_db: AsyncEngine) -> None:
    async with wide_db.begin() as conn:
        await ledger.post(conn, entry("seed", "fund", (CLEARING, 50_000), (S1, -30_000),
                                      (S2, -20_000)))
        await ledger.post(conn, entry("seed-bank", "fund", (BANK, 50_000), (CAPITAL, -50_000)))
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    bodies = [
        HoldRequest("hold-key", "payout", [Posting(S1, debit=units(100)),
                                           Posting(CLEARING, credit=units(100))], expires),
        HoldRequest("hold-key", "payout", [Posting(S2, debit=units(200)),
                                           Posting(BANK, credit=units(200))], expires),
    ]
    racers = [bodies[n % 2] for n in range(12)]
    start = StartLine(wide_db, len(racers))

    async def once(request: HoldRequest) -> ledger.Hold | Exception:
        try:
            return await ledger.transact(
                wide_db, start.then(lambda conn: ledger.hold(conn, request)), attempts=10)
        except ledger.IdempotencyConflict as exc:
            return exc

    results = await asyncio.gather(*(once(r) for r in racers))
    won = [r for r in results if isinstance(r, ledger.Hold)]
    assert len({h.id for h in won}) == 1 and sum(not h.replayed for h in won) == 1
    winner_body = racers[results.index(next(h for h in won if not h.replayed))]
    for request, result in zip(racers, results, strict=True):
        assert isinstance(result, ledger.Hold) == (request is winner_body)
    async with wide_db.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM holds")) == 1
        report = await ledger.verify(conn)
    assert report.ok and report.holds_pending == 1
