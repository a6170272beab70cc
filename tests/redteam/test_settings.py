"""Red team (issue #15 review): a careless operator's payout settings. No storage."""

from __future__ import annotations

import pytest

from paycore.payout_controls import PayoutSettingsError, controls_from_env


@pytest.mark.parametrize("hours", ["NaN", "sNaN", "Infinity", "1e20"])
def test_a_cooling_off_that_is_no_number_of_hours_is_named(hours):
    """Was a finding (robustness), fixed: 'NaN' raised a bare decimal.InvalidOperation,
    'Infinity' and '1e20' an OverflowError, and the API reads the setting per request
    (controls_of): every payout and bank-account route answered 500."""
    with pytest.raises(PayoutSettingsError, match="PAYCORE_PAYOUT_COOLING_OFF_HOURS"):
        controls_from_env({"PAYCORE_PAYOUT_COOLING_OFF_HOURS": hours})


@pytest.mark.parametrize("hours", ["-1", "24h", ""])
def test_held_other_bad_cooling_offs_are_named(hours):
    with pytest.raises(PayoutSettingsError, match="PAYCORE_PAYOUT_COOLING_OFF_HOURS"):
        controls_from_env({"PAYCORE_PAYOUT_COOLING_OFF_HOURS": hours})
