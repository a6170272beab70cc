"""Line identity: what makes re-importing a file, or an overlapping one, add nothing."""

from __future__ import annotations

from reconciliation import parse_statement
from tests.reconciliation.conftest import fixture_bytes


def _identities(data: bytes) -> list[str]:
    return [line.line_identity for s in parse_statement(data) for line in s.lines]


def test_the_same_file_gives_the_same_identities_and_hash() -> None:
    data = fixture_bytes("camt053_v08_sepa.xml")
    first, second = parse_statement(data)[0], parse_statement(data)[0]
    assert first.file_hash == second.file_hash
    assert [x.line_identity for x in first.lines] == [x.line_identity for x in second.lines]
    assert len(set(_identities(data))) == len(first.lines)


def test_an_overlapping_statement_shares_the_identities_of_shared_lines() -> None:
    data = fixture_bytes("mt940_hsbc_two_days.sta")
    first_day, second_day = parse_statement(data)
    # the bank re-sends day two on its own, with a different statement number
    resent = data[data.index(b"{1:", 10):].replace(b"327/1", b"327/2")
    [again] = parse_statement(resent)
    assert again.file_hash != first_day.file_hash
    assert [x.line_identity for x in again.lines] == [x.line_identity for x in second_day.lines]


def test_identical_lines_without_references_stay_distinct() -> None:
    data = fixture_bytes("csv_signed_amount_cmb.csv")
    doubled = data + b"2026-11-21,2026-11-21,,,,,SMS NOTIFICATION FEE,-2.00,CNY,\"47,211.40\"\n"
    doubled = doubled.replace(b"CMB20261121000104", b"")
    from tests.reconciliation.profiles import CMB_SIGNED
    [statement] = parse_statement(doubled, profile=CMB_SIGNED)
    fees = statement.lines[-2:]
    assert fees[0].amount == fees[1].amount
    assert fees[0].line_identity != fees[1].line_identity


def test_a_reworded_description_keeps_a_referenced_lines_identity() -> None:
    data = fixture_bytes("camt053_v02_icbc.xml")
    reworded = data.replace(b"Order 2026-11-0731", b"ORDER 2026-11-0731 (corrected)")
    assert _identities(data)[0] == _identities(reworded)[0]
