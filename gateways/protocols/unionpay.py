"""UnionPay online gateway ("acp", 全渠道) version 5.1.0: wire format, signing, verification.

Both sides use this module: the merchant's adapter builds and signs requests and verifies
the bank's answers and notifications; the sandbox bank does the reverse with its own
identity.  Everything here is pure (no I/O, no clock unless one is passed in).

Wire format, as in the acp 5.1.0 SDK:
- Requests are flat `name=value` fields.  The front transaction (consume) reaches the bank
  as a browser POST of an auto-submitting HTML form to `frontTransReq.do`; back-office
  calls (`backTransReq.do`, `queryTrans.do`) are server POSTs with an
  `application/x-www-form-urlencoded` body.
- Synchronous answers are `k=v&k=v` text, *not* URL-encoded; a value that itself holds
  `&` is wrapped in `{...}` (see `parse_response_string`).
- Back notifications are form-encoded POSTs to `backUrl`; the merchant acknowledges with
  HTTP 200, anything else makes the bank retry.
- Signing string: the non-blank fields except `signature`, sorted by name, joined as
  `k=v&k=v`.  acp 5.1.0 (signMethod 01) does NOT sign that string directly: it takes the
  lowercase hex SHA-256 of it and signs *those 64 ASCII characters* with SHA256withRSA
  (RSASSA-PKCS1-v1_5), then base64-encodes the result (`SDKUtil.signBySoft256` over
  `SecureUtil.sha256X16`).  `signing_digest` reproduces exactly that.
- `certId` is the signer's certificate serial number in decimal.  In 5.1.0 the bank also
  embeds its signing certificate as PEM in `signPubKeyCert`; the receiver trusts it only
  if it is pinned, or, as the acp SDK does (`CertUtil.verifyAndGetVerifyPubKey`), if it
  chains through the configured intermediate ("middle") certificates to a configured root,
  is valid now, may sign (key usage), and names the bank (its subject's CN equals the
  configured signer name: 中国银联股份有限公司 in production) — never because it is in
  the message, nor because anyone else under the same root issued it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from moneyed import CurrencyDoesNotExist, Money, get_currency

from gateways.protocols.amounts import minor_to_money, money_to_minor, parse_minor_units
from gateways.protocols.crypto import rsa_sha256_sign, rsa_sha256_verify, sha256_hex
from gateways.protocols.errors import AmountNotAccepted, MalformedMessage, SignatureInvalid
from gateways.protocols.keys import RsaIdentity

__all__ = [
    "ACP_VERSION",
    "BACK_TRANS_PATH",
    "CHINA_TIME",
    "CURRENCY_CNY",
    "FRONT_TRANS_PATH",
    "PROCESSING_RESP_CODES",
    "QUERY_TRANS_PATH",
    "BackTransAnswer",
    "BackTransStatus",
    "ConsumeRequest",
    "PayoutRequest",
    "QueryRequest",
    "QueryResult",
    "RefundRequest",
    "Signer",
    "TransactionNotice",
    "TxnStatus",
    "TxnType",
    "Verifier",
    "classify_query",
    "currency_for_code",
    "decode_customer_info",
    "decode_form",
    "decrypt_sensitive",
    "encode_customer_info",
    "encode_form",
    "encode_response_string",
    "encrypt_sensitive",
    "fen_to_money",
    "format_txn_time",
    "front_form_html",
    "money_to_fen",
    "parse_back_notification",
    "parse_back_trans_response",
    "parse_query_response",
    "parse_response_string",
    "parse_txn_time",
    "signing_digest",
    "signing_string",
]

ACP_VERSION = "5.1.0"
ENCODING = "UTF-8"
SIGN_METHOD_RSA = "01"
CURRENCY_CNY = "156"
ACCESS_TYPE_MERCHANT = "0"
CHANNEL_INTERNET = "07"
BIZ_TYPE_B2C_GATEWAY = "000201"
#: 代付 (payment to a bank account): the merchant pays out of its settlement account
BIZ_TYPE_PAYOUT = "000401"
FRONT_TRANS_PATH = "/gateway/api/frontTransReq.do"
BACK_TRANS_PATH = "/gateway/api/backTransReq.do"
QUERY_TRANS_PATH = "/gateway/api/queryTrans.do"

RESP_SUCCESS = "00"
RESP_NOT_FOUND = "34"
#: 退票: a payout (代付) paid, then sent back by the payee's bank (wrong name, closed
#: account); notified with its own queryId (origQryId: the payout's) and the reason in
#: respMsg, and answered as origRespCode by queryTrans. (acp leaves 退票 reporting to each
#: acquirer's own codes; this is the code paycore's UnionPay integration agrees on.)
RESP_RETURNED = "RT"
PROCESSING_RESP_CODES = frozenset({"03", "04", "05"})

# China Standard Time has had no daylight saving since 1991; a fixed offset needs no tzdata.
CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "CST")

_FEN_DIGITS = 12
_MAX_MESSAGE_BYTES = 64 * 1024
_MER_ID = re.compile(r"[0-9A-Za-z]{15}")
_ORDER_ID = re.compile(r"[0-9A-Za-z]{8,40}")
_TXN_TIME = re.compile(r"[0-9]{14}")
_URL = re.compile(r"https?://[^\s\"'<>]+")


class TxnType(StrEnum):
    QUERY = "00"
    CONSUME = "01"
    REFUND = "04"
    CONSUME_UNDO = "31"
    PAYOUT = "12"


# ---------------------------------------------------------------------------- amounts, time


def money_to_fen(amount: Money) -> int:
    """`txnAmt`: a positive CNY amount in whole fen, at most 12 digits; never rounded."""
    return money_to_minor(amount, currency="CNY", max_digits=_FEN_DIGITS)


def fen_to_money(fen: int) -> Money:
    return minor_to_money(fen, "CNY")


def format_txn_time(moment: dt.datetime) -> str:
    """`txnTime` is yyyyMMddHHmmss in China time, whatever zone the caller works in."""
    if moment.tzinfo is None:
        raise ValueError("txnTime needs a timezone-aware datetime")
    return moment.astimezone(CHINA_TIME).strftime("%Y%m%d%H%M%S")


def parse_txn_time(text: str) -> dt.datetime:
    if not _TXN_TIME.fullmatch(text):
        raise MalformedMessage(f"txnTime must be yyyyMMddHHmmss, got {text!r}")
    try:
        return dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=CHINA_TIME)
    except ValueError:
        raise MalformedMessage(f"txnTime {text!r} is not a real date and time") from None


# ---------------------------------------------------------------------------- signing


def _signed_fields(fields: Mapping[str, str]) -> list[tuple[str, str]]:
    # The SDK's filterBlank drops blank values before signing, so they must not count here.
    return sorted((k, v) for k, v in fields.items() if k != "signature" and v.strip())


def signing_string(fields: Mapping[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in _signed_fields(fields))


def signing_digest(fields: Mapping[str, str]) -> bytes:
    """What SHA256withRSA actually signs in acp 5.1.0: the ASCII hex SHA-256 of the string."""
    return sha256_hex(signing_string(fields).encode("utf-8")).encode("ascii")


class Signer:
    """Signs outgoing fields with an RSA identity, setting `certId` (and, for a bank,
    `signPubKeyCert`, as acp 5.1.0 banks do)."""

    def __init__(self, identity: RsaIdentity, *, embed_certificate: bool = False) -> None:
        self._identity = identity
        self._embed = embed_certificate

    @property
    def cert_id(self) -> str:
        return self._identity.cert_id

    def sign(self, fields: Mapping[str, str]) -> dict[str, str]:
        signed = {k: v.strip() for k, v in fields.items() if k != "signature" and v.strip()}
        signed["certId"] = self._identity.cert_id
        signed["signMethod"] = SIGN_METHOD_RSA
        if self._embed:
            signed["signPubKeyCert"] = self._identity.certificate_pem()
        raw = rsa_sha256_sign(self._identity.private_key, signing_digest(signed))
        signed["signature"] = base64.b64encode(raw).decode("ascii")
        return signed


class Verifier:
    """Checks a message's signature against certificates this side trusts.

    `certificates` are pinned signing certificates, found by `certId` (how a bank finds a
    merchant's uploaded certificate, and how 5.0.0 merchants found the bank's).
    `roots` are CA certificates and `intermediates` the CAs between them and the bank's
    signing certificate: a `signPubKeyCert` carried in the message is used only if it is
    pinned, or if it chains through `intermediates` to one of `roots` at the time of
    verification (every certificate of the path valid then, each CA a CA that may sign
    certificates, within its path length) with a key usage that allows signing, and its
    subject's common name is `signer_name` — another party's certificate under the same
    root proves nothing about the bank. Trusting roots without a signer name is refused.
    """

    def __init__(
        self,
        *,
        certificates: Iterable[x509.Certificate] = (),
        roots: Iterable[x509.Certificate] = (),
        intermediates: Iterable[x509.Certificate] = (),
        signer_name: str | None = None,
    ) -> None:
        self._by_cert_id = {str(c.serial_number): c for c in certificates}
        self._roots = tuple(roots)
        self._intermediates = list(intermediates)
        if self._roots and not signer_name:
            raise ValueError("a verifier that trusts roots needs the bank's signer name: "
                             "the common name its signing certificate must carry")
        self._signer_name = signer_name
        #: the bank's signing certificate of the last message verified (for health)
        self.last_signer: x509.Certificate | None = None

    def verify(self, fields: Mapping[str, str], *, now: dt.datetime | None = None) -> None:
        signature_b64 = fields.get("signature", "")
        if not signature_b64.strip():
            raise SignatureInvalid("the message carries no signature")
        if fields.get("signMethod") != SIGN_METHOD_RSA:
            raise SignatureInvalid(
                f"unsupported signMethod {fields.get('signMethod')!r}; only 01 (RSA) is accepted"
            )
        moment = now or dt.datetime.now(dt.UTC)
        certificate = self._certificate_for(fields, moment)
        if not (
            certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc
        ):
            raise SignatureInvalid(
                f"certificate with certId {certificate.serial_number} is not valid at {moment}"
            )
        public_key = certificate.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise SignatureInvalid("the signing certificate does not hold an RSA key")
        try:
            raw = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureInvalid("the signature is not valid base64") from None
        if not rsa_sha256_verify(public_key, raw, signing_digest(fields)):
            raise SignatureInvalid(
                "signature does not match the message: a field was altered, or it was "
                f"signed with another key than certId {certificate.serial_number}"
            )
        self.last_signer = certificate

    def _certificate_for(self, fields: Mapping[str, str], now: dt.datetime) -> x509.Certificate:
        embedded = fields.get("signPubKeyCert", "").strip()
        if embedded:
            try:
                certificate = x509.load_pem_x509_certificate(embedded.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                raise SignatureInvalid("signPubKeyCert is not a PEM certificate") from None
            pinned = self._by_cert_id.get(str(certificate.serial_number))
            if pinned is not None and pinned == certificate:
                return certificate
            if self._roots:
                self._check_chain(certificate, now)
                return certificate
            raise SignatureInvalid(
                f"signPubKeyCert (serial {certificate.serial_number}) is neither pinned nor "
                "issued by a trusted root"
            )
        cert_id = fields.get("certId", "")
        found = self._by_cert_id.get(cert_id)
        if found is None:
            raise SignatureInvalid(f"no trusted certificate has certId {cert_id!r}")
        return found

    def _check_chain(self, certificate: x509.Certificate, now: dt.datetime) -> None:
        """Path to a root through the intermediates (RFC 5280 path validation by
        `cryptography.x509.verification`: signatures, validity at `now`, CA basic
        constraints and key usage, path lengths), then what makes it the bank's: a key
        usage that allows signing and the expected subject."""
        serial = certificate.serial_number
        verifier = (PolicyBuilder().store(Store(list(self._roots))).time(now)
                    # the CAs under the web PKI's rules; the leaf is no TLS client, so its
                    # extensions are checked below, as a signing certificate's
                    .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                        ee_policy=ExtensionPolicy.permit_all())
                    .build_client_verifier())
        try:
            verifier.verify(certificate, self._intermediates)
        except VerificationError as exc:
            raise SignatureInvalid(
                f"signPubKeyCert (serial {serial}) is neither pinned nor issued by a trusted "
                f"root (through the configured intermediates) valid at {now:%Y-%m-%d %H:%M:%S}"
                f" UTC: {exc}"
            ) from None
        _require_signing_use(certificate)
        names = [str(a.value) for a in certificate.subject.get_attributes_for_oid(
            NameOID.COMMON_NAME)]
        if names != [self._signer_name]:
            raise SignatureInvalid(
                f"signPubKeyCert (serial {serial}) names {', '.join(names) or 'no one'}, not "
                f"the bank's signer {self._signer_name!r}: another party's certificate"
            )


def _require_signing_use(certificate: x509.Certificate) -> None:
    """A certificate that signs messages: not a CA, and, if it states a key usage, one
    that allows digital signatures (or non-repudiation, as bank signing certificates
    often say)."""
    serial = certificate.serial_number
    try:
        basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is not None and basic.ca:
        raise SignatureInvalid(f"certificate {serial} is a CA certificate, not a signer's")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise SignatureInvalid(f"certificate {serial} is not for signing (key usage)")


# ---------------------------------------------------------------------------- encodings


def decode_form(body: bytes | str) -> dict[str, str]:
    """A form-encoded POST body (notification or request) as fields; duplicates refused."""
    if len(body) > _MAX_MESSAGE_BYTES:
        raise MalformedMessage("the form body is larger than 64 KiB")
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, encoding="utf-8", errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise MalformedMessage("the body is not a UTF-8 form-encoded field list") from None
    return _unique(pairs)


def encode_form(fields: Mapping[str, str]) -> str:
    return urlencode(list(fields.items()), encoding="utf-8")


def parse_response_string(text: str) -> dict[str, str]:
    """The acp SDK's `convertResultStringToMap`: split on `&` outside `{...}`, then at the
    first `=`, so a PEM certificate's `=` padding stays inside its value."""
    if len(text) > _MAX_MESSAGE_BYTES:
        raise MalformedMessage("the response is larger than 64 KiB")
    pairs: list[tuple[str, str]] = []
    depth = 0
    start = 0
    for index, char in enumerate(text + "&"):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise MalformedMessage("unbalanced '}' in the response string")
        elif char == "&" and depth == 0:
            part = text[start:index]
            start = index + 1
            if not part:
                continue
            name, sep, value = part.partition("=")
            if not sep or not name:
                raise MalformedMessage(f"response segment without name=value: {part[:40]!r}")
            pairs.append((name, value))
    if depth != 0:
        raise MalformedMessage("unbalanced '{' in the response string")
    return _unique(pairs)


def encode_response_string(fields: Mapping[str, str]) -> str:
    """What a bank writes as its synchronous answer (the sandbox's side of the above)."""
    for name, value in fields.items():
        if "&" in value and not (value.startswith("{") and value.endswith("}")):
            raise ValueError(f"field {name} holds '&' and must be wrapped in {{...}}")
    return "&".join(f"{k}={v}" for k, v in fields.items())


def _unique(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            # Two values for one signed name invite "verify one, use the other" bugs.
            raise MalformedMessage(f"field {name!r} appears more than once")
        fields[name] = value
    return fields


def _require(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise MalformedMessage(f"required field {name} is missing")
    return value


def _check(pattern: re.Pattern[str], value: str, name: str) -> str:
    if not pattern.fullmatch(value):
        raise MalformedMessage(f"{name} {value!r} has the wrong format")
    return value


def _base_fields(mer_id: str, txn_time: dt.datetime) -> dict[str, str]:
    return {
        "version": ACP_VERSION,
        "encoding": ENCODING,
        "signMethod": SIGN_METHOD_RSA,
        "accessType": ACCESS_TYPE_MERCHANT,
        "merId": _check(_MER_ID, mer_id, "merId"),
        "txnTime": format_txn_time(txn_time),
    }


# ---------------------------------------------------------------------------- consume (front)


@dataclass(frozen=True)
class ConsumeRequest:
    """The customer-facing payment: fields for the auto-submit form to `frontTransReq.do`."""

    mer_id: str
    order_id: str
    txn_time: dt.datetime
    amount: Money
    front_url: str
    back_url: str
    channel_type: str = CHANNEL_INTERNET
    pay_timeout: dt.datetime | None = None
    #: 请求方保留域: echoed unchanged in the notification and the query answer
    req_reserved: str | None = None

    def fields(self) -> dict[str, str]:
        fields = _base_fields(self.mer_id, self.txn_time) | {
            "txnType": TxnType.CONSUME.value,
            "txnSubType": "01",
            "bizType": BIZ_TYPE_B2C_GATEWAY,
            "channelType": self.channel_type,
            "orderId": _check(_ORDER_ID, self.order_id, "orderId"),
            "txnAmt": str(money_to_fen(self.amount)),
            "currencyCode": CURRENCY_CNY,
            "frontUrl": _check(_URL, self.front_url, "frontUrl"),
            "backUrl": _check(_URL, self.back_url, "backUrl"),
        }
        if self.pay_timeout is not None:
            fields["payTimeout"] = format_txn_time(self.pay_timeout)
        if self.req_reserved:
            fields["reqReserved"] = _check_reserved(self.req_reserved)
        return fields


def front_form_html(action_url: str, signed_fields: Mapping[str, str]) -> str:
    """The page that carries the customer's browser to the bank (acp `createAutoFormHtml`)."""
    inputs = "\n".join(
        f'    <input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
        for k, v in signed_fields.items()
    )
    return (
        "<!DOCTYPE html>\n"
        '<html><head><meta charset="UTF-8"/><title>Redirecting to UnionPay</title></head>\n'
        '<body onload="document.getElementById(\'pay_form\').submit();">\n'
        f'  <form id="pay_form" action="{html.escape(action_url)}" method="post">\n'
        f"{inputs}\n"
        '    <noscript><button type="submit">Continue to UnionPay</button></noscript>\n'
        "  </form>\n"
        "</body></html>\n"
    )


# ---------------------------------------------------------------------------- notifications


@dataclass(frozen=True)
class TransactionNotice:
    """A verified back notification (or front return) about one transaction."""

    mer_id: str
    order_id: str
    txn_time: str
    txn_type: str
    txn_sub_type: str
    query_id: str
    resp_code: str
    resp_msg: str
    txn_amt: int
    currency_code: str
    orig_qry_id: str | None
    settle_amt: int | None
    settle_date: str | None
    trace_no: str | None
    fields: Mapping[str, str] = field(repr=False)

    @property
    def succeeded(self) -> bool:
        return self.resp_code == RESP_SUCCESS

    @property
    def amount(self) -> Money:
        if self.currency_code != CURRENCY_CNY:
            raise AmountNotAccepted(f"currencyCode {self.currency_code} is not 156 (CNY)")
        return fen_to_money(self.txn_amt)

    @property
    def stated_amount(self) -> Money:
        """`txnAmt` in whatever currency `currencyCode` names (for a mismatch check that
        must see what the bank said rather than fail to read it)."""
        return minor_to_money(self.txn_amt, currency_for_code(self.currency_code))

    @property
    def req_reserved(self) -> str | None:
        return self.fields.get("reqReserved") or None


def parse_back_notification(
    body: bytes | str, verifier: Verifier, *, now: dt.datetime | None = None
) -> TransactionNotice:
    fields = decode_form(body)
    verifier.verify(fields, now=now)
    return _notice(fields)


def _optional_amount(fields: Mapping[str, str], name: str) -> int | None:
    value = fields.get(name, "")
    return parse_minor_units(value, field=name, max_digits=_FEN_DIGITS) if value else None


def _notice(fields: Mapping[str, str]) -> TransactionNotice:
    txn_time = _require(fields, "txnTime")
    parse_txn_time(txn_time)
    return TransactionNotice(
        mer_id=_check(_MER_ID, _require(fields, "merId"), "merId"),
        order_id=_check(_ORDER_ID, _require(fields, "orderId"), "orderId"),
        txn_time=txn_time,
        txn_type=_require(fields, "txnType"),
        txn_sub_type=fields.get("txnSubType", ""),
        query_id=_require(fields, "queryId"),
        resp_code=_require(fields, "respCode"),
        resp_msg=fields.get("respMsg", ""),
        txn_amt=parse_minor_units(
            _require(fields, "txnAmt"), field="txnAmt", max_digits=_FEN_DIGITS
        ),
        currency_code=fields.get("currencyCode", CURRENCY_CNY),
        orig_qry_id=fields.get("origQryId") or None,
        settle_amt=_optional_amount(fields, "settleAmt"),
        settle_date=fields.get("settleDate") or None,
        trace_no=fields.get("traceNo") or None,
        fields=dict(fields),
    )


# ---------------------------------------------------------------------------- query


class TxnStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PROCESSING = "processing"  # 03/04/05: ask again later
    NOT_FOUND = "not_found"  # 34: the bank has no such order (yet)
    RETURNED = "returned"  # RT: a payout paid, then sent back (退票)
    QUERY_REJECTED = "query_rejected"  # the query itself failed; the outcome is still unknown


def classify_query(resp_code: str, orig_resp_code: str | None) -> TxnStatus:
    """acp's rule: respCode is about the query, origRespCode about the original payment."""
    if resp_code in PROCESSING_RESP_CODES:
        return TxnStatus.PROCESSING
    if resp_code == RESP_NOT_FOUND:
        return TxnStatus.NOT_FOUND
    if resp_code != RESP_SUCCESS:
        return TxnStatus.QUERY_REJECTED
    if not orig_resp_code:
        # A successful query that does not say how the payment went tells us nothing.
        return TxnStatus.QUERY_REJECTED
    if orig_resp_code == RESP_SUCCESS:
        return TxnStatus.SUCCEEDED
    if orig_resp_code == RESP_RETURNED:
        return TxnStatus.RETURNED
    if orig_resp_code in PROCESSING_RESP_CODES:
        return TxnStatus.PROCESSING
    return TxnStatus.FAILED


@dataclass(frozen=True)
class QueryRequest:
    """`queryTrans`: identified by the original's merId + orderId + txnTime."""

    mer_id: str
    order_id: str
    txn_time: dt.datetime
    biz_type: str = BIZ_TYPE_B2C_GATEWAY

    def fields(self) -> dict[str, str]:
        return _base_fields(self.mer_id, self.txn_time) | {
            "txnType": TxnType.QUERY.value,
            "txnSubType": "00",
            "bizType": self.biz_type,
            "orderId": _check(_ORDER_ID, self.order_id, "orderId"),
        }


@dataclass(frozen=True)
class QueryResult:
    status: TxnStatus
    resp_code: str
    resp_msg: str
    orig_resp_code: str | None
    orig_resp_msg: str | None
    order_id: str | None
    query_id: str | None
    txn_amt: int | None
    currency_code: str | None
    settle_amt: int | None
    settle_date: str | None
    fields: Mapping[str, str] = field(repr=False)

    @property
    def still_processing(self) -> bool:
        return self.status is TxnStatus.PROCESSING


def parse_query_response(
    text: str, verifier: Verifier, *, now: dt.datetime | None = None
) -> QueryResult:
    fields = parse_response_string(text)
    verifier.verify(fields, now=now)
    resp_code = _require(fields, "respCode")
    orig = fields.get("origRespCode") or None
    return QueryResult(
        status=classify_query(resp_code, orig),
        resp_code=resp_code,
        resp_msg=fields.get("respMsg", ""),
        orig_resp_code=orig,
        orig_resp_msg=fields.get("origRespMsg") or None,
        order_id=fields.get("orderId") or None,
        query_id=fields.get("queryId") or None,
        txn_amt=_optional_amount(fields, "txnAmt"),
        currency_code=fields.get("currencyCode") or None,
        settle_amt=_optional_amount(fields, "settleAmt"),
        settle_date=fields.get("settleDate") or None,
        fields=fields,
    )


# ---------------------------------------------------------------------------- refund


@dataclass(frozen=True)
class RefundRequest:
    """`backTransReq` refund (txnType 04): a new orderId of its own, pointing at the
    captured payment by the bank's `origQryId`."""

    mer_id: str
    order_id: str
    orig_qry_id: str
    txn_time: dt.datetime
    amount: Money
    back_url: str
    channel_type: str = CHANNEL_INTERNET
    req_reserved: str | None = None

    def fields(self) -> dict[str, str]:
        if not self.orig_qry_id.strip():
            raise ValueError("a refund must reference the original payment's queryId")
        reserved = {"reqReserved": _check_reserved(self.req_reserved)} if self.req_reserved else {}
        return reserved | _base_fields(self.mer_id, self.txn_time) | {
            "txnType": TxnType.REFUND.value,
            "txnSubType": "00",
            "bizType": BIZ_TYPE_B2C_GATEWAY,
            "channelType": self.channel_type,
            "orderId": _check(_ORDER_ID, self.order_id, "orderId"),
            "origQryId": self.orig_qry_id,
            "txnAmt": str(money_to_fen(self.amount)),
            "currencyCode": CURRENCY_CNY,
            "backUrl": _check(_URL, self.back_url, "backUrl"),
        }


class BackTransStatus(StrEnum):
    ACCEPTED = "accepted"  # 00: taken; the outcome arrives by notification or query
    PROCESSING = "processing"  # 03/04/05: unknown for now; query before trying anything else
    REJECTED = "rejected"  # anything else: the bank did not take it


@dataclass(frozen=True)
class BackTransAnswer:
    status: BackTransStatus
    resp_code: str
    resp_msg: str
    query_id: str | None
    fields: Mapping[str, str] = field(repr=False)


def parse_back_trans_response(
    text: str, verifier: Verifier, *, now: dt.datetime | None = None
) -> BackTransAnswer:
    fields = parse_response_string(text)
    verifier.verify(fields, now=now)
    resp_code = _require(fields, "respCode")
    if resp_code == RESP_SUCCESS:
        status = BackTransStatus.ACCEPTED
    elif resp_code in PROCESSING_RESP_CODES:
        status = BackTransStatus.PROCESSING
    else:
        status = BackTransStatus.REJECTED
    return BackTransAnswer(
        status=status,
        resp_code=resp_code,
        resp_msg=fields.get("respMsg", ""),
        query_id=fields.get("queryId") or None,
        fields=fields,
    )


# ---------------------------------------------------------------------------- payout (代付)


def encode_customer_info(fields: Mapping[str, str]) -> str:
    """`customerInfo`: base64 of `{k=v&k=v}` (acp `getCustomerInfo`), e.g. customerNm."""
    inner = "&".join(f"{k}={v}" for k, v in fields.items())
    return base64.b64encode(("{" + inner + "}").encode("utf-8")).decode("ascii")


def decode_customer_info(text: str) -> dict[str, str]:
    try:
        raw = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise MalformedMessage("customerInfo is not base64 UTF-8") from None
    if not (raw.startswith("{") and raw.endswith("}")):
        raise MalformedMessage("customerInfo must be wrapped in {...}")
    return parse_response_string(raw[1:-1])


@dataclass(frozen=True)
class PayoutRequest:
    """`backTransReq` 代付 (txnType 12, bizType 000401): pay `amount` out of the merchant's
    settlement account to a bank account.  The answer only says whether the bank took it;
    the outcome comes by back notification or `queryTrans`.

    As in acp, `accNo` travels encrypted with UnionPay's encryption certificate
    (RSA/ECB/PKCS1Padding, base64; `encryptCertId` names the certificate), so the account
    number is never in clear text in the request, a log or a proxy."""

    mer_id: str
    order_id: str
    txn_time: dt.datetime
    amount: Money
    acc_no: str = field(repr=False)
    customer_name: str
    back_url: str
    #: UnionPay's encryption certificate (not its signing one)
    encryption_certificate: x509.Certificate = field(repr=False)
    req_reserved: str | None = None
    channel_type: str = CHANNEL_INTERNET

    def fields(self) -> dict[str, str]:
        if not re.fullmatch(r"[0-9]{8,30}", self.acc_no):
            raise ValueError("accNo must be 8-30 digits")
        fields = _base_fields(self.mer_id, self.txn_time) | {
            "txnType": TxnType.PAYOUT.value,
            "txnSubType": "00",
            "bizType": BIZ_TYPE_PAYOUT,
            "channelType": self.channel_type,
            "orderId": _check(_ORDER_ID, self.order_id, "orderId"),
            "txnAmt": str(money_to_fen(self.amount)),
            "currencyCode": CURRENCY_CNY,
            "accNo": encrypt_sensitive(self.acc_no, self.encryption_certificate),
            "encryptCertId": str(self.encryption_certificate.serial_number),
            "customerInfo": encode_customer_info({"customerNm": self.customer_name}),
            "backUrl": _check(_URL, self.back_url, "backUrl"),
        }
        if self.req_reserved:
            fields["reqReserved"] = _check_reserved(self.req_reserved)
        return fields


def encrypt_sensitive(value: str, certificate: x509.Certificate) -> str:
    """acp `encryptData`: RSA/ECB/PKCS1Padding under the encryption certificate, base64."""
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the encryption certificate does not hold an RSA key")
    return base64.b64encode(key.encrypt(value.encode("utf-8"), padding.PKCS1v15())).decode()


def decrypt_sensitive(text: str, private_key: rsa.RSAPrivateKey) -> str:
    """The bank's side of `encrypt_sensitive`."""
    try:
        raw = base64.b64decode(text, validate=True)
        return private_key.decrypt(raw, padding.PKCS1v15()).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise MalformedMessage("an encrypted field does not decrypt") from None


def currency_for_code(code: str) -> str:
    """ISO 4217 numeric `currencyCode` (156) as its letter code (CNY)."""
    try:
        currency = get_currency(iso=code)
    except CurrencyDoesNotExist:
        raise MalformedMessage(f"currencyCode {code!r} is not an ISO 4217 numeric code") from None
    return str(currency.code)


def _check_reserved(value: str) -> str:
    # Echoed back inside k=v&k=v answers: keep it to characters that need no {...} wrap.
    if not re.fullmatch(r"[0-9A-Za-z_.:-]{1,64}", value):
        raise ValueError("reqReserved must be 1-64 characters of [0-9A-Za-z_.:-]")
    return value
