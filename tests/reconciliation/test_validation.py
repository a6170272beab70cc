from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from moneyed import Money

import reconciliation
from reconciliation import (
    StatementCurrencyMismatch,
    UnbalancedStatement,
    parse_statement,
    validate_statement,
)
from tests.reconciliation.conftest import fixture_bytes
from tests.reconciliation.profiles import CMB_SIGNED


def test_an_unbalanced_camt_statement_names_every_figure() -> None:
    data = fixture_bytes("camt053_v02_icbc.xml").replace(b">105787.50<", b">105777.50<", 1)
    with pytest.raises(UnbalancedStatement) as caught:
        parse_statement(data)
    assert str(caught.value) == (
        "statement 2026-11-22-ICBC-001 (camt.053) does not add up: opening 100,000.00 CNY"
        " + lines 5,787.50 CNY = 105,787.50 CNY, but closing balance is 105,777.50 CNY"
        " (difference 10.00 CNY)"
    )
    assert caught.value.difference == Money("10.00", "CNY")


@pytest.mark.parametrize(("name", "old", "new"), [
    ("mt940_hsbc_two_days.sta", b":62F:C261121CNY255787,50", b":62F:C261121CNY255787,40"),
    ("bai2_boa_prior_day.bai", b"015,13471065", b"015,13471075"),
])
def test_unbalanced_statements_of_other_formats(name: str, old: bytes, new: bytes) -> None:
    data = fixture_bytes(name).replace(old, new)
    if name.endswith(".bai"):  # keep the control totals right: only the balance is wrong
        data = data.replace(b"49,50944260", b"49,50944270").replace(b"51944260", b"51944270")
    with pytest.raises(UnbalancedStatement, match="does not add up"):
        parse_statement(data)


def test_the_statement_must_be_in_the_accounts_currency() -> None:
    with pytest.raises(StatementCurrencyMismatch, match="is in CNY, but the account is kept in USD"):
        parse_statement(fixture_bytes("camt053_v02_icbc.xml"), account_currency="USD")


def test_a_line_in_another_currency_is_refused() -> None:
    data = fixture_bytes("camt053_v02_icbc.xml").replace(
        b'<Amt Ccy="CNY">25.00</Amt>', b'<Amt Ccy="USD">25.00</Amt>'
    )
    with pytest.raises(StatementCurrencyMismatch, match="line 4 is in USD"):
        parse_statement(data)


def test_a_derived_opening_balance_is_not_checked() -> None:
    [statement] = parse_statement(fixture_bytes("ofx_v1_chase_checking.ofx"))
    assert statement.opening is not None
    wrong = dataclasses.replace(statement, opening=dataclasses.replace(
        statement.opening, amount=Money("1.00", "USD")))
    validate_statement(wrong)  # proves nothing, so it cannot fail


def test_a_csv_statement_without_balances_cannot_be_checked_but_is_read() -> None:
    profile = dataclasses.replace(CMB_SIGNED, balance_column=None)
    [statement] = parse_statement(fixture_bytes("csv_signed_amount_cmb.csv"), profile=profile)
    assert statement.opening is None and statement.closing is None


def test_no_float_near_money() -> None:
    package = Path(reconciliation.__file__).parent
    for source in package.rglob("*.py"):
        assert not re.search(r"\bfloat\s*\(", source.read_text()), source
