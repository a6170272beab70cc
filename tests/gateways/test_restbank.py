"""JSON REST bank: HMAC request signing, replay window, nonces, signed webhooks, strict JSON."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
from moneyed import Money

from gateways.protocols import (
    AmountNotAccepted,
    InMemoryReplayGuard,
    MalformedMessage,
    ReplayedMessage,
    SignatureInvalid,
    StaleMessage,
    generate_hmac_secret,
)
from gateways.protocols.restbank import (
    CreatePayment,
    CreateRefund,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    RestCredentials,
    WebhookEvent,
    accept_request,
    accept_webhook,
    canonical_request,
    load_json,
    sign_request,
    sign_webhook,
    verify_request,
    verify_webhook,
)

NOW = dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.UTC)
CREDS = RestCredentials(api_key="pk_test_merchant1", secret=b"s3cr3t-key-material-of-32-bytes!")
WEBHOOK_SECRET = b"whsec_0123456789abcdef0123456789ab"
BODY = CreatePayment(
    merchant_id="m1", order_id="ORD-1", amount=Money("123.45", "CNY"),
    return_url="https://shop.example/r", notify_url="https://shop.example/webhooks/rest",
).to_json()


def secret_for(api_key: str) -> bytes | None:
    return CREDS.secret if api_key == CREDS.api_key else None


def signed_headers(**overrides: object) -> dict[str, str]:
    args: dict[str, object] = {
        "method": "POST", "target": "/v1/payments", "body": BODY, "now": NOW,
        "nonce": "n0nce-0123456789abcdef",
    }
    args.update(overrides)
    return sign_request(CREDS, **args)  # type: ignore[arg-type]


def verify(headers: dict[str, str], **overrides: object) -> None:
    args: dict[str, object] = {
        "method": "POST", "target": "/v1/payments", "body": BODY, "now": NOW,
        "secret_for": secret_for,
    }
    args.update(overrides)
    verify_request(headers, **args)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- requests


def test_canonical_request_layout() -> None:
    assert canonical_request("post", "/v1/payments?x=1", "1714552200", "abc", b"{}") == (
        b"POST\n/v1/payments?x=1\n1714552200\nabc\n"
        + hashlib.sha256(b"{}").hexdigest().encode()
    )


def test_signature_header_is_hmac_of_the_canonical_request() -> None:
    headers = signed_headers()
    assert headers["X-Api-Key"] == "pk_test_merchant1"
    assert headers["X-Timestamp"] == "1714552200"
    expected = hmac.new(
        CREDS.secret,
        canonical_request("POST", "/v1/payments", "1714552200", "n0nce-0123456789abcdef", BODY),
        hashlib.sha256,
    ).hexdigest()
    assert headers["X-Signature"] == "v1=" + expected


def test_request_round_trip_with_any_header_case() -> None:
    verify(signed_headers())
    verify({k.lower(): v for k, v in signed_headers().items()})
    verify(signed_headers(method="GET", target="/v1/payments/pay_1", body=b""),
           method="GET", target="/v1/payments/pay_1", body=b"")


@pytest.mark.parametrize(
    "change",
    [
        {"body": BODY.replace(b'"value":12345', b'"value":12346')},
        {"target": "/v1/refunds"},
        {"method": "PUT"},
    ],
)
def test_tampered_request_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(signed_headers(), **change)


def test_tampered_headers_are_refused() -> None:
    headers = signed_headers()
    with pytest.raises(SignatureInvalid):
        verify(headers | {"X-Timestamp": "1714552201"})
    with pytest.raises(SignatureInvalid):
        verify(headers | {"X-Nonce": "n0nce-0123456789abcdeX"})
    with pytest.raises(SignatureInvalid):
        verify({k: v for k, v in headers.items() if k != "X-Signature"})
    with pytest.raises(SignatureInvalid, match="API key"):
        verify(headers | {"X-Api-Key": "pk_test_other"})
    with pytest.raises(SignatureInvalid):
        verify(headers | {"X-Signature": headers["X-Signature"].upper()})


def test_wrong_secret_is_refused() -> None:
    forged = sign_request(
        RestCredentials(CREDS.api_key, generate_hmac_secret()),
        method="POST", target="/v1/payments", body=BODY, now=NOW,
    )
    with pytest.raises(SignatureInvalid):
        verify(forged)


@pytest.mark.parametrize("skew", [dt.timedelta(minutes=5, seconds=1), -dt.timedelta(minutes=6)])
def test_request_outside_the_window_is_stale(skew: dt.timedelta) -> None:
    with pytest.raises(StaleMessage, match="window"):
        verify(signed_headers(), now=NOW + skew)


def test_request_at_the_window_edge_is_accepted() -> None:
    verify(signed_headers(), now=NOW + dt.timedelta(minutes=5))


@pytest.mark.parametrize(
    "headers", [{"X-Timestamp": "soon"}, {"X-Timestamp": "-1"}, {"X-Nonce": "short"}]
)
def test_malformed_auth_headers(headers: dict[str, str]) -> None:
    with pytest.raises(MalformedMessage):
        verify(signed_headers() | headers)


async def test_replayed_nonce_is_refused() -> None:
    guard = InMemoryReplayGuard()
    headers = signed_headers()
    args = {"method": "POST", "target": "/v1/payments", "body": BODY, "now": NOW,
            "secret_for": secret_for, "guard": guard}
    verified = await accept_request(headers, **args)  # type: ignore[arg-type]
    assert verified.api_key == CREDS.api_key
    with pytest.raises(ReplayedMessage):
        await accept_request(headers, **args)  # type: ignore[arg-type]
    fresh = signed_headers(nonce="another-nonce-0123456")
    await accept_request(fresh, **args)  # type: ignore[arg-type]


def test_credentials_repr_hides_the_secret() -> None:
    assert "s3cr3t" not in repr(CREDS)


# ---------------------------------------------------------------------------- webhooks


def event(status: PaymentStatus = PaymentStatus.SUCCEEDED, event_id: str = "evt_1") -> bytes:
    payment = Payment(
        id="pay_1", merchant_id="m1", order_id="ORD-1", status=status,
        amount_minor=12345, currency="CNY",
    )
    return WebhookEvent(id=event_id, type=f"payment.{status.value}", created=NOW,
                        payment=payment).to_json()


def test_webhook_round_trip() -> None:
    body = event()
    received = verify_webhook(
        sign_webhook(WEBHOOK_SECRET, body, now=NOW), body, webhook_secrets=[WEBHOOK_SECRET],
        now=NOW + dt.timedelta(seconds=3),
    )
    assert received.id == "evt_1" and received.type == "payment.succeeded"
    assert received.payment is not None and received.refund is None
    assert received.payment.amount == Money("123.45", "CNY")
    assert received.payment.status is PaymentStatus.SUCCEEDED


def test_webhook_signature_is_hmac_of_timestamp_dot_body() -> None:
    body = event()
    headers = sign_webhook(WEBHOOK_SECRET, body, now=NOW)
    expected = hmac.new(WEBHOOK_SECRET, b"1714552200." + body, hashlib.sha256).hexdigest()
    assert headers == {"X-Webhook-Timestamp": "1714552200", "X-Webhook-Signature": "v1=" + expected}


def test_tampered_webhook_is_refused() -> None:
    body = event()
    headers = sign_webhook(WEBHOOK_SECRET, body, now=NOW)
    with pytest.raises(SignatureInvalid):
        verify_webhook(headers, body.replace(b"12345", b"99999"),
                       webhook_secrets=[WEBHOOK_SECRET], now=NOW)
    with pytest.raises(SignatureInvalid):
        # moving the timestamp to escape the window breaks the signature
        verify_webhook(headers | {"X-Webhook-Timestamp": "1714552300"}, body,
                       webhook_secrets=[WEBHOOK_SECRET], now=NOW)


def test_webhook_with_wrong_secret_or_no_signature_is_refused() -> None:
    body = event()
    forged = sign_webhook(generate_hmac_secret(), body, now=NOW)
    with pytest.raises(SignatureInvalid, match="any configured secret"):
        verify_webhook(forged, body, webhook_secrets=[WEBHOOK_SECRET], now=NOW)
    with pytest.raises(SignatureInvalid):
        verify_webhook({"X-Webhook-Timestamp": "1714552200"}, body,
                       webhook_secrets=[WEBHOOK_SECRET], now=NOW)
    with pytest.raises(SignatureInvalid):
        verify_webhook({"X-Webhook-Signature": forged["X-Webhook-Signature"]}, body,
                       webhook_secrets=[WEBHOOK_SECRET], now=NOW)
    with pytest.raises(SignatureInvalid):
        verify_webhook(forged, body, webhook_secrets=[], now=NOW)


def test_webhook_secret_rotation() -> None:
    body = event()
    old, new = generate_hmac_secret(), generate_hmac_secret()
    by_old = sign_webhook(old, body, now=NOW)
    verify_webhook(by_old, body, webhook_secrets=[new, old], now=NOW)
    both = by_old["X-Webhook-Signature"] + ", " + sign_webhook(new, body, now=NOW)[
        "X-Webhook-Signature"
    ]
    verify_webhook(by_old | {"X-Webhook-Signature": both}, body, webhook_secrets=[new], now=NOW)


def test_expired_webhook_is_stale() -> None:
    body = event()
    headers = sign_webhook(WEBHOOK_SECRET, body, now=NOW)
    with pytest.raises(StaleMessage):
        verify_webhook(headers, body, webhook_secrets=[WEBHOOK_SECRET],
                       now=NOW + dt.timedelta(minutes=5, seconds=1))


async def test_replayed_webhook_is_refused_even_when_re_signed() -> None:
    guard = InMemoryReplayGuard()
    body = event()
    first = sign_webhook(WEBHOOK_SECRET, body, now=NOW)
    await accept_webhook(first, body, webhook_secrets=[WEBHOOK_SECRET], guard=guard, now=NOW)
    with pytest.raises(ReplayedMessage, match="evt_1"):
        await accept_webhook(first, body, webhook_secrets=[WEBHOOK_SECRET], guard=guard,
                             now=NOW + dt.timedelta(seconds=30))
    later = NOW + dt.timedelta(minutes=1)
    resent = sign_webhook(WEBHOOK_SECRET, body, now=later)
    with pytest.raises(ReplayedMessage):
        await accept_webhook(resent, body, webhook_secrets=[WEBHOOK_SECRET], guard=guard,
                             now=later)
    other = event(event_id="evt_2")
    await accept_webhook(sign_webhook(WEBHOOK_SECRET, other, now=later), other,
                         webhook_secrets=[WEBHOOK_SECRET], guard=guard, now=later)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"id":"evt_1","id":"evt_2"}',
        b'{"id":"e","type":"payment.succeeded","created":1,"data":{"object":"payment",'
        b'"id":"p","merchant_id":"m","order_id":"o","status":"succeeded",'
        b'"amount":{"value":123.45,"currency":"CNY"}}}',
        b'{"id":"e","type":"payment.succeeded","created":1,"data":{"object":"payment",'
        b'"id":"p","merchant_id":"m","order_id":"o","status":"succeeded",'
        b'"amount":{"value":true,"currency":"CNY"}}}',
        b'{"id":"e","type":"payment.succeeded","created":1,"data":{"object":"payment",'
        b'"id":"p","merchant_id":"m","order_id":"o","status":"succeeded",'
        b'"amount":{"value":NaN,"currency":"CNY"}}}',
        b'{"id":"e","type":"payment.succeeded","created":1,"data":{"object":"payment",'
        b'"id":"p","merchant_id":"m","order_id":"o","status":"paid-ish",'
        b'"amount":{"value":1,"currency":"CNY"}}}',
        b'{"id":"e","type":"refund.succeeded","created":1,"data":{"object":"payment",'
        b'"id":"p","merchant_id":"m","order_id":"o","status":"succeeded",'
        b'"amount":{"value":1,"currency":"CNY"}}}',
        b"\xff\xfe{}",
        b"[" * 100000 + b"]" * 100000,
    ],
)
def test_signed_but_malformed_webhook_bodies(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        verify_webhook(sign_webhook(WEBHOOK_SECRET, body, now=NOW), body,
                       webhook_secrets=[WEBHOOK_SECRET], now=NOW)


def test_load_json_never_builds_a_float() -> None:
    parsed = load_json(b'{"x": 1.10}')
    assert type(parsed["x"]).__name__ == "Decimal"


# ---------------------------------------------------------------------------- messages


def test_create_payment_round_trip_in_minor_units() -> None:
    assert b'"amount":{"currency":"CNY","value":12345}' in BODY
    parsed = CreatePayment.from_json(BODY)
    assert parsed.amount == Money("123.45", "CNY")
    assert parsed.order_id == "ORD-1"


def test_create_payment_refuses_inexact_amounts() -> None:
    with pytest.raises(AmountNotAccepted):
        CreatePayment(merchant_id="m1", order_id="o1", amount=Money("1.001", "CNY"),
                      return_url="https://r", notify_url="https://n").to_json()
    zero = BODY.replace(b'"value":12345', b'"value":0')
    with pytest.raises(MalformedMessage):
        CreatePayment.from_json(zero)


def test_refund_messages_round_trip() -> None:
    request = CreateRefund(payment_id="pay_1", refund_reference="rf_1",
                           amount=Money("10.00", "CNY"), reason="damaged")
    assert CreateRefund.from_json(request.to_json()) == request
    refund = Refund(id="re_1", payment_id="pay_1", refund_reference="rf_1",
                    status=RefundStatus.PENDING, amount_minor=1000, currency="CNY")
    assert Refund.from_json(refund.to_json()) == refund
    body = WebhookEvent(id="evt_9", type="refund.succeeded", created=NOW,
                        refund=refund).to_json()
    parsed = WebhookEvent.from_json(body)
    assert parsed.refund == refund and parsed.created == NOW


def test_payment_round_trip_other_currency_scale() -> None:
    payment = Payment(id="pay_2", merchant_id="m", order_id="o", status=PaymentStatus.PROCESSING,
                      amount_minor=1500, currency="JPY", redirect_url="https://bank/pay/2")
    parsed = Payment.from_json(payment.to_json())
    assert parsed == payment and parsed.amount == Money("1500", "JPY")
