"""Sandbox SM bank: XML messages signed with SM2 over SM3 (wire format in
`gateways.protocols.smbank`).

At start it draws its own SM2 signing key (keyId `smbank-sandbox-1`) and the merchant's
(keyId `merchant-1`, whose public key the merchant "registered" with the bank).

One route, `POST /smbank/gateway`, takes a signed XML request (checked: signature,
SendTime within 5 minutes, MsgId never seen before) and answers with a signed XML
response:
- `PayRequest` -> `PayResponse` with the customer's `PayUrl`;
- `QueryRequest` -> `QueryResponse` (Status SUCCESS / FAILED / PROCESSING / NOT_FOUND);
- `RefundRequest` (by `OrigBankSerialNo`) -> `RefundResponse` SUCCESS, or ResultCode
  2001 duplicate, 2002 not refundable, 2003 exceeds what is left;
- `RefundQueryRequest` -> `RefundResponse`;
- `PayoutRequest` -> `PayoutResponse` PROCESSING (2004 insufficient funds), the outcome
  follows as `PayoutNotify`; `PayoutQueryRequest` -> `PayoutResponse`.
Notifications (`PayNotify`, `RefundNotify`, `PayoutNotify`) are redelivered, each time
as a fresh message (new MsgId and SendTime), until the merchant answers with a signed
`Ack` naming that MsgId with ResultCode 0000.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateways.adapters._http import DEFAULT_TIMEOUT, Duration
from gateways.adapters.smbank import GATEWAY_PATH, XML, SmBankAdapter, SmBankCredentials
from gateways.protocols import (
    InMemoryReplayGuard,
    MalformedMessage,
    ProtocolError,
    generate_sm2_private_key,
)
from gateways.protocols import smbank as sm
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

__all__ = ["SmBankSandbox"]

BANK_KEY_ID = "smbank-sandbox-1"
MERCHANT_KEY_ID = "merchant-1"
WINDOW = dt.timedelta(minutes=5)
#: the bank's documented "system busy, not processed" ResultCode (fault SERVER_ERROR)
NOT_PROCESSED = "9001"
BUSY = "system busy: not processed, try again later"
_REFUSALS = {"duplicate": ("2001", "duplicate refund id"),
             "not_refundable": ("2002", "original payment not refundable"),
             "exceeds": ("2003", "refund exceeds the refundable amount")}
_STATUS = {TxnState.AWAITING: sm.OrderStatus.PROCESSING,
           TxnState.PROCESSING: sm.OrderStatus.PROCESSING,
           TxnState.SUCCEEDED: sm.OrderStatus.SUCCESS,
           TxnState.FAILED: sm.OrderStatus.FAILED,
           TxnState.RETURNED: sm.OrderStatus.RETURNED}


class SmBankSandbox(SandboxBank):
    code = "smbank"
    display_name = "SM Bank e-Banking (sandbox)"
    currency = "CNY"
    statement_format = "camt.053"

    def __init__(
        self,
        *,
        settings: SandboxSettings | None = None,
        business_day: Callable[[], dt.date] | None = None,
    ) -> None:
        self.bank_key = generate_sm2_private_key()
        self.merchant_key = generate_sm2_private_key()
        self._signer = sm.SmSigner(self.bank_key, BANK_KEY_ID)
        self._verifier = sm.SmVerifier({MERCHANT_KEY_ID: self.merchant_key.public_key})
        self._ack_verifier = self._verifier
        self._guard = InMemoryReplayGuard()
        super().__init__(
            merchant_id="SM" + "".join(str(secrets.randbelow(10)) for _ in range(10)),
            settings=settings, business_day=business_day,
        )

    def credentials(self, base_url: str | None = None) -> SmBankCredentials:
        return SmBankCredentials(
            base_url=base_url or self.base_url, merchant_id=self.merchant_id,
            merchant_key=self.merchant_key, merchant_key_id=MERCHANT_KEY_ID,
            bank_public_keys={BANK_KEY_ID: self.bank_key.public_key},
        )

    def adapter(self, *, timeout: Duration = DEFAULT_TIMEOUT, base_url: str | None = None) -> SmBankAdapter:
        return SmBankAdapter(self.credentials(base_url), code=self.code, timeout=timeout)

    def new_bank_txn_id(self, kind: TxnKind) -> str:
        prefix = {TxnKind.PAYMENT: "P", TxnKind.REFUND: "R", TxnKind.PAYOUT: "T"}[kind]
        day = self.now().astimezone(sm.CHINA_TIME).strftime("%Y%m%d")
        return f"SM{prefix}{day}" + "".join(str(secrets.randbelow(10)) for _ in range(12))

    def protocol_routes(self) -> list[Route]:
        return [Route(GATEWAY_PATH, self._gateway, methods=["POST"])]

    def _reply(self, message: sm._Message) -> Response:
        return Response(sm.encode(message, self._signer, now=self.now()), media_type=XML)

    async def _accept(self, document: bytes, kind: type[sm.M]) -> sm.M:
        envelope = await sm.accept_message(document, kind, self._verifier, guard=self._guard,
                                           now=self.now(), window=WINDOW)
        message = envelope.message
        if getattr(message, "merchant_id", None) != self.merchant_id:
            raise MalformedMessage("MerchantId is not the signer's merchant")
        return message

    # ------------------------------------------------------------------ dispatch

    async def _gateway(self, request: Request) -> Response:
        document = await request.body()
        try:
            kind = sm.message_type(document)
            handler = {
                sm.PayRequest.MSG_TYPE: self._pay_request,
                sm.QueryRequest.MSG_TYPE: self._query,
                sm.RefundRequest.MSG_TYPE: self._refund_request,
                sm.RefundQueryRequest.MSG_TYPE: self._refund_query,
                sm.PayoutRequest.MSG_TYPE: self._payout_request,
                sm.PayoutQueryRequest.MSG_TYPE: self._payout_query,
            }.get(kind)
            if handler is None:
                raise MalformedMessage(f"<{kind[:40]}> is not a request this bank takes")
            return await handler(document)
        except ProtocolError as exc:
            # Unsigned: a request the bank cannot trust gets no signed answer.
            return Response(f"1001 {exc}"[:300], status_code=400, media_type="text/plain")

    # ------------------------------------------------------------------ payments

    async def _pay_request(self, document: bytes) -> Response:
        pay = await self._accept(document, sm.PayRequest)
        if (failure := self.server_error(pay.order_id, lambda: self._reply(sm.PayResponse(
                merchant_id=self.merchant_id, order_id=pay.order_id,
                result_code=NOT_PROCESSED, result_msg=BUSY)))) is not None:
            return failure
        await self.before_processing(pay.order_id)
        existing = self.find(TxnKind.PAYMENT, pay.order_id)
        amount = money_to_minor(pay.amount, currency=self.currency, max_digits=15)
        if existing is not None and existing.amount_minor != amount:
            return self._reply(sm.PayResponse(merchant_id=self.merchant_id,
                                              order_id=pay.order_id, result_code="2001",
                                              result_msg="duplicate OrderId"))
        txn = self.register_payment(
            reference=pay.order_id, amount_minor=amount, currency=self.currency,
            notify_url=pay.notify_url, return_url=pay.return_url, description=pay.subject,
        )
        response = self._reply(sm.PayResponse(
            merchant_id=self.merchant_id, order_id=pay.order_id, result_code=sm.RESULT_OK,
            result_msg="OK", pay_url=self.pay_url(txn)))
        return await self.after_processing(pay.order_id, debited=False, answer=response)

    async def _query(self, document: bytes) -> Response:
        query = await self._accept(document, sm.QueryRequest)
        txn = self.find(TxnKind.PAYMENT, query.order_id)
        if txn is None:
            return self._reply(sm.QueryResponse(
                merchant_id=self.merchant_id, order_id=query.order_id,
                result_code=sm.RESULT_OK, status=sm.OrderStatus.NOT_FOUND))
        self.settle_expiry(txn)
        status = _STATUS[txn.state]
        if status is sm.OrderStatus.SUCCESS and self.answer_processing(txn):
            status = sm.OrderStatus.PROCESSING
        return self._reply(sm.QueryResponse(
            merchant_id=self.merchant_id, order_id=query.order_id, result_code=sm.RESULT_OK,
            status=status, bank_serial_no=txn.bank_txn_id, amount_minor=txn.amount_minor,
            currency=txn.currency))

    # ------------------------------------------------------------------ refunds

    async def _refund_request(self, document: bytes) -> Response:
        ask = await self._accept(document, sm.RefundRequest)
        if (failure := self.server_error(ask.refund_id, lambda: self._reply(sm.RefundResponse(
                merchant_id=self.merchant_id, refund_id=ask.refund_id,
                result_code=NOT_PROCESSED, result_msg=BUSY,
                status=sm.OrderStatus.FAILED)))) is not None:
            return failure
        await self.before_processing(ask.refund_id)
        payment = self.find_by_bank_id(ask.orig_bank_serial_no)
        refused: tuple[str, str] | None = None
        if payment is None or payment.kind is not TxnKind.PAYMENT:
            refused = ("2002", "no such original payment")
        else:
            try:
                refund = self.refund(
                    reference=ask.refund_id, payment=payment,
                    amount_minor=money_to_minor(ask.amount, currency=self.currency,
                                                max_digits=15),
                    notify_url=ask.notify_url)
            except RefundRefused as exc:
                refused = _REFUSALS[exc.code]
        if refused is not None:
            return self._reply(sm.RefundResponse(
                merchant_id=self.merchant_id, refund_id=ask.refund_id, result_code=refused[0],
                result_msg=refused[1], status=sm.OrderStatus.FAILED))
        response = self._reply(self._refund_view(refund, inquiry=False))
        return await self.after_processing(ask.refund_id, debited=True, answer=response)

    def _refund_view(self, refund: Txn, *, inquiry: bool) -> sm.RefundResponse:
        status = _STATUS[refund.state]
        if inquiry and status is sm.OrderStatus.SUCCESS and self.answer_processing(refund):
            status = sm.OrderStatus.PROCESSING
        return sm.RefundResponse(
            merchant_id=self.merchant_id, refund_id=refund.reference, result_code=sm.RESULT_OK,
            result_msg="OK", status=status, refund_serial_no=refund.bank_txn_id)

    async def _refund_query(self, document: bytes) -> Response:
        query = await self._accept(document, sm.RefundQueryRequest)
        refund = self.find(TxnKind.REFUND, query.refund_id)
        if refund is None:
            return self._reply(sm.RefundResponse(
                merchant_id=self.merchant_id, refund_id=query.refund_id,
                result_code=sm.RESULT_OK, status=sm.OrderStatus.NOT_FOUND))
        return self._reply(self._refund_view(refund, inquiry=True))

    # ------------------------------------------------------------------ payouts

    async def _payout_request(self, document: bytes) -> Response:
        ask = await self._accept(document, sm.PayoutRequest)
        if (failure := self.server_error(ask.payout_id, lambda: self._reply(sm.PayoutResponse(
                merchant_id=self.merchant_id, payout_id=ask.payout_id,
                result_code=NOT_PROCESSED, result_msg=BUSY,
                status=sm.OrderStatus.FAILED)))) is not None:
            return failure
        await self.before_processing(ask.payout_id)
        payout = self.payout(
            reference=ask.payout_id,
            amount_minor=money_to_minor(ask.amount, currency=self.currency, max_digits=15),
            currency=self.currency, beneficiary_name=ask.payee_name,
            beneficiary_account=ask.payee_account, notify_url=ask.notify_url or None,
            description=ask.memo,
        )
        if payout.state is TxnState.FAILED:
            return self._reply(sm.PayoutResponse(
                merchant_id=self.merchant_id, payout_id=ask.payout_id, result_code="2004",
                result_msg="insufficient funds", status=sm.OrderStatus.FAILED))
        # Taken; the outcome is told by PayoutNotify (asynchronous, like most banks).
        response = self._reply(sm.PayoutResponse(
            merchant_id=self.merchant_id, payout_id=ask.payout_id, result_code=sm.RESULT_OK,
            result_msg="accepted", status=sm.OrderStatus.PROCESSING,
            payout_serial_no=payout.bank_txn_id, amount_minor=payout.amount_minor))
        return await self.after_processing(ask.payout_id, debited=True, answer=response)

    async def _payout_query(self, document: bytes) -> Response:
        query = await self._accept(document, sm.PayoutQueryRequest)
        payout = self.find(TxnKind.PAYOUT, query.payout_id)
        if payout is None:
            return self._reply(sm.PayoutResponse(
                merchant_id=self.merchant_id, payout_id=query.payout_id,
                result_code=sm.RESULT_OK, status=sm.OrderStatus.NOT_FOUND))
        status = _STATUS[payout.state]
        if status is sm.OrderStatus.SUCCESS and self.answer_processing(payout):
            status = sm.OrderStatus.PROCESSING
        return self._reply(sm.PayoutResponse(
            merchant_id=self.merchant_id, payout_id=query.payout_id, result_code=sm.RESULT_OK,
            status=status, payout_serial_no=payout.bank_txn_id,
            amount_minor=payout.amount_minor, currency=payout.currency,
            return_reason=payout.return_reason))

    # ------------------------------------------------------------------ notifications

    def encode_notice(self, facts: NoticeFacts, corrupt: bool) -> Outgoing:
        txn = facts.txn
        status = sm.OrderStatus.SUCCESS if facts.succeeded else sm.OrderStatus.FAILED
        message: sm._Message
        if txn.kind is TxnKind.PAYMENT:
            message = sm.PayNotify(
                merchant_id=facts.merchant_id, order_id=facts.reference,
                bank_serial_no=facts.bank_txn_id, amount_minor=facts.amount_minor,
                status=status, pay_time=facts.at, currency=facts.currency)
        elif txn.kind is TxnKind.REFUND:
            message = sm.RefundNotify(
                merchant_id=facts.merchant_id, refund_id=facts.reference,
                refund_serial_no=facts.bank_txn_id, amount_minor=facts.amount_minor,
                status=status, currency=facts.currency)
        else:
            message = sm.PayoutNotify(
                merchant_id=facts.merchant_id, payout_id=facts.reference,
                payout_serial_no=txn.bank_txn_id if facts.returned else facts.bank_txn_id,
                amount_minor=facts.amount_minor,
                status=sm.OrderStatus.RETURNED if facts.returned else status,
                currency=facts.currency,
                return_serial_no=facts.bank_txn_id if facts.returned else None,
                return_reason=facts.return_reason or "")
        msg_id = secrets.token_hex(16)
        document = sm.encode(message, self._signer, now=self.now(), msg_id=msg_id)
        if corrupt:
            # Re-sign with a key the merchant does not trust under the bank's keyId.
            forged = sm.SmSigner(generate_sm2_private_key(), BANK_KEY_ID)
            document = sm.encode(message, forged, now=self.now(), msg_id=msg_id)
        return Outgoing(body=document, headers={"Content-Type": XML}, message_id=msg_id)

    def is_acknowledged(self, response: httpx.Response, outgoing: Outgoing) -> bool:
        if response.status_code != 200:
            return False
        try:
            ack = sm.decode(response.content, sm.Ack, self._ack_verifier).message
        except ProtocolError:
            return False
        return ack.received and ack.ref_msg_id == outgoing.message_id
