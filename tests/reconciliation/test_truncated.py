"""A file cut off anywhere is refused, saying where; nothing of it is read as a statement."""

from __future__ import annotations

import pytest

from reconciliation import UnreadableStatement, parse_statement
from reconciliation.parsers import CsvProfile
from tests.reconciliation.conftest import fixture_bytes
from tests.reconciliation.profiles import CMB_SIGNED, SPARKASSE_DEBIT_CREDIT


def _cut(name: str, marker: bytes) -> bytes:
    data = fixture_bytes(name)
    return data[: data.index(marker)]


def test_camt_cut_inside_an_entry() -> None:
    data = _cut("camt053_v08_sepa.xml", b"<Amt Ccy=\"EUR\">995.50")
    with pytest.raises(UnreadableStatement) as caught:
        parse_statement(data, format="camt.053")
    assert caught.value.format == "camt.053"
    assert caught.value.where.startswith("line ")
    assert "Premature end of data" in caught.value.reason or "end" in caught.value.reason


def test_camt054_cut_short() -> None:
    data = _cut("camt054_v04_credit_notification.xml", b"<NtryRef>7781-2")
    with pytest.raises(UnreadableStatement, match=r"at line \d+"):
        parse_statement(data, format="camt.054")


def test_mt940_cut_before_the_closing_balance() -> None:
    data = _cut("mt940_hsbc_two_days.sta", b":62F:C261121")
    with pytest.raises(UnreadableStatement) as caught:
        parse_statement(data)
    assert caught.value.where == "line 17"  # the last line there is
    assert "starting on line 2 ends without its closing balance" in caught.value.reason


def test_mt940_cut_inside_a_statement_line() -> None:
    data = _cut("mt940_hsbc_two_days.sta", b"1121C1500,00")
    with pytest.raises(UnreadableStatement) as caught:
        parse_statement(data, format="mt940")
    assert caught.value.where.startswith("line 6")


def test_bai2_cut_inside_an_account() -> None:
    # the bai2 library itself would loop forever on this file
    lines = fixture_bytes("bai2_boa_prior_day.bai").splitlines(keepends=True)
    with pytest.raises(UnreadableStatement) as caught:
        parse_statement(b"".join(lines[:9]), format="bai2")
    assert caught.value.where == "line 9"
    assert "inside the account identifier on line 3 without its account trailer (49)" in str(
        caught.value
    )


def test_ofx_cut_before_its_closing_tags() -> None:
    data = _cut("ofx_v1_chase_checking.ofx", b"<LEDGERBAL>")
    with pytest.raises(UnreadableStatement) as caught:
        parse_statement(data)
    assert caught.value.where == "element STMTRS (line 34)"
    assert "never closed" in caught.value.reason


def test_ofx_cut_inside_a_transaction() -> None:
    data = _cut("ofx_v1_chase_checking.ofx", b"<FITID>202611210003")
    with pytest.raises(UnreadableStatement, match="element STMTTRN"):
        parse_statement(data, format="ofx")


@pytest.mark.parametrize(("name", "profile", "marker", "line"), [
    ("csv_signed_amount_cmb.csv", CMB_SIGNED, b",Supplier settlement", 4),
    ("csv_debit_credit_sparkasse.csv", SPARKASSE_DEBIT_CREDIT, b";INV 2026", 9),
])
def test_csv_cut_inside_a_row(name: str, profile: CsvProfile, marker: bytes, line: int) -> None:
    data = _cut(name, marker)
    with pytest.raises(UnreadableStatement) as caught:
        parse_statement(data, profile=profile)
    assert caught.value.where == f"line {line}"
    assert "columns where the header has" in caught.value.reason
