"""Which statements of a file belong to the bank account being imported.

A bank's export often holds several accounts: an OFX download with the current account
and the credit card, an MT940 file with one `:25:` per account, a BAI2 file with a group
of accounts. Only the statements whose account identifier is the configured bank
account's are imported; each other one is reported as skipped, with its account and
currency, so nothing is filed under the wrong account and nothing is dropped unseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciliation.config import BankAccount
from reconciliation.errors import AmbiguousStatementFile, StatementForAnotherAccount
from reconciliation.statement import Statement


@dataclass(frozen=True, slots=True)
class SkippedStatement:
    """A statement of the file that is another account's, left out of the import."""

    statement_id: str
    account: str
    currency: str
    lines: int

    def describe(self) -> str:
        lines = f"{self.lines} line" + ("" if self.lines == 1 else "s")
        return f"statement {self.statement_id} of account {self.account} ({self.currency}, {lines})"

    def to_json(self) -> dict[str, object]:
        return {"statement_id": self.statement_id, "account": self.account,
                "currency": self.currency, "lines": self.lines}


@dataclass(frozen=True, slots=True)
class Selection:
    chosen: tuple[Statement, ...]
    skipped: tuple[SkippedStatement, ...]


def normalize_account(text: str) -> str:
    return "".join(text.split()).upper()


def accounts_match(configured: str, stated: str) -> bool:
    """The same account, however the file writes it: spaces and case aside, and an MT940
    `:25:` may lead with the bank's BIC or sort code (`HSBCHKHHXXX/004123456001`)."""
    want, have = normalize_account(configured), normalize_account(stated)
    if not want or not have:
        return False
    return have == want or have.rsplit("/", 1)[-1] == want.rsplit("/", 1)[-1]


def _skipped(statement: Statement) -> SkippedStatement:
    return SkippedStatement(statement.statement_id, statement.account, statement.currency,
                            len(statement.lines))


def _listing(statements: Sequence[Statement]) -> str:
    accounts = dict.fromkeys((s.account or "(none)", s.currency) for s in statements)
    return ", ".join(f"{account} ({currency})" for account, currency in accounts)


def select_for_account(
    bank: BankAccount, statements: Sequence[Statement], *, source_name: str = ""
) -> Selection:
    """The statements that are `bank`'s, and the others as skipped.

    With an account number configured, a statement is the bank account's when its
    account identifier is that number; a statement naming no account at all (a CSV
    export) is taken as the caller's. Without one, a file of a single account is taken
    whole, and a file of several is refused: which one is meant cannot be guessed.
    Refused too: a file with no statement of the configured account.
    """
    name = f"{source_name}: " if source_name else ""
    expected = bank.config.bank_account_number
    if not expected:
        accounts = {normalize_account(s.account) for s in statements if s.account}
        if len(accounts) > 1:
            raise AmbiguousStatementFile(
                f"{name}the file holds statements of {len(accounts)} accounts "
                f"({_listing(statements)}) and bank account {bank.code!r} has no account "
                f"number configured; name the one it is: paycore recon configure "
                f"{bank.code} --currency {bank.currency} --account-number ACCOUNT"
            )
        return Selection(tuple(statements), ())
    chosen = tuple(s for s in statements if not s.account or accounts_match(expected, s.account))
    taken = {id(s) for s in chosen}
    if not chosen:
        raise StatementForAnotherAccount(
            f"{name}no statement in the file is for account {expected} ({bank.code}); "
            f"the file holds {_listing(statements)}"
        )
    skipped = tuple(_skipped(s) for s in statements if id(s) not in taken)
    return Selection(chosen, skipped)
