"""Underwriting: approve, decline or send to a person, with every reason written down.

`decide` is a pure function of the application, the borrower's data, the policy and the
date, so it answers in microseconds and the same inputs always give the same decision. The
`Decision` carries the reasons *and* the inputs used (the data, the policy, the figures
derived from them), so it can be stored as JSON and explained later without re-reading
anything.

How the outcome is reached:

* any **decline** rule fires -> decline (a hard "no" needs no person);
* else any **anomaly** -> manual review (a person looks before money moves);
* else -> approve.

One exception keeps the machine from saying "no" for the wrong reason: when the data is
missing or stale, the credit line cannot be trusted, so an amount above it is an anomaly
(manual review), not a decline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lending.creditline import BorrowerData, CreditLine, CreditLinePolicy, credit_line
from lending.errors import InvalidInput, InvalidPolicy, LoanTermsViolation
from lending.money import check_minor, check_rate, format_minor
from lending.products import LoanProduct

__all__ = [
    "Application",
    "Decision",
    "Outcome",
    "Reason",
    "UnderwritingPolicy",
    "decide",
]


class Outcome(enum.StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"
    MANUAL_REVIEW = "manual_review"


@dataclass(frozen=True)
class Reason:
    #: a stable machine-readable name, e.g. "sales-spike"
    code: str
    #: what this reason pushes the decision to
    effect: Outcome
    message: str


@dataclass(frozen=True)
class Application:
    application_id: str
    borrower_id: str
    product: LoanProduct
    amount_minor: int
    term_days: int
    applied_on: dt.date

    def __post_init__(self) -> None:
        if not self.application_id or not self.borrower_id:
            raise InvalidInput("an application needs an id and a borrower id")
        check_minor(self.amount_minor, "amount applied for", positive=True)
        check_minor(self.term_days, "term", positive=True)


@dataclass(frozen=True)
class UnderwritingPolicy:
    version: str = "default-1"
    line: CreditLinePolicy = field(default_factory=CreditLinePolicy)
    # -- decline rules
    min_tenure_months: int = 3
    #: returns / settled sales above this: decline
    max_return_rate: Decimal = Decimal("0.35")
    decline_when_overdue_now: bool = True
    # -- anomalies: manual review
    #: latest month's sales at least this many times the average of the months before
    sales_spike_ratio: Decimal = Decimal(3)
    #: one buyer owes more than this share of the receivables
    max_buyer_share: Decimal = Decimal("0.60")
    #: a past loan more than this many days overdue
    review_overdue_days: int = 30
    #: amounts above this always get a second pair of eyes
    review_amount_above_minor: int = 100_000_000  # 1,000,000.00
    #: borrower data older than this (in days) on the decision date
    max_data_age_days: int = 3
    #: fewer months of settled sales than this is "data missing"
    min_sales_months: int = 3

    def __post_init__(self) -> None:
        try:
            check_minor(self.min_tenure_months, "minimum tenure")
            check_rate(self.max_return_rate, "maximum return rate")
            check_rate(self.sales_spike_ratio, "sales spike ratio")
            check_rate(self.max_buyer_share, "maximum buyer share")
            check_minor(self.review_overdue_days, "review overdue days")
            check_minor(self.review_amount_above_minor, "review amount")
            check_minor(self.max_data_age_days, "maximum data age")
            check_minor(self.min_sales_months, "minimum sales months")
        except InvalidInput as exc:
            raise InvalidPolicy(str(exc)) from None
        if self.sales_spike_ratio <= 1:
            raise InvalidPolicy("a sales spike ratio of 1 or less flags every month")
        if self.max_buyer_share > 1:
            raise InvalidPolicy("a buyer share above 100 % can never be reached")


@dataclass(frozen=True)
class Decision:
    application_id: str
    borrower_id: str
    outcome: Outcome
    reasons: tuple[Reason, ...]
    credit_line: CreditLine
    decided_on: dt.date
    policy_version: str
    #: everything the decision was made from, JSON-ready
    inputs: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        return result

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def _jsonable(value: object) -> Any:
    # Decimals as strings: a JSON float would turn 0.1 into 0.1000000000000000055...
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# -- the derived figures the rules look at -----------------------------------------------


@dataclass(frozen=True)
class _Figures:
    data_age_days: int
    sales_months: int
    return_rate: Decimal | None
    spike_ratio: Decimal | None
    top_buyer: str | None
    top_buyer_share: Decimal | None


def _figures(data: BorrowerData, policy: UnderwritingPolicy, decided_on: dt.date) -> _Figures:
    sales = data.monthly_settled_sales_minor
    spike = None
    if len(sales) >= 2:
        earlier = sales[:-1][-policy.line.sales_months:]
        average = Decimal(sum(earlier)) / Decimal(len(earlier))
        if average:
            spike = Decimal(sales[-1]) / average
    top_buyer, share = None, None
    total = sum(data.receivables_by_buyer.values())
    if total:
        top_buyer = max(sorted(data.receivables_by_buyer),
                        key=lambda b: data.receivables_by_buyer[b])
        share = Decimal(data.receivables_by_buyer[top_buyer]) / Decimal(total)
    return _Figures(
        data_age_days=(decided_on - data.data_as_of).days,
        sales_months=len(sales),
        return_rate=data.return_rate(policy.line.sales_months),
        spike_ratio=spike,
        top_buyer=top_buyer,
        top_buyer_share=share,
    )


def _pct(value: Decimal) -> str:
    return f"{(value * 100).quantize(Decimal('0.1'))} %"


# -- the rules ---------------------------------------------------------------------------


def _decline_rules(app: Application, data: BorrowerData, policy: UnderwritingPolicy,
                   fig: _Figures) -> list[Reason]:
    no = Outcome.DECLINE
    reasons = []
    if data.currency != app.product.currency:
        reasons.append(Reason("currency-mismatch", no,
                              f"borrower data is in {data.currency}, the product lends "
                              f"in {app.product.currency}"))
    try:
        app.product.check_amount(app.amount_minor)
    except LoanTermsViolation as exc:
        reasons.append(Reason(exc.code, no, str(exc)))
    try:
        app.product.check_term(app.term_days)
    except LoanTermsViolation as exc:
        reasons.append(Reason(exc.code, no, str(exc)))
    if data.tenure_months < policy.min_tenure_months:
        reasons.append(Reason("short-tenure", no,
                              f"selling on the marketplace for {data.tenure_months} month(s); "
                              f"at least {policy.min_tenure_months} are needed"))
    if policy.decline_when_overdue_now and data.overdue_loans_now:
        reasons.append(Reason("overdue-now", no,
                              f"{data.overdue_loans_now} loan(s) overdue right now"))
    if fig.return_rate is not None and fig.return_rate > policy.max_return_rate:
        reasons.append(Reason("high-returns", no,
                              f"return rate {_pct(fig.return_rate)} is above the "
                              f"{_pct(policy.max_return_rate)} limit"))
    return reasons


def _anomalies(app: Application, data: BorrowerData, policy: UnderwritingPolicy,
               fig: _Figures) -> list[Reason]:
    look = Outcome.MANUAL_REVIEW
    cur = app.product.currency
    reasons = []
    if data.unsettled_receivables_minor is None:
        reasons.append(Reason("data-missing", look, "unsettled receivables are not available"))
    if fig.sales_months < policy.min_sales_months:
        reasons.append(Reason("data-missing", look,
                              f"{fig.sales_months} month(s) of settled sales; "
                              f"{policy.min_sales_months} are needed"))
    if fig.data_age_days > policy.max_data_age_days:
        reasons.append(Reason("data-stale", look,
                              f"borrower data is {fig.data_age_days} days old (from "
                              f"{data.data_as_of}); at most {policy.max_data_age_days} allowed"))
    if fig.spike_ratio is not None and fig.spike_ratio >= policy.sales_spike_ratio:
        reasons.append(Reason("sales-spike", look,
                              f"last month's sales are {fig.spike_ratio.quantize(Decimal('0.1'))}"
                              f" times the average of the months before "
                              f"(review from {policy.sales_spike_ratio})"))
    if fig.top_buyer_share is not None and fig.top_buyer_share > policy.max_buyer_share:
        reasons.append(Reason("receivable-concentration", look,
                              f"{_pct(fig.top_buyer_share)} of receivables are owed by one "
                              f"buyer ({fig.top_buyer}); review above "
                              f"{_pct(policy.max_buyer_share)}"))
    if data.max_days_overdue > policy.review_overdue_days:
        reasons.append(Reason("overdue-history", look,
                              f"a past loan was {data.max_days_overdue} days overdue; "
                              f"review above {policy.review_overdue_days}"))
    if app.amount_minor > policy.review_amount_above_minor:
        reasons.append(Reason("large-amount", look,
                              f"{format_minor(app.amount_minor, cur)} is above the "
                              f"{format_minor(policy.review_amount_above_minor, cur)} "
                              "automatic-approval limit"))
    return reasons


def _line_reason(app: Application, line: CreditLine, data_trusted: bool) -> Reason:
    cur = app.product.currency
    amount, available = format_minor(app.amount_minor, cur), format_minor(
        line.available_minor, cur)
    if app.amount_minor <= line.available_minor:
        return Reason("within-line", Outcome.APPROVE,
                      f"{amount} is within the available credit line of {available}")
    return Reason("over-line", Outcome.DECLINE if data_trusted else Outcome.MANUAL_REVIEW,
                  f"{amount} exceeds the available credit line of {available}")


def decide(
    app: Application,
    data: BorrowerData,
    policy: UnderwritingPolicy,
    decided_on: dt.date,
) -> Decision:
    if app.borrower_id != data.borrower_id:
        raise InvalidInput(f"application {app.application_id!r} is for borrower "
                           f"{app.borrower_id!r}, the data for {data.borrower_id!r}")
    fig = _figures(data, policy, decided_on)
    line = credit_line(data, policy.line, app.product.max_amount_minor)
    anomalies = _anomalies(app, data, policy, fig)
    data_trusted = not any(r.code in ("data-missing", "data-stale") for r in anomalies)
    reasons = [*_decline_rules(app, data, policy, fig), *anomalies,
               _line_reason(app, line, data_trusted)]
    effects = {r.effect for r in reasons}
    if Outcome.DECLINE in effects:
        outcome = Outcome.DECLINE
    elif Outcome.MANUAL_REVIEW in effects:
        outcome = Outcome.MANUAL_REVIEW
    else:
        outcome = Outcome.APPROVE
    inputs = {
        "application": {
            "application_id": app.application_id,
            "borrower_id": app.borrower_id,
            "product": app.product.code,
            "currency": app.product.currency,
            "amount_minor": app.amount_minor,
            "term_days": app.term_days,
            "applied_on": app.applied_on,
        },
        "borrower": dataclasses.asdict(data),
        "policy": dataclasses.asdict(policy),
        "figures": dataclasses.asdict(fig),
    }
    return Decision(
        application_id=app.application_id,
        borrower_id=app.borrower_id,
        outcome=outcome,
        reasons=tuple(reasons),
        credit_line=line,
        decided_on=decided_on,
        policy_version=policy.version,
        inputs=_jsonable(inputs),
    )
