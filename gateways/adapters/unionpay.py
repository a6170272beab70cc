"""Merchant-side adapter for the UnionPay online gateway (acp 5.1.0, RSA-SHA256 with
certificates; wire format in `gateways.protocols.unionpay`).

    adapter = UnionPayAdapter(UnionPayCredentials(base_url=..., mer_id=...,
                              merchant_identity=..., bank_roots=(root_cert,)))
    instruction = await adapter.create_payment(order)
        # method POST, url = the bank's frontTransReq.do, fields = signed form fields:
        # the checkout page renders them as an auto-submitting form (no HTTP here)
    note = adapter.parse_notification(headers, body)   # back notification, verified
    reply = adapter.acknowledge(note, accepted=True)   # HTTP 200 "ok"; else 503 -> resent

- `orderId` is our id (attempt, refund or payout id) when it is 8-40 letters/digits,
  otherwise the first 32 hex digits of its SHA-256; our id itself always travels in
  `reqReserved`, which the bank echoes, so notifications name our id either way;
- `queryTrans` identifies an order by `orderId` + the original `txnTime`, which is
  `PaymentOrder.created_at` / `RefundOrder.created_at` / `PayoutOrder.created_at`; the
  core records both in a `BankCall` before sending, and every query method takes that
  record (the adapter keeps nothing in memory: any process can ask);
- respCode `A6` ("有缺陷的成功", success with defects) means the money moved: it is a
  success carrying `review` (a person looks), never a failure; signed respCode `02`
  (system not open) and `06` (system busy) are acp's "not processed, try again later":
  `BankUnavailable`;
- `bank_txn_id` is the bank's `queryId` of the payment / refund / payout; refunds send
  the payment's queryId as `origQryId`;
- refunds and payouts are asynchronous at UnionPay: an accepted request comes back
  `PROCESSING` (with the new queryId); the back notification or an inquiry settles it;
- bank answers are trusted only when `signPubKeyCert` chains to one of `bank_roots`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
import structlog
from cryptography import x509
from moneyed import Money

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
from gateways.protocols import MalformedMessage, ProtocolError, RsaIdentity
from gateways.protocols import unionpay as up
from gateways.protocols.amounts import minor_to_money

__all__ = ["UnionPayAdapter", "UnionPayCredentials", "unionpay_order_id"]

log = structlog.get_logger("gateways.adapters.unionpay")

_ORDER_ID = re.compile(r"[0-9A-Za-z]{8,40}")
_REFERENCE = re.compile(r"[0-9A-Za-z_.:-]{1,64}")
_KIND = {up.TxnType.CONSUME.value: NotificationKind.PAYMENT,
         up.TxnType.REFUND.value: NotificationKind.REFUND,
         up.TxnType.PAYOUT.value: NotificationKind.PAYOUT}
#: acp respCode A6: the transaction succeeded "with defects"; the money moved
RESP_SUCCESS_WITH_DEFECTS = "A6"
#: acp respCodes for a request the bank did not process (02 system not open / closed for
#: now, 06 system busy): nothing was taken, safe to retry or fail over
NOT_PROCESSED_RESP_CODES = frozenset({"02", "06"})


def _defect_review(resp_code: str | None, message: str | None) -> str | None:
    if resp_code != RESP_SUCCESS_WITH_DEFECTS:
        return None
    return f"UnionPay answered A6, success with defects ({message or 'no message'}): the " \
           "money moved; check the transaction with the bank"


def unionpay_order_id(reference: str) -> str:
    """The `orderId` UnionPay sees for one of our ids."""
    if _ORDER_ID.fullmatch(reference):
        return reference
    return hashlib.sha256(reference.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class UnionPayCredentials:
    base_url: str
    #: 15 characters, as UnionPay assigns
    mer_id: str
    #: our signing key and the certificate uploaded to UnionPay (its serial is our certId)
    merchant_identity: RsaIdentity
    #: UnionPay's root certificates: the bank's signing certificate must chain to one
    bank_roots: tuple[x509.Certificate, ...]
    #: the common name the bank's signing certificate must carry (acp checks the CN:
    #: 中国银联股份有限公司 in production); any other subject under the root is refused
    bank_signer_name: str
    #: UnionPay's encryption certificate: payouts' account numbers travel under it
    bank_encryption_certificate: x509.Certificate | None = None
    #: UnionPay's intermediate ("middle") certificates between its root and its signer
    bank_intermediates: tuple[x509.Certificate, ...] = ()


class UnionPayAdapter(HttpAdapter):
    def __init__(
        self,
        credentials: UnionPayCredentials,
        *,
        code: str = "unionpay",
        timeout: Duration = DEFAULT_TIMEOUT,
        clock: Callable[[], dt.datetime] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._credentials = credentials
        self._code = code
        self._signer = up.Signer(credentials.merchant_identity)
        self._verifier = up.Verifier(roots=credentials.bank_roots,
                                     intermediates=credentials.bank_intermediates,
                                     signer_name=credentials.bank_signer_name)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._client = make_client(timeout, transport)

    @property
    def merchant_id(self) -> str:
        return self._credentials.mer_id

    @property
    def limits(self) -> BankLimits:
        # currencyCode 156 only; txnAmt is at most 12 digits of fen
        return BankLimits(frozenset({"CNY"}), 12)

    def certificates(self) -> list[tuple[str, x509.Certificate]]:
        """The certificates this adapter depends on, by role (for expiry warnings): the
        configured ones, and the bank's signing certificate as last verified."""
        creds = self._credentials
        found = [("merchant signing", creds.merchant_identity.certificate)]
        found += [("bank root", c) for c in creds.bank_roots]
        found += [("bank intermediate", c) for c in creds.bank_intermediates]
        if creds.bank_encryption_certificate is not None:
            found.append(("bank encryption", creds.bank_encryption_certificate))
        if self._verifier.last_signer is not None:
            found.append(("bank signing (last seen)", self._verifier.last_signer))
        return found

    def _url(self, path: str) -> str:
        return self._credentials.base_url.rstrip("/") + path

    def bank_order_id(self, reference: str) -> str:
        return self._order_id(reference)

    def _order_id(self, reference: str) -> str:
        if not _REFERENCE.fullmatch(reference):
            raise BankRejected(self._code, "our id cannot travel in reqReserved: use 1-64 "
                               "characters of [0-9A-Za-z_.:-]", "invalid_reference")
        return unionpay_order_id(reference)

    # ------------------------------------------------------------------ payments

    async def create_payment(self, order: PaymentOrder) -> PaymentInstruction:
        order_id = self._order_id(order.attempt_id)
        try:
            fields = up.ConsumeRequest(
                mer_id=self.merchant_id, order_id=order_id, txn_time=order.created_at,
                amount=order.amount, front_url=order.return_url, back_url=order.notify_url,
                pay_timeout=order.expires_at, req_reserved=order.attempt_id,
            ).fields()
        except (ProtocolError, ValueError) as exc:
            raise BankRejected(self._code, f"create payment: {exc}", "invalid_request") from exc
        return PaymentInstruction(method="POST", url=self._url(up.FRONT_TRANS_PATH),
                                  fields=self._signer.sign(fields))

    async def query_payment(self, call: BankCall) -> PaymentStatus:
        result = await self._query(call, up.BIZ_TYPE_B2C_GATEWAY)
        outcome = _outcome(result)
        return PaymentStatus(
            attempt_id=call.reference, outcome=outcome,
            bank_txn_id=result.query_id if outcome is not BankOutcome.NOT_FOUND else None,
            amount=_money(result), review=_query_review(result),
        )

    async def _query(self, call: BankCall, biz_type: str) -> up.QueryResult:
        # orderId and txnTime exactly as recorded before the original request was sent
        order_id = call.bank_order_id or self._order_id(call.reference)
        fields = up.QueryRequest(mer_id=self.merchant_id, order_id=order_id,
                                 txn_time=call.placed_at, biz_type=biz_type).fields()
        response = await self._post(up.QUERY_TRANS_PATH, fields)
        try:
            return up.parse_query_response(response.text, self._verifier, now=self._clock())
        except ProtocolError as exc:
            raise OutcomeUnknown(self._code, f"queryTrans: untrusted answer ({exc})") from exc

    async def _post(self, path: str, fields: Mapping[str, str]) -> httpx.Response:
        body = up.encode_form(self._signer.sign(fields)).encode("utf-8")
        response = await send(
            self._client, self._code, "POST", self._url(path), content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
        )
        if response.status_code != 200:
            raise BankRejected(self._code, f"{path} answered HTTP {response.status_code}",
                               str(response.status_code))
        return response

    # ------------------------------------------------------------------ refunds

    async def refund(self, order: RefundOrder) -> RefundStatus:
        order_id = self._order_id(order.refund_id)
        txn_time = order.created_at
        try:
            fields = up.RefundRequest(
                mer_id=self.merchant_id, order_id=order_id,
                orig_qry_id=order.original_bank_txn_id, txn_time=txn_time,
                amount=order.amount, back_url=order.notify_url, req_reserved=order.refund_id,
            ).fields()
        except (ProtocolError, ValueError) as exc:
            raise BankRejected(self._code, f"refund: {exc}", "invalid_request") from exc
        answer = await self._back_trans(fields, "refund")
        review = _defect_review(answer.resp_code, answer.resp_msg)
        return RefundStatus(refund_id=order.refund_id,
                            outcome=BankOutcome.SUCCEEDED if review else BankOutcome.PROCESSING,
                            bank_txn_id=answer.query_id, amount=order.amount, review=review)

    async def _back_trans(self, fields: Mapping[str, str], what: str) -> up.BackTransAnswer:
        response = await self._post(up.BACK_TRANS_PATH, fields)
        try:
            answer = up.parse_back_trans_response(response.text, self._verifier,
                                                  now=self._clock())
        except ProtocolError as exc:
            raise OutcomeUnknown(self._code, f"{what}: untrusted answer ({exc})") from exc
        if answer.resp_code == RESP_SUCCESS_WITH_DEFECTS:
            return answer  # the money moved: a success with a caveat, never a refusal
        if answer.resp_code in NOT_PROCESSED_RESP_CODES:
            raise BankUnavailable(self._code, f"{what} not processed: {answer.resp_code} "
                                  f"{answer.resp_msg}")
        if answer.status is up.BackTransStatus.REJECTED:
            raise BankRejected(self._code, f"{what} refused: {answer.resp_code} {answer.resp_msg}",
                               answer.resp_code)
        return answer

    async def query_refund(self, call: BankCall) -> RefundStatus:
        result = await self._query(call, up.BIZ_TYPE_B2C_GATEWAY)
        outcome = _outcome(result)
        return RefundStatus(
            refund_id=call.reference, outcome=outcome,
            bank_txn_id=result.query_id if outcome is not BankOutcome.NOT_FOUND else None,
            amount=_money(result), review=_query_review(result),
        )

    # ------------------------------------------------------------------ payouts

    async def payout(self, order: PayoutOrder) -> PayoutStatus:
        order_id = self._order_id(order.payout_id)
        txn_time = order.created_at
        certificate = self._credentials.bank_encryption_certificate
        if certificate is None:
            raise BankRejected(self._code, "payout: no UnionPay encryption certificate "
                               "configured for accNo", "configuration")
        try:
            fields = up.PayoutRequest(
                mer_id=self.merchant_id, order_id=order_id, txn_time=txn_time,
                amount=order.amount, acc_no=order.beneficiary.account_number,
                customer_name=order.beneficiary.name, encryption_certificate=certificate,
                back_url=order.notify_url or self._url("/"),
                req_reserved=order.payout_id,
            ).fields()
        except (ProtocolError, ValueError) as exc:
            raise BankRejected(self._code, f"payout: {exc}", "invalid_request") from exc
        answer = await self._back_trans(fields, "payout")
        review = _defect_review(answer.resp_code, answer.resp_msg)
        return PayoutStatus(payout_id=order.payout_id,
                            outcome=BankOutcome.SUCCEEDED if review else BankOutcome.PROCESSING,
                            bank_txn_id=answer.query_id, amount=order.amount, review=review)

    async def query_payout(self, call: BankCall) -> PayoutStatus:
        result = await self._query(call, up.BIZ_TYPE_PAYOUT)
        outcome = _outcome(result)
        return PayoutStatus(
            payout_id=call.reference, outcome=outcome,
            bank_txn_id=result.query_id if outcome is not BankOutcome.NOT_FOUND else None,
            amount=_money(result), review=_query_review(result),
            return_reason=_reason(result.orig_resp_msg or "")
            if outcome is BankOutcome.RETURNED else None,
        )

    # ------------------------------------------------------------------ notifications

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> BankNotification:
        notice = up.parse_back_notification(body, self._verifier, now=self._clock())
        kind = _KIND.get(notice.txn_type)
        if kind is None:
            raise MalformedMessage(f"txnType {notice.txn_type!r} is not notified here")
        review = _defect_review(notice.resp_code, notice.resp_msg)
        if notice.succeeded or review:
            outcome = BankOutcome.SUCCEEDED
        elif notice.resp_code in up.PROCESSING_RESP_CODES:
            outcome = BankOutcome.PROCESSING
        else:
            outcome = BankOutcome.FAILED
        details = {"orderId": notice.order_id, "txnTime": notice.txn_time,
                   "respCode": notice.resp_code}
        if kind is NotificationKind.PAYOUT and notice.resp_code == up.RESP_RETURNED:
            outcome = BankOutcome.RETURNED  # 退票: paid, then sent back by the payee's bank
            details["return_reason"] = _reason(notice.resp_msg)
        for name, value in (("origQryId", notice.orig_qry_id), ("traceNo", notice.trace_no),
                            ("settleDate", notice.settle_date)):
            if value:
                details[name] = value
        return BankNotification(
            bank=self._code, kind=kind, bank_txn_id=notice.query_id,
            reference=notice.req_reserved or notice.order_id, outcome=outcome,
            amount=notice.stated_amount, merchant_id=notice.mer_id,
            occurred_at=up.parse_txn_time(notice.txn_time), details=details, review=review,
        )

    def acknowledge(self, notification: BankNotification | None, accepted: bool) -> BankReply:
        # acp: HTTP 200 stops the bank's retries; anything else and it sends again.
        if accepted:
            return BankReply(200, "text/plain;charset=UTF-8", b"ok")
        return BankReply(503, "text/plain;charset=UTF-8", b"retry")


def _query_review(result: up.QueryResult) -> str | None:
    if result.resp_code != up.RESP_SUCCESS:
        return None
    return _defect_review(result.orig_resp_code, result.orig_resp_msg)


def _reason(message: str) -> str:
    """The reason inside a respMsg such as 退票[account closed]."""
    inner = message[message.find("[") + 1:message.rfind("]")] if "[" in message else message
    return inner.strip()[:200]


def _outcome(result: up.QueryResult) -> BankOutcome:
    if _query_review(result):
        return BankOutcome.SUCCEEDED  # A6: the money moved
    status = result.status
    if status is up.TxnStatus.SUCCEEDED:
        return BankOutcome.SUCCEEDED
    if status is up.TxnStatus.RETURNED:
        return BankOutcome.RETURNED
    if status is up.TxnStatus.FAILED:
        return BankOutcome.FAILED
    if status is up.TxnStatus.NOT_FOUND:
        return BankOutcome.NOT_FOUND
    # PROCESSING, or the query itself failed: either way nothing is decided yet.
    return BankOutcome.PROCESSING


def _money(result: up.QueryResult) -> Money | None:
    if result.txn_amt is None:
        return None
    currency = up.currency_for_code(result.currency_code or up.CURRENCY_CNY)
    return minor_to_money(result.txn_amt, currency)
