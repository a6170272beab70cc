"""Exposure against the credit line, checked where money is committed.

What a borrower may still draw is always `line - exposure` (`lending.creditline`), and it
is checked three times, each inside the transaction that commits the money and under the
borrower's row lock, so two processes cannot each see the same room and together exceed
the line:

* at application (the automatic decision; an approved loan is then reserved);
* at a risk officer's approval of a queued application;
* at disbursement, against the line as it stands that day (receivables may have been
  settled or refunded since approval) less everyone else's exposure.

Lock order, everywhere: the borrower row, then loan rows, then (inside `ledger.post`) the
ledger's balance rows. On SQLite every writer holds the database (`BEGIN IMMEDIATE`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncConnection

from lending.borrowers import Borrower, borrower_data, get_borrower
from lending.catalogue import product_for_new_loan
from lending.config import LendingConfig
from lending.creditline import CreditLine, credit_line
from lending.errors import CreditLineExceeded
from lending.lifecycle import LoanStatus
from lending.money import format_minor
from lending.products import LoanProduct
from lending.store import LoanRecord

__all__ = ["check_drawable", "line_for", "lock_borrower"]


async def lock_borrower(conn: AsyncConnection, borrower_id: str) -> Borrower:
    """Take the borrower's row lock for the rest of the transaction (PostgreSQL: SELECT
    ... FOR UPDATE; SQLite: the writer already holds the database)."""
    return await get_borrower(conn, borrower_id, for_update=True)


async def line_for(conn: AsyncConnection, borrower_id: str, product_code: str, on: dt.date,
                   config: LendingConfig, *, product: LoanProduct | None = None) -> CreditLine:
    """The credit line from the borrower's data as it stands now, less their exposure
    (`product`: the version a loan was booked under; else the one new loans get on `on`)."""
    if product is None:
        product = await product_for_new_loan(conn, product_code, on, config)
    data = await borrower_data(conn, borrower_id, on, config)
    return credit_line(data, config.underwriting.line, product.max_amount_minor)


async def check_drawable(conn: AsyncConnection, record: LoanRecord, on: dt.date,
                         config: LendingConfig) -> CreditLine:
    """Refuse (`CreditLineExceeded`) to commit `record`'s principal unless it fits the line
    in force on `on` less every other exposure of the borrower. The caller holds the
    borrower's lock. An approved loan is already counted in the exposure (reserved), so
    its own amount is taken out before comparing."""
    line = await line_for(conn, record.loan.borrower_id, record.loan.product.code, on, config,
                          product=record.loan.product)
    own = record.loan.amount_minor if record.status is LoanStatus.APPROVED else 0
    room = line.limit_minor - (line.outstanding_minor - own)
    if record.loan.amount_minor > room:
        cur = record.currency
        raise CreditLineExceeded(format_minor(record.loan.amount_minor, cur),
                                 format_minor(max(0, room), cur))
    return line
