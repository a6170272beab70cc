"""Checkout through the API end to end: the sandbox banks (real HTTP servers on loopback,
signing with their own keys) and the API under uvicorn, the banks notifying the API's
notification routes; on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

import gateways
from gateways.sandbox import Fault, SandboxFleet, SandboxSettings
from gateways.sandbox.book import MovementKind
from paycore.api import create_api_key
from paycore.supplier_bindings import bind_supplier
from tests.api.conftest import bearer, is_problem, make_app
from tests.api.test_server import serving

BANKS = ("restbank", "unionpay", "smbank")
FAST = SandboxSettings(hang_seconds=dt.timedelta(seconds=1),
                       late_notify_seconds=dt.timedelta(milliseconds=200),
                       retry_delays=(dt.timedelta(milliseconds=20), dt.timedelta(milliseconds=50),
                                     dt.timedelta(milliseconds=100)),
                       opening_balance_minor=100_000_000)


@dataclass
class Shop:
    client: httpx.AsyncClient
    fleet: SandboxFleet
    banks: gateways.BankDirectory
    engine: AsyncEngine
    app: FastAPI

    async def post(self, path: str, key: str, idem: str, json: object) -> httpx.Response:
        return await self.client.post(path, json=json, headers=bearer(key) | {"Idempotency-Key": idem})

    async def pay(self, intent: dict[str, object]) -> None:
        action = intent["next_action"]
        assert isinstance(action, dict), intent
        instruction = gateways.PaymentInstruction(method=action["method"], url=action["url"],
                                                  fields=action["fields"])
        attempt = intent["attempt"]
        assert isinstance(attempt, dict)
        result = await self.fleet.bank(attempt["bank"]).customer_pays(instruction)
        assert result.status_code == 200 and result.paid, result.text
        await self.fleet.drain()


@contextlib.asynccontextmanager
async def shop(engine: AsyncEngine, **settings: object) -> AsyncIterator[Shop]:
    async with SandboxFleet.start(BANKS, settings=FAST, client_timeout=dt.timedelta(seconds=5)) as fleet:
        app = make_app(engine, **settings)
        async with (app.router.lifespan_context(app), serving(app) as base,
                    httpx.AsyncClient(base_url=base, trust_env=False) as client):
            banks = gateways.BankDirectory([fleet.adapter(code) for code in BANKS],
                                           notify_base_url=f"{base}/v1/notifications")
            app.state.banks = banks
            async with engine.begin() as conn:
                await gateways.set_supplier_terms(conn, gateways.SupplierTerms(
                    "sup-1", Decimal("0.03")))
            yield Shop(client, fleet, banks, engine, app)


async def registered_account(s: Shop, merchant: str, supplier: str) -> str:
    """The merchant bound to the supplier, whose account is registered and was verified by
    a second person days ago (past the cooling-off)."""
    onboarded = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    async with s.engine.begin() as conn:
        await bind_supplier(conn, merchant, supplier, actor="user:ops")
        account = await gateways.add_account(conn, supplier, holder_name="Hangzhou Mugs Co.",
                                             account_number="6222020200112233445",
                                             bank_name="ICBC Hangzhou", actor="user:onboarding",
                                             now=onboarded)
        await gateways.verify_account(conn, account.id, actor="user:compliance", now=onboarded)
    return account.id


def order(n: int, bank: str, amount: str = "100.00") -> dict[str, object]:
    return {"order_id": f"ord-{n}", "supplier_id": "sup-1", "bank": bank,
            "amount": {"amount": amount, "currency": "CNY"}, "description": "two mugs",
            "return_url": "http://127.0.0.1/shop/return"}


async def test_checkout_refund_payout_through_the_api(db, issue_key):
    key = await issue_key("shop-a", "payments:read", "payments:write", "refunds:write",
                          "payouts:read", "payouts:write", "ledger:read")
    other = await issue_key("shop-b", "payments:read", "payouts:read", "refunds:write")
    async with shop(db) as s:
        paid = {}
        for n, bank in enumerate(BANKS):
            r = await s.post("/v1/payment-intents", key, f"create-{n}", order(n, bank))
            assert r.status_code == 201, r.text
            intent = r.json()
            assert intent["status"] == "pending" and intent["bank"] == bank
            assert intent["next_action"]["url"].startswith("http://127.0.0.1:")
            if bank == "unionpay":
                assert intent["next_action"]["type"] == "form_post"
                assert intent["next_action"]["fields"]["txnAmt"] == "10000"  # fen
            # the bank notifies twice; its first notification carries a broken signature
            s.fleet.bank(bank).faults.set(intent["attempt"]["id"], Fault.DUPLICATE_NOTIFY,
                                          Fault.BAD_SIGNATURE)
            await s.pay(intent)
            r = await s.client.get(f"/v1/payment-intents/{intent['id']}", headers=bearer(key))
            got = r.json()
            assert got["status"] == "succeeded", got
            assert got["captured"] == {"amount": "100.00", "currency": "CNY"}
            assert got["commission"]["amount"] == "3.00" and got["next_action"] is None
            paid[bank] = got

        # the same order again, under another key, is the same intent
        r = await s.post("/v1/payment-intents", key, "create-again", order(0, "restbank"))
        assert r.json()["id"] == paid["restbank"]["id"]
        r = await s.post("/v1/payment-intents", key, "create-dup",
                         order(0, "restbank", amount="90.00"))
        is_problem(r, 409, "duplicate-order")

        # another merchant sees none of it
        intent_id = paid["restbank"]["id"]
        is_problem(await s.client.get(f"/v1/payment-intents/{intent_id}", headers=bearer(other)),
                   404, "intent-not-found")
        assert (await s.client.get("/v1/payment-intents", headers=bearer(other))).json()["data"] == []
        r = await s.post(f"/v1/payment-intents/{intent_id}/refunds", other, "steal",
                         {"amount": {"amount": "1.00", "currency": "CNY"}})
        is_problem(r, 404, "intent-not-found")
        listed = (await s.client.get("/v1/payment-intents", params={"limit": 2},
                                     headers=bearer(key))).json()
        assert len(listed["data"]) == 2 and listed["has_more"] is True

        # a partial refund, retried with the same key: one refund
        body = {"amount": {"amount": "30.00", "currency": "CNY"}, "reason": "one mug broke"}
        first = await s.post(f"/v1/payment-intents/{intent_id}/refunds", key, "refund-1", body)
        assert first.status_code == 201, first.text
        assert first.json()["status"] in ("succeeded", "pending")
        again = await s.post(f"/v1/payment-intents/{intent_id}/refunds", key, "refund-1", body)
        assert again.content == first.content
        await s.fleet.drain()
        refunds = (await s.client.get(f"/v1/payment-intents/{intent_id}/refunds",
                                      headers=bearer(key))).json()["data"]
        assert [r["amount"]["amount"] for r in refunds] == ["30.00"]
        r = await s.post(f"/v1/payment-intents/{intent_id}/refunds", key, "refund-2",
                         {"amount": {"amount": "70.01", "currency": "CNY"}})
        body_ = is_problem(r, 422, "refund-exceeds-captured")
        assert body_["intent_id"] == intent_id and "70.00" in body_["refundable"]
        is_problem(await s.client.get(f"/v1/refunds/{refunds[0]['id']}", headers=bearer(other)),
                   404, "refund-not-found")
        # a paid intent cannot be canceled
        r = await s.post(f"/v1/payment-intents/{intent_id}/cancel", key, "cancel-1", {})
        is_problem(r, 409, "illegal-transition")

        # the supplier is paid out part of what the marketplace owes it: to its verified
        # account, approved by a second person (tests/api/test_payout_controls.py has more)
        account = await registered_account(s, "shop-a", "sup-1")
        payout = {"supplier_id": "sup-1", "amount": {"amount": "150.00", "currency": "CNY"},
                  "account_id": account, "description": "weekly"}
        # the maker of a payout is one side of four eyes: a person, not a holder-less key
        is_problem(await s.post("/v1/payouts", key, "payout-0", payout), 403,
                   "key-without-holder")
        async with s.engine.begin() as conn:
            maker = (await create_api_key(conn, "shop-a", ("payouts:write",),
                                          holder="li")).secret
        r = await s.post("/v1/payouts", maker, "payout-1", payout)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["beneficiary"]["account_number"] == "***3445"
        assert made["status"] == "pending_approval"
        assert "6222020200112233445" not in r.text
        async with s.engine.begin() as conn:
            await gateways.approve_payout(conn, made["id"], actor="user:checker",
                                          controls=gateways.PayoutControls())
        await gateways.submit_payout(s.engine, s.banks, made["id"])
        await s.fleet.drain()
        got = (await s.client.get(f"/v1/payouts/{made['id']}", headers=bearer(key))).json()
        assert got["status"] == "succeeded" and got["amount"]["amount"] == "150.00"
        is_problem(await s.client.get(f"/v1/payouts/{made['id']}", headers=bearer(other)),
                   404, "not-found")
        assert [p["id"] for p in (await s.client.get("/v1/payouts", headers=bearer(key))).json()[
            "data"]] == [made["id"]]
        r = await s.post("/v1/payouts", maker, "payout-2",
                         payout | {"amount": {"amount": "1000.00", "currency": "CNY"}})
        is_problem(r, 422, "balance-limit-exceeded")

        # the books agree with the banks' own books, and prove out
        for code in BANKS:
            book = s.fleet.bank(code).book
            captured = sum(m.amount_minor for m in book.by_kind(MovementKind.CAPTURE))
            refunded = sum(m.amount_minor for m in book.by_kind(MovementKind.REFUND))
            bal = (await s.client.get(f"/v1/ledger/accounts/1102.clearing.{code}/balance",
                                      headers=bearer(key))).json()
            assert Decimal(bal["posted"]["amount"]) * 100 == captured - refunded
        payable = (await s.client.get("/v1/ledger/accounts/2202.payable.sup-1/balance",
                                      headers=bearer(key))).json()
        assert payable["posted"]["amount"] == "111.90"  # 3 x 97.00 - 29.10 - 150.00
        assert (await s.client.get("/v1/ledger/verify", headers=bearer(key))).json()["ok"] is True
        health = (await s.client.get("/v1/banks/health", headers=bearer(key))).json()["data"]
        assert {(h["bank"], h["state"]) for h in health} == {(b, "closed") for b in BANKS}

        # a bank that cannot be reached: the intent fails (nothing can have been debited),
        # and is retried at another bank, or canceled
        await s.fleet.bank("smbank").stop()
        failed = []
        for n in (10, 11):
            r = await s.post("/v1/payment-intents", key, f"create-{n}", order(n, "smbank"))
            assert r.status_code == 201, r.text
            assert r.json()["status"] == "failed" and r.json()["next_action"] is None
            assert r.json()["attempt"]["failure_reason"].startswith("BankUnavailable")
            failed.append(r.json()["id"])
        r = await s.post(f"/v1/payment-intents/{failed[0]}/retry", key, "retry-10",
                         {"bank": "restbank"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "pending" and r.json()["attempt"]["bank"] == "restbank"
        await s.pay(r.json())
        got = (await s.client.get(f"/v1/payment-intents/{failed[0]}", headers=bearer(key))).json()
        assert got["status"] == "succeeded"
        r = await s.post(f"/v1/payment-intents/{failed[1]}/cancel", key, "cancel-11", {})
        assert r.status_code == 200 and r.json()["status"] == "canceled"
        r = await s.post(f"/v1/payment-intents/{failed[1]}/retry", key, "retry-11",
                         {"bank": "restbank"})
        is_problem(r, 409, "illegal-transition")
        assert (await s.client.get("/v1/ledger/verify", headers=bearer(key))).json()["ok"] is True


async def test_notifications_are_answered_in_the_banks_own_protocol(db, issue_key):
    async with shop(db) as s:
        # what the payment core answers, the route sends back byte for byte
        for bank, headers, body in (("nosuchbank", {}, b"x"),
                                    ("restbank", {"content-type": "application/json"},
                                     b'{"forged": true}'),
                                    ("unionpay", {"content-type": "application/x-www-form-urlencoded"},
                                     b"respCode=00&signature=AAAA")):
            expected = await gateways.handle_notification(s.engine, s.banks, bank, headers, body)
            r = await s.client.post(f"/v1/notifications/{bank}", content=body, headers=headers)
            assert r.status_code == expected.status_code
            assert r.headers["content-type"] == expected.content_type
            assert r.content == expected.body
        assert r.headers["content-type"] != "application/problem+json"


async def test_payment_routes_validate_before_any_bank_is_asked(app, api, issue_key):
    key = await issue_key("shop-a", "payments:write", "payments:read")
    h = bearer(key)
    # amounts are decimal strings, not numbers; extra members are refused
    bad = order(1, "restbank") | {"amount": {"amount": 100, "currency": "CNY"}}
    r = await api.post("/v1/payment-intents", json=bad, headers=h | {"Idempotency-Key": "v-1"})
    is_problem(r, 422, "validation-failed")
    r = await api.post("/v1/payment-intents", json=order(1, "restbank") | {"tip": "1"},
                       headers=h | {"Idempotency-Key": "v-2"})
    is_problem(r, 422, "validation-failed")
    # a well-formed request on a server without banks
    r = await api.post("/v1/payment-intents", json=order(1, "restbank"),
                       headers=h | {"Idempotency-Key": "v-3"})
    is_problem(r, 503, "banks-not-configured")
    is_problem(await api.get("/v1/payment-intents/pi_nope", headers=h), 404, "intent-not-found")
    is_problem(await api.get("/v1/payment-intents", params={"status": "bogus"}, headers=h), 422)


@pytest.mark.parametrize("path", ["/v1/payment-intents", "/v1/payment-intents/{id}",
                                  "/v1/payment-intents/{id}/cancel",
                                  "/v1/payment-intents/{id}/refunds", "/v1/payouts",
                                  "/v1/payouts/{id}", "/v1/notifications/{bank}",
                                  "/v1/banks/health"])
def test_openapi_lists_the_payment_routes(path):
    from paycore.api import create_app
    from paycore.db import create_engine

    doc = create_app(create_engine("sqlite+aiosqlite://")).openapi()
    real = {p.replace("{intent_id}", "{id}").replace("{payout_id}", "{id}") for p in doc["paths"]}
    assert path in real
    notification = doc["paths"]["/v1/notifications/{bank}"]["post"]
    assert not any(p["name"] == "Idempotency-Key" for p in notification.get("parameters", []))
    assert "security" not in notification
