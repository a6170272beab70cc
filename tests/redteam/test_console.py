"""Red team (issue #15 review): the console's forms against a careless or hostile staff
member. Findings fail on today's main (xfail strict, the finding as reason). SQLite and
PostgreSQL."""

from __future__ import annotations

from tests.console.test_console_http import _env, audit_rows, console, csrf, login

__all__ = ["_env", "console"]


async def _payments_form(client) -> str:
    assert (await login(client, "pay1")).status_code == 303
    return csrf(await client.get("/console/payments/approvals/queue"))


async def test_an_unknown_currency_in_the_console_is_named(console):
    """Was a finding (robustness), fixed: an unknown currency ('QQQ') in the console's
    payout request raised moneyed's KeyError, caught by nothing: a 500."""
    _, _, client = console
    token = await _payments_form(client)
    r = await client.post("/console/payments/payouts/request", data={
        "csrf_token": token, "supplier": "sup-001", "account": "ba_x", "amount": "10.00",
        "currency": "QQQ", "reason": "careless"})
    assert r.status_code == 303, r.text[:300]
    assert "error=" in r.headers["location"] and "QQQ" in r.headers["location"]


async def test_a_nul_in_a_console_form_is_refused(console):
    _, _, client = console
    token = await _payments_form(client)
    r = await client.post("/console/payments/payouts/request", data={
        "csrf_token": token, "supplier": "sup\x00001", "account": "ba_x", "amount": "10.00",
        "currency": "CNY", "reason": "why\x00not"})
    assert r.status_code in (303, 422), r.text[:300]
    assert "%00" not in r.headers.get("location", "")


async def test_a_nul_in_the_sign_in_form_is_refused_and_nothing_recorded(console):
    """The sign-in form is read before anyone is known: a NUL in the user name would reach
    the refusal's audit row (and PostgreSQL) — it is refused first, 422, a page saying why."""
    engine, _, client = console
    page = await client.get("/console/login")
    token = csrf(page)
    before = len(await audit_rows(engine))
    r = await client.post("/console/login", data={
        "username": "pay1\x00", "password": "x", "csrf_token": token, "next": "/console"})
    assert r.status_code == 422, r.text[:300]
    assert "NUL" in r.text
    assert len(await audit_rows(engine)) == before
