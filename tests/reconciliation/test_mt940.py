from __future__ import annotations

import datetime as dt

import pytest
from moneyed import Money

from reconciliation import UnreadableStatement, parse_statement
from tests.reconciliation.conftest import fixture_bytes


def test_two_statements_in_one_file_each_with_their_lines() -> None:
    first, second = parse_statement(fixture_bytes("mt940_hsbc_two_days.sta"))
    assert first.source_format == "mt940"
    assert first.statement_id == "STMT20261121/326/1"
    assert first.account == "HSBCHKHHXXX/004123456001"
    assert first.currency == "CNY"
    assert first.opening is not None and first.closing is not None
    assert first.opening.amount == Money("250000.00", "CNY")
    assert first.opening.date == dt.date(2026, 11, 20)
    assert first.closing.amount == Money("255787.50", "CNY")
    assert [line.amount for line in first.lines] == [
        Money("1500.00", "CNY"), Money("12312.50", "CNY"),
        Money("-8000.00", "CNY"), Money("-25.00", "CNY"),
    ]
    assert second.opening is not None and second.closing is not None
    assert second.opening.amount == first.closing.amount
    assert second.closing.amount == Money("255167.50", "CNY")
    assert len(second.lines) == 2


def test_field_86_structure_gives_references_and_counterparty() -> None:
    payment, settlement, payout, fee = parse_statement(fixture_bytes("mt940_hsbc_two_days.sta"))[0].lines
    assert payment.bank_reference == "HK2611210001"
    assert payment.customer_reference == "PI-2026-000731"
    assert payment.end_to_end_id == "PI-2026-000731"
    assert payment.counterparty_name == "Hangzhou Lianhua Trading"
    # wrapped at 65 characters in the middle of the account number
    assert payment.counterparty_account == "CN1234567890123456"
    assert payment.description == "Order 2026-11-0731"
    assert payment.transaction_code == "NTRF"
    # the batch settlement: value date after the booking date, details unwrapped
    assert settlement.value_date == dt.date(2026, 11, 22)
    assert settlement.booking_date == dt.date(2026, 11, 21)
    assert "42 ITEMS GROSS 12500,00 FEES 187,50" in settlement.description
    assert payout.counterparty_name == "Ningbo Harbour Textiles"
    assert payout.description == "Supplier settlement 2026-W47"
    assert fee.customer_reference is None  # NONREF
    assert type(fee.value_date) is dt.date  # not the library's own subclass


def test_a_reversal_of_a_credit_is_a_debit() -> None:
    _, returned = parse_statement(fixture_bytes("mt940_hsbc_two_days.sta"))[1].lines
    assert returned.reversal
    assert returned.amount == Money("-1500.00", "CNY")
    assert returned.description == "RETURN OF PI-2026-000731 BENEFICIARY ACCOUNT CLOSED"


def test_entry_counts_that_disagree_with_the_lines_are_refused() -> None:
    data = fixture_bytes("mt940_hsbc_two_days.sta").replace(b":90D:2CNY8025,00", b":90D:3CNY8025,00")
    with pytest.raises(UnreadableStatement, match=r"line 20 \(:90D:\).*counts 3 entries"):
        parse_statement(data)


def test_an_amount_finer_than_the_currency_is_refused() -> None:
    data = fixture_bytes("mt940_hsbc_two_days.sta").replace(b"C880,00", b"C880,005")
    with pytest.raises(UnreadableStatement, match=r"line 28 \(:61:\).*880.005 CNY"):
        parse_statement(data)
