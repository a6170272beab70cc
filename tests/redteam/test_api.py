"""Red team (issue #15 review): the API against a hostile merchant. Findings fail on
today's main (xfail strict, the finding as reason); controls that held pass. SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import gateways
import ledger
from gateways.store import transition
from paycore.api import create_api_key
from paycore.supplier_bindings import bind_supplier
from tests.api.conftest import ENTRY_BODY, bearer
from tests.gateways.core_helpers import cny, open_payable

T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
CONTROLS = gateways.PayoutControls(cooling_off=dt.timedelta(hours=24),
                                   approval_above={"CNY": 100_000})


async def _entries(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        entries = ledger.metadata.tables["journal_entries"]
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(entries)))


async def test_two_merchants_never_share_a_domain_key(api, issue_key, db):
    mallory = await issue_key("m", "payments:write")
    victim = await issue_key("m:x", "payments:write")
    first = await api.post("/v1/probe/entries", json=ENTRY_BODY,
                           headers=bearer(mallory) | {"Idempotency-Key": "x:k1"})
    assert first.status_code == 201, first.text
    second = await api.post("/v1/probe/entries", json=ENTRY_BODY,
                            headers=bearer(victim) | {"Idempotency-Key": "k1"})
    assert second.status_code == 201, second.text
    # each merchant's request is its own entry
    assert second.json()["entry_id"] != first.json()["entry_id"]
    assert await _entries(db) == 2


@pytest.mark.parametrize("metadata", ['{"note": "mugs \\ud800"}', '{"\\udfff": 1}'],
                         ids=["value", "key"])
async def test_a_lone_surrogate_in_an_entrys_metadata_is_a_422(api, issue_key, db, metadata):
    key = await issue_key("treasury", "ledger:write")
    raw = ('{"kind": "transfer.internal", "description": "sweep", "metadata": ' + metadata
           + ', "postings": [' + json.dumps(_leg("1102.clearing.icbc", "debit")) + ", "
           + json.dumps(_leg("2202.payable.s1", "credit")) + "]}")
    r = await api.post("/v1/ledger/entries", content=raw.encode(),
                       headers=bearer(key) | {"Idempotency-Key": "surrogate",
                                              "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert await _entries(db) == 0


def _leg(account: str, side: str) -> dict[str, object]:
    return {"account": account, "side": side, "amount": {"amount": "25.00", "currency": "CNY"}}


async def test_held_constrained_text_fields_refuse_a_lone_surrogate(api, issue_key, db):
    """Held: a field with a length or pattern (here a bank account's holder name) is
    refused by validation, 422, nothing written."""
    async with db.begin() as conn:
        await bind_supplier(conn, "m1", "sup-1", actor="user:ops")
    key = await issue_key("m1", "payouts:write")
    raw = '{"holder_name": "Silk \\udfff Co.", "account_number": "6222020200112233445"}'
    r = await api.post("/v1/suppliers/sup-1/bank-accounts", content=raw.encode(),
                       headers=bearer(key) | {"Idempotency-Key": "surrogate-2",
                                              "Content-Type": "application/json"})
    assert r.status_code == 422, r.text


async def test_no_merchant_reads_the_marketplaces_internal_events(api, issue_key, db):
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="500.00")
        account = await gateways.add_account(conn, "sup-001", holder_name="Hangzhou Silk Co.",
                                             account_number="6222020200112233445",
                                             actor="user:carol", now=T0)
        await gateways.verify_account(conn, account.id, actor="user:bob", now=T0)
        await gateways.request_supplier_payout(conn, gateways.SupplierPayoutRequest(
            payout_id="po-secret", supplier_id="sup-001", account_id=account.id,
            amount=cny("30.00"), requested_by="system:settlement", manual=False), CONTROLS,
            now=T0 + dt.timedelta(days=2))
        # the bank refuses it (as gateways.payouts settles a refusal: the move and its hold)
        await transition(conn, "po-secret", gateways.PayoutState.REQUESTED,
                         gateways.PayoutState.SUBMITTED, bank="icbc")
        await transition(conn, "po-secret", gateways.PayoutState.SUBMITTED,
                         gateways.PayoutState.FAILED, failure_reason="closed account")
        await ledger.void_hold(conn, (await gateways.get_payout(conn, "po-secret")).hold_id)
    key = await issue_key("internal", "events:read")
    r = await api.get("/v1/events", headers=bearer(key))
    assert r.status_code in (200, 403), r.text
    assert "po-secret" not in r.text


async def _key(db: AsyncEngine, merchant: str, holder: str | None, *scopes: str) -> str:
    async with db.begin() as conn:
        return (await create_api_key(conn, merchant, scopes, holder=holder)).secret


@pytest.mark.parametrize("holders", [(None, None), (None, "alice"), ("Alice", "alice")],
                         ids=["no-holder", "holder-less-maker", "holder-case"])
async def test_one_person_with_two_keys_is_not_two_people(api, db, holders):
    """A holder-less key acts as `key:<id>`: a holder-less maker key and its holder's named
    checker key passed as two people (the maker entered an account, or asked for a
    payout, and the same person verified or approved it). Makers, like checkers, are
    people now: a holder-less key may do neither."""
    async with db.begin() as conn:
        await bind_supplier(conn, "m1", "sup-1", actor="user:ops")
    maker = await _key(db, "m1", holders[0], "payouts:write")
    checker = await _key(db, "m1", holders[1], "payouts:approve")
    r = await api.post("/v1/suppliers/sup-1/bank-accounts",
                       json={"holder_name": "Mallory", "account_number": "6222999988887777"},
                       headers=bearer(maker) | {"Idempotency-Key": "add-1"})
    if holders[0] is None:
        assert r.status_code == 403 and r.json()["code"] == "key-without-holder", r.text
        r = await api.post("/v1/payouts", json={
            "supplier_id": "sup-1", "account_id": "ba-any",
            "amount": {"amount": "1.00", "currency": "CNY"}},
            headers=bearer(maker) | {"Idempotency-Key": "payout-1"})
        assert r.status_code == 403 and r.json()["code"] == "key-without-holder", r.text
        return
    assert r.status_code == 201, r.text
    r = await api.post(f"/v1/suppliers/sup-1/bank-accounts/{r.json()['id']}/verify",
                       headers=bearer(checker) | {"Idempotency-Key": "verify-1"})
    assert r.status_code == 403, r.text


async def test_a_ledger_key_cannot_mint_sales_on_a_suppliers_payable(api, issue_key, db):
    import lending

    key = await issue_key("treasury", "ledger:write")
    leg = {"amount": {"amount": "100000.00", "currency": "CNY"}}
    body = {"kind": "payment.capture", "description": "sales",
            "postings": [{"account": "1102.clearing.icbc", "side": "debit", **leg},
                         {"account": "2202.payable.s1", "side": "credit", **leg}]}
    r = await api.post("/v1/ledger/entries", json=body,
                       headers=bearer(key) | {"Idempotency-Key": "mint-1"})
    async with db.connect() as conn:
        origins = await lending.payable_origins(conn, "2202.payable.s1")
    assert origins.goods_minor == 0, (r.status_code, origins)
    assert r.status_code == 422, r.text
