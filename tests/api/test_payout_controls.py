"""Payout controls through the API (issue #15 §2 and the §7 finding): the sandbox banks
are real HTTP servers, the API runs under uvicorn; SQLite and PostgreSQL.

§7: merchant B paid out 7.00 from a supplier funded only by merchant A's sales, to an
account of its choosing. Now a key acts only for suppliers its merchant is bound to, pays
only to a verified account from the supplier's register, and a second person approves."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

import gateways
import ledger
from gateways.sandbox import SandboxFleet
from paycore.api import create_api_key
from paycore.supplier_bindings import bind_supplier
from tests.api.conftest import bearer, is_problem, make_app
from tests.api.test_payments import BANKS, FAST, Shop
from tests.api.test_server import serving
from tests.gateways.core_helpers import balance_minor, open_payable

NUMBER = "6222020200112233445"
NOW_CONTROLS = gateways.PayoutControls(cooling_off=dt.timedelta(0),
                                       approval_above={"CNY": 1_000_000})


@contextlib.asynccontextmanager
async def shop(engine) -> AsyncIterator[tuple[Shop, FastAPI]]:
    """test_payments' shop (banks on loopback, the API under uvicorn), with its app."""
    async with SandboxFleet.start(BANKS, settings=FAST,
                                  client_timeout=dt.timedelta(seconds=5)) as fleet:
        app = make_app(engine)
        async with serving(app) as base, httpx.AsyncClient(base_url=base,
                                                           trust_env=False) as client:
            app.state.banks = gateways.BankDirectory(
                [fleet.adapter(code) for code in BANKS], notify_base_url=f"{base}/v1/notifications")
            yield Shop(client, fleet, app.state.banks, engine, app), app


async def key(db, merchant: str, holder: str | None, *scopes: str) -> str:
    async with db.begin() as conn:
        return (await create_api_key(conn, merchant, scopes, holder=holder)).secret


async def payable(db, supplier: str = "sup-1") -> tuple[int, int, int]:
    """(posted net, pending debits, pending credits) of the supplier's payable, minor units."""
    return await balance_minor(db, f"2202.payable.{supplier}")


async def test_a_merchant_not_bound_to_the_supplier_cannot_touch_its_money(db, capsys):
    alice = await key(db, "shop-a", "alice", "payouts:read", "payouts:write")
    bob = await key(db, "shop-a", "bob", "payouts:read", "payouts:approve")
    mallory = await key(db, "shop-b", "mallory", "payouts:read", "payouts:write",
                        "payouts:approve")
    async with db.begin() as conn:
        # sup-1's payable holds only shop-a's sales
        await open_payable(conn, "sup-1", funded="100.00")
        await bind_supplier(conn, "shop-a", "sup-1", actor="user:ops")
    async with shop(db) as (s, _):
        r = await s.post("/v1/suppliers/sup-1/bank-accounts", alice, "acct-1",
                         {"holder_name": "Hangzhou Mugs Co.", "account_number": NUMBER})
        assert r.status_code == 201, r.text
        account = r.json()
        await s.post(f"/v1/suppliers/sup-1/bank-accounts/{account['id']}/verify", bob, "v-1", {})

        # shop-b: not bound to sup-1 — no payout, no account of its own, no look at them
        r = await s.post("/v1/payouts", mallory, "steal-1",
                         {"supplier_id": "sup-1", "amount": {"amount": "7.00", "currency": "CNY"},
                          "account_id": account["id"]})
        is_problem(r, 403, "supplier-not-bound")
        r = await s.post("/v1/suppliers/sup-1/bank-accounts", mallory, "steal-2",
                         {"holder_name": "Mallory", "account_number": "6222999900001111"})
        is_problem(r, 403, "supplier-not-bound")
        r = await s.client.get("/v1/suppliers/sup-1/bank-accounts", headers=bearer(mallory))
        is_problem(r, 403, "supplier-not-bound")
        # the free-form beneficiary of old is no longer accepted at all
        r = await s.post("/v1/payouts", alice, "free-form",
                         {"supplier_id": "sup-1", "amount": {"amount": "7.00", "currency": "CNY"},
                          "beneficiary": {"name": "Anyone", "account_number": "6222999900001111"}})
        assert r.status_code == 422, r.text
    assert await payable(db) == (-10000, 0, 0)
    async with db.connect() as conn:
        assert (await ledger.verify(conn)).ok
    assert NUMBER not in capsys.readouterr().out


async def test_register_verify_request_approve_pay_through_the_api(db, capsys):
    alice = await key(db, "shop-a", "alice", "payouts:read", "payouts:write",
                      "payouts:approve")
    alice_2 = await key(db, "shop-a", "alice", "payouts:approve")      # her second key
    bob = await key(db, "shop-a", "bob", "payouts:read", "payouts:approve")
    async with db.begin() as conn:
        await open_payable(conn, "sup-1", funded="500.00")
        await bind_supplier(conn, "shop-a", "sup-1", actor="user:ops")
    async with shop(db) as (s, app):
        r = await s.post("/v1/suppliers/sup-1/bank-accounts", alice, "acct-1",
                         {"holder_name": "Hangzhou Mugs Co.", "account_number": NUMBER,
                          "bank_name": "ICBC Hangzhou"})
        account = r.json()
        assert account["status"] == "unverified" and account["account_number"] == "***3445"
        assert NUMBER not in r.text and account["created_by"] == "user:alice"

        body = {"supplier_id": "sup-1", "amount": {"amount": "150.00", "currency": "CNY"},
                "account_id": account["id"], "description": "weekly"}
        is_problem(await s.post("/v1/payouts", alice, "po-unverified", body), 422,
                   "beneficiary-account-not-usable")
        # the person who entered it cannot verify it, not even with another key
        verify = f"/v1/suppliers/sup-1/bank-accounts/{account['id']}/verify"
        is_problem(await s.post(verify, alice_2, "v-alice", {}), 403, "four-eyes")
        r = await s.post(verify, bob, "v-bob", {})
        assert r.json()["status"] == "verified" and r.json()["verified_by"] == "user:bob"
        # the default cooling-off (24 hours) holds a freshly verified account
        r = await s.post("/v1/payouts", alice, "po-cooling", body)
        problem = is_problem(r, 422, "beneficiary-account-not-usable")
        assert "cooling-off" in str(problem["detail"])

        # (this deployment lets accounts be paid at once, to show the rest of the flow)
        app.state.payout_controls = NOW_CONTROLS

        r = await s.post("/v1/payouts", alice, "po-1", body)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["status"] == "pending_approval"
        assert made["beneficiary"]["account_number"] == "***3445" and NUMBER not in r.text
        assert await payable(db) == (-50000, 15000, 0)     # reserved while it waits
        # beyond what is available (350.00 after the reservation): refused, nothing written
        r = await s.post("/v1/payouts", alice, "po-2",
                         body | {"amount": {"amount": "350.01", "currency": "CNY"}})
        is_problem(r, 422, "balance-limit-exceeded")

        approve = f"/v1/payouts/{made['id']}/approve"
        is_problem(await s.post(approve, alice_2, "ap-alice", {}), 403, "four-eyes")
        r = await s.post(approve, bob, "ap-bob", {})
        assert r.status_code == 200, r.text
        assert r.json()["status"] in ("succeeded", "submitted")
        await s.fleet.drain()
        got = (await s.client.get(f"/v1/payouts/{made['id']}", headers=bearer(alice))).json()
        assert got["status"] == "succeeded"
        # the bank paid the register's account, though the payouts row keeps only the mask
        assert s.fleet.bank(got["bank"]).book.paid_out.get(NUMBER) == 15000

        # a second payout is rejected: canceled, its reservation released
        r = await s.post("/v1/payouts", alice, "po-3",
                         body | {"amount": {"amount": "20.00", "currency": "CNY"}})
        third = r.json()
        r = await s.post(f"/v1/payouts/{third['id']}/reject", bob, "rj-1",
                         {"reason": "not agreed with the supplier"})
        assert r.json()["status"] == "canceled"
    assert await payable(db) == (-35000, 0, 0)
    async with db.connect() as conn:
        trail = await gateways.audit_trail(conn, supplier_id="sup-1")
        assert (await ledger.verify(conn)).ok
    assert [(t["action"], t["actor"]) for t in trail] == [
        ("binding.added", "user:ops"), ("account.added", "user:alice"),
        ("account.verified", "user:bob"), ("payout.requested", "user:alice"),
        ("payout.approved", "user:bob"), ("payout.requested", "user:alice"),
        ("payout.rejected", "user:bob")]
    assert NUMBER not in capsys.readouterr().out

