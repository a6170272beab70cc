from __future__ import annotations

import datetime as dt

import pytest
from moneyed import Money

from reconciliation import UnreadableStatement, parse_statement
from tests.reconciliation.conftest import fixture_bytes


def test_one_statement_per_account_with_minor_unit_amounts() -> None:
    operating, fees = parse_statement(fixture_bytes("bai2_boa_prior_day.bai"))
    assert operating.source_format == "bai2"
    assert operating.account == "4455667788"
    assert operating.statement_id == "20261122001/4455667788/2026-11-21"
    assert operating.currency == "USD"
    assert operating.opening is not None and operating.closing is not None
    assert operating.opening.amount == Money("125000.00", "USD")
    assert operating.closing.amount == Money("134710.65", "USD")
    assert operating.closing.date == dt.date(2026, 11, 21)
    # the 890 information record moves no money and is not a line
    assert [line.amount for line in operating.lines] == [
        Money("12500.00", "USD"), Money("21110.65", "USD"),
        Money("-3900.00", "USD"), Money("-20000.00", "USD"),
    ]
    assert len(fees.lines) == 1 and fees.lines[0].amount == Money("-50.00", "USD")


def test_detail_records_with_continuations() -> None:
    ach, settlement, check, wire = parse_statement(fixture_bytes("bai2_boa_prior_day.bai"))[0].lines
    assert ach.bank_reference == "BOA2611210001"
    assert ach.customer_reference == "PI-2026-001022"
    assert ach.description == "ACH CREDIT RECEIVED HALCYON OUTFITTERS LLC ORDER 1022"
    assert ach.transaction_code == "165"
    # funds type V: value-dated the next day
    assert settlement.value_date == dt.date(2026, 11, 22)
    assert settlement.booking_date == dt.date(2026, 11, 21)
    assert "118 ITEMS GROSS 21,440.00 FEES 329.35" in settlement.description
    assert check.customer_reference == "000000104512"
    assert wire.description.endswith("SHENZHEN BAIYUN ELECTRONICS CO LTD")


def test_a_control_total_that_does_not_match_is_refused() -> None:
    data = fixture_bytes("bai2_boa_prior_day.bai").replace(b"16,475,390000", b"16,475,390001")
    with pytest.raises(UnreadableStatement, match="account control total"):
        parse_statement(data)


def test_a_record_out_of_place_names_its_line() -> None:
    data = fixture_bytes("bai2_boa_prior_day.bai").replace(b"49,1000000,3/\n", b"")
    with pytest.raises(UnreadableStatement) as caught:
        parse_statement(data)
    assert caught.value.where == "line 16"
    assert "group trailer (98) cannot follow transaction detail" in caught.value.reason
