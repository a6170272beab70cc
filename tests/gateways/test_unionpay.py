"""UnionPay acp 5.1.0: signing string, SHA256withRSA over the hex digest, certificates,
auto-submit form, back notification, queryTrans, refund."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from html.parser import HTMLParser

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from moneyed import Money

from gateways.protocols import (
    AmountNotAccepted,
    MalformedMessage,
    RsaIdentity,
    SignatureInvalid,
)
from gateways.protocols.unionpay import (
    BackTransStatus,
    ConsumeRequest,
    QueryRequest,
    RefundRequest,
    Signer,
    TxnStatus,
    Verifier,
    classify_query,
    encode_form,
    encode_response_string,
    format_txn_time,
    front_form_html,
    parse_back_notification,
    parse_back_trans_response,
    parse_query_response,
    parse_response_string,
    parse_txn_time,
    signing_digest,
    signing_string,
)

MER_ID = "777290058110048"
NOW = dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC)  # txnTime of the test orders


def at() -> dt.datetime:
    """The verification time: now, read when the test runs — the session's test
    certificates are valid from five minutes before they were made, which in a long run
    is well after this module was imported."""
    return dt.datetime.now(dt.UTC)


def consume(**overrides: object) -> ConsumeRequest:
    values: dict[str, object] = {
        "mer_id": MER_ID,
        "order_id": "ORDER20240501001",
        "txn_time": NOW,
        "amount": Money("123.45", "CNY"),
        "front_url": "https://shop.example/return",
        "back_url": "https://shop.example/notify/unionpay",
    }
    values.update(overrides)
    return ConsumeRequest(**values)  # type: ignore[arg-type]


@pytest.fixture
def merchant_signer(merchant_identity: RsaIdentity) -> Signer:
    return Signer(merchant_identity)


@pytest.fixture
def bank_signer(bank_identity: RsaIdentity) -> Signer:
    return Signer(bank_identity, embed_certificate=True)


@pytest.fixture
def bank_side(merchant_identity: RsaIdentity) -> Verifier:
    """How the bank checks a merchant: the merchant's uploaded certificate, by certId."""
    return Verifier(certificates=[merchant_identity.certificate])


@pytest.fixture
def merchant_side(unionpay_root: RsaIdentity) -> Verifier:
    """How the merchant checks the bank: signPubKeyCert must chain to the UnionPay root
    and name the bank."""
    return Verifier(roots=[unionpay_root.certificate], signer_name="China UnionPay test signing")


def notice_fields(**overrides: str) -> dict[str, str]:
    fields = {
        "version": "5.1.0", "encoding": "UTF-8", "accessType": "0", "bizType": "000201",
        "merId": MER_ID, "orderId": "ORDER20240501001", "txnTime": "20240501083000",
        "txnType": "01", "txnSubType": "01", "txnAmt": "12345", "currencyCode": "156",
        "queryId": "782405010830001234567", "traceNo": "123456", "traceTime": "0501083012",
        "settleAmt": "12345", "settleCurrencyCode": "156", "settleDate": "0501",
        "respCode": "00", "respMsg": "成功[0000000]",
    }
    fields.update(overrides)
    return fields


# ---------------------------------------------------------------------------- signing string


def test_signing_string_sorts_nonblank_fields_and_leaves_out_signature() -> None:
    fields = {"txnAmt": "1", "orderId": "A1", "signature": "xyz", "reqReserved": "", "b": "  "}
    assert signing_string(fields) == "orderId=A1&txnAmt=1"
    assert signing_digest(fields) == hashlib.sha256(b"orderId=A1&txnAmt=1").hexdigest().encode()


def test_signature_is_sha256withrsa_over_the_hex_digest(
    merchant_signer: Signer, merchant_identity: RsaIdentity
) -> None:
    signed = merchant_signer.sign(consume().fields())
    text = signing_string(signed).encode()
    raw = base64.b64decode(signed["signature"])
    public = merchant_identity.certificate.public_key()
    # acp 5.1.0 signs the 64 ASCII hex characters of SHA-256(string), not the string itself.
    public.verify(raw, hashlib.sha256(text).hexdigest().encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(Exception):  # noqa: B017 - any InvalidSignature
        public.verify(raw, text, padding.PKCS1v15(), hashes.SHA256())


# ---------------------------------------------------------------------------- consume


def test_consume_fields_follow_acp(merchant_signer: Signer, merchant_identity: RsaIdentity) -> None:
    fields = merchant_signer.sign(consume().fields())
    assert fields["version"] == "5.1.0"
    assert fields["txnType"] == "01" and fields["txnSubType"] == "01"
    assert fields["bizType"] == "000201" and fields["channelType"] == "07"
    assert fields["accessType"] == "0" and fields["currencyCode"] == "156"
    assert fields["txnAmt"] == "12345"
    assert fields["txnTime"] == "20240501083000"  # 00:30 UTC is 08:30 in China
    assert fields["certId"] == str(merchant_identity.certificate.serial_number)
    assert fields["signMethod"] == "01"


def test_consume_round_trip(merchant_signer: Signer, bank_side: Verifier) -> None:
    bank_side.verify(merchant_signer.sign(consume().fields()), now=at())


@pytest.mark.parametrize(
    ("name", "value"),
    [("txnAmt", "12346"), ("orderId", "ORDER20240501002"), ("backUrl", "https://evil.example/n"),
     ("currencyCode", "840"), ("merId", "777290058110049")],
)
def test_tampered_field_is_refused(
    merchant_signer: Signer, bank_side: Verifier, name: str, value: str
) -> None:
    signed = merchant_signer.sign(consume().fields())
    signed[name] = value
    with pytest.raises(SignatureInvalid, match="does not match"):
        bank_side.verify(signed, now=at())


def test_added_field_is_refused(merchant_signer: Signer, bank_side: Verifier) -> None:
    signed = merchant_signer.sign(consume().fields()) | {"reqReserved": "extra"}
    with pytest.raises(SignatureInvalid):
        bank_side.verify(signed, now=at())


def test_stripped_or_garbled_signature_is_refused(
    merchant_signer: Signer, bank_side: Verifier
) -> None:
    signed = merchant_signer.sign(consume().fields())
    for bad in ["", "   ", "not base64!", base64.b64encode(b"\x00" * 256).decode()]:
        with pytest.raises(SignatureInvalid):
            bank_side.verify(signed | {"signature": bad}, now=at())
    del signed["signature"]
    with pytest.raises(SignatureInvalid, match="no signature"):
        bank_side.verify(signed, now=at())


def test_signature_by_another_key_under_the_merchants_cert_id_is_refused(
    forger_identity: RsaIdentity, merchant_identity: RsaIdentity, bank_side: Verifier
) -> None:
    forged = Signer(forger_identity).sign(consume().fields())
    with pytest.raises(SignatureInvalid, match="no trusted certificate"):
        bank_side.verify(forged, now=at())
    # Claiming the merchant's certId does not help: the key does not match the certificate.
    forged_claim = dict(forged) | {"certId": merchant_identity.cert_id}
    forged_claim.pop("signature")
    forged_claim["signature"] = Signer(forger_identity).sign(forged_claim)["signature"]
    with pytest.raises(SignatureInvalid):
        bank_side.verify(forged_claim, now=at())


def test_unsupported_sign_method_is_refused(merchant_signer: Signer, bank_side: Verifier) -> None:
    signed = merchant_signer.sign(consume().fields()) | {"signMethod": "11"}
    with pytest.raises(SignatureInvalid, match="signMethod"):
        bank_side.verify(signed, now=at())


def test_expired_certificate_is_refused(merchant_signer: Signer, bank_side: Verifier) -> None:
    signed = merchant_signer.sign(consume().fields())
    with pytest.raises(SignatureInvalid, match="not valid at"):
        bank_side.verify(signed, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=400))


def test_consume_refuses_bad_inputs() -> None:
    with pytest.raises(MalformedMessage, match="orderId"):
        consume(order_id="order-1").fields()  # acp orderId: 8-40 letters and digits
    with pytest.raises(AmountNotAccepted):
        consume(amount=Money("10.00", "USD")).fields()
    with pytest.raises(AmountNotAccepted):
        consume(amount=Money("10.001", "CNY")).fields()
    with pytest.raises(ValueError, match="timezone"):
        consume(txn_time=dt.datetime(2024, 5, 1)).fields()


def test_txn_time_is_china_time() -> None:
    assert format_txn_time(dt.datetime(2024, 12, 31, 16, 0, tzinfo=dt.UTC)) == "20250101000000"
    assert parse_txn_time("20250101000000") == dt.datetime(2024, 12, 31, 16, 0, tzinfo=dt.UTC)
    for bad in ["2025010100000", "20251301000000", "2025-01-01 00:00"]:
        with pytest.raises(MalformedMessage):
            parse_txn_time(bad)


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = attributes["action"]
        if tag == "input" and attributes.get("type") == "hidden":
            self.fields[attributes["name"]] = attributes["value"]


def test_auto_submit_form_carries_the_signed_fields_intact(
    merchant_signer: Signer, bank_side: Verifier
) -> None:
    signed = merchant_signer.sign(
        consume(front_url="https://shop.example/return?a=1&b=2").fields()
    )
    page = front_form_html("https://gateway.test.95516.com/gateway/api/frontTransReq.do", signed)
    assert 'method="post"' in page and ".submit()" in page
    reader = _FormReader()
    reader.feed(page)
    assert reader.action == "https://gateway.test.95516.com/gateway/api/frontTransReq.do"
    assert reader.fields == signed
    bank_side.verify(reader.fields, now=at())


def test_auto_submit_form_escapes_values() -> None:
    page = front_form_html("https://bank.test/pay", {"x": '"><script>alert(1)</script>'})
    assert "<script>alert" not in page
    reader = _FormReader()
    reader.feed(page)
    assert reader.fields == {"x": '"><script>alert(1)</script>'}


# ---------------------------------------------------------------------------- notification


def test_back_notification_round_trip(bank_signer: Signer, merchant_side: Verifier) -> None:
    body = encode_form(bank_signer.sign(notice_fields())).encode()
    notice = parse_back_notification(body, merchant_side, now=at())
    assert notice.succeeded
    assert notice.amount == Money("123.45", "CNY")
    assert notice.txn_amt == 12345
    assert notice.order_id == "ORDER20240501001"
    assert notice.query_id == "782405010830001234567"
    assert notice.settle_date == "0501"
    assert notice.resp_msg == "成功[0000000]"


def test_failed_payment_notification(bank_signer: Signer, merchant_side: Verifier) -> None:
    body = encode_form(bank_signer.sign(notice_fields(respCode="61", respMsg="余额不足")))
    assert not parse_back_notification(body, merchant_side, now=at()).succeeded


def test_notification_with_tampered_amount_is_refused(
    bank_signer: Signer, merchant_side: Verifier
) -> None:
    body = encode_form(bank_signer.sign(notice_fields())).replace("txnAmt=12345", "txnAmt=1")
    with pytest.raises(SignatureInvalid):
        parse_back_notification(body, merchant_side, now=at())


def test_notification_signed_with_an_untrusted_embedded_certificate_is_refused(
    forger_identity: RsaIdentity, merchant_side: Verifier
) -> None:
    forged = Signer(forger_identity, embed_certificate=True).sign(notice_fields())
    with pytest.raises(SignatureInvalid, match="neither pinned nor issued"):
        parse_back_notification(encode_form(forged), merchant_side, now=at())


def test_notification_with_a_swapped_certificate_is_refused(
    bank_signer: Signer, merchant_side: Verifier, unionpay_root: RsaIdentity
) -> None:
    # A genuine bank certificate pasted over a forger's signature proves nothing.
    signed = bank_signer.sign(notice_fields())
    other = Signer(unionpay_root, embed_certificate=False).sign(notice_fields())
    forged = other | {"signPubKeyCert": signed["signPubKeyCert"]}
    with pytest.raises(SignatureInvalid, match="does not match"):
        parse_back_notification(encode_form(forged), merchant_side, now=at())


def test_pinned_bank_certificate_also_verifies(
    bank_signer: Signer, bank_identity: RsaIdentity
) -> None:
    pinned = Verifier(certificates=[bank_identity.certificate])
    body = encode_form(bank_signer.sign(notice_fields()))
    assert parse_back_notification(body, pinned, now=at()).succeeded


@pytest.mark.parametrize(
    "body",
    [b"txnAmt=1&txnAmt=2", b"%FF%FE=1", b"no-equals-sign", b"\xff\xfe", b"a=1" * 30000],
)
def test_malformed_form_bodies(body: bytes, merchant_side: Verifier) -> None:
    with pytest.raises(MalformedMessage):
        parse_back_notification(body, merchant_side, now=at())


def test_signed_notification_missing_fields_is_malformed(
    bank_signer: Signer, merchant_side: Verifier
) -> None:
    fields = notice_fields()
    del fields["queryId"]
    with pytest.raises(MalformedMessage, match="queryId"):
        parse_back_notification(encode_form(bank_signer.sign(fields)), merchant_side, now=at())
    bad_amount = notice_fields(txnAmt="12.34")
    with pytest.raises(MalformedMessage, match="txnAmt"):
        parse_back_notification(encode_form(bank_signer.sign(bad_amount)), merchant_side, now=at())


def test_non_cny_notification_amount_is_not_silently_cny(
    bank_signer: Signer, merchant_side: Verifier
) -> None:
    body = encode_form(bank_signer.sign(notice_fields(currencyCode="840")))
    notice = parse_back_notification(body, merchant_side, now=at())
    assert notice.currency_code == "840"
    with pytest.raises(AmountNotAccepted):
        _ = notice.amount


# ---------------------------------------------------------------------------- response string


def test_response_string_keeps_pem_and_braced_values(bank_identity: RsaIdentity) -> None:
    pem = bank_identity.certificate_pem()
    text = f"respCode=00&reqReserved={{a=1&b=2}}&signPubKeyCert={pem}&respMsg=成功"
    fields = parse_response_string(text)
    assert fields == {
        "respCode": "00", "reqReserved": "{a=1&b=2}", "signPubKeyCert": pem, "respMsg": "成功",
    }
    assert parse_response_string(encode_response_string(fields)) == fields


@pytest.mark.parametrize("text", ["a=1&b={x", "a=1}&b=2", "a=1&=2", "a=1&b", "a=1&a=2"])
def test_malformed_response_strings(text: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_response_string(text)


def test_response_string_refuses_unbraced_ampersand() -> None:
    with pytest.raises(ValueError):
        encode_response_string({"respMsg": "a&b"})


# ---------------------------------------------------------------------------- queryTrans


@pytest.mark.parametrize(
    ("resp", "orig", "status"),
    [
        ("00", "00", TxnStatus.SUCCEEDED),
        ("00", "03", TxnStatus.PROCESSING),
        ("00", "04", TxnStatus.PROCESSING),
        ("00", "05", TxnStatus.PROCESSING),
        ("03", None, TxnStatus.PROCESSING),
        ("04", None, TxnStatus.PROCESSING),
        ("05", None, TxnStatus.PROCESSING),
        ("34", None, TxnStatus.NOT_FOUND),
        ("00", "01", TxnStatus.FAILED),
        ("00", "61", TxnStatus.FAILED),
        ("00", None, TxnStatus.QUERY_REJECTED),
        ("11", None, TxnStatus.QUERY_REJECTED),
        ("12", "00", TxnStatus.QUERY_REJECTED),  # the query failed; origRespCode means nothing
    ],
)
def test_classify_query(resp: str, orig: str | None, status: TxnStatus) -> None:
    assert classify_query(resp, orig) is status


def test_query_request_fields(merchant_signer: Signer, bank_side: Verifier) -> None:
    fields = QueryRequest(mer_id=MER_ID, order_id="ORDER20240501001", txn_time=NOW).fields()
    assert fields["txnType"] == "00" and fields["txnSubType"] == "00"
    assert fields["txnTime"] == "20240501083000" and "txnAmt" not in fields
    bank_side.verify(merchant_signer.sign(fields), now=at())


def test_query_response_still_processing(bank_signer: Signer, merchant_side: Verifier) -> None:
    answer = encode_response_string(
        bank_signer.sign(notice_fields(respCode="00", origRespCode="05", origRespMsg="处理中"))
    )
    result = parse_query_response(answer, merchant_side, now=at())
    assert result.still_processing and result.status is TxnStatus.PROCESSING
    done = encode_response_string(bank_signer.sign(notice_fields(origRespCode="00")))
    succeeded = parse_query_response(done, merchant_side, now=at())
    assert succeeded.status is TxnStatus.SUCCEEDED and succeeded.txn_amt == 12345


def test_query_response_tampered_orig_resp_code_is_refused(
    bank_signer: Signer, merchant_side: Verifier
) -> None:
    answer = encode_response_string(bank_signer.sign(notice_fields(origRespCode="05")))
    with pytest.raises(SignatureInvalid):
        parse_query_response(answer.replace("origRespCode=05", "origRespCode=00"), merchant_side,
                             now=at())


# ---------------------------------------------------------------------------- refund


def test_refund_references_the_original_query_id(
    merchant_signer: Signer, bank_side: Verifier
) -> None:
    request = RefundRequest(
        mer_id=MER_ID, order_id="REFUND20240501001", orig_qry_id="782405010830001234567",
        txn_time=NOW, amount=Money("23.45", "CNY"), back_url="https://shop.example/n/up",
    )
    fields = request.fields()
    assert fields["txnType"] == "04" and fields["origQryId"] == "782405010830001234567"
    assert fields["txnAmt"] == "2345"
    bank_side.verify(merchant_signer.sign(fields), now=at())
    with pytest.raises(ValueError, match="queryId"):
        RefundRequest(
            mer_id=MER_ID, order_id="REFUND20240501001", orig_qry_id=" ", txn_time=NOW,
            amount=Money("1.00", "CNY"), back_url="https://shop.example/n",
        ).fields()


@pytest.mark.parametrize(
    ("code", "status"),
    [("00", BackTransStatus.ACCEPTED), ("03", BackTransStatus.PROCESSING),
     ("05", BackTransStatus.PROCESSING), ("30", BackTransStatus.REJECTED)],
)
def test_refund_answer(
    bank_signer: Signer, merchant_side: Verifier, code: str, status: BackTransStatus
) -> None:
    answer = encode_response_string(
        bank_signer.sign({"respCode": code, "respMsg": "x", "queryId": "1234567890",
                          "merId": MER_ID, "orderId": "REFUND20240501001", "txnType": "04"})
    )
    assert parse_back_trans_response(answer, merchant_side, now=at()).status is status


def test_payout_request_encrypts_the_account_number(
    merchant_signer: Signer, bank_side: Verifier, bank_identity: RsaIdentity
) -> None:
    from gateways.protocols.unionpay import PayoutRequest, decrypt_sensitive

    request = PayoutRequest(
        mer_id=MER_ID, order_id="PAYOUT2024050101", txn_time=NOW, amount=Money("50.00", "CNY"),
        acc_no="6222020200112233", customer_name="Tea Supplier Ltd",
        encryption_certificate=bank_identity.certificate,
        back_url="https://shop.example/notify/unionpay",
    )
    assert "6222020200112233" not in repr(request)
    fields = merchant_signer.sign(request.fields())
    bank_side.verify(fields, now=at())
    assert fields["txnType"] == "12" and fields["bizType"] == "000401"
    assert fields["encryptCertId"] == bank_identity.cert_id
    assert "6222020200112233" not in encode_form(fields)
    assert decrypt_sensitive(fields["accNo"], bank_identity.private_key) == "6222020200112233"
    with pytest.raises(MalformedMessage):
        decrypt_sensitive("bm90IGVuY3J5cHRlZA==", bank_identity.private_key)
