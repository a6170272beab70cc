"""The journal entries reconciliation posts once a statement proves a movement.

For lines L and the book items P they explain:
  Dr/Cr the bank account          sum(L) - sum(P on the bank account itself)
  reverse each clearing item      -P (Cr 1102 for a capture, Dr 1103 for a payout, ...)
  Dr the fee account              what the bank kept (gross - net)
  Dr/Cr the differences account   a tolerated difference
which balances because fee + difference = sum(P) - sum(L).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import ledger
from reconciliation.config import BankAccount
from reconciliation.items import Item

SETTLEMENT = "recon.settlement"
ADJUSTMENT = "recon.adjustment"
WRITE_OFF = "recon.write_off"


def legs_for(bank: BankAccount, line_total: int, items: Iterable[Item], *, fee: int = 0,
             difference: int = 0) -> dict[str, int]:
    """Signed minor units per account code (debit > 0), zero legs dropped."""
    config = bank.config
    codes = {bank.bank_ledger_id: config.bank_ledger_account,
             bank.clearing_id: config.clearing_account,
             bank.payout_clearing_id: config.payout_clearing_account}
    legs: dict[str, int] = defaultdict(int)
    legs[config.bank_ledger_account] += line_total
    for item in items:
        legs[codes[item.account_id]] -= item.amount
    legs[config.fee_account] += fee
    legs[config.differences_account] += difference
    return {code: amount for code, amount in legs.items() if amount}


def entry_request(bank: BankAccount, key: str, kind: str, day: dt.date, legs: Mapping[str, int],
                  description: str, metadata: Mapping[str, Any],
                  external_ref: str | None = None) -> ledger.EntryRequest | None:
    """None when the legs cancel out (the items were on the bank account itself)."""
    if not legs:
        return None
    assert sum(legs.values()) == 0, legs
    postings = []
    for code, amount in sorted(legs.items()):
        money = ledger.from_minor(abs(amount), bank.currency)
        postings.append(ledger.Posting(code, debit=money) if amount > 0
                        else ledger.Posting(code, credit=money))
    return ledger.EntryRequest(idempotency_key=key, kind=kind, postings=postings,
                               effective_date=day, description=description[:500],
                               external_ref=external_ref, metadata=dict(metadata))
