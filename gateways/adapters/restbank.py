"""Merchant-side adapter for the JSON REST bank (HMAC-signed requests, signed webhooks;
wire format in `gateways.protocols.restbank`).

    adapter = RestBankAdapter(RestBankCredentials(base_url=..., merchant_id=..., api_key=...,
                                                  secret=..., webhook_secrets=(...,)))
    instruction = await adapter.create_payment(order)   # method GET, url = bank's pay page
    note = adapter.parse_notification(headers, body)    # webhook: HMAC + 5-minute window
    reply = adapter.acknowledge(note, accepted=True)    # 200; accepted=False -> 503, redelivered

- create/refund/payout send `Idempotency-Key` = our attempt/refund/payout id, so a retry
  after a lost answer cannot create a second payment at the bank;
- a 5xx is `OutcomeUnknown` unless its body is the bank's documented
  `{"error": {"code": "not_processed"}}` (refused before anything was taken; so is a 429):
  only those may fail over;
- queries go by our own id (`?order_id=`, `?refund_reference=`, `?payout_reference=`),
  so they work even when the create call's answer (with the bank's id) was lost;
- `bank_txn_id` of a payment is the bank's payment id `pay_...` (what its statement
  lists), of a refund `re_...`, of a payout `po_...`;
- a webhook is refused (`SignatureInvalid` / `StaleMessage`) when its HMAC does not
  match or its timestamp lies outside the window; duplicates by event id are left to
  the core's dedupe on `bank_txn_id`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx
import structlog

from gateways.adapters._http import DEFAULT_TIMEOUT, Duration, HttpAdapter, make_client, send
from gateways.bank import (
    BankCall,
    BankNotification,
    BankOutcome,
    BankRejected,
    BankReply,
    BankUnavailable,
    NotificationKind,
    OutcomeUnknown,
    PaymentInstruction,
    PaymentOrder,
    PaymentStatus,
    PayoutOrder,
    PayoutStatus,
    RefundOrder,
    RefundStatus,
)
from gateways.limits import BankLimits
from gateways.protocols import ProtocolError
from gateways.protocols import restbank as rb

__all__ = ["RestBankAdapter", "RestBankCredentials"]

log = structlog.get_logger("gateways.adapters.restbank")

#: the bank's documented error code for "refused before anything was taken"
NOT_PROCESSED_CODE = "not_processed"


def _not_processed(response: httpx.Response) -> bool:
    try:
        return rb.ApiError.from_json(response.content).code == NOT_PROCESSED_CODE
    except ProtocolError:
        return False


_PAYMENT_OUTCOME = {
    rb.PaymentStatus.REQUIRES_ACTION: BankOutcome.PROCESSING,
    rb.PaymentStatus.PROCESSING: BankOutcome.PROCESSING,
    rb.PaymentStatus.SUCCEEDED: BankOutcome.SUCCEEDED,
    rb.PaymentStatus.FAILED: BankOutcome.FAILED,
    rb.PaymentStatus.CANCELED: BankOutcome.FAILED,
    rb.PaymentStatus.EXPIRED: BankOutcome.FAILED,
}
_REFUND_OUTCOME = {
    rb.RefundStatus.PENDING: BankOutcome.PROCESSING,
    rb.RefundStatus.SUCCEEDED: BankOutcome.SUCCEEDED,
    rb.RefundStatus.FAILED: BankOutcome.FAILED,
}
_PAYOUT_OUTCOME = {
    rb.PayoutStatus.PENDING: BankOutcome.PROCESSING,
    rb.PayoutStatus.PAID: BankOutcome.SUCCEEDED,
    rb.PayoutStatus.FAILED: BankOutcome.FAILED,
    rb.PayoutStatus.RETURNED: BankOutcome.RETURNED,
}


def _returned(payout: rb.Payout) -> dict[str, str | None]:
    if payout.status is not rb.PayoutStatus.RETURNED:
        return {}
    return {"return_reason": payout.failure_code, "return_id": payout.return_id}


@dataclass(frozen=True)
class RestBankCredentials:
    base_url: str
    merchant_id: str
    api_key: str
    secret: bytes = field(repr=False)
    #: several during a rotation; any one matching suffices
    webhook_secrets: tuple[bytes, ...] = field(repr=False, default=())
    #: what the merchant account at the bank settles in (the bank refuses anything else)
    currencies: tuple[str, ...] = ("CNY",)


class RestBankAdapter(HttpAdapter):
    def __init__(
        self,
        credentials: RestBankCredentials,
        *,
        code: str = "restbank",
        timeout: Duration = DEFAULT_TIMEOUT,
        webhook_window: dt.timedelta = rb.DEFAULT_WINDOW,
        clock: Callable[[], dt.datetime] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._credentials = credentials
        self._rest = rb.RestCredentials(api_key=credentials.api_key, secret=credentials.secret)
        self._code = code
        self._window = webhook_window
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._client = make_client(timeout, transport)

    @property
    def merchant_id(self) -> str:
        return self._credentials.merchant_id

    @property
    def limits(self) -> BankLimits:
        # "value" is whole minor units of at most 15 digits
        return BankLimits(frozenset(self._credentials.currencies), 15)

    def bank_order_id(self, reference: str) -> str:
        return reference  # the bank takes our ids as they are

    # ------------------------------------------------------------------ HTTP

    async def _call(
        self, method: str, target: str, body: bytes = b"", idempotency_key: str | None = None
    ) -> httpx.Response:
        headers = rb.sign_request(self._rest, method=method, target=target, body=body,
                                  now=self._clock())
        if body:
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers[rb.IDEMPOTENCY_HEADER] = idempotency_key
        return await send(self._client, self._code, method,
                          self._credentials.base_url.rstrip("/") + target,
                          content=body or None, headers=headers, not_processed=_not_processed)

    def _refusal(self, response: httpx.Response, what: str) -> BankRejected | BankUnavailable:
        try:
            error = rb.ApiError.from_json(response.content)
            code, message = error.code, error.message
        except ProtocolError:
            code, message = str(response.status_code), response.text[:200]
        if response.status_code == 429:
            # Throttled before anything was taken: like a 5xx, safe to retry or fail over.
            return BankUnavailable(self._code, f"{what}: throttled ({message})")
        # 4xx: a definite refusal (bad request, authentication, idempotency conflict,
        # amount exceeds what is refundable, ...); the bank's code says which.
        return BankRejected(self._code, f"{what} refused ({response.status_code}): {message}",
                            code)

    def _decode(self, parse: Callable[[bytes], object], response: httpx.Response,
                what: str) -> object:
        try:
            return parse(response.content)
        except ProtocolError as exc:
            # The bank may have acted; an unreadable answer decides nothing.
            raise OutcomeUnknown(self._code, f"{what}: unreadable answer ({exc})") from exc

    # ------------------------------------------------------------------ payments

    async def create_payment(self, order: PaymentOrder) -> PaymentInstruction:
        body = rb.CreatePayment(
            merchant_id=self.merchant_id, order_id=order.attempt_id, amount=order.amount,
            return_url=order.return_url, notify_url=order.notify_url,
            description=order.description,
        ).to_json()
        response = await self._call("POST", rb.PAYMENTS_PATH, body, order.attempt_id)
        if response.status_code not in (200, 201):
            raise self._refusal(response, "create payment")
        payment = self._decode(rb.Payment.from_json, response, "create payment")
        assert isinstance(payment, rb.Payment)
        if payment.order_id != order.attempt_id or not payment.redirect_url:
            raise OutcomeUnknown(self._code, "create payment: the answer is about another order")
        return PaymentInstruction(method="GET", url=payment.redirect_url,
                                  bank_payment_id=payment.id)

    async def query_payment(self, call: BankCall) -> PaymentStatus:
        attempt_id = call.reference
        found = await self._lookup(rb.PAYMENTS_PATH, attempt_id, rb.Payment)
        if found is None:
            return PaymentStatus(attempt_id=attempt_id, outcome=BankOutcome.NOT_FOUND)
        return PaymentStatus(
            attempt_id=attempt_id, outcome=_PAYMENT_OUTCOME[found.status],
            bank_txn_id=found.id, amount=found.amount,
        )

    async def _lookup(self, collection: str, reference: str, kind: type[rb._T]) -> rb._T | None:
        response = await self._call("GET", rb.lookup_path(collection, reference))
        if response.status_code != 200:
            raise self._refusal(response, "inquiry")
        try:
            items = rb.parse_list(response.content, kind)
        except ProtocolError as exc:
            raise OutcomeUnknown(self._code, f"inquiry: unreadable answer ({exc})") from exc
        return items[0] if items else None

    # ------------------------------------------------------------------ refunds

    async def refund(self, order: RefundOrder) -> RefundStatus:
        body = rb.CreateRefund(
            payment_id=order.original_bank_txn_id, refund_reference=order.refund_id,
            amount=order.amount, reason=order.reason,
        ).to_json()
        response = await self._call("POST", rb.REFUNDS_PATH, body, order.refund_id)
        if response.status_code not in (200, 201):
            raise self._refusal(response, "refund")
        refund = self._decode(rb.Refund.from_json, response, "refund")
        assert isinstance(refund, rb.Refund)
        return RefundStatus(refund_id=order.refund_id, outcome=_REFUND_OUTCOME[refund.status],
                            bank_txn_id=refund.id, amount=refund.amount)

    async def query_refund(self, call: BankCall) -> RefundStatus:
        refund_id = call.reference
        found = await self._lookup(rb.REFUNDS_PATH, refund_id, rb.Refund)
        if found is None:
            return RefundStatus(refund_id=refund_id, outcome=BankOutcome.NOT_FOUND)
        return RefundStatus(refund_id=refund_id, outcome=_REFUND_OUTCOME[found.status],
                            bank_txn_id=found.id, amount=found.amount)

    # ------------------------------------------------------------------ payouts

    async def payout(self, order: PayoutOrder) -> PayoutStatus:
        body = rb.CreatePayout(
            payout_reference=order.payout_id, amount=order.amount,
            beneficiary_name=order.beneficiary.name,
            beneficiary_account=order.beneficiary.account_number,
            beneficiary_bank=order.beneficiary.bank_name, description=order.description,
            notify_url=order.notify_url,
        ).to_json()
        response = await self._call("POST", rb.PAYOUTS_PATH, body, order.payout_id)
        if response.status_code not in (200, 201):
            raise self._refusal(response, "payout")
        payout = self._decode(rb.Payout.from_json, response, "payout")
        assert isinstance(payout, rb.Payout)
        if payout.status is rb.PayoutStatus.FAILED:
            raise BankRejected(self._code, f"payout failed: {payout.failure_code}",
                               payout.failure_code)
        return PayoutStatus(payout_id=order.payout_id, outcome=_PAYOUT_OUTCOME[payout.status],
                            bank_txn_id=payout.id, amount=payout.amount)

    async def query_payout(self, call: BankCall) -> PayoutStatus:
        payout_id = call.reference
        found = await self._lookup(rb.PAYOUTS_PATH, payout_id, rb.Payout)
        if found is None:
            return PayoutStatus(payout_id=payout_id, outcome=BankOutcome.NOT_FOUND)
        return PayoutStatus(payout_id=payout_id, outcome=_PAYOUT_OUTCOME[found.status],
                            bank_txn_id=found.id, amount=found.amount,
                            **_returned(found))

    # ------------------------------------------------------------------ webhooks

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> BankNotification:
        event = rb.verify_webhook(
            headers, body, webhook_secrets=self._credentials.webhook_secrets,
            now=self._clock(), window=self._window,
        )
        details = {"event_id": event.id, "event_type": event.type}
        if event.payment is not None:
            payment = event.payment
            return BankNotification(
                bank=self._code, kind=NotificationKind.PAYMENT, bank_txn_id=payment.id,
                reference=payment.order_id, outcome=_PAYMENT_OUTCOME[payment.status],
                amount=payment.amount, merchant_id=payment.merchant_id,
                occurred_at=event.created, details=details,
            )
        if event.refund is not None:
            refund = event.refund
            return BankNotification(
                bank=self._code, kind=NotificationKind.REFUND, bank_txn_id=refund.id,
                reference=refund.refund_reference, outcome=_REFUND_OUTCOME[refund.status],
                amount=refund.amount,
                # Refund and payout events carry no merchant id: the webhook secret,
                # which is per merchant, is what ties them to us.
                merchant_id=self.merchant_id, occurred_at=event.created,
                details={**details, "payment_id": refund.payment_id},
            )
        assert event.payout is not None
        payout = event.payout
        if payout.status is rb.PayoutStatus.RETURNED:
            # the return is its own bank transaction (deduplicated by its id)
            details = {**details, "payout_id": payout.id,
                       "return_reason": payout.failure_code or ""}
        return BankNotification(
            bank=self._code, kind=NotificationKind.PAYOUT,
            bank_txn_id=payout.return_id or payout.id
            if payout.status is rb.PayoutStatus.RETURNED else payout.id,
            reference=payout.payout_reference, outcome=_PAYOUT_OUTCOME[payout.status],
            amount=payout.amount, merchant_id=self.merchant_id, occurred_at=event.created,
            details=details,
        )

    def acknowledge(self, notification: BankNotification | None, accepted: bool) -> BankReply:
        if accepted:
            return BankReply(200, "application/json", b'{"received":true}')
        # Any non-2xx makes the bank deliver the event again later.
        return BankReply(503, "application/json", b'{"received":false}')
