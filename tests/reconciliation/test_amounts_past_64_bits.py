"""A statement amount past what the books keep (64-bit minor units) is a defect of the
file, refused as unreadable (422 unreadable-statement), with nothing stored: it reached
the database and failed there, a 500 for the import on both databases."""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from reconciliation import UnreadableStatement
from reconciliation.amounts import LARGEST_MINOR, Reader
from reconciliation.schema import statement_lines, statements
from tests.api.conftest import api, app, bearer, is_problem, issue_key  # noqa: F401 (fixtures)
from tests.reconciliation.builders import IBAN, L, camt053

D = dt.date(2026, 11, 21)


def test_the_reader_keeps_amounts_the_books_keep() -> None:
    reader = Reader("test", "t.txt")
    largest = Decimal(LARGEST_MINOR) / 100
    assert reader.money(str(largest), "CNY", "line 1").amount == largest
    assert reader.money(str(-largest), "CNY", "line 1").amount == -largest
    assert reader.minor_units(LARGEST_MINOR, "CNY").amount == largest
    for text in (str(largest + Decimal("0.01")), str(-largest - Decimal("0.01")), "1" + "0" * 20):
        with pytest.raises(UnreadableStatement, match="more than the books keep"):
            reader.money(text, "CNY", "line 2")
    with pytest.raises(UnreadableStatement, match="more than the books keep"):
        reader.exact(Decimal(2**63), "JPY", "line 3")
    with pytest.raises(UnreadableStatement, match="more than the books keep"):
        reader.minor_units(LARGEST_MINOR + 1, "CNY")


async def test_a_statement_past_64_bits_is_unreadable_and_stores_nothing(
        api, issue_key, db) -> None:  # noqa: F811
    key = await issue_key("finance", "reconciliation:read", "reconciliation:write")
    r = await api.put("/v1/reconciliation/bank-accounts/icbc", headers=bearer(key), json={
        "currency": "CNY", "bank_account_number": IBAN})
    assert r.status_code == 200, r.text
    data = camt053([L(10**20, D, "TXN-1", "B1")], opening=0)
    body = {"file_name": "icbc.xml", "content_base64": base64.b64encode(data).decode()}
    r = await api.post("/v1/reconciliation/bank-accounts/icbc/statements",
                       headers={**bearer(key), "Idempotency-Key": "huge-1"}, json=body)
    problem = is_problem(r, 422, "unreadable-statement")
    assert "more than the books keep" in problem["detail"]
    async with db.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(statements)) == 0
        assert await conn.scalar(sa.select(sa.func.count()).select_from(statement_lines)) == 0
