"""Which ledger accounts a bank account reconciles against, and how matching behaves.

    icbc = BankAccountConfig.for_bank("icbc", "CNY", tolerance=Money("1.00", "CNY"))

The conventions of the chart of accounts give the defaults: `1001.bank.<bank>` is our
account at the bank (the book balance the statement is compared with),
`1102.clearing.<bank>` what the bank owes us for captures and refunds,
`1103.clearing.payout` payouts sent but not yet on a statement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from reconciliation.errors import UnknownBankAccount
from reconciliation.schema import bank_accounts

FEE_ACCOUNT = "6602.expense.bank_fees"
DIFFERENCES_ACCOUNT = "6609.expense.reconciliation_differences"
PAYOUT_CLEARING = "1103.clearing.payout"
#: lanes a clearing account opened here gets: every capture at the bank debits it, and
#: the follower keeps a cursor per lane (as gateways opens it: 16)
CLEARING_LANES = 16

RULE_NAMES = ("exact_reference", "amount_date_reference", "batch", "many_to_one", "tolerance")


@dataclass(frozen=True)
class MatchingRules:
    """The rules run in the order of `RULE_NAMES`; each can be switched off."""

    enabled: tuple[str, ...] = RULE_NAMES
    #: how many days a booked item's date may be from the bank's value or booking date
    date_window_days: int = 3
    #: how alike a reference must be (0-100) for rule 2 and the tolerance rule
    fuzzy_threshold: int = 80
    #: a batch settlement's fee may be at most this many basis points of its gross
    max_fee_bps: int = 500
    #: lines without batch details count as batch settlements when the description
    #: contains one of these words (MT940, BAI2 and CSV carry no structured batch)
    batch_keywords: tuple[str, ...] = ("SETTLEMENT", "BATCH", "SETTLE")
    #: the most open items a subset-sum search for a batch considers
    batch_pool_limit: int = 60
    #: open book items become exceptions once they are this many days old
    item_grace_days: int = 0

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> MatchingRules:
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in doc.items() if k in known}
        return cls(**values)


@dataclass(frozen=True)
class BankAccountConfig:
    code: str
    currency: str
    bank_ledger_account: str
    clearing_account: str
    payout_clearing_account: str = PAYOUT_CLEARING
    fee_account: str = FEE_ACCOUNT
    differences_account: str = DIFFERENCES_ACCOUNT
    #: largest difference the engine (or a person) may write off, in minor units
    tolerance_minor: int = 0
    bank_account_number: str | None = None
    rules: MatchingRules = field(default_factory=MatchingRules)

    @classmethod
    def for_bank(cls, bank: str, currency: str, *, tolerance: Money | None = None,
                 bank_account_number: str | None = None,
                 rules: MatchingRules | None = None) -> BankAccountConfig:
        return cls(
            code=bank, currency=currency.upper(),
            bank_ledger_account=f"1001.bank.{bank}",
            clearing_account=f"1102.clearing.{bank}",
            tolerance_minor=ledger.to_minor(tolerance) if tolerance is not None else 0,
            bank_account_number=bank_account_number,
            rules=rules or MatchingRules(),
        )

    @property
    def item_accounts(self) -> tuple[str, ...]:
        """The ledger accounts whose postings a statement line can explain."""
        return (self.clearing_account, self.payout_clearing_account, self.bank_ledger_account)


@dataclass(frozen=True)
class BankAccount:
    """A configured bank account with the ledger ids of its accounts."""

    id: int
    config: BankAccountConfig
    bank_ledger_id: int
    clearing_id: int
    payout_clearing_id: int

    @property
    def code(self) -> str:
        return self.config.code

    @property
    def currency(self) -> str:
        return self.config.currency

    @property
    def item_account_ids(self) -> tuple[int, ...]:
        return (self.clearing_id, self.payout_clearing_id, self.bank_ledger_id)

    def role_of(self, account_id: int) -> str:
        if account_id == self.bank_ledger_id:
            return "bank"
        return "payout" if account_id == self.payout_clearing_id else "clearing"


def _specs(config: BankAccountConfig) -> list[ledger.AccountSpec]:
    asset, expense = ledger.AccountType.ASSET, ledger.AccountType.EXPENSE
    cur = config.currency
    return [
        ledger.AccountSpec(config.bank_ledger_account, f"Bank account at {config.code}", asset, cur),
        ledger.AccountSpec(config.clearing_account, f"Owed by {config.code} for captures",
                           asset, cur, lanes=CLEARING_LANES),
        ledger.AccountSpec(config.payout_clearing_account, "Payouts in flight", asset, cur),
        ledger.AccountSpec(config.fee_account, "Bank fees", expense, cur),
        ledger.AccountSpec(config.differences_account, "Reconciliation differences", expense,
                           cur),
    ]


async def configure_bank_account(conn: AsyncConnection, config: BankAccountConfig) -> BankAccount:
    """Create or update a bank account's configuration; opens the ledger accounts it names
    that do not exist yet (an existing account is used as it is)."""
    for spec in _specs(config):
        if await ledger.find_account(conn, spec.code) is None:
            await ledger.open_account(conn, spec)
    values = {
        "bank_account_number": config.bank_account_number, "currency": config.currency,
        "bank_ledger_account": config.bank_ledger_account,
        "clearing_account": config.clearing_account,
        "payout_clearing_account": config.payout_clearing_account,
        "fee_account": config.fee_account, "differences_account": config.differences_account,
        "tolerance_minor": config.tolerance_minor, "rules": config.rules.to_json(),
    }
    existing = await conn.scalar(sa.select(bank_accounts.c.id)
                                 .where(bank_accounts.c.code == config.code))
    if existing is None:
        await conn.execute(bank_accounts.insert().values(
            code=config.code, created_at=dt.datetime.now(dt.UTC), **values))
    else:
        await conn.execute(bank_accounts.update().where(bank_accounts.c.id == existing)
                           .values(**values))
    return await get_bank_account(conn, config.code)


async def get_bank_account(conn: AsyncConnection, ref: str | int) -> BankAccount:
    """By its code (`icbc`), its ledger account code (`1001.bank.icbc`), the bank's account
    number, or its id."""
    table = bank_accounts
    if isinstance(ref, int):
        where: Any = table.c.id == ref
    else:
        where = sa.or_(table.c.code == ref, table.c.bank_ledger_account == ref,
                       table.c.bank_account_number == ref)
    row = (await conn.execute(sa.select(table).where(where).order_by(table.c.id))).first()
    if row is None:
        hint = _configure_hint(ref)
        raise UnknownBankAccount(
            f"no bank account {ref!r} is configured for reconciliation; {hint}")
    config = BankAccountConfig(
        code=row.code, currency=row.currency, bank_ledger_account=row.bank_ledger_account,
        clearing_account=row.clearing_account,
        payout_clearing_account=row.payout_clearing_account, fee_account=row.fee_account,
        differences_account=row.differences_account, tolerance_minor=row.tolerance_minor,
        bank_account_number=row.bank_account_number,
        rules=MatchingRules.from_json(dict(row.rules)),
    )
    ids = []
    for code in (config.bank_ledger_account, config.clearing_account,
                 config.payout_clearing_account):
        ids.append((await ledger.get_account(conn, code)).id)
    return BankAccount(row.id, config, ids[0], ids[1], ids[2])


def _configure_hint(ref: str | int) -> str:
    """The command that configures the account `ref` names (`1001.bank.icbc` -> icbc)."""
    text = str(ref)
    prefix = "1001.bank."
    code = text[len(prefix):] if text.startswith(prefix) else text
    if isinstance(ref, int) or not code:
        code = "BANK"
    return (f"configure it first: paycore recon configure {code} --currency CUR "
            f"[--account-number NUMBER] (paycore recon accounts lists those configured)")


async def list_bank_accounts(conn: AsyncConnection) -> list[BankAccount]:
    ids = (await conn.scalars(sa.select(bank_accounts.c.id).order_by(bank_accounts.c.code))).all()
    return [await get_bank_account(conn, int(i)) for i in ids]
