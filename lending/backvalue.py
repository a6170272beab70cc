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

The same mechanism corrects a disbursement's value date (`correct_disbursement_date`: the
bank paid the loan out on another day than it was booked): its accruals are reversed, its
disbursement and funding-draw entries reversed and booked again at the right date, its
term counted from there, and the days re-accrued.

Not done (refused with the reason): money value-dated before another repayment already
applied to the loan (that one would need re-applying too), or before a status change other
than the overdue mark (an extension, say); a disbursement correction on a loan already
repaid in part or extended.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from lending import store
from lending.accrual import accrue_loan, terms_for
from lending.calendar import calendar_for_roll
from lending.config import LendingConfig
from lending.errors import InvalidDate, InvalidInput
from lending.interest import AccrualTerms, interest_accrued_through
from lending.lifecycle import LoanStatus, StatusChange
from lending.money import format_minor
from lending.postings import Accounts, entry, legs
from lending.schema import loan_events, repayments
from lending.store import RUNNING, LoanRecord

__all__ = ["BACK_VALUE_ACTOR", "Rewind", "correct_disbursement_date", "record_reaccrual",
           "rewind_accrual"]

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


async def _live_accruals(conn: AsyncConnection, loan_id: str, first: dt.date,
                         last: dt.date, sequence: int) -> dict[dt.date, ledger.JournalEntry]:
    """Per loan-day in [first, last], the accrual entry that stands: the latest
    correction's re-accrual, else the first accrual (an earlier one was reversed by the
    correction that followed it). One lookup by idempotency key for all the days."""
    journal = ledger.metadata.tables["journal_entries"]
    wanted: dict[str, tuple[dt.date, int]] = {}
    day = first
    while day <= last:
        base = f"loan.accrual:{loan_id}:{day.isoformat()}"
        wanted[base] = (day, 0)
        for n in range(1, sequence):
            wanted[f"{base}:c{n}"] = (day, n)
        day += _ONE_DAY
    best: dict[dt.date, tuple[int, Any]] = {}
    keys = list(wanted)
    for start in range(0, len(keys), 500):
        rows = await conn.execute(sa.select(journal.c.id, journal.c.idempotency_key)
                                  .where(journal.c.idempotency_key.in_(keys[start:start + 500])))
        for entry_id, key in rows:
            d, n = wanted[key]
            if d not in best or n > best[d][0]:
                best[d] = (n, entry_id)
    days = sorted(best)
    loaded = await ledger.load_entries(conn, [best[d][1] for d in days])
    return dict(zip(days, loaded, strict=True))


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
    live = await _live_accruals(conn, record.id, value_date + _ONE_DAY, through, sequence)
    for day, accrual in live.items():
        for p in accrual.postings:
            if p.account_code == acc.interest_receivable:
                interest += p.amount
            elif p.account_code == acc.penalty_receivable:
                penalty += p.amount
        await ledger.reverse(
            conn, accrual.id,
            idempotency_key=f"loan.accrual.reversal:{record.id}:{day.isoformat()}"
                            f":c{sequence}",
            effective_date=day, description=f"Accrual of {day} reversed: {reason}",
            metadata={"loan_id": record.id, "loan_day": day.isoformat(),
                      "correction": sequence})
        reversed_entries += 1

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


async def _redate(conn: AsyncConnection, original: ledger.JournalEntry, value_date: dt.date,
                  key: str, reason: str) -> ledger.JournalEntry:
    """Reverse `original` and book the same postings again at `value_date`: two new
    entries (the ledger is append-only; an entry's value date is never edited)."""
    await ledger.reverse(conn, original.id, idempotency_key=f"{key}:reversal",
                         effective_date=original.effective_date,
                         description=f"{original.description} — value date corrected: {reason}",
                         metadata={**original.metadata, "corrected_to": value_date.isoformat()})
    postings = [ledger.Posting(p.account_code, debit=ledger.from_minor(p.amount, p.currency))
                if p.amount > 0 else
                ledger.Posting(p.account_code, credit=ledger.from_minor(-p.amount, p.currency))
                for p in original.postings]
    return await ledger.post(conn, ledger.EntryRequest(
        key, original.kind, postings, effective_date=value_date,
        description=f"{original.description} (value {value_date}: {reason})",
        external_ref=original.external_ref,
        metadata={**original.metadata, "corrects_value_date_of": str(original.id)}))


async def correct_disbursement_date(conn: AsyncConnection, loan_id: str, value_date: dt.date,
                                    *, reason: str, config: LendingConfig) -> LoanRecord:
    """The bank paid the loan out on `value_date`, not on the day it was booked: its
    accruals are reversed, its disbursement (and funding draw) entries re-dated (reversed
    and booked again), its term and maturity counted from `value_date` (rolled by the
    product's convention on its market's calendar), and its interest re-accrued from
    there to where accrual had reached.
    Only for a loan nothing else has happened to (no repayment, no extension)."""
    from lending.unwinding import disbursement_key, times_disbursed

    if not reason.strip():
        raise InvalidInput("a value-date correction needs a reason")
    record = await store.load(conn, loan_id, config, for_update=True)
    loan = record.loan
    start = loan.disbursed_on
    if record.status not in RUNNING or start is None:
        raise InvalidDate(f"loan {loan_id!r} is {record.status.value}: only a disbursed, "
                          "running loan's value date can be corrected")
    if value_date == start:
        return record
    has_repayment = await conn.scalar(sa.select(sa.func.count()).select_from(repayments)
                                      .where(repayments.c.loan_id == loan_id))
    if has_repayment or loan.extensions:
        raise InvalidDate(f"loan {loan_id!r} has been repaid or extended since it was paid "
                          "out: its disbursement's value date is not corrected automatically")
    through = record.accrued_through
    why = f"disbursement value-dated {value_date}, not {start}: {reason}"
    if through is not None and through > start:
        rewind = await rewind_accrual(conn, record, start, reason=why, config=config)
        record, sequence = rewind.record, rewind.sequence
    else:
        sequence = await _corrections(conn, loan_id) + 1
        await conn.execute(sa.insert(loan_events).values(
            loan_id=loan_id, from_status=record.status.value, to_status=record.status.value,
            event_on=min(start, value_date), note=f"correction {sequence}: {why}",
            actor=BACK_VALUE_ACTOR, entry_id=None, recorded_at=store.utcnow()))
    earlier = await times_disbursed(conn, loan_id) - 1
    for kind in ("loan.disbursement", "loan.funding.draw"):
        found = await ledger.find_entry(conn, disbursement_key(kind, loan_id, earlier))
        if found is not None:
            await _redate(conn, found, value_date, f"{kind}:{loan_id}:c{sequence}", why)
    contractual = value_date + dt.timedelta(days=loan.term_days)
    calendar = await calendar_for_roll(conn, loan.product.calendar_market,
                                       loan.product.maturity_roll, value_date, contractual)
    maturity = calendar.roll(contractual, loan.product.maturity_roll) if calendar else contractual
    history = tuple(dataclasses.replace(h, on=min(h.on, value_date)) for h in record.loan.history)
    moved = dataclasses.replace(
        record, loan=dataclasses.replace(record.loan, disbursed_on=value_date, maturity=maturity,
                                         contractual_maturity=contractual, history=history),
        accrued_through=None)
    saved = await store.save(conn, record, moved, actor=BACK_VALUE_ACTOR)
    if through is not None and through > value_date:
        saved = await accrue_loan(conn, saved, through, config, key_suffix=f":c{sequence}",
                                  actor=BACK_VALUE_ACTOR)
    cur = saved.currency
    await conn.execute(sa.insert(loan_events).values(
        loan_id=loan_id, from_status=saved.status.value, to_status=saved.status.value,
        event_on=value_date,
        note=(f"disbursement re-dated to {value_date}: maturity {maturity}; interest "
              f"re-accrued to {saved.accrued_through or '-'}: "
              f"{format_minor(saved.interest_accrued_minor, cur)}"),
        actor=BACK_VALUE_ACTOR, entry_id=None, recorded_at=store.utcnow()))
    return saved
