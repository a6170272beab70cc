"""The loan's state machine, as pure functions from one frozen `Loan` to the next.

    applications   applied -> approved | declined | manual_review
                   manual_review -> approved | declined
    running loans  approved -> disbursed -> active
                   active -> extended | overdue | repaid
                   extended -> extended (if the product allows) | overdue | repaid
    delinquency    overdue -> repaid | written_off;  written_off -> recovered

*disbursed* means the payout was sent; *active* means the money reached the borrower (the
payout confirmed, or their marketplace balance credited), so a failed payout never leaves
an active loan behind. Every step checks the transition table in one place
(`_transition`) and raises `IllegalTransition` naming what *is* allowed; a closed loan
(repaid, declined, recovered) raises its subclass `LoanClosed`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from lending.calendar import BusinessCalendar
from lending.errors import (
    CreditLineExceeded,
    ExtensionLimitReached,
    ExtensionTooLate,
    IllegalTransition,
    InvalidDate,
    InvalidInput,
    LoanClosed,
    LoanNotDisbursed,
)
from lending.interest import AccrualTerms, PrincipalChange
from lending.money import check_minor, format_minor
from lending.products import DpdBucket, LoanProduct

__all__ = [
    "CLOSED",
    "TRANSITIONS",
    "Loan",
    "LoanStatus",
    "StatusChange",
    "accrual_terms",
    "activate",
    "apply",
    "approve",
    "days_past_due",
    "decline",
    "disburse",
    "dpd_bucket",
    "extend",
    "mark_overdue",
    "recover",
    "refer_to_review",
    "repay",
    "write_off",
]


class LoanStatus(enum.StrEnum):
    APPLIED = "applied"
    MANUAL_REVIEW = "manual_review"
    APPROVED = "approved"
    DECLINED = "declined"
    DISBURSED = "disbursed"
    ACTIVE = "active"
    EXTENDED = "extended"
    OVERDUE = "overdue"
    REPAID = "repaid"
    WRITTEN_OFF = "written_off"
    RECOVERED = "recovered"


S = LoanStatus
TRANSITIONS: Mapping[LoanStatus, frozenset[LoanStatus]] = MappingProxyType({
    S.APPLIED: frozenset({S.APPROVED, S.DECLINED, S.MANUAL_REVIEW}),
    S.MANUAL_REVIEW: frozenset({S.APPROVED, S.DECLINED}),
    S.APPROVED: frozenset({S.DISBURSED}),
    S.DISBURSED: frozenset({S.ACTIVE}),
    S.ACTIVE: frozenset({S.EXTENDED, S.OVERDUE, S.REPAID}),
    # extended -> extended is legal in the table; the product's limit decides
    S.EXTENDED: frozenset({S.EXTENDED, S.OVERDUE, S.REPAID}),
    S.OVERDUE: frozenset({S.REPAID, S.WRITTEN_OFF}),
    S.WRITTEN_OFF: frozenset({S.RECOVERED}),
    S.DECLINED: frozenset(),
    S.REPAID: frozenset(),
    S.RECOVERED: frozenset(),
})
CLOSED = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts)
del S


@dataclass(frozen=True)
class StatusChange:
    status: LoanStatus
    on: dt.date
    note: str = ""


@dataclass(frozen=True)
class Loan:
    loan_id: str
    borrower_id: str
    product: LoanProduct
    #: requested at application, possibly reduced at approval
    amount_minor: int
    term_days: int
    applied_on: dt.date
    status: LoanStatus = LoanStatus.APPLIED
    #: value date of the disbursement: the first night that earns interest
    disbursed_on: dt.date | None = None
    #: the day the loan is due: start + term, rolled off a closed day by the product's
    #: roll convention, moved by extensions
    maturity: dt.date | None = None
    extensions: int = 0
    history: tuple[StatusChange, ...] = ()
    #: start + term (+ extensions) before any roll; equal to `maturity` when none applied
    contractual_maturity: dt.date | None = None

    @property
    def currency(self) -> str:
        return self.product.currency

    @property
    def closed(self) -> bool:
        return self.status in CLOSED

    @property
    def last_changed_on(self) -> dt.date:
        return self.history[-1].on if self.history else self.applied_on


def _transition(loan: Loan, target: LoanStatus, on: dt.date, note: str = "",
                **changes: Any) -> Loan:
    allowed = TRANSITIONS[loan.status]
    if target not in allowed:
        error = LoanClosed if loan.closed else IllegalTransition
        raise error(loan.loan_id, loan.status.value, target.value,
                    tuple(sorted(s.value for s in allowed)))
    if on < loan.last_changed_on:
        raise InvalidDate(
            f"loan {loan.loan_id!r} became {loan.status} on {loan.last_changed_on}; "
            f"it cannot become {target} earlier, on {on}"
        )
    history = (*loan.history, StatusChange(target, on, note))
    return dataclasses.replace(loan, status=target, history=history, **changes)


def _check_line(product: LoanProduct, amount_minor: int, credit_line_minor: int | None) -> None:
    if credit_line_minor is None:
        return
    check_minor(credit_line_minor, "credit line")
    if amount_minor > credit_line_minor:
        raise CreditLineExceeded(format_minor(amount_minor, product.currency),
                                 format_minor(credit_line_minor, product.currency))


def apply(
    loan_id: str,
    borrower_id: str,
    product: LoanProduct,
    amount_minor: int,
    term_days: int,
    applied_on: dt.date,
    *,
    credit_line_minor: int | None = None,
) -> Loan:
    """A new application, refused outright if it does not fit the product or the line."""
    if not loan_id or not borrower_id:
        raise InvalidInput("an application needs a loan id and a borrower id")
    product.check_amount(amount_minor)
    product.check_term(term_days)
    _check_line(product, amount_minor, credit_line_minor)
    return Loan(loan_id=loan_id, borrower_id=borrower_id, product=product,
                amount_minor=amount_minor, term_days=term_days, applied_on=applied_on,
                history=(StatusChange(LoanStatus.APPLIED, applied_on),))


def refer_to_review(loan: Loan, on: dt.date, note: str) -> Loan:
    return _transition(loan, LoanStatus.MANUAL_REVIEW, on, note)


def approve(
    loan: Loan,
    on: dt.date,
    *,
    amount_minor: int | None = None,
    credit_line_minor: int | None = None,
    note: str = "",
) -> Loan:
    """Approve as applied, or for a smaller amount (never a larger one)."""
    amount = loan.amount_minor if amount_minor is None else amount_minor
    loan.product.check_amount(amount)
    if amount > loan.amount_minor:
        raise InvalidInput(
            f"loan {loan.loan_id!r} cannot be approved for "
            f"{format_minor(amount, loan.currency)}, more than the "
            f"{format_minor(loan.amount_minor, loan.currency)} applied for"
        )
    _check_line(loan.product, amount, credit_line_minor)
    return _transition(loan, LoanStatus.APPROVED, on, note, amount_minor=amount)


def decline(loan: Loan, on: dt.date, note: str) -> Loan:
    return _transition(loan, LoanStatus.DECLINED, on, note)


def disburse(loan: Loan, on: dt.date, calendar: BusinessCalendar | None = None) -> Loan:
    """The payout is sent: interest runs from `on` and the term is counted from it. With
    the market's `calendar`, a maturity on a closed day is rolled by the product's
    convention (the loan records both dates; interest runs to the rolled one)."""
    contractual = on + dt.timedelta(days=loan.term_days)
    return _transition(loan, LoanStatus.DISBURSED, on, disbursed_on=on,
                       maturity=_rolled(loan, contractual, calendar),
                       contractual_maturity=contractual)


def _rolled(loan: Loan, day: dt.date, calendar: BusinessCalendar | None) -> dt.date:
    if calendar is None:
        return day
    return calendar.roll(day, loan.product.maturity_roll)


def activate(loan: Loan, on: dt.date) -> Loan:
    return _transition(loan, LoanStatus.ACTIVE, on)


def extend(loan: Loan, requested_on: dt.date, calendar: BusinessCalendar | None = None) -> Loan:
    """Move maturity by the product's extension days; interest continues to the new date."""
    policy = loan.product.extension
    if loan.status in (LoanStatus.ACTIVE, LoanStatus.EXTENDED):
        if loan.extensions >= policy.max_extensions:
            raise ExtensionLimitReached(loan.loan_id, loan.extensions, policy.max_extensions)
        assert loan.maturity is not None  # set by disburse
        if requested_on >= loan.maturity:
            raise ExtensionTooLate(loan.loan_id, requested_on.isoformat(),
                                   loan.maturity.isoformat())
    # an extension counts from the contractual date, and is rolled again
    base = loan.contractual_maturity or loan.maturity
    contractual = None if base is None else base + dt.timedelta(days=policy.days)
    maturity = None if contractual is None else _rolled(loan, contractual, calendar)
    return _transition(loan, LoanStatus.EXTENDED, requested_on,
                       f"maturity moved to {maturity}", maturity=maturity,
                       contractual_maturity=contractual, extensions=loan.extensions + 1)


def mark_overdue(loan: Loan, on: dt.date) -> Loan:
    if loan.maturity is not None and on <= loan.maturity:
        raise InvalidDate(f"loan {loan.loan_id!r} matures on {loan.maturity}; "
                          f"it is not overdue on {on}")
    return _transition(loan, LoanStatus.OVERDUE, on)


def repay(loan: Loan, on: dt.date) -> Loan:
    """The loan is repaid in full (the waterfall decides when that is)."""
    return _transition(loan, LoanStatus.REPAID, on)


def write_off(loan: Loan, on: dt.date, note: str = "") -> Loan:
    return _transition(loan, LoanStatus.WRITTEN_OFF, on, note)


def recover(loan: Loan, on: dt.date, note: str = "") -> Loan:
    return _transition(loan, LoanStatus.RECOVERED, on, note)


# -- views the accrual run and the portfolio report need ---------------------------------


def _running(loan: Loan) -> tuple[dt.date, dt.date]:
    if loan.disbursed_on is None or loan.maturity is None:
        raise LoanNotDisbursed(loan.loan_id, loan.status.value)
    return loan.disbursed_on, loan.maturity


def accrual_terms(loan: Loan, principal_changes: tuple[PrincipalChange, ...] = ()) -> AccrualTerms:
    start, maturity = _running(loan)
    product = loan.product
    return AccrualTerms(
        currency=product.currency,
        start=start,
        maturity=maturity,
        principal_minor=loan.amount_minor,
        rate=product.annual_rate,
        day_count=product.day_count,
        rounding=product.rounding,
        penalty_rate=product.penalty_annual_rate,
        non_performing_after_days=product.non_performing_after_days,
        grace_days=product.grace_days,
        principal_changes=principal_changes,
    )


def days_past_due(loan: Loan, on: dt.date) -> int:
    """Days since an unpaid maturity; a closed loan is never past due."""
    _, maturity = _running(loan)
    return 0 if loan.closed else max(0, (on - maturity).days)


def dpd_bucket(loan: Loan, on: dt.date) -> DpdBucket | None:
    return loan.product.dpd_bucket(days_past_due(loan, on))
