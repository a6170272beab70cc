"""Merchant-side adapter for the SM bank: XML messages signed with SM2 over SM3
(Chinese national cryptography; wire format in `gateways.protocols.smbank`).

    adapter = SmBankAdapter(SmBankCredentials(base_url=..., merchant_id=...,
                            merchant_key=..., merchant_key_id=..., bank_public_keys={...}))
    instruction = await adapter.create_payment(order)   # method GET, url = the bank's PayUrl
    note = adapter.parse_notification(headers, body)    # PayNotify / RefundNotify / PayoutNotify
    reply = adapter.acknowledge(note, accepted=True)    # a signed <Ack> with RefMsgId

Every request is one signed XML document POSTed to `{base_url}/smbank/gateway`; every
answer is a signed XML document, verified against the bank's public key(s) by keyId and
refused (as `OutcomeUnknown`) if it does not verify.  Notifications are refused when
their SendTime lies outside the window (default 5 minutes), and answered with a signed
`Ack` whose `RefMsgId` is the notification's MsgId (ResultCode 0000 taken, 9999 send
again).  `bank_txn_id` is the bank's `BankSerialNo` / `RefundSerialNo` /
`PayoutSerialNo`.  A signed answer with ResultCode `9001` is the bank's documented
"system busy, not processed" (`BankUnavailable`: safe to fail over); any 5xx is
`OutcomeUnknown`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

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
from gateways.protocols import MalformedMessage, ProtocolError, Sm2PrivateKey, Sm2PublicKey
from gateways.protocols import smbank as sm
from gateways.protocols.amounts import minor_to_money

__all__ = ["GATEWAY_PATH", "SmBankAdapter", "SmBankCredentials"]

GATEWAY_PATH = "/smbank/gateway"
XML = "application/xml; charset=UTF-8"
DEFAULT_WINDOW = dt.timedelta(minutes=5)
#: the bank's documented ResultCode for a request it did not process (system busy)
RESULT_NOT_PROCESSED = "9001"

_OUTCOME = {
    sm.OrderStatus.SUCCESS: BankOutcome.SUCCEEDED,
    sm.OrderStatus.FAILED: BankOutcome.FAILED,
    sm.OrderStatus.PROCESSING: BankOutcome.PROCESSING,
    sm.OrderStatus.NOT_FOUND: BankOutcome.NOT_FOUND,
    sm.OrderStatus.RETURNED: BankOutcome.RETURNED,
}


@dataclass(frozen=True)
class SmBankCredentials:
    base_url: str
    merchant_id: str
    merchant_key: Sm2PrivateKey = field(repr=False)
    merchant_key_id: str
    #: the bank's signing keys by keyId (several during a rotation)
    bank_public_keys: Mapping[str, Sm2PublicKey]


class SmBankAdapter(HttpAdapter):
    def __init__(
        self,
        credentials: SmBankCredentials,
        *,
        code: str = "smbank",
        timeout: Duration = DEFAULT_TIMEOUT,
        window: dt.timedelta = DEFAULT_WINDOW,
        clock: Callable[[], dt.datetime] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._credentials = credentials
        self._code = code
        self._signer = sm.SmSigner(credentials.merchant_key, credentials.merchant_key_id)
        self._verifier = sm.SmVerifier(credentials.bank_public_keys)
        self._window = window
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._client = make_client(timeout, transport)

    @property
    def merchant_id(self) -> str:
        return self._credentials.merchant_id

    @property
    def limits(self) -> BankLimits:
        # <Currency> is the account's; <Amount> at most 15 digits of minor units
        return BankLimits(frozenset({sm.CURRENCY}), 15)

    def bank_order_id(self, reference: str) -> str:
        return reference  # OrderId / RefundId / PayoutId are our ids as they are

    async def _exchange(self, message: sm._Message, answer: type[sm.M], what: str) -> sm.M:
        try:
            document = sm.encode(message, self._signer, now=self._clock())
        except (ProtocolError, ValueError) as exc:
            raise BankRejected(self._code, f"{what}: {exc}", "invalid_request") from exc
        response = await send(
            self._client, self._code, "POST",
            self._credentials.base_url.rstrip("/") + GATEWAY_PATH,
            content=document, headers={"Content-Type": XML},
        )
        if response.status_code != 200:
            raise BankRejected(self._code, f"{what}: HTTP {response.status_code} "
                               f"{response.text[:120]}", str(response.status_code))
        try:
            message = sm.decode(response.content, answer, self._verifier).message
        except ProtocolError as exc:
            raise OutcomeUnknown(self._code, f"{what}: untrusted answer ({exc})") from exc
        if getattr(message, "result_code", None) == RESULT_NOT_PROCESSED:
            raise BankUnavailable(self._code, f"{what} not processed: {RESULT_NOT_PROCESSED} "
                                  f"{getattr(message, 'result_msg', '')}")
        return message

    def _refused(self, what: str, code: str, message: str) -> BankRejected:
        return BankRejected(self._code, f"{what} refused: {code} {message}", code)

    # ------------------------------------------------------------------ payments

    async def create_payment(self, order: PaymentOrder) -> PaymentInstruction:
        answer = await self._exchange(sm.PayRequest(
            merchant_id=self.merchant_id, order_id=order.attempt_id, amount=order.amount,
            order_time=order.created_at, notify_url=order.notify_url,
            return_url=order.return_url, subject=order.description,
        ), sm.PayResponse, "pay")
        if not answer.accepted:
            raise self._refused("pay", answer.result_code, answer.result_msg)
        if answer.order_id != order.attempt_id or not answer.pay_url:
            raise OutcomeUnknown(self._code, "pay: the answer is about another order")
        return PaymentInstruction(method="GET", url=answer.pay_url)

    async def query_payment(self, call: BankCall) -> PaymentStatus:
        attempt_id = call.reference
        answer = await self._exchange(
            sm.QueryRequest(merchant_id=self.merchant_id, order_id=attempt_id),
            sm.QueryResponse, "query")
        if answer.result_code != sm.RESULT_OK:
            raise OutcomeUnknown(self._code, f"query refused: {answer.result_code}")
        amount = (minor_to_money(answer.amount_minor, answer.currency)
                  if answer.amount_minor is not None else None)
        return PaymentStatus(attempt_id=attempt_id, outcome=_OUTCOME[answer.status],
                             bank_txn_id=answer.bank_serial_no, amount=amount)

    # ------------------------------------------------------------------ refunds

    async def refund(self, order: RefundOrder) -> RefundStatus:
        answer = await self._exchange(sm.RefundRequest(
            merchant_id=self.merchant_id, refund_id=order.refund_id,
            order_id=order.attempt_id, orig_bank_serial_no=order.original_bank_txn_id,
            amount=order.amount, notify_url=order.notify_url,
        ), sm.RefundResponse, "refund")
        if answer.result_code != sm.RESULT_OK or answer.status is sm.OrderStatus.FAILED:
            raise self._refused("refund", answer.result_code, answer.result_msg)
        return RefundStatus(refund_id=order.refund_id, outcome=_OUTCOME[answer.status],
                            bank_txn_id=answer.refund_serial_no, amount=order.amount)

    async def query_refund(self, call: BankCall) -> RefundStatus:
        refund_id = call.reference
        answer = await self._exchange(
            sm.RefundQueryRequest(merchant_id=self.merchant_id, refund_id=refund_id),
            sm.RefundResponse, "refund query")
        if answer.result_code != sm.RESULT_OK:
            raise OutcomeUnknown(self._code, f"refund query refused: {answer.result_code}")
        return RefundStatus(refund_id=refund_id, outcome=_OUTCOME[answer.status],
                            bank_txn_id=answer.refund_serial_no)

    # ------------------------------------------------------------------ payouts

    async def payout(self, order: PayoutOrder) -> PayoutStatus:
        answer = await self._exchange(sm.PayoutRequest(
            merchant_id=self.merchant_id, payout_id=order.payout_id, amount=order.amount,
            payee_name=order.beneficiary.name, payee_account=order.beneficiary.account_number,
            payee_bank=order.beneficiary.bank_name, notify_url=order.notify_url or "",
            memo=order.description,
        ), sm.PayoutResponse, "payout")
        if not answer.accepted or answer.status is sm.OrderStatus.FAILED:
            raise self._refused("payout", answer.result_code, answer.result_msg)
        return PayoutStatus(payout_id=order.payout_id, outcome=_OUTCOME[answer.status],
                            bank_txn_id=answer.payout_serial_no, amount=order.amount)

    async def query_payout(self, call: BankCall) -> PayoutStatus:
        payout_id = call.reference
        answer = await self._exchange(
            sm.PayoutQueryRequest(merchant_id=self.merchant_id, payout_id=payout_id),
            sm.PayoutResponse, "payout query")
        if answer.result_code != sm.RESULT_OK:
            raise OutcomeUnknown(self._code, f"payout query refused: {answer.result_code}")
        amount = (minor_to_money(answer.amount_minor, answer.currency)
                  if answer.amount_minor is not None else None)
        returned = answer.status is sm.OrderStatus.RETURNED
        return PayoutStatus(payout_id=payout_id, outcome=_OUTCOME[answer.status],
                            bank_txn_id=answer.payout_serial_no, amount=amount,
                            return_reason=answer.return_reason if returned else None)

    # ------------------------------------------------------------------ notifications

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> BankNotification:
        kind = sm.message_type(body)
        now = self._clock()
        if kind == sm.PayNotify.MSG_TYPE:
            pay = sm.decode(body, sm.PayNotify, self._verifier)
            pay.ensure_fresh(now, self._window)
            m = pay.message
            return BankNotification(
                bank=self._code, kind=NotificationKind.PAYMENT, bank_txn_id=m.bank_serial_no,
                reference=m.order_id, outcome=_OUTCOME[m.status], amount=m.amount,
                merchant_id=m.merchant_id, occurred_at=m.pay_time or pay.send_time,
                details={"msg_id": pay.msg_id},
            )
        if kind == sm.RefundNotify.MSG_TYPE:
            refund = sm.decode(body, sm.RefundNotify, self._verifier)
            refund.ensure_fresh(now, self._window)
            r = refund.message
            return BankNotification(
                bank=self._code, kind=NotificationKind.REFUND, bank_txn_id=r.refund_serial_no,
                reference=r.refund_id, outcome=_OUTCOME[r.status],
                amount=minor_to_money(r.amount_minor, r.currency),
                merchant_id=r.merchant_id, occurred_at=refund.send_time,
                details={"msg_id": refund.msg_id},
            )
        if kind == sm.PayoutNotify.MSG_TYPE:
            payout = sm.decode(body, sm.PayoutNotify, self._verifier)
            payout.ensure_fresh(now, self._window)
            p = payout.message
            details = {"msg_id": payout.msg_id}
            if p.status is sm.OrderStatus.RETURNED:
                # the return is its own bank transaction (deduplicated by its serial)
                details |= {"payout_serial_no": p.payout_serial_no,
                            "return_reason": p.return_reason}
            return BankNotification(
                bank=self._code, kind=NotificationKind.PAYOUT,
                bank_txn_id=p.return_serial_no or p.payout_serial_no
                if p.status is sm.OrderStatus.RETURNED else p.payout_serial_no,
                reference=p.payout_id, outcome=_OUTCOME[p.status],
                amount=minor_to_money(p.amount_minor, p.currency),
                merchant_id=p.merchant_id, occurred_at=payout.send_time,
                details=details,
            )
        raise MalformedMessage(f"<{kind[:40]}> is not a notification")

    def acknowledge(self, notification: BankNotification | None, accepted: bool) -> BankReply:
        ref = notification.details.get("msg_id", "") if notification is not None else ""
        # A message we could not read has no MsgId we trust; "0" asks for it again.
        ack = sm.Ack(ref_msg_id=ref) if accepted and ref else sm.Ack.retry(
            ref or "0", "not taken, send again")
        return BankReply(200, XML, sm.encode(ack, self._signer, now=self._clock()))
