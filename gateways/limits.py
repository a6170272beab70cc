"""What a bank can take: the currencies its account settles in and the width of its amount
field. Checked before anything is written, so an amount no bank of the request can carry
is refused as the request's fault (`AmountNotSupported`, an `InvalidPaymentRequest`)
instead of leaving an intent, attempt or payout behind that can never be sent.

An adapter declares its `limits` (a `BankLimits`); one that declares none is taken to
accept anything, and its own refusal stays the guard.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from moneyed import Money

import ledger
from gateways.errors import InvalidPaymentRequest

if TYPE_CHECKING:  # the adapters import this module; the directory imports the adapters' kin
    from gateways.bank import BankGateway
    from gateways.routing import BankDirectory

__all__ = ["AmountNotSupported", "BankLimits", "check_amount", "limits_of", "taking"]


@dataclass(frozen=True)
class BankLimits:
    #: ISO 4217 codes the bank's account with us settles in
    currencies: frozenset[str]
    #: the most digits of whole minor units its amount field carries (UnionPay txnAmt: 12)
    max_amount_digits: int

    def refusal(self, amount: Money) -> str | None:
        """Why the bank cannot take `amount`, or None when it can."""
        code = amount.currency.code
        if code not in self.currencies:
            return f"takes {', '.join(sorted(self.currencies))} only, not {code}"
        units = ledger.to_minor(amount)
        if len(str(abs(units))) > self.max_amount_digits:
            return (f"carries at most {self.max_amount_digits} digits of minor units; "
                    f"{amount.amount} {code} has {len(str(abs(units)))}")
        return None


class AmountNotSupported(InvalidPaymentRequest):
    """No bank the request may use can take this amount in this currency."""

    code = "amount-not-supported"

    def __init__(self, amount: Money, refusals: dict[str, str]) -> None:
        self.currency = amount.currency.code
        self.refusals = refusals
        why = "; ".join(f"{bank} {reason}" for bank, reason in refusals.items())
        super().__init__(f"{amount.amount} {amount.currency.code} cannot be sent: {why}")


def limits_of(bank: BankGateway) -> BankLimits | None:
    limits = getattr(bank, "limits", None)
    return limits if isinstance(limits, BankLimits) else None


def _refusal(banks: BankDirectory, code: str, amount: Money) -> str | None:
    limits = limits_of(banks.get(code))
    return None if limits is None else limits.refusal(amount)


def check_amount(banks: BankDirectory, code: str, amount: Money) -> None:
    """Raise `AmountNotSupported` unless bank `code` can take `amount` (`UnknownBank` for a
    bank not configured)."""
    why = _refusal(banks, code, amount)
    if why is not None:
        raise AmountNotSupported(amount, {code: why})


def taking(banks: BankDirectory, codes: Iterable[str], amount: Money) -> list[str]:
    """Those of `codes` (configured ones, in order) that can take `amount`; raises
    `AmountNotSupported` when none can (a payout's failover order)."""
    refusals: dict[str, str] = {}
    fit: list[str] = []
    for code in codes:
        if code not in banks:
            continue
        why = _refusal(banks, code, amount)
        if why is None:
            fit.append(code)
        else:
            refusals[code] = why
    if not fit and refusals:
        raise AmountNotSupported(amount, refusals)
    return fit
