"""Loans as rows: reading a `LoanRecord`, and the one compare-and-set write of a change.

A `LoanRecord` is the pure `Loan` (product, status, dates) plus the running figures the
books need (principal repaid, interest accrued and paid, ...). Every change goes through
`save`, an `UPDATE ... WHERE id = :id AND status = :expected AND version = :read`, so two
writers racing on one loan cannot both win; the loser gets `ConcurrentUpdate` and its
transaction (journal entry included) rolls back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from lending.config import LendingConfig
from lending.errors import ConcurrentUpdate, InvalidInput, LoanNotFound
from lending.interest import PrincipalChange
from lending.lifecycle import Loan, LoanStatus, StatusChange
from lending.products import LoanProduct
from lending.schema import loan_events, loans, repayments

__all__ = ["RUNNING", "LoanRecord", "load", "load_many", "principal_changes", "records", "save",
           "utcnow"]

#: statuses in which a loan has money out and accrues
RUNNING = (LoanStatus.DISBURSED, LoanStatus.ACTIVE, LoanStatus.EXTENDED, LoanStatus.OVERDUE)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class LoanRecord:
    loan: Loan
    requested_minor: int
    version: int
    disbursement_mode: str | None = None
    payout_id: str | None = None
    accrued_through: dt.date | None = None
    principal_repaid_minor: int = 0
    interest_accrued_minor: int = 0
    interest_paid_minor: int = 0
    penalty_accrued_minor: int = 0
    penalty_paid_minor: int = 0
    fees_charged_minor: int = 0
    fees_paid_minor: int = 0
    overpaid_minor: int = 0
    written_off_minor: int = 0
    recovered_minor: int = 0
    funding_interest_minor: int = 0
    max_dpd: int = 0

    @property
    def id(self) -> str:
        return self.loan.loan_id

    @property
    def status(self) -> LoanStatus:
        return self.loan.status

    @property
    def currency(self) -> str:
        return self.loan.currency

    @property
    def principal_outstanding_minor(self) -> int:
        if self.status in (LoanStatus.WRITTEN_OFF, LoanStatus.RECOVERED):
            return 0
        if self.loan.disbursed_on is None:
            return 0
        return self.loan.amount_minor - self.principal_repaid_minor

    @property
    def interest_outstanding_minor(self) -> int:
        if self.status in (LoanStatus.WRITTEN_OFF, LoanStatus.RECOVERED):
            return 0
        return self.interest_accrued_minor - self.interest_paid_minor

    @property
    def penalty_outstanding_minor(self) -> int:
        if self.status in (LoanStatus.WRITTEN_OFF, LoanStatus.RECOVERED):
            return 0
        return self.penalty_accrued_minor - self.penalty_paid_minor

    @property
    def fees_outstanding_minor(self) -> int:
        if self.status in (LoanStatus.WRITTEN_OFF, LoanStatus.RECOVERED):
            return 0
        return self.fees_charged_minor - self.fees_paid_minor

    @property
    def total_outstanding_minor(self) -> int:
        return (self.principal_outstanding_minor + self.interest_outstanding_minor
                + self.penalty_outstanding_minor + self.fees_outstanding_minor)

    def days_past_due(self, on: dt.date) -> int:
        maturity = self.loan.maturity
        if maturity is None or self.status not in RUNNING:
            return 0
        return max(0, (on - maturity).days)


_FIGURES = (
    "requested_minor", "disbursement_mode", "payout_id", "accrued_through",
    "principal_repaid_minor", "interest_accrued_minor", "interest_paid_minor",
    "penalty_accrued_minor", "penalty_paid_minor", "fees_charged_minor", "fees_paid_minor",
    "overpaid_minor", "written_off_minor", "recovered_minor", "funding_interest_minor",
    "max_dpd",
)


def from_row(row: Any, config: LendingConfig,
             versions: Mapping[tuple[str, int], LoanProduct] | None = None) -> LoanRecord:
    """The loan of a row, under the product version it was booked under (`versions`, from
    lending.catalogue.product_versions; version 0 or none: the product built into the
    code)."""
    version = row.product_version or 0
    if version:
        product = (versions or {}).get((row.product_code, version))
        if product is None:
            raise InvalidInput(f"loan {row.id!r}: version {version} of product "
                               f"{row.product_code!r} was not loaded")
    else:
        product = config.product(row.product_code)
    status = LoanStatus(row.status)
    loan = Loan(
        loan_id=row.id, borrower_id=row.borrower_id, product=product,
        amount_minor=row.amount_minor, term_days=row.term_days, applied_on=row.applied_on,
        status=status, disbursed_on=row.disbursed_on, maturity=row.maturity,
        contractual_maturity=row.contractual_maturity or row.maturity,
        extensions=row.extensions, history=(StatusChange(status, row.status_on),),
    )
    return LoanRecord(loan=loan, version=row.version,
                      **{name: getattr(row, name) for name in _FIGURES})


def _values(record: LoanRecord) -> dict[str, Any]:
    loan = record.loan
    values = {name: getattr(record, name) for name in _FIGURES}
    values.update(
        borrower_id=loan.borrower_id, product_code=loan.product.code, currency=loan.currency,
        amount_minor=loan.amount_minor, term_days=loan.term_days, status=loan.status.value,
        status_on=loan.last_changed_on, applied_on=loan.applied_on,
        disbursed_on=loan.disbursed_on, maturity=loan.maturity, extensions=loan.extensions,
        product_version=loan.product.version, contractual_maturity=loan.contractual_maturity,
    )
    return values


async def records(conn: AsyncConnection, rows: Iterable[Any],
                  config: LendingConfig) -> list[LoanRecord]:
    """Loan rows as records, each under its product version (read once per version)."""
    from lending.catalogue import product_versions  # catalogue reads products through store's callers

    rows = list(rows)
    keys = {(r.product_code, r.product_version) for r in rows if r.product_version}
    versions = await product_versions(conn, keys) if keys else {}
    return [from_row(r, config, versions) for r in rows]


async def insert(conn: AsyncConnection, record: LoanRecord, *, actor: str = "system") -> None:
    now = utcnow()
    await conn.execute(sa.insert(loans).values(id=record.id, version=record.version,
                                               updated_at=now, **_values(record)))
    await conn.execute(sa.insert(loan_events).values(
        loan_id=record.id, from_status=None, to_status=record.status.value,
        event_on=record.loan.last_changed_on, note="", actor=actor, entry_id=None,
        recorded_at=now))


async def load(conn: AsyncConnection, loan_id: str, config: LendingConfig,
               *, for_update: bool = False) -> LoanRecord:
    query = sa.select(loans).where(loans.c.id == loan_id)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise LoanNotFound(loan_id)
    return (await records(conn, [row], config))[0]


async def load_many(conn: AsyncConnection, where: Iterable[sa.ColumnElement[bool]],
                    config: LendingConfig, *, for_update: bool = False) -> list[LoanRecord]:
    query = sa.select(loans).where(*where).order_by(loans.c.id)
    if for_update and conn.dialect.name == "postgresql":
        # in id order, like every single-loan writer: no lock cycles
        query = query.with_for_update()
    return await records(conn, await conn.execute(query), config)


async def save(
    conn: AsyncConnection,
    before: LoanRecord,
    after: LoanRecord,
    *,
    note: str = "",
    actor: str = "system",
    entry_id: uuid.UUID | None = None,
) -> LoanRecord:
    """Write `after` over `before` if nobody changed the loan since it was read."""
    now = utcnow()
    result = await conn.execute(
        sa.update(loans)
        .where(loans.c.id == before.id, loans.c.status == before.status.value,
               loans.c.version == before.version)
        .values(version=before.version + 1, updated_at=now, **_values(after))
    )
    if result.rowcount != 1:
        raise ConcurrentUpdate(before.id, before.status.value)
    if after.status is not before.status:
        await conn.execute(sa.insert(loan_events).values(
            loan_id=after.id, from_status=before.status.value, to_status=after.status.value,
            event_on=after.loan.last_changed_on, note=note or _last_note(after.loan),
            actor=actor, entry_id=entry_id, recorded_at=now))
        await record_loan_event(conn, after, before.status)
    return dataclasses.replace(after, version=before.version + 1)


#: the loan moves its borrower (and other systems) are told about, in the outbox
LOAN_TOPICS = {LoanStatus.DISBURSED: "loan.disbursed", LoanStatus.ACTIVE: "loan.active",
               LoanStatus.EXTENDED: "loan.extended", LoanStatus.OVERDUE: "loan.overdue",
               LoanStatus.REPAID: "loan.repaid", LoanStatus.WRITTEN_OFF: "loan.written_off",
               LoanStatus.RECOVERED: "loan.recovered"}


async def record_loan_event(conn: AsyncConnection, record: LoanRecord,
                            before: LoanStatus | None) -> None:
    """An outbox event for the loan's move to its status, if it is one to tell about (the
    borrower is the audience: a supplier or merchant of the marketplace)."""
    topic = LOAN_TOPICS.get(record.status)
    if topic is None:
        return
    loan = record.loan
    await ledger.record_event(conn, topic=topic, object_type="loan", object_id=record.id,
                              audience=loan.borrower_id, payload={
        "id": record.id, "borrower_id": loan.borrower_id, "status": record.status.value,
        "previous_status": before.value if before else None,
        "amount": str(ledger.from_minor(loan.amount_minor, loan.currency).amount),
        "currency": loan.currency, "product": loan.product.code,
        "disbursed_on": loan.disbursed_on.isoformat() if loan.disbursed_on else None,
        "maturity": loan.maturity.isoformat() if loan.maturity else None,
        "status_on": loan.last_changed_on.isoformat()})


def _last_note(loan: Loan) -> str:
    return loan.history[-1].note if loan.history else ""


async def principal_changes(
    conn: AsyncConnection, loan_ids: Sequence[str]
) -> dict[str, tuple[PrincipalChange, ...]]:
    """Per loan, the principal outstanding after each repayment that reduced it."""
    out: dict[str, list[PrincipalChange]] = {}
    for start in range(0, len(loan_ids), 1000):
        chunk = loan_ids[start:start + 1000]
        rows = await conn.execute(
            sa.select(repayments.c.loan_id, repayments.c.paid_on,
                      repayments.c.principal_after_minor)
            .where(repayments.c.loan_id.in_(chunk), repayments.c.principal_minor > 0)
            .order_by(repayments.c.loan_id, repayments.c.paid_on, repayments.c.recorded_at)
        )
        for r in rows:
            changes = out.setdefault(r.loan_id, [])
            change = PrincipalChange(r.paid_on, r.principal_after_minor)
            if changes and changes[-1].effective == r.paid_on:
                changes[-1] = change  # two repayments on one day: the later figure holds
            else:
                changes.append(change)
    return {k: tuple(v) for k, v in out.items()}


def terms_changes(record: LoanRecord,
                  changes: tuple[PrincipalChange, ...]) -> tuple[int, tuple[PrincipalChange, ...]]:
    """(principal on the first night, later changes): a change on the disbursement day
    itself is the first night's principal, not a later change."""
    start = record.loan.disbursed_on
    principal = record.loan.amount_minor
    later = []
    for change in changes:
        if start is not None and change.effective <= start:
            principal = change.principal_minor
        else:
            later.append(change)
    return principal, tuple(later)


async def load_loan(conn: AsyncConnection, loan_id: str, config: LendingConfig) -> LoanRecord:
    """One loan as it stands (no lock)."""
    return await load(conn, loan_id, config)
