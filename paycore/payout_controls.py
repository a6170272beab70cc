"""Payout controls' settings, from the environment, and installing the account key ring.

    PAYCORE_ACCOUNT_KEYS                 "k2:<base64 32 bytes>,k1:<base64>" — newest first;
                                         the newest encrypts account numbers, all decrypt
    PAYCORE_PAYOUT_COOLING_OFF_HOURS     a changed/verified account receives nothing for
                                         this long (default 24)
    PAYCORE_PAYOUT_APPROVAL_ABOVE        "CNY:10000.00,USD:1500.00": the largest automatic
                                         (settlement) payout per currency needing no second
                                         person; other currencies always need one. Manual
                                         payouts (API, CLI) always need one.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from moneyed import Money

import gateways
import ledger
from paycore.disbursement import install_payout_hooks

DEFAULT_APPROVAL_ABOVE = "CNY:10000.00,USD:1500.00,EUR:1500.00,HKD:10000.00"
DEFAULT_COOLING_OFF_HOURS = "24"
#: beyond any sensible hold, and far inside what a timedelta can carry
MAX_COOLING_OFF_HOURS = 87_600


class PayoutSettingsError(gateways.InvalidPaymentRequest):
    code = "payout-settings"


def parse_thresholds(spec: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        currency, _, amount = part.partition(":")
        try:
            found[currency.upper()] = ledger.to_minor(Money(Decimal(amount), currency.upper()))
        except (InvalidOperation, ValueError, LookupError, ledger.LedgerError):
            raise PayoutSettingsError(f"PAYCORE_PAYOUT_APPROVAL_ABOVE: {part!r} is not "
                                      "CURRENCY:amount (e.g. CNY:10000.00)") from None
    return found


def controls_from_env(env: Mapping[str, str] | None = None) -> gateways.PayoutControls:
    env = os.environ if env is None else env
    try:
        hours = Decimal(env.get("PAYCORE_PAYOUT_COOLING_OFF_HOURS", DEFAULT_COOLING_OFF_HOURS))
    except InvalidOperation:
        raise PayoutSettingsError("PAYCORE_PAYOUT_COOLING_OFF_HOURS must be a number of "
                                  "hours") from None
    # NaN and infinity are Decimals too: compared or converted they raise bare
    # InvalidOperation/OverflowError (a 500 on every payout route), not this error
    if not hours.is_finite():
        raise PayoutSettingsError("PAYCORE_PAYOUT_COOLING_OFF_HOURS must be a number of "
                                  "hours")
    if hours < 0:
        raise PayoutSettingsError("PAYCORE_PAYOUT_COOLING_OFF_HOURS must not be negative")
    if hours > MAX_COOLING_OFF_HOURS:
        raise PayoutSettingsError(f"PAYCORE_PAYOUT_COOLING_OFF_HOURS must be at most "
                                  f"{MAX_COOLING_OFF_HOURS} (ten years)")
    return gateways.PayoutControls(
        cooling_off=dt.timedelta(seconds=int(hours * 3600)),
        approval_above=parse_thresholds(env.get("PAYCORE_PAYOUT_APPROVAL_ABOVE",
                                                DEFAULT_APPROVAL_ABOVE)))


def install_account_keys(env: Mapping[str, str] | None = None) -> bool:
    """Install the key ring from PAYCORE_ACCOUNT_KEYS, if set; True if installed. Without
    it the register refuses to store or read numbers (`AccountKeysMissing`)."""
    env = os.environ if env is None else env
    spec = env.get("PAYCORE_ACCOUNT_KEYS", "")
    if not spec:
        return False
    gateways.use_account_keys(gateways.AccountKeys.from_spec(spec))
    return True


# a returned loan disbursement is unwound as its return is booked, and before its
# supplier's payable pays out again: every path that pays out loads this module
install_payout_hooks()
