"""Products over HTTP on both databases: define, change, retire, list, show; a float rate
or a product that cannot work is a 422 problem and nothing is stored; a borrower's key
cannot change products."""

from __future__ import annotations

import itertools

from paycore.api import create_api_key
from tests.api.conftest import bearer, is_problem
from tests.lending.book import DAY, days, good_borrower

_keys = itertools.count()

TERMS = {"name": "Short supply-chain loan", "currency": "CNY", "min_amount_minor": 100000,
         "max_amount_minor": 20000000, "min_term_days": 7, "max_term_days": 45,
         "annual_rate": "0.09", "day_count": "30E/360", "maturity_roll": "modified_following"}


def post_headers(key: str) -> dict[str, str]:
    return {**bearer(key), "Idempotency-Key": f"p-{next(_keys)}"}


async def test_products_defined_changed_and_retired_over_http(api, db, issue_key):
    # a back-office person (applying for a borrower is one side of four eyes: a named key)
    async with db.begin() as conn:
        risk = (await create_api_key(conn, "risk", ("lending:read", "lending:write",
                                                    "lending:products", "lending:review"),
                                     holder="risk.wang")).secret
    r = await api.post("/v1/lending/products", headers=post_headers(risk), json={
        "code": "short_sc", "terms": TERMS, "effective_from": DAY.isoformat(),
        "reason": "pilot"})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["changed_by"].startswith("risk/")
    assert r.json()["terms"]["day_count"] == "30E/360"

    r = await api.post("/v1/lending/products/short_sc/versions", headers=post_headers(risk),
                       json={"changes": {"annual_rate": "0.11"},
                             "effective_from": days(1).isoformat(), "reason": "cost"})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2 and r.json()["terms"]["annual_rate"] == "0.11"

    r = await api.get("/v1/lending/products", headers=bearer(risk),
                      params={"on": DAY.isoformat()})
    listed = {p["code"]: p for p in r.json()}
    assert listed["short_sc"]["version"] == 1 and listed["supply_chain"]["version"] == 0

    # a loan applied for under version 2
    async with db.begin() as conn:
        await good_borrower(conn, "sup-001", on=days(1), imported_on=days(1))
    r = await api.post("/v1/lending/applications", headers=post_headers(risk), json={
        "borrower_id": "sup-001", "product": "short_sc",
        "amount": {"amount": "10000.00", "currency": "CNY"}, "term_days": 30,
        "applied_on": days(1).isoformat()})
    assert r.status_code == 201, r.text

    r = await api.post("/v1/lending/products/short_sc/retirement", headers=post_headers(risk),
                       json={"effective_from": days(2).isoformat(), "reason": "pilot over"})
    assert r.status_code == 201, r.text
    history = (await api.get("/v1/lending/products/short_sc", headers=bearer(risk))).json()
    assert [(v["version"], v["status"], v["reason"]) for v in history] == [
        (1, "active", "pilot"), (2, "active", "cost"), (3, "retired", "pilot over")]
    r = await api.post("/v1/lending/applications", headers=post_headers(risk), json={
        "borrower_id": "sup-001", "product": "short_sc",
        "amount": {"amount": "10000.00", "currency": "CNY"}, "term_days": 30,
        "applied_on": days(2).isoformat()})
    assert "retired" in str(is_problem(r, 422)["detail"])


async def test_bad_products_are_problems_and_nothing_is_stored(api, db, issue_key):
    risk = await issue_key("risk", "lending:read", "lending:products")
    for terms, words in (({**TERMS, "annual_rate": 0.09}, "not a binary float"),
                         ({**TERMS, "min_term_days": 50}, "minimum term 50 days exceeds"),
                         ({**TERMS, "annual_rate": "0.5"}, "above 0.36")):
        r = await api.post("/v1/lending/products", headers=post_headers(risk),
                           json={"code": "bad", "terms": terms})
        assert words in str(is_problem(r, 422, "invalid-product")["detail"])
    is_problem(await api.get("/v1/lending/products/bad", headers=bearer(risk)), 404,
               "product-not-found")
    r = await api.post("/v1/lending/products/nope/versions", headers=post_headers(risk),
                       json={"changes": {"annual_rate": "0.1"}})
    is_problem(r, 404, "product-not-found")


async def test_a_borrowers_key_cannot_change_products(api, db, issue_key):
    borrower = await issue_key("sup-001", "lending:read", "lending:write")
    r = await api.post("/v1/lending/products", headers=post_headers(borrower),
                       json={"code": "mine", "terms": TERMS})
    assert r.status_code == 403, r.text
