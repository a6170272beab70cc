"""SM bank: XML signed with SM2 over SM3 of the exclusive-c14n Body; strict parsing; Ack."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from lxml import etree
from moneyed import Money

from gateways.protocols import (
    AmountNotAccepted,
    InMemoryReplayGuard,
    MalformedMessage,
    ReplayedMessage,
    SignatureInvalid,
    Sm2PrivateKey,
    StaleMessage,
)
from gateways.protocols.smbank import (
    Ack,
    OrderStatus,
    PayNotify,
    PayRequest,
    PayResponse,
    QueryResponse,
    RefundRequest,
    RefundResponse,
    SmSigner,
    SmVerifier,
    accept_message,
    canonical_body,
    decode,
    encode,
)

NOW = dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.UTC)
NOTIFY = PayNotify(
    merchant_id="M0001", order_id="ORD20240501001", bank_serial_no="B202405010001",
    amount_minor=12345, status=OrderStatus.SUCCESS, pay_time=NOW,
)


@pytest.fixture
def signer(bank_sm2: Sm2PrivateKey) -> SmSigner:
    return SmSigner(bank_sm2, "bank-2024")


@pytest.fixture
def verifier(bank_sm2: Sm2PrivateKey) -> SmVerifier:
    return SmVerifier({"bank-2024": bank_sm2.public_key})


def sign_raw(root_tag: str, body_xml: str, signer: SmSigner) -> bytes:
    """A correctly signed document around an arbitrary Body, to test the checks that run
    after the signature (a real bank could send these)."""
    body = etree.fromstring(body_xml)
    signature = base64.b64encode(signer.sign(canonical_body(body))).decode()
    return (
        f'<{root_tag}>{body_xml}<Signature alg="SM2-SM3" keyId="{signer.key_id}">'
        f"{signature}</Signature></{root_tag}>"
    ).encode()


def test_pay_notify_round_trip(signer: SmSigner, verifier: SmVerifier) -> None:
    document = encode(NOTIFY, signer, now=NOW, msg_id="abc123")
    envelope = decode(document, PayNotify, verifier)
    assert envelope.message == NOTIFY
    assert envelope.message.amount == Money("123.45", "CNY")
    assert envelope.msg_id == "abc123" and envelope.key_id == "bank-2024"
    assert envelope.send_time == NOW
    assert b"<Amount>123.45</Amount>" in document
    assert b"<SendTime>2024-05-01T16:30:00+08:00</SendTime>" in document


def test_canonical_body_is_exclusive_c14n(signer: SmSigner) -> None:
    document = encode(Ack(ref_msg_id="m1"), signer, now=NOW, msg_id="a1")
    body = etree.fromstring(document).find("Body")
    assert body is not None
    assert canonical_body(body) == (
        b"<Body><MsgType>Ack</MsgType><MsgId>a1</MsgId>"
        b"<SendTime>2024-05-01T16:30:00+08:00</SendTime><RefMsgId>m1</RefMsgId>"
        b"<ResultCode>0000</ResultCode><ResultMsg>OK</ResultMsg></Body>"
    )


def test_escaped_values_survive(signer: SmSigner, verifier: SmVerifier) -> None:
    request = PayRequest(
        merchant_id="M0001", order_id="ORD1", amount=Money("0.01", "CNY"), order_time=NOW,
        notify_url="https://shop.example/n?a=1&b=2", return_url="https://shop.example/r",
        subject='Tea <green> & "oolong" 茶',
    )
    assert decode(encode(request, signer, now=NOW), PayRequest, verifier).message == request


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<Amount>123.45</Amount>", b"<Amount>123.46</Amount>"),
        (b"<OrderId>ORD20240501001</OrderId>", b"<OrderId>ORD20240501002</OrderId>"),
        (b"<Status>SUCCESS</Status>", b"<Status>FAILED</Status>"),
        (b"<Body>", b"<Body>\n  "),  # re-indenting is a change too: nothing is normalised
    ],
)
def test_tampered_body_is_refused(
    signer: SmSigner, verifier: SmVerifier, old: bytes, new: bytes
) -> None:
    document = encode(NOTIFY, signer, now=NOW)
    assert old in document
    with pytest.raises(SignatureInvalid, match="does not match"):
        decode(document.replace(old, new), PayNotify, verifier)


def test_wrong_key_and_unknown_key_id(
    forger_sm2: Sm2PrivateKey, verifier: SmVerifier, signer: SmSigner
) -> None:
    forged = encode(NOTIFY, SmSigner(forger_sm2, "bank-2024"), now=NOW)
    with pytest.raises(SignatureInvalid, match="does not match"):
        decode(forged, PayNotify, verifier)
    unknown = encode(NOTIFY, SmSigner(forger_sm2, "forger"), now=NOW)
    with pytest.raises(SignatureInvalid, match="keyId"):
        decode(unknown, PayNotify, verifier)
    genuine = encode(NOTIFY, signer, now=NOW)
    with pytest.raises(SignatureInvalid):
        decode(genuine, PayNotify, SmVerifier({"bank-2024": forger_sm2.public_key}))


def test_stripped_or_altered_signature(signer: SmSigner, verifier: SmVerifier) -> None:
    document = encode(NOTIFY, signer, now=NOW)
    root = etree.fromstring(document)
    signature = root.find("Signature")
    assert signature is not None
    original = signature.text
    signature.text = ""
    with pytest.raises(SignatureInvalid, match="empty"):
        decode(etree.tostring(root), PayNotify, verifier)
    signature.text = "***"
    with pytest.raises(SignatureInvalid, match="base64"):
        decode(etree.tostring(root), PayNotify, verifier)
    signature.text = original
    signature.set("alg", "RSA-SHA256")
    with pytest.raises(SignatureInvalid, match="algorithm"):
        decode(etree.tostring(root), PayNotify, verifier)
    root.remove(signature)
    with pytest.raises(MalformedMessage, match="exactly <Body> then <Signature>"):
        decode(etree.tostring(root), PayNotify, verifier)


def test_signed_message_cannot_pass_as_another_type(
    signer: SmSigner, verifier: SmVerifier
) -> None:
    response = encode(
        PayResponse(merchant_id="M0001", order_id="ORD1", result_code="0000"), signer, now=NOW
    )
    with pytest.raises(MalformedMessage, match="expected a <PayNotify>"):
        decode(response, PayNotify, verifier)
    renamed = response.replace(b"<PayResponse>", b"<PayNotify>").replace(
        b"</PayResponse>", b"</PayNotify>"
    )
    with pytest.raises(MalformedMessage, match="signed MsgType"):
        decode(renamed, PayNotify, verifier)


def test_wrapped_second_body_is_refused(signer: SmSigner, verifier: SmVerifier) -> None:
    document = encode(NOTIFY, signer, now=NOW)
    body = document[document.index(b"<Body>"):document.index(b"</Body>") + 7]
    wrapped = document.replace(b"</PayNotify>", body + b"</PayNotify>")
    with pytest.raises(MalformedMessage):
        decode(wrapped, PayNotify, verifier)


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?><!DOCTYPE PayNotify [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<PayNotify><Body><OrderId>&xxe;</OrderId></Body></PayNotify>",
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 '
        b'"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><PayNotify>&lol2;</PayNotify>',
        b"<PayNotify><Body><OrderId>x</OrderId></Body>",
        b"<PayNotify><Body><OrderId>x</Body></PayNotify>",
        b"",
        b"not xml",
        b'<?xml version="1.0" encoding="UTF-16"?><PayNotify/>',
        b"<PayNotify>" + b"<a>" * 300 + b"</a>" * 300 + b"</PayNotify>",
        b"<PayNotify>" + b"x" * 70000 + b"</PayNotify>",
        b'<n:PayNotify xmlns:n="urn:x"><Body/><Signature alg="SM2-SM3" keyId="k">AA=='
        b"</Signature></n:PayNotify>",
    ],
)
def test_hostile_or_broken_xml_is_malformed(document: bytes, verifier: SmVerifier) -> None:
    with pytest.raises(MalformedMessage):
        decode(document, PayNotify, verifier)


def test_comment_inside_a_value_is_refused(signer: SmSigner, verifier: SmVerifier) -> None:
    # c14n without comments would sign "ORD20240501001" while .text reads only "ORD2024";
    # the document is refused before either can happen.
    document = encode(NOTIFY, signer, now=NOW).replace(
        b"<OrderId>ORD2024", b"<OrderId>ORD2024<!-- -->"
    )
    with pytest.raises(MalformedMessage, match="comments"):
        decode(document, PayNotify, verifier)


def test_processing_instruction_is_refused(signer: SmSigner, verifier: SmVerifier) -> None:
    document = encode(NOTIFY, signer, now=NOW).replace(b"<Body>", b"<Body><?pi x?>")
    with pytest.raises(MalformedMessage):
        decode(document, PayNotify, verifier)


def test_signed_but_invalid_bodies_are_malformed(signer: SmSigner, verifier: SmVerifier) -> None:
    head = "<MsgType>PayNotify</MsgType><MsgId>m1</MsgId><SendTime>2024-05-01T16:30:00+08:00</SendTime>"
    fields = (
        "<MerchantId>M1</MerchantId><OrderId>O1</OrderId><BankSerialNo>B1</BankSerialNo>"
        "<Currency>CNY</Currency><Status>SUCCESS</Status>"
    )
    cases = {
        "duplicate": f"<Body>{head}{fields}<Amount>1.00</Amount><Amount>2.00</Amount></Body>",
        "amount scale": f"<Body>{head}{fields}<Amount>1.0</Amount></Body>",
        "float-ish": f"<Body>{head}{fields}<Amount>1e2</Amount></Body>",
        "missing amount": f"<Body>{head}{fields}</Body>",
        "nested": f"<Body>{head}{fields}<Amount><V>1.00</V></Amount></Body>",
        "attribute": f'<Body>{head}{fields}<Amount unit="yuan">1.00</Amount></Body>',
        "no SendTime offset": (
            "<Body><MsgType>PayNotify</MsgType><MsgId>m1</MsgId>"
            f"<SendTime>2024-05-01T16:30:00</SendTime>{fields}<Amount>1.00</Amount></Body>"
        ),
        "unknown status": f"<Body>{head}{fields.replace('SUCCESS', 'MAYBE')}"
        "<Amount>1.00</Amount></Body>",
    }
    for name, body in cases.items():
        with pytest.raises(MalformedMessage):
            decode(sign_raw("PayNotify", body, signer), PayNotify, verifier)
            pytest.fail(name)


def test_foreign_currency_is_read_as_data(signer: SmSigner, verifier: SmVerifier) -> None:
    usd = PayNotify(merchant_id="M1", order_id="O1", bank_serial_no="B1", amount_minor=100,
                    status=OrderStatus.SUCCESS, currency="USD")
    received = decode(encode(usd, signer, now=NOW), PayNotify, verifier).message
    assert received.currency == "USD" and received.amount == Money("1.00", "USD")


def test_outbound_amounts_are_exact_cny() -> None:
    request = RefundRequest(merchant_id="M1", refund_id="R1", order_id="O1",
                            orig_bank_serial_no="B1", amount=Money("1.005", "CNY"),
                            notify_url="https://n")
    with pytest.raises(AmountNotAccepted):
        request.body_fields()


def test_ack_round_trip(signer: SmSigner, verifier: SmVerifier) -> None:
    received = decode(encode(Ack(ref_msg_id="abc123"), signer, now=NOW), Ack, verifier)
    assert received.message.received and received.message.ref_msg_id == "abc123"
    retry = decode(encode(Ack.retry("abc123", "db busy"), signer, now=NOW), Ack, verifier)
    assert not retry.message.received and retry.message.result_code == "9999"


def test_query_and_refund_responses(signer: SmSigner, verifier: SmVerifier) -> None:
    processing = QueryResponse(merchant_id="M1", order_id="O1", result_code="0000",
                               status=OrderStatus.PROCESSING)
    got = decode(encode(processing, signer, now=NOW), QueryResponse, verifier).message
    assert got.still_processing and got.amount_minor is None
    done = QueryResponse(merchant_id="M1", order_id="O1", result_code="0000",
                         status=OrderStatus.SUCCESS, bank_serial_no="B1", amount_minor=12345)
    assert decode(encode(done, signer, now=NOW), QueryResponse, verifier).message == done
    refund = RefundResponse(merchant_id="M1", refund_id="R1", result_code="0000",
                            status=OrderStatus.PROCESSING, refund_serial_no="RS1")
    assert decode(encode(refund, signer, now=NOW), RefundResponse, verifier).message == refund


async def test_replayed_and_stale_messages(signer: SmSigner, verifier: SmVerifier) -> None:
    guard = InMemoryReplayGuard()
    window = dt.timedelta(minutes=10)
    document = encode(NOTIFY, signer, now=NOW)
    await accept_message(document, PayNotify, verifier, guard=guard, now=NOW, window=window)
    with pytest.raises(ReplayedMessage):
        await accept_message(document, PayNotify, verifier, guard=guard, now=NOW, window=window)
    with pytest.raises(StaleMessage):
        await accept_message(document, PayNotify, verifier, guard=InMemoryReplayGuard(),
                             now=NOW + dt.timedelta(minutes=11), window=window)
