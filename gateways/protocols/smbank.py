"""A bank on Chinese national cryptography: XML messages signed with SM2 over SM3.

Both the merchant's adapter and the sandbox bank use this module; it is pure.

Envelope (UTF-8, no namespace, no DTD)::

    <?xml version='1.0' encoding='UTF-8'?>
    <PayNotify>
      <Body>
        <MsgType>PayNotify</MsgType><MsgId>…</MsgId><SendTime>2024-05-01T12:00:00+08:00</SendTime>
        <MerchantId>…</MerchantId> … flat business fields …
      </Body>
      <Signature alg="SM2-SM3" keyId="bank-2024">base64(DER SEQUENCE{r, s})</Signature>
    </PayNotify>

Signature: SM2 (GB/T 32918.2, default signer ID "1234567812345678") over the SM3 digest
of `Z_A || M`, where M is the canonical form of the `<Body>` element.

Canonicalization: M is the W3C *Exclusive XML Canonicalization 1.0, without comments*
(http://www.w3.org/2001/10/xml-exc-c14n#) of the `<Body>` element as received, i.e. its
exact element structure and text, whitespace included, with empty elements written as
start/end pairs and the standard c14n escaping.  A relay that re-indents the document
breaks the signature, as with XMLDSig; nothing is re-ordered or trimmed on either side.

Why everything security-relevant lives in the Body: only the Body is signed, so the
message type, message id and send time are Body fields too, and the receiver insists the
root element's name equal the signed `MsgType` (a signed PayResponse cannot be passed
off as a PayNotify).

Parsing is strict, because the signed bytes and the values used must be the same:
no DOCTYPE or entity declarations (XXE, entity bombs), no comments or processing
instructions anywhere (a comment splitting a value would make the signed text differ
from the text read), exactly one `<Body>` followed by one `<Signature>` under the root,
Body fields flat, unique and without attributes.

Acknowledgement: the merchant answers a `PayNotify` (or `RefundNotify`) with a signed
`<Ack>` whose `RefMsgId` is the notification's `MsgId` and `ResultCode` is "0000" when
the notification was taken (applied now, or already applied before); any other code
makes the bank deliver it again.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Generic, Protocol, Self, TypeVar

from lxml import etree
from moneyed import Money

from gateways.protocols.amounts import (
    decimal_text_to_minor,
    minor_to_decimal_text,
    minor_to_money,
    money_to_minor,
)
from gateways.protocols.errors import (
    MalformedMessage,
    ReplayedMessage,
    SignatureInvalid,
    StaleMessage,
)
from gateways.protocols.replay import ReplayGuard
from gateways.protocols.sm2 import Sm2PrivateKey, Sm2PublicKey, sm2_sign, sm2_verify
from ledger import InvalidAmount, InvalidRequest

__all__ = [
    "RESULT_OK",
    "SIGNATURE_ALGORITHM",
    "Ack",
    "Envelope",
    "OrderStatus",
    "PayNotify",
    "PayRequest",
    "PayResponse",
    "PayoutNotify",
    "PayoutQueryRequest",
    "PayoutRequest",
    "PayoutResponse",
    "QueryRequest",
    "QueryResponse",
    "RefundNotify",
    "RefundQueryRequest",
    "RefundRequest",
    "RefundResponse",
    "SmSigner",
    "SmVerifier",
    "accept_message",
    "canonical_body",
    "decode",
    "encode",
    "message_type",
]

SIGNATURE_ALGORITHM = "SM2-SM3"
RESULT_OK = "0000"
RESULT_RETRY = "9999"
CURRENCY = "CNY"

CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "CST")
_MAX_BYTES = 64 * 1024
_AMOUNT_DIGITS = 15
_FIELD_NAME = re.compile(r"[A-Z][A-Za-z0-9]{0,39}")
_MSG_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ENVELOPE_FIELDS = ("MsgType", "MsgId", "SendTime")


class OrderStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    PROCESSING = "PROCESSING"
    NOT_FOUND = "NOT_FOUND"
    #: payouts: paid, then sent back by the payee's bank (退票); `ReturnSerialNo` names the
    #: return and `ReturnReason` says why
    RETURNED = "RETURNED"


# ---------------------------------------------------------------------------- keys


class SmSigner:
    def __init__(self, private_key: Sm2PrivateKey, key_id: str) -> None:
        if not _KEY_ID.fullmatch(key_id):
            raise ValueError("keyId must be 1-64 characters of [A-Za-z0-9_.-]")
        self._key = private_key
        self._public = private_key.public_key
        self.key_id = key_id

    def __repr__(self) -> str:
        return f"SmSigner(key_id={self.key_id!r})"

    def sign(self, data: bytes) -> bytes:
        return sm2_sign(self._key, data, public_key=self._public)


class SmVerifier:
    """The counterpart's public keys by keyId (several during a key rotation)."""

    def __init__(self, public_keys: Mapping[str, Sm2PublicKey]) -> None:
        self._keys = dict(public_keys)

    def verify(self, key_id: str, data: bytes, signature: bytes) -> None:
        key = self._keys.get(key_id)
        if key is None:
            raise SignatureInvalid(f"no trusted SM2 public key has keyId {key_id[:64]!r}")
        if not sm2_verify(key, data, signature):
            raise SignatureInvalid(
                f"SM2 signature does not match the Body: a field was altered, or it was "
                f"signed with another key than keyId {key_id!r}"
            )


# ---------------------------------------------------------------------------- envelope


def canonical_body(body: etree._Element) -> bytes:
    canonical: bytes = etree.tostring(body, method="c14n", exclusive=True, with_comments=False)
    return canonical


def _format_time(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("SendTime needs a timezone-aware datetime")
    return moment.astimezone(CHINA_TIME).isoformat(timespec="seconds")


def _parse_time(text: str, name: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise MalformedMessage(f"{name} must be ISO 8601 with an offset, got {text!r}") from None
    if moment.tzinfo is None:
        raise MalformedMessage(f"{name} must carry a UTC offset, got {text!r}")
    return moment


class _Message(Protocol):
    MSG_TYPE: ClassVar[str]

    def body_fields(self) -> list[tuple[str, str]]: ...

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Self: ...


M = TypeVar("M", bound=_Message)


@dataclass(frozen=True)
class Envelope(Generic[M]):
    """A verified message with the envelope fields that came with it."""

    message: M
    msg_id: str
    send_time: dt.datetime
    key_id: str

    def ensure_fresh(self, now: dt.datetime, window: dt.timedelta) -> None:
        if abs(now - self.send_time) > window:
            raise StaleMessage(
                f"SendTime {self.send_time.isoformat()} is outside the {window} window "
                f"around {now.isoformat()}; check the sender's clock"
            )


def encode(
    message: _Message,
    signer: SmSigner,
    *,
    now: dt.datetime,
    msg_id: str | None = None,
) -> bytes:
    msg_id = msg_id or secrets.token_hex(16)
    if not _MSG_ID.fullmatch(msg_id):
        raise ValueError("MsgId must be 1-32 characters of [A-Za-z0-9]")
    fields = [
        ("MsgType", message.MSG_TYPE),
        ("MsgId", msg_id),
        ("SendTime", _format_time(now)),
        *message.body_fields(),
    ]
    root = etree.Element(message.MSG_TYPE)
    body = etree.SubElement(root, "Body")
    for name, value in fields:
        if not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"invalid field name {name!r}")
        etree.SubElement(body, name).text = value
    signature = etree.SubElement(
        root, "Signature", alg=SIGNATURE_ALGORITHM, keyId=signer.key_id
    )
    signature.text = base64.b64encode(signer.sign(canonical_body(body))).decode("ascii")
    document: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return document


def decode(document: bytes, kind: type[M], verifier: SmVerifier) -> Envelope[M]:
    """Parse strictly, verify the signature over the canonical Body, then read the fields."""
    root = _parse(document)
    if root.tag != kind.MSG_TYPE:
        raise MalformedMessage(f"expected a <{kind.MSG_TYPE}> message, got <{root.tag}>")
    children = list(root)
    if [child.tag for child in children] != ["Body", "Signature"] or root.attrib:
        raise MalformedMessage(
            f"<{root.tag}> must hold exactly <Body> then <Signature>, and no attributes"
        )
    body, signature = children
    _no_text(root, body, signature)
    key_id, raw_signature = _signature(signature)
    verifier.verify(key_id, canonical_body(body), raw_signature)
    fields = _fields(body)
    if fields.get("MsgType") != kind.MSG_TYPE:
        raise MalformedMessage(
            f"signed MsgType {fields.get('MsgType')!r} does not match <{root.tag}>"
        )
    msg_id = _required(fields, "MsgId")
    if not _MSG_ID.fullmatch(msg_id):
        raise MalformedMessage("MsgId must be 1-32 characters of [A-Za-z0-9]")
    send_time = _parse_time(_required(fields, "SendTime"), "SendTime")
    business = {k: v for k, v in fields.items() if k not in _ENVELOPE_FIELDS}
    return Envelope(
        message=kind.from_fields(business), msg_id=msg_id, send_time=send_time, key_id=key_id
    )


async def accept_message(
    document: bytes,
    kind: type[M],
    verifier: SmVerifier,
    *,
    guard: ReplayGuard,
    now: dt.datetime,
    window: dt.timedelta,
) -> Envelope[M]:
    """`decode`, then refuse a stale SendTime or a MsgId this side accepted before."""
    envelope = decode(document, kind, verifier)
    envelope.ensure_fresh(now, window)
    key = f"smbank:{kind.MSG_TYPE}:{envelope.key_id}:{envelope.msg_id}"
    if not await guard.claim(key, now=now, expires_at=envelope.send_time + window):
        raise ReplayedMessage(f"{kind.MSG_TYPE} MsgId {envelope.msg_id} was already accepted")
    return envelope


def message_type(document: bytes) -> str:
    """The root element's name (what a receiver dispatches on before `decode` checks
    it against the signed MsgType)."""
    return str(_parse(document).tag)


def _parse(document: bytes) -> etree._Element:
    if not isinstance(document, bytes):
        raise MalformedMessage("an XML message must be given as bytes")
    if len(document) > _MAX_BYTES:
        raise MalformedMessage("the XML message is larger than 64 KiB")
    # Refused before parsing, so no internal subset is ever processed.
    if b"<!DOCTYPE" in document or b"<!ENTITY" in document:
        raise MalformedMessage("DTDs and entity declarations are not allowed")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
    )
    try:
        tree = etree.ElementTree(etree.fromstring(document, parser))
    except etree.XMLSyntaxError as exc:
        raise MalformedMessage(f"not well-formed XML: {exc.msg}") from None
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise MalformedMessage("DTDs and entity declarations are not allowed")
    if (docinfo.encoding or "UTF-8").upper() != "UTF-8":
        raise MalformedMessage(f"messages must be UTF-8, not {docinfo.encoding}")
    root = tree.getroot()
    for node in root.iter():
        if not isinstance(node.tag, str):
            # Comment, processing instruction or unresolved entity reference.
            raise MalformedMessage("comments, processing instructions and entities are refused")
    return root


def _no_text(root: etree._Element, body: etree._Element, signature: etree._Element) -> None:
    for text in (root.text, body.tail, signature.tail):
        if text and text.strip():
            raise MalformedMessage("stray text between envelope elements")


def _signature(element: etree._Element) -> tuple[str, bytes]:
    if set(element.attrib) != {"alg", "keyId"} or len(element):
        raise MalformedMessage("<Signature> must have exactly alg and keyId, and no children")
    if element.get("alg") != SIGNATURE_ALGORITHM:
        raise SignatureInvalid(
            f"unsupported signature algorithm {element.get('alg')!r}; only SM2-SM3"
        )
    text = (element.text or "").strip()
    if not text:
        raise SignatureInvalid("the message carries an empty signature")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid("the signature is not valid base64") from None
    return str(element.get("keyId")), raw


def _fields(body: etree._Element) -> dict[str, str]:
    if body.attrib or (body.text and body.text.strip()):
        raise MalformedMessage("<Body> takes no attributes and no text of its own")
    fields: dict[str, str] = {}
    for child in body:
        name = str(child.tag)
        if not _FIELD_NAME.fullmatch(name) or child.attrib or len(child):
            raise MalformedMessage(f"<{name[:40]}> must be a plain field without attributes")
        if child.tail and child.tail.strip():
            raise MalformedMessage(f"stray text after <{name}>")
        if name in fields:
            raise MalformedMessage(f"field {name} appears more than once")
        fields[name] = child.text or ""
    return fields


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise MalformedMessage(f"required field {name} is missing")
    return value


def _optional(fields: Mapping[str, str], name: str) -> str | None:
    return fields.get(name) or None


def _amount_text(amount: Money) -> tuple[str, str]:
    units = money_to_minor(amount, currency=CURRENCY, max_digits=_AMOUNT_DIGITS)
    return minor_to_decimal_text(units, CURRENCY), CURRENCY


def _amount_units(fields: Mapping[str, str]) -> tuple[int, str]:
    """Amount and currency as sent; a currency other than the order's is the caller's
    mismatch to detect, so any ISO 4217 code is read, at that currency's scale."""
    currency = _required(fields, "Currency")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise MalformedMessage(f"Currency must be an ISO 4217 code, got {currency[:8]!r}")
    try:
        units = decimal_text_to_minor(
            _required(fields, "Amount"), currency, field="Amount", max_digits=_AMOUNT_DIGITS
        )
    except (InvalidRequest, InvalidAmount):
        raise MalformedMessage(f"Currency {currency!r} is not an ISO 4217 currency") from None
    return units, currency


def _status(fields: Mapping[str, str], allowed: Sequence[OrderStatus]) -> OrderStatus:
    raw = _required(fields, "Status")
    for status in allowed:
        if raw == status.value:
            return status
    raise MalformedMessage(f"Status {raw[:20]!r} is not one of {[s.value for s in allowed]}")


# ---------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class PayRequest:
    """Merchant -> bank: open a payment; the answer carries the customer's PayUrl."""

    MSG_TYPE: ClassVar[str] = "PayRequest"
    merchant_id: str
    order_id: str
    amount: Money
    order_time: dt.datetime
    notify_url: str
    return_url: str
    subject: str = ""

    def body_fields(self) -> list[tuple[str, str]]:
        amount, currency = _amount_text(self.amount)
        return [
            ("MerchantId", self.merchant_id),
            ("OrderId", self.order_id),
            ("Amount", amount),
            ("Currency", currency),
            ("OrderTime", _format_time(self.order_time)),
            ("NotifyUrl", self.notify_url),
            ("ReturnUrl", self.return_url),
            ("Subject", self.subject),
        ]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> PayRequest:
        return cls(
            merchant_id=_required(fields, "MerchantId"),
            order_id=_required(fields, "OrderId"),
            amount=minor_to_money(*_amount_units(fields)),
            order_time=_parse_time(_required(fields, "OrderTime"), "OrderTime"),
            notify_url=_required(fields, "NotifyUrl"),
            return_url=_required(fields, "ReturnUrl"),
            subject=fields.get("Subject", ""),
        )


@dataclass(frozen=True)
class PayResponse:
    MSG_TYPE: ClassVar[str] = "PayResponse"
    merchant_id: str
    order_id: str
    result_code: str
    result_msg: str = ""
    pay_url: str | None = None

    @property
    def accepted(self) -> bool:
        return self.result_code == RESULT_OK

    def body_fields(self) -> list[tuple[str, str]]:
        return [
            ("MerchantId", self.merchant_id),
            ("OrderId", self.order_id),
            ("ResultCode", self.result_code),
            ("ResultMsg", self.result_msg),
            ("PayUrl", self.pay_url or ""),
        ]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> PayResponse:
        return cls(
            merchant_id=_required(fields, "MerchantId"),
            order_id=_required(fields, "OrderId"),
            result_code=_required(fields, "ResultCode"),
            result_msg=fields.get("ResultMsg", ""),
            pay_url=_optional(fields, "PayUrl"),
        )


@dataclass(frozen=True)
class PayNotify:
    """Bank -> merchant NotifyUrl: the outcome of a payment, answered with an `Ack`."""

    MSG_TYPE: ClassVar[str] = "PayNotify"
    merchant_id: str
    order_id: str
    bank_serial_no: str
    amount_minor: int
    status: OrderStatus
    pay_time: dt.datetime | None = None
    currency: str = CURRENCY

    @property
    def amount(self) -> Money:
        return minor_to_money(self.amount_minor, self.currency)

    def body_fields(self) -> list[tuple[str, str]]:
        return [
            ("MerchantId", self.merchant_id),
            ("OrderId", self.order_id),
            ("BankSerialNo", self.bank_serial_no),
            ("Amount", minor_to_decimal_text(self.amount_minor, self.currency)),
            ("Currency", self.currency),
            ("Status", self.status.value),
            ("PayTime", _format_time(self.pay_time) if self.pay_time else ""),
        ]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> PayNotify:
        pay_time = _optional(fields, "PayTime")
        units, currency = _amount_units(fields)
        return cls(
            merchant_id=_required(fields, "MerchantId"),
            order_id=_required(fields, "OrderId"),
            bank_serial_no=_required(fields, "BankSerialNo"),
            amount_minor=units,
            status=_status(fields, (OrderStatus.SUCCESS, OrderStatus.FAILED)),
            pay_time=_parse_time(pay_time, "PayTime") if pay_time else None,
            currency=currency,
        )


@dataclass(frozen=True)
class Ack:
    """Merchant -> bank, the answer to a notification: "0000" taken, else deliver again."""

    MSG_TYPE: ClassVar[str] = "Ack"
    ref_msg_id: str
    result_code: str = RESULT_OK
    result_msg: str = "OK"

    @property
    def received(self) -> bool:
        return self.result_code == RESULT_OK

    @classmethod
    def retry(cls, ref_msg_id: str, reason: str) -> Ack:
        return cls(ref_msg_id=ref_msg_id, result_code=RESULT_RETRY, result_msg=reason)

    def body_fields(self) -> list[tuple[str, str]]:
        return [
            ("RefMsgId", self.ref_msg_id),
            ("ResultCode", self.result_code),
            ("ResultMsg", self.result_msg),
        ]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Ack:
        return cls(
            ref_msg_id=_required(fields, "RefMsgId"),
            result_code=_required(fields, "ResultCode"),
            result_msg=fields.get("ResultMsg", ""),
        )


@dataclass(frozen=True)
class QueryRequest:
    MSG_TYPE: ClassVar[str] = "QueryRequest"
    merchant_id: str
    order_id: str

    def body_fields(self) -> list[tuple[str, str]]:
        return [("MerchantId", self.merchant_id), ("OrderId", self.order_id)]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> QueryRequest:
        return cls(
            merchant_id=_required(fields, "MerchantId"), order_id=_required(fields, "OrderId")
        )


@dataclass(frozen=True)
class QueryResponse:
    """Status PROCESSING means ask again later; NOT_FOUND means the bank never saw it."""

    MSG_TYPE: ClassVar[str] = "QueryResponse"
    merchant_id: str
    order_id: str
    result_code: str
    status: OrderStatus
    result_msg: str = ""
    bank_serial_no: str | None = None
    amount_minor: int | None = None
    currency: str = CURRENCY

    @property
    def still_processing(self) -> bool:
        return self.status is OrderStatus.PROCESSING

    def body_fields(self) -> list[tuple[str, str]]:
        has_amount = self.amount_minor is not None
        return [
            ("MerchantId", self.merchant_id),
            ("OrderId", self.order_id),
            ("ResultCode", self.result_code),
            ("ResultMsg", self.result_msg),
            ("Status", self.status.value),
            ("BankSerialNo", self.bank_serial_no or ""),
            (
                "Amount",
                minor_to_decimal_text(self.amount_minor, self.currency)
                if self.amount_minor is not None
                else "",
            ),
            ("Currency", self.currency if has_amount else ""),
        ]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> QueryResponse:
        units, currency = _amount_units(fields) if fields.get("Amount") else (None, CURRENCY)
        return cls(
            merchant_id=_required(fields, "MerchantId"),
            order_id=_required(fields, "OrderId"),
            result_code=_required(fields, "ResultCode"),
            result_msg=fields.get("ResultMsg", ""),
            status=_status(fields, tuple(OrderStatus)),
            bank_serial_no=_optional(fields, "BankSerialNo"),
            amount_minor=units,
            currency=currency,
        )


@dataclass(frozen=True)
class RefundRequest:
    """Merchant -> bank: refund part or all of a payment, by the bank's serial number."""

    MSG_TYPE: ClassVar[str] = "RefundRequest"
    merchant_id: str
    refund_id: str
    order_id: str
    orig_bank_serial_no: str
    amount: Money
    notify_url: str

    def body_fields(self) -> list[tuple[str, str]]:
        amount, currency = _amount_text(self.amount)
        return [
            ("MerchantId", self.merchant_id),
            ("RefundId", self.refund_id),
            ("OrderId", self.order_id),
            ("OrigBankSerialNo", self.orig_bank_serial_no),
            ("Amount", amount),
            ("Currency", currency),
            ("NotifyUrl", self.notify_url),
        ]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> RefundRequest:
        return cls(
            merchant_id=_required(fields, "MerchantId"),
            refund_id=_required(fields, "RefundId"),
            order_id=_required(fields, "OrderId"),
            orig_bank_serial_no=_required(fields, "OrigBankSerialNo"),
            amount=minor_to_money(*_amount_units(fields)),
            notify_url=_required(fields, "NotifyUrl"),
        )


@dataclass(frozen=True)
class RefundResponse:
    MSG_TYPE: ClassVar[str] = "RefundResponse"
    merchant_id: str
    refund_id: str
    result_code: str
    status: OrderStatus
    result_msg: str = ""
    refund_serial_no: str | None = None

    def body_fields(self) -> list[tuple[str, str]]:
        return [
            ("MerchantId", self.merchant_id),
            ("RefundId", self.refund_id),
            ("ResultCode", self.result_code),
            ("ResultMsg", self.result_msg),
            ("Status", self.status.value),
            ("RefundSerialNo", self.refund_serial_no or ""),
        ]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> RefundResponse:
        return cls(
            merchant_id=_required(fields, "MerchantId"),
            refund_id=_required(fields, "RefundId"),
            result_code=_required(fields, "ResultCode"),
            result_msg=fields.get("ResultMsg", ""),
            status=_status(fields, tuple(OrderStatus)),
            refund_serial_no=_optional(fields, "RefundSerialNo"),
        )


@dataclass(frozen=True)
class RefundNotify:
    """Bank -> merchant: the final outcome of a refund that was PROCESSING."""

    MSG_TYPE: ClassVar[str] = "RefundNotify"
    merchant_id: str
    refund_id: str
    refund_serial_no: str
    amount_minor: int
    status: OrderStatus
    currency: str = CURRENCY

    def body_fields(self) -> list[tuple[str, str]]:
        return [
            ("MerchantId", self.merchant_id),
            ("RefundId", self.refund_id),
            ("RefundSerialNo", self.refund_serial_no),
            ("Amount", minor_to_decimal_text(self.amount_minor, self.currency)),
            ("Currency", self.currency),
            ("Status", self.status.value),
        ]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> RefundNotify:
        units, currency = _amount_units(fields)
        return cls(
            merchant_id=_required(fields, "MerchantId"),
            refund_id=_required(fields, "RefundId"),
            refund_serial_no=_required(fields, "RefundSerialNo"),
            amount_minor=units,
            status=_status(fields, (OrderStatus.SUCCESS, OrderStatus.FAILED)),
            currency=currency,
        )


@dataclass(frozen=True)
class RefundQueryRequest:
    """Merchant -> bank: the state of a refund, by the merchant's RefundId; answered
    with a `RefundResponse` (Status NOT_FOUND when the bank never took it)."""

    MSG_TYPE: ClassVar[str] = "RefundQueryRequest"
    merchant_id: str
    refund_id: str

    def body_fields(self) -> list[tuple[str, str]]:
        return [("MerchantId", self.merchant_id), ("RefundId", self.refund_id)]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> RefundQueryRequest:
        return cls(merchant_id=_required(fields, "MerchantId"),
                   refund_id=_required(fields, "RefundId"))


@dataclass(frozen=True)
class PayoutRequest:
    """Merchant -> bank: a credit transfer out of the merchant's settlement account.
    `PayoutId` is the merchant's id; the bank prints it as the end-to-end reference."""

    MSG_TYPE: ClassVar[str] = "PayoutRequest"
    merchant_id: str
    payout_id: str
    amount: Money
    payee_name: str
    payee_account: str = field(repr=False)
    payee_bank: str = ""
    notify_url: str = ""
    memo: str = ""

    def body_fields(self) -> list[tuple[str, str]]:
        amount, currency = _amount_text(self.amount)
        return [
            ("MerchantId", self.merchant_id),
            ("PayoutId", self.payout_id),
            ("Amount", amount),
            ("Currency", currency),
            ("PayeeName", self.payee_name),
            ("PayeeAccount", self.payee_account),
            ("PayeeBank", self.payee_bank),
            ("NotifyUrl", self.notify_url),
            ("Memo", self.memo),
        ]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> PayoutRequest:
        return cls(
            merchant_id=_required(fields, "MerchantId"),
            payout_id=_required(fields, "PayoutId"),
            amount=minor_to_money(*_amount_units(fields)),
            payee_name=_required(fields, "PayeeName"),
            payee_account=_required(fields, "PayeeAccount"),
            payee_bank=fields.get("PayeeBank", ""),
            notify_url=fields.get("NotifyUrl", ""),
            memo=fields.get("Memo", ""),
        )


@dataclass(frozen=True)
class PayoutQueryRequest:
    """Merchant -> bank: the state of a payout by PayoutId; answered with a
    `PayoutResponse`."""

    MSG_TYPE: ClassVar[str] = "PayoutQueryRequest"
    merchant_id: str
    payout_id: str

    def body_fields(self) -> list[tuple[str, str]]:
        return [("MerchantId", self.merchant_id), ("PayoutId", self.payout_id)]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> PayoutQueryRequest:
        return cls(merchant_id=_required(fields, "MerchantId"),
                   payout_id=_required(fields, "PayoutId"))


@dataclass(frozen=True)
class PayoutResponse:
    """Bank -> merchant, to a PayoutRequest or PayoutQueryRequest.  ResultCode is about
    the request; Status about the payout (PROCESSING: the outcome follows by
    `PayoutNotify`)."""

    MSG_TYPE: ClassVar[str] = "PayoutResponse"
    merchant_id: str
    payout_id: str
    result_code: str
    status: OrderStatus
    result_msg: str = ""
    payout_serial_no: str | None = None
    amount_minor: int | None = None
    currency: str = CURRENCY
    #: Status RETURNED: why the payee's bank sent it back
    return_reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.result_code == RESULT_OK

    def body_fields(self) -> list[tuple[str, str]]:
        return [
            ("MerchantId", self.merchant_id),
            ("PayoutId", self.payout_id),
            ("ResultCode", self.result_code),
            ("ResultMsg", self.result_msg),
            ("Status", self.status.value),
            ("PayoutSerialNo", self.payout_serial_no or ""),
            ("Amount", minor_to_decimal_text(self.amount_minor, self.currency)
             if self.amount_minor is not None else ""),
            ("Currency", self.currency if self.amount_minor is not None else ""),
            *_return_fields(self.status, None, self.return_reason),
        ]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> PayoutResponse:
        units, currency = _amount_units(fields) if fields.get("Amount") else (None, CURRENCY)
        return cls(
            merchant_id=_required(fields, "MerchantId"),
            payout_id=_required(fields, "PayoutId"),
            result_code=_required(fields, "ResultCode"),
            result_msg=fields.get("ResultMsg", ""),
            status=_status(fields, tuple(OrderStatus)),
            payout_serial_no=_optional(fields, "PayoutSerialNo"),
            amount_minor=units,
            currency=currency,
            return_reason=fields.get("ReturnReason", ""),
        )


@dataclass(frozen=True)
class PayoutNotify:
    """Bank -> merchant NotifyUrl: the final outcome of a payout, answered with an `Ack`."""

    MSG_TYPE: ClassVar[str] = "PayoutNotify"
    merchant_id: str
    payout_id: str
    payout_serial_no: str
    amount_minor: int
    status: OrderStatus
    currency: str = CURRENCY
    #: Status RETURNED: the return's own serial number (its dedupe key) and reason
    return_serial_no: str | None = None
    return_reason: str = ""

    def body_fields(self) -> list[tuple[str, str]]:
        return [
            ("MerchantId", self.merchant_id),
            ("PayoutId", self.payout_id),
            ("PayoutSerialNo", self.payout_serial_no),
            ("Amount", minor_to_decimal_text(self.amount_minor, self.currency)),
            ("Currency", self.currency),
            ("Status", self.status.value),
            *_return_fields(self.status, self.return_serial_no, self.return_reason),
        ]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> PayoutNotify:
        units, currency = _amount_units(fields)
        return cls(
            merchant_id=_required(fields, "MerchantId"),
            payout_id=_required(fields, "PayoutId"),
            payout_serial_no=_required(fields, "PayoutSerialNo"),
            amount_minor=units,
            status=_status(fields, (OrderStatus.SUCCESS, OrderStatus.FAILED,
                                    OrderStatus.RETURNED)),
            currency=currency,
            return_serial_no=_optional(fields, "ReturnSerialNo"),
            return_reason=fields.get("ReturnReason", ""),
        )


def _return_fields(status: OrderStatus, serial_no: str | None,
                   reason: str) -> list[tuple[str, str]]:
    """A return's own fields, only on a RETURNED payout (other messages stay as they were)."""
    if status is not OrderStatus.RETURNED:
        return []
    fields = [("ReturnSerialNo", serial_no)] if serial_no else []
    return [*fields, ("ReturnReason", reason)]
