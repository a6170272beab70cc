"""Checkout end to end against the real sandbox banks over loopback HTTP, on SQLite and
PostgreSQL: success, duplicate, forged, mismatched and unknown-order notifications, a
declined payment retried, the janitor settling what no notification told."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

import gateways
import ledger
from gateways import AttemptState, IntentState
from gateways.sandbox import Fault, TxnKind

from .core_env import available_banks, checkout_env
from .core_helpers import cny

LATER = dt.timedelta(hours=2)


@pytest.mark.parametrize("bank", available_banks())
async def test_payment_succeeds_end_to_end(db, bank):
    async with checkout_env(db, (bank,)) as env:
        await env.terms(rate="0.03")
        co = await env.checkout("100.01", bank=bank)
        assert co.intent.status is IntentState.PENDING
        assert co.attempt.status is AttemptState.PENDING
        assert co.instruction is not None and co.instruction.url.startswith("http://127.0.0.1:")
        await env.pay(co)
        await env.fleet.drain()
        intent = await env.intent(co.intent.id)
        assert intent.status is IntentState.SUCCEEDED
        assert (intent.captured_minor, intent.commission_minor) == (10001, 300)
        async with db.connect() as conn:
            [attempt] = await gateways.list_attempts(conn, co.intent.id)
        txn = env.fleet.bank(bank).find(*_payment(attempt.id))
        assert attempt.status is AttemptState.SUCCEEDED and attempt.bank_txn_id == txn.bank_txn_id
        [entry] = await env.entries("payment.capture")
        assert entry.external_ref == txn.bank_txn_id
        assert entry.idempotency_key == f"capture:{attempt.id}"
        assert dict(entry.metadata) == {"attempt_id": attempt.id, "intent_id": co.intent.id,
                                        "order_id": co.intent.order_id, "bank": bank}
        by_account = {p.account_code: p.amount for p in entry.postings}
        # 3 % of 100.01 is 3.0003: rounded half-even to 3.00; the residue stays payable
        assert by_account == {f"1102.clearing.{bank}": 10001, "2202.payable.sup-001": -9701,
                              "6001.income.commission": -300}
        assert await env.rejections() == []
        await env.assert_agrees_with_banks()


def _payment(attempt_id: str):
    from gateways.sandbox import TxnKind
    return TxnKind.PAYMENT, attempt_id


async def test_duplicate_notification_is_applied_once(db):
    async with checkout_env(db) as env:
        await env.terms()
        co = await env.checkout("58.00")
        env.fleet.bank("restbank").faults.set(co.attempt.id, Fault.DUPLICATE_NOTIFY)
        await env.pay(co)
        await env.fleet.drain()
        assert (await env.intent(co.intent.id)).status is IntentState.SUCCEEDED
        assert len(await env.entries("payment.capture")) == 1
        assert "duplicate" in await env.rejections()
        await env.assert_agrees_with_banks()


async def test_forged_notification_changes_nothing(db):
    async with checkout_env(db) as env:
        await env.terms()
        co = await env.checkout("77.00")
        bank = env.fleet.bank("restbank")
        # the first delivery carries a broken signature; the bank retries signed right
        bank.faults.set(co.attempt.id, Fault.BAD_SIGNATURE)
        await env.pay(co)
        await env.fleet.drain()
        assert (await env.rejections())[0] == "forged"
        assert (await env.intent(co.intent.id)).status is IntentState.SUCCEEDED
        # a forger replays the real notification with the amount raised: refused
        delivered = [d for d in bank.notifier.deliveries if d.acknowledged][-1]
        tampered = delivered.body.replace(b"7700", b"9900")
        assert tampered != delivered.body
        before = len(await env.entries("payment.capture"))
        async with httpx.AsyncClient(trust_env=False) as client:
            answer = await client.post(env.banks.notify_url("restbank"), content=tampered,
                                       headers=delivered.headers)
        assert answer.status_code == 503
        assert (await env.rejections())[-1] == "forged"
        assert len(await env.entries("payment.capture")) == before == 1
        await env.assert_agrees_with_banks()


async def test_amount_mismatch_puts_the_intent_in_review_and_inquiry_books_the_truth(db):
    async with checkout_env(db) as env:
        await env.terms()
        co = await env.checkout("40.00")
        env.fleet.bank("restbank").faults.set(co.attempt.id, Fault.AMOUNT_MISMATCH)
        await env.pay(co)
        await env.fleet.drain()
        intent = await env.intent(co.intent.id)
        assert intent.status is IntentState.REVIEW
        assert "amount" in (intent.review_reason or "")
        assert await env.entries("payment.capture") == []
        assert "mismatch" in await env.rejections()
        # the bank did take 40.00: its inquiry answer (not the bad notification) is booked,
        # and the intent stays with a person
        report = await gateways.run_janitor(db, env.banks)
        assert report.settled == 1
        intent = await env.intent(co.intent.id)
        assert intent.status is IntentState.REVIEW and intent.captured_minor == 4000
        await env.assert_agrees_with_banks()


async def test_unknown_order_notification_is_recorded_and_changes_nothing(db):
    async with checkout_env(db) as env:
        await env.terms()
        co = await env.checkout("12.00")
        env.fleet.bank("restbank").faults.set(co.attempt.id, Fault.UNKNOWN_ORDER)
        await env.pay(co)
        await env.fleet.drain()
        assert "unknown_reference" in await env.rejections()
        assert len(await env.entries("payment.capture")) == 1
        await env.assert_agrees_with_banks()


async def test_no_notification_the_janitor_settles_it(db):
    async with checkout_env(db) as env:
        await env.terms()
        co = await env.checkout("66.60")
        env.fleet.bank("restbank").faults.set(co.attempt.id, Fault.NO_NOTIFY)
        await env.pay(co)
        await env.fleet.drain()
        assert (await env.intent(co.intent.id)).status is IntentState.PENDING
        # before expiry nothing is due: the customer may still be paying
        assert (await gateways.run_janitor(db, env.banks)).checked == 0
        report = await gateways.run_janitor(db, env.banks, now=co.intent.expires_at + LATER)
        assert (report.checked, report.settled) == (1, 1)
        assert (await env.intent(co.intent.id)).status is IntentState.SUCCEEDED
        await env.assert_agrees_with_banks()


async def test_an_unanswered_inquiry_goes_to_review_after_max_tries(db):
    async with checkout_env(db) as env:
        await env.terms()
        co = await env.checkout("5.00")
        # the customer never pays; after expiry the bank is asked. The sandbox's own clock
        # has not reached the expiry, so it answers "processing": the janitor backs off,
        # and after max_tries unanswered inquiries hands the attempt to a person
        report = await gateways.run_janitor(db, env.banks, now=co.intent.expires_at + LATER,
                                            max_tries=2)
        assert (report.checked, report.postponed) == (1, 1)
        assert (await env.intent(co.intent.id)).status is IntentState.PENDING
        report = await gateways.run_janitor(db, env.banks, now=co.intent.expires_at + 2 * LATER,
                                            max_tries=2)
        assert report.to_review == 1
        assert (await env.intent(co.intent.id)).status is IntentState.REVIEW
        assert await env.entries("payment.capture") == []
        await env.assert_agrees_with_banks()


async def test_declined_payment_is_retried_and_paid(db):
    async with checkout_env(db) as env:
        await env.terms()
        co = await env.checkout("20.00")
        await env.pay(co, decline=True)
        await env.fleet.drain()
        assert (await env.intent(co.intent.id)).status is IntentState.FAILED
        again = await gateways.retry_intent(db, env.banks, co.intent.id, "restbank",
                                            merchant_id="m-1")
        assert again.attempt.id != co.attempt.id
        assert again.intent.status is IntentState.PENDING
        await env.pay(again)
        await env.fleet.drain()
        intent = await env.intent(co.intent.id)
        assert intent.status is IntentState.SUCCEEDED and intent.current_attempt_id == again.attempt.id
        await env.assert_agrees_with_banks()


async def test_same_order_same_checkout_other_terms_refused_merchants_isolated(db):
    async with checkout_env(db) as env:
        await env.terms()
        co = await env.checkout("10.00", order="ord-1")
        assert (await env.checkout("10.00", order="ord-1")).intent.id == co.intent.id
        with pytest.raises(gateways.DuplicateOrder):
            await env.checkout("11.00", order="ord-1")
        other = await env.checkout("10.00", order="ord-1", merchant="m-2")
        assert other.intent.id != co.intent.id
        async with db.connect() as conn:
            assert [i.id for i in await gateways.list_intents(conn, "m-1")] == [co.intent.id]
            with pytest.raises(gateways.IntentNotFound):
                await gateways.get_intent(conn, co.intent.id, merchant_id="m-2")
        with pytest.raises(gateways.UnknownSupplier):
            await env.checkout("10.00", supplier="sup-404")
        with pytest.raises(gateways.UnknownBank):
            await env.checkout("10.00", bank="nobank")
        with pytest.raises(gateways.InvalidPaymentRequest):
            await env.checkout("0.00")


async def test_cancel_only_what_no_bank_is_taking(db):
    async with checkout_env(db) as env:
        await env.terms()
        co = await env.checkout("10.00")
        with pytest.raises(gateways.IllegalTransition):
            async with db.begin() as conn:
                await gateways.cancel_intent(conn, co.intent.id)
        await env.pay(co, decline=True)
        await env.fleet.drain()
        async with db.begin() as conn:
            canceled = await gateways.cancel_intent(conn, co.intent.id, merchant_id="m-1")
        assert canceled.status is IntentState.CANCELED


async def test_refund_partial_several_and_never_more_than_captured(db):
    async with checkout_env(db) as env:
        await env.terms(rate="0.03")
        co = await env.checkout("100.00")
        await env.pay(co)
        await env.fleet.drain()
        first = await gateways.refund_payment(db, env.banks, co.intent.id, cny("33.33"),
                                              reason="one mug broken", refund_id="rf1")
        assert first.status is gateways.RefundState.SUCCEEDED
        # the same refund id again is the same refund, nothing more at the bank
        again = await gateways.refund_payment(db, env.banks, co.intent.id, cny("33.33"),
                                              refund_id="rf1")
        assert again.id == first.id
        with pytest.raises(gateways.RefundExceedsCaptured):
            await gateways.refund_payment(db, env.banks, co.intent.id, cny("66.68"))
        second = await gateways.refund_payment(db, env.banks, co.intent.id, cny("66.67"))
        assert second.status is gateways.RefundState.SUCCEEDED
        with pytest.raises(gateways.RefundExceedsCaptured):
            await gateways.refund_payment(db, env.banks, co.intent.id, cny("0.01"))
        await env.fleet.drain()
        intent = await env.intent(co.intent.id)
        assert intent.refunded_minor == intent.captured_minor == 10000
        # proportional commission: all of it given back, to the fen, over two refunds
        assert intent.refunded_commission_minor == intent.commission_minor == 300
        refunds = await env.entries("payment.refund")
        assert len(refunds) == 2
        bank = env.fleet.bank("restbank")
        from gateways.sandbox import TxnKind
        assert {e.external_ref for e in refunds} == {
            bank.find(TxnKind.REFUND, r).bank_txn_id for r in ("rf1", second.id)}
        assert await _net(db, "2202.payable.sup-001") == 0
        assert await _net(db, "6001.income.commission") == 0
        await env.assert_agrees_with_banks()


async def test_refund_keeping_the_commission(db):
    async with checkout_env(db) as env:
        await env.terms(rate="0.05", refund_commission="keep")
        co = await env.checkout("10.00")
        await env.pay(co)
        await env.fleet.drain()
        await gateways.refund_payment(db, env.banks, co.intent.id, cny("4.00"))
        await env.fleet.drain()
        # payable: 9.50 captured, less the whole 4.00; commission 0.50 kept
        assert await _net(db, "2202.payable.sup-001") == -550
        assert await _net(db, "6001.income.commission") == -50
        await env.assert_agrees_with_banks()


async def test_refund_timing_out_after_debit_is_unknown_until_the_janitor(db):
    async with checkout_env(db) as env:
        await env.terms()
        co = await env.checkout("80.00")
        await env.pay(co)
        await env.fleet.drain()
        bank = env.fleet.bank("restbank")
        bank.faults.set("rftimeout", Fault.TIMEOUT_AFTER_DEBIT, Fault.NO_NOTIFY)
        refund = await gateways.refund_payment(db, env.banks, co.intent.id, cny("30.00"),
                                               refund_id="rftimeout")
        assert refund.status is gateways.RefundState.UNKNOWN
        assert await env.entries("payment.refund") == []
        report = await gateways.run_janitor(db, env.banks)
        assert report.settled == 1
        async with db.connect() as conn:
            settled = await gateways.get_refund(conn, "rftimeout")
        assert settled.status is gateways.RefundState.SUCCEEDED
        await env.fleet.drain()
        await env.assert_agrees_with_banks()


async def _net(engine, code: str) -> int:
    import ledger
    async with engine.connect() as conn:
        return (await ledger.balance(conn, code)).posted_net


async def test_bank_unreachable_at_checkout_fails_the_intent_and_another_bank_takes_it(db):
    async with checkout_env(db, ("restbank",)) as env:
        await env.terms()
        env.fleet.bank("restbank").faults.set("at503first", Fault.SERVER_ERROR, server_errors=1)
        co = await gateways.create_intent(db, env.banks, gateways.IntentRequest(
            merchant_id="m-1", order_id="ord-503", supplier_id="sup-001", amount=cny("9.00"),
            bank="restbank", attempt_id="at503first"))
        # nothing reached the bank: failed, no instruction, safe to try again
        assert co.intent.status is IntentState.FAILED and co.instruction is None
        assert co.attempt.status is AttemptState.FAILED
        again = await gateways.retry_intent(db, env.banks, co.intent.id, "restbank")
        await env.pay(again)
        await env.fleet.drain()
        assert (await env.intent(co.intent.id)).status is IntentState.SUCCEEDED
        await env.assert_agrees_with_banks()


async def test_lost_answer_at_checkout_is_unknown_and_never_retried_elsewhere(db):
    async with checkout_env(db, ("restbank",)) as env:
        await env.terms()
        env.fleet.bank("restbank").faults.set("athangs01", Fault.TIMEOUT)
        co = await gateways.create_intent(db, env.banks, gateways.IntentRequest(
            merchant_id="m-1", order_id="ord-hang", supplier_id="sup-001", amount=cny("9.00"),
            bank="restbank", attempt_id="athangs01"))
        assert co.intent.status is IntentState.UNKNOWN and co.instruction is None
        with pytest.raises(gateways.IllegalTransition):
            await gateways.retry_intent(db, env.banks, co.intent.id, "restbank")
        with pytest.raises(gateways.IllegalTransition):
            async with db.begin() as conn:
                await gateways.cancel_intent(conn, co.intent.id)
        # the bank has the order, unpaid: the janitor asks at once and keeps asking
        report = await gateways.run_janitor(db, env.banks, max_tries=3)
        assert (report.checked, report.postponed) == (1, 1)
        assert (await env.intent(co.intent.id)).status is IntentState.UNKNOWN
        await env.assert_agrees_with_banks()


async def test_expiry_of_intents_no_bank_is_taking_money_for(db):
    async with checkout_env(db, ("restbank",)) as env:
        await env.terms()
        env.fleet.bank("restbank").faults.set("atexpire1", Fault.SERVER_ERROR, server_errors=1)
        failed = await gateways.create_intent(db, env.banks, gateways.IntentRequest(
            merchant_id="m-1", order_id="ord-exp", supplier_id="sup-001", amount=cny("3.00"),
            bank="restbank", attempt_id="atexpire1"))
        pending = await env.checkout("4.00")
        async with db.begin() as conn:
            assert await gateways.expire_intents(conn) == []
            later = failed.intent.expires_at + LATER
            assert await gateways.expire_intents(conn, now=later) == [failed.intent.id]
        assert (await env.intent(failed.intent.id)).status is IntentState.EXPIRED
        # a pending one is the janitor's: the bank is asked before anything expires
        assert (await env.intent(pending.intent.id)).status is IntentState.PENDING


async def test_refund_in_flight_is_reserved_and_an_uncovered_refund_is_refused(db):
    async with checkout_env(db) as env:
        await env.terms(rate="0.10")
        co = await env.checkout("100.00")
        await env.pay(co)
        await env.fleet.drain()
        bank = env.fleet.bank("restbank")
        # the bank holds the refund ("processing" by inquiry, no answer, no notification)
        bank.faults.set("rfslow", Fault.TIMEOUT_AFTER_DEBIT, Fault.NO_NOTIFY)
        refund = await gateways.refund_payment(db, env.banks, co.intent.id, cny("50.00"),
                                               refund_id="rfslow")
        assert refund.status is gateways.RefundState.UNKNOWN
        async with db.connect() as conn:
            payable = await ledger.balance(conn, "2202.payable.sup-001")
        # 90.00 owed to the supplier, 45.00 of it reserved for the refund in flight
        assert (payable.posted.amount, payable.available.amount) == (90, 45)
        # so a payout cannot take it away; and a refund the payable cannot cover is
        # refused before the bank is asked
        async with db.begin() as conn:
            await ledger.post(conn, ledger.EntryRequest("paid-out", "payout", [
                ledger.Posting("2202.payable.sup-001", debit=cny("45.00")),
                ledger.Posting("1102.clearing.restbank", credit=cny("45.00"))]))
        with pytest.raises(ledger.BalanceLimitExceeded):
            await gateways.refund_payment(db, env.banks, co.intent.id, cny("10.00"),
                                          refund_id="rfnocover")
        assert bank.find(TxnKind.REFUND, "rfnocover") is None
        assert (await env.intent(co.intent.id)).refund_reserved_minor == 5000
        await gateways.run_janitor(db, env.banks)
        async with db.connect() as conn:
            assert (await gateways.get_refund(conn, "rfslow")).status is gateways.RefundState.SUCCEEDED
            payable = await ledger.balance(conn, "2202.payable.sup-001")
            report = await ledger.verify(conn)
        assert payable.posted.amount == payable.available.amount == 0
        assert report.ok and report.holds_pending == 0


async def test_garbage_and_unknown_banks_change_nothing_and_are_recorded(db):
    async with checkout_env(db) as env:
        reply = await gateways.handle_notification(db, env.banks, "nobank", {"X-Signature": "s"},
                                                   b"{}")
        assert reply.status_code == 404
        reply = await gateways.handle_notification(
            db, env.banks, "restbank", {"Authorization": "Bearer secret-token"}, b"not json")
        assert reply.status_code == 503  # "send it again", in the REST bank's protocol
        async with db.connect() as conn:
            found = await gateways.list_rejections(conn)
        assert [r.reason for r in found] == ["forged", "unknown_bank"]
        assert found[0].headers == {"Authorization": "[redacted]"}
        assert found[1].headers == {"X-Signature": "[redacted]"}
        assert found[0].body_size == 8 and len(found[0].body_sha256) == 64
        assert await env.entries("payment.capture") == []
