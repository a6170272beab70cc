"""The lending routes: apply -> decision with reasons, the review queue, disburse, extend,
repay (waterfall), statement, portfolio; a borrower sees only its own loans; errors are
problem+json. SQLite and PostgreSQL."""

from __future__ import annotations

import itertools

import ledger
from tests.api.conftest import bearer, is_problem
from tests.lending.book import DAY, days, good_borrower

_keys = itertools.count()


def post_headers(key: str) -> dict[str, str]:
    return {**bearer(key), "Idempotency-Key": f"k-{next(_keys)}"}


async def test_a_loan_from_application_to_repayment(api, db, issue_key):
    async with db.begin() as conn:
        await good_borrower(conn, "sup-001")
    borrower = await issue_key("sup-001", "lending:read", "lending:write")
    r = await api.post("/v1/lending/applications", headers=post_headers(borrower), json={
        "amount": {"amount": "10000.00", "currency": "CNY"}, "term_days": 30,
        "applied_on": DAY.isoformat()})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["outcome"] == "approve" and body["loan"]["status"] == "approved"
    assert body["reasons"][0]["code"] == "within-line"
    assert body["credit_line_limit"] == {"amount": "90000.00", "currency": "CNY"}
    loan_id = body["loan"]["id"]

    r = await api.post(f"/v1/lending/loans/{loan_id}/disbursement", headers=post_headers(borrower),
                       json={"on": DAY.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    r = await api.post(f"/v1/lending/loans/{loan_id}/extension", headers=post_headers(borrower),
                       json={"on": days(10).isoformat()})
    assert r.json()["maturity"] == days(60).isoformat()
    r = await api.post(f"/v1/lending/loans/{loan_id}/extension", headers=post_headers(borrower),
                       json={"on": days(11).isoformat()})
    is_problem(r, 409, "extension-limit-reached")

    # early repayment on day 12 of the extended loan: 12 days of interest, the fee first
    r = await api.post(f"/v1/lending/loans/{loan_id}/repayments", headers=post_headers(borrower),
                       json={"amount": {"amount": "10100.00", "currency": "CNY"},
                             "on": days(12).isoformat()})
    assert r.status_code == 201, r.text
    rep = r.json()
    assert [(a["bucket"], a["applied"]["amount"]) for a in rep["allocation"]] == [
        ("due_fees", "10.00"), ("not_due_interest", "32.88"), ("not_due_principal", "10000.00")]
    assert rep["excess"]["amount"] == "57.12" and rep["loan"]["status"] == "repaid"

    st = (await api.get(f"/v1/lending/loans/{loan_id}", headers=bearer(borrower),
                        params={"on": days(12).isoformat()})).json()
    assert st["days_accrued"] == 12 and st["loan"]["interest_paid"]["amount"] == "32.88"
    assert [h["to"] for h in st["history"]] == ["applied", "approved", "disbursed", "active",
                                                "extended", "repaid"]
    r = await api.post(f"/v1/lending/loans/{loan_id}/repayments", headers=post_headers(borrower),
                       json={"amount": {"amount": "1.00", "currency": "CNY"},
                             "on": days(13).isoformat()})
    is_problem(r, 409, "loan-closed")

    # another borrower cannot see it; the back office can
    other = await issue_key("sup-002", "lending:read", "lending:write")
    is_problem(await api.get(f"/v1/lending/loans/{loan_id}", headers=bearer(other)), 404,
               "loan-not-found")
    office = await issue_key("risk", "lending:read", "lending:review")
    pf = (await api.get("/v1/lending/portfolio", headers=bearer(office),
                        params={"on": days(12).isoformat()})).json()
    assert pf["loan_book_equals_ledger"] is True
    async with db.connect() as conn:
        assert (await ledger.verify(conn)).ok


async def test_manual_review_queue_and_bad_input(api, db, issue_key):
    async with db.begin() as conn:
        await good_borrower(conn, "sup-001", imported_on=days(-10))
    borrower = await issue_key("sup-001", "lending:read", "lending:write")
    office = await issue_key("risk", "lending:read", "lending:review")
    r = await api.post("/v1/lending/applications", headers=post_headers(borrower), json={
        "amount": {"amount": "20000.00", "currency": "CNY"}, "term_days": 30,
        "applied_on": DAY.isoformat()})
    assert r.json()["outcome"] == "manual_review"
    loan_id = r.json()["loan"]["id"]
    is_problem(await api.get("/v1/lending/review-queue", headers=bearer(borrower)), 403)
    queue = (await api.get("/v1/lending/review-queue", headers=bearer(office))).json()
    assert [q["loan"]["id"] for q in queue] == [loan_id] and "days old" in queue[0]["why"][0]
    r = await api.post(f"/v1/lending/loans/{loan_id}/decision", headers=post_headers(office),
                       json={"outcome": "approve", "comment": "fresh figures by phone",
                             "on": DAY.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    r = await api.post(f"/v1/lending/loans/{loan_id}/decision", headers=post_headers(office),
                       json={"outcome": "decline", "comment": "again", "on": DAY.isoformat()})
    is_problem(r, 409, "not-in-review")

    for body, code in (
        ({"amount": {"amount": "10000.00", "currency": "CNY"}, "term_days": 10}, "term-out-of-range"),
        ({"amount": {"amount": "1.00", "currency": "CNY"}, "term_days": 30}, "amount-out-of-range"),
        ({"amount": {"amount": "10000.00", "currency": "CNY"}, "term_days": 30,
          "borrower_id": "sup-009"}, "borrower-not-found"),
    ):
        r = await api.post("/v1/lending/applications", headers=post_headers(borrower), json=body)
        is_problem(r, 404 if code.endswith("not-found") else 422, code)
    r = await api.post("/v1/lending/applications", headers=post_headers(borrower), json={
        "amount": {"amount": "-5.00", "currency": "CNY"}, "term_days": 30})
    is_problem(r, 422)
