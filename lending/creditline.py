"""The credit line: how much the marketplace will lend a borrower, and why.

The line is built in readable steps a risk officer can check by hand, each recorded with
the amount it leaves:

1. advance rate x unsettled receivables (money the marketplace owes the borrower for goods
   sold and has not settled yet; never loan proceeds: see `lending.receivables`)
2. + sales factor x average monthly settled sales over the last N months
3. - a cut for a high return rate (the largest band the rate reaches)
4. - a cut for past overdue days (the largest band reached)
5. capped by the product's maximum, the policy's per-borrower cap and any cap a risk
   officer set for this borrower
6. - the borrower's exposure = what a new loan may still draw. Exposure is principal
   outstanding plus approved loans not yet drawn (they are reserved against the line),
   and, when the policy says so (the default), interest, penalty and fees outstanding.
   Applications, a risk officer's approval and disbursement are all checked against this
   figure (`lending.exposure`).

Every amount is rounded **down** to the minor unit: a credit line never rounds in the
borrower's favour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from lending.errors import InvalidInput, InvalidPolicy
from lending.money import (
    RoundingMode,
    check_currency,
    check_minor,
    check_rate,
    format_minor,
    prorate,
    round_to_minor,
)

__all__ = ["Band", "BorrowerData", "CreditLine", "CreditLinePolicy", "LineStep", "credit_line",
           "exposure"]

_DOWN = RoundingMode.DOWN


@dataclass(frozen=True)
class BorrowerData:
    """What the marketplace knows about a borrower, read at `data_as_of`."""

    borrower_id: str
    currency: str
    #: when these figures were read; a decision on older data routes to manual review
    data_as_of: dt.date
    #: what the marketplace owes the borrower and has not yet settled; None: not available
    unsettled_receivables_minor: int | None
    #: the same receivables by the buyer they come from (for concentration)
    receivables_by_buyer: Mapping[str, int] = field(default_factory=dict)
    #: settled sales per calendar month, oldest first, the last full month last
    monthly_settled_sales_minor: tuple[int, ...] = ()
    #: returns per month, aligned with the sales
    monthly_returns_minor: tuple[int, ...] = ()
    tenure_months: int = 0
    #: the most days any past loan was overdue (in the look-back window)
    max_days_overdue: int = 0
    #: loans overdue right now
    overdue_loans_now: int = 0
    #: principal lent and not yet repaid, plus approved loans not yet drawn
    outstanding_principal_minor: int = 0
    #: interest accrued and not yet paid on running loans
    outstanding_interest_minor: int = 0
    #: penalty and fees charged and not yet paid on running loans
    outstanding_fees_minor: int = 0
    #: a cap a risk officer set for this borrower, if any
    borrower_cap_minor: int | None = None

    def __post_init__(self) -> None:
        if not self.borrower_id:
            raise InvalidInput("borrower data needs a borrower id")
        check_currency(self.currency)
        if self.unsettled_receivables_minor is not None:
            check_minor(self.unsettled_receivables_minor, "unsettled receivables")
        for buyer, amount in self.receivables_by_buyer.items():
            check_minor(amount, f"receivables from {buyer}")
        for amount in (*self.monthly_settled_sales_minor, *self.monthly_returns_minor):
            check_minor(amount, "monthly sales or returns")
        if self.monthly_returns_minor and (
            len(self.monthly_returns_minor) != len(self.monthly_settled_sales_minor)
        ):
            raise InvalidInput("monthly returns must cover the same months as the sales")
        check_minor(self.tenure_months, "tenure")
        check_minor(self.max_days_overdue, "max days overdue")
        check_minor(self.overdue_loans_now, "overdue loans")
        check_minor(self.outstanding_principal_minor, "outstanding principal")
        check_minor(self.outstanding_interest_minor, "outstanding interest")
        check_minor(self.outstanding_fees_minor, "outstanding penalty and fees")
        if self.borrower_cap_minor is not None:
            check_minor(self.borrower_cap_minor, "borrower cap")

    def recent_sales(self, months: int) -> tuple[int, ...]:
        return self.monthly_settled_sales_minor[-months:]

    def return_rate(self, months: int) -> Decimal | None:
        """Returns over settled sales for the last `months`; None without sales data."""
        sales = sum(self.recent_sales(months))
        if not sales or not self.monthly_returns_minor:
            return None
        returns = sum(self.monthly_returns_minor[-months:])
        return Decimal(returns) / Decimal(sales)


@dataclass(frozen=True)
class Band:
    """Once a measure reaches `at_least`, cut the line by `cut` (a fraction)."""

    at_least: Decimal
    cut: Decimal

    def __post_init__(self) -> None:
        try:
            check_rate(self.at_least, "band threshold")
            check_rate(self.cut, "band cut")
        except InvalidInput as exc:
            raise InvalidPolicy(str(exc)) from None
        if self.cut > 1:
            raise InvalidPolicy(f"a cut of {self.cut} is more than the whole line")


def _largest_band(bands: tuple[Band, ...], value: Decimal) -> Band | None:
    reached = [b for b in bands if value >= b.at_least]
    return max(reached, key=lambda b: b.cut) if reached else None


@dataclass(frozen=True)
class CreditLinePolicy:
    receivables_advance_rate: Decimal = Decimal("0.80")
    sales_factor: Decimal = Decimal("0.50")
    sales_months: int = 6
    max_line_per_borrower_minor: int = 300_000_000  # 3,000,000.00
    #: return rate (returns / settled sales) -> cut
    return_rate_bands: tuple[Band, ...] = (
        Band(Decimal("0.10"), Decimal("0.20")),
        Band(Decimal("0.20"), Decimal("0.50")),
    )
    #: max days a past loan was overdue -> cut
    overdue_bands: tuple[Band, ...] = (
        Band(Decimal(1), Decimal("0.10")),
        Band(Decimal(15), Decimal("0.30")),
        Band(Decimal(31), Decimal("0.60")),
    )
    #: exposure against the line counts interest, penalty and fees outstanding, not only
    #: principal (a borrower cannot draw the line full again while interest runs on it)
    exposure_includes_interest_and_fees: bool = True

    def __post_init__(self) -> None:
        try:
            check_rate(self.receivables_advance_rate, "advance rate")
            check_rate(self.sales_factor, "sales factor")
            check_minor(self.sales_months, "sales months", positive=True)
            check_minor(self.max_line_per_borrower_minor, "per-borrower cap")
        except InvalidInput as exc:
            raise InvalidPolicy(str(exc)) from None
        if self.receivables_advance_rate > 1:
            raise InvalidPolicy("an advance rate above 100 % lends more than is owed")


@dataclass(frozen=True)
class LineStep:
    rule: str
    detail: str
    #: the line after this step
    amount_minor: int


@dataclass(frozen=True)
class CreditLine:
    currency: str
    #: the line before what is already lent
    limit_minor: int
    #: the exposure counted against the line (see the policy)
    outstanding_minor: int
    #: what a new loan may still draw
    available_minor: int
    steps: tuple[LineStep, ...]

    def explain(self) -> list[str]:
        return [f"{s.rule}: {s.detail} -> {format_minor(s.amount_minor, self.currency)}"
                for s in self.steps]


def _pct(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f} %"


def exposure(borrower: BorrowerData, policy: CreditLinePolicy) -> tuple[int, str]:
    """What counts against the line, and its parts in words."""
    cur = borrower.currency
    parts = [("principal", borrower.outstanding_principal_minor)]
    if policy.exposure_includes_interest_and_fees:
        parts += [("interest", borrower.outstanding_interest_minor),
                  ("penalty and fees", borrower.outstanding_fees_minor)]
    total = sum(units for _, units in parts)
    return total, ", ".join(f"{name} {format_minor(units, cur)}" for name, units in parts
                            if units or name == "principal")


def credit_line(
    borrower: BorrowerData, policy: CreditLinePolicy, product_max_minor: int
) -> CreditLine:
    cur = borrower.currency
    steps: list[LineStep] = []

    def fmt(units: int) -> str:
        return format_minor(units, cur)

    receivables = borrower.unsettled_receivables_minor or 0
    line = round_to_minor(prorate(receivables, policy.receivables_advance_rate, 1), _DOWN)
    steps.append(LineStep("receivables", f"{_pct(policy.receivables_advance_rate)} of "
                          f"{fmt(receivables)} unsettled receivables", line))

    sales = borrower.recent_sales(policy.sales_months)
    if sales:
        average = prorate(sum(sales), Decimal(1), len(sales))
        from_sales = round_to_minor(
            prorate(sum(sales), policy.sales_factor, len(sales)), _DOWN)
        line += from_sales
        steps.append(LineStep("sales", f"+ {_pct(policy.sales_factor)} of "
                              f"{fmt(round_to_minor(average, _DOWN))} average monthly settled "
                              f"sales over {len(sales)} month(s) = {fmt(from_sales)}", line))

    return_rate = borrower.return_rate(policy.sales_months)
    if return_rate is not None:
        band = _largest_band(policy.return_rate_bands, return_rate)
        if band is not None and band.cut:
            line = round_to_minor(prorate(line, 1 - band.cut, 1), _DOWN)
            steps.append(LineStep("returns", f"- {_pct(band.cut)} for a return rate of "
                                  f"{_pct(return_rate.quantize(Decimal('0.0001')))}", line))

    band = _largest_band(policy.overdue_bands, Decimal(borrower.max_days_overdue))
    if band is not None and band.cut:
        line = round_to_minor(prorate(line, 1 - band.cut, 1), _DOWN)
        steps.append(LineStep("overdue history", f"- {_pct(band.cut)} for past loans up to "
                              f"{borrower.max_days_overdue} days overdue", line))

    caps = [("product maximum", product_max_minor),
            ("per-borrower cap", policy.max_line_per_borrower_minor)]
    if borrower.borrower_cap_minor is not None:
        caps.append(("cap set for this borrower", borrower.borrower_cap_minor))
    for name, cap in caps:
        if line > cap:
            line = cap
            steps.append(LineStep("cap", f"capped at the {name} of {fmt(cap)}", line))

    outstanding, detail = exposure(borrower, policy)
    available = max(0, line - outstanding)
    if outstanding:
        steps.append(LineStep("outstanding", f"- {fmt(outstanding)} exposure ({detail})",
                              available))
    return CreditLine(currency=cur, limit_minor=line, outstanding_minor=outstanding,
                      available_minor=available, steps=tuple(steps))
