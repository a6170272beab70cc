from __future__ import annotations

import datetime as dt

import pytest
from moneyed import Money

from reconciliation import (
    BatchDetails,
    StatementKind,
    UnreadableStatement,
    parse_statement,
)
from tests.reconciliation.conftest import fixture_bytes


def test_camt053_v02_balances_lines_and_references() -> None:
    [statement] = parse_statement(fixture_bytes("camt053_v02_icbc.xml"))
    assert statement.source_format == "camt.053"
    assert statement.format_version == "001.02"
    assert statement.statement_id == "2026-11-22-ICBC-001"
    assert statement.account == "6222021001012345678"
    assert statement.currency == "CNY"
    assert statement.opening is not None and statement.closing is not None
    assert statement.opening.amount == Money("100000.00", "CNY")
    assert statement.closing.amount == Money("105787.50", "CNY")
    assert statement.closing.date == dt.date(2026, 11, 21)
    # the pending entry is not part of the booked statement
    assert len(statement.lines) == 4
    assert [line.amount for line in statement.lines] == [
        Money("1500.00", "CNY"), Money("12312.50", "CNY"),
        Money("-8000.00", "CNY"), Money("-25.00", "CNY"),
    ]
    payment, settlement, payout, fee = statement.lines
    assert payment.bank_reference == "ICBC2026112100017"
    assert payment.end_to_end_id == "PI-2026-000731"
    assert payment.customer_reference == "PAY-7731"
    assert payment.counterparty_name == "Hangzhou Lianhua Trading Co., Ltd."
    assert payment.counterparty_account == "6217001234567890123"
    assert payment.description == "Order 2026-11-0731"
    assert payment.transaction_code == "PMNT/RCDT/DMCT"
    assert settlement.value_date == dt.date(2026, 11, 22)
    assert settlement.booking_date == dt.date(2026, 11, 21)
    assert settlement.batch == BatchDetails(
        item_count=42, gross_amount=Money("12500.00", "CNY"), fees=Money("187.50", "CNY"),
        batch_id="UPSETTLE-20261121-01",
    )
    assert payout.counterparty_name == "Ningbo Harbour Textiles"  # the creditor on a debit
    assert fee.end_to_end_id is None  # NOTPROVIDED means none
    assert fee.bank_reference is None
    assert fee.transaction_code == "FEE"


def test_camt053_v08_reads_the_later_schema() -> None:
    [statement] = parse_statement(fixture_bytes("camt053_v08_sepa.xml"))
    assert statement.format_version == "001.08"
    assert statement.account == "DE89370400440532013000"
    assert statement.opening is not None and statement.closing is not None
    assert statement.opening.amount == Money("-250.00", "EUR")  # DBIT balance: overdrawn
    assert statement.opening.date == dt.date(2026, 11, 20)
    assert statement.closing.amount == Money("5623.00", "EUR")
    assert len(statement.lines) == 4
    payment, settlement, returned, fee = statement.lines
    assert payment.counterparty_name == "Müller Handels GmbH"  # Dbtr/Pty/Nm from 001.08
    assert payment.description == "INV 2026-11-4412 CUST 8812"
    # 23:30 local on the 21st stays the 21st: dates are read as written
    assert payment.booking_date == dt.date(2026, 11, 21)
    assert settlement.amount == Money("995.50", "EUR")
    assert settlement.batch == BatchDetails(
        item_count=3, gross_amount=Money("1000.00", "EUR"), fees=Money("4.50", "EUR"),
        item_references=("CAP-0001", "CAP-0002", "CAP-0003"),
    )
    assert returned.reversal and returned.amount == Money("-120.00", "EUR")
    assert returned.counterparty_name == "Schmidt & Söhne KG"
    assert fee.amount == Money("-2.50", "EUR")
    assert fee.transaction_code == "ACMT/MDOP/CHRG"


def test_camt054_notification_has_lines_but_no_balances() -> None:
    [notification] = parse_statement(fixture_bytes("camt054_v04_credit_notification.xml"))
    assert notification.source_format == "camt.054"
    assert notification.kind is StatementKind.NOTIFICATION
    assert notification.opening is None and notification.closing is None
    assert [line.amount for line in notification.lines] == [
        Money("2680.00", "CNY"), Money("99.90", "CNY")
    ]
    assert notification.lines[0].end_to_end_id == "PI-2026-000901"
    assert notification.lines[1].counterparty_name == "Li Wei"


@pytest.mark.parametrize("version", ["02", "03", "04", "05", "06", "07", "08"])
def test_every_supported_version_is_read_from_the_namespace(version: str) -> None:
    data = fixture_bytes("camt053_v02_icbc.xml").replace(b"camt.053.001.02",
                                                          f"camt.053.001.{version}".encode())
    [statement] = parse_statement(data)
    assert statement.format_version == f"001.{version}"
    assert len(statement.lines) == 4


def test_an_unsupported_version_is_refused_by_name() -> None:
    data = fixture_bytes("camt053_v02_icbc.xml").replace(b"camt.053.001.02", b"camt.053.001.12")
    with pytest.raises(UnreadableStatement, match=r"camt\.053\.001\.12 is not a version"):
        parse_statement(data)


def test_a_camt054_given_as_camt053_is_refused() -> None:
    with pytest.raises(UnreadableStatement, match="not camt.053"):
        parse_statement(fixture_bytes("camt054_v04_credit_notification.xml"), format="camt.053")


def test_an_amount_finer_than_the_currency_names_its_element() -> None:
    data = fixture_bytes("camt053_v02_icbc.xml").replace(b">1500.00<", b">1500.001<", 1)
    with pytest.raises(UnreadableStatement) as caught:
        parse_statement(data)
    assert "Stmt/Ntry[1]/Amt" in caught.value.where
    assert "more decimal places than CNY allows" in str(caught.value)


def test_a_missing_closing_balance_is_named() -> None:
    data = fixture_bytes("camt053_v02_icbc.xml").replace(b"<Cd>CLBD</Cd>", b"<Cd>XXXX</Cd>")
    with pytest.raises(UnreadableStatement, match="no closing booked balance"):
        parse_statement(data)
