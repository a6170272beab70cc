"""Checks the composing application runs before any supplier payout is recorded.

gateways pays a supplier's payable out; what else that money may be owed to is known only
above it. paycore registers here (paycore.payout_controls, loaded by every path that pays
out) that a loan disbursement which came back is unwound before the borrower's payable is
paid out again — its proceeds are the lender's, not the supplier's. gateways cannot
import lending, so the rule comes in as a callback.

The same composition unwinds such a disbursement the moment its return is booked
(`after_payout_returned`: run by `book_payout_return`, whether the bank's notification or
the status inquiry reported it, in that transaction), so its proceeds never sit on the
payable at all; the check before a payout covers whatever that could not unwind.

A check runs first thing in `request_supplier_payout`, in the caller's transaction; it may
write (the unwind's entries join the payout's transaction) and refuses with
`PayoutBlocked` (a reason a person can act on) when money on the payable may not leave.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from gateways.errors import PaymentError
from gateways.types import Payout

__all__ = ["PayoutBlocked", "PayoutCheck", "ReturnHook", "after_payout_returned",
           "before_supplier_payout", "run_payout_checks", "run_return_hooks"]

#: (conn, supplier id) -> None, or raises PayoutBlocked
PayoutCheck = Callable[[AsyncConnection, str], Awaitable[None]]

#: (conn, the payout as returned) -> None; must not raise for the return to stand
ReturnHook = Callable[[AsyncConnection, Payout], Awaitable[None]]

_checks: list[PayoutCheck] = []
_return_hooks: list[ReturnHook] = []


class PayoutBlocked(PaymentError):
    """The supplier's payable holds money that may not be paid out yet (a returned loan
    disbursement a person has to settle first); nothing was written."""

    code = "payout-blocked"


def before_supplier_payout(check: PayoutCheck) -> PayoutCheck:
    """Register `check` to run before every supplier payout (once, however often the
    registering module is loaded)."""
    if check not in _checks:
        _checks.append(check)
    return check


async def run_payout_checks(conn: AsyncConnection, supplier_id: str) -> None:
    for check in tuple(_checks):
        await check(conn, supplier_id)


def after_payout_returned(hook: ReturnHook) -> ReturnHook:
    """Register `hook` to run after every booked payout return, in its transaction."""
    if hook not in _return_hooks:
        _return_hooks.append(hook)
    return hook


async def run_return_hooks(conn: AsyncConnection, payout: Payout) -> None:
    for hook in tuple(_return_hooks):
        await hook(conn, payout)
