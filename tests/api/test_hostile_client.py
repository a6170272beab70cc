"""The API under a hostile client (issue #15 §7): every request that could never be valid is
refused before it reaches a route, a bank or the database, with a problem a person can act
on, and the books and tables are untouched. On SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import json
from typing import Annotated

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Message

import gateways
import ledger
from gateways.sandbox import SandboxFleet
from gateways.schema import notification_rejections, payment_attempts, payment_intents
from paycore.api import Engine, Principal, requires
from paycore.schema import api_payout_owners, api_rate_limits
from tests.api.conftest import ENTRY_BODY, bearer, is_problem, make_app
from tests.api.test_payments import order, shop


async def _entries(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        entries = ledger.metadata.tables["journal_entries"]
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(entries)))


# -- an idempotent replay is authorised first ----------------------------------------------


async def test_a_replay_is_refused_to_a_key_without_the_routes_scope(api, issue_key, db):
    writer = await issue_key("m1", "payments:write")
    reader = await issue_key("m1", "payments:read")
    first = await api.post("/v1/probe/entries", json=ENTRY_BODY,
                           headers=bearer(writer) | {"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    again = await api.post("/v1/probe/entries", json=ENTRY_BODY,
                           headers=bearer(reader) | {"Idempotency-Key": "k-1"})
    body = is_problem(again, 403, "insufficient-scope")
    assert body["required_scope"] == "payments:write"
    assert "idempotent-replayed" not in again.headers and "entry_id" not in again.text
    # the writer still gets its replay
    replay = await api.post("/v1/probe/entries", json=ENTRY_BODY,
                            headers=bearer(writer) | {"Idempotency-Key": "k-1"})
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert await _entries(db) == 1


# -- NUL bytes -----------------------------------------------------------------------------


async def test_a_nul_byte_anywhere_is_a_422_and_nothing_is_written(api, issue_key, db):
    key = await issue_key("m1", "admin")
    for path in ("/v1/payouts/%00", "/v1/payment-intents?order_id=a%00b",
                 "/v1/ledger/accounts?code_prefix=%00", "/v1/payment-intents/pi%00x"):
        body = is_problem(await api.get(path, headers=bearer(key)), 422, "nul-byte")
        assert "NUL" in str(body["detail"])
    for description in ("a\x00b", "\x00"):
        entry = ENTRY_BODY | {"description": description}
        r = await api.post("/v1/probe/entries", json=entry,
                           headers=bearer(key) | {"Idempotency-Key": f"nul-{len(description)}"})
        is_problem(r, 422, "nul-byte")
    # in a key of the JSON document, and as a raw byte
    raw = json.dumps(ENTRY_BODY)[:-1] + ', "x\\u0000": 1}'
    r = await api.post("/v1/probe/entries", content=raw.encode(),
                       headers=bearer(key) | {"Idempotency-Key": "nul-key",
                                              "Content-Type": "application/json"})
    is_problem(r, 422, "nul-byte")
    r = await api.post("/v1/probe/entries", content=b'{"description": "a\x00"}',
                       headers=bearer(key) | {"Idempotency-Key": "nul-raw",
                                              "Content-Type": "application/json"})
    is_problem(r, 422, "nul-byte")
    assert await _entries(db) == 0
    # an escaped backslash followed by "u0000" is text, not a NUL
    fine = ENTRY_BODY | {"description": "C:\\u0000"}
    r = await api.post("/v1/probe/entries", json=fine,
                       headers=bearer(key) | {"Idempotency-Key": "not-nul"})
    assert r.status_code == 201, r.text
    # the key stays free for a corrected retry
    r = await api.post("/v1/probe/entries", json=ENTRY_BODY,
                       headers=bearer(key) | {"Idempotency-Key": "nul-1"})
    assert r.status_code == 201, r.text


async def test_a_nul_byte_inside_a_statement_file_is_a_422(api, issue_key):
    key = await issue_key("m1", "reconciliation:read", "reconciliation:write")
    r = await api.put("/v1/reconciliation/bank-accounts/icbc", json={"currency": "CNY"},
                      headers=bearer(key))
    assert r.status_code == 200, r.text
    csv = ("date,amount,balance,reference,description\n"
           "2026-01-02,10.00,10.00,ref\x001,pay\x00ment\n")
    body = {"file_name": "x.csv", "content_base64": base64.b64encode(csv.encode()).decode(),
            "format": "csv",
            "csv_profile": {"name": "p", "account": "icbc", "date_column": "date",
                            "amount_column": "amount", "balance_column": "balance",
                            "currency": "CNY", "reference_column": "reference",
                            "description_columns": ["description"]}}
    r = await api.post("/v1/reconciliation/bank-accounts/icbc/statements", json=body,
                       headers=bearer(key) | {"Idempotency-Key": "nul-file"})
    is_problem(r, 422, "nul-byte")


# -- bodies: authenticated first, capped, and a refused PUT writes nothing ------------------


async def _asgi(app: FastAPI, method: str, path: str, headers: list[tuple[bytes, bytes]],
                chunks: list[bytes]) -> tuple[int, bytes, int]:
    """Call `app` directly; returns status, body and how many body chunks it read."""
    read = 0
    pending = list(chunks)

    async def receive() -> Message:
        nonlocal read
        if not pending:
            return {"type": "http.disconnect"}
        read += 1
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000),
             "server": ("paycore.test", 80)}
    await app(scope, receive, send)
    status = next(int(m["status"]) for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, read


async def test_a_body_is_read_only_after_the_key_is_checked(app, issue_key):
    reader = await issue_key("m1", "reconciliation:read")
    mb = b"x" * (1 << 20)
    for headers, status in (
        ([], 401),                                          # no key
        ([(b"authorization", b"Bearer pck_nope_nope")], 401),  # a wrong key
        ([(b"authorization", f"Bearer {reader}".encode())], 403),  # a key without the scope
    ):
        got, body, read = await _asgi(app, "PUT", "/v1/reconciliation/bank-accounts/icbc",
                                      [*headers, (b"content-type", b"application/json")],
                                      [mb] * 200)
        assert got == status, body
        assert read == 0, f"{read} chunks of the body were read before refusing with {status}"


async def test_every_body_is_capped_before_and_while_it_is_read(db, issue_key):
    from tests.ledger.chart import open_chart
    await open_chart(db)
    app = make_app(db, max_body_bytes=4096)
    writer = await issue_key("m1", "reconciliation:write")
    auth = [(b"authorization", f"Bearer {writer}".encode()),
            (b"content-type", b"application/json")]
    # declared too large: refused before a byte is read
    got, body, read = await _asgi(app, "PUT", "/v1/reconciliation/bank-accounts/icbc",
                                  [*auth, (b"content-length", str(200 << 20).encode())],
                                  [b"x" * (1 << 20)] * 200)
    assert (got, read) == (413, 0), body
    assert json.loads(body)["code"] == "body-too-large"
    # streamed without a length: refused once past the cap, the rest never read
    got, body, read = await _asgi(app, "PUT", "/v1/reconciliation/bank-accounts/icbc", auth,
                                  [b"x" * 1024] * 200)
    assert got == 413 and read <= 5, (got, read)
    # the same on a POST and a GET
    for method, path in (("POST", "/v1/probe/entries"), ("GET", "/v1/ledger/trial-balance")):
        got, body, read = await _asgi(app, method, path, [*auth, (b"idempotency-key", b"c-1")],
                                      [b"x" * 1024] * 200)
        assert got in (401, 403, 413) and read <= 5, (method, got, read)


async def test_a_refused_put_has_written_nothing(api, issue_key):
    key = await issue_key("m1", "reconciliation:read", "reconciliation:write")
    url = "/v1/reconciliation/bank-accounts/icbc"
    r = await api.put(url, json={"currency": "CNY"}, headers=bearer(key))
    assert r.status_code == 200, r.text
    for bad in ({"currency": "QQQ"},                        # no such currency
                {"currency": "USD"},                        # its ledger accounts are CNY
                {"currency": "CNY", "tolerance": {"amount": "1.00", "currency": "USD"}}):
        r = await api.put(url, json=bad, headers=bearer(key))
        is_problem(r, 422)
    listed = await api.get("/v1/reconciliation/bank-accounts", headers=bearer(key))
    assert [(b["code"], b["currency"]) for b in listed.json()] == [("icbc", "CNY")], listed.text
    # a new account in an unknown currency opens nothing either
    r = await api.put("/v1/reconciliation/bank-accounts/abc", json={"currency": "QQQ"},
                      headers=bearer(key))
    is_problem(r, 422)
    async with api._transport.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        found = await ledger.list_accounts(conn)
    assert [a.code for a in found if a.code.endswith(".abc")] == []


# -- dates, times and ids the books cannot hold ---------------------------------------------


async def test_dates_and_ids_out_of_range_are_422(api, issue_key):
    key = await issue_key("m1", "admin")
    h = bearer(key)
    acct = "/v1/ledger/accounts/1102.clearing.icbc"
    for path in (f"{acct}/balance?as_of=9999-12-31", f"{acct}/balance?as_of=0001-01-01",
                 f"{acct}/balance?as_of=9999-12-31T23:59:59Z", f"{acct}/balance?as_of=0.5",
                 f"{acct}/balance?as_of=1700000000", f"{acct}/balance?as_of=2026-02-30",
                 f"{acct}/statement?from=0001-01-01&to=2026-01-01",
                 f"{acct}/statement?from=2026-01-01&to=9999-12-31",
                 "/v1/lending/portfolio?on=9999-12-31",
                 "/v1/reconciliation/bank-accounts/icbc/report?date=0001-01-01"):
        r = await api.get(path, headers=h)
        is_problem(r, 422, "validation-failed")
    for exception_id in (2**63, 2**64, -1, 0):
        r = await api.post(f"/v1/reconciliation/exceptions/{exception_id}/resolve",
                           json={"action": "write_off", "reason": "x"},
                           headers=h | {"Idempotency-Key": f"id-{exception_id}"})
        is_problem(r, 422, "validation-failed")
    # the largest id there is, and in-range times, are fine (404 / 200)
    r = await api.post(f"/v1/reconciliation/exceptions/{2**63 - 1}/resolve",
                       json={"action": "write_off", "reason": "x"},
                       headers=h | {"Idempotency-Key": "id-max"})
    assert r.status_code in (404, 409), r.text  # no such exception
    for as_of in ("2026-01-01", "2026-01-01T10:00:00Z", "2026-01-01T10:00:00%2B08:00"):
        r = await api.get(f"{acct}/balance?as_of={as_of}", headers=h)
        assert r.status_code == 200, (as_of, r.text)
    r = await api.get(f"{acct}/balance?as_of=2026-01-01T10:00:00", headers=h)
    is_problem(r, 422, "invalid-request")  # a time without its zone is ambiguous


async def test_a_date_in_a_body_out_of_range_is_422(api, issue_key):
    key = await issue_key("m1", "admin")
    r = await api.post("/v1/lending/applications",
                       json={"amount": {"amount": "100.00", "currency": "CNY"}, "term_days": 30,
                             "applied_on": "9999-12-31"},
                       headers=bearer(key) | {"Idempotency-Key": "far"})
    is_problem(r, 422, "validation-failed")


# -- amounts -------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "code"), [
    *[(text, "validation-failed") for text in (
        "10.00\n", " 10.00", "10.00 ", "\uff11\uff10.00", "\u0661\u0660.00", "1e2", "10.", ".5", "+10.00",
        "-10.00", "10,00", "", "0x10", "NaN", "Infinity")],
    *[(text, "invalid-amount") for text in ("10.001", "0", "0.00")],
])
async def test_an_amount_that_is_not_plain_ascii_decimal_in_the_currency_is_422(
        api, issue_key, db, amount, code):
    key = await issue_key("m1", "payments:write")
    entry = json.loads(json.dumps(ENTRY_BODY))
    entry["postings"][0]["amount"]["amount"] = amount
    r = await api.post("/v1/probe/entries", json=entry,
                       headers=bearer(key) | {"Idempotency-Key": "amt"})
    body = is_problem(r, 422, code)
    assert amount.strip() in str(body["detail"]) or "amount" in str(body["detail"])
    assert await _entries(db) == 0


async def test_an_amount_finer_than_its_currency_is_refused(api, issue_key):
    key = await issue_key("m1", "payments:write")
    entry = json.loads(json.dumps(ENTRY_BODY))
    entry["postings"][0]["amount"] = {"amount": "100.5", "currency": "JPY"}
    r = await api.post("/v1/probe/entries", json=entry,
                       headers=bearer(key) | {"Idempotency-Key": "jpy"})
    body = is_problem(r, 422, "invalid-amount")
    assert "JPY" in str(body["detail"])


async def test_a_currency_or_amount_the_bank_cannot_take_is_422_before_any_write(db, issue_key):
    key = await issue_key("shop-a", "payments:read", "payments:write", "payouts:write")
    async with shop(db) as s:
        cases = [("restbank", "999999999999999.99", "CNY"),   # past its 15-digit field
                 ("unionpay", "10000000000.00", "CNY"),       # past its 12-digit txnAmt
                 ("smbank", "999999999999999.99", "CNY"),
                 ("unionpay", "10.00", "USD"),                # a CNY-only bank
                 ("restbank", "10.00", "USD")]
        for n, (bank, amount, currency) in enumerate(cases):
            body = order(100 + n, bank) | {"amount": {"amount": amount, "currency": currency}}
            r = await s.post("/v1/payment-intents", key, f"wide-{n}", body)
            problem = is_problem(r, 422, "amount-not-supported")
            assert bank in str(problem["detail"]), problem
        async with db.connect() as conn:
            for table in (payment_intents, payment_attempts):
                assert await conn.scalar(sa.select(sa.func.count()).select_from(table)) == 0
        # what fits is still a checkout
        r = await s.post("/v1/payment-intents", key, "fits", order(200, "unionpay", "9999999999.99"))
        assert r.status_code == 201 and r.json()["status"] == "pending", r.text


async def test_a_payout_goes_only_to_banks_that_can_carry_it():
    async with SandboxFleet.start(("unionpay", "restbank")) as fleet:
        banks = gateways.BankDirectory(fleet.adapters().values())
        wide = Money("10000000000.00", "CNY")  # 13 digits of fen: past UnionPay's txnAmt
        assert gateways.taking(banks, ["unionpay", "restbank"], wide) == ["restbank"]
        with pytest.raises(gateways.AmountNotSupported) as refused:
            gateways.taking(banks, ["unionpay", "restbank"], Money("10.00", "USD"))
        assert set(refused.value.refusals) == {"unionpay", "restbank"}
        assert "CNY only" in str(refused.value)


# -- unhandled database errors never print their parameters --------------------------------


def _leaky_router() -> APIRouter:
    router = APIRouter()

    @router.get("/v1/probe/leak")
    async def leak(engine: Engine, _: Annotated[Principal, requires("payments:read")]) -> None:
        async with engine.begin() as conn:
            # created_at is NOT NULL: the statement fails carrying the account number
            await conn.execute(api_payout_owners.insert().values(
                payout_id="po-leak", merchant_id="6222020200112233", created_at=None))

    return router


async def test_a_failing_statement_does_not_log_its_parameters(db, issue_key, capsys):
    app = make_app(db)
    app.include_router(_leaky_router())
    key = await issue_key("m1", "payments:read")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://paycore.test") as client:
        r = await client.get("/v1/probe/leak", headers=bearer(key))
    is_problem(r, 500)
    out = capsys.readouterr()
    logged = out.out + out.err
    assert "http.unhandled_error" in logged
    assert "IntegrityError" in logged and "api_payout_owners" in logged  # still diagnosable
    assert "6222020200112233" not in logged and "0112233" not in logged, logged
    assert "6222020200112233" not in r.text


# -- bank notifications: bounded ----------------------------------------------------------


async def _rejections(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(
            sa.select(sa.func.count()).select_from(notification_rejections)))


async def test_a_notification_for_an_unknown_bank_is_404_and_writes_nothing(db, issue_key):
    async with shop(db) as s:
        for bank in ("nobank", "x" * 64, "restbank2"):
            r = await s.client.post(f"/v1/notifications/{bank}", content=b"garbage")
            assert r.status_code == 404, r.text
        assert await _rejections(db) == 0
        # a known bank's garbage is still recorded (the bank's protocol answer)
        r = await s.client.post("/v1/notifications/restbank", content=b"garbage")
        assert r.status_code == 503 and r.text != "unknown bank"  # "send it again", signed
        assert await _rejections(db) == 1
        # what a rejected one leaves behind is bounded: headers, and the body only as digest
        flood = {f"x-h{n}": "v" * 100 for n in range(100)}  # within uvicorn's header limit
        r = await s.client.post("/v1/notifications/restbank", content=b"y" * 500_000,
                                headers=flood)
        async with db.connect() as conn:
            row = (await conn.execute(sa.select(notification_rejections)
                                      .order_by(notification_rejections.c.id.desc()))).first()
        assert row is not None and row.body_size == 500_000
        assert len(row.headers) == 40


async def test_notifications_are_rate_limited_per_source_across_workers(db):
    async with SandboxFleet.start(("restbank",)) as fleet:
        banks = gateways.BankDirectory([fleet.adapter("restbank")])
        # two app instances on one database stand for two worker processes
        workers = [make_app(db, notification_rate_limit=3, notification_rate_window_seconds=3600)
                   for _ in range(2)]
        for w in workers:
            w.state.banks = banks
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=w, client=(ip, 1)),
                                     base_url="http://paycore.test")
                   for w, ip in zip(workers, ("127.0.0.11", "127.0.0.11"), strict=True)]
        statuses = []
        for n in range(5):
            r = await clients[n % 2].post("/v1/notifications/restbank", content=b"garbage")
            statuses.append(r.status_code)
        assert statuses[3:] == [429, 429], statuses
        assert all(s != 429 for s in statuses[:3]), statuses
        limited = await clients[0].post("/v1/notifications/restbank", content=b"garbage")
        assert limited.headers.get("retry-after")
        assert await _rejections(db) == 3
        # another source has its own allowance
        other = httpx.AsyncClient(transport=httpx.ASGITransport(app=workers[0],
                                                                client=("127.0.0.12", 1)),
                                  base_url="http://paycore.test")
        r = await other.post("/v1/notifications/restbank", content=b"garbage")
        assert r.status_code != 429
        for c in [*clients, other]:
            await c.aclose()


async def test_only_notifications_that_fail_verification_count_against_an_address(db, issue_key):
    """A bank's verified notifications are never throttled, however many: only forged,
    stale, replayed or malformed ones count, and past the limit the address is refused
    before any signature is checked — the bank's genuine ones too, until the window ends."""
    key = await issue_key("shop-a", "payments:read", "payments:write")
    async with shop(db, notification_rate_limit=2, notification_rate_window_seconds=3600) as s:
        for n in range(5):  # five verified notifications from one address, limit 2
            r = await s.post("/v1/payment-intents", key, f"c-{n}", order(n, "restbank"))
            assert r.status_code == 201, r.text
            await s.pay(r.json())
            got = await s.client.get(f"/v1/payment-intents/{r.json()['id']}",
                                     headers=bearer(key))
            assert got.json()["status"] == "succeeded", got.json()
        assert await _rejections(db) == 0
        async with db.connect() as conn:  # each verified one's count was given back
            assert (await conn.execute(sa.select(sa.func.coalesce(sa.func.sum(
                api_rate_limits.c.hits), 0)))).scalar_one() == 0
        # two that fail verification reach the limit; a third is refused unread
        for _ in range(2):
            r = await s.client.post("/v1/notifications/restbank", content=b"garbage")
            assert r.status_code != 429
        assert await _rejections(db) == 2
        r = await s.client.post("/v1/notifications/restbank", content=b"garbage")
        assert r.status_code == 429 and r.headers.get("retry-after")
        assert "failed the bank's verification" in r.json()["detail"]
        assert await _rejections(db) == 2
        # from now on the address's genuine notifications wait too (the bank sends them
        # again): the payment is not booked while it is refused
        r = await s.post("/v1/payment-intents", key, "c-late", order(9, "restbank"))
        await s.pay(r.json())
        got = await s.client.get(f"/v1/payment-intents/{r.json()['id']}", headers=bearer(key))
        assert got.json()["status"] == "pending", got.json()


async def test_a_request_no_route_takes_has_its_body_left_unread(app, issue_key):
    """Before any key is checked, an unknown path or a method the path lacks (OPTIONS
    included) must not make the server buffer a body: it answers 404/405 unread."""
    writer = await issue_key("m1", "reconciliation:write")
    for method, path, status in (("POST", "/v1/nowhere", 404), ("PUT", "/no/such/page", 404),
                                 ("OPTIONS", "/v1/reconciliation/bank-accounts/icbc", 405),
                                 ("DELETE", "/v1/ledger/trial-balance", 405)):
        for headers in ([], [(b"authorization", f"Bearer {writer}".encode())]):
            got, body, read = await _asgi(
                app, method, path, [*headers, (b"content-type", b"application/json"),
                                    (b"content-length", str(200 << 20).encode())],
                [b"x" * (1 << 20)] * 200)
            assert (got, read) == (status, 0), (method, path, got, read, body[:200])
