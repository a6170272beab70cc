"""A settlement batch read from MT940 field 86 and from BAI2 88 continuations: count,
gross, fee and the bank's transaction ids, so matching can find the captures."""

from __future__ import annotations

import pytest
from moneyed import Money

from reconciliation import BatchDetails, parse_statement
from tests.reconciliation.conftest import fixture_bytes

IDS = tuple(f"UPTXN{i:08d}" for i in range(9))


@pytest.mark.parametrize("name", ["mt940_settlement_batch.sta", "bai2_settlement_batch.bai"])
def test_batch_details_of_a_settlement_line(name: str) -> None:
    [statement] = parse_statement(fixture_bytes(name))
    settlement, payout, charge = statement.lines
    assert settlement.amount == Money("894.96", "CNY")
    assert settlement.batch == BatchDetails(
        item_count=9, gross_amount=Money("900.36", "CNY"), fees=Money("5.40", "CNY"),
        batch_id="STL20261125UNI", item_references=IDS)
    assert payout.batch is None and charge.batch is None
    assert "po-20261125-sup-002" in (payout.end_to_end_id, payout.customer_reference)


def test_a_batch_whose_ids_did_not_fit_lists_only_those_given() -> None:
    data = fixture_bytes("mt940_settlement_batch.sta").replace(
        b"6 UPTXN00000007 UPTXN00000008/CHGS/", b"6 +2 MORE/CHGS/")
    [statement] = parse_statement(data)
    batch = statement.lines[0].batch
    assert batch is not None and batch.item_count == 9
    assert batch.item_references == IDS[:7]
