"""Receivables that size a credit line: money the marketplace owes a borrower for goods
sold and has not yet settled — never loan proceeds or other lending postings.

A supplier payable is one account that holds money of two origins: what checkout credited
for goods sold (`payment.capture`, less `payment.refund`), and everything else — a loan
disbursed to the marketplace balance, an overpayment returned, a correction. Money is
fungible, so which money a later debit (a payout, a settlement offset) took is a rule,
and this is it, read from the ledger posting by posting in the account's sequence order:

* a capture credits the goods part, a refund debits it (their reversals the other way);
  a refund larger than the goods part takes the rest from the other money;
* any other credit (loan proceeds above all) adds to the other money;
* any other debit takes the other money first, then the goods part.

So loan proceeds never count as receivables, and paying a loan's proceeds out does not
eat into the sales behind the line. Finally the goods part is capped at the *available*
balance: a payout or refund on hold is money already on its way out.

The two parts always add up to the payable's posted balance (the payable may not go into
debit), which a test checks against `ledger.balance`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

import ledger

__all__ = ["GOODS_KINDS", "PayableOrigins", "payable_origins"]

#: journal entry kinds whose postings on a supplier payable are money owed for goods sold
GOODS_KINDS = frozenset({
    "payment.capture", "payment.capture.reversal", "payment.refund", "payment.refund.reversal",
})

_PAGE = 10_000


@dataclass(frozen=True)
class PayableOrigins:
    """A supplier payable's balance split by where the money came from (minor units)."""

    #: owed for goods sold, not yet settled, on the posted balance
    goods_minor: int
    #: loan proceeds and everything else not from checkout
    other_minor: int
    #: the available balance (posted, less payouts and refunds on hold)
    available_minor: int

    @property
    def unsettled_receivables_minor(self) -> int:
        """What a credit line may count: goods money still available to settle."""
        return max(0, min(self.goods_minor, self.available_minor))


async def payable_origins(conn: AsyncConnection, payable_account: str) -> PayableOrigins:
    """Replay the payable's postings (see the module docstring); an account not opened yet
    owes nothing."""
    account = await ledger.find_account(conn, payable_account)
    if account is None:
        return PayableOrigins(0, 0, 0)
    goods = other = 0
    after = 0
    while True:
        page = await ledger.postings_after(conn, account.id, after, limit=_PAGE)
        for p in page:
            credit = -p.amount  # a liability: credits raise what is owed
            if p.kind in GOODS_KINDS:
                goods += credit
                if goods < 0:  # refunded beyond the goods on the balance
                    other, goods = other + goods, 0
            elif credit >= 0:
                other += credit
            else:
                taken = min(other, -credit)
                other -= taken
                goods -= -credit - taken
        if len(page) < _PAGE:
            break
        after = page[-1].account_seq
    balance = await ledger.balance(conn, account.code)
    return PayableOrigins(goods, other, ledger.to_minor(balance.available))
