"""The janitor: one pass of status inquiries and expiry.

For every due inquiry (an attempt, refund or payout that is pending, processing or
unknown) it asks the bank, outside any transaction, and settles from the answer in one
transaction. "processing" (or no answer) backs off; after `max_tries` unanswered
inquiries the record goes to manual review. A bank that does not know an order at all
("not found") never had it: an unknown attempt/refund/payout with that answer failed, and
nothing was debited. Nothing goes from `unknown` to another bank. For a refund or a
payout "not found" is proof only once the request was sent `UNSEEN_AFTER` ago: until
then it may still be on its way through the bank (a slow bank acts after our time-out,
and the janitor in another process asks at once), and failing it would release its
reservation while the bank goes on to pay.

Every inquiry names exactly what was sent: the `BankCall` recorded before the request
(gateways.calls), so a janitor in another process than the one that sent it settles it
alike (UnionPay's queryTrans needs the original txnTime). A success the bank qualified
(UnionPay A6) is settled as the success it is and flagged for a person.

Run it often (`paycore payments janitor`, or a loop calling `run_janitor`); `now` lets a
caller (or a test) look ahead without sleeping.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from gateways import calls, inquiries, payout_returns, payouts, settlement
from gateways.bank import (
    BankCall,
    BankError,
    BankOutcome,
    PaymentStatus,
    PayoutStatus,
    RefundStatus,
)
from gateways.checkout import expire_intents
from gateways.errors import ConcurrentTransition, InvalidPaymentRequest, NotFound
from gateways.inquiries import Inquiry, Subject
from gateways.routing import BankDirectory
from gateways.schema import inquiries as inquiries_table
from gateways.schema import payment_attempts, refunds
from gateways.schema import payouts as payouts_table
from gateways.states import AttemptState, PayoutState, RefundState
from gateways.store import find_attempt, find_payout, find_refund, load_intent, transition, utcnow

__all__ = ["AskedNow", "JanitorReport", "inquire_now", "run_janitor", "schedule_stranded"]

log = structlog.get_logger("gateways.janitor")
DEFAULT_MAX_TRIES = 8


@dataclass
class JanitorReport:
    checked: int = 0
    settled: int = 0
    postponed: int = 0
    to_review: int = 0
    expired: list[str] = field(default_factory=list)
    #: records found in flight without an inquiry (a worker stopped mid-call), now asked
    stranded: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"janitor: {self.checked} inquiries, {self.settled} settled, "
                f"{self.postponed} postponed, {self.to_review} to review, "
                f"{len(self.expired)} intents expired"
                + (f", {self.stranded} stranded records scheduled" if self.stranded else ""))


async def run_janitor(engine: AsyncEngine, banks: BankDirectory, *,
                      now: dt.datetime | None = None, limit: int = 200,
                      max_tries: int = DEFAULT_MAX_TRIES) -> JanitorReport:
    """One pass: expire what can expire, then ask the banks about every due inquiry."""
    now = now or utcnow()
    report = JanitorReport()
    report.expired = await ledger.transact(engine, lambda conn: expire_intents(conn, now))
    report.stranded = await ledger.transact(engine, lambda conn: schedule_stranded(conn, now))
    async with engine.connect() as conn:
        due = await inquiries.due(conn, now, limit)
    for inquiry in due:
        report.checked += 1
        try:
            result = await _inquire(engine, banks, inquiry, now, max_tries)
        except ConcurrentTransition:
            result = "raced"  # a notification settled it meanwhile; nothing to do
        if result != "raced":
            setattr(report, result, getattr(report, result) + 1)
    log.info("janitor.pass", checked=report.checked, settled=report.settled,
             postponed=report.postponed, to_review=report.to_review,
             expired=len(report.expired))
    return report


@dataclass(frozen=True)
class AskedNow:
    """What one inquiry asked on demand did: the janitor's result ("settled", "postponed",
    "to_review" or "raced"), what the bank answered (the inquiry's last outcome), and the
    record's status before and after."""

    result: str
    bank: str
    answer: str | None
    status_before: str
    status_after: str
    tries: int


async def inquire_now(engine: AsyncEngine, banks: BankDirectory, subject: Subject,
                      subject_id: str, *, now: dt.datetime | None = None,
                      max_tries: int = DEFAULT_MAX_TRIES) -> AskedNow:
    """Ask the bank about one attempt, refund or payout in `unknown` now, not at its next
    scheduled check: its inquiry is opened (or brought forward) in the janitor's schedule
    and run exactly as a janitor's pass runs it (`_inquire`: the recorded bank call, the
    answer settled, postponed with a try counted, or sent to review after `max_tries`), so
    the inquiry history shows it like any other. Only an unknown outcome is asked about."""
    now = now or utcnow()
    table = _SUBJECT_TABLES[subject]
    async with engine.begin() as conn:
        row = (await conn.execute(sa.select(table.c.status, table.c.bank).where(
            table.c.id == subject_id))).first()
        if row is None:
            raise NotFound(f"no {subject.value} {subject_id}")
        if row.status != "unknown":
            raise InvalidPaymentRequest(
                f"{subject.value} {subject_id} is {row.status}, not unknown: only an unknown "
                "outcome is asked about")
        if row.bank is None:
            raise InvalidPaymentRequest(f"{subject.value} {subject_id} was never sent to a bank")
        await inquiries.schedule(conn, subject, subject_id, row.bank, now, now)
    async with engine.connect() as conn:
        q = (await conn.execute(sa.select(inquiries_table).where(
            inquiries_table.c.subject == subject.value,
            inquiries_table.c.subject_id == subject_id))).one()
    inquiry = Inquiry(q.id, subject, q.subject_id, q.bank, q.status, q.tries, q.next_check_at,
                      q.last_outcome)
    try:
        result = await _inquire(engine, banks, inquiry, now, max_tries)
    except ConcurrentTransition:
        result = "raced"  # a notification settled it meanwhile
    async with engine.connect() as conn:
        after = (await conn.execute(sa.select(table.c.status).where(
            table.c.id == subject_id))).scalar_one()
        asked = (await conn.execute(sa.select(inquiries_table).where(
            inquiries_table.c.subject == subject.value,
            inquiries_table.c.subject_id == subject_id))).one()
    log.info("janitor.asked_now", subject=subject.value, subject_id=subject_id,
             bank=inquiry.bank, result=result, status=after)
    return AskedNow(result, inquiry.bank, asked.last_outcome, row.status, str(after),
                    int(asked.tries))


#: how long a record may sit in flight without an inquiry before the janitor asks about it
STRANDED_AFTER = dt.timedelta(minutes=5)
#: a refund or payout request the bank still does not know this long after it was sent
#: (the recorded call's time, against the real clock: never a look-ahead `now`) never
#: reached it; before that, "not found" proves nothing
UNSEEN_AFTER = dt.timedelta(minutes=5)
_IN_FLIGHT: tuple[tuple[Subject, sa.Table, tuple[str, ...]], ...] = (
    (Subject.ATTEMPT, payment_attempts, ("created", "pending", "unknown", "authorized")),
    (Subject.REFUND, refunds, ("requested", "pending", "unknown")),
    (Subject.PAYOUT, payouts_table, ("submitted", "unknown")),
)


async def schedule_stranded(conn: AsyncConnection, now: dt.datetime, limit: int = 1000) -> int:
    """Attempts, refunds and payouts in flight for a while with no open inquiry (the worker
    that sent them stopped before recording the bank's answer): ask their bank now."""
    found = 0
    for subject, table, statuses in _IN_FLIGHT:
        asked = sa.select(inquiries_table.c.id).where(
            inquiries_table.c.subject == subject.value,
            inquiries_table.c.subject_id == table.c.id, inquiries_table.c.status == "open")
        rows = (await conn.execute(sa.select(table.c.id, table.c.bank).where(
            table.c.status.in_(statuses), table.c.updated_at <= now - STRANDED_AFTER,
            table.c.bank.is_not(None), ~asked.exists()).limit(limit))).all()
        for row in rows:
            await inquiries.schedule(conn, subject, row.id, row.bank, now, now)
        found += len(rows)
    if found:
        log.warning("janitor.stranded", count=found)
    return found


async def _inquire(engine: AsyncEngine, banks: BankDirectory, inquiry: Inquiry,
                   now: dt.datetime, max_tries: int) -> str:
    if inquiry.bank not in banks:
        return await _postpone(engine, inquiry, "bank not configured", now, max_tries)
    async with engine.connect() as conn:
        call, sent = await _call_for(conn, inquiry)
    # "not found" proves a sent refund or payout never reached the bank only once the bank
    # has had UNSEEN_AFTER of real time: a `now` ahead of the clock (a catch-up pass,
    # `paycore payments janitor --now`) is no time the bank has had. Never sent (no call
    # recorded): nothing is on its way, the caller's `now` stands.
    unseen = call.placed_at <= (min(now, utcnow()) if sent else now) - UNSEEN_AFTER
    try:
        if inquiry.subject is Subject.ATTEMPT:
            answer: PaymentStatus | RefundStatus | PayoutStatus = await banks.call(
                inquiry.bank, lambda b: b.query_payment(call), moves_money=False)
        elif inquiry.subject is Subject.REFUND:
            answer = await banks.call(
                inquiry.bank, lambda b: b.query_refund(call), moves_money=False)
        else:
            answer = await banks.call(
                inquiry.bank, lambda b: b.query_payout(call), moves_money=False)
    except BankError as exc:
        log.warning("janitor.no_answer", bank=inquiry.bank, subject=inquiry.subject.value,
                    subject_id=inquiry.subject_id, error=str(exc))
        return await _postpone(engine, inquiry, f"no answer: {type(exc).__name__}", now,
                               max_tries)
    if isinstance(answer, PaymentStatus):
        return await _settle_attempt(engine, inquiry, answer, now, max_tries, unseen)
    if isinstance(answer, RefundStatus):
        return await _settle_refund(engine, inquiry, answer, now, max_tries, unseen)
    return await _settle_payout(engine, inquiry, answer, now, max_tries, unseen)


_SUBJECT_TABLES = {Subject.ATTEMPT: payment_attempts, Subject.REFUND: refunds,
                   Subject.PAYOUT: payouts_table}


async def _call_for(conn: AsyncConnection, inquiry: Inquiry) -> tuple[BankCall, bool]:
    """What was sent, as recorded before sending, and whether anything was. A record with
    no call recorded was never sent (the call is committed first): its own creation time
    stands in, and the bank, never having had it, answers "not found" whatever the time."""
    call = await calls.latest_call(conn, inquiry.subject, inquiry.subject_id, inquiry.bank)
    if call is not None:
        return call, True
    table = _SUBJECT_TABLES[inquiry.subject]
    created = (await conn.execute(sa.select(table.c.created_at).where(
        table.c.id == inquiry.subject_id))).scalar()
    return BankCall(reference=inquiry.subject_id, placed_at=created or utcnow()), False


async def _postpone(engine: AsyncEngine, inquiry: Inquiry, outcome: str, now: dt.datetime,
                    max_tries: int) -> str:
    if inquiry.tries + 1 >= max_tries:
        reason = (f"{inquiry.tries + 1} status inquiries at {inquiry.bank} without a final "
                  f"answer (last: {outcome})")

        async def review(conn: AsyncConnection) -> None:
            if inquiry.subject is Subject.ATTEMPT:
                await settlement.attempt_to_review(conn, inquiry.subject_id, reason, now)
            elif inquiry.subject is Subject.REFUND:
                await settlement.refund_to_review(conn, inquiry.subject_id, reason, now)
            else:
                payout = await find_payout(conn, inquiry.subject_id)
                if payout is not None and payout.status in (PayoutState.SUBMITTED,
                                                            PayoutState.UNKNOWN):
                    await transition(conn, payout.id, payout.status, PayoutState.REVIEW,
                                     now=now, failure_reason=reason)
                await inquiries.close(conn, Subject.PAYOUT, inquiry.subject_id, now,
                                      status="review", outcome=outcome)
        await ledger.transact(engine, review)
        log.warning("janitor.to_review", subject=inquiry.subject.value,
                    subject_id=inquiry.subject_id, reason=reason)
        return "to_review"
    await ledger.transact(engine, lambda conn: inquiries.postpone(conn, inquiry, outcome, now))
    return "postponed"


async def _close(engine: AsyncEngine, inquiry: Inquiry, now: dt.datetime, outcome: str) -> str:
    await ledger.transact(engine, lambda conn: inquiries.close(
        conn, inquiry.subject, inquiry.subject_id, now, outcome=outcome))
    return "settled"


def _amount_differs(answer_amount: object, expected_minor: int) -> bool:
    from moneyed import Money
    return isinstance(answer_amount, Money) and ledger.to_minor(answer_amount) != expected_minor


async def _settle_attempt(engine: AsyncEngine, inquiry: Inquiry, answer: PaymentStatus,
                          now: dt.datetime, max_tries: int, unseen: bool) -> str:
    async with engine.connect() as conn:
        attempt = await find_attempt(conn, inquiry.subject_id)
        intent = await load_intent(conn, attempt.intent_id) if attempt else None
    if attempt is None or intent is None or attempt.status not in (
            AttemptState.CREATED, AttemptState.PENDING, AttemptState.UNKNOWN,
            AttemptState.AUTHORIZED):
        return await _close(engine, inquiry, now, answer.outcome.value)
    outcome = answer.outcome
    if outcome is BankOutcome.SUCCEEDED:
        if _amount_differs(answer.amount, attempt.amount_minor):
            why = f"the bank's inquiry answer states {answer.amount}, not {attempt.amount}"
            await ledger.transact(engine, lambda conn: settlement.attempt_to_review(
                conn, attempt.id, why, now))
            return "to_review"
        review = answer.review

        async def succeed(conn: AsyncConnection) -> None:
            await settlement.settle_attempt(conn, attempt.id, BankOutcome.SUCCEEDED,
                                            bank_txn_id=answer.bank_txn_id, now=now,
                                            source="inquiry")
            if review:
                await settlement.flag_attempt(conn, attempt.id, review, now)
        await ledger.transact(engine, succeed)
        return "settled"
    if outcome is BankOutcome.FAILED:
        await ledger.transact(engine, lambda conn: settlement.fail_attempt(
            conn, attempt.id, "the bank's inquiry: failed", expired=now >= intent.expires_at,
            now=now))
        return "settled"
    in_flight = attempt.status in (AttemptState.UNKNOWN, AttemptState.CREATED)
    if outcome is BankOutcome.NOT_FOUND and (
            unseen if in_flight else now >= intent.expires_at):
        # the bank never had this order: nothing was debited. A created (or unknown) one
        # only once its call has had UNSEEN_AFTER of real time, whatever the look-ahead
        # `now` and the intent's expiry: before that it may be on its way (a catch-up pass
        # between the commit and the send failed it, and the order the bank then opened
        # could not be recorded)
        await ledger.transact(engine, lambda conn: settlement.fail_attempt(
            conn, attempt.id, "the bank does not know the order",
            expired=now >= intent.expires_at, now=now))
        return "settled"
    return await _postpone(engine, inquiry, outcome.value, now, max_tries)


async def _settle_refund(engine: AsyncEngine, inquiry: Inquiry, answer: RefundStatus,
                         now: dt.datetime, max_tries: int, unseen: bool) -> str:
    async with engine.connect() as conn:
        refund = await find_refund(conn, inquiry.subject_id)
    if refund is None or refund.status not in (RefundState.REQUESTED, RefundState.PENDING,
                                               RefundState.UNKNOWN):
        return await _close(engine, inquiry, now, answer.outcome.value)
    outcome = answer.outcome
    if outcome is BankOutcome.SUCCEEDED and _amount_differs(answer.amount, refund.amount_minor):
        why = f"the bank's inquiry answer states refund {answer.amount}, not {refund.amount}"
        await ledger.transact(engine, lambda conn: settlement.refund_to_review(
            conn, refund.id, why, now))
        return "to_review"
    if outcome is BankOutcome.NOT_FOUND and refund.status is not RefundState.PENDING:
        if not unseen:
            # maybe still on its way through the bank: ask again, the reservation kept
            return await _postpone(engine, inquiry, outcome.value, now, max_tries)
        outcome = BankOutcome.FAILED  # never reached the bank: release the reservation
    if outcome in (BankOutcome.SUCCEEDED, BankOutcome.FAILED):
        final = outcome

        async def settle(conn: AsyncConnection) -> None:
            await settlement.settle_refund(
                conn, refund.id, final, bank_txn_id=answer.bank_txn_id, now=now,
                source="inquiry", reason="the bank's inquiry: failed or unknown to the bank")
            if final is BankOutcome.SUCCEEDED and answer.review:
                await settlement.flag_refund(conn, refund.id, answer.review, now)
        await ledger.transact(engine, settle)
        return "settled"
    if refund.status is RefundState.UNKNOWN:
        await ledger.transact(engine, lambda conn: settlement.settle_refund(
            conn, refund.id, outcome, bank_txn_id=answer.bank_txn_id, now=now))
    return await _postpone(engine, inquiry, outcome.value, now, max_tries)


async def _settle_payout(engine: AsyncEngine, inquiry: Inquiry, answer: PayoutStatus,
                         now: dt.datetime, max_tries: int, unseen: bool) -> str:
    async with engine.connect() as conn:
        payout = await find_payout(conn, inquiry.subject_id)
    if payout is None or payout.status not in (PayoutState.SUBMITTED, PayoutState.UNKNOWN):
        return await _close(engine, inquiry, now, answer.outcome.value)
    outcome = answer.outcome
    if outcome is BankOutcome.RETURNED:
        # paid and already sent back before we heard it was paid: nothing is booked, a
        # person finds out what happened to the money (gateways.payout_returns)
        await ledger.transact(engine, lambda conn: payout_returns.book_payout_return(
            conn, payout.id, bank=inquiry.bank, bank_return_id=answer.return_id,
            amount_minor=None, currency=None, reason=answer.return_reason or "",
            source="inquiry", now=now))
        return "to_review"
    if outcome is BankOutcome.SUCCEEDED and _amount_differs(answer.amount, payout.amount_minor):
        why = f"the bank's inquiry answer states payout {answer.amount}, not {payout.amount}"

        async def review(conn: AsyncConnection) -> None:
            await transition(conn, payout.id, payout.status, PayoutState.REVIEW, now=now,
                             failure_reason=why)
            await inquiries.close(conn, Subject.PAYOUT, payout.id, now, status="review")
        await ledger.transact(engine, review)
        return "to_review"
    if outcome is BankOutcome.NOT_FOUND:
        if not unseen:
            # maybe still on its way through the bank: ask again, the reservation kept
            return await _postpone(engine, inquiry, outcome.value, now, max_tries)
        outcome = BankOutcome.FAILED  # never reached the bank: release the reservation
    if outcome in (BankOutcome.SUCCEEDED, BankOutcome.FAILED):
        final = outcome
        await ledger.transact(engine, lambda conn: payouts.settle_payout(
            conn, payout.id, final, bank_txn_id=answer.bank_txn_id, now=now,
            reason="the bank's inquiry: failed or unknown to the bank", review=answer.review))
        return "settled"
    if payout.status is PayoutState.UNKNOWN:
        await ledger.transact(engine, lambda conn: payouts.settle_payout(
            conn, payout.id, BankOutcome.PROCESSING, now=now))
    return await _postpone(engine, inquiry, outcome.value, now, max_tries)
