"""Loan products as configuration: terms, pricing, fees, extension and delinquency policy.

A product is a frozen value checked once, when it is built: a product that exists is a
product that makes sense. Amounts are integer minor units of the product's currency.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from lending.calendar import CURRENCY_MARKETS, RollConvention
from lending.daycount import DayCount
from lending.errors import AmountOutOfRange, InvalidInput, InvalidProduct, TermOutOfRange
from lending.interest import interest_for
from lending.money import (
    RoundingMode,
    check_currency,
    check_minor,
    check_rate,
    format_minor,
    prorate,
    round_to_minor,
)
from lending.waterfall import DEFAULT_ORDER, Bucket, check_order

__all__ = [
    "DEFAULT_DPD_BUCKETS",
    "MAX_ANNUAL_RATE",
    "MERCHANT_MICRO_LOAN",
    "PRODUCTS",
    "SUPPLY_CHAIN_LOAN",
    "DpdBucket",
    "ExtensionPolicy",
    "Fee",
    "LoanProduct",
]


#: above this an annual rate is a typing error, not a product (a rate is a fraction: 0.10
#: is 10 %; China's courts do not uphold loan pricing above four times the LPR, and 36 %
#: is the usury line most markets draw)
MAX_ANNUAL_RATE = Decimal("0.36")


def _invalid(what: str, exc: InvalidInput) -> InvalidProduct:
    return InvalidProduct(f"{what}: {exc}")


@dataclass(frozen=True)
class Fee:
    """`fixed + rate x base`, rounded once, then held within [minimum, maximum]."""

    fixed_minor: int = 0
    rate: Decimal = Decimal(0)
    minimum_minor: int = 0
    maximum_minor: int | None = None

    def __post_init__(self) -> None:
        try:
            check_minor(self.fixed_minor, "fixed fee")
            check_rate(self.rate, "fee rate")
            check_minor(self.minimum_minor, "minimum fee")
            if self.maximum_minor is not None:
                check_minor(self.maximum_minor, "maximum fee")
        except InvalidInput as exc:
            raise _invalid("fee", exc) from None
        if self.maximum_minor is not None and self.maximum_minor < self.minimum_minor:
            raise InvalidProduct(
                f"fee maximum {self.maximum_minor} is below its minimum {self.minimum_minor}"
            )

    def amount_for(self, base_minor: int, rounding: RoundingMode) -> int:
        check_minor(base_minor, "fee base")
        amount = self.fixed_minor + round_to_minor(prorate(base_minor, self.rate, 1), rounding)
        amount = max(amount, self.minimum_minor)
        if self.maximum_minor is not None:
            amount = min(amount, self.maximum_minor)
        return amount


@dataclass(frozen=True)
class ExtensionPolicy:
    """How often and by how much a loan may be extended; always requested before maturity."""

    max_extensions: int = 1
    days: int = 30
    #: charged on the principal outstanding when the extension is granted
    fee: Fee | None = None

    def __post_init__(self) -> None:
        try:
            check_minor(self.max_extensions, "number of extensions")
            check_minor(self.days, "extension days", positive=True)
        except InvalidInput as exc:
            raise _invalid("extension policy", exc) from None


@dataclass(frozen=True)
class DpdBucket:
    """A days-past-due band for the portfolio report, `to_days` inclusive (None: no end)."""

    label: str
    from_days: int
    to_days: int | None

    def holds(self, dpd: int) -> bool:
        return dpd >= self.from_days and (self.to_days is None or dpd <= self.to_days)


DEFAULT_DPD_BUCKETS: tuple[DpdBucket, ...] = (
    DpdBucket("1-15", 1, 15),
    DpdBucket("16-30", 16, 30),
    DpdBucket("31-60", 31, 60),
    DpdBucket("61+", 61, None),
)


def _check_dpd_buckets(buckets: tuple[DpdBucket, ...]) -> None:
    # every overdue loan must land in exactly one bucket, or the portfolio report
    # would drop or double-count it
    if not buckets:
        raise InvalidProduct("at least one days-past-due bucket is needed")
    expected = 1
    for i, bucket in enumerate(buckets):
        if bucket.from_days != expected:
            raise InvalidProduct(
                f"days-past-due bucket {bucket.label!r} starts at {bucket.from_days}; "
                f"expected {expected} (buckets must be contiguous from day 1)"
            )
        last = i == len(buckets) - 1
        if bucket.to_days is None:
            if not last:
                raise InvalidProduct(f"only the last bucket may be open-ended, "
                                     f"not {bucket.label!r}")
            return
        if bucket.to_days < bucket.from_days:
            raise InvalidProduct(f"days-past-due bucket {bucket.label!r} ends before it starts")
        expected = bucket.to_days + 1
    raise InvalidProduct("the last days-past-due bucket must be open-ended (e.g. '61+')")


@dataclass(frozen=True)
class LoanProduct:
    code: str
    name: str
    currency: str
    min_amount_minor: int
    max_amount_minor: int
    min_term_days: int
    max_term_days: int
    #: nominal annual rate as a fraction: Decimal("0.10") is 10 % a year
    annual_rate: Decimal
    day_count: DayCount = DayCount.ACT_365
    rounding: RoundingMode = RoundingMode.HALF_EVEN
    #: annual rate on overdue principal, charged instead of `annual_rate` after maturity
    penalty_annual_rate: Decimal = Decimal(0)
    #: charged on the principal at disbursement
    origination_fee: Fee | None = None
    extension: ExtensionPolicy = field(default_factory=ExtensionPolicy)
    #: more days past due than this and the loan is non-performing: accrual stops
    non_performing_after_days: int = 90
    dpd_buckets: tuple[DpdBucket, ...] = DEFAULT_DPD_BUCKETS
    waterfall: tuple[Bucket, ...] = DEFAULT_ORDER
    #: how a maturity falling on a day the market is closed moves (lending.calendar)
    maturity_roll: RollConvention = RollConvention.NONE
    #: the market whose business days apply; None: the currency's (CNY -> CN, ...)
    market: str | None = None
    #: days past due before penalty interest starts (paid within them, none is charged)
    grace_days: int = 0
    #: 0 for a product built into the code; a product defined at run time counts from 1
    #: (lending.catalogue), and a loan keeps the version it was booked under
    version: int = 0

    def __post_init__(self) -> None:
        if not self.code or not self.name:
            raise InvalidProduct("a product needs a code and a name")
        if len(self.code) > 40 or not self.code.replace("_", "").replace("-", "").isalnum():
            raise InvalidProduct(f"product code {self.code!r} must be up to 40 letters, "
                                 "digits, '_' or '-'")
        try:
            check_currency(self.currency)
            check_minor(self.min_amount_minor, "minimum amount", positive=True)
            check_minor(self.max_amount_minor, "maximum amount", positive=True)
            check_minor(self.min_term_days, "minimum term", positive=True)
            check_minor(self.max_term_days, "maximum term", positive=True)
            check_rate(self.annual_rate, "annual rate")
            check_rate(self.penalty_annual_rate, "penalty annual rate")
            check_minor(self.non_performing_after_days, "non-performing threshold",
                        positive=True)
            check_minor(self.grace_days, "grace days")
            check_order(self.waterfall)
        except InvalidInput as exc:
            raise _invalid(f"product {self.code!r}", exc) from None
        if self.currency != self.currency.upper():
            raise InvalidProduct(f"currency code {self.currency!r} must be upper case")
        if not isinstance(self.day_count, DayCount):
            raise InvalidProduct(f"unknown day count {self.day_count!r}")
        if not isinstance(self.rounding, RoundingMode):
            raise InvalidProduct(f"unknown rounding mode {self.rounding!r}")
        if self.grace_days >= self.non_performing_after_days:
            raise InvalidProduct(f"product {self.code!r}: {self.grace_days} grace days leave no "
                                 f"penalty before the loan is non-performing after "
                                 f"{self.non_performing_after_days} days")
        if not isinstance(self.maturity_roll, RollConvention):
            raise InvalidProduct(f"unknown maturity roll {self.maturity_roll!r}")
        for rate, what in ((self.annual_rate, "annual rate"),
                           (self.penalty_annual_rate, "penalty annual rate")):
            if rate > MAX_ANNUAL_RATE:
                raise InvalidProduct(f"product {self.code!r}: {what} {rate} is above "
                                     f"{MAX_ANNUAL_RATE} ({MAX_ANNUAL_RATE:%} a year)")
        if self.min_amount_minor > self.max_amount_minor:
            raise InvalidProduct(
                f"product {self.code!r}: minimum amount {self.min_amount_minor} exceeds "
                f"maximum {self.max_amount_minor}"
            )
        if self.min_term_days > self.max_term_days:
            raise InvalidProduct(
                f"product {self.code!r}: minimum term {self.min_term_days} days exceeds "
                f"maximum {self.max_term_days}"
            )
        _check_dpd_buckets(self.dpd_buckets)

    @property
    def calendar_market(self) -> str:
        return self.market or CURRENCY_MARKETS.get(self.currency, self.currency[:2])

    # -- limits ------------------------------------------------------------------------

    def check_amount(self, amount_minor: int) -> int:
        check_minor(amount_minor, "loan amount")
        if not self.min_amount_minor <= amount_minor <= self.max_amount_minor:
            raise AmountOutOfRange(
                self.code,
                format_minor(amount_minor, self.currency),
                format_minor(self.min_amount_minor, self.currency),
                format_minor(self.max_amount_minor, self.currency),
            )
        return amount_minor

    def check_term(self, term_days: int) -> int:
        check_minor(term_days, "term")
        if not self.min_term_days <= term_days <= self.max_term_days:
            raise TermOutOfRange(self.code, term_days, self.min_term_days, self.max_term_days)
        return term_days

    # -- pricing -----------------------------------------------------------------------

    def interest_for(self, principal_minor: int, days: int,
                     start: dt.date | None = None) -> int:
        """Interest for `days` nights; ACT/ACT and the 30/360 bases need the `start`."""
        return interest_for(principal_minor, self.annual_rate, days, self.day_count,
                            self.currency, self.rounding, start=start)

    def origination_fee_for(self, principal_minor: int) -> int:
        fee = self.origination_fee
        return 0 if fee is None else fee.amount_for(principal_minor, self.rounding)

    def extension_fee_for(self, principal_minor: int) -> int:
        fee = self.extension.fee
        return 0 if fee is None else fee.amount_for(principal_minor, self.rounding)

    # -- delinquency -------------------------------------------------------------------

    def dpd_bucket(self, days_past_due: int) -> DpdBucket | None:
        """The band a loan `days_past_due` late falls in; None while it is not overdue."""
        check_minor(days_past_due, "days past due")
        return next((b for b in self.dpd_buckets if b.holds(days_past_due)), None)


SUPPLY_CHAIN_LOAN = LoanProduct(
    code="supply_chain",
    name="Supply-chain loan against marketplace receivables",
    currency="CNY",
    min_amount_minor=1_000_000,  # 10,000.00
    max_amount_minor=500_000_000,  # 5,000,000.00
    min_term_days=15,
    max_term_days=90,
    annual_rate=Decimal("0.10"),
    day_count=DayCount.ACT_365,
    penalty_annual_rate=Decimal("0.15"),  # 1.5x the contractual rate, a common PBoC-style cap
    extension=ExtensionPolicy(max_extensions=1, days=30, fee=Fee(rate=Decimal("0.001"))),
    non_performing_after_days=90,
)

MERCHANT_MICRO_LOAN = LoanProduct(
    code="merchant_micro",
    name="Merchant micro-loan",
    currency="CNY",
    min_amount_minor=50_000,  # 500.00
    max_amount_minor=5_000_000,  # 50,000.00
    min_term_days=15,
    max_term_days=60,
    annual_rate=Decimal("0.12"),
    day_count=DayCount.ACT_360,
    penalty_annual_rate=Decimal("0.18"),
    origination_fee=Fee(rate=Decimal("0.005"), minimum_minor=500, maximum_minor=10_000),
    extension=ExtensionPolicy(max_extensions=1, days=30),
    non_performing_after_days=60,
)

PRODUCTS: Mapping[str, LoanProduct] = MappingProxyType(
    {p.code: p for p in (SUPPLY_CHAIN_LOAN, MERCHANT_MICRO_LOAN)}
)
