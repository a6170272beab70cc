"""Sandbox REST bank: JSON API signed with HMAC-SHA256, signed webhooks with a
timestamp header (wire format in `gateways.protocols.restbank`).

Routes (all merchant calls signed, see the protocol module):
- `POST /v1/payments` (Idempotency-Key) -> 201 Payment `requires_action` with the
  customer's `redirect_url` (the pay page); `GET /v1/payments/{id}`,
  `GET /v1/payments?order_id=...`;
- `POST /v1/refunds` -> 201 Refund `succeeded` (synchronous), or 422 `ApiError`
  (`amount_exceeds_refundable`, `payment_not_refundable`, `duplicate_refund`);
  `GET /v1/refunds/{id}`, `GET /v1/refunds?refund_reference=...`;
- `POST /v1/payouts` -> 201 Payout `paid` / `failed`; `GET /v1/payouts/{id}`,
  `GET /v1/payouts?payout_reference=...`.
Webhooks `payment.succeeded|failed`, `refund.succeeded`, `payout.paid|failed` go to the
object's notify URL; any 2xx acknowledges.

Our bank transaction id for a payment is its `id` (`pay_...`), for a refund `re_...`,
for a payout `po_...`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateways.adapters._http import DEFAULT_TIMEOUT, Duration
from gateways.adapters.restbank import RestBankAdapter, RestBankCredentials
from gateways.protocols import (
    InMemoryReplayGuard,
    ProtocolError,
    ReplayedMessage,
    SignatureInvalid,
    StaleMessage,
    generate_api_key,
    generate_hmac_secret,
)
from gateways.protocols import restbank as rb
from gateways.protocols.amounts import money_to_minor
from gateways.sandbox.base import (
    NoticeFacts,
    RefundRefused,
    SandboxBank,
    SandboxSettings,
    Txn,
    TxnKind,
    TxnState,
)
from gateways.sandbox.notifier import Outgoing

__all__ = ["RestBankSandbox"]

_JSON = "application/json"


class RestBankSandbox(SandboxBank):
    code = "restbank"
    display_name = "RestBank Online Banking"
    currency = "CNY"
    statement_format = "bai2"

    def __init__(
        self,
        *,
        settings: SandboxSettings | None = None,
        business_day: Callable[[], dt.date] | None = None,
    ) -> None:
        self.api_key = generate_api_key()
        self.secret = generate_hmac_secret()
        self.webhook_secret = generate_hmac_secret()
        self._guard = InMemoryReplayGuard()
        self._idempotency: dict[tuple[str, str], tuple[str, Response]] = {}
        super().__init__(
            merchant_id="mch_" + secrets.token_hex(6), settings=settings,
            business_day=business_day,
        )

    def credentials(self, base_url: str | None = None) -> RestBankCredentials:
        """What the merchant holds for this bank: its API key and secrets."""
        return RestBankCredentials(
            base_url=base_url or self.base_url, merchant_id=self.merchant_id,
            api_key=self.api_key, secret=self.secret, webhook_secrets=(self.webhook_secret,),
        )

    def adapter(self, *, timeout: Duration = DEFAULT_TIMEOUT, base_url: str | None = None) -> RestBankAdapter:
        return RestBankAdapter(self.credentials(base_url), code=self.code, timeout=timeout)

    def new_bank_txn_id(self, kind: TxnKind) -> str:
        prefix = {TxnKind.PAYMENT: "pay_", TxnKind.REFUND: "re_", TxnKind.PAYOUT: "po_"}[kind]
        return prefix + secrets.token_hex(12)

    def protocol_routes(self) -> list[Route]:
        return [
            Route(rb.PAYMENTS_PATH, self._create_payment, methods=["POST"]),
            Route(rb.PAYMENTS_PATH, self._lookup, methods=["GET"]),
            Route(rb.PAYMENTS_PATH + "/{id}", self._get, methods=["GET"]),
            Route(rb.REFUNDS_PATH, self._create_refund, methods=["POST"]),
            Route(rb.REFUNDS_PATH, self._lookup, methods=["GET"]),
            Route(rb.REFUNDS_PATH + "/{id}", self._get, methods=["GET"]),
            Route(rb.PAYOUTS_PATH, self._create_payout, methods=["POST"]),
            Route(rb.PAYOUTS_PATH, self._lookup, methods=["GET"]),
            Route(rb.PAYOUTS_PATH + "/{id}", self._get, methods=["GET"]),
        ]

    # ------------------------------------------------------------------ authentication

    async def _authenticate(self, request: Request) -> tuple[bytes, Response | None]:
        body = await request.body()
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            await rb.accept_request(
                request.headers, method=request.method, target=target, body=body,
                secret_for=lambda key: self.secret if key == self.api_key else None,
                guard=self._guard, now=self.now(),
            )
        except (SignatureInvalid, StaleMessage, ReplayedMessage) as exc:
            return body, _error(401, "authentication_failed", str(exc))
        except ProtocolError as exc:
            return body, _error(400, "invalid_request", str(exc))
        return body, None

    def _idempotent(self, request: Request, body: bytes) -> Response | None:
        """A replay of the same Idempotency-Key and body returns the first answer."""
        key = request.headers.get(rb.IDEMPOTENCY_HEADER)
        if not key:
            return None
        digest = hashlib.sha256(body).hexdigest()
        found = self._idempotency.get((request.url.path, key))
        if found is None:
            return None
        if found[0] != digest:
            return _error(409, "idempotency_conflict", "this Idempotency-Key was used with another body")
        return found[1]

    def _store(self, request: Request, body: bytes, response: Response) -> Response:
        key = request.headers.get(rb.IDEMPOTENCY_HEADER)
        if key:
            self._idempotency[(request.url.path, key)] = (
                hashlib.sha256(body).hexdigest(), response
            )
        return response

    # ------------------------------------------------------------------ payments

    async def _create_payment(self, request: Request) -> Response:
        body, refused = await self._authenticate(request)
        if refused is not None:
            return refused
        try:
            create = rb.CreatePayment.from_json(body)
        except ProtocolError as exc:
            return _error(400, "invalid_request", str(exc))
        replay = self._idempotent(request, body)
        if replay is not None:
            return replay
        if create.merchant_id != self.merchant_id:
            return _error(403, "merchant_mismatch", "merchant_id does not belong to this API key")
        if create.amount.currency.code != self.currency:
            return _error(422, "currency_not_supported",
                          f"this account settles in {self.currency} only")
        if (failure := self.server_error(
                create.order_id, _not_processed)) is not None:
            return failure
        await self.before_processing(create.order_id)
        existing = self.find(TxnKind.PAYMENT, create.order_id)
        if existing is not None and existing.amount_minor != money_to_minor(
            create.amount, currency=existing.currency, max_digits=15
        ):
            return _error(409, "duplicate_order", "this order_id was used with another amount")
        txn = self.register_payment(
            reference=create.order_id,
            amount_minor=money_to_minor(create.amount, currency=create.amount.currency.code,
                                        max_digits=15),
            currency=create.amount.currency.code, notify_url=create.notify_url,
            return_url=create.return_url, description=create.description,
        )
        response = self._store(request, body, _json(201, self._payment(txn).to_json()))
        return await self.after_processing(create.order_id, debited=False, answer=response)

    def _payment(self, txn: Txn) -> rb.Payment:
        self.settle_expiry(txn)
        status = {
            TxnState.AWAITING: rb.PaymentStatus.REQUIRES_ACTION,
            TxnState.PROCESSING: rb.PaymentStatus.PROCESSING,
            TxnState.SUCCEEDED: rb.PaymentStatus.SUCCEEDED,
            TxnState.FAILED: rb.PaymentStatus.FAILED,
        }[txn.state]
        if txn.failure == "expired":
            status = rb.PaymentStatus.EXPIRED
        return rb.Payment(
            id=txn.bank_txn_id, merchant_id=self.merchant_id, order_id=txn.reference,
            status=status, amount_minor=txn.amount_minor, currency=txn.currency,
            redirect_url=self.pay_url(txn) if txn.state is TxnState.AWAITING else None,
            failure_code=txn.failure,
        )

    def _view(self, txn: Txn, *, inquiry: bool) -> rb.Payment | rb.Refund | rb.Payout:
        if txn.kind is TxnKind.PAYMENT:
            payment = self._payment(txn)
            if inquiry and txn.state is TxnState.SUCCEEDED and self.answer_processing(txn):
                payment = rb.Payment(**{**payment.__dict__, "status": rb.PaymentStatus.PROCESSING})
            return payment
        if txn.kind is TxnKind.REFUND:
            status = rb.RefundStatus.SUCCEEDED
            if inquiry and self.answer_processing(txn):
                status = rb.RefundStatus.PENDING
            assert txn.payment is not None
            return rb.Refund(
                id=txn.bank_txn_id, payment_id=txn.payment.bank_txn_id,
                refund_reference=txn.reference, status=status,
                amount_minor=txn.amount_minor, currency=txn.currency,
            )
        payout_status = {TxnState.SUCCEEDED: rb.PayoutStatus.PAID,
                         TxnState.RETURNED: rb.PayoutStatus.RETURNED}.get(
            txn.state, rb.PayoutStatus.FAILED)
        if inquiry and txn.state is TxnState.SUCCEEDED and self.answer_processing(txn):
            payout_status = rb.PayoutStatus.PENDING
        return rb.Payout(
            id=txn.bank_txn_id, payout_reference=txn.reference, status=payout_status,
            amount_minor=txn.amount_minor, currency=txn.currency,
            beneficiary_name=txn.beneficiary_name,
            account_last4=txn.beneficiary_account[-4:],
            failure_code=txn.return_reason or None if txn.return_id else txn.failure,
            return_id=txn.return_id,
        )

    async def _get(self, request: Request) -> Response:
        _, refused = await self._authenticate(request)
        if refused is not None:
            return refused
        txn = self.find_by_bank_id(request.path_params["id"])
        collection = "/" + request.url.path.strip("/").rsplit("/", 1)[0]
        if txn is None or _COLLECTION[txn.kind] != collection:
            return _error(404, "not_found", "no such object")
        return _json(200, self._view(txn, inquiry=True).to_json())

    async def _lookup(self, request: Request) -> Response:
        _, refused = await self._authenticate(request)
        if refused is not None:
            return refused
        kind = {v: k for k, v in _COLLECTION.items()}[request.url.path]
        key = {TxnKind.PAYMENT: "order_id", TxnKind.REFUND: "refund_reference",
               TxnKind.PAYOUT: "payout_reference"}[kind]
        reference = request.query_params.get(key)
        if not reference:
            return _error(400, "invalid_request", f"{key} is required")
        txn = self.find(kind, reference)
        items = [self._view(txn, inquiry=True)] if txn is not None else []
        return _json(200, rb.list_json(items))

    # ------------------------------------------------------------------ refunds

    async def _create_refund(self, request: Request) -> Response:
        body, refused = await self._authenticate(request)
        if refused is not None:
            return refused
        try:
            create = rb.CreateRefund.from_json(body)
        except ProtocolError as exc:
            return _error(400, "invalid_request", str(exc))
        replay = self._idempotent(request, body)
        if replay is not None:
            return replay
        if (failure := self.server_error(
                create.refund_reference, _not_processed)) is not None:
            return failure
        await self.before_processing(create.refund_reference)
        payment = self.find_by_bank_id(create.payment_id)
        if payment is None or payment.kind is not TxnKind.PAYMENT:
            return _error(404, "payment_not_found", "no such payment")
        if create.amount.currency.code != payment.currency:
            return _error(422, "currency_mismatch", "the refund's currency is not the payment's")
        try:
            txn = self.refund(
                reference=create.refund_reference, payment=payment,
                amount_minor=money_to_minor(create.amount, currency=payment.currency,
                                            max_digits=15),
                notify_url=payment.notify_url,
            )
        except RefundRefused as exc:
            code = {"exceeds": "amount_exceeds_refundable", "duplicate": "duplicate_refund",
                    "not_refundable": "payment_not_refundable"}[exc.code]
            return self._store(request, body, _error(422, code, exc.message))
        response = self._store(request, body, _json(201, self._view(txn, inquiry=False).to_json()))
        return await self.after_processing(create.refund_reference, debited=True,
                                           answer=response)

    # ------------------------------------------------------------------ payouts

    async def _create_payout(self, request: Request) -> Response:
        body, refused = await self._authenticate(request)
        if refused is not None:
            return refused
        try:
            create = rb.CreatePayout.from_json(body)
        except ProtocolError as exc:
            return _error(400, "invalid_request", str(exc))
        replay = self._idempotent(request, body)
        if replay is not None:
            return replay
        if create.amount.currency.code != self.currency:
            return _error(422, "currency_not_supported",
                          f"this account pays out in {self.currency} only")
        if (failure := self.server_error(
                create.payout_reference, _not_processed)) is not None:
            return failure
        await self.before_processing(create.payout_reference)
        txn = self.payout(
            reference=create.payout_reference,
            amount_minor=money_to_minor(create.amount, currency=create.amount.currency.code,
                                        max_digits=15),
            currency=create.amount.currency.code, beneficiary_name=create.beneficiary_name,
            beneficiary_account=create.beneficiary_account, notify_url=create.notify_url,
            description=create.description,
        )
        response = self._store(request, body, _json(201, self._view(txn, inquiry=False).to_json()))
        return await self.after_processing(create.payout_reference, debited=True,
                                           answer=response)

    # ------------------------------------------------------------------ webhooks

    def encode_notice(self, facts: NoticeFacts, corrupt: bool) -> Outgoing:
        txn = facts.txn
        view = self._view(txn, inquiry=False)
        data: rb.Payment | rb.Refund | rb.Payout
        if isinstance(view, rb.Payment):
            data = rb.Payment(**{**view.__dict__, "merchant_id": facts.merchant_id,
                                 "order_id": facts.reference, "id": facts.bank_txn_id,
                                 "amount_minor": facts.amount_minor, "currency": facts.currency,
                                 "redirect_url": None})
            event_type = f"payment.{data.status.value}"
        elif isinstance(view, rb.Refund):
            data = rb.Refund(**{**view.__dict__, "refund_reference": facts.reference,
                                "id": facts.bank_txn_id, "amount_minor": facts.amount_minor,
                                "currency": facts.currency})
            event_type = f"refund.{data.status.value}"
        else:
            # a return's facts carry the return's id; the payout keeps its own
            data = rb.Payout(**{**view.__dict__, "payout_reference": facts.reference,
                                "id": txn.bank_txn_id if facts.returned else facts.bank_txn_id,
                                "amount_minor": facts.amount_minor,
                                "currency": facts.currency})
            event_type = f"payout.{data.status.value}"
        event_id = "evt_" + hashlib.sha256(
            f"{facts.bank_txn_id}:{event_type}".encode()).hexdigest()[:24]
        event = rb.WebhookEvent(
            id=event_id, type=event_type, created=facts.at,
            payment=data if isinstance(data, rb.Payment) else None,
            refund=data if isinstance(data, rb.Refund) else None,
            payout=data if isinstance(data, rb.Payout) else None,
        )
        body = event.to_json()
        headers = rb.sign_webhook(self.webhook_secret, body, now=self.now())
        if corrupt:
            headers[rb.WEBHOOK_SIGNATURE_HEADER] = "v1=" + secrets.token_hex(32)
        headers["Content-Type"] = _JSON
        return Outgoing(body=body, headers=headers, message_id=event_id)

    def is_acknowledged(self, response: httpx.Response, outgoing: Outgoing) -> bool:
        return 200 <= response.status_code < 300


_COLLECTION = {TxnKind.PAYMENT: rb.PAYMENTS_PATH, TxnKind.REFUND: rb.REFUNDS_PATH,
               TxnKind.PAYOUT: rb.PAYOUTS_PATH}


def _json(status: int, body: bytes) -> Response:
    return Response(body, status_code=status, media_type=_JSON)


def _not_processed() -> Response:
    # the bank's documented "refused before anything was taken" (fault SERVER_ERROR)
    return _error(503, "not_processed", "system busy: not processed, try again later")


def _error(status: int, code: str, message: str) -> Response:
    return _json(status, rb.ApiError(code=code, message=message).to_json())
