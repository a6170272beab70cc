"""The risk team defines, changes and retires loan products from the console (issue #20):
the catalogue's versions with who and why, its refusals on the page with nothing written,
and the same role and CSRF checks as every console action; SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lending.schema import products as product_versions
from tests.console import test_console_http as http
from tests.console.test_console_http import TODAY, audit_rows, csrf, login

# the HTTP console (seeded staff, the app over httpx) and its environment, shared
_env, console = http._env, http.console


DEFINE = {"code": "short_sc", "name": "Short supply chain", "currency": "CNY",
          "annual_rate": "0.09", "day_count": "ACT/ACT-ISDA", "min_term_days": "7",
          "max_term_days": "45", "min_amount": "1,000", "max_amount": "20000.00",
          "fee_rate": "0.01", "fee_fixed": "", "penalty_annual_rate": "0.18",
          "grace_days": "3", "maturity_roll": "following", "market": "CN",
          "effective_from": TODAY.isoformat(), "reason": "pilot with two buyers"}


async def versions(engine: AsyncEngine) -> list[dict]:
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(
            sa.select(product_versions).order_by(product_versions.c.version))]


async def test_risk_defines_changes_and_retires_a_product(console) -> None:
    engine, _, client = console
    await login(client, "risk1")
    page = await client.get("/console/risk/products")
    assert page.status_code == 200
    assert 'href="/console/risk/products"' in page.text  # in the nav
    for field in ("d-code", "d-rate", "d-daycount", "c-changes", "r-reason"):
        assert f'<label for="{field}">' in page.text
    response = await client.post("/console/risk/products/define",
                                 data={**DEFINE, "csrf_token": csrf(page)})
    assert response.status_code == 303, response.text
    page = await client.get(response.headers["location"])
    assert "short_sc version 1" in page.text
    response = await client.post("/console/risk/products/change", data={
        "csrf_token": csrf(page), "code": "short_sc",
        "changes": "annual_rate=0.11\nmax_term_days=60", "effective_from": TODAY.isoformat(),
        "reason": "funding cost up"})
    assert response.status_code == 303, response.text
    response = await client.post("/console/risk/products/retire", data={
        "csrf_token": csrf(page), "code": "short_sc", "effective_from": TODAY.isoformat(),
        "reason": "pilot ended"})
    assert response.status_code == 303, response.text
    rows = await versions(engine)
    assert [(r["version"], r["status"], r["changed_by"], r["reason"]) for r in rows] == [
        (1, "active", "user:risk1", "pilot with two buyers"),
        (2, "active", "user:risk1", "funding cost up"),
        (3, "retired", "user:risk1", "pilot ended")]
    first, second = rows[0]["definition"], rows[1]["definition"]
    assert (first["min_amount_minor"], first["max_amount_minor"]) == (100_000, 2_000_000)
    assert (first["annual_rate"], first["day_count"], first["grace_days"]) == (
        "0.09", "ACT/ACT-ISDA", 3)
    assert first["origination_fee"]["rate"] == "0.01" and first["maturity_roll"] == "following"
    assert (second["annual_rate"], second["max_term_days"]) == ("0.11", 60)
    page = await client.get("/console/risk/products")
    assert "funding cost up" in page.text and "pilot ended" in page.text
    done = [(r["action"], r["actor"], r["reason"], r["outcome"])
            for r in await audit_rows(engine) if r["action"].startswith("product.")]
    assert done == [("product.define", "user:risk1", "pilot with two buyers", "done"),
                    ("product.change", "user:risk1", "funding cost up", "done"),
                    ("product.retire", "user:risk1", "pilot ended", "done")]


async def test_an_invalid_product_is_refused_with_the_catalogues_reason(console) -> None:
    engine, _, client = console
    await login(client, "risk1")
    page = await client.get("/console/risk/products")
    response = await client.post("/console/risk/products/define", data={
        **DEFINE, "csrf_token": csrf(page), "min_term_days": "60", "max_term_days": "30"})
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert "minimum term 60 days exceeds maximum 30" in response.text
    assert 'value="pilot with two buyers"' not in response.text  # reason kept in its textarea
    assert ">pilot with two buyers</textarea>" in response.text
    response = await client.post("/console/risk/products/define", data={
        **DEFINE, "csrf_token": csrf(page), "annual_rate": "5"})
    assert response.status_code == 422
    assert "annual rate 5 is above 0.36 (36% a year)" in response.text
    response = await client.post("/console/risk/products/change", data={
        "csrf_token": csrf(page), "code": "supply_chain", "changes": "currency=USD",
        "reason": "try"})
    assert response.status_code == 422 and "cannot change currency" in response.text
    assert await versions(engine) == []
    refused = [r for r in await audit_rows(engine) if r["action"].startswith("product.")]
    assert [r["outcome"] for r in refused] == ["refused"] * 3


async def test_viewer_and_payments_cannot_touch_products(console) -> None:
    engine, _, client = console
    for user in ("view1", "pay1"):
        await login(client, user)
        page = await client.get("/console/risk/products")
        assert page.status_code == 200 and "Define product" not in page.text
        response = await client.post("/console/risk/products/define",
                                     data={**DEFINE, "csrf_token": csrf(page)})
        assert response.status_code == 403
        assert f"role {'viewer' if user == 'view1' else 'payments'} may not act" in response.text
    assert await versions(engine) == []
    refused = [(r["actor"], r["outcome"]) for r in await audit_rows(engine)
               if r["action"] == "product.define"]
    assert refused == [("user:view1", "refused"), ("user:pay1", "refused")]


async def test_a_product_form_without_its_csrf_token_is_refused(console) -> None:
    engine, _, client = console
    await login(client, "risk1")
    response = await client.post("/console/risk/products/define", data=DEFINE)
    assert response.status_code == 403 and "CSRF" in response.text
    assert await versions(engine) == []
    [row] = [r for r in await audit_rows(engine) if r["action"] == "form.csrf"]
    assert row["actor"] == "user:risk1" and row["outcome"] == "refused"
