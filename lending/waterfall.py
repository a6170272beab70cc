"""The repayment waterfall: which receivable a payment settles first.

A payment fills the outstanding buckets one after another in the configured order; a bucket
is paid in full before the next one gets anything, and whatever is left after the last
bucket is an overpayment, to be held as a liability to the borrower (never silently kept).

The default order is the one the issue asks for, with fees (which the issue leaves out)
placed after penalty within each tier, as DESIGN.md §5 lists them: penalty, fees,
interest, principal.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lending.errors import InvalidWaterfall
from lending.money import check_minor

__all__ = ["DEFAULT_ORDER", "Allocation", "AllocationLine", "Bucket", "allocate", "check_order"]


class Bucket(enum.StrEnum):
    """A receivable a repayment can settle; "due" means due today, "past due" before."""

    PAST_DUE_PENALTY = "past_due_penalty"
    PAST_DUE_FEES = "past_due_fees"
    PAST_DUE_INTEREST = "past_due_interest"
    PAST_DUE_PRINCIPAL = "past_due_principal"
    DUE_FEES = "due_fees"
    DUE_INTEREST = "due_interest"
    DUE_PRINCIPAL = "due_principal"
    #: interest accrued so far on a loan that is not yet due (early repayment)
    NOT_DUE_INTEREST = "not_due_interest"
    NOT_DUE_PRINCIPAL = "not_due_principal"


DEFAULT_ORDER: tuple[Bucket, ...] = (
    Bucket.PAST_DUE_PENALTY,
    Bucket.PAST_DUE_FEES,
    Bucket.PAST_DUE_INTEREST,
    Bucket.PAST_DUE_PRINCIPAL,
    Bucket.DUE_FEES,
    Bucket.DUE_INTEREST,
    Bucket.DUE_PRINCIPAL,
    Bucket.NOT_DUE_INTEREST,
    Bucket.NOT_DUE_PRINCIPAL,
)


def check_order(order: Sequence[Bucket]) -> tuple[Bucket, ...]:
    if not order:
        raise InvalidWaterfall("a waterfall needs at least one bucket")
    for bucket in order:
        if not isinstance(bucket, Bucket):
            raise InvalidWaterfall(f"{bucket!r} is not a repayment bucket")
    repeated = sorted({b.value for b in order if order.count(b) > 1})
    if repeated:
        raise InvalidWaterfall(f"the waterfall names {', '.join(repeated)} more than once")
    return tuple(order)


@dataclass(frozen=True)
class AllocationLine:
    bucket: Bucket
    outstanding_minor: int
    applied_minor: int

    @property
    def remaining_minor(self) -> int:
        return self.outstanding_minor - self.applied_minor


@dataclass(frozen=True)
class Allocation:
    """How one payment was applied: a line per bucket in waterfall order, plus the excess."""

    paid_minor: int
    lines: tuple[AllocationLine, ...]
    excess_minor: int

    def applied(self, bucket: Bucket) -> int:
        return sum(line.applied_minor for line in self.lines if line.bucket is bucket)

    @property
    def applied_minor(self) -> int:
        return self.paid_minor - self.excess_minor

    @property
    def by_bucket(self) -> dict[Bucket, int]:
        """The buckets that received something, in waterfall order."""
        return {line.bucket: line.applied_minor for line in self.lines if line.applied_minor}

    @property
    def settles_everything(self) -> bool:
        return all(line.remaining_minor == 0 for line in self.lines)


def allocate(
    amount_minor: int,
    outstanding: Mapping[Bucket, int],
    order: Sequence[Bucket] = DEFAULT_ORDER,
) -> Allocation:
    """Apply `amount_minor` to `outstanding` in `order`; the rest is the excess."""
    check_minor(amount_minor, "repayment amount")
    order = check_order(order)
    for bucket, owed in outstanding.items():
        check_minor(owed, f"outstanding {bucket}")
        if owed and bucket not in order:
            # a bucket the order never reaches would stay unpaid while the payment
            # is booked as an overpayment: refuse rather than misapply
            raise InvalidWaterfall(
                f"{bucket} has {owed} outstanding but the waterfall does not include it"
            )
    left = amount_minor
    lines: list[AllocationLine] = []
    for bucket in order:
        owed = outstanding.get(bucket, 0)
        applied = min(owed, left)
        left -= applied
        lines.append(AllocationLine(bucket, owed, applied))
    return Allocation(paid_minor=amount_minor, lines=tuple(lines), excess_minor=left)
