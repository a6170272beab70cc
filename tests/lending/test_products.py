from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from lending import (
    MERCHANT_MICRO_LOAN,
    PRODUCTS,
    SUPPLY_CHAIN_LOAN,
    AmountOutOfRange,
    Bucket,
    DayCount,
    DpdBucket,
    ExtensionPolicy,
    Fee,
    InvalidProduct,
    RoundingMode,
    TermOutOfRange,
)


def test_supply_chain_loan_is_the_issues_product() -> None:
    p = SUPPLY_CHAIN_LOAN
    assert (p.min_term_days, p.max_term_days) == (15, 90)
    assert p.annual_rate == Decimal("0.10")
    assert p.day_count is DayCount.ACT_365
    assert p.rounding is RoundingMode.HALF_EVEN
    assert (p.extension.max_extensions, p.extension.days) == (1, 30)
    assert p.interest_for(1_000_000, 30) == 8219
    assert p.extension_fee_for(1_000_000) == 1_000  # 0.1 % of 10,000.00


def test_merchant_micro_loan_is_smaller_and_charges_an_origination_fee() -> None:
    p = MERCHANT_MICRO_LOAN
    assert p.max_amount_minor < SUPPLY_CHAIN_LOAN.max_amount_minor
    assert p.interest_for(1_000_000, 30) == 10_000  # 12 % ACT/360: 100.00
    assert p.origination_fee_for(1_000_000) == 5_000   # 0.5 %
    assert p.origination_fee_for(50_000) == 500        # the minimum, 5.00
    assert p.origination_fee_for(5_000_000) == 10_000  # the maximum, 100.00
    assert set(PRODUCTS) == {"supply_chain", "merchant_micro"}


@pytest.mark.parametrize("term", [15, 30, 90])
def test_terms_in_range(term: int) -> None:
    assert SUPPLY_CHAIN_LOAN.check_term(term) == term


@pytest.mark.parametrize("term", [0, 14, 91, 120])
def test_terms_out_of_range(term: int) -> None:
    with pytest.raises(TermOutOfRange, match="15 to 90 days"):
        SUPPLY_CHAIN_LOAN.check_term(term)


def test_amount_out_of_range_names_the_limits_in_money() -> None:
    with pytest.raises(AmountOutOfRange, match=r"9,999.99 CNY .* 10,000.00 CNY to 5,000,000.00"):
        SUPPLY_CHAIN_LOAN.check_amount(999_999)


@pytest.mark.parametrize(("dpd", "label"), [(0, None), (1, "1-15"), (15, "1-15"), (16, "16-30"),
                                           (30, "16-30"), (31, "31-60"), (61, "61+"),
                                           (400, "61+")])
def test_dpd_buckets(dpd: int, label: str | None) -> None:
    bucket = SUPPLY_CHAIN_LOAN.dpd_bucket(dpd)
    assert (bucket.label if bucket else None) == label


@pytest.mark.parametrize(("changes", "message"), [
    ({"min_amount_minor": 10**10}, "minimum amount"),
    ({"min_term_days": 100}, "minimum term"),
    ({"min_term_days": 0}, "positive"),
    ({"annual_rate": 0.1}, "Decimal"),
    ({"annual_rate": Decimal("-0.01")}, "zero or more"),
    ({"penalty_annual_rate": Decimal("NaN")}, "finite"),
    ({"currency": "XXY"}, "ISO 4217"),
    ({"currency": "cny"}, "upper case"),
    ({"day_count": "ACT/ACT"}, "day count"),
    ({"rounding": "ROUND_SOMETIMES"}, "rounding"),
    ({"non_performing_after_days": 0}, "positive"),
    ({"code": ""}, "code"),
    ({"waterfall": (Bucket.DUE_INTEREST, Bucket.DUE_INTEREST)}, "more than once"),
    ({"dpd_buckets": (DpdBucket("1-15", 1, 15), DpdBucket("20+", 20, None))}, "contiguous"),
    ({"dpd_buckets": (DpdBucket("1-15", 1, 15),)}, "open-ended"),
    ({"dpd_buckets": (DpdBucket("1+", 1, None), DpdBucket("x", 2, None))}, "only the last"),
    ({"dpd_buckets": ()}, "at least one"),
])
def test_bad_configuration_is_refused_when_built(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidProduct, match=message):
        dataclasses.replace(SUPPLY_CHAIN_LOAN, **changes)  # type: ignore[arg-type]


def test_bad_fees_and_extension_policies_are_refused() -> None:
    with pytest.raises(InvalidProduct):
        Fee(minimum_minor=100, maximum_minor=50)
    with pytest.raises(InvalidProduct):
        Fee(rate=0.01)  # type: ignore[arg-type]
    with pytest.raises(InvalidProduct):
        ExtensionPolicy(days=0)
    with pytest.raises(InvalidProduct):
        ExtensionPolicy(max_extensions=-1)
