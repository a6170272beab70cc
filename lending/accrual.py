"""The daily accrual run: interest (and, once overdue, penalty) per loan-day, posted.

Each loan-day is one entry keyed `loan.accrual:<loan>:<day>`, posting exactly
target(day) - target(day - 1) (lending.interest), so the days sum to the period's interest
rounded once. The loan row remembers the last loan-day accrued (`accrued_through`): a run
for a date already accrued finds nothing to do, a run after missed days posts each missing
day once, and even a lost row update could not post a day twice (the ledger's idempotency
key would replay it). The run goes in batches, each one transaction with one `post_many`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from ledger import EntryRequest, UTCDateTime
from lending import lifecycle, store
from lending.config import LendingConfig, open_books
from lending.errors import ConcurrentUpdate, LoanNotDisbursed
from lending.interest import (
    AccrualTerms,
    PrincipalChange,
    accrual_schedule,
    interest_accrued_through,
)
from lending.lifecycle import LoanStatus
from lending.postings import Accounts, legs
from lending.schema import loan_events, loans
from lending.store import RUNNING, LoanRecord

__all__ = ["AccrualPlan", "AccrualRunResult", "accrual_chunks", "accrue_loan", "plan_accrual",
           "run_accrual", "terms_for"]

log = structlog.get_logger("lending")
_ONE_DAY = dt.timedelta(days=1)
_FAR = dt.date(9999, 1, 1)


def terms_for(record: LoanRecord, changes: tuple[PrincipalChange, ...] = ()) -> AccrualTerms:
    """The loan's accrual terms (built directly: the run builds one per loan)."""
    loan = record.loan
    if loan.disbursed_on is None or loan.maturity is None:
        raise LoanNotDisbursed(loan.loan_id, loan.status.value)
    principal, later = store.terms_changes(record, changes)
    p = loan.product
    return AccrualTerms(
        currency=p.currency, start=loan.disbursed_on, maturity=loan.maturity,
        principal_minor=principal, rate=p.annual_rate, day_count=p.day_count,
        rounding=p.rounding, penalty_rate=p.penalty_annual_rate,
        non_performing_after_days=p.non_performing_after_days, grace_days=p.grace_days,
        principal_changes=later)


_ACCOUNTS: dict[tuple[object, str], Accounts] = {}


def _product_accounts(record: LoanRecord, config: LendingConfig) -> Accounts:
    """The product-level accounts accrual posts to (cached: one lookup per product)."""
    key = (config.gl, record.loan.product.code)
    acc = _ACCOUNTS.get(key)
    if acc is None:
        acc = _ACCOUNTS[key] = Accounts(record, config)
    return acc


@dataclass(frozen=True)
class AccrualPlan:
    before: LoanRecord
    after: LoanRecord
    entries: tuple[EntryRequest, ...]
    interest_minor: int
    penalty_minor: int
    funding_minor: int
    days: int
    marked_overdue: bool
    #: the last loan-day accrued before this plan
    after_day: dt.date


def plan_accrual(record: LoanRecord, changes: tuple[PrincipalChange, ...], through: dt.date,
                 config: LendingConfig, *, key_suffix: str = "") -> AccrualPlan | None:
    """What accruing `record` through loan-day `through` posts, and the row after it;
    None when there is nothing to do (not running, or already accrued through then).
    `key_suffix` marks a re-accrual after a back-valued correction (lending.backvalue): the
    day's first accrual was reversed, so its re-accrual is a new entry under a new key."""
    loan = record.loan
    if record.status not in RUNNING or loan.disbursed_on is None or loan.maturity is None:
        return None
    after_day = record.accrued_through or loan.disbursed_on
    if through <= after_day:
        return None
    terms = terms_for(record, changes)
    schedule = {row.loan_day: row for row in accrual_schedule(terms, through, after=after_day)}
    funding = config.funding
    fterms = None
    if funding is not None:
        # the bank charges on the principal outstanding for as long as it is: no maturity
        fterms = AccrualTerms(
            currency=terms.currency, start=terms.start, maturity=_FAR,
            principal_minor=terms.principal_minor, rate=funding.benchmark_rate,
            day_count=funding.day_count, rounding=terms.rounding,
            principal_changes=terms.principal_changes)
    acc = _product_accounts(record, config)
    cur = record.currency
    entries: list[EntryRequest] = []
    interest = penalty = funded = 0
    f_before = interest_accrued_through(fterms, after_day) if fterms else 0
    day = after_day + _ONE_DAY
    while day <= through:
        row = schedule.get(day)
        i = row.interest_minor if row else 0
        p = row.penalty_minor if row else 0
        f = 0
        if fterms is not None and funding is not None:
            f_now = interest_accrued_through(fterms, day)
            f, f_before = f_now - f_before, f_now
        if i or p:
            # lean on purpose: the run writes one of these per loan per day
            entries.append(EntryRequest(
                idempotency_key=f"loan.accrual:{record.id}:{day.isoformat()}{key_suffix}",
                kind="loan.accrual", effective_date=day,
                postings=legs(cur, [(acc.interest_receivable, i), (acc.penalty_receivable, p)],
                              [(acc.interest_income, i), (acc.penalty_income, p)]),
                description=f"Accrual, loan {record.id}",
                metadata={"loan_id": record.id, "loan_day": day.isoformat()}))
        interest, penalty, funded = interest + i, penalty + p, funded + f
        day += _ONE_DAY

    new_loan = loan
    marked = False
    if through > loan.maturity and loan.status in (LoanStatus.ACTIVE, LoanStatus.EXTENDED):
        new_loan = lifecycle.mark_overdue(loan, loan.maturity + _ONE_DAY)
        marked = True
    dpd_now = max(0, (through - loan.maturity).days)
    after = dataclasses.replace(
        record, loan=new_loan, accrued_through=through,
        interest_accrued_minor=record.interest_accrued_minor + interest,
        penalty_accrued_minor=record.penalty_accrued_minor + penalty,
        funding_interest_minor=record.funding_interest_minor + funded,
        max_dpd=max(record.max_dpd, dpd_now),
    )
    return AccrualPlan(record, after, tuple(entries), interest, penalty, funded,
                       (through - after_day).days, marked, after_day)


def funding_entries(key: str, plans: Sequence[AccrualPlan], through: dt.date,
                    config: LendingConfig) -> list[EntryRequest]:
    """The funding line's interest for these loans' accrued days, one entry per currency.

    The bank charges the facility, not the loans, so its interest is booked in one entry
    per batch (the loan rows keep each loan's share, for the margin per loan); the batch's
    loan rows commit with it, so no loan's share can be booked twice.
    """
    funding = config.funding
    if funding is None:
        return []
    by_currency: dict[str, int] = {}
    for p in plans:
        if p.funding_minor:
            by_currency[p.after.currency] = by_currency.get(p.after.currency, 0) + p.funding_minor
    return [EntryRequest(
        idempotency_key=f"{key}:{cur}", kind="loan.funding.accrual", effective_date=through,
        postings=legs(cur, [(funding.interest_expense, units)],
                      [(funding.interest_payable, units)]),
        description=f"Interest on the {funding.name} through {through} "
                    f"({sum(1 for p in plans if p.funding_minor)} loan(s))",
        metadata={"through": through.isoformat(), "loans": len(plans)})
        for cur, units in sorted(by_currency.items())]


async def accrue_loan(conn: AsyncConnection, record: LoanRecord, through: dt.date,
                      config: LendingConfig, *, key_suffix: str = "",
                      actor: str = "system") -> LoanRecord:
    """Catch one loan's accrual up through `through`, in the caller's transaction."""
    changes = (await store.principal_changes(conn, [record.id])).get(record.id, ())
    plan = plan_accrual(record, changes, through, config, key_suffix=key_suffix)
    if plan is None:
        return record
    requests = [*plan.entries, *funding_entries(
        f"loan.funding.accrual:{record.id}:{plan.after_day.isoformat()}..{through.isoformat()}"
        f"{key_suffix}", [plan], through, config)]
    posted = await ledger.post_many(conn, requests) if requests else []
    return await store.save(conn, record, plan.after,
                            note="past due" if plan.marked_overdue else "", actor=actor,
                            entry_id=posted[-1].id if posted else None)


@dataclass
class AccrualRunResult:
    through: dt.date
    loans: int = 0
    entries: int = 0
    interest_minor: int = 0
    penalty_minor: int = 0
    funding_minor: int = 0
    marked_overdue: int = 0


_UPDATE = (
    sa.update(loans)
    .where(loans.c.id == sa.bindparam("b_id"), loans.c.version == sa.bindparam("b_version"),
           loans.c.status == sa.bindparam("b_status"))
    .values(status=sa.bindparam("status"), status_on=sa.bindparam("status_on"),
            accrued_through=sa.bindparam("accrued_through"),
            interest_accrued_minor=sa.bindparam("interest_accrued_minor"),
            penalty_accrued_minor=sa.bindparam("penalty_accrued_minor"),
            funding_interest_minor=sa.bindparam("funding_interest_minor"),
            max_dpd=sa.bindparam("max_dpd"), version=sa.bindparam("version"),
            updated_at=sa.bindparam("updated_at"))
)


# PostgreSQL: the whole batch's compare-and-set in one statement over arrays (a constant
# statement, prepared once; an executemany costs a round of work per row there)
_PG_UPDATE = sa.text(
    "UPDATE lending_loans SET status = v.status, status_on = v.status_on, "
    "accrued_through = :through, interest_accrued_minor = v.interest, "
    "penalty_accrued_minor = v.penalty, funding_interest_minor = v.funding, "
    "max_dpd = v.max_dpd, version = lending_loans.version + 1, updated_at = :now "
    "FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:versions AS INTEGER[]), "
    "CAST(:before AS VARCHAR[]), CAST(:statuses AS VARCHAR[]), CAST(:status_on AS DATE[]), "
    "CAST(:interest AS BIGINT[]), CAST(:penalty AS BIGINT[]), CAST(:funding AS BIGINT[]), "
    "CAST(:max_dpd AS INTEGER[])) "
    "AS v(id, version, before, status, status_on, interest, penalty, funding, max_dpd) "
    "WHERE lending_loans.id = v.id AND lending_loans.version = v.version "
    "AND lending_loans.status = v.before"
).bindparams(sa.bindparam("now", type_=UTCDateTime()))


async def _write_rows(conn: AsyncConnection, params: list[dict[str, Any]], through: dt.date,
                      now: dt.datetime) -> int:
    """The batch's compare-and-set: one statement on PostgreSQL, executemany on SQLite."""
    if conn.dialect.name != "postgresql":
        res = await conn.execute(_UPDATE, params)
        return res.rowcount
    res = await conn.execute(_PG_UPDATE, {
        "through": through, "now": now,
        "ids": [p["b_id"] for p in params], "versions": [p["b_version"] for p in params],
        "before": [p["b_status"] for p in params], "statuses": [p["status"] for p in params],
        "status_on": [p["status_on"] for p in params],
        "interest": [p["interest_accrued_minor"] for p in params],
        "penalty": [p["penalty_accrued_minor"] for p in params],
        "funding": [p["funding_interest_minor"] for p in params],
        "max_dpd": [p["max_dpd"] for p in params]})
    return res.rowcount


async def _accrue_batch(conn: AsyncConnection, ids: Sequence[str], through: dt.date,
                        config: LendingConfig) -> AccrualRunResult:
    result = AccrualRunResult(through)
    # the batch's rows are locked, so a repayment racing the run waits instead of
    # making the run's compare-and-set fail
    records = await store.load_many(conn, [loans.c.id.in_(ids)], config, for_update=True)
    changes = await store.principal_changes(
        conn, [r.id for r in records if r.principal_repaid_minor])
    plans = [p for r in records
             if (p := plan_accrual(r, changes.get(r.id, ()), through, config)) is not None]
    requests = [e for p in plans for e in p.entries]
    if plans:
        requests += funding_entries(
            f"loan.funding.accrual:{through.isoformat()}:{plans[0].before.id}..{plans[-1].before.id}",
            plans, through, config)
    if requests:
        await ledger.post_many(conn, requests)
    now = store.utcnow()
    params = [{
        "b_id": p.before.id, "b_version": p.before.version, "b_status": p.before.status.value,
        "status": p.after.status.value, "status_on": p.after.loan.last_changed_on,
        "accrued_through": through, "interest_accrued_minor": p.after.interest_accrued_minor,
        "penalty_accrued_minor": p.after.penalty_accrued_minor,
        "funding_interest_minor": p.after.funding_interest_minor, "max_dpd": p.after.max_dpd,
        "version": p.before.version + 1, "updated_at": now,
    } for p in plans]
    if params:
        rowcount = await _write_rows(conn, params, through, now)
        if rowcount not in (-1, len(params)):
            raise ConcurrentUpdate(plans[0].before.id, "as read by the accrual run")
        overdue = [p for p in plans if p.marked_overdue]
        if overdue:
            await conn.execute(sa.insert(loan_events), [{
                "loan_id": p.after.id, "from_status": p.before.status.value,
                "to_status": p.after.status.value, "event_on": p.after.loan.last_changed_on,
                "note": "past due", "actor": "accrual-run", "entry_id": None,
                "recorded_at": now} for p in overdue])
            for p in overdue:
                await store.record_loan_event(conn, p.after, p.before.status)
    result.loans += len(plans)
    result.entries += len(requests)
    result.interest_minor += sum(p.interest_minor for p in plans)
    result.penalty_minor += sum(p.penalty_minor for p in plans)
    result.funding_minor += sum(p.funding_minor for p in plans)
    result.marked_overdue += sum(p.marked_overdue for p in plans)
    return result


def _due(through: dt.date, after_id: str = "",
         last_id: str | None = None) -> list[sa.ColumnElement[bool]]:
    due = [loans.c.status.in_([s.value for s in RUNNING]),
           sa.or_(loans.c.accrued_through.is_(None), loans.c.accrued_through < through),
           loans.c.disbursed_on < through, loans.c.id > after_id]
    if last_id is not None:
        due.append(loans.c.id <= last_id)
    return due


async def accrual_chunks(engine: AsyncEngine, through: dt.date,
                         chunk_size: int) -> list[tuple[str, str]]:
    """The loans due for accrual through `through`, cut into ranges of about `chunk_size`
    loans by id, `(after_id, last_id]` each: runs of `run_accrual` over different ranges
    touch different loans, so several workers can take them at once."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    async with engine.connect() as conn:
        ids = list((await conn.scalars(sa.select(loans.c.id).where(*_due(through))
                                       .order_by(loans.c.id))).all())
    chunks, after = [], ""
    for start in range(0, len(ids), chunk_size):
        last = ids[min(start + chunk_size, len(ids)) - 1]
        chunks.append((after, last))
        after = last
    return chunks


async def run_accrual(
    engine: AsyncEngine,
    through: dt.date,
    config: LendingConfig,
    *,
    batch_size: int = 2000,
    progress: Callable[[int, int], None] | None = None,
    after_id: str = "",
    last_id: str | None = None,
    on_batch: Callable[[AsyncConnection, AccrualRunResult], Awaitable[None]] | None = None,
) -> AccrualRunResult:
    """Accrue every running loan through `through`, batch by batch (only the loans with
    ids in `(after_id, last_id]` when given: one chunk of a run shared by workers).

    Each batch commits on its own (and is retried whole on a deadlock), so an interrupted
    run is finished by running it again. `progress(done, total)` is called per batch;
    `on_batch(conn, part)` inside each batch's transaction, so what it records (a run's
    totals) commits with the batch, once.
    """
    result = AccrualRunResult(through)
    await open_books(engine, config)
    total = 0
    if progress:  # counted only for the progress bar
        async with engine.connect() as conn:
            total = int(await conn.scalar(sa.select(sa.func.count()).select_from(loans)
                                          .where(*_due(through, after_id, last_id))) or 0)
        progress(0, total)
    done, last_seen = 0, after_id

    async def batch(conn: AsyncConnection, ids: Sequence[str]) -> AccrualRunResult:
        part = await _accrue_batch(conn, ids, through, config)
        if on_batch is not None:
            await on_batch(conn, part)
        return part

    while True:
        async with engine.connect() as conn:
            ids = list((await conn.scalars(
                sa.select(loans.c.id).where(*_due(through, last_seen, last_id))
                .order_by(loans.c.id).limit(batch_size))).all())
        if not ids:
            break
        last_seen = ids[-1]
        part = await ledger.transact(engine, lambda c, ids=ids: batch(c, ids))  # type: ignore[misc]
        for name in ("loans", "entries", "interest_minor", "penalty_minor", "funding_minor",
                     "marked_overdue"):
            setattr(result, name, getattr(result, name) + getattr(part, name))
        done += len(ids)
        if progress:
            progress(min(done, total), total)
        if len(ids) < batch_size:
            break
    log.info("loan.accrual_run", through=through.isoformat(), loans=result.loans,
             entries=result.entries, interest_minor=result.interest_minor,
             penalty_minor=result.penalty_minor, marked_overdue=result.marked_overdue)
    return result
