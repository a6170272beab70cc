"""The ledger's data: small immutable values, no I/O."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moneyed import Money

from ledger.money import from_minor

#: an account is named by its id or by its chart-of-accounts code
AccountRef = int | str
JSONObject = Mapping[str, Any]


class AccountType(enum.StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"

    @property
    def debit_normal(self) -> bool:
        return self in (AccountType.ASSET, AccountType.EXPENSE)


class BalanceLimit(enum.StrEnum):
    #: e.g. a customer or supplier liability that must never go into debit
    DEBITS_MUST_NOT_EXCEED_CREDITS = "debits_must_not_exceed_credits"
    #: e.g. a bank asset account that must never go into credit
    CREDITS_MUST_NOT_EXCEED_DEBITS = "credits_must_not_exceed_debits"


class AccountStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class HoldStatus(enum.StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


@dataclass(frozen=True)
class AccountSpec:
    code: str
    name: str
    type: AccountType
    currency: str
    balance_limit: BalanceLimit | None = None
    owner_ref: str | None = None
    metadata: JSONObject = field(default_factory=dict)
    #: balance rows its postings spread over, so that many writers post to it at once (a
    #: hot account, e.g. commission income); an account with a balance limit has one
    lanes: int = 1


@dataclass(frozen=True)
class Account:
    id: int
    code: str
    name: str
    type: AccountType
    currency: str
    balance_limit: BalanceLimit | None
    owner_ref: str | None
    status: AccountStatus
    metadata: JSONObject
    opened_at: dt.datetime
    lanes: int = 1


@dataclass(frozen=True)
class Posting:
    """One leg of an entry request: exactly one of `debit` or `credit`, positive."""

    account: AccountRef
    debit: Money | None = None
    credit: Money | None = None


@dataclass(frozen=True)
class EntryRequest:
    idempotency_key: str
    kind: str
    postings: tuple[Posting, ...] | list[Posting]
    effective_date: dt.date | None = None
    description: str = ""
    external_ref: str | None = None
    metadata: JSONObject = field(default_factory=dict)


@dataclass(frozen=True)
class HoldRequest:
    """A two-phase transfer: reserve now, post all or part (or void) later."""

    idempotency_key: str
    kind: str
    postings: tuple[Posting, ...] | list[Posting]
    expires_at: dt.datetime
    description: str = ""
    external_ref: str | None = None
    metadata: JSONObject = field(default_factory=dict)


@dataclass(frozen=True)
class PostedPosting:
    """A posting as written; (account_id, account_seq) is its identity."""

    account_id: int
    account_code: str
    #: signed minor units: debit > 0, credit < 0
    amount: int
    currency: str
    account_seq: int
    #: the posted debits minus credits of the posting's lane of the account after it (the
    #: account's, for an account of one lane)
    balance_after: int

    @property
    def money(self) -> Money:
        return from_minor(abs(self.amount), self.currency)

    @property
    def side(self) -> str:
        return "debit" if self.amount > 0 else "credit"


@dataclass(frozen=True)
class JournalEntry:
    id: uuid.UUID
    idempotency_key: str
    kind: str
    description: str
    effective_date: dt.date
    booked_at: dt.datetime
    reverses_entry_id: uuid.UUID | None
    external_ref: str | None
    metadata: JSONObject
    postings: tuple[PostedPosting, ...]
    #: True when this call found the entry already posted under its key
    replayed: bool = False


@dataclass(frozen=True)
class HoldLeg:
    account_id: int
    account_code: str
    amount: int
    currency: str


@dataclass(frozen=True)
class Hold:
    id: uuid.UUID
    idempotency_key: str
    kind: str
    description: str
    external_ref: str | None
    metadata: JSONObject
    status: HoldStatus
    created_at: dt.datetime
    expires_at: dt.datetime
    resolved_at: dt.datetime | None
    posted_entry_id: uuid.UUID | None
    legs: tuple[HoldLeg, ...]
    replayed: bool = False


@dataclass(frozen=True)
class Balance:
    """An account's balance on its normal side (debit for assets and expenses)."""

    account_id: int
    account_code: str
    currency: str
    debit_normal: bool
    #: posted debits minus credits, minor units
    posted_net: int
    pending_debits: int
    pending_credits: int
    #: None for the current balance; the booking time asked for otherwise
    as_of: dt.datetime | None = None

    def _normal(self, net: int) -> Money:
        return from_minor(net if self.debit_normal else -net, self.currency)

    @property
    def posted(self) -> Money:
        return self._normal(self.posted_net)

    @property
    def pending(self) -> Money:
        """The net effect pending holds would have on the posted balance."""
        return self._normal(self.pending_debits - self.pending_credits)

    @property
    def available(self) -> Money:
        """Posted, less every pending outflow; pending inflows are not yet available."""
        outflow = self.pending_credits if self.debit_normal else self.pending_debits
        sign = 1 if self.debit_normal else -1
        return from_minor(sign * self.posted_net - outflow, self.currency)


@dataclass(frozen=True)
class StatementLine:
    entry_id: uuid.UUID
    account_seq: int
    booked_at: dt.datetime
    effective_date: dt.date
    kind: str
    description: str
    external_ref: str | None
    #: signed minor units, debit > 0
    amount: int
    #: the account's running posted balance after this line, debit minus credit (of all
    #: its lanes: the statement's opening balance plus its lines up to this one)
    balance_after: int
    #: the lane the posting was written in (its `account_seq` is in that lane's range)
    lane: int = 0


@dataclass(frozen=True)
class AccountStatement:
    account: Account
    start: dt.date
    end: dt.date
    opening_net: int
    closing_net: int
    lines: tuple[StatementLine, ...]

    def normal(self, net: int) -> Money:
        return from_minor(net if self.account.type.debit_normal else -net, self.account.currency)

    @property
    def opening(self) -> Money:
        return self.normal(self.opening_net)

    @property
    def closing(self) -> Money:
        return self.normal(self.closing_net)


@dataclass(frozen=True)
class TrialBalanceRow:
    account_id: int
    code: str
    name: str
    type: AccountType
    currency: str
    #: the account's net balance in minor units, on the side it falls
    debit: int
    credit: int


@dataclass(frozen=True)
class TrialBalance:
    rows: tuple[TrialBalanceRow, ...]
    #: (type, currency) -> net debit minus credit
    by_type: Mapping[tuple[AccountType, str], int]
    #: currency -> (sum of debit balances, sum of credit balances)
    totals: Mapping[str, tuple[int, int]]

    @property
    def balanced(self) -> bool:
        return all(d == c for d, c in self.totals.values())


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    postings: int
    accounts: int
    holds_pending: int
    #: every discrepancy found, first one first; empty when the books prove out
    discrepancies: tuple[str, ...]
    #: how many signed checkpoints the books were held against
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    @property
    def first_discrepancy(self) -> str | None:
        return self.discrepancies[0] if self.discrepancies else None

    def summary(self) -> str:
        if self.ok:
            extended = (f"; the books extend {self.checkpoints} signed checkpoint"
                        f"{'s' if self.checkpoints != 1 else ''}" if self.checkpoints else "")
            return (f"verify: OK — {self.entries} entries, {self.postings} postings, "
                    f"{self.accounts} accounts, chains intact{extended}")
        return (f"verify: FAILED — {len(self.discrepancies)} discrepancies; first: "
                f"{self.discrepancies[0]}")
