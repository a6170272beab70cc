"""Building the journal entries lending posts: legs in minor units, zero legs left out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ledger import EntryRequest, Posting
from lending.config import LendingConfig
from lending.money import to_money
from lending.store import LoanRecord


def legs(currency: str, debits: Sequence[tuple[str, int]],
         credits: Sequence[tuple[str, int]]) -> list[Posting]:
    """Postings for (account, minor units) pairs, merging repeats of an account on one side
    and dropping zeros; the caller's order is kept (the waterfall order for credits)."""
    out: list[Posting] = []
    for side, pairs in (("debit", debits), ("credit", credits)):
        merged: dict[str, int] = {}
        for account, units in pairs:
            if units:
                merged[account] = merged.get(account, 0) + units
        for account, units in merged.items():
            money = to_money(units, currency)
            out.append(Posting(account, debit=money) if side == "debit"
                       else Posting(account, credit=money))
    return out


def entry(key: str, kind: str, on: dt.date, postings: list[Posting], description: str,
          record: LoanRecord, **meta: Any) -> EntryRequest:
    metadata: dict[str, Any] = {"loan_id": record.id, "borrower_id": record.loan.borrower_id,
                                "product": record.loan.product.code}
    metadata.update(meta)
    return EntryRequest(idempotency_key=key, kind=kind, postings=postings, effective_date=on,
                        description=description, metadata=metadata)


class Accounts:
    """The resolved account codes of one loan's product and borrower."""

    def __init__(self, record: LoanRecord, config: LendingConfig,
                 payable_override: str | None = None) -> None:
        gl, p, b = config.gl, record.loan.product.code, record.loan.borrower_id
        self.portfolio = gl.code("loan_portfolio", p, b)
        self.interest_receivable = gl.code("interest_receivable", p, b)
        self.fee_receivable = gl.code("fee_receivable", p, b)
        self.penalty_receivable = gl.code("penalty_receivable", p, b)
        self.interest_income = gl.code("interest_income", p, b)
        self.fee_income = gl.code("fee_income", p, b)
        self.penalty_income = gl.code("penalty_income", p, b)
        self.recovery_income = gl.code("recovery_income", p, b)
        self.losses = gl.code("losses_written_off", p, b)
        self.overpayment = gl.code("overpayment_liability", p, b)
        self.payable = payable_override or gl.code("supplier_payable", p, b)
        self.repayment_clearing = gl.code("repayment_clearing", p, b)


def by_account(postings: Sequence[Posting]) -> Mapping[str, int]:
    """Signed minor units per account code (debit > 0), for tests and reports."""
    from lending.money import from_money

    out: dict[str, int] = {}
    for p in postings:
        money = p.debit if p.debit is not None else p.credit
        assert money is not None
        units = from_money(money)
        out[str(p.account)] = out.get(str(p.account), 0) + (units if p.debit is not None else -units)
    return out
