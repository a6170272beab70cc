"""Servicing a loan: disbursement, extension, repayment (bank or settlement offset),
write-off and recovery. Each step is a compare-and-set on the loan row and its journal
entry, in the caller's transaction; each entry has an idempotency key of its event.

Postings (accrual accounting, GL slots from `lending.config.GLMapping`):

    disbursement  Dr loan portfolio          Cr supplier payable (net), Cr fee income (fee)
    funding draw  Dr fund source             Cr funding liability
    extension fee Dr fee receivable          Cr fee income
    repayment     Dr repayment clearing      Cr penalty, fee, interest receivable, portfolio
                  (or Dr supplier payable       (waterfall order), Cr overpayment (excess)
                   for an offset)
    funding repay Dr funding liability       Cr fund source (the principal part)
    write-off     Dr loans written off       Cr every receivable still open
    recovery      Dr repayment clearing      Cr recovery income
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from ledger import EntryRequest, JournalEntry
from lending import lifecycle, store
from lending.accrual import accrue_loan
from lending.backvalue import BACK_VALUE_ACTOR, Rewind, record_reaccrual, rewind_accrual
from lending.borrowers import get_borrower
from lending.calendar import BusinessCalendar, calendar_for_roll
from lending.config import DisbursementMode, LendingConfig, ensure_accounts
from lending.errors import (
    IllegalTransition,
    InvalidAmount,
    InvalidDate,
    InvalidInput,
    LoanClosed,
    RepaymentConflict,
)
from lending.exposure import check_drawable, lock_borrower
from lending.lifecycle import LoanStatus
from lending.money import check_minor, format_minor, from_money
from lending.postings import Accounts, entry, legs
from lending.schema import loans, repayments, settlement_offsets
from lending.store import RUNNING, LoanRecord
from lending.unwinding import disbursement_key, times_disbursed
from lending.waterfall import Allocation, AllocationLine, Bucket, allocate

__all__ = [
    "Disbursement",
    "OffsetResult",
    "Repayment",
    "SettlementRecord",
    "activate_loan",
    "apply_settlement_offset",
    "disburse_loan",
    "extend_loan",
    "find_settlement",
    "outstanding_buckets",
    "record_settlement",
    "recover_loan",
    "repay_loan",
    "write_off_loan",
]

log = structlog.get_logger("lending")

_PENALTY = (Bucket.PAST_DUE_PENALTY,)
_FEES = (Bucket.PAST_DUE_FEES, Bucket.DUE_FEES)
_INTEREST = (Bucket.PAST_DUE_INTEREST, Bucket.DUE_INTEREST, Bucket.NOT_DUE_INTEREST)
_PRINCIPAL = (Bucket.PAST_DUE_PRINCIPAL, Bucket.DUE_PRINCIPAL, Bucket.NOT_DUE_PRINCIPAL)


async def _accounts(conn: AsyncConnection, record: LoanRecord, config: LendingConfig) -> Accounts:
    borrower = await get_borrower(conn, record.loan.borrower_id)
    return Accounts(record, config, payable_override=borrower.payable_account)


# -- disbursement ------------------------------------------------------------------------


@dataclass(frozen=True)
class Disbursement:
    loan: LoanRecord
    entry: JournalEntry
    #: what reached the borrower's payable (principal less any origination fee)
    net_minor: int
    payable_account: str

    @property
    def net(self) -> Money:
        return ledger.from_minor(self.net_minor, self.loan.currency)


async def disburse_loan(conn: AsyncConnection, loan_id: str, on: dt.date, config: LendingConfig,
                        *, mode: DisbursementMode | None = None) -> Disbursement:
    """Book the loan out to the borrower's payable (and draw its funding), if it still fits
    the borrower's credit line less their other exposure (`CreditLineExceeded` otherwise,
    and nothing is written).

    In `balance` mode the money is then on their marketplace balance and the loan is
    active at once; in `payout` mode the loan stays `disbursed` until the composing
    workflow (paycore) has requested the payout and calls `activate_loan`.
    """
    mode = mode or config.disbursement
    await ensure_accounts(conn, config)
    # the borrower's lock, then the loan's: the line is checked again as it stands today,
    # so no two disbursements (or an approval racing one) can together exceed it
    await lock_borrower(conn, (await store.load(conn, loan_id, config)).loan.borrower_id)
    record = await store.load(conn, loan_id, config, for_update=True)
    acc = await _accounts(conn, record, config)
    loan = lifecycle.disburse(record.loan, on,
                              await _calendar(conn, record, on, record.loan.term_days))
    await check_drawable(conn, record, on, config)
    principal = loan.amount_minor
    fee = loan.product.origination_fee_for(principal)
    cur = record.currency
    # a loan disbursed again after its payout came back books under numbered keys
    earlier = await times_disbursed(conn, loan_id)
    requests: list[EntryRequest] = [entry(
        disbursement_key("loan.disbursement", loan_id, earlier), "loan.disbursement", on,
        legs(cur, [(acc.portfolio, principal)], [(acc.payable, principal - fee),
                                                  (acc.fee_income, fee)]),
        f"Loan {loan_id} disbursed to {record.loan.borrower_id} ({mode.value})", record,
        mode=mode.value, origination_fee_minor=fee)]
    if config.funding is not None:
        f = config.funding
        requests.append(entry(
            disbursement_key("loan.funding.draw", loan_id, earlier), "loan.funding.draw", on,
            legs(cur, [(f.fund_source, principal)], [(f.liability, principal)]),
            f"Drawn on the {f.name} to fund loan {loan_id}", record))
    posted = await ledger.post_many(conn, requests)
    after = dataclasses.replace(record, loan=loan, disbursement_mode=mode.value,
                                fees_charged_minor=record.fees_charged_minor + fee,
                                fees_paid_minor=record.fees_paid_minor + fee)
    saved = await store.save(conn, record, after, entry_id=posted[0].id,
                             note=f"{format_minor(principal - fee, cur)} to {acc.payable}")
    if mode is DisbursementMode.MARKETPLACE_BALANCE:
        saved = await activate_loan(conn, loan_id, on, config, note="credited to the "
                                    "marketplace balance")
    log.info("loan.disbursed", loan_id=loan_id, principal_minor=principal, fee_minor=fee,
             mode=mode.value)
    return Disbursement(saved, posted[0], principal - fee, acc.payable)


async def _calendar(conn: AsyncConnection, record: LoanRecord, on: dt.date,
                    days_ahead: int) -> BusinessCalendar | None:
    """The business days a maturity up to `days_ahead` after `on` may be rolled over."""
    product = record.loan.product
    return await calendar_for_roll(conn, product.calendar_market, product.maturity_roll, on,
                                   on + dt.timedelta(days=max(days_ahead, 0)))


async def activate_loan(conn: AsyncConnection, loan_id: str, on: dt.date, config: LendingConfig,
                        *, payout_id: str | None = None, note: str = "") -> LoanRecord:
    """The money reached the borrower: disbursed -> active."""
    record = await store.load(conn, loan_id, config, for_update=True)
    after = dataclasses.replace(record, loan=lifecycle.activate(record.loan, on),
                                payout_id=payout_id or record.payout_id)
    return await store.save(conn, record, after,
                            note=note or (f"payout {payout_id} requested" if payout_id else ""))


# -- extension ---------------------------------------------------------------------------


async def extend_loan(conn: AsyncConnection, loan_id: str, on: dt.date,
                      config: LendingConfig) -> LoanRecord:
    """Move maturity by the product's extension days (once, before maturity), charging the
    extension fee if the product has one."""
    record = await store.load(conn, loan_id, config, for_update=True)
    ahead = ((record.loan.maturity or on) - on).days + record.loan.product.extension.days
    loan = lifecycle.extend(record.loan, on, await _calendar(conn, record, on, ahead))
    fee = loan.product.extension_fee_for(record.principal_outstanding_minor)
    entry_id = None
    if fee:
        await ensure_accounts(conn, config)
        acc = Accounts(record, config)
        posted = await ledger.post(conn, entry(
            f"loan.extension:{loan_id}:{loan.extensions}", "loan.extension_fee", on,
            legs(record.currency, [(acc.fee_receivable, fee)], [(acc.fee_income, fee)]),
            f"Extension fee, loan {loan_id} to {loan.maturity}", record))
        entry_id = posted.id
    after = dataclasses.replace(record, loan=loan,
                                fees_charged_minor=record.fees_charged_minor + fee)
    log.info("loan.extended", loan_id=loan_id, maturity=str(loan.maturity), fee_minor=fee)
    return await store.save(conn, record, after, entry_id=entry_id)


# -- repayment ---------------------------------------------------------------------------


def outstanding_buckets(record: LoanRecord, on: dt.date) -> dict[Bucket, int]:
    """What the loan owes on `on`, by waterfall bucket: past due after maturity, due on
    the maturity date, not yet due before it (fees are due when charged)."""
    maturity = record.loan.maturity
    penalty, fees = record.penalty_outstanding_minor, record.fees_outstanding_minor
    interest, principal = record.interest_outstanding_minor, record.principal_outstanding_minor
    if maturity is None:
        return {}
    if on > maturity:
        return {Bucket.PAST_DUE_PENALTY: penalty, Bucket.PAST_DUE_FEES: fees,
                Bucket.PAST_DUE_INTEREST: interest, Bucket.PAST_DUE_PRINCIPAL: principal}
    if on == maturity:
        return {Bucket.PAST_DUE_PENALTY: penalty, Bucket.DUE_FEES: fees,
                Bucket.DUE_INTEREST: interest, Bucket.DUE_PRINCIPAL: principal}
    return {Bucket.PAST_DUE_PENALTY: penalty, Bucket.DUE_FEES: fees,
            Bucket.NOT_DUE_INTEREST: interest, Bucket.NOT_DUE_PRINCIPAL: principal}


@dataclass(frozen=True)
class Repayment:
    repayment_id: str
    loan: LoanRecord
    allocation: Allocation
    entry: JournalEntry | None

    @property
    def principal_minor(self) -> int:
        return sum(self.allocation.applied(b) for b in _PRINCIPAL)

    @property
    def interest_minor(self) -> int:
        return sum(self.allocation.applied(b) for b in _INTEREST)


def _split(allocation: Allocation) -> tuple[int, int, int, int]:
    """(penalty, fees, interest, principal) applied."""
    return tuple(sum(allocation.applied(b) for b in group)  # type: ignore[return-value]
                 for group in (_PENALTY, _FEES, _INTEREST, _PRINCIPAL))


def _credit_legs(acc: Accounts, allocation: Allocation) -> list[tuple[str, int]]:
    """The receivables credited, in the waterfall order the allocation followed."""
    account_of = {**{b: acc.penalty_receivable for b in _PENALTY},
                  **{b: acc.fee_receivable for b in _FEES},
                  **{b: acc.interest_receivable for b in _INTEREST},
                  **{b: acc.portfolio for b in _PRINCIPAL}}
    return [(account_of[line.bucket], line.applied_minor) for line in allocation.lines
            if line.applied_minor]


async def _prepare(conn: AsyncConnection, loan_id: str, on: dt.date,
                   config: LendingConfig, *, back_value: str | None = None
                   ) -> tuple[LoanRecord, Rewind | None]:
    """Load a loan that can take money on `on`, with its accrual caught up through `on`
    (interest for exactly the days used). Money value-dated before the accrual already
    run is taken when `back_value` says why: the accruals after `on` are reversed first
    (lending.backvalue), and the caller re-accrues them once the money is applied."""
    record = await store.load(conn, loan_id, config, for_update=True)
    if record.status not in RUNNING:
        if record.loan.closed:
            raise LoanClosed(loan_id, record.status.value, "repaid", ())
        raise lifecycle_error(record, "repaid")
    if record.loan.disbursed_on is not None and on < record.loan.disbursed_on:
        raise InvalidDate(f"loan {loan_id!r} was disbursed on {record.loan.disbursed_on}; "
                          f"it cannot be repaid on {on}")
    if record.accrued_through is not None and on < record.accrued_through:
        if back_value is None:
            raise InvalidDate(f"loan {loan_id!r} is accrued through {record.accrued_through}; "
                              f"money value-dated {on} is taken only as a repayment, which "
                              "reverses and re-accrues the days after it")
        rewind = await rewind_accrual(conn, record, on, reason=back_value, config=config)
        return rewind.record, rewind
    return await accrue_loan(conn, record, on, config), None


def lifecycle_error(record: LoanRecord, target: str) -> Exception:
    allowed = tuple(sorted(s.value for s in lifecycle.TRANSITIONS[record.status]))
    return IllegalTransition(record.id, record.status.value, target, allowed)


def _apply(record: LoanRecord, allocation: Allocation, on: dt.date) -> LoanRecord:
    penalty, fees, interest, principal = _split(allocation)
    after = dataclasses.replace(
        record,
        principal_repaid_minor=record.principal_repaid_minor + principal,
        interest_paid_minor=record.interest_paid_minor + interest,
        penalty_paid_minor=record.penalty_paid_minor + penalty,
        fees_paid_minor=record.fees_paid_minor + fees,
        overpaid_minor=record.overpaid_minor + allocation.excess_minor,
    )
    if after.total_outstanding_minor == 0 and after.status in RUNNING:
        after = dataclasses.replace(after, loan=lifecycle.repay(after.loan, on))
    return after


async def _record_repayment(conn: AsyncConnection, repayment_id: str, source: str,
                            before: LoanRecord, after: LoanRecord, allocation: Allocation,
                            on: dt.date, entry_id: Any, settlement_id: str | None) -> None:
    penalty, fees, interest, principal = _split(allocation)
    await conn.execute(sa.insert(repayments).values(
        id=repayment_id, loan_id=before.id, source=source, paid_on=on,
        amount_minor=allocation.paid_minor, principal_minor=principal, interest_minor=interest,
        penalty_minor=penalty, fees_minor=fees, excess_minor=allocation.excess_minor,
        principal_after_minor=after.loan.amount_minor - after.principal_repaid_minor,
        allocation={"lines": [{"bucket": line.bucket.value, "outstanding": line.outstanding_minor,
                               "applied": line.applied_minor} for line in allocation.lines],
                    "excess": allocation.excess_minor},
        settlement_id=settlement_id, entry_id=entry_id, recorded_at=store.utcnow()))


def _funding_repay(record: LoanRecord, principal: int, config: LendingConfig
                   ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    f = config.funding
    if f is None or not principal:
        return [], []
    return [(f.liability, principal)], [(f.fund_source, principal)]


async def _existing_repayment(conn: AsyncConnection, repayment_id: str, loan_id: str,
                              amount: Money, source: str,
                              config: LendingConfig) -> Repayment | None:
    row = (await conn.execute(sa.select(repayments).where(repayments.c.id == repayment_id))).first()
    if row is None:
        return None
    record = await store.load(conn, row.loan_id, config)
    if (row.loan_id, row.source, row.amount_minor) != (
            loan_id, source, from_money(amount, record.currency)):
        raise RepaymentConflict(repayment_id)
    lines = tuple(AllocationLine(Bucket(x["bucket"]), x["outstanding"], x["applied"])
                  for x in row.allocation["lines"])
    allocation = Allocation(row.amount_minor, lines, row.excess_minor)
    [posted] = await ledger.load_entries(conn, [row.entry_id])
    return Repayment(repayment_id, record, allocation, dataclasses.replace(posted, replayed=True))


async def repay_loan(
    conn: AsyncConnection,
    loan_id: str,
    amount: Money,
    on: dt.date,
    config: LendingConfig,
    *,
    repayment_id: str,
    source: str = "bank",
) -> Repayment:
    """Take a repayment by bank transfer (`bank`) or from the borrower's supplier payable
    (`offset`), allocate it by the product's waterfall, book the excess as an overpayment.

    `repayment_id` is the idempotency key of the event: a replay returns the first result.
    """
    if source not in ("bank", "offset"):
        raise InvalidInput(f"a repayment comes from 'bank' or 'offset', not {source!r}")
    if not repayment_id:
        raise InvalidInput("a repayment needs an id (its idempotency key)")
    existing = await _existing_repayment(conn, repayment_id, loan_id, amount, source, config)
    if existing is not None:
        return existing
    record = await store.load(conn, loan_id, config)
    units = from_money(amount, record.currency)
    check_minor(units, "repayment amount", positive=True)
    await ensure_accounts(conn, config)
    record, rewind = await _prepare(
        conn, loan_id, on, config,
        back_value=f"repayment {repayment_id} value-dated {on} arrived after accrual had run")
    acc = await _accounts(conn, record, config)
    allocation = allocate(units, outstanding_buckets(record, on), record.loan.product.waterfall)
    debit = acc.repayment_clearing if source == "bank" else acc.payable
    _, _, _, principal = _split(allocation)
    fd, fc = _funding_repay(record, principal, config)
    posted = await ledger.post(conn, entry(
        f"loan.repayment:{repayment_id}", "loan.repayment", on,
        legs(record.currency, [(debit, units), *fd],
             [*_credit_legs(acc, allocation), (acc.overpayment, allocation.excess_minor), *fc]),
        f"Repayment of loan {loan_id} ({source})", record, source=source,
        repayment_id=repayment_id))
    after = _apply(record, allocation, on)
    saved = await store.save(conn, record, after, entry_id=posted.id)
    await _record_repayment(conn, repayment_id, source, record, saved, allocation, on,
                            posted.id, None)
    if rewind is not None:
        # the days after the value date again, on the balance the money left
        saved = await accrue_loan(conn, saved, rewind.accrued_through, config,
                                  key_suffix=rewind.key_suffix, actor=BACK_VALUE_ACTOR)
        await record_reaccrual(conn, rewind, saved)
    log.info("loan.repaid", loan_id=loan_id, amount_minor=units, source=source,
             status=saved.status.value, excess_minor=allocation.excess_minor)
    return Repayment(repayment_id, saved, allocation, posted)


# -- settlement offset -------------------------------------------------------------------


@dataclass(frozen=True)
class OffsetResult:
    settlement_id: str
    borrower_id: str
    applied_minor: int
    repayments: tuple[Repayment, ...]
    entry: JournalEntry | None


def _offset_order(records: Sequence[LoanRecord], on: dt.date) -> list[LoanRecord]:
    def key(r: LoanRecord) -> tuple[dt.date, str]:
        assert r.loan.maturity is not None
        return r.loan.maturity, r.id
    return sorted(records, key=key)


async def apply_settlement_offset(
    conn: AsyncConnection,
    settlement_id: str,
    borrower_id: str,
    available_minor: int,
    on: dt.date,
    config: LendingConfig,
    *,
    payable_account: str | None = None,
) -> OffsetResult:
    """Apply up to `available_minor` of what the marketplace owes the borrower to their
    loans the settlement policy selects (earliest maturity first; past due ones have the
    earliest), as ONE balanced entry: Dr supplier payable, Cr the receivables in
    waterfall order, loan by loan. Never more than the loans owe: no overpayment."""
    check_minor(available_minor, "available settlement amount")
    records = await store.load_many(
        conn, [loans.c.borrower_id == borrower_id,
               loans.c.status.in_([s.value for s in RUNNING])], config)
    selected = [r for r in _offset_order(records, on)
                if r.loan.maturity is not None and config.settlement.offsets(r.loan.maturity, on)
                and (r.loan.disbursed_on is None or r.loan.disbursed_on <= on)]
    left = available_minor
    planned: list[tuple[LoanRecord, LoanRecord, Allocation, Accounts]] = []
    if selected and left:
        await ensure_accounts(conn, config)
    for candidate in selected:
        if not left:
            break
        record, _ = await _prepare(conn, candidate.id, on, config)
        acc = await _accounts(conn, record, config)
        if payable_account:
            acc.payable = payable_account
        buckets = outstanding_buckets(record, on)
        owed = sum(buckets.values())
        if not owed:
            continue
        allocation = allocate(min(left, owed), buckets, record.loan.product.waterfall)
        left -= allocation.paid_minor
        planned.append((record, _apply(record, allocation, on), allocation, acc))
    if not planned:
        return OffsetResult(settlement_id, borrower_id, 0, (), None)
    applied = available_minor - left
    debits: list[tuple[str, int]] = [(planned[0][3].payable, applied)]
    credits: list[tuple[str, int]] = []
    for record, _after, allocation, acc in planned:
        credits.extend(_credit_legs(acc, allocation))
        fd, fc = _funding_repay(record, _split(allocation)[3], config)
        debits.extend(fd)
        credits.extend(fc)
    first = planned[0][0]
    posted = await ledger.post(conn, entry(
        f"loan.offset:{settlement_id}:{borrower_id}", "loan.offset", on,
        legs(first.currency, debits, credits),
        f"Settlement {settlement_id}: {format_minor(applied, first.currency)} of "
        f"{borrower_id}'s payable applied to {len(planned)} loan(s)", first,
        settlement_id=settlement_id, loans=[p[0].id for p in planned]))
    done: list[Repayment] = []
    for record, after, allocation, _acc in planned:
        saved = await store.save(conn, record, after, entry_id=posted.id,
                                 note=f"settlement {settlement_id}")
        rid = f"offset:{settlement_id}:{record.id}"
        await _record_repayment(conn, rid, "offset", record, saved, allocation, on, posted.id,
                                settlement_id)
        done.append(Repayment(rid, saved, allocation, posted))
    log.info("loan.offset", settlement_id=settlement_id, borrower_id=borrower_id,
             applied_minor=applied, loans=len(done))
    return OffsetResult(settlement_id, borrower_id, applied, tuple(done), posted)


@dataclass(frozen=True)
class SettlementRecord:
    settlement_id: str
    borrower_id: str
    settled_on: dt.date
    available_minor: int
    offset_minor: int
    payout_minor: int
    payout_id: str | None


async def find_settlement(conn: AsyncConnection, settlement_id: str,
                          borrower_id: str) -> SettlementRecord | None:
    row = (await conn.execute(sa.select(settlement_offsets).where(
        settlement_offsets.c.settlement_id == settlement_id,
        settlement_offsets.c.borrower_id == borrower_id))).first()
    if row is None:
        return None
    return SettlementRecord(row.settlement_id, row.borrower_id, row.settled_on,
                            row.available_minor, row.offset_minor, row.payout_minor, row.payout_id)


async def record_settlement(conn: AsyncConnection, record: SettlementRecord,
                            entry: JournalEntry | None) -> None:
    """Remember what a settlement did for one supplier (its idempotency record)."""
    await conn.execute(sa.insert(settlement_offsets).values(
        settlement_id=record.settlement_id, borrower_id=record.borrower_id,
        settled_on=record.settled_on, available_minor=record.available_minor,
        offset_minor=record.offset_minor, payout_minor=record.payout_minor,
        payout_id=record.payout_id, entry_id=entry.id if entry else None,
        recorded_at=store.utcnow()))


# -- delinquency -------------------------------------------------------------------------


async def write_off_loan(conn: AsyncConnection, loan_id: str, on: dt.date, config: LendingConfig,
                         *, note: str = "", actor: str = "system") -> LoanRecord:
    """Write an overdue loan off: everything it still owes goes to loan losses."""
    record = await store.load(conn, loan_id, config, for_update=True)
    if record.status is LoanStatus.OVERDUE:
        await ensure_accounts(conn, config)
        record = await accrue_loan(conn, record, max(on, record.accrued_through or on), config)
    loan = lifecycle.write_off(record.loan, on, note)
    acc = Accounts(record, config)
    parts = [(acc.penalty_receivable, record.penalty_outstanding_minor),
             (acc.fee_receivable, record.fees_outstanding_minor),
             (acc.interest_receivable, record.interest_outstanding_minor),
             (acc.portfolio, record.principal_outstanding_minor)]
    total = sum(units for _, units in parts)
    entry_id = None
    if total:
        posted = await ledger.post(conn, entry(
            f"loan.write_off:{loan_id}", "loan.write_off", on,
            legs(record.currency, [(acc.losses, total)], parts),
            f"Loan {loan_id} written off" + (f": {note}" if note else ""), record))
        entry_id = posted.id
    after = dataclasses.replace(record, loan=loan, written_off_minor=total)
    log.info("loan.written_off", loan_id=loan_id, amount_minor=total)
    return await store.save(conn, record, after, entry_id=entry_id, note=note, actor=actor)


async def recover_loan(conn: AsyncConnection, loan_id: str, amount: Money, on: dt.date,
                       config: LendingConfig, *, recovery_id: str, source: str = "bank",
                       note: str = "") -> LoanRecord:
    """Money received for a written-off loan: recovery income, and the loan is closed."""
    record = await store.load(conn, loan_id, config, for_update=True)
    units = from_money(amount, record.currency)
    if units <= 0:
        raise InvalidAmount(f"a recovery must be positive, got {amount}")
    loan = lifecycle.recover(record.loan, on, note)
    await ensure_accounts(conn, config)
    acc = await _accounts(conn, record, config)
    debit = acc.repayment_clearing if source == "bank" else acc.payable
    posted = await ledger.post(conn, entry(
        f"loan.recovery:{recovery_id}", "loan.recovery", on,
        legs(record.currency, [(debit, units)], [(acc.recovery_income, units)]),
        f"Recovery on written-off loan {loan_id}", record))
    after = dataclasses.replace(record, loan=loan, recovered_minor=record.recovered_minor + units)
    saved = await store.save(conn, record, after, entry_id=posted.id, note=note)
    allocation = Allocation(units, (), units)
    await _record_repayment(conn, recovery_id, "recovery", record, saved, allocation, on,
                            posted.id, None)
    return saved
