"""Events and signed webhooks on both databases: an event written with the change it
announces (and not without it), numbered after commit for `after=` paging, delivered to
a real loopback receiver that refuses for a while (all still arrive, signed, each
object's events in order), secret rotation signing with both secrets, redelivery."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

import gateways
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


async def _stored(db, endpoint_id):
    from paycore.schema import webhook_endpoints as we

    async with db.connect() as conn:
        return (await conn.execute(sa.select(we).where(we.c.id == endpoint_id))).one()


async def test_secrets_are_sealed_at_rest_and_resealed_when_the_key_ring_rotates(db, account_keys):
    """The stored secret is not the secret; it opens only under the ring's key and only
    for its own endpoint; a new key put first and `rekey_secrets` reseal both secrets of a
    rotating endpoint, after which the old key can go and every delivery still verifies."""
    from paycore.schema import webhook_endpoints as we

    receiver = Receiver()
    url = await receiver.start()
    try:
        async with db.begin() as conn:
            endpoint, secret = await webhooks.create_endpoint(conn, "m-1", url, settings=FAST)
            other, _ = await webhooks.create_endpoint(conn, "m-1", url + "/other",
                                                      settings=FAST)
            rotated = await webhooks.rotate_secret(conn, endpoint.id, merchant_id="m-1")
        assert rotated is not None
        new_secret = rotated[1]
        row = await _stored(db, endpoint.id)
        assert row.secret_key_id == row.previous_secret_key_id == account_keys.current_id
        for plain in (secret, new_secret):
            assert plain not in (row.secret, row.previous_secret)
            assert plain[6:] not in str(tuple(row))
        # a sealed secret copied onto another endpoint does not open there
        own = await _stored(db, other.id)
        async with db.begin() as conn:
            await conn.execute(we.update().where(we.c.id == other.id).values(
                secret=row.secret, secret_key_id=row.secret_key_id))
            await _events(conn, ("pi_s", "payment.captured"))
        receiver.secret = new_secret
        await webhooks.dispatch(db, FAST)
        assert [e["object"]["id"] for e in receiver.accepted] == ["pi_s"]  # the real one only
        async with db.connect() as conn:
            [stolen] = await webhooks.list_deliveries(conn, endpoint_id=other.id)
        assert stolen.status == "pending" and "cannot be unsealed" in stolen.last_error
        async with db.begin() as conn:  # (rekey would stop at the moved secret: put it back)
            await conn.execute(we.update().where(we.c.id == other.id).values(
                secret=own.secret, secret_key_id=own.secret_key_id))
            await webhooks.disable_endpoint(conn, other.id)

        # key rotation: a new key first, rekey, then the old key dropped
        new_key = ("test2", bytes(range(100, 132)))
        gateways.use_account_keys(gateways.AccountKeys([new_key, ("test1", bytes(range(32)))]))
        async with db.begin() as conn:
            assert await webhooks.rekey_secrets(conn) == 2
            assert await webhooks.rekey_secrets(conn) == 0  # nothing left under the old key
        row = await _stored(db, endpoint.id)
        assert row.secret_key_id == row.previous_secret_key_id == "test2"
        gateways.use_account_keys(gateways.AccountKeys([new_key]))
        first = receiver.accepted[0]["id"]
        async with db.begin() as conn:
            assert await webhooks.redeliver(conn, first, endpoint_id=endpoint.id) == 1
        for key in (new_secret, secret):  # both secrets still sign during the overlap
            receiver.secret = key
            async with db.begin() as conn:
                await webhooks.redeliver(conn, first, endpoint_id=endpoint.id)
            await webhooks.dispatch(db, FAST)
            assert receiver.accepted[-1]["id"] == first and receiver.bad_signatures == 0
    finally:
        await receiver.stop()


async def test_a_secret_stored_plain_before_sealing_still_signs_and_rekey_seals_it(db):
    from paycore.schema import webhook_endpoints as we

    receiver = Receiver()
    url = await receiver.start()
    try:
        async with db.begin() as conn:
            endpoint, _ = await webhooks.create_endpoint(conn, "m-1", url, settings=FAST)
            legacy = "whsec_" + "ab" * 32
            await conn.execute(we.update().where(we.c.id == endpoint.id)
                               .values(secret=legacy, secret_key_id=None))
            await _events(conn, ("pi_l", "payment.captured"))
        receiver.secret = legacy
        await webhooks.dispatch(db, FAST)
        assert receiver.event_ids and receiver.bad_signatures == 0
        async with db.begin() as conn:
            assert await webhooks.rekey_secrets(conn) == 1
        row = await _stored(db, endpoint.id)
        assert row.secret_key_id == "test1" and legacy not in row.secret
    finally:
        await receiver.stop()


async def test_no_endpoint_is_registered_without_a_key_ring(db):
    gateways.use_account_keys(None)
    async with db.begin() as conn:
        with pytest.raises(gateways.AccountKeysMissing):
            await webhooks.create_endpoint(conn, "m-1", "https://shop.example/hooks",
                                           settings=FAST)


async def test_the_operators_events_reach_no_merchant_whatever_its_id(db):
    """Internal events are kept under ledger.INTERNAL ('~internal', no merchant id can be
    it); rows written before under 'internal' (a valid merchant id) are served to no one,
    and a payout's event of either goes to the merchant that asked for it, if one did."""
    import datetime as dt

    from paycore.schema import api_payout_owners

    async with db.begin() as conn:
        for audience in (ledger.INTERNAL, "internal"):
            await ledger.record_event(conn, topic="payout.failed", object_type="payout",
                                      object_id=f"po-{audience}", audience=audience,
                                      payload={"id": f"po-{audience}"})
        await ledger.record_event(conn, topic="payout.failed", object_type="payout",
                                  object_id="po-asked", audience="internal", payload={})
        await conn.execute(api_payout_owners.insert().values(
            payout_id="po-asked", merchant_id="m-1", created_at=dt.datetime.now(dt.UTC)))
        for merchant in ("internal", "~internal"):
            await webhooks.create_endpoint(conn, merchant, "http://127.0.0.1:9/hook",
                                           settings=FAST)
    assert ledger.INTERNAL == "~internal"
    async with db.begin() as conn:
        assert await webhooks.fan_out(conn) == (3, 0)  # no delivery to either endpoint
        assert await webhooks.list_events(conn, "internal") == []
        assert await webhooks.list_events(conn, ledger.INTERNAL) == []
        assert [e.object_id for e in await webhooks.list_events(conn, "m-1")] == ["po-asked"]
        internal = (await conn.scalars(sa.select(ledger.outbox_events.c.id).where(
            ledger.outbox_events.c.object_id == "po-internal"))).one()
        assert await webhooks.redeliver(conn, internal, merchant_id="internal") == 0
        assert await webhooks.redeliver(conn, internal) == 0
