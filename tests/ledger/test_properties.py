"""Property tests: random sequences of ledger operations against a pure in-Python model.

Hypothesis drives a `RuleBasedStateMachine` whose rules open accounts, post balanced (and
deliberately bad) multi-leg entries, replay and abuse idempotency keys, take holds, post
them in full or in part, void and expire them, reverse entries and close accounts. Each
rule predicts its outcome from the model first: success, or the precise ledger error. A
rejected operation must leave the books exactly as they were. After every step the
invariants compare the database with the model and run the ledger's own proofs.

Hypothesis does not run async tests, so the test is synchronous: it owns one event loop
(`asyncio.Runner`) and every example gets a fresh database of its own (an SQLite file or
a PostgreSQL schema, migrated by Alembic), which keeps `verify()` after each step cheap.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import itertools
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from ledger import AccountSpec, AccountType, BalanceLimit, EntryRequest, HoldRequest, Posting
from tests.conftest import drop_database, make_migrated_engine

T = TypeVar("T")

#: the currencies the machine uses, with their minor-unit exponents
EXPONENT = {"CNY": 2, "USD": 2, "JPY": 0}
CURRENCIES = sorted(EXPONENT)
MAX_ACCOUNTS = 10

#: what the generated operations did, across all examples of a test run
OUTCOMES: Counter[str] = Counter()


def note(outcome: str) -> None:
    event(outcome)
    OUTCOMES[outcome] += 1


SETTINGS = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def money(units: int, currency: str) -> Money:
    return Money(Decimal(units).scaleb(-EXPONENT[currency]), currency)


def decimal_text(units: int, currency: str) -> str:
    return str(Decimal(units).scaleb(-EXPONENT[currency]))


# --------------------------------------------------------------------------------------
# the model


@dataclass
class MAccount:
    id: int
    code: str
    type: AccountType
    currency: str
    limit: BalanceLimit | None
    posted_debits: int = 0
    posted_credits: int = 0
    pending_debits: int = 0
    pending_credits: int = 0
    seq: int = 0
    closed: bool = False

    @property
    def net(self) -> int:
        return self.posted_debits - self.posted_credits

    def shortfall(self) -> int:
        if self.limit is BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS:
            return max(0, self.posted_debits + self.pending_debits - self.posted_credits)
        if self.limit is BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS:
            return max(0, self.posted_credits + self.pending_credits - self.posted_debits)
        return 0


#: a leg of the model: (account id, signed minor units, debit > 0)
MLeg = tuple[int, int]


@dataclass
class MEntry:
    id: uuid.UUID
    key: str
    legs: list[MLeg]
    #: the request as sent, for replays (None for entries made by post_hold / reverse)
    request: EntryRequest | None = None
    reversed_by: uuid.UUID | None = None
    #: whether the reversal used the default key `reverse:<id>`
    reversed_with_default_key: bool = False


@dataclass
class MHold:
    id: uuid.UUID
    request: HoldRequest
    legs: list[MLeg]
    status: str = "pending"
    posted_entry_id: uuid.UUID | None = None


@dataclass
class Rejection:
    """What the model predicts the ledger refuses, and why."""

    error: type[ledger.LedgerError]
    account: MAccount
    shortfall: int = 0


@dataclass
class Model:
    accounts: dict[int, MAccount] = field(default_factory=dict)
    entries: dict[uuid.UUID, MEntry] = field(default_factory=dict)
    holds: dict[uuid.UUID, MHold] = field(default_factory=dict)

    def attempt(
        self,
        posts: Iterable[MLeg] = (),
        reserves: Iterable[MLeg] = (),
        releases: Iterable[MLeg] = (),
        *,
        postable: Iterable[MLeg] = (),
        currencies: Iterable[str] | None = None,
    ) -> dict[int, MAccount] | Rejection:
        """The accounts after a write, or the rejection the ledger must raise.

        Mirrors the ledger's order: every leg must be postable (open, right currency) in
        leg order, then the amounts apply, then every account the write posts to or
        reserves on is checked against its limit in account-id order."""
        postable = list(postable)
        given = list(currencies) if currencies is not None else [None] * len(postable)
        for (account_id, _), currency in zip(postable, given, strict=True):
            acct = self.accounts[account_id]
            if acct.closed:
                return Rejection(ledger.AccountClosed, acct)
            if currency is not None and currency != acct.currency:
                return Rejection(ledger.CurrencyMismatch, acct)
        after: dict[int, MAccount] = {}

        def touch(account_id: int) -> MAccount:
            if account_id not in after:
                after[account_id] = copy.copy(self.accounts[account_id])
            return after[account_id]

        for account_id, amount in releases:
            acct = touch(account_id)
            if amount > 0:
                acct.pending_debits -= amount
            else:
                acct.pending_credits += amount
        checked: set[int] = set()
        for account_id, amount in posts:
            acct = touch(account_id)
            if amount > 0:
                acct.posted_debits += amount
            else:
                acct.posted_credits -= amount
            acct.seq += 1
            checked.add(account_id)
        for account_id, amount in reserves:
            acct = touch(account_id)
            if amount > 0:
                acct.pending_debits += amount
            else:
                acct.pending_credits -= amount
            checked.add(account_id)
        for account_id in sorted(checked):
            short = after[account_id].shortfall()
            if short:
                return Rejection(ledger.BalanceLimitExceeded, after[account_id], short)
        return after

    def commit(self, after: dict[int, MAccount]) -> None:
        self.accounts.update(after)


# --------------------------------------------------------------------------------------
# the machine


class Harness:
    """One event loop for a whole test, and a fresh migrated database per example."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.loop = asyncio.Runner()

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run(awaitable)  # type: ignore[arg-type]

    def fresh_database(self) -> tuple[AsyncEngine, str | None]:
        async def make() -> tuple[AsyncEngine, str | None]:
            folder = self.tmp_path / uuid.uuid4().hex
            folder.mkdir()
            # a copy of the session's migrated template (migrating each example's database
            # cost ~1 s of the ~2 s an example takes on PostgreSQL)
            return await make_migrated_engine(self.backend, folder, pool_size=2)

        return self.run(make())

    def drop_database(self, engine: AsyncEngine, database: str | None) -> None:
        async def drop() -> None:
            await engine.dispose()
            if database:
                await drop_database(database)

        self.run(drop())


class LedgerMachine(RuleBasedStateMachine):
    harness: Harness

    def __init__(self) -> None:
        super().__init__()
        self.engine, self.schema = self.harness.fresh_database()
        self.model = Model()
        self.counter = 0
        self.expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)

    def teardown(self) -> None:
        self.harness.drop_database(self.engine, self.schema)

    # ---- plumbing

    def key(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def tx(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async def unit() -> T:
            async with self.engine.begin() as conn:
                return await work(conn)

        return self.harness.run(unit())

    def refused(self, error: type[Exception], work: Callable[[AsyncConnection], Awaitable[Any]]
                ) -> Any:
        with pytest.raises(error) as info:
            self.tx(work)
        note(f"refused: {error.__name__}")
        return info.value

    def accounts_in(self, currency: str, *, open_only: bool = False) -> list[int]:
        return [a.id for a in self.model.accounts.values()
                if a.currency == currency and not (open_only and a.closed)]

    def currencies_with_two_accounts(self) -> list[str]:
        return [c for c in CURRENCIES if len(self.accounts_in(c)) >= 2]

    def has_postable_currency(self) -> bool:
        return bool(self.currencies_with_two_accounts())

    def ref(self, data: st.DataObject, account_id: int) -> int | str:
        """Name an account by id or by code: both must mean the same request."""
        by_code = data.draw(st.booleans(), label="by code")
        return self.model.accounts[account_id].code if by_code else account_id

    def draw_legs(self, data: st.DataObject, currency: str, *, max_side: int = 2) -> list[MLeg]:
        """Balanced signed legs in one currency over its accounts, repeats allowed."""
        ids = self.accounts_in(currency)
        debits = data.draw(st.lists(st.integers(1, 5_000), min_size=1, max_size=max_side),
                           label="debits")
        total = sum(debits)
        n_credits = min(data.draw(st.integers(1, max_side), label="credit legs"), total)
        cuts = sorted(data.draw(
            st.lists(st.integers(1, total - 1), min_size=n_credits - 1, max_size=n_credits - 1,
                     unique=True), label="cuts")) if n_credits > 1 else []
        bounds = [0, *cuts, total]
        credits = [hi - lo for lo, hi in itertools.pairwise(bounds)]
        legs = [(data.draw(st.sampled_from(ids), label="debit account"), d) for d in debits]
        legs += [(data.draw(st.sampled_from(ids), label="credit account"), -c) for c in credits]
        return list(data.draw(st.permutations(legs), label="leg order"))

    def postings(self, data: st.DataObject, legs: list[MLeg],
                 currencies: list[str] | None = None) -> list[Posting]:
        out = []
        for n, (account_id, amount) in enumerate(legs):
            cur = currencies[n] if currencies else self.model.accounts[account_id].currency
            side = "debit" if amount > 0 else "credit"
            out.append(Posting(self.ref(data, account_id), **{side: money(abs(amount), cur)}))
        return out

    def check_rejection(self, rejection: Rejection, err: ledger.LedgerError, key: str) -> None:
        acct = rejection.account
        if isinstance(err, ledger.BalanceLimitExceeded):
            assert err.account_code == acct.code
            assert err.limit == (acct.limit.value if acct.limit else None)
            assert err.shortfall == f"{decimal_text(rejection.shortfall, acct.currency)} {acct.currency}"
            assert err.idempotency_key == key
        elif isinstance(err, ledger.AccountClosed | ledger.CurrencyMismatch):
            assert err.account_code == acct.code

    def posted_legs(self, entry: ledger.JournalEntry) -> list[MLeg]:
        return [(p.account_id, p.amount) for p in entry.postings]

    def check_new_entry(self, entry: ledger.JournalEntry, legs: list[MLeg],
                        after: dict[int, MAccount]) -> None:
        """The entry as returned carries the right legs, sequence numbers and running
        balances (replaying the legs over the accounts as they stood)."""
        assert not entry.replayed
        assert entry.id not in self.model.entries
        assert self.posted_legs(entry) == legs
        running = {i: (copy.copy(self.model.accounts[i])) for i, _ in legs}
        for p in entry.postings:
            acct = running[p.account_id]
            acct.seq += 1
            if p.amount > 0:
                acct.posted_debits += p.amount
            else:
                acct.posted_credits -= p.amount
            assert (p.account_seq, p.balance_after) == (acct.seq, acct.net)
            assert p.currency == acct.currency
        for i, acct in running.items():
            assert (acct.seq, acct.net) == (after[i].seq, after[i].net)

    # ---- accounts

    @initialize(data=st.data())
    def open_first_accounts(self, data: st.DataObject) -> None:
        currency = data.draw(st.sampled_from(CURRENCIES), label="first currency")
        for _ in range(2):
            self._open(data, currency)
        for _ in range(data.draw(st.integers(1, 3), label="more accounts")):
            self._open(data)

    def _open(self, data: st.DataObject, currency: str | None = None) -> None:
        kind = data.draw(st.sampled_from(list(AccountType)), label="type")
        currency = currency or data.draw(st.sampled_from(CURRENCIES), label="currency")
        limit = data.draw(st.sampled_from([None, *BalanceLimit]), label="limit")
        code = f"{len(self.model.accounts) + 1}.{kind.value}.{currency.lower()}"
        spec = AccountSpec(code, f"Account {code}", kind, currency, balance_limit=limit,
                           metadata={"n": len(self.model.accounts)})
        account = self.tx(lambda conn: ledger.open_account(conn, spec))
        assert (account.code, account.type, account.currency, account.balance_limit) == (
            code, kind, currency, limit)
        assert account.id not in self.model.accounts
        self.model.accounts[account.id] = MAccount(account.id, code, kind, currency, limit)

    def _open_account(self, data: st.DataObject) -> None:
        self._open(data)

    def _reopen_existing_code(self, data: st.DataObject) -> None:
        acct = self.model.accounts[data.draw(st.sampled_from(sorted(self.model.accounts)))]
        spec = AccountSpec(acct.code, "another", AccountType.EQUITY, acct.currency)
        err = self.refused(ledger.AccountExists, lambda conn: ledger.open_account(conn, spec))
        assert err.account_code == acct.code

    def _close_account(self, data: st.DataObject) -> None:
        acct = self.model.accounts[data.draw(st.sampled_from(sorted(self.model.accounts)))]
        if acct.net or acct.pending_debits or acct.pending_credits:
            err = self.refused(ledger.AccountNotEmpty,
                               lambda conn: ledger.close_account(conn, acct.code))
            assert err.account_code == acct.code
            return
        closed = self.tx(lambda conn: ledger.close_account(conn, acct.id))
        assert closed.status is ledger.AccountStatus.CLOSED
        acct.closed = True

    # ---- entries

    def _post(self, data: st.DataObject, legs: list[MLeg], kind: str = "test.transfer") -> None:
        key = self.key("post")
        request = EntryRequest(
            idempotency_key=key, kind=kind, postings=self.postings(data, legs),
            description=f"entry {key}", metadata={"legs": len(legs)},
            effective_date=data.draw(st.none() | st.dates(dt.date(2020, 1, 1),
                                                         dt.date(2030, 12, 31))),
        )
        outcome = self.model.attempt(posts=legs, postable=legs)
        if isinstance(outcome, Rejection):
            err = self.refused(outcome.error, lambda conn: ledger.post(conn, request))
            self.check_rejection(outcome, err, key)
            return
        entry = self.tx(lambda conn: ledger.post(conn, request))
        self.check_new_entry(entry, legs, outcome)
        assert entry.idempotency_key == key
        if request.effective_date:
            assert entry.effective_date == request.effective_date
        self.model.commit(outcome)
        self.model.entries[entry.id] = MEntry(entry.id, key, legs, request)
        note("posted: entry")

    @precondition(lambda self: self.has_postable_currency())
    @rule(data=st.data())
    def post_balanced(self, data: st.DataObject) -> None:
        currency = data.draw(st.sampled_from(self.currencies_with_two_accounts()))
        self._post(data, self.draw_legs(data, currency))

    @precondition(lambda self: self.has_postable_currency())
    @rule(data=st.data())
    def post_funding(self, data: st.DataObject) -> None:
        """Credit a limited credit-side account (or debit a limited debit-side one) so that
        later outflows have cover: otherwise nearly every outflow would be refused."""
        currency = data.draw(st.sampled_from(self.currencies_with_two_accounts()))
        ids = self.accounts_in(currency)
        target, other = data.draw(st.permutations(ids).map(lambda p: p[:2]))
        amount = data.draw(st.integers(1, 20_000))
        limit = self.model.accounts[target].limit
        sign = 1 if limit is BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS else -1
        self._post(data, [(target, sign * amount), (other, -sign * amount)], kind="test.fund")

    def _post_unbalanced(self, data: st.DataObject) -> None:
        currency = data.draw(st.sampled_from(self.currencies_with_two_accounts()))
        legs = self.draw_legs(data, currency)
        n = data.draw(st.integers(0, len(legs) - 1), label="leg to skew")
        account_id, amount = legs[n]
        delta = data.draw(st.integers(-(abs(amount) - 1), 500).filter(bool), label="skew")
        legs[n] = (account_id, amount + delta if amount > 0 else amount - delta)
        diff = sum(a for _, a in legs)
        assert diff != 0
        key = self.key("unbalanced")
        request = EntryRequest(key, "test.bad", self.postings(data, legs))
        err = self.refused(ledger.UnbalancedEntry, lambda conn: ledger.post(conn, request))
        assert err.differences == {currency: decimal_text(diff, currency)}
        assert err.idempotency_key == key

    def _post_balanced_in_total_not_per_currency(self, data: st.DataObject) -> None:
        by_currency = sorted({a.currency for a in self.model.accounts.values()})
        cur_a, cur_b = data.draw(st.permutations(by_currency).map(lambda p: p[:2]))
        a = data.draw(st.sampled_from(self.accounts_in(cur_a)))
        b = data.draw(st.sampled_from(self.accounts_in(cur_b)))
        units = data.draw(st.integers(1, 5_000))
        legs = data.draw(st.permutations([(a, units), (b, -units)]))
        request = EntryRequest(self.key("mixed"), "test.bad", self.postings(data, legs))
        err = self.refused(ledger.UnbalancedEntry, lambda conn: ledger.post(conn, request))
        assert err.differences == {cur_a: decimal_text(units, cur_a),
                                   cur_b: decimal_text(-units, cur_b)}

    def _post_wrong_currency(self, data: st.DataObject) -> None:
        """A leg in a currency its account is not kept in, balanced in that currency."""
        wrong_id = data.draw(st.sampled_from(sorted(self.model.accounts)))
        wrong = self.model.accounts[wrong_id]
        others = [a.id for a in self.model.accounts.values() if a.currency != wrong.currency]
        right_id = data.draw(st.sampled_from(others))
        currency = self.model.accounts[right_id].currency
        units = data.draw(st.integers(1, 5_000))
        legs = data.draw(st.permutations([(wrong_id, units), (right_id, -units)]))
        key = self.key("wrong-currency")
        request = EntryRequest(key, "test.bad", self.postings(data, legs, [currency] * 2))
        outcome = self.model.attempt(posts=legs, postable=legs, currencies=[currency] * 2)
        assert isinstance(outcome, Rejection)
        err = self.refused(outcome.error, lambda conn: ledger.post(conn, request))
        self.check_rejection(outcome, err, key)
        if isinstance(err, ledger.CurrencyMismatch):
            assert (err.account_currency, err.given_currency) == (wrong.currency, currency)

    def _post_invalid_amount(self, data: st.DataObject) -> None:
        amount = data.draw(st.sampled_from(["0", "-1", "0.5", "0.001"]), label="amount")
        currency = data.draw(st.sampled_from(self.currencies_with_two_accounts()))
        if Decimal(amount) > 0 and currency != "JPY":
            amount = "0.001"  # one digit more than CNY and USD allow
        a, b = data.draw(st.permutations(self.accounts_in(currency)).map(lambda p: p[:2]))
        value = Money(Decimal(amount), currency)
        request = EntryRequest(self.key("amount"), "test.bad",
                               [Posting(a, debit=value), Posting(b, credit=value)])
        self.refused(ledger.InvalidAmount, lambda conn: ledger.post(conn, request))

    def _replay_entry(self, data: st.DataObject) -> None:
        original = data.draw(st.sampled_from(
            [e for e in self.model.entries.values() if e.request]), label="entry")
        assert original.request is not None
        # the same request, naming its accounts afresh (by id or by code)
        request = EntryRequest(
            original.key, original.request.kind, self.postings(data, original.legs),
            effective_date=original.request.effective_date,
            description=original.request.description, metadata=original.request.metadata)
        again = self.tx(lambda conn: ledger.post(conn, request))
        assert again.replayed
        assert again.id == original.id
        assert self.posted_legs(again) == original.legs

    def _reuse_key_for_another_request(self, data: st.DataObject) -> None:
        change = data.draw(st.sampled_from(["description", "amounts", "metadata", "date"]),
                           label="change")
        original = data.draw(st.sampled_from(
            [e for e in self.model.entries.values() if e.request]), label="entry")
        request = original.request
        assert request is not None
        if change == "description":
            other = EntryRequest(request.idempotency_key, request.kind, request.postings,
                                 request.effective_date, description=request.description + "!",
                                 metadata=request.metadata)
        elif change == "metadata":
            other = EntryRequest(request.idempotency_key, request.kind, request.postings,
                                 request.effective_date, request.description,
                                 metadata={**request.metadata, "x": 1})
        elif change == "date":
            other = EntryRequest(request.idempotency_key, request.kind, request.postings,
                                 dt.date(2019, 1, 1), request.description, metadata=request.metadata)
        else:
            other = EntryRequest(request.idempotency_key, request.kind,
                                 self.postings(data, [(i, 2 * a) for i, a in original.legs]),
                                 request.effective_date, request.description,
                                 metadata=request.metadata)
        err = self.refused(ledger.IdempotencyConflict, lambda conn: ledger.post(conn, other))
        assert err.idempotency_key == original.key

    # ---- reversals

    @precondition(lambda self: bool(self.model.entries))
    @rule(data=st.data(), default_key=st.booleans())
    def reverse(self, data: st.DataObject, default_key: bool) -> None:
        original = self.model.entries[data.draw(st.sampled_from(list(self.model.entries)))]
        key = f"reverse:{original.id}" if default_key else self.key("reverse")

        def work(conn: AsyncConnection) -> Awaitable[ledger.JournalEntry]:
            return ledger.reverse(conn, original.id,
                                  idempotency_key=None if default_key else key)

        if original.reversed_by is not None:
            if default_key and original.reversed_with_default_key:
                again = self.tx(work)  # the same request again: a replay
                assert again.replayed and again.id == original.reversed_by
                return
            err = self.refused(ledger.AlreadyReversed, work)
            assert (err.entry_id, err.reversal_id) == (original.id, original.reversed_by)
            return
        legs = [(i, -a) for i, a in original.legs]
        outcome = self.model.attempt(posts=legs, postable=legs)
        if isinstance(outcome, Rejection):
            err = self.refused(outcome.error, work)
            self.check_rejection(outcome, err, key)
            return
        entry = self.tx(work)
        self.check_new_entry(entry, legs, outcome)
        assert entry.reverses_entry_id == original.id and entry.idempotency_key == key
        self.model.commit(outcome)
        original.reversed_by = entry.id
        original.reversed_with_default_key = default_key
        self.model.entries[entry.id] = MEntry(entry.id, key, legs)
        note("posted: reversal")

    # ---- holds

    def pick_hold(self, data: st.DataObject) -> MHold:
        """Mostly a pending hold (when there is one), sometimes any hold at all."""
        pending = [h for h in self.model.holds.values() if h.status == "pending"]
        if pending and data.draw(st.sampled_from([True, True, True, False]), label="pending"):
            return data.draw(st.sampled_from(pending), label="hold")
        return data.draw(st.sampled_from(list(self.model.holds.values())), label="hold")

    @precondition(lambda self: self.has_postable_currency())
    @rule(data=st.data(), two_legs=st.booleans())
    def hold(self, data: st.DataObject, two_legs: bool) -> None:
        currency = data.draw(st.sampled_from(self.currencies_with_two_accounts()))
        legs = self.draw_legs(data, currency, max_side=1 if two_legs else 2)
        key = self.key("hold")
        request = HoldRequest(key, "test.hold", self.postings(data, legs), self.expires_at,
                              description=f"hold {key}")
        outcome = self.model.attempt(reserves=legs, postable=legs)
        if isinstance(outcome, Rejection):
            err = self.refused(outcome.error, lambda conn: ledger.hold(conn, request))
            self.check_rejection(outcome, err, key)
            return
        held = self.tx(lambda conn: ledger.hold(conn, request))
        assert not held.replayed and held.status is ledger.HoldStatus.PENDING
        assert [(leg.account_id, leg.amount) for leg in held.legs] == legs
        self.model.commit(outcome)
        model_hold = self.model.holds[held.id] = MHold(held.id, request, legs)
        note("posted: hold")
        # resolve it straight away, sometimes (other rules resolve holds later, interleaved)
        then = data.draw(st.sampled_from(["leave", "full", "part", "void"]), label="then")
        if then == "void":
            self._void_hold(model_hold)
        elif then != "leave":
            self._post_hold(data, model_hold, then)

    def _replay_hold(self, data: st.DataObject) -> None:
        same = data.draw(st.booleans(), label="same request")
        original = self.model.holds[data.draw(st.sampled_from(list(self.model.holds)))]
        request = original.request
        if same:
            again = self.tx(lambda conn: ledger.hold(conn, request))
            assert again.replayed and again.id == original.id
            assert again.status.value == original.status
            return
        other = HoldRequest(request.idempotency_key, request.kind, request.postings,
                            request.expires_at + dt.timedelta(hours=1), request.description)
        err = self.refused(ledger.IdempotencyConflict, lambda conn: ledger.hold(conn, other))
        assert err.idempotency_key == request.idempotency_key

    @precondition(lambda self: bool(self.model.holds))
    @rule(data=st.data(), how=st.sampled_from(["full", "part", "too much"]))
    def post_hold(self, data: st.DataObject, how: str) -> None:
        self._post_hold(data, self.pick_hold(data), how)

    def _post_hold(self, data: st.DataObject, held: MHold, how: str) -> None:
        amount: Money | None = None
        legs = list(held.legs)
        if how != "full" and len(held.legs) == 2:
            (debit_id, reserved), (credit_id, _) = sorted(held.legs, key=lambda leg: -leg[1])
            currency = self.model.accounts[debit_id].currency
            units = (data.draw(st.integers(1, reserved), label="part") if how == "part"
                     else reserved + data.draw(st.integers(1, 100), label="excess"))
            amount = money(units, currency)
            legs = [(debit_id, units), (credit_id, -units)]

        def work(conn: AsyncConnection) -> Awaitable[ledger.JournalEntry]:
            return ledger.post_hold(conn, held.id, amount=amount)

        if how == "too much" and amount is not None:
            # the amount is checked against the reservation first, whatever the status
            self.refused(ledger.HoldAmountExceeded, work)
            return
        if held.status == "posted":
            assert held.posted_entry_id is not None
            if legs == self.model.entries[held.posted_entry_id].legs:
                # the same call under the same default key replays the entry it posted
                again = self.tx(work)
                assert again.replayed and again.id == held.posted_entry_id
            else:
                # the same key asking for another amount is another request
                err = self.refused(ledger.IdempotencyConflict, work)
                assert err.idempotency_key == f"hold:{held.id}:post"
            return
        if held.status != "pending":
            err = self.refused(ledger.HoldAlreadyResolved, work)
            assert err.status == held.status
            return
        outcome = self.model.attempt(posts=legs, releases=held.legs)
        if isinstance(outcome, Rejection):
            err = self.refused(outcome.error, work)
            self.check_rejection(outcome, err, f"hold:{held.id}:post")
            return
        entry = self.tx(work)
        self.check_new_entry(entry, legs, outcome)
        self.model.commit(outcome)
        held.status, held.posted_entry_id = "posted", entry.id
        note(f"posted: hold posted ({'part' if amount else 'full'})")
        self.model.entries[entry.id] = MEntry(entry.id, entry.idempotency_key, legs)

    @precondition(lambda self: bool(self.model.holds))
    @rule(data=st.data())
    def void_hold(self, data: st.DataObject) -> None:
        self._void_hold(self.pick_hold(data))

    def _void_hold(self, held: MHold) -> None:

        def work(conn: AsyncConnection) -> Awaitable[ledger.Hold]:
            return ledger.void_hold(conn, held.id)

        if held.status in ("posted", "expired"):
            err = self.refused(ledger.HoldAlreadyResolved, work)
            assert err.status == held.status
            return
        voided = self.tx(work)
        assert voided.status is ledger.HoldStatus.VOIDED
        if held.status == "pending":
            outcome = self.model.attempt(releases=held.legs)
            assert not isinstance(outcome, Rejection)
            self.model.commit(outcome)
            held.status = "voided"

    @precondition(lambda self: any(h.status == "pending" for h in self.model.holds.values()))
    @rule(now=st.sampled_from([False, False, True]))
    def expire_every_pending_hold(self, now: bool) -> None:
        if not now:
            return  # (kept rare: expiring releases every pending hold at once)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
        expired = self.tx(lambda conn: ledger.expire_holds(conn, now=later))
        pending = [h for h in self.model.holds.values() if h.status == "pending"]
        assert set(expired) == {h.id for h in pending}
        for h in pending:
            outcome = self.model.attempt(releases=h.legs)
            assert not isinstance(outcome, Rejection)
            self.model.commit(outcome)
            h.status = "expired"

    # ---- the rules hypothesis chooses from (rarer variants drawn inside one rule, so the
    # ---- sequences spend most of their steps posting, holding and reversing)

    @rule(data=st.data(), what=st.sampled_from(["open", "open", "open", "reopen", "close"]))
    def change_the_chart(self, data: st.DataObject, what: str) -> None:
        if what == "open" and len(self.model.accounts) < MAX_ACCOUNTS:
            self._open_account(data)
        elif what == "close":
            self._close_account(data)
        else:
            self._reopen_existing_code(data)

    @rule(data=st.data())
    def bad_request(self, data: st.DataObject) -> None:
        variants = []
        if self.has_postable_currency():
            variants += [self._post_unbalanced, self._post_invalid_amount]
        if len({a.currency for a in self.model.accounts.values()}) >= 2:
            variants += [self._post_balanced_in_total_not_per_currency, self._post_wrong_currency]
        if variants:
            data.draw(st.sampled_from(variants), label="bad request")(data)

    @precondition(lambda self: any(e.request for e in self.model.entries.values()))
    @rule(data=st.data(), same=st.booleans())
    def reuse_entry_key(self, data: st.DataObject, same: bool) -> None:
        if same:
            self._replay_entry(data)
        else:
            self._reuse_key_for_another_request(data)

    @precondition(lambda self: bool(self.model.holds))
    @rule(data=st.data())
    def reuse_hold_key(self, data: st.DataObject) -> None:
        self._replay_hold(data)

    # ---- invariants, after every step

    @invariant()
    def books_match_the_model(self) -> None:
        self.harness.run(self._check_books())

    async def _check_books(self) -> None:
        model = self.model
        async with self.engine.connect() as conn:
            stored = {r.account_id: r for r in await conn.execute(sa.text(
                "SELECT b.account_id, b.posted_debits, b.posted_credits, b.pending_debits,"
                " b.pending_credits, b.seq, a.status, a.balance_limit"
                " FROM account_balances b JOIN accounts a ON a.id = b.account_id"))}
            assert set(stored) == set(model.accounts)
            for account_id, acct in model.accounts.items():
                row = stored[account_id]
                assert (row.posted_debits, row.posted_credits, row.pending_debits,
                        row.pending_credits, row.seq) == (
                    acct.posted_debits, acct.posted_credits, acct.pending_debits,
                    acct.pending_credits, acct.seq), acct.code
                assert row.status == ("closed" if acct.closed else "open")
                # no balance limit is broken, in the stored row itself
                if row.balance_limit == BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS:
                    assert row.posted_debits + row.pending_debits <= row.posted_credits
                elif row.balance_limit == BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS:
                    assert row.posted_credits + row.pending_credits <= row.posted_debits

            # every account's postings sum to its model balance; every currency to zero
            sums = {r.account_id: (int(r.net), r.n, r.top) for r in await conn.execute(sa.text(
                "SELECT account_id, sum(amount) AS net, count(*) AS n, max(account_seq) AS top"
                " FROM postings GROUP BY account_id"))}
            for account_id, acct in model.accounts.items():
                assert sums.get(account_id, (0, 0, None)) == (
                    acct.net, acct.seq, acct.seq or None), acct.code
            per_currency = {r.currency: int(r.total) for r in await conn.execute(sa.text(
                "SELECT currency, sum(amount) AS total FROM postings GROUP BY currency"))}
            assert all(total == 0 for total in per_currency.values()), per_currency

            # exactly the entries and holds the model acknowledged, nothing else
            entry_ids = {r.id for r in await conn.execute(sa.text("SELECT id FROM journal_entries"))}
            assert {uuid.UUID(str(i)) for i in entry_ids} == set(model.entries)
            hold_status = {uuid.UUID(str(r.id)): r.status
                           for r in await conn.execute(sa.text("SELECT id, status FROM holds"))}
            assert hold_status == {h.id: h.status for h in model.holds.values()}

            # the ledger's own view agrees: balances, trial balance, verify
            for acct in model.accounts.values():
                bal = await ledger.balance(conn, acct.code)
                sign = 1 if acct.type.debit_normal else -1
                assert bal.posted == money(sign * acct.net, acct.currency)
                assert (bal.pending_debits, bal.pending_credits) == (
                    acct.pending_debits, acct.pending_credits)
                if acct.limit and (acct.limit is BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS) == (
                        acct.type.debit_normal):
                    # the limit guards the account's normal side: available never below zero
                    assert bal.available.amount >= 0, (acct.code, bal)
            trial = await ledger.trial_balance(conn)
            assert trial.balanced, trial.totals
            by_code = {row.code: row for row in trial.rows}
            for acct in model.accounts.values():
                row = by_code[acct.code]
                assert row.debit - row.credit == acct.net
            report = await ledger.verify(conn)
            assert report.ok, report.discrepancies
            assert report.entries == len(model.entries)
            assert report.postings == sum(len(e.legs) for e in model.entries.values())
            assert report.holds_pending == sum(
                h.status == "pending" for h in model.holds.values())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_random_operation_sequences_keep_the_books(backend: str, tmp_path: Path) -> None:
    harness = Harness(backend, tmp_path)
    try:
        # skip or fail exactly like the `db` fixture when PostgreSQL is unreachable
        harness.drop_database(*harness.fresh_database())

        class Machine(LedgerMachine):
            pass

        Machine.harness = harness
        OUTCOMES.clear()
        run_state_machine_as_test(Machine, settings=SETTINGS)
        print(backend, sorted(OUTCOMES.items()))
    finally:
        harness.loop.close()


def test_the_model_counts_limits_like_the_ledger() -> None:
    """A guard on the oracle itself: the model refuses what it should and names the
    account the ledger would name (the lowest id among those past their limit)."""
    model = Model()
    model.accounts = {
        1: MAccount(1, "bank", AccountType.ASSET, "CNY",
                    BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS, posted_debits=100),
        2: MAccount(2, "payable", AccountType.LIABILITY, "CNY",
                    BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS, posted_credits=50),
        3: MAccount(3, "free", AccountType.EXPENSE, "CNY", None),
    }
    ok = model.attempt(posts=[(2, 50), (1, -50)])
    assert isinstance(ok, dict) and ok[1].net == 50 and ok[2].net == 0
    too_much = model.attempt(posts=[(2, 60), (1, -60)])
    assert isinstance(too_much, Rejection) and too_much.account.code == "payable"
    assert too_much.shortfall == 10
    both = model.attempt(posts=[(2, 200), (1, -200)])
    assert isinstance(both, Rejection) and both.account.code == "bank" and both.shortfall == 100
    held = model.attempt(reserves=[(3, 80), (1, -80)])
    assert isinstance(held, dict) and held[1].pending_credits == 80
    model.commit(held)
    pending_counts = model.attempt(posts=[(3, 30), (1, -30)])
    assert isinstance(pending_counts, Rejection) and pending_counts.shortfall == 10
    released = model.attempt(posts=[(3, 80), (1, -80)], releases=[(3, 80), (1, -80)])
    assert isinstance(released, dict) and released[1].pending_credits == 0
    model.accounts[3].closed = True
    closed = model.attempt(posts=[(1, 5), (3, -5)], postable=[(1, 5), (3, -5)])
    assert isinstance(closed, Rejection) and closed.error is ledger.AccountClosed
