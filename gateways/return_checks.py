"""Asking the banks whether succeeded payouts came back (退票), for banks (or days) whose
notifications cannot be relied on: `check_payout_returns` asks each bank about its
payouts that succeeded within `within` (or those named) and books a return it reports
(`gateways.payout_returns`: once; another amount, to review).

Run it daily (`paycore payments check-returns`), or for one payout when the statement
shows money coming back. Bank I/O happens outside any transaction; each return is booked
in a transaction of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from gateways import calls
from gateways.bank import BankCall, BankError, BankGateway, BankOutcome, PayoutStatus
from gateways.inquiries import Subject
from gateways.payout_returns import (
    ReturnApplied,
    ReturnCheck,
    book_payout_return,
    returnable_payouts,
)
from gateways.routing import BankDirectory
from gateways.schema import payouts
from gateways.store import utcnow

__all__ = ["RETURN_WINDOW", "check_payout_returns"]

log = structlog.get_logger("gateways.return_checks")

#: how long after a payout succeeded its bank is asked whether it came back
RETURN_WINDOW = dt.timedelta(days=7)


async def check_payout_returns(engine: AsyncEngine, banks: BankDirectory, *,
                               payout_ids: Sequence[str] | None = None,
                               within: dt.timedelta = RETURN_WINDOW,
                               now: dt.datetime | None = None,
                               limit: int = 500) -> ReturnCheck:
    """Ask the banks about succeeded payouts; book the returns they report."""
    now = now or utcnow()
    report = ReturnCheck()
    async with engine.connect() as conn:
        found = await returnable_payouts(conn, since=now - within, payout_ids=payout_ids,
                                         limit=limit)
    for payout_id, bank in found:
        if bank not in banks:
            report.errors.append(f"{payout_id}: bank {bank} is not configured")
            continue
        async with engine.connect() as conn:
            call = await calls.latest_call(conn, Subject.PAYOUT, payout_id, bank)
            if call is None:
                created = (await conn.execute(sa.select(payouts.c.created_at).where(
                    payouts.c.id == payout_id))).scalar()
                call = BankCall(reference=payout_id, placed_at=created or now)
        report.asked += 1

        async def ask(gateway: BankGateway, c: BankCall = call) -> PayoutStatus:
            return await gateway.query_payout(c)
        try:
            answer = await banks.call(bank, ask, moves_money=False)
        except BankError as exc:
            report.errors.append(f"{payout_id}: {exc}")
            log.warning("payout.return_check_failed", payout_id=payout_id, bank=bank,
                        error=str(exc))
            continue
        if answer.outcome is not BankOutcome.RETURNED:
            continue
        units = ledger.to_minor(answer.amount) if answer.amount is not None else None
        currency = answer.amount.currency.code if answer.amount is not None else None

        async def book(conn: AsyncConnection, p: str = payout_id, b: str = bank,
                       a: PayoutStatus = answer, u: int | None = units,
                       c: str | None = currency) -> ReturnApplied:
            return await book_payout_return(
                conn, p, bank=b, bank_return_id=a.return_id, amount_minor=u, currency=c,
                reason=a.return_reason or "", source="inquiry", now=now)
        applied = await ledger.transact(engine, book)
        if applied is ReturnApplied.BOOKED:
            report.booked.append(payout_id)
        elif applied is ReturnApplied.REVIEW:
            report.to_review.append(payout_id)
    log.info("payout.return_check", asked=report.asked, booked=len(report.booked),
             to_review=len(report.to_review), errors=len(report.errors))
    return report
