"""The ledger's errors: a small hierarchy a caller can catch precisely.

Every error leaves the books untouched: the ledger raises before it writes, and a
database-level rejection aborts the caller's transaction as a whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""

    #: a short machine-readable name, used as the problem type by the HTTP API
    code = "ledger-error"


class InvalidRequest(LedgerError):
    """The request is malformed in a way no database state can change."""

    code = "invalid-request"


class InvalidAmount(InvalidRequest):
    """Zero, negative, or more precise than the currency allows."""

    code = "invalid-amount"


class UnbalancedEntry(InvalidRequest):
    """Debits and credits of an entry differ in at least one currency."""

    code = "unbalanced-entry"

    def __init__(self, idempotency_key: str, differences: Mapping[str, str]) -> None:
        self.idempotency_key = idempotency_key
        #: currency -> debits minus credits, as a decimal string in that currency
        self.differences = dict(differences)
        detail = ", ".join(f"{cur} debits exceed credits by {diff}" if not diff.startswith("-")
                           else f"{cur} credits exceed debits by {diff[1:]}"
                           for cur, diff in sorted(self.differences.items()))
        super().__init__(f"entry {idempotency_key!r} does not balance: {detail}")


class AccountError(LedgerError):
    code = "account-error"


class UnknownAccount(AccountError):
    code = "unknown-account"

    def __init__(self, refs: Sequence[object]) -> None:
        self.refs = list(refs)
        names = ", ".join(repr(r) for r in self.refs)
        super().__init__(f"no such account: {names}")


class AccountExists(AccountError):
    code = "account-exists"

    def __init__(self, code: str) -> None:
        self.account_code = code
        super().__init__(f"an account with code {code!r} already exists with a different definition")


class AccountClosed(AccountError):
    code = "account-closed"

    def __init__(self, account_code: str) -> None:
        self.account_code = account_code
        super().__init__(f"account {account_code!r} is closed and accepts no postings")


class AccountNotEmpty(AccountError):
    code = "account-not-empty"

    def __init__(self, account_code: str, reason: str) -> None:
        self.account_code = account_code
        super().__init__(f"account {account_code!r} cannot be closed: {reason}")


class CurrencyMismatch(LedgerError):
    code = "currency-mismatch"

    def __init__(self, account_code: str, account_currency: str, given: str) -> None:
        self.account_code = account_code
        self.account_currency = account_currency
        self.given_currency = given
        super().__init__(
            f"account {account_code!r} is kept in {account_currency}; "
            f"a posting in {given} cannot go to it (use an FX account pair)"
        )


class BalanceLimitExceeded(LedgerError):
    code = "balance-limit-exceeded"

    def __init__(self, account_code: str, limit: str, shortfall: str, idempotency_key: str) -> None:
        self.account_code = account_code
        self.limit = limit
        #: how much more cover the account would need, as a decimal string with currency
        self.shortfall = shortfall
        self.idempotency_key = idempotency_key
        super().__init__(
            f"entry {idempotency_key!r} would break the limit {limit} of account "
            f"{account_code!r}: short by {shortfall}"
        )


class BalanceOutOfRange(LedgerError):
    """An entry whose amounts are each in range, but which would take an account's running
    posted debits or credits (of the lane it writes) past the books' 64-bit integers; or a
    hold that would take an account's pending debits or credits past them."""

    code = "balance-out-of-range"

    #: the most minor units an account's lane keeps as posted debits or as posted credits
    #: (and as pending debits or pending credits)
    LARGEST = 2**63 - 1

    def __init__(self, account_code: str, side: str, idempotency_key: str) -> None:
        self.account_code = account_code
        #: "debits" or "credits" (posted), "pending debits" or "pending credits" (a
        #: hold's): the running sum the request would overflow
        self.side = side
        self.idempotency_key = idempotency_key
        what = side if side.startswith("pending ") else f"posted {side}"
        super().__init__(
            f"{'hold' if side.startswith('pending ') else 'entry'} {idempotency_key!r} "
            f"would take the {what} of account {account_code!r} past the most the books "
            f"keep ({self.LARGEST} minor units); nothing was written"
        )


class IdempotencyConflict(LedgerError):
    code = "idempotency-conflict"

    def __init__(self, idempotency_key: str) -> None:
        self.idempotency_key = idempotency_key
        super().__init__(
            f"idempotency key {idempotency_key!r} was already used for a different request; "
            "use a new key for a new request"
        )


class EntryNotFound(LedgerError):
    code = "entry-not-found"

    def __init__(self, entry_id: object) -> None:
        self.entry_id = entry_id
        super().__init__(f"no journal entry {entry_id}")


class AlreadyReversed(LedgerError):
    code = "already-reversed"

    def __init__(self, entry_id: object, reversal_id: object) -> None:
        self.entry_id = entry_id
        self.reversal_id = reversal_id
        super().__init__(f"journal entry {entry_id} was already reversed by {reversal_id}")


class HoldError(LedgerError):
    code = "hold-error"


class HoldNotFound(HoldError):
    code = "hold-not-found"

    def __init__(self, hold_id: object) -> None:
        self.hold_id = hold_id
        super().__init__(f"no hold {hold_id}")


class HoldAlreadyResolved(HoldError):
    code = "hold-already-resolved"

    def __init__(self, hold_id: object, status: str) -> None:
        self.hold_id = hold_id
        self.status = status
        super().__init__(f"hold {hold_id} is already {status}")


class HoldExpired(HoldError):
    code = "hold-expired"

    def __init__(self, hold_id: object, expires_at: object) -> None:
        self.hold_id = hold_id
        self.expires_at = expires_at
        super().__init__(f"hold {hold_id} expired at {expires_at}; its reservation is released")


class HoldAmountExceeded(HoldError):
    code = "hold-amount-exceeded"

    def __init__(self, hold_id: object, detail: str) -> None:
        self.hold_id = hold_id
        super().__init__(f"cannot post more than hold {hold_id} reserved: {detail}")


class CheckpointError(LedgerError):
    """A checkpoint or an account proof that cannot be trusted: malformed, signed by a key
    the verifier does not trust, altered after signing, or not matching its own root."""

    code = "checkpoint-error"


class SubmitError(LedgerError):
    """The coalescing write path (`ledger.Coalescer`) could not take or settle an entry."""

    code = "submit-error"


class SubmitQueueFull(SubmitError):
    """More entries are waiting than the coalescer holds: nothing was queued; retry later."""

    code = "submit-queue-full"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the ledger's write queue is full ({limit} entries waiting); "
                         "nothing was queued: retry shortly with the same idempotency key")


class CoalescerClosed(SubmitError):
    """The coalescer is shutting down and takes no more entries; nothing was queued."""

    code = "coalescer-closed"

    def __init__(self) -> None:
        super().__init__("the ledger's write queue is closed (the service is stopping); "
                         "nothing was queued: retry with the same idempotency key")


class SubmitOutcomeUnknown(SubmitError):
    """The entry's transaction may or may not have committed (the connection was lost at
    COMMIT and the ledger could not be read back): it was not acknowledged."""

    code = "submit-outcome-unknown"

    def __init__(self, idempotency_key: str, cause: str) -> None:
        self.idempotency_key = idempotency_key
        super().__init__(
            f"entry {idempotency_key!r} may or may not have been posted ({cause}); submit it "
            "again with the same idempotency key: if it was posted, that is a replay")
