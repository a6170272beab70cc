from __future__ import annotations

import datetime as dt

import pytest
from moneyed import Money

from reconciliation import CsvProfile, UnreadableStatement, parse_statement
from tests.reconciliation.conftest import fixture_bytes
from tests.reconciliation.profiles import CMB_SIGNED, SPARKASSE_DEBIT_CREDIT


def test_signed_amounts_with_a_running_balance() -> None:
    [statement] = parse_statement(fixture_bytes("csv_signed_amount_cmb.csv"), profile=CMB_SIGNED)
    assert statement.source_format == "csv"
    assert statement.account == "755912345610801"
    assert statement.currency == "CNY"
    assert statement.opening is not None and statement.closing is not None
    assert statement.opening.amount == Money("50000.00", "CNY")
    assert statement.closing.amount == Money("47213.40", "CNY")
    assert [line.amount for line in statement.lines] == [
        Money("3200.00", "CNY"), Money("14015.40", "CNY"),
        Money("-20000.00", "CNY"), Money("-2.00", "CNY"),
    ]
    payment, settlement, payout, fee = statement.lines
    assert payment.bank_reference == "CMB20261121000101"
    assert payment.end_to_end_id == "PI-2026-000951"
    assert payment.counterparty_account == "6214830100012345"
    assert settlement.value_date == dt.date(2026, 11, 22)
    assert "186 ITEMS NET OF FEES" in settlement.description
    assert payout.counterparty_name == "Dongguan Mingda Hardware Co., Ltd."
    assert fee.end_to_end_id is None


def test_debit_and_credit_columns_european_numbers_newest_first() -> None:
    [statement] = parse_statement(
        fixture_bytes("csv_debit_credit_sparkasse.csv"), profile=SPARKASSE_DEBIT_CREDIT
    )
    assert statement.account == "DE44500105175407324931"
    assert statement.opening is not None and statement.closing is not None
    assert statement.opening.amount == Money("8000.00", "EUR")
    assert statement.opening.date == dt.date(2026, 11, 20)
    assert statement.closing.amount == Money("8391.10", "EUR")
    # read oldest first whatever the export's order
    assert [line.amount for line in statement.lines] == [
        Money("1017.40", "EUR"), Money("-2500.00", "EUR"),
        Money("1881.60", "EUR"), Money("-7.90", "EUR"),
    ]
    incoming, outgoing, settlement, fee = statement.lines
    assert incoming.counterparty_name == "Müller Handels GmbH"
    assert incoming.end_to_end_id == "PI-2026-000913"
    assert outgoing.counterparty_name == "Bäckerei Größer GmbH"
    assert settlement.value_date == dt.date(2026, 11, 22)
    assert fee.description == "Kontoführung 11/2026"


def test_a_running_balance_gap_names_the_line() -> None:
    data = fixture_bytes("csv_signed_amount_cmb.csv").replace(b'"-20,000.00"', b'"-20,000.10"')
    with pytest.raises(UnreadableStatement, match=r"line 4: running balance 47215.40"):
        parse_statement(data, profile=CMB_SIGNED)


def test_a_profile_naming_a_missing_column_is_refused() -> None:
    profile = CsvProfile(name="wrong", account="1", date_column="Datum", amount_column="Amount",
                         currency="CNY")
    with pytest.raises(UnreadableStatement, match="no column named Datum"):
        parse_statement(fixture_bytes("csv_signed_amount_cmb.csv"), profile=profile)


def test_a_profile_must_say_how_amounts_are_given() -> None:
    with pytest.raises(ValueError, match="amount_column, or debit_column"):
        CsvProfile(name="x", account="1", date_column="d", currency="CNY")
