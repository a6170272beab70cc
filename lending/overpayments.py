"""Overpayments: money a borrower paid beyond what a loan owed, held in 2203, given back.

The excess of a repayment sits in the product's overpayment account (a liability to the
borrower) and on the loan row (`overpaid_minor`). It leaves in one of two ways, each a
move recorded in `lending_overpayment_moves` (who, when, how much, where to):

* **refund**: released to the borrower's supplier payable (Dr 2203, Cr 2202.payable), from
  where the composing workflow pays it out to their verified bank account by a supplier
  payout, in the same transaction (paycore.overpayments: the payout holds the money at
  once, so no settlement can use it meanwhile);
* **apply** to another of the borrower's loans: released to the payable the same way and
  taken from it as a repayment of that loan (source `offset`, the loan's waterfall
  deciding what it pays).

A move's id is its idempotency key: the same move again returns the first result.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from ledger import JournalEntry
from lending import store
from lending.config import LendingConfig, ensure_accounts
from lending.errors import InvalidAmount, InvalidInput
from lending.money import check_minor, format_minor, from_money
from lending.postings import entry, legs
from lending.schema import overpayment_moves
from lending.servicing import Repayment, _accounts, repay_loan
from lending.store import LoanRecord

__all__ = ["OverpaymentMove", "apply_overpayment", "overpayment_moves_of",
           "release_overpayment"]

log = structlog.get_logger("lending")


@dataclass(frozen=True)
class OverpaymentMove:
    move_id: str
    loan: LoanRecord
    kind: str
    amount_minor: int
    payable_account: str
    entry: JournalEntry
    target_loan_id: str | None = None
    payout_id: str | None = None
    repayment: Repayment | None = None
    replayed: bool = False


async def _existing(conn: AsyncConnection, move_id: str) -> Any:
    return (await conn.execute(sa.select(overpayment_moves)
                               .where(overpayment_moves.c.id == move_id))).first()


async def release_overpayment(conn: AsyncConnection, loan_id: str, amount: Money,
                              on: dt.date, config: LendingConfig, *, move_id: str, kind: str,
                              actor: str, target_loan_id: str | None = None,
                              payout_id: str | None = None) -> OverpaymentMove:
    """Move `amount` of the loan's overpayment to the borrower's payable (Dr 2203, Cr
    payable) and record the move; the caller pays it out or applies it, in the same
    transaction."""
    if kind not in ("refund", "apply"):
        raise InvalidInput(f"an overpayment is refunded or applied, not {kind!r}")
    if not move_id or not actor.strip():
        raise InvalidInput("moving an overpayment needs an id and the name of who moves it")
    row = await _existing(conn, move_id)
    record = await store.load(conn, loan_id, config, for_update=row is None)
    units = from_money(amount, record.currency)
    if row is not None:
        if (row.loan_id, row.kind, row.amount_minor, row.target_loan_id) != (
                loan_id, kind, units, target_loan_id):
            raise InvalidInput(f"overpayment move {move_id!r} was made with other details")
        [posted] = await ledger.load_entries(conn, [row.entry_id])
        acc = await _accounts(conn, record, config)
        return OverpaymentMove(move_id, record, kind, units, acc.payable,
                               dataclasses.replace(posted, replayed=True), row.target_loan_id,
                               row.payout_id, replayed=True)
    check_minor(units, "overpayment amount", positive=True)
    if units > record.overpaid_minor:
        raise InvalidAmount(
            f"loan {loan_id!r} holds {format_minor(record.overpaid_minor, record.currency)} "
            f"of overpayment; {format_minor(units, record.currency)} cannot be moved")
    await ensure_accounts(conn, config)
    acc = await _accounts(conn, record, config)
    where = (f"to the borrower's bank account (payout {payout_id})" if kind == "refund"
             else f"to loan {target_loan_id}")
    posted = await ledger.post(conn, entry(
        f"loan.overpayment.release:{move_id}", "loan.overpayment.release", on,
        legs(record.currency, [(acc.overpayment, units)], [(acc.payable, units)]),
        f"Overpayment of loan {loan_id} {where}", record, move_id=move_id, move=kind,
        actor=actor))
    after = dataclasses.replace(record, overpaid_minor=record.overpaid_minor - units)
    saved = await store.save(conn, record, after, entry_id=posted.id, actor=actor)
    await conn.execute(sa.insert(overpayment_moves).values(
        id=move_id, loan_id=loan_id, kind=kind, amount_minor=units, moved_on=on,
        target_loan_id=target_loan_id, payout_id=payout_id, entry_id=posted.id, actor=actor,
        recorded_at=store.utcnow()))
    log.info("loan.overpayment.released", loan_id=loan_id, kind=kind, amount_minor=units,
             move_id=move_id, actor=actor)
    return OverpaymentMove(move_id, saved, kind, units, acc.payable, posted, target_loan_id,
                           payout_id)


async def apply_overpayment(conn: AsyncConnection, loan_id: str, target_loan_id: str,
                            amount: Money, on: dt.date, config: LendingConfig, *,
                            move_id: str, actor: str) -> OverpaymentMove:
    """Apply `amount` of one loan's overpayment to another loan of the same borrower."""
    if target_loan_id == loan_id:
        raise InvalidInput("an overpayment is applied to another loan, not its own")
    source = await store.load(conn, loan_id, config)
    target = await store.load(conn, target_loan_id, config)
    if target.loan.borrower_id != source.loan.borrower_id:
        raise InvalidInput(f"loan {target_loan_id!r} is not {source.loan.borrower_id}'s: an "
                           "overpayment goes only to its borrower's own loans")
    if target.currency != source.currency:
        raise InvalidInput(f"loan {target_loan_id!r} is in {target.currency}, the "
                           f"overpayment in {source.currency}")
    move = await release_overpayment(conn, loan_id, amount, on, config, move_id=move_id,
                                     kind="apply", actor=actor, target_loan_id=target_loan_id)
    repayment = await repay_loan(conn, target_loan_id, amount, on, config,
                                 repayment_id=f"overpayment:{move_id}", source="offset")
    return dataclasses.replace(move, repayment=repayment)


async def overpayment_moves_of(conn: AsyncConnection, loan_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(sa.select(overpayment_moves)
                              .where(overpayment_moves.c.loan_id == loan_id)
                              .order_by(overpayment_moves.c.recorded_at))
    return [dict(r._mapping) for r in rows]
