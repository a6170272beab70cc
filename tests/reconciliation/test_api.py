"""The reconciliation routes over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import itertools

import ledger
from tests.api.conftest import api, app, bearer, is_problem, issue_key  # noqa: F401 (fixtures)
from tests.reconciliation.builders import IBAN, L, camt053, capture

D = dt.date(2026, 11, 21)
_keys = itertools.count(1)


def _post(key: str) -> dict[str, str]:
    return {**bearer(key), "Idempotency-Key": f"recon-{next(_keys)}"}


async def test_configure_import_reconcile_resolve_report(api, issue_key, db) -> None:  # noqa: F811
    key = await issue_key("finance", "reconciliation:read", "reconciliation:write")
    r = await api.put("/v1/reconciliation/bank-accounts/icbc", headers=bearer(key), json={
        "currency": "CNY", "tolerance": {"amount": "5.00", "currency": "CNY"},
        "bank_account_number": IBAN})
    assert r.status_code == 200, r.text
    assert r.json()["clearing_account"] == "1102.clearing.icbc"
    async with db.begin() as conn:
        for spec in (ledger.AccountSpec("2202.payable.sup-1", "S", ledger.AccountType.LIABILITY,
                                        "CNY"),
                     ledger.AccountSpec("6001.income.commission", "C", ledger.AccountType.INCOME,
                                        "CNY")):
            if await ledger.find_account(conn, spec.code) is None:  # the API chart has some
                await ledger.open_account(conn, spec)
        await ledger.post(conn, capture("icbc", "TXN-1", 10_000, D))
    data = camt053([L(10_000, D, "TXN-1", "B1"), L(-300, D, None, "B2", "SMS FEE")],
                   opening=5_000)
    body = {"file_name": "icbc.xml", "content_base64": base64.b64encode(data).decode()}
    r = await api.post("/v1/reconciliation/bank-accounts/icbc/statements", headers=_post(key),
                       json=body)
    assert r.status_code == 201, r.text
    assert (r.json()["new_lines"], r.json()["already_imported"]) == (2, False)
    r = await api.post("/v1/reconciliation/bank-accounts/icbc/statements", headers=_post(key),
                       json=body)
    assert r.json()["already_imported"] is True and r.json()["new_lines"] == 0
    r = await api.post("/v1/reconciliation/bank-accounts/icbc/reconcile", headers=_post(key),
                       json={"date": str(D)})
    assert r.status_code == 200, r.text
    assert r.json()["by_rule"] == {"exact_reference": 1}
    assert r.json()["matched_amount"] == {"amount": "100.00", "currency": "CNY"}
    r = await api.get("/v1/reconciliation/exceptions", headers=bearer(key),
                      params={"bank_account": "icbc"})
    [fee] = r.json()
    assert fee["amount_minor"] == -300
    r = await api.post(f"/v1/reconciliation/exceptions/{fee['id']}/resolve", headers=_post(key),
                       json={"action": "adjustment", "reason": "SMS fee",
                             "counter_account": "6602.expense.bank_fees"})
    assert r.status_code == 200, r.text
    assert r.json()["resolved_by"].startswith("api:finance:")
    r = await api.post(f"/v1/reconciliation/exceptions/{fee['id']}/resolve", headers=_post(key),
                       json={"action": "write_off", "reason": "again"})
    is_problem(r, 409, "exception-not-open")
    r = await api.get("/v1/reconciliation/bank-accounts/icbc/report", headers=bearer(key),
                      params={"date": str(D)})
    report = r.json()
    assert report["difference_minor"] == 5_000 and report["explained"] is True
    r = await api.get("/v1/reconciliation/bank-accounts/icbc/report", headers=bearer(key),
                      params={"date": str(D), "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text.startswith("section,label,amount")


async def test_refusals_are_problems(api, issue_key) -> None:  # noqa: F811
    reader = await issue_key("auditor", "reconciliation:read")
    writer = await issue_key("finance", "reconciliation:write", "reconciliation:read")
    r = await api.put("/v1/reconciliation/bank-accounts/icbc", headers=bearer(reader),
                      json={"currency": "CNY"})
    assert r.status_code == 403
    await api.put("/v1/reconciliation/bank-accounts/icbc", headers=bearer(writer),
                  json={"currency": "CNY"})
    bad = camt053([L(10_000, D, "TXN-1", "B1")], closing=1)
    r = await api.post("/v1/reconciliation/bank-accounts/icbc/statements", headers=_post(writer),
                       json={"file_name": "bad.xml",
                             "content_base64": base64.b64encode(bad).decode()})
    body = is_problem(r, 422, "unbalanced-statement")
    assert "does not add up" in body["detail"]
    r = await api.post("/v1/reconciliation/bank-accounts/nosuch/reconcile", headers=_post(writer),
                       json={"date": str(D)})
    is_problem(r, 404, "unknown-bank-account")
