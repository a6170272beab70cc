"""Every error is application/problem+json (RFC 9457); request ids; logs keep secrets out."""

from __future__ import annotations

import json

import structlog
from structlog.testing import capture_logs

import ledger
from paycore.logging import redact
from tests.api.conftest import bearer, is_problem


async def test_framework_errors_are_problems(api, issue_key):
    key = await issue_key("m1", "ledger:read")
    is_problem(await api.get("/v1/nowhere", headers=bearer(key)), 404)
    # a POST nothing takes is a 404 or 405 before any key is asked for
    is_problem(await api.post("/v1/nowhere"), 404)
    is_problem(await api.post("/healthz"), 405)
    r = await api.delete("/v1/ledger/accounts", headers=bearer(key))
    body = is_problem(r, 405)
    assert body["type"] == "about:blank" and body["title"] == "Method Not Allowed"
    r = await api.get("/v1/ledger/entries/not-a-uuid", headers=bearer(key))
    body = is_problem(r, 422, "validation-failed")
    assert body["errors"][0]["location"] == ["path", "entry_id"]
    assert "not-a-uuid" not in json.dumps(body["errors"])  # input is never echoed


async def test_an_unexpected_error_is_a_500_problem_without_internals(api, issue_key):
    key = await issue_key("m1", "payments:write")
    with capture_logs() as logs:
        r = await api.post("/v1/probe/boom", headers=bearer(key) | {"Idempotency-Key": "b-1"})
    body = is_problem(r, 500)
    assert "hunter2" not in r.text and "RuntimeError" not in r.text
    assert body["title"] == "Internal Server Error"
    # the details went to the log, under the same request id
    crash = next(e for e in logs if e["event"] == "http.unhandled_error")
    assert crash["log_level"] == "error"


async def test_the_request_id_is_echoed_or_made(api, issue_key):
    key = await issue_key("m1", "ledger:read")
    r = await api.get("/v1/ledger/accounts", headers=bearer(key) | {"X-Request-ID": "req-42.a"})
    assert r.headers["x-request-id"] == "req-42.a"
    r = await api.get("/v1/ledger/accounts", headers=bearer(key) | {"X-Request-ID": "bad id;drop"})
    assert r.headers["x-request-id"] != "bad id;drop" and len(r.headers["x-request-id"]) == 32
    r = await api.get("/v1/nowhere", headers={"X-Request-ID": "req-43"})
    assert is_problem(r, 404)["request_id"] == "req-43"


async def test_log_lines_carry_the_request_and_never_the_key(api, issue_key):
    key = await issue_key("m1", "ledger:read")
    with capture_logs([structlog.contextvars.merge_contextvars, redact]) as logs:
        await api.get("/v1/ledger/accounts", headers=bearer(key) | {"X-Request-ID": "req-7"})
    access = next(e for e in logs if e["event"] == "http.request")
    assert access["status"] == 200 and access["merchant_id"] == "m1"
    assert access["request_id"] == "req-7" and access["path"] == "/v1/ledger/accounts"
    assert access["key_id"] == key.split("_")[1]
    assert key not in repr(logs) and key.split("_", 2)[2] not in repr(logs)


async def test_ledger_errors_map_to_precise_problems(api, db, issue_key):
    key = await issue_key("m1", "ledger:read", "payments:write")
    r = await api.get("/v1/ledger/accounts/9999.nope/balance", headers=bearer(key))
    body = is_problem(r, 404, "unknown-account")
    assert body["refs"] == ["9999.nope"] and "no such account" in body["detail"]

    def post(idem, postings):
        return api.post("/v1/probe/entries", json={"postings": postings},
                        headers=bearer(key) | {"Idempotency-Key": idem})

    def leg(account, side, amount, currency="CNY"):
        return {"account": account, "side": side, "amount": {"amount": amount, "currency": currency}}

    body = is_problem(await post("e-1", [leg("1102.clearing.icbc", "debit", "10.00"),
                                         leg("2202.payable.s1", "credit", "9.00")]),
                      422, "unbalanced-entry")
    assert body["differences"] == {"CNY": "1.00"} and "does not balance" in body["detail"]
    body = is_problem(await post("e-2", [leg("1102.clearing.icbc", "debit", "10.00"),
                                         leg("9999.nope", "credit", "10.00")]), 404, "unknown-account")
    body = is_problem(await post("e-3", [leg("1102.clearing.icbc", "debit", "10.001"),
                                         leg("2202.payable.s1", "credit", "10.001")]),
                      422, "invalid-amount")
    body = is_problem(await post("e-4", [leg("1102.clearing.icbc", "debit", "10.00", "USD"),
                                         leg("2202.payable.usd", "credit", "10.00", "USD")]),
                      422, "currency-mismatch")
    assert body["account_code"] == "1102.clearing.icbc" and body["given_currency"] == "USD"
    # a supplier payable may not go into debit
    body = is_problem(await post("e-5", [leg("2202.payable.s1", "debit", "10.00"),
                                         leg("1102.clearing.icbc", "credit", "10.00")]),
                      422, "balance-limit-exceeded")
    assert body["account_code"] == "2202.payable.s1"
    # amounts are decimal strings, never JSON numbers
    r = await api.post("/v1/probe/entries", headers=bearer(key) | {"Idempotency-Key": "e-6"},
                       json={"postings": [{"account": "1102.clearing.icbc", "side": "debit",
                                           "amount": {"amount": 10, "currency": "CNY"}}]})
    is_problem(r, 422, "validation-failed")
    async with db.connect() as conn:
        assert (await ledger.trial_balance(conn)).rows == () or all(
            row.debit == row.credit == 0 for row in (await ledger.trial_balance(conn)).rows)
