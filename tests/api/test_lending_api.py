"""The lending routes: apply -> decision with reasons, the review queue, disburse, extend,
repay (waterfall), statement, portfolio; a borrower sees only its own loans; errors are
problem+json. SQLite and PostgreSQL."""

from __future__ import annotations

import itertools

import ledger
import lending
from tests.api.conftest import bearer, is_problem
from tests.lending.book import CLEARING, CONFIG, DAY, cny, days, good_borrower

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


async def _named_key(db, merchant: str, holder: str | None, *scopes: str) -> str:
    from paycore.api import create_api_key

    async with db.begin() as conn:
        return (await create_api_key(conn, merchant, scopes, holder=holder)).secret


async def test_an_officer_decides_no_application_of_their_own(api, db):
    """A back-office person who applies for a borrower (the application queued for
    review) cannot approve it: another officer must. Before, the officer was recorded as
    `merchant/key id` and nothing compared it with the applicant: one person could lend."""
    async with db.begin() as conn:
        await good_borrower(conn, "sup-001", imported_on=days(-10))
    wang = await _named_key(db, "risk", "wang", "lending:read", "lending:write",
                            "lending:review")
    li = await _named_key(db, "risk", "li", "lending:read", "lending:review")
    nameless = await _named_key(db, "risk", None, "lending:write", "lending:review")
    body = {"amount": {"amount": "20000.00", "currency": "CNY"}, "term_days": 30,
            "applied_on": DAY.isoformat(), "borrower_id": "sup-001"}
    is_problem(await api.post("/v1/lending/applications", headers=post_headers(nameless),
                              json=body), 403, "key-without-holder")
    r = await api.post("/v1/lending/applications", headers=post_headers(wang), json=body)
    assert r.json()["outcome"] == "manual_review", r.text
    loan_id = r.json()["loan"]["id"]
    decision = {"outcome": "approve", "comment": "I know them", "on": DAY.isoformat()}
    is_problem(await api.post(f"/v1/lending/loans/{loan_id}/decision",
                              headers=post_headers(wang), json=decision), 403, "four-eyes")
    r = await api.post(f"/v1/lending/loans/{loan_id}/decision", headers=post_headers(li),
                       json=decision)
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text


async def test_manual_review_queue_and_bad_input(api, db, issue_key):
    async with db.begin() as conn:
        await good_borrower(conn, "sup-001", imported_on=days(-10))
    borrower = await issue_key("sup-001", "lending:read", "lending:write")
    office = await _named_key(db, "risk", "li", "lending:read", "lending:review")
    r = await api.post("/v1/lending/applications", headers=post_headers(borrower), json={
        "amount": {"amount": "20000.00", "currency": "CNY"}, "term_days": 30,
        "applied_on": DAY.isoformat()})
    assert r.json()["outcome"] == "manual_review"
    loan_id = r.json()["loan"]["id"]
    # deciding what underwriting queued is four eyes on credit: a person, never the
    # borrower, never who applied
    nameless = await issue_key("risk", "lending:read", "lending:review")
    is_problem(await api.post(f"/v1/lending/loans/{loan_id}/decision",
                              headers=post_headers(nameless),
                              json={"outcome": "approve", "comment": "ok"}),
               403, "key-without-holder")
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


async def test_the_credit_line_route_shows_and_the_routes_enforce_line_less_exposure(
        api, db, issue_key):
    """Issue #15 §1 over HTTP: a loan's own proceeds do not raise the line; the route shows
    the figures `paycore borrowers line` prints, and a draw beyond them is refused."""
    async with db.begin() as conn:
        await good_borrower(conn, "sup-001", receivables="")  # 50,000.00 from sales alone
    borrower = await issue_key("sup-001", "lending:read", "lending:write")

    async def line() -> dict[str, object]:
        r = await api.get("/v1/lending/borrowers/sup-001/credit-line", headers=bearer(borrower),
                          params={"on": DAY.isoformat()})
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        async with db.connect() as conn:  # what the CLI prints, from the same function
            cli = await lending.current_credit_line(conn, "sup-001", "supply_chain", DAY, CONFIG)
        assert body["steps"] == cli.explain()
        assert body["available"] == {"amount": str(ledger.from_minor(cli.available_minor,
                                                                     "CNY").amount),
                                     "currency": "CNY"}
        return body

    first = await line()
    assert first["limit"]["amount"] == "50000.00" and first["available"]["amount"] == "50000.00"
    r = await api.post("/v1/lending/applications", headers=post_headers(borrower), json={
        "amount": {"amount": "50000.00", "currency": "CNY"}, "term_days": 30,
        "applied_on": DAY.isoformat()})
    assert r.json()["outcome"] == "approve", r.text
    loan_id = r.json()["loan"]["id"]
    r = await api.post(f"/v1/lending/loans/{loan_id}/disbursement", headers=post_headers(borrower),
                       json={"on": DAY.isoformat()})
    assert r.status_code == 200, r.text
    after = await line()
    assert after["limit"]["amount"] == "50000.00"  # the proceeds on the payable do not count
    assert after["exposure"]["amount"] == "50000.00" and after["available"]["amount"] == "0.00"

    r = await api.post("/v1/lending/applications", headers=post_headers(borrower), json={
        "amount": {"amount": "40000.00", "currency": "CNY"}, "term_days": 30,
        "applied_on": DAY.isoformat()})
    body = r.json()
    assert body["outcome"] == "decline" and body["credit_line_available"]["amount"] == "0.00"
    assert "over-line" in [x["code"] for x in body["reasons"]]

    # another borrower's line does not exist for this key; the back office sees it
    is_problem(await api.get("/v1/lending/borrowers/sup-002/credit-line",
                             headers=bearer(borrower)), 404, "borrower-not-found")
    office = await issue_key("risk", "lending:read", "lending:review")
    r = await api.get("/v1/lending/borrowers/sup-001/credit-line", headers=bearer(office),
                      params={"on": DAY.isoformat()})
    assert r.json()["available"]["amount"] == "0.00"
    async with db.connect() as conn:
        assert (await ledger.verify(conn)).ok


async def test_a_disbursement_beyond_the_line_is_a_problem_and_posts_nothing(api, db, issue_key):
    async with db.begin() as conn:
        await good_borrower(conn, "sup-001")  # 40,000.00 from receivables + 50,000.00
    borrower = await issue_key("sup-001", "lending:read", "lending:write")
    r = await api.post("/v1/lending/applications", headers=post_headers(borrower), json={
        "amount": {"amount": "90000.00", "currency": "CNY"}, "term_days": 30,
        "applied_on": DAY.isoformat()})
    assert r.json()["outcome"] == "approve", r.text
    loan_id = r.json()["loan"]["id"]
    async with db.begin() as conn:  # the receivables behind the line are paid out first
        await ledger.post(conn, ledger.EntryRequest(
            "payout:sup-001:all", "payout", effective_date=DAY, postings=[
                ledger.Posting("2202.payable.sup-001", debit=cny("50000.00")),
                ledger.Posting(CLEARING, credit=cny("50000.00"))]))
        entries = (await ledger.verify(conn)).entries
    r = await api.post(f"/v1/lending/loans/{loan_id}/disbursement", headers=post_headers(borrower),
                       json={"on": DAY.isoformat()})
    body = is_problem(r, 422, "credit-line-exceeded")
    assert "50,000.00 CNY" in str(body["detail"])
    async with db.connect() as conn:
        assert (await ledger.verify(conn)).entries == entries
        assert (await lending.load_loan(conn, loan_id, CONFIG)).status.value == "approved"


async def test_a_payout_disbursement_without_a_verified_account_is_a_problem_and_posts_nothing(
        api, db, issue_key):
    """Issue #15 follow-up: loan proceeds go only to the borrower's verified account in the
    register; without one the loan stays approved and the answer says what to do."""
    async with db.begin() as conn:
        await good_borrower(conn, "sup-001")
    borrower = await issue_key("sup-001", "lending:read", "lending:write")
    r = await api.post("/v1/lending/applications", headers=post_headers(borrower), json={
        "amount": {"amount": "10000.00", "currency": "CNY"}, "term_days": 30,
        "applied_on": DAY.isoformat()})
    loan_id = r.json()["loan"]["id"]
    async with db.connect() as conn:
        entries = (await ledger.verify(conn)).entries
    r = await api.post(f"/v1/lending/loans/{loan_id}/disbursement", headers=post_headers(borrower),
                       json={"on": DAY.isoformat(), "mode": "payout"})
    body = is_problem(r, 422, "beneficiary-account-not-usable")
    assert "stays approved" in body["detail"] and "no bank account registered" in body["detail"]
    async with db.connect() as conn:
        assert (await ledger.verify(conn)).entries == entries
        assert (await lending.load_loan(conn, loan_id, CONFIG)).status.value == "approved"
