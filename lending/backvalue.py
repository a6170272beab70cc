"""Money that arrives late: undoing a loan's accruals after a value date, append-only.

Bank statements arrive the next morning, so a repayment is routinely value-dated before
accrual has already run. The loan's interest after that date was accrued on a principal
that was in fact smaller. The correction, all in the repayment's transaction:

1. **rewind** (`rewind_accrual`): each accrual entry for a loan-day after the value date is
   reversed by `ledger.reverse` (a new entry linked to the one it undoes, dated the same
   loan-day); the funding line's interest for those days is reversed by one entry; the
   loan row goes back to "accrued through the value date" (and an overdue mark set after
   it is undone — a loan is overdue only if it was on the value date);
2. the repayment is applied at its value date, as if it had come in time;
3. **re-accrue** (`accrue_loan(..., key_suffix=":c<n>")`): the days are accrued again on
   the new balance, as new entries under the correction's own keys.

A loan event (actor `back-value`) records why, what was reversed and what was
re-accrued; the statement's history shows it. The repayment's id is the idempotency key of
the whole correction: a replay returns the first result and posts nothing.

Not done (refused with the reason): money value-dated before another repayment already
applied to the loan (that one would need re-applying too), or before a status change other
than the overdue mark (an extension, say).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from lending import store
from lending.accrual import terms_for
from lending.config import LendingConfig
from lending.errors import InvalidDate
from lending.interest import AccrualTerms, interest_accrued_through
from lending.lifecycle import LoanStatus, StatusChange
from lending.money import format_minor
from lending.postings import Accounts, entry, legs
from lending.schema import loan_events, repayments
from lending.store import LoanRecord

__all__ = ["BACK_VALUE_ACTOR", "Rewind", "record_reaccrual", "rewind_accrual"]

#: the actor of the loan events that record a back-valued correction
BACK_VALUE_ACTOR = "back-value"
_ONE_DAY = dt.timedelta(days=1)
_FAR = dt.date(9999, 1, 1)


@dataclass(frozen=True)
class Rewind:
    """What a rewind undid, for the re-accrual and the loan's history."""

    record: LoanRecord
    value_date: dt.date
    #: the loan-day accrual had reached: the re-accrual goes back up to it
    accrued_through: dt.date
    #: this loan's n-th correction: its re-accrual entries are keyed `...:c<n>`
    sequence: int
    reversed_entries: int
    interest_reversed_minor: int
    penalty_reversed_minor: int
    funding_reversed_minor: int
    reason: str

    @property
    def key_suffix(self) -> str:
        return f":c{self.sequence}"


async def _corrections(conn: AsyncConnection, loan_id: str) -> int:
    return int(await conn.scalar(
        sa.select(sa.func.count()).select_from(loan_events)
        .where(loan_events.c.loan_id == loan_id, loan_events.c.actor == BACK_VALUE_ACTOR,
               loan_events.c.note.like("correction %"))) or 0)


async def _live_accrual(conn: AsyncConnection, loan_id: str, day: dt.date,
                        sequence: int) -> ledger.JournalEntry | None:
    """The accrual entry that stands for `day`: the latest correction's re-accrual, else
    the first accrual (an earlier one was reversed by the correction that followed it)."""
    base = f"loan.accrual:{loan_id}:{day.isoformat()}"
    for n in range(sequence - 1, 0, -1):
        found = await ledger.find_entry(conn, f"{base}:c{n}")
        if found is not None:
            return found
    return await ledger.find_entry(conn, base)


def _funding_terms(record: LoanRecord, terms: AccrualTerms,
                   config: LendingConfig) -> AccrualTerms | None:
    funding = config.funding
    if funding is None:
        return None
    return AccrualTerms(currency=terms.currency, start=terms.start, maturity=_FAR,
                        principal_minor=terms.principal_minor, rate=funding.benchmark_rate,
                        day_count=funding.day_count, rounding=terms.rounding,
                        principal_changes=terms.principal_changes)


async def rewind_accrual(conn: AsyncConnection, record: LoanRecord, value_date: dt.date, *,
                         reason: str, config: LendingConfig) -> Rewind:
    """Reverse `record`'s accruals for loan-days after `value_date` (the caller holds the
    loan's lock and then applies the late money at `value_date`)."""
    through = record.accrued_through
    loan = record.loan
    if through is None or value_date >= through or loan.disbursed_on is None:
        raise InvalidDate(f"loan {record.id!r} has no accrual after {value_date} to reverse")
    later = await conn.scalar(
        sa.select(sa.func.max(repayments.c.paid_on))
        .where(repayments.c.loan_id == record.id, repayments.c.paid_on > value_date))
    if later is not None:
        raise InvalidDate(
            f"loan {record.id!r} has a repayment value-dated {later}, after {value_date}: "
            "money value-dated before another repayment is not applied automatically "
            "(that repayment would have to be re-applied too)")
    overdue_after = (record.status is LoanStatus.OVERDUE and loan.maturity is not None
                     and loan.maturity >= value_date)
    if loan.last_changed_on > value_date and not overdue_after:
        raise InvalidDate(
            f"loan {record.id!r} became {record.status.value} on {loan.last_changed_on}, "
            f"after {value_date}: a back-valued correction before that is not supported")

    sequence = await _corrections(conn, record.id) + 1
    acc = Accounts(record, config)
    interest = penalty = reversed_entries = 0
    day = value_date + _ONE_DAY
    while day <= through:
        live = await _live_accrual(conn, record.id, day, sequence)
        if live is not None:
            for p in live.postings:
                if p.account_code == acc.interest_receivable:
                    interest += p.amount
                elif p.account_code == acc.penalty_receivable:
                    penalty += p.amount
            await ledger.reverse(
                conn, live.id,
                idempotency_key=f"loan.accrual.reversal:{record.id}:{day.isoformat()}"
                                f":c{sequence}",
                effective_date=day, description=f"Accrual of {day} reversed: {reason}",
                metadata={"loan_id": record.id, "loan_day": day.isoformat(),
                          "correction": sequence})
            reversed_entries += 1
        day += _ONE_DAY

    # the funding line's interest was booked per batch, not per loan: this loan's share
    # for the days is reversed by one entry (it is re-accrued with the loan)
    funding_reversed = 0
    changes = (await store.principal_changes(conn, [record.id])).get(record.id, ())
    fterms = _funding_terms(record, terms_for(record, changes), config)
    if fterms is not None and config.funding is not None:
        funding_reversed = (interest_accrued_through(fterms, through)
                            - interest_accrued_through(fterms, value_date))
        if funding_reversed:
            f = config.funding
            await ledger.post(conn, entry(
                f"loan.funding.accrual.reversal:{record.id}:c{sequence}",
                "loan.funding.accrual.reversal", value_date,
                legs(record.currency, [(f.interest_payable, funding_reversed)],
                     [(f.interest_expense, funding_reversed)]),
                f"Funding interest of loan {record.id} for {value_date + _ONE_DAY}..{through} "
                f"reversed: {reason}", record, correction=sequence))

    new_loan = loan
    if overdue_after:
        # overdue was marked after the value date: on the value date the loan was not
        before = LoanStatus.EXTENDED if loan.extensions else LoanStatus.ACTIVE
        since = await conn.scalar(
            sa.select(sa.func.max(loan_events.c.event_on))
            .where(loan_events.c.loan_id == record.id,
                   loan_events.c.to_status == before.value)) or loan.disbursed_on
        new_loan = dataclasses.replace(
            loan, status=before,
            history=(StatusChange(before, min(since, value_date),
                                  f"overdue mark undone: {reason}"),))
    assert loan.maturity is not None
    rewound = dataclasses.replace(
        record, loan=new_loan, accrued_through=value_date,
        interest_accrued_minor=record.interest_accrued_minor - interest,
        penalty_accrued_minor=record.penalty_accrued_minor - penalty,
        funding_interest_minor=record.funding_interest_minor - funding_reversed,
        max_dpd=min(record.max_dpd, max(0, (value_date - loan.maturity).days)))
    saved = await store.save(conn, record, rewound, actor=BACK_VALUE_ACTOR,
                             note=f"overdue mark undone: {reason}")
    cur = record.currency
    await conn.execute(sa.insert(loan_events).values(
        loan_id=record.id, from_status=record.status.value, to_status=saved.status.value,
        event_on=value_date,
        note=(f"correction {sequence}: {reason}; accruals for {value_date + _ONE_DAY} to "
              f"{through} reversed ({reversed_entries} entries: interest "
              f"{format_minor(interest, cur)}, penalty {format_minor(penalty, cur)})"),
        actor=BACK_VALUE_ACTOR, entry_id=None, recorded_at=store.utcnow()))
    return Rewind(saved, value_date, through, sequence, reversed_entries, interest, penalty,
                  funding_reversed, reason)


async def record_reaccrual(conn: AsyncConnection, rewind: Rewind, after: LoanRecord) -> None:
    """The loan event saying what the re-accrual on the new balance came to."""
    cur = after.currency
    interest = after.interest_accrued_minor - rewind.record.interest_accrued_minor
    penalty = after.penalty_accrued_minor - rewind.record.penalty_accrued_minor
    upto = min(rewind.accrued_through, after.accrued_through or rewind.value_date)
    await conn.execute(sa.insert(loan_events).values(
        loan_id=after.id, from_status=rewind.record.status.value, to_status=after.status.value,
        event_on=rewind.value_date,
        note=(f"re-accrued {rewind.value_date + _ONE_DAY} to {upto} on the new balance: "
              f"interest {format_minor(interest, cur)} (was "
              f"{format_minor(rewind.interest_reversed_minor, cur)}), penalty "
              f"{format_minor(penalty, cur)} (was "
              f"{format_minor(rewind.penalty_reversed_minor, cur)})"),
        actor=BACK_VALUE_ACTOR, entry_id=None, recorded_at=store.utcnow()))
