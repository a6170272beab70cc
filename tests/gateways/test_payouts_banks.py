"""Payouts through the real sandbox banks: paid, failover when a bank answers 5xx, no
failover from an unknown outcome (the janitor settles it), the circuit breaker opening and
closing again; after each the ledger agrees with the banks' own books."""

from __future__ import annotations

import datetime as dt

import pytest

import gateways
from gateways import Beneficiary, BreakerState, PayoutRequest, PayoutState
from gateways.payout_records import record_payout  # the bank mechanics, under the controls
from gateways.sandbox import Fault, TxnKind
from gateways.sandbox.book import MovementKind

from .core_env import available_banks, checkout_env
from .core_helpers import cny, open_payable

BEN = Beneficiary("Hangzhou Silk Co.", "6222020200112233445", "ICBC Hangzhou")

two_banks = pytest.mark.skipif(len(available_banks()) < 2,
                               reason="needs two sandbox banks for failover")


def request(pid: str, amount: str = "100.00", banks: tuple[str, ...] = ()) -> PayoutRequest:
    return PayoutRequest(payout_id=pid, beneficiary_ref="supplier:sup-001", beneficiary=BEN,
                         amount=cny(amount), debit_account="2202.payable.sup-001",
                         purpose="settlement", description=f"settlement {pid}", banks=banks)


async def _request(db, *pids: str, amount: str = "100.00") -> None:
    async with db.begin() as conn:
        await open_payable(conn, "sup-001", funded="10000.00")
        for pid in pids:
            await record_payout(conn, request(pid, amount))


async def _status(db, pid: str) -> PayoutState:
    async with db.connect() as conn:
        return (await gateways.get_payout(conn, pid)).status


def _paid_out(env, code: str) -> list[str]:
    return [m.reference for m in env.fleet.bank(code).book.by_kind(MovementKind.PAYOUT)]


async def test_payout_is_paid_and_posted(db):
    async with checkout_env(db, ("restbank",)) as env:
        await _request(db, "po-1", amount="250.00")
        [payout] = await gateways.submit_payouts(db, env.banks)
        assert payout.status is PayoutState.SUCCEEDED and payout.bank == "restbank"
        assert payout.bank_txn_id == env.fleet.bank("restbank").find(TxnKind.PAYOUT, "po-1").bank_txn_id
        # the bank's notification comes too, and changes nothing
        await env.fleet.drain()
        [entry] = await env.entries("payout")
        assert entry.external_ref == "po-1" and entry.idempotency_key == "payout:po-1"
        assert {p.account_code: p.amount for p in entry.postings} == {
            "2202.payable.sup-001": 25000, "1103.clearing.payout": -25000}
        assert await gateways.submit_payouts(db, env.banks) == []
        await env.assert_agrees_with_banks()


@two_banks
async def test_payout_fails_over_when_a_bank_answers_5xx(db):
    first, second = available_banks()[:2]
    async with checkout_env(db, (first, second), payout_order=(first, second)) as env:
        await _request(db, "po-5xx")
        env.fleet.bank(first).faults.set("po-5xx", Fault.SERVER_ERROR, server_errors=1)
        [payout] = await gateways.submit_payouts(db, env.banks)
        assert payout.bank == second
        assert _paid_out(env, first) == [] and _paid_out(env, second) == ["po-5xx"]
        # some banks answer a payout "processing" and notify: settled either way
        await env.fleet.drain()
        assert await _status(db, "po-5xx") is PayoutState.SUCCEEDED
        await env.assert_agrees_with_banks()


@two_banks
async def test_no_failover_from_unknown_the_janitor_settles_it(db):
    first, second = available_banks()[:2]
    async with checkout_env(db, (first, second), payout_order=(first, second)) as env:
        await _request(db, "po-hang")
        env.fleet.bank(first).faults.set("po-hang", Fault.TIMEOUT_AFTER_DEBIT, Fault.NO_NOTIFY)
        [payout] = await gateways.submit_payouts(db, env.banks)
        assert payout.status is PayoutState.UNKNOWN and payout.bank == first
        # the first bank took it (it is in its book); the second one never saw it
        assert _paid_out(env, first) == ["po-hang"] and _paid_out(env, second) == []
        assert await gateways.submit_payouts(db, env.banks) == []
        assert await env.entries("payout") == []
        report = await gateways.run_janitor(db, env.banks)
        assert report.settled == 1
        async with db.connect() as conn:
            assert (await gateways.get_payout(conn, "po-hang")).status is PayoutState.SUCCEEDED
        await env.assert_agrees_with_banks()


async def test_all_banks_down_leaves_the_payout_requested(db):
    async with checkout_env(db, ("restbank",)) as env:
        await _request(db, "po-down")
        env.fleet.bank("restbank").faults.set("po-down", Fault.SERVER_ERROR, server_errors=1)
        [payout] = await gateways.submit_payouts(db, env.banks)
        assert payout.status is PayoutState.REQUESTED and payout.submit_rounds == 1
        assert payout.bank is None
        [payout] = await gateways.submit_payouts(db, env.banks)
        assert payout.status is PayoutState.SUCCEEDED
        await env.fleet.drain()
        await env.assert_agrees_with_banks()


@two_banks
async def test_circuit_breaker_opens_skips_the_bank_and_closes_after_cool_down(db):
    first, second = available_banks()[:2]
    async with checkout_env(db, (first, second), payout_order=(first, second),
                            failure_threshold=2) as env:
        await _request(db, "po-a", "po-b", "po-c", "po-d", amount="10.00")
        bank = env.fleet.bank(first)
        for pid in ("po-a", "po-b", "po-c"):
            bank.faults.set(pid, Fault.SERVER_ERROR, server_errors=5)
        paid = await gateways.submit_payouts(db, env.banks, payout_ids=["po-a", "po-b", "po-c"])
        assert [p.bank for p in paid] == [second] * 3
        await env.fleet.drain()
        assert [await _status(db, p) for p in ("po-a", "po-b", "po-c")] == [
            PayoutState.SUCCEEDED] * 3
        health = {h.bank: h for h in gateways.bank_health_report(env.banks)}
        assert health[first].state is BreakerState.OPEN
        assert health[second].state is BreakerState.CLOSED
        # po-c never reached the first bank: the breaker refused the call
        assert bank.faults.plan("po-c").server_errors == 5
        assert bank.faults.plan("po-b").server_errors == 4
        async with db.begin() as conn:
            await gateways.save_bank_health(conn, env.banks)
        async with db.connect() as conn:
            saved = {h.bank: h.state for h in await gateways.load_bank_health(conn)}
        assert saved == {first: BreakerState.OPEN, second: BreakerState.CLOSED}
        # after the cool-down one trial call goes through; it succeeds: closed again
        env.advance(dt.timedelta(seconds=31))
        [payout] = await gateways.submit_payouts(db, env.banks, payout_ids=["po-d"])
        assert payout.bank == first
        assert env.banks.breaker(first).state is BreakerState.CLOSED
        await env.fleet.drain()
        await env.assert_agrees_with_banks()


async def test_a_payout_stranded_in_flight_is_found_and_settled_by_the_janitor(db):
    from gateways.store import transition
    async with checkout_env(db, ("restbank",)) as env:
        await _request(db, "po-lost", "po-sent")
        # a worker claimed po-lost for the bank and stopped before calling it; po-sent was
        # paid by the bank but the worker stopped before recording the answer
        async with db.begin() as conn:
            await transition(conn, "po-lost", PayoutState.REQUESTED, PayoutState.SUBMITTED,
                             bank="restbank")
        env.fleet.bank("restbank").faults.set("po-sent", Fault.NO_NOTIFY)
        adapter = env.banks.get("restbank")
        async with db.connect() as conn:
            sent = await gateways.get_payout(conn, "po-sent")
        await adapter.payout(gateways.bank.PayoutOrder(
            payout_id="po-sent", beneficiary=BEN, amount=sent.amount, description="x",
            created_at=dt.datetime.now(dt.UTC)))
        async with db.begin() as conn:
            await transition(conn, "po-sent", PayoutState.REQUESTED, PayoutState.SUBMITTED,
                             bank="restbank")
        # nothing is due yet: they are not stranded until they sat a while
        assert (await gateways.run_janitor(db, env.banks)).stranded == 0
        later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
        report = await gateways.run_janitor(db, env.banks, now=later)
        assert (report.stranded, report.settled) == (2, 2)
        assert await _status(db, "po-lost") is PayoutState.FAILED
        assert await _status(db, "po-sent") is PayoutState.SUCCEEDED
        await env.assert_agrees_with_banks()
