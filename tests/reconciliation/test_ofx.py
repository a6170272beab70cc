from __future__ import annotations

import datetime as dt

import pytest
from moneyed import Money

from reconciliation import UnreadableStatement, parse_statement
from tests.reconciliation.conftest import fixture_bytes


def test_ofx_lines_and_ledger_balance() -> None:
    [statement] = parse_statement(fixture_bytes("ofx_v1_chase_checking.ofx"))
    assert statement.source_format == "ofx"
    assert statement.account == "000000987654321"
    assert statement.currency == "USD"
    assert statement.statement_id == "000000987654321:20261121-20261121"
    assert statement.closing is not None and statement.opening is not None
    assert statement.closing.amount == Money("30125.50", "USD")
    assert statement.closing.date == dt.date(2026, 11, 21)
    # OFX states no opening balance: it is derived, and says so
    assert statement.opening.derived
    assert statement.opening.amount == Money("25000.00", "USD")
    assert [line.amount for line in statement.lines] == [
        Money("4280.00", "USD"), Money("1250.50", "USD"),
        Money("-390.00", "USD"), Money("-15.00", "USD"),
    ]
    payout, deposit, check, fee = statement.lines
    assert payout.bank_reference == "202611210001"
    assert payout.description == "ST-X9K2 PAYOUT 57 CHARGES NET OF FEES"
    assert deposit.customer_reference == "PI-2026-001031"
    assert deposit.counterparty_name == "HALCYON OUTFITTERS LLC"
    assert deposit.value_date == dt.date(2026, 11, 22)
    assert check.customer_reference == "104513"
    assert fee.transaction_code == "SRVCHG"


def test_dates_are_read_as_written_not_converted_to_utc() -> None:
    # converted to UTC, 00:30 in Beijing would be 16:30 the day before
    data = fixture_bytes("ofx_v1_chase_checking.ofx").replace(
        b"<DTPOSTED>20261121120000.000[-5:EST]", b"<DTPOSTED>20261122003000.000[+8:CST]"
    )
    [statement] = parse_statement(data)
    assert statement.lines[1].booking_date == dt.date(2026, 11, 22)


def test_an_amount_finer_than_the_currency_is_refused() -> None:
    data = fixture_bytes("ofx_v1_chase_checking.ofx").replace(b"1250.50", b"1250.505")
    with pytest.raises(UnreadableStatement, match=r"STMTTRN\[2\]/TRNAMT"):
        parse_statement(data)
