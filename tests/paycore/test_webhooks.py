"""Events and signed webhooks on both databases: an event written with the change it
announces (and not without it), numbered after commit for `after=` paging, delivered to
a real loopback receiver that refuses for a while (all still arrive, signed, each
object's events in order), secret rotation signing with both secrets, redelivery."""

from __future__ import annotations

import dataclasses

import pytest

import ledger
import lending
from paycore import webhooks
from paycore.webhooks import WebhookSettings

from .service_helpers import Receiver

FAST = WebhookSettings(backoff=(0, 0, 0, 0), allow_private=True, timeout=5)


async def _events(conn, *pairs):
    for object_id, topic in pairs:
        await ledger.record_event(conn, topic=topic, object_type="payment_intent",
                                  object_id=object_id, audience="m-1",
                                  payload={"id": object_id, "status": topic})


async def test_an_event_commits_with_its_change_or_not_at_all(db):
    with pytest.raises(RuntimeError):
        async with db.begin() as conn:
            await _events(conn, ("pi_1", "payment.captured"))
            raise RuntimeError("the change failed")
    async with db.begin() as conn:
        await _events(conn, ("pi_2", "payment.captured"))
    async with db.begin() as conn:
        assert await webhooks.list_events(conn, "m-1") == []  # not numbered yet
        await webhooks.fan_out(conn)
        found = await webhooks.list_events(conn, "m-1")
    assert [(e.object_id, e.seq) for e in found] == [("pi_2", 1)]


async def test_a_loan_disbursed_writes_its_event(db):
    from tests.lending.book import disbursed, good_borrower

    async with db.begin() as conn:
        await lending.ensure_accounts(conn, lending.DEFAULT_CONFIG)
        await good_borrower(conn, "sup-001")
        await disbursed(conn, "loan-1")
    async with db.begin() as conn:
        await webhooks.fan_out(conn)
        events = await webhooks.list_events(conn, "sup-001")
    assert [e.topic for e in events][-1] in {"loan.disbursed", "loan.active"}
    assert {e.topic for e in events} & {"loan.disbursed", "loan.active"}
    assert all(e.object_id == "loan-1" for e in events)


async def test_webhooks_arrive_signed_in_order_after_the_receiver_refused(db):
    receiver = Receiver(refuse=3)
    url = await receiver.start()
    try:
        async with db.begin() as conn:
            endpoint, secret = await webhooks.create_endpoint(conn, "m-1", url, settings=FAST)
            other, _ = await webhooks.create_endpoint(conn, "m-2", url, settings=FAST)
        receiver.secret = secret
        async with db.begin() as conn:
            await _events(conn, ("pi_a", "payment.captured"), ("pi_b", "payment.captured"))
        async with db.begin() as conn:
            await _events(conn, ("pi_a", "payment.refunded"))
        for _ in range(8):
            await webhooks.dispatch(db, FAST)
        assert receiver.refused == 3 and receiver.bad_signatures == 0
        got = [(e["object"]["id"], e["type"]) for e in receiver.accepted]
        assert sorted(got) == sorted([("pi_a", "payment.captured"), ("pi_b", "payment.captured"),
                                      ("pi_a", "payment.refunded")])
        # pi_a's capture arrived before its refund, though the capture was refused first
        assert got.index(("pi_a", "payment.captured")) < got.index(("pi_a", "payment.refunded"))
        async with db.connect() as conn:
            deliveries = await webhooks.list_deliveries(conn, endpoint_id=endpoint.id)
        assert {d.status for d in deliveries} == {"delivered"}
        # the other merchant's endpoint received none of m-1's events
        async with db.connect() as conn:
            assert await webhooks.list_deliveries(conn, endpoint_id=other.id) == []

        # rotation: the new and the old secret both sign, so either verifies
        async with db.begin() as conn:
            rotated = await webhooks.rotate_secret(conn, endpoint.id, merchant_id="m-1")
        assert rotated is not None
        _, new_secret = rotated
        first = receiver.accepted[0]["id"]
        async with db.begin() as conn:
            assert await webhooks.redeliver(conn, first, merchant_id="m-1") == 1
        receiver.secret = new_secret
        await webhooks.dispatch(db, FAST)
        assert receiver.accepted[-1]["id"] == first and receiver.bad_signatures == 0
        receiver.secret = secret
        async with db.begin() as conn:
            assert await webhooks.redeliver(conn, first, merchant_id="m-1") == 1
        await webhooks.dispatch(db, FAST)
        assert receiver.accepted[-1]["id"] == first and receiver.bad_signatures == 0
    finally:
        await receiver.stop()


async def test_a_delivery_that_never_succeeds_fails_after_its_back_off(db):
    receiver = Receiver(refuse=100)
    url = await receiver.start()
    try:
        settings = dataclasses.replace(FAST, backoff=(0, 0))
        async with db.begin() as conn:
            await webhooks.create_endpoint(conn, "m-1", url, settings=settings)
            await _events(conn, ("pi_x", "payment.failed"))
        for _ in range(5):
            await webhooks.dispatch(db, settings)
        assert receiver.refused == 3  # the first try and two retries
        async with db.connect() as conn:
            [delivery] = await webhooks.list_deliveries(conn)
        assert delivery.status == "failed" and delivery.last_status_code == 503
    finally:
        await receiver.stop()


def test_signatures_refuse_tampering_and_stale_timestamps():
    body = b'{"id":"evt_1"}'
    header = webhooks.sign(body, ["whsec_a"], 1_000_000)
    assert webhooks.verify_signature(header, body, "whsec_a", now=1_000_010)
    assert not webhooks.verify_signature(header, body + b" ", "whsec_a", now=1_000_010)
    assert not webhooks.verify_signature(header, body, "whsec_b", now=1_000_010)
    assert not webhooks.verify_signature(header, body, "whsec_a", now=1_000_000 + 3600)


@pytest.mark.parametrize("url", ["ftp://x.example/", "http://127.0.0.1/h", "http://10.0.0.5/h",
                                 "http://localhost:8000/", "https://user:pw@x.example/"])
def test_endpoints_outside_http_or_into_private_networks_are_refused(url):
    with pytest.raises(webhooks.InvalidEndpoint):
        webhooks.check_url(url, WebhookSettings())
