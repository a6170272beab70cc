"""Configuration of the persisted lending book: GL mapping, disbursement, settlement offset
and funding. Products, the credit-line and underwriting policies are configured in their
own modules; `LendingConfig` gathers them for the services.

The GL mapping follows Apache Fineract's "accounting rules for loan products": each product
names one ledger account per slot, so two products can book to different receivables and
income accounts. `{product}` and `{borrower}` in a code are filled in.
"""

from __future__ import annotations

import datetime as dt
import enum
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from ledger import AccountSpec, AccountType, BalanceLimit
from lending.daycount import DayCount
from lending.errors import InvalidInput, InvalidPolicy
from lending.money import check_minor, check_rate
from lending.products import PRODUCTS, LoanProduct
from lending.underwriting import UnderwritingPolicy

__all__ = [
    "DEFAULT_CONFIG",
    "DisbursementMode",
    "FundingLine",
    "GLMapping",
    "LendingConfig",
    "SettlementPolicy",
    "ensure_accounts",
    "open_books",
]

_LIMIT_LIABILITY = BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS
_LIMIT_ASSET = BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS


class DisbursementMode(enum.StrEnum):
    #: credit the borrower's marketplace balance (their supplier payable)
    MARKETPLACE_BALANCE = "balance"
    #: credit the payable and pay it out at once through a gateways payout (paycore)
    PAYOUT = "payout"


@dataclass(frozen=True)
class GLMapping:
    """Ledger account codes per Fineract-style slot."""

    #: the loans themselves (principal outstanding)
    loan_portfolio: str = "1301.loans.{product}"
    interest_receivable: str = "1302.interest_receivable.{product}"
    fee_receivable: str = "1303.fee_receivable.{product}"
    penalty_receivable: str = "1304.penalty_receivable.{product}"
    interest_income: str = "6011.income.loan_interest.{product}"
    fee_income: str = "6012.income.loan_fees.{product}"
    penalty_income: str = "6013.income.loan_penalty.{product}"
    recovery_income: str = "6014.income.loan_recovery.{product}"
    losses_written_off: str = "6701.loss.loans_written_off.{product}"
    #: money received beyond what a loan owed, held for the borrower
    overpayment_liability: str = "2203.overpayment.{product}"
    #: where a loan is disbursed to and a settlement offset is taken from
    supplier_payable: str = "2202.payable.{borrower}"
    #: borrower repayments received by bank transfer, until the statement proves them
    repayment_clearing: str = "1104.clearing.loan_repayments"

    def code(self, slot: str, product: str, borrower: str = "") -> str:
        template: str = getattr(self, slot)
        return template.format(product=product, borrower=borrower)

    def specs(self, product: LoanProduct) -> list[AccountSpec]:
        """The product's accounts (the per-borrower payable is opened with the borrower)."""
        p, cur = product.code, product.currency
        A, L, Inc, X = (AccountType.ASSET, AccountType.LIABILITY, AccountType.INCOME,
                        AccountType.EXPENSE)
        rows: list[tuple[str, str, AccountType, BalanceLimit | None]] = [
            ("loan_portfolio", f"Loans outstanding: {p}", A, _LIMIT_ASSET),
            ("interest_receivable", f"Loan interest receivable: {p}", A, _LIMIT_ASSET),
            ("fee_receivable", f"Loan fees receivable: {p}", A, _LIMIT_ASSET),
            ("penalty_receivable", f"Loan penalty receivable: {p}", A, _LIMIT_ASSET),
            ("interest_income", f"Loan interest income: {p}", Inc, None),
            ("fee_income", f"Loan fee income: {p}", Inc, None),
            ("penalty_income", f"Loan penalty income: {p}", Inc, None),
            ("recovery_income", f"Recoveries of written-off loans: {p}", Inc, None),
            ("losses_written_off", f"Loans written off: {p}", X, None),
            ("overpayment_liability", f"Loan overpayments held for borrowers: {p}", L,
             _LIMIT_LIABILITY),
            ("repayment_clearing", "Loan repayments received, not yet on a statement", A, None),
        ]
        return [AccountSpec(self.code(slot, p), name, typ, cur, balance_limit=limit,
                            metadata={"lending_slot": slot})
                for slot, name, typ, limit in rows]


@dataclass(frozen=True)
class FundingLine:
    """The bank credit line the loans are funded from, at a benchmark rate.

    Each disbursement draws its principal (Dr fund source, Cr funding liability); the
    accrual run accrues the line's interest on the principal outstanding by the same
    exact daily rule (Dr funding interest expense, Cr interest payable to the bank); each
    principal repayment repays the line. So the books show the lending margin.
    """

    name: str = "bank credit line"
    benchmark_rate: Decimal = Decimal("0.0345")  # e.g. a one-year LPR
    day_count: DayCount = DayCount.ACT_360
    fund_source: str = "1001.bank.funding"
    liability: str = "2501.funding.credit_line"
    interest_payable: str = "2502.funding.interest_payable"
    interest_expense: str = "6411.expense.funding_interest"

    def __post_init__(self) -> None:
        try:
            check_rate(self.benchmark_rate, "benchmark rate")
        except InvalidInput as exc:
            raise InvalidPolicy(str(exc)) from None

    def specs(self, currency: str) -> list[AccountSpec]:
        return [
            AccountSpec(self.fund_source, f"Bank account funded by the {self.name}",
                        AccountType.ASSET, currency, metadata={"lending_slot": "fund_source"}),
            AccountSpec(self.liability, f"Drawn on the {self.name}", AccountType.LIABILITY,
                        currency, metadata={"lending_slot": "funding_liability"}),
            AccountSpec(self.interest_payable, f"Interest owed on the {self.name}",
                        AccountType.LIABILITY, currency,
                        metadata={"lending_slot": "funding_interest_payable"}),
            AccountSpec(self.interest_expense, f"Interest on the {self.name}",
                        AccountType.EXPENSE, currency,
                        metadata={"lending_slot": "funding_interest_expense"}),
        ]


@dataclass(frozen=True)
class SettlementPolicy:
    """Which loans a settlement offsets before anything is paid out.

    `offset_within_days`: a loan is offset when it matures within this many days of the
    settlement (0: only what is due or past due; None: everything outstanding, paying the
    interest of the days used). Loans are taken past-due first, then by maturity.
    """

    offset_within_days: int | None = 7

    def __post_init__(self) -> None:
        if self.offset_within_days is not None:
            try:
                check_minor(self.offset_within_days, "offset window")
            except InvalidInput as exc:
                raise InvalidPolicy(str(exc)) from None

    def offsets(self, maturity: dt.date, on: dt.date) -> bool:
        return self.offset_within_days is None or (maturity - on).days <= self.offset_within_days


@dataclass(frozen=True)
class LendingConfig:
    products: Mapping[str, LoanProduct] = field(default_factory=lambda: PRODUCTS)
    underwriting: UnderwritingPolicy = field(default_factory=UnderwritingPolicy)
    gl: GLMapping = field(default_factory=GLMapping)
    disbursement: DisbursementMode = DisbursementMode.MARKETPLACE_BALANCE
    settlement: SettlementPolicy = field(default_factory=SettlementPolicy)
    funding: FundingLine | None = field(default_factory=FundingLine)

    def product(self, code: str) -> LoanProduct:
        try:
            return self.products[code]
        except KeyError:
            raise InvalidInput(
                f"unknown loan product {code!r}; known: {', '.join(sorted(self.products))}"
            ) from None

    def account_specs(self) -> list[AccountSpec]:
        specs: dict[str, AccountSpec] = {}
        for product in self.products.values():
            for spec in self.gl.specs(product):
                specs.setdefault(spec.code, spec)
            if self.funding is not None:
                for spec in self.funding.specs(product.currency):
                    specs.setdefault(spec.code, spec)
        return list(specs.values())


DEFAULT_CONFIG = LendingConfig(products=MappingProxyType(dict(PRODUCTS)))


# engines whose books are known to hold a config's accounts (opened in a committed
# transaction by `open_books`); accounts are never deleted (short of dropping the schema),
# so the answer cannot go stale
_OPENED: weakref.WeakKeyDictionary[Any, list[LendingConfig]] = weakref.WeakKeyDictionary()


def _known(engine: Any, config: LendingConfig) -> bool:
    return any(c is config for c in _OPENED.get(engine, ()))


async def ensure_accounts(conn: AsyncConnection, config: LendingConfig) -> None:
    """Open the configured GL accounts (idempotent), in the caller's transaction."""
    if _known(conn.engine.sync_engine, config):
        return
    for spec in config.account_specs():
        await ledger.ensure_account(conn, spec)


async def open_books(engine: AsyncEngine, config: LendingConfig) -> None:
    """Open the configured GL accounts in a transaction of their own, once per engine."""
    if _known(engine.sync_engine, config):
        return
    async with engine.begin() as conn:
        await ensure_accounts(conn, config)
    _OPENED.setdefault(engine.sync_engine, []).append(config)
