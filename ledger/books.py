"""The locked working set of a write: one balance row (lane) of every account it touches.

A writer locks those rows in account-id order (`SELECT ... FOR UPDATE` on PostgreSQL; the
`BEGIN IMMEDIATE` write lock on SQLite), so two writers can never wait on each other in a
cycle, then changes the in-memory copies and writes them back in one statement. An
account split into lanes (ledger.ddl_lanes) has a row per lane: the writer locks one, and
its sums, sequence number and chain head are that lane's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import store
from ledger.errors import AccountClosed, BalanceLimitExceeded, CurrencyMismatch, UnknownAccount
from ledger.money import from_minor
from ledger.types import AccountRef, AccountStatus, AccountType, BalanceLimit


@dataclass
class AccountState:
    id: int
    code: str
    type: AccountType
    currency: str
    status: AccountStatus
    balance_limit: BalanceLimit | None
    posted_debits: int
    posted_credits: int
    pending_debits: int
    pending_credits: int
    seq: int
    head_hash: str
    #: booking time of the lane's last posting (None: it has none)
    last_booked_at: dt.datetime | None = None
    #: the locked lane, and how many the account has
    lane: int = 0
    lanes: int = 1
    dirty: bool = False

    @property
    def posted_net(self) -> int:
        return self.posted_debits - self.posted_credits

    def shortfall(self) -> int:
        """How far the account is past its balance limit (0 when within it)."""
        if self.balance_limit is BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS:
            return max(0, self.posted_debits + self.pending_debits - self.posted_credits)
        if self.balance_limit is BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS:
            return max(0, self.posted_credits + self.pending_credits - self.posted_debits)
        return 0

    def require_postable(self, currency: str) -> None:
        if self.status is not AccountStatus.OPEN:
            raise AccountClosed(self.code)
        if currency != self.currency:
            raise CurrencyMismatch(self.code, self.currency, currency)

    def post(self, amount: int, booked_at: dt.datetime) -> None:
        if amount > 0:
            self.posted_debits += amount
        else:
            self.posted_credits -= amount
        self.seq += 1
        self.last_booked_at = booked_at
        self.dirty = True

    def reserve(self, amount: int, sign: int = 1) -> None:
        """Add (sign=1) or release (sign=-1) a pending amount."""
        if amount > 0:
            self.pending_debits += sign * amount
        else:
            self.pending_credits -= sign * amount
        self.dirty = True


class LockedAccounts:
    def __init__(self, states: Iterable[AccountState]) -> None:
        self.by_id: dict[int, AccountState] = {s.id: s for s in states}
        self.by_code: dict[str, AccountState] = {s.code: s for s in self.by_id.values()}

    @classmethod
    async def lock(cls, conn: AsyncConnection, refs: Iterable[AccountRef],
                   *, lane_zero: bool = False) -> LockedAccounts:
        """Lock one lane of each account: the writer's, or lane 0 (`lane_zero`: holds keep
        their pending amounts there)."""
        refs = list(refs)
        ids = sorted({r for r in refs if isinstance(r, int)})
        codes = sorted({r for r in refs if isinstance(r, str)})
        if not ids and not codes:
            return cls([])
        locked = cls(
            AccountState(
                id=r[0], code=r[1], type=AccountType(r[2]), currency=r[3],
                status=AccountStatus(r[4]), balance_limit=BalanceLimit(r[5]) if r[5] else None,
                posted_debits=r[6], posted_credits=r[7], pending_debits=r[8],
                pending_credits=r[9], seq=r[10], head_hash=r[11], last_booked_at=r[12],
                lane=r[13], lanes=r[14],
            )
            for r in await store.lock_balances(conn, ids, codes, lane_zero=lane_zero)
        )
        missing = [i for i in ids if i not in locked.by_id] + [c for c in codes if c not in locked.by_code]
        if missing:
            raise UnknownAccount(missing)
        return locked

    def booking_time(self, now: dt.datetime) -> dt.datetime:
        """`now`, or the last booking time of a locked account if that is later (a clock
        behind another writer's): an account's postings are booked in sequence order."""
        return max([now, *(s.last_booked_at for s in self.by_id.values()
                           if s.last_booked_at is not None)])

    def __getitem__(self, ref: AccountRef) -> AccountState:
        state = self.by_id.get(ref) if isinstance(ref, int) else self.by_code.get(ref)
        if state is None:
            raise UnknownAccount([ref])
        return state

    def undo_point(self, refs: Iterable[AccountRef]) -> Callable[[], None]:
        """A function that puts these accounts' in-memory states back as they are now: a
        refused entry's postings leave no trace on the next entry of the same write."""
        saved = [(state, dataclasses.replace(state)) for state in {id(s): s for s in (
            self[r] for r in refs)}.values()]

        def undo() -> None:
            for state, copy in saved:
                state.__dict__.update(copy.__dict__)

        return undo

    def check_limits(self, account_ids: Iterable[int], idempotency_key: str) -> None:
        for account_id in sorted(set(account_ids)):
            state = self.by_id[account_id]
            short = state.shortfall()
            if short:
                assert state.balance_limit is not None
                raise BalanceLimitExceeded(
                    state.code, state.balance_limit.value,
                    f"{from_minor(short, state.currency).amount} {state.currency}", idempotency_key,
                )

    def dirty_rows(self) -> list[store.BalanceRow]:
        """The changed balance rows, marked clean: the caller is about to write them."""
        rows: list[store.BalanceRow] = []
        for s in self.by_id.values():
            if s.dirty:
                rows.append((s.id, s.lane, s.posted_debits, s.posted_credits, s.pending_debits,
                             s.pending_credits, s.seq, s.head_hash, s.last_booked_at))
                s.dirty = False
        return rows

    async def save(self, conn: AsyncConnection) -> None:
        await store.write(conn, (), (), self.dirty_rows())
