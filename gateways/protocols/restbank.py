"""A JSON REST bank: HMAC-signed requests, synchronous JSON answers, signed webhooks.

Both the merchant's adapter and the sandbox bank use this module; it is pure (the clock
is passed in, replay memory goes through `ReplayGuard`).

Request signing (merchant -> bank), in headers:

    X-Api-Key:    the merchant's key id (public; selects the secret)
    X-Timestamp:  Unix seconds
    X-Nonce:      16-64 characters [A-Za-z0-9_-], fresh per request
    X-Signature:  v1=<lowercase hex HMAC-SHA256(secret, canonical request)>

    canonical request = METHOD "\n" TARGET "\n" TIMESTAMP "\n" NONCE "\n" hex(SHA-256(body))

TARGET is the path with its query string exactly as sent (no re-encoding, no sorting):
both ends see the same bytes, so there is nothing to normalise and nothing to disagree
on.  The body enters through its digest, so an empty body hashes as b"".  The bank
rejects a timestamp outside the window (default 5 minutes, either direction, for clock
skew) and a nonce it already accepted within that window.

Webhooks (bank -> merchant), in headers:

    X-Webhook-Timestamp:  Unix seconds
    X-Webhook-Signature:  v1=<hex HMAC-SHA256(webhook secret, TIMESTAMP "." body)>[,v1=...]

Several `v1=` entries may appear while the bank rotates secrets; one match suffices.
The event id (`id` in the body) is claimed once in the replay guard.  A bank that
re-delivers an event it sent before also ends in `ReplayedMessage`: the caller answers
it 2xx without applying it twice.

Synchronous answers are plain JSON over TLS, not signed.  Amounts are
`{"value": <integer minor units>, "currency": "<ISO 4217>"}`; JSON numbers with a
fraction, NaN or Infinity are refused, and no float is ever built.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from moneyed import Money

from gateways.protocols.amounts import minor_to_money, money_to_minor
from gateways.protocols.crypto import constant_time_equal, hmac_sha256_hex, sha256_hex
from gateways.protocols.errors import (
    MalformedMessage,
    ReplayedMessage,
    SignatureInvalid,
    StaleMessage,
)
from gateways.protocols.replay import ReplayGuard
from ledger import InvalidRequest, minor_exponent

__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_WINDOW",
    "IDEMPOTENCY_HEADER",
    "NONCE_HEADER",
    "PAYMENTS_PATH",
    "PAYOUTS_PATH",
    "REFUNDS_PATH",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WEBHOOK_SIGNATURE_HEADER",
    "WEBHOOK_TIMESTAMP_HEADER",
    "ApiError",
    "CreatePayment",
    "CreatePayout",
    "CreateRefund",
    "Payment",
    "PaymentStatus",
    "Payout",
    "PayoutStatus",
    "Refund",
    "RefundStatus",
    "RestCredentials",
    "VerifiedRequest",
    "WebhookEvent",
    "accept_request",
    "accept_webhook",
    "canonical_request",
    "dump_json",
    "list_json",
    "load_json",
    "lookup_path",
    "parse_list",
    "payment_path",
    "payout_path",
    "refund_path",
    "sign_request",
    "sign_webhook",
    "verify_request",
    "verify_webhook",
]

API_KEY_HEADER = "X-Api-Key"
TIMESTAMP_HEADER = "X-Timestamp"
NONCE_HEADER = "X-Nonce"
SIGNATURE_HEADER = "X-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
WEBHOOK_TIMESTAMP_HEADER = "X-Webhook-Timestamp"
WEBHOOK_SIGNATURE_HEADER = "X-Webhook-Signature"
DEFAULT_WINDOW = dt.timedelta(minutes=5)

PAYMENTS_PATH = "/v1/payments"
REFUNDS_PATH = "/v1/refunds"
PAYOUTS_PATH = "/v1/payouts"

_SCHEME = "v1="
_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T", "Payment", "Refund", "Payout")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_MAX_BODY = 256 * 1024
_MAX_MINOR_DIGITS = 15


def payment_path(payment_id: str) -> str:
    return f"{PAYMENTS_PATH}/{_check_id(payment_id, 'payment id')}"


def refund_path(refund_id: str) -> str:
    return f"{REFUNDS_PATH}/{_check_id(refund_id, 'refund id')}"


def payout_path(payout_id: str) -> str:
    return f"{PAYOUTS_PATH}/{_check_id(payout_id, 'payout id')}"


_LOOKUP_KEYS = {PAYMENTS_PATH: "order_id", REFUNDS_PATH: "refund_reference",
                PAYOUTS_PATH: "payout_reference"}


def lookup_path(collection: str, reference: str) -> str:
    """`GET /v1/payments?order_id=...` (refunds: `refund_reference`, payouts:
    `payout_reference`): find an object by the merchant's own id, which is what a
    merchant has after a create call timed out before the bank's id came back."""
    key = _LOOKUP_KEYS.get(collection)
    if key is None:
        raise ValueError(f"no lookup by reference on {collection}")
    return f"{collection}?{key}={_check_id(reference, key)}"


# ---------------------------------------------------------------------------- request signing


@dataclass(frozen=True)
class RestCredentials:
    api_key: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class VerifiedRequest:
    api_key: str
    nonce: str
    timestamp: dt.datetime


def canonical_request(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join([method.upper(), target, timestamp, nonce, sha256_hex(body)]).encode()


def sign_request(
    credentials: RestCredentials,
    *,
    method: str,
    target: str,
    body: bytes,
    now: dt.datetime,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four authentication headers for one request."""
    timestamp = str(int(now.timestamp()))
    nonce = nonce or secrets.token_urlsafe(18)
    mac = hmac_sha256_hex(
        credentials.secret, canonical_request(method, target, timestamp, nonce, body)
    )
    return {
        API_KEY_HEADER: credentials.api_key,
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: _SCHEME + mac,
    }


def verify_request(
    headers: Mapping[str, str],
    *,
    method: str,
    target: str,
    body: bytes,
    secret_for: Callable[[str], bytes | None],
    now: dt.datetime,
    window: dt.timedelta = DEFAULT_WINDOW,
) -> VerifiedRequest:
    """Signature and timestamp window; the nonce is claimed by `accept_request`."""
    lowered = _lower(headers)
    api_key = lowered.get(API_KEY_HEADER.lower(), "")
    secret = secret_for(api_key) if api_key else None
    if secret is None:
        raise SignatureInvalid("unknown or missing API key")
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    nonce = lowered.get(NONCE_HEADER.lower(), "")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise MalformedMessage(f"{TIMESTAMP_HEADER} must be Unix seconds")
    if not _NONCE.fullmatch(nonce):
        raise MalformedMessage(f"{NONCE_HEADER} must be 16-64 characters of [A-Za-z0-9_-]")
    expected = _SCHEME + hmac_sha256_hex(
        secret, canonical_request(method, target, timestamp, nonce, body)
    )
    if not constant_time_equal(expected, lowered.get(SIGNATURE_HEADER.lower(), "")):
        raise SignatureInvalid(
            "request signature does not match: check the secret, and that method, target, "
            "timestamp, nonce and body are signed exactly as sent"
        )
    sent_at = _check_window(timestamp, now, window)
    return VerifiedRequest(api_key=api_key, nonce=nonce, timestamp=sent_at)


async def accept_request(
    headers: Mapping[str, str],
    *,
    method: str,
    target: str,
    body: bytes,
    secret_for: Callable[[str], bytes | None],
    guard: ReplayGuard,
    now: dt.datetime,
    window: dt.timedelta = DEFAULT_WINDOW,
) -> VerifiedRequest:
    verified = verify_request(
        headers, method=method, target=target, body=body, secret_for=secret_for, now=now,
        window=window,
    )
    key = f"restbank:request:{verified.api_key}:{verified.nonce}"
    if not await guard.claim(key, now=now, expires_at=verified.timestamp + window):
        raise ReplayedMessage(f"nonce {verified.nonce} was already used")
    return verified


# ---------------------------------------------------------------------------- webhooks


def sign_webhook(secret: bytes, body: bytes, *, now: dt.datetime) -> dict[str, str]:
    timestamp = str(int(now.timestamp()))
    mac = hmac_sha256_hex(secret, timestamp.encode() + b"." + body)
    return {WEBHOOK_TIMESTAMP_HEADER: timestamp, WEBHOOK_SIGNATURE_HEADER: _SCHEME + mac}


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    webhook_secrets: Sequence[bytes],
    now: dt.datetime,
    window: dt.timedelta = DEFAULT_WINDOW,
) -> WebhookEvent:
    """Signature, then window, then the body; the event id is claimed by `accept_webhook`."""
    lowered = _lower(headers)
    timestamp = lowered.get(WEBHOOK_TIMESTAMP_HEADER.lower(), "")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureInvalid(f"{WEBHOOK_TIMESTAMP_HEADER} is missing or not Unix seconds")
    offered = [
        part.strip()
        for part in lowered.get(WEBHOOK_SIGNATURE_HEADER.lower(), "").split(",")
        if part.strip().startswith(_SCHEME)
    ]
    if not offered:
        raise SignatureInvalid(f"{WEBHOOK_SIGNATURE_HEADER} carries no v1 signature")
    signed = timestamp.encode() + b"." + body
    expected = [_SCHEME + hmac_sha256_hex(secret, signed) for secret in webhook_secrets]
    # Every pair is compared, so timing does not reveal which secret or entry matched.
    matched = False
    for candidate in offered:
        for wanted in expected:
            matched |= constant_time_equal(wanted, candidate)
    if not matched:
        raise SignatureInvalid("webhook signature does not match any configured secret")
    _check_window(timestamp, now, window)
    return WebhookEvent.from_json(body)


async def accept_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    webhook_secrets: Sequence[bytes],
    guard: ReplayGuard,
    now: dt.datetime,
    window: dt.timedelta = DEFAULT_WINDOW,
) -> WebhookEvent:
    event = verify_webhook(
        headers, body, webhook_secrets=webhook_secrets, now=now, window=window
    )
    sent_at = dt.datetime.fromtimestamp(
        int(_lower(headers)[WEBHOOK_TIMESTAMP_HEADER.lower()]), dt.UTC
    )
    if not await guard.claim(
        f"restbank:webhook:{event.id}", now=now, expires_at=sent_at + window
    ):
        raise ReplayedMessage(f"webhook event {event.id} was already accepted")
    return event


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _check_window(timestamp: str, now: dt.datetime, window: dt.timedelta) -> dt.datetime:
    sent_at = dt.datetime.fromtimestamp(int(timestamp), dt.UTC)
    if abs(now - sent_at) > window:
        raise StaleMessage(
            f"timestamp {sent_at.isoformat()} is outside the {window} window around "
            f"{now.astimezone(dt.UTC).isoformat()}; check the sender's clock"
        )
    return sent_at


# ---------------------------------------------------------------------------- JSON bodies


def dump_json(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def load_json(body: bytes) -> dict[str, Any]:
    """A JSON object, strictly: UTF-8, no duplicate keys, no NaN/Infinity, no floats."""
    if len(body) > _MAX_BODY:
        raise MalformedMessage("the JSON body is larger than 256 KiB")
    try:
        obj = json.loads(
            body.decode("utf-8"),
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedMessage(f"the body is not a valid JSON document: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedMessage("the JSON body must be an object")
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedMessage(f"{key} must be a non-empty string")
    return value


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedMessage(f"{key} must be a string or null")
    return value


def _obj(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise MalformedMessage(f"{key} must be an object")
    return value


def _check_id(value: str, what: str) -> str:
    if not _ID.fullmatch(value):
        raise MalformedMessage(f"{what} {value[:64]!r} has the wrong format")
    return value


def _amount_json(amount: Money) -> dict[str, Any]:
    code = amount.currency.code
    return {"value": money_to_minor(amount, currency=code, max_digits=_MAX_MINOR_DIGITS),
            "currency": code}


def _amount_from_json(obj: Mapping[str, Any], key: str = "amount") -> tuple[int, str]:
    amount = _obj(obj, key)
    value = amount.get("value")
    # bool is an int in Python; `true` is not an amount.
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedMessage(f"{key}.value must be an integer number of minor units")
    if value < 0 or len(str(value)) > _MAX_MINOR_DIGITS:
        raise MalformedMessage(f"{key}.value must be 0..{_MAX_MINOR_DIGITS} digits")
    currency = _str(amount, "currency")
    try:
        known = re.fullmatch(r"[A-Z]{3}", currency) and minor_exponent(currency) >= 0
    except InvalidRequest:
        known = False
    if not known:
        raise MalformedMessage(f"{key}.currency must be an ISO 4217 code")
    return value, currency


def _timestamp_json(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def _timestamp_from_json(obj: Mapping[str, Any], key: str) -> dt.datetime:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedMessage(f"{key} must be Unix seconds")
    return dt.datetime.fromtimestamp(value, dt.UTC)


# ---------------------------------------------------------------------------- messages


class PaymentStatus(StrEnum):
    REQUIRES_ACTION = "requires_action"  # the customer has yet to approve at the bank
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PayoutStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    #: paid, then sent back by the beneficiary's bank: `return_id` names the return and
    #: `failure_code` says why (e.g. account_closed); webhook `payout.returned`
    RETURNED = "returned"


@dataclass(frozen=True)
class CreatePayment:
    """POST /v1/payments — the merchant's order becomes a bank payment awaiting the customer."""

    merchant_id: str
    order_id: str
    amount: Money
    return_url: str
    notify_url: str
    description: str = ""

    def to_json(self) -> bytes:
        return dump_json({
            "merchant_id": _check_id(self.merchant_id, "merchant_id"),
            "order_id": _check_id(self.order_id, "order_id"),
            "amount": _amount_json(self.amount),
            "return_url": self.return_url,
            "notify_url": self.notify_url,
            "description": self.description,
        })

    @classmethod
    def from_json(cls, body: bytes) -> CreatePayment:
        obj = load_json(body)
        value, currency = _amount_from_json(obj)
        if value == 0:
            raise MalformedMessage("amount.value must be positive")
        return cls(
            merchant_id=_check_id(_str(obj, "merchant_id"), "merchant_id"),
            order_id=_check_id(_str(obj, "order_id"), "order_id"),
            amount=minor_to_money(value, currency),
            return_url=_str(obj, "return_url"),
            notify_url=_str(obj, "notify_url"),
            description=_opt_str(obj, "description") or "",
        )


@dataclass(frozen=True)
class Payment:
    """The bank's view of a payment: the answer to create and to GET /v1/payments/{id}."""

    id: str
    merchant_id: str
    order_id: str
    status: PaymentStatus
    amount_minor: int
    currency: str
    redirect_url: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None

    @property
    def amount(self) -> Money:
        return minor_to_money(self.amount_minor, self.currency)

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "payment",
            "id": self.id,
            "merchant_id": self.merchant_id,
            "order_id": self.order_id,
            "status": self.status.value,
            "amount": {"value": self.amount_minor, "currency": self.currency},
            "redirect_url": self.redirect_url,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
        }

    def to_json(self) -> bytes:
        return dump_json(self.to_dict())

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Payment:
        value, currency = _amount_from_json(obj)
        return cls(
            id=_check_id(_str(obj, "id"), "payment id"),
            merchant_id=_str(obj, "merchant_id"),
            order_id=_str(obj, "order_id"),
            status=_enum(PaymentStatus, obj, "status"),
            amount_minor=value,
            currency=currency,
            redirect_url=_opt_str(obj, "redirect_url"),
            failure_code=_opt_str(obj, "failure_code"),
            failure_message=_opt_str(obj, "failure_message"),
        )

    @classmethod
    def from_json(cls, body: bytes) -> Payment:
        return cls.from_dict(load_json(body))


@dataclass(frozen=True)
class CreateRefund:
    """POST /v1/refunds — `refund_reference` is the merchant's id, unique per refund."""

    payment_id: str
    refund_reference: str
    amount: Money
    reason: str = ""

    def to_json(self) -> bytes:
        return dump_json({
            "payment_id": _check_id(self.payment_id, "payment_id"),
            "refund_reference": _check_id(self.refund_reference, "refund_reference"),
            "amount": _amount_json(self.amount),
            "reason": self.reason,
        })

    @classmethod
    def from_json(cls, body: bytes) -> CreateRefund:
        obj = load_json(body)
        value, currency = _amount_from_json(obj)
        if value == 0:
            raise MalformedMessage("amount.value must be positive")
        return cls(
            payment_id=_check_id(_str(obj, "payment_id"), "payment_id"),
            refund_reference=_check_id(_str(obj, "refund_reference"), "refund_reference"),
            amount=minor_to_money(value, currency),
            reason=_opt_str(obj, "reason") or "",
        )


@dataclass(frozen=True)
class Refund:
    id: str
    payment_id: str
    refund_reference: str
    status: RefundStatus
    amount_minor: int
    currency: str
    failure_code: str | None = None

    @property
    def amount(self) -> Money:
        return minor_to_money(self.amount_minor, self.currency)

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "refund",
            "id": self.id,
            "payment_id": self.payment_id,
            "refund_reference": self.refund_reference,
            "status": self.status.value,
            "amount": {"value": self.amount_minor, "currency": self.currency},
            "failure_code": self.failure_code,
        }

    def to_json(self) -> bytes:
        return dump_json(self.to_dict())

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Refund:
        value, currency = _amount_from_json(obj)
        return cls(
            id=_check_id(_str(obj, "id"), "refund id"),
            payment_id=_str(obj, "payment_id"),
            refund_reference=_str(obj, "refund_reference"),
            status=_enum(RefundStatus, obj, "status"),
            amount_minor=value,
            currency=currency,
            failure_code=_opt_str(obj, "failure_code"),
        )

    @classmethod
    def from_json(cls, body: bytes) -> Refund:
        return cls.from_dict(load_json(body))


@dataclass(frozen=True)
class CreatePayout:
    """POST /v1/payouts — a credit transfer out of the merchant's settlement account;
    `payout_reference` (the merchant's payout id) travels as the end-to-end id and is
    what the bank prints on the merchant's statement."""

    payout_reference: str
    amount: Money
    beneficiary_name: str
    beneficiary_account: str = field(repr=False)
    beneficiary_bank: str = ""
    description: str = ""
    #: where the bank posts `payout.paid` / `payout.failed`
    notify_url: str | None = None

    def to_json(self) -> bytes:
        return dump_json({
            "notify_url": self.notify_url,
            "payout_reference": _check_id(self.payout_reference, "payout_reference"),
            "amount": _amount_json(self.amount),
            "beneficiary": {
                "name": self.beneficiary_name,
                "account_number": self.beneficiary_account,
                "bank_name": self.beneficiary_bank,
            },
            "description": self.description,
        })

    @classmethod
    def from_json(cls, body: bytes) -> CreatePayout:
        obj = load_json(body)
        value, currency = _amount_from_json(obj)
        if value == 0:
            raise MalformedMessage("amount.value must be positive")
        beneficiary = _obj(obj, "beneficiary")
        return cls(
            payout_reference=_check_id(_str(obj, "payout_reference"), "payout_reference"),
            amount=minor_to_money(value, currency),
            beneficiary_name=_str(beneficiary, "name"),
            beneficiary_account=_str(beneficiary, "account_number"),
            beneficiary_bank=_opt_str(beneficiary, "bank_name") or "",
            description=_opt_str(obj, "description") or "",
            notify_url=_opt_str(obj, "notify_url"),
        )


@dataclass(frozen=True)
class Payout:
    """The bank's view of a payout; only the last four digits of the account come back."""

    id: str
    payout_reference: str
    status: PayoutStatus
    amount_minor: int
    currency: str
    beneficiary_name: str
    account_last4: str
    failure_code: str | None = None
    return_id: str | None = None

    @property
    def amount(self) -> Money:
        return minor_to_money(self.amount_minor, self.currency)

    def to_dict(self) -> dict[str, Any]:
        return {
            **({"return_id": self.return_id} if self.return_id else {}),
            "object": "payout",
            "id": self.id,
            "payout_reference": self.payout_reference,
            "status": self.status.value,
            "amount": {"value": self.amount_minor, "currency": self.currency},
            "beneficiary_name": self.beneficiary_name,
            "account_last4": self.account_last4,
            "failure_code": self.failure_code,
        }

    def to_json(self) -> bytes:
        return dump_json(self.to_dict())

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Payout:
        value, currency = _amount_from_json(obj)
        return cls(
            id=_check_id(_str(obj, "id"), "payout id"),
            payout_reference=_str(obj, "payout_reference"),
            status=_enum(PayoutStatus, obj, "status"),
            amount_minor=value,
            currency=currency,
            beneficiary_name=_opt_str(obj, "beneficiary_name") or "",
            account_last4=_opt_str(obj, "account_last4") or "",
            failure_code=_opt_str(obj, "failure_code"),
            return_id=_opt_str(obj, "return_id"),
        )

    @classmethod
    def from_json(cls, body: bytes) -> Payout:
        return cls.from_dict(load_json(body))


def list_json(items: Sequence[Payment | Refund | Payout]) -> bytes:
    """The answer to a lookup: `{"object": "list", "data": [...]}`."""
    return dump_json({"object": "list", "data": [item.to_dict() for item in items]})


def parse_list(body: bytes, kind: type[_T]) -> list[_T]:
    """A lookup's answer as `Payment`, `Refund` or `Payout` values."""
    obj = load_json(body)
    if obj.get("object") != "list" or not isinstance(obj.get("data"), list):
        raise MalformedMessage("expected a list object with a data array")
    items: list[_T] = []
    for item in obj["data"]:
        if not isinstance(item, dict):
            raise MalformedMessage("list items must be objects")
        items.append(kind.from_dict(item))
    return items


@dataclass(frozen=True)
class WebhookEvent:
    """`{"id", "type", "created", "data": <payment, refund or payout>}`; type e.g.
    payment.succeeded, refund.succeeded, payout.paid."""

    id: str
    type: str
    created: dt.datetime
    payment: Payment | None = None
    refund: Refund | None = None
    payout: Payout | None = None

    def to_json(self) -> bytes:
        data: Payment | Refund | Payout | None = self.payment or self.refund or self.payout
        if data is None:
            raise ValueError("a webhook event carries a payment, a refund or a payout")
        return dump_json({
            "id": self.id,
            "type": self.type,
            "created": _timestamp_json(self.created),
            "data": data.to_dict(),
        })

    @classmethod
    def from_json(cls, body: bytes) -> WebhookEvent:
        obj = load_json(body)
        event_type = _str(obj, "type")
        data = _obj(obj, "data")
        kind = data.get("object")
        payment = Payment.from_dict(data) if kind == "payment" else None
        refund = Refund.from_dict(data) if kind == "refund" else None
        payout = Payout.from_dict(data) if kind == "payout" else None
        if payment is None and refund is None and payout is None:
            raise MalformedMessage("data.object must be 'payment', 'refund' or 'payout'")
        if not event_type.startswith(f"{kind}."):
            raise MalformedMessage(f"event type {event_type!r} does not match data.object")
        return cls(
            id=_check_id(_str(obj, "id"), "event id"),
            type=event_type,
            created=_timestamp_from_json(obj, "created"),
            payment=payment,
            refund=refund,
            payout=payout,
        )


@dataclass(frozen=True)
class ApiError:
    """The bank's error body: `{"error": {"code": ..., "message": ...}}`."""

    code: str
    message: str

    def to_json(self) -> bytes:
        return dump_json({"error": {"code": self.code, "message": self.message}})

    @classmethod
    def from_json(cls, body: bytes) -> ApiError:
        error = _obj(load_json(body), "error")
        return cls(code=_str(error, "code"), message=_opt_str(error, "message") or "")


def _enum(kind: type[_E], obj: Mapping[str, Any], key: str) -> _E:
    raw = _str(obj, key)
    try:
        return kind(raw)
    except ValueError:
        raise MalformedMessage(f"{key} {raw!r} is not one of {[m.value for m in kind]}") from None
