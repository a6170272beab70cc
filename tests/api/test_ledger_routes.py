"""The ledger's read routes (scope ledger:read) against books posted through the ledger."""

from __future__ import annotations

import datetime as dt

import ledger
from tests.api.conftest import bearer, is_problem
from tests.ledger.chart import capture


async def test_accounts_balances_statement_entry_trial_balance_verify(api, db, issue_key):
    async with db.begin() as conn:
        first = await ledger.post(conn, capture("c-1", "100.00", "3.00", external_ref="bank-1"))
        await ledger.post(conn, capture("c-2", "50.00", "1.50"))
    h = bearer(await issue_key("finance", "ledger:read"))

    accounts = (await api.get("/v1/ledger/accounts", headers=h)).json()["data"]
    assert len(accounts) == 9
    r = await api.get("/v1/ledger/accounts", params={"owner_ref": "supplier:1"}, headers=h)
    assert [a["code"] for a in r.json()["data"]] == ["2202.payable.s1"]
    r = await api.get("/v1/ledger/accounts", params={"code_prefix": "2202."}, headers=h)
    assert len(r.json()["data"]) == 3
    account = (await api.get("/v1/ledger/accounts/2202.payable.s1", headers=h)).json()
    assert account["balance_limit"] == "debits_must_not_exceed_credits"

    bal = (await api.get("/v1/ledger/accounts/2202.payable.s1/balance", headers=h)).json()
    assert bal["posted"] == {"amount": "145.50", "currency": "CNY"}
    assert bal["available"] == bal["posted"] and bal["as_of"] is None
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
    r = await api.get("/v1/ledger/accounts/2202.payable.s1/balance",
                      params={"as_of": yesterday.isoformat()}, headers=h)
    assert r.json()["posted"]["amount"] == "0.00"
    now = dt.datetime.now(dt.UTC).isoformat()
    r = await api.get("/v1/ledger/accounts/2202.payable.s1/balance", params={"as_of": now},
                      headers=h)
    assert r.json()["posted"]["amount"] == "145.50"
    naive = dt.datetime.now().replace(microsecond=0).isoformat()
    r = await api.get("/v1/ledger/accounts/2202.payable.s1/balance", params={"as_of": naive},
                      headers=h)
    assert "timezone-aware" in is_problem(r, 422, "invalid-request")["detail"]

    today = dt.datetime.now(dt.UTC).date().isoformat()
    st = (await api.get("/v1/ledger/accounts/1102.clearing.icbc/statement",
                        params={"from": today, "to": today}, headers=h)).json()
    assert st["opening"]["amount"] == "0.00" and st["closing"]["amount"] == "150.00"
    assert [(line["side"], line["amount"]["amount"], line["balance_after"]["amount"])
            for line in st["lines"]] == [("debit", "100.00", "100.00"), ("debit", "50.00", "150.00")]
    assert st["lines"][0]["external_ref"] == "bank-1"
    r = await api.get("/v1/ledger/accounts/1102.clearing.icbc/statement",
                      params={"from": today, "to": yesterday.isoformat()}, headers=h)
    is_problem(r, 422, "invalid-request")

    entry = (await api.get(f"/v1/ledger/entries/{first.id}", headers=h)).json()
    assert entry["idempotency_key"] == "c-1" and entry["kind"] == "payment.capture"
    assert [(p["account"], p["side"], p["amount"]["amount"]) for p in entry["postings"]] == [
        ("1102.clearing.icbc", "debit", "100.00"), ("2202.payable.s1", "credit", "97.00"),
        ("6001.income.commission", "credit", "3.00")]
    r = await api.get("/v1/ledger/entries/00000000-0000-0000-0000-000000000000", headers=h)
    is_problem(r, 404, "entry-not-found")

    tb = (await api.get("/v1/ledger/trial-balance", headers=h)).json()
    assert tb["balanced"] is True
    assert tb["totals"]["CNY"] == {"debit": {"amount": "150.00", "currency": "CNY"},
                                   "credit": {"amount": "150.00", "currency": "CNY"}}
    report = (await api.get("/v1/ledger/verify", headers=h)).json()
    assert report["ok"] is True and report["entries"] == 2 and report["discrepancies"] == []


async def test_openapi_document_lists_the_routes_and_the_contract(api):
    doc = (await api.get("/openapi.json")).json()
    paths = doc["paths"]
    for path in ("/v1/ledger/accounts", "/v1/ledger/accounts/{code}/balance",
                 "/v1/ledger/accounts/{code}/statement", "/v1/ledger/entries/{entry_id}",
                 "/v1/ledger/trial-balance", "/v1/ledger/verify"):
        operation = paths[path]["get"]
        assert operation["security"] == [{"ApiKey": ["ledger:read"]}]
        assert set(operation["responses"]) >= {"200", "401", "403", "default"}
        assert "application/problem+json" in operation["responses"]["default"]["content"]
    assert doc["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert "Problem" in doc["components"]["schemas"]
    post = paths["/v1/probe/entries"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in post["parameters"])
    assert "409" in post["responses"]
    assert (await api.get("/docs")).status_code == 200
