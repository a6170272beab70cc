"""Idempotency-Key on every POST: replay, conflict, concurrent duplicates, per merchant."""

from __future__ import annotations

import asyncio
import datetime as dt

import sqlalchemy as sa

from ledger.schema import journal_entries
from paycore.api import idempotency
from paycore.schema import idempotency_records
from tests.api.conftest import ENTRY_BODY, bearer, is_problem, make_app

ENTRY = ENTRY_BODY


async def entry_count(db) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(journal_entries)))


def headers(key: str, idem: str | None, **extra: str) -> dict[str, str]:
    h = bearer(key) | extra
    if idem is not None:
        h["Idempotency-Key"] = idem
    return h


async def test_a_retry_replays_the_first_response_exactly_and_posts_nothing(api, db, issue_key):
    key = await issue_key("m1", "payments:write")
    first = await api.post("/v1/probe/entries", json=ENTRY, headers=headers(key, "k-1"))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await api.post("/v1/probe/entries", json=ENTRY, headers=headers(key, "k-1"))
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert await entry_count(db) == 1


async def test_the_same_key_with_another_body_is_409_naming_the_key(api, db, issue_key):
    key = await issue_key("m1", "payments:write")
    assert (await api.post("/v1/probe/entries", json=ENTRY, headers=headers(key, "k-2"))).status_code == 201
    other = ENTRY | {"description": "something else"}
    r = await api.post("/v1/probe/entries", json=other, headers=headers(key, "k-2"))
    body = is_problem(r, 409, "idempotency-key-reused")
    assert body["idempotency_key"] == "k-2" and "'k-2'" in body["detail"]
    # another path with the same body is another request too
    r = await api.post("/v1/probe/boom", json=ENTRY, headers=headers(key, "k-2"))
    is_problem(r, 409, "idempotency-key-reused")
    assert await entry_count(db) == 1


async def test_every_post_needs_a_sane_key(api, db, issue_key):
    key = await issue_key("m1", "payments:write")
    r = await api.post("/v1/probe/entries", json=ENTRY, headers=headers(key, None))
    is_problem(r, 400, "idempotency-key-missing")
    for bad in ("", "x" * 256, "has space"):
        r = await api.post("/v1/probe/entries", json=ENTRY, headers=headers(key, bad))
        is_problem(r, 400, "idempotency-key-invalid")
    # the IETF draft's quoted form is the same key as the bare one
    assert (await api.post("/v1/probe/entries", json=ENTRY, headers=headers(key, '"k-q"'))).status_code == 201
    assert (await api.post("/v1/probe/entries", json=ENTRY, headers=headers(key, "k-q"))).headers[
        "idempotent-replayed"] == "true"
    assert await entry_count(db) == 1


async def test_keys_belong_to_their_merchant(api, db, issue_key):
    a = await issue_key("merchant-a", "payments:write")
    b = await issue_key("merchant-b", "payments:write")
    ra = await api.post("/v1/probe/entries", json=ENTRY, headers=headers(a, "shared-key"))
    other = ENTRY | {"description": "b's own"}
    rb = await api.post("/v1/probe/entries", json=other, headers=headers(b, "shared-key"))
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["merchant"] == "merchant-a" and rb.json()["merchant"] == "merchant-b"
    assert ra.json()["entry_id"] != rb.json()["entry_id"]
    assert await entry_count(db) == 2


async def test_refusals_before_the_route_runs_leave_the_key_free(api, db, issue_key):
    weak = await issue_key("m1", "payments:read")
    strong = await issue_key("m1", "payments:write")
    is_problem(await api.post("/v1/probe/entries", json=ENTRY, headers=headers(weak, "k-3")),
               403, "insufficient-scope")
    broken = {"postings": [{"account": "x", "side": "sideways"}]}
    is_problem(await api.post("/v1/probe/entries", json=broken, headers=headers(strong, "k-3")),
               422, "validation-failed")
    r = await api.post("/v1/probe/entries", json=ENTRY, headers=headers(strong, "k-3"))
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers


async def test_a_domain_error_is_stored_and_replayed_too(api, db, issue_key):
    key = await issue_key("m1", "payments:write")
    unbalanced = ENTRY | {"postings": ENTRY["postings"][:2]}
    first = await api.post("/v1/probe/entries", json=unbalanced, headers=headers(key, "k-4"))
    is_problem(first, 422, "unbalanced-entry")
    again = await api.post("/v1/probe/entries", json=unbalanced, headers=headers(key, "k-4"))
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert await entry_count(db) == 0


async def test_a_500_leaves_the_key_free(api, issue_key):
    key = await issue_key("m1", "payments:write")
    for _ in range(2):
        r = await api.post("/v1/probe/boom", headers=headers(key, "k-5"))
        is_problem(r, 500)
        assert "idempotent-replayed" not in r.headers


async def test_concurrent_duplicates_run_once(api, db, issue_key):
    key = await issue_key("m1", "payments:write")
    responses = await asyncio.gather(*(
        api.post("/v1/probe/entries", json=ENTRY, headers=headers(key, "k-race")) for _ in range(8)))
    created = [r for r in responses if r.status_code == 201]
    assert created and all(r.content == created[0].content for r in created)
    for r in responses:
        if r.status_code != 201:
            is_problem(r, 409, "idempotency-request-in-progress")
            assert r.headers["retry-after"] == "1"
    assert await entry_count(db) == 1


async def test_a_request_still_in_progress_is_409_and_a_stale_claim_is_taken_over(db, issue_key):
    import httpx

    key = await issue_key("m1", "payments:write")
    body = (b'{"description": "capture", "postings": []}')
    fingerprint = idempotency.request_hash("POST", "/v1/probe/entries", b"", body)
    claim = await idempotency.claim(db, "m1", "k-6", fingerprint, method="POST",
                                    path="/v1/probe/entries", lock_seconds=60)
    assert claim.outcome is idempotency.ClaimOutcome.CLAIMED
    h = headers(key, "k-6", **{"content-type": "application/json"})
    for lock_seconds, expect in ((300, 409), (0, 422)):
        app = make_app(db, idempotency_lock_seconds=lock_seconds)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://paycore.test") as client:
            r = await client.post("/v1/probe/entries", content=body, headers=h)
        assert r.status_code == expect, r.text
    # the stale claim was taken over and ran: the ledger refused an entry without postings,
    # and that answer is what a retry now gets
    is_problem(r, 422, "invalid-request")
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(idempotency_records))).one()
    assert (row.state, row.response_status) == ("completed", 422)


async def test_purge_forgets_old_finished_records(api, db, issue_key):
    key = await issue_key("m1", "payments:write")
    await api.post("/v1/probe/entries", json=ENTRY, headers=headers(key, "k-7"))
    assert await idempotency.purge(db, dt.datetime.now(dt.UTC) - dt.timedelta(days=1)) == 0
    assert await idempotency.purge(db, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == 1
