from __future__ import annotations

import pytest

from reconciliation import UnknownStatementFormat, detect_format, parse_statement
from tests.reconciliation.conftest import fixture_bytes


@pytest.mark.parametrize(("name", "expected"), [
    ("camt053_v02_icbc.xml", "camt.053"),
    ("camt053_v08_sepa.xml", "camt.053"),
    ("camt054_v04_credit_notification.xml", "camt.054"),
    ("mt940_hsbc_two_days.sta", "mt940"),
    ("bai2_boa_prior_day.bai", "bai2"),
    ("ofx_v1_chase_checking.ofx", "ofx"),
    ("csv_signed_amount_cmb.csv", None),
])
def test_detect_format(name: str, expected: str | None) -> None:
    assert detect_format(fixture_bytes(name)) == expected


def test_an_unknown_file_asks_for_a_format() -> None:
    with pytest.raises(UnknownStatementFormat, match="give a CsvProfile"):
        parse_statement(fixture_bytes("csv_signed_amount_cmb.csv"), source_name="export.csv")
