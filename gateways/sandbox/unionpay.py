"""Sandbox UnionPay online gateway (acp 5.1.0; wire format in
`gateways.protocols.unionpay`).

At start it makes its own test PKI, shaped like UnionPay's: a root CA, an intermediate
("middle") CA under it, and from the intermediate the bank's signing certificate (common
name `SIGNER_NAME`, embedded as `signPubKeyCert` in everything the bank signs) and its
encryption certificate; and the merchant's identity (whose certificate the merchant
"uploaded": the bank finds it by `certId`). The merchant trusts the root, is given the
intermediate, and checks the signer's name (`UnionPayCredentials.bank_signer_name`).

Routes:
- `POST /gateway/api/frontTransReq.do`: the customer's browser brings the merchant's
  signed consume form; the bank verifies it, registers the order and shows its pay page;
- `POST /gateway/api/backTransReq.do`: refunds (txnType 04, by `origQryId`) and payouts
  (代付, txnType 12, bizType 000401); the synchronous answer says accepted (respCode 00,
  with the new `queryId`) or refused (12 duplicate, 35 original not refundable,
  61 exceeds what is left, 51 insufficient funds); the outcome follows by back
  notification;
- `POST /gateway/api/queryTrans.do`: by `orderId` + `txnTime`; respCode 34 when unknown,
  otherwise 00 with `origRespCode` 00 (succeeded), 05 (still processing: unpaid, or the
  QUERY_PROCESSING fault), 01 (failed).
Back notifications (successful transactions only, as UnionPay does) are form POSTs to
`backUrl`, repeated until the merchant answers HTTP 200.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Callable, Mapping

from cryptography import x509
from moneyed import get_currency
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from gateways.adapters._http import DEFAULT_TIMEOUT, Duration
from gateways.adapters.unionpay import UnionPayAdapter, UnionPayCredentials
from gateways.protocols import MalformedMessage, ProtocolError, generate_rsa_identity
from gateways.protocols import unionpay as up
from gateways.protocols.amounts import parse_minor_units
from gateways.sandbox.base import (
    NoticeFacts,
    RefundRefused,
    SandboxBank,
    SandboxSettings,
    Txn,
    TxnKind,
    TxnState,
)
from gateways.sandbox.faults import Fault
from gateways.sandbox.notifier import Outgoing

__all__ = ["UnionPaySandbox"]

_TEXT = "text/plain;charset=UTF-8"
#: the common name of the sandbox bank's signing certificate (production: 中国银联股份有限公司)
SIGNER_NAME = "China UnionPay sandbox signing"
_REFUSALS = {"duplicate": ("12", "重复交易[duplicate]"),
             "not_refundable": ("35", "原交易不存在或状态不正确[not refundable]"),
             "exceeds": ("61", "超出可退货金额[exceeds refundable amount]")}


class UnionPaySandbox(SandboxBank):
    code = "unionpay"
    display_name = "UnionPay Online Payment (sandbox)"
    currency = "CNY"
    statement_format = "mt940"

    def __init__(
        self,
        *,
        settings: SandboxSettings | None = None,
        business_day: Callable[[], dt.date] | None = None,
    ) -> None:
        self.root = generate_rsa_identity("UnionPay Sandbox Root CA", is_ca=True,
                                          valid_for=dt.timedelta(days=3650))
        self.intermediate = generate_rsa_identity(
            "UnionPay Sandbox Intermediate CA", issuer=self.root, is_ca=True, path_length=0,
            valid_for=dt.timedelta(days=1825))
        self.bank_identity = generate_rsa_identity(SIGNER_NAME, issuer=self.intermediate)
        self.encryption_identity = generate_rsa_identity("China UnionPay sandbox encryption",
                                                         issuer=self.intermediate)
        self.merchant_identity = generate_rsa_identity("paycore marketplace merchant")
        self._signer = up.Signer(self.bank_identity, embed_certificate=True)
        self._verifier = up.Verifier(certificates=[self.merchant_identity.certificate])
        self._by_order_id: dict[str, Txn] = {}
        super().__init__(
            merchant_id="777" + "".join(str(secrets.randbelow(10)) for _ in range(12)),
            settings=settings, business_day=business_day,
        )

    def credentials(self, base_url: str | None = None) -> UnionPayCredentials:
        return UnionPayCredentials(
            base_url=base_url or self.base_url, mer_id=self.merchant_id,
            merchant_identity=self.merchant_identity,
            bank_roots=(self.root.certificate,), bank_signer_name=SIGNER_NAME,
            bank_intermediates=(self.intermediate.certificate,),
            bank_encryption_certificate=self.encryption_identity.certificate,
        )

    def adapter(self, *, timeout: Duration = DEFAULT_TIMEOUT, base_url: str | None = None) -> UnionPayAdapter:
        return UnionPayAdapter(self.credentials(base_url), code=self.code, timeout=timeout)

    @property
    def root_certificate(self) -> x509.Certificate:
        return self.root.certificate

    def new_bank_txn_id(self, kind: TxnKind) -> str:
        # queryId: 21 digits, time-prefixed like UnionPay's
        stamp = self.now().astimezone(up.CHINA_TIME).strftime("%m%d%H%M%S")
        return stamp + "".join(str(secrets.randbelow(10)) for _ in range(11))

    def protocol_routes(self) -> list[Route]:
        return [
            Route(up.FRONT_TRANS_PATH, self._front_trans, methods=["POST"]),
            Route(up.BACK_TRANS_PATH, self._back_trans, methods=["POST"]),
            Route(up.QUERY_TRANS_PATH, self._query_trans, methods=["POST"]),
        ]

    # ------------------------------------------------------------------ helpers

    async def _verified(self, request: Request) -> dict[str, str]:
        fields = up.decode_form(await request.body())
        self._verifier.verify(fields, now=self.now())
        if fields.get("merId") != self.merchant_id:
            raise MalformedMessage("merId is not this merchant")
        return fields

    def _answer(self, request: Mapping[str, str], **fields: str) -> Response:
        base = {k: request[k] for k in ("version", "encoding", "accessType", "merId",
                                        "orderId", "txnTime", "txnType", "txnSubType",
                                        "bizType") if request.get(k)}
        signed = self._signer.sign(base | {k: v for k, v in fields.items() if v})
        return Response(up.encode_response_string(signed), media_type=_TEXT)

    def _success(self, reference: str) -> dict[str, str]:
        """respCode and respMsg of a success: 00, or A6 ("success with defects", fault
        SUCCESS_WITH_DEFECTS): the money moved either way."""
        if self.faults.has(reference, Fault.SUCCESS_WITH_DEFECTS):
            return {"respCode": "A6", "respMsg": "有缺陷的成功[success with defects]"}
        return {"respCode": "00", "respMsg": "成功[0000000]"}

    def _record(self, txn: Txn, order_id: str, txn_time: str) -> Txn:
        txn.extra.update(orderId=order_id, txnTime=txn_time)
        self._by_order_id[order_id] = txn
        return txn

    # ------------------------------------------------------------------ front: consume

    async def _front_trans(self, request: Request) -> Response:
        try:
            fields = await self._verified(request)
            if fields.get("txnType") != up.TxnType.CONSUME.value:
                raise MalformedMessage("frontTransReq takes consume (txnType 01) only")
            if fields.get("currencyCode") != up.CURRENCY_CNY:
                raise MalformedMessage("currencyCode must be 156")
            amount = parse_minor_units(fields.get("txnAmt", ""), field="txnAmt", max_digits=12)
            order_id = fields["orderId"]
            up.parse_txn_time(fields.get("txnTime", ""))
        except (ProtocolError, KeyError) as exc:
            return HTMLResponse(f"<h1>交易失败 / transaction refused</h1><p>{exc}</p>",
                                status_code=400)
        existing = self._by_order_id.get(order_id)
        if existing is not None and existing.extra.get("txnTime") != fields["txnTime"]:
            return HTMLResponse("<h1>重复交易 / duplicate orderId</h1>", status_code=400)
        timeout = fields.get("payTimeout")
        txn = existing or self._record(self.register_payment(
            reference=fields.get("reqReserved") or order_id, amount_minor=amount,
            currency="CNY", notify_url=fields.get("backUrl", ""),
            return_url=fields.get("frontUrl", ""),
            expires_at=up.parse_txn_time(timeout) if timeout else None,
        ), order_id, fields["txnTime"])
        if (failure := self.server_error(txn.reference)) is not None:
            return failure
        return HTMLResponse(self.render_pay_page(txn))

    # ------------------------------------------------------------------ back: refund, payout

    async def _back_trans(self, request: Request) -> Response:
        try:
            fields = await self._verified(request)
            order_id = fields["orderId"]
            amount = parse_minor_units(fields.get("txnAmt", ""), field="txnAmt", max_digits=12)
            up.parse_txn_time(fields.get("txnTime", ""))
            txn_type = fields.get("txnType")
        except (ProtocolError, KeyError) as exc:
            return _unsigned_refusal(exc)
        reference = fields.get("reqReserved") or order_id
        if (failure := self.server_error(reference, lambda: self._answer(
                fields, respCode="06", respMsg="系统繁忙[busy, not processed]"))) is not None:
            return failure
        await self.before_processing(reference)
        if txn_type == up.TxnType.REFUND.value:
            answer = self._refund(fields, order_id, reference, amount)
        elif txn_type == up.TxnType.PAYOUT.value:
            answer = self._payout(fields, order_id, reference, amount)
        else:
            answer = self._answer(fields, respCode="13", respMsg="不支持的交易类型")
        return await self.after_processing(reference, debited=True, answer=answer)

    def _refund(self, fields: Mapping[str, str], order_id: str, reference: str,
                amount: int) -> Response:
        payment = self.find_by_bank_id(fields.get("origQryId", ""))
        if payment is None or payment.kind is not TxnKind.PAYMENT:
            return self._answer(fields, respCode="35", respMsg="原交易不存在[no such origQryId]")
        try:
            refund = self.refund(reference=reference, payment=payment, amount_minor=amount,
                                 notify_url=fields.get("backUrl"))
        except RefundRefused as exc:
            code, message = _REFUSALS[exc.code]
            return self._answer(fields, respCode=code, respMsg=message)
        self._record(refund, order_id, fields["txnTime"])
        return self._answer(fields, **self._success(reference), queryId=refund.bank_txn_id)

    def _payout(self, fields: Mapping[str, str], order_id: str, reference: str,
                amount: int) -> Response:
        try:
            name = up.decode_customer_info(fields.get("customerInfo", "")).get("customerNm", "")
        except ProtocolError:
            name = ""
        if fields.get("encryptCertId") != self.encryption_identity.cert_id:
            return self._answer(fields, respCode="13", respMsg="encryptCertId 不正确")
        try:
            account = up.decrypt_sensitive(fields.get("accNo", ""),
                                           self.encryption_identity.private_key)
        except ProtocolError:
            return self._answer(fields, respCode="13", respMsg="accNo 解密失败")
        payout = self.payout(
            reference=reference, amount_minor=amount, currency="CNY", beneficiary_name=name,
            beneficiary_account=account, notify_url=fields.get("backUrl"),
        )
        self._record(payout, order_id, fields["txnTime"])
        if payout.state is TxnState.FAILED:
            return self._answer(fields, respCode="51", respMsg="余额不足[insufficient funds]")
        return self._answer(fields, **self._success(reference), queryId=payout.bank_txn_id)

    # ------------------------------------------------------------------ query

    async def _query_trans(self, request: Request) -> Response:
        try:
            fields = await self._verified(request)
        except ProtocolError as exc:
            return _unsigned_refusal(exc)
        txn = self._by_order_id.get(fields.get("orderId", ""))
        if txn is None or txn.extra.get("txnTime") != fields.get("txnTime"):
            return self._answer(fields, respCode="34", respMsg="查无此交易[no such order]")
        self.settle_expiry(txn)
        if txn.state is TxnState.RETURNED:
            orig, orig_msg = up.RESP_RETURNED, f"退票[{txn.return_reason}]"
        elif txn.state is TxnState.SUCCEEDED and not self.answer_processing(txn):
            success = self._success(txn.reference)
            orig, orig_msg = success["respCode"], success["respMsg"]
        elif txn.state is TxnState.FAILED:
            orig, orig_msg = "01", f"交易失败[{txn.failure or 'failed'}]"
        else:
            # 03 / 04 / 05 all mean "not decided yet, ask again": the sandbox cycles
            # through them so the merchant side meets each.
            polls = int(txn.extra.get("processingPolls", "0"))
            txn.extra["processingPolls"] = str(polls + 1)
            orig = ("05", "03", "04")[polls % 3]
            orig_msg = {"03": "交易通讯超时[timed out, ask again]",
                        "04": "交易状态未明[unknown yet, ask again]",
                        "05": "交易已受理[accepted, ask again later]"}[orig]
        settled = txn.state is TxnState.SUCCEEDED
        return self._answer(
            fields, respCode="00", respMsg="成功[0000000]", origRespCode=orig,
            origRespMsg=orig_msg, queryId=txn.bank_txn_id, txnAmt=str(txn.amount_minor),
            currencyCode=up.CURRENCY_CNY,
            settleAmt=str(txn.amount_minor) if settled else "",
            settleDate=_settle_date(txn) if settled else "",
            reqReserved=txn.reference if txn.reference != txn.extra.get("orderId") else "",
            origQryId=txn.payment.bank_txn_id if txn.payment else "",
        )

    # ------------------------------------------------------------------ notifications

    def notify(self, txn: Txn) -> None:
        # UnionPay notifies successful transactions only; failures show in queryTrans.
        if txn.state is TxnState.SUCCEEDED:
            super().notify(txn)

    def encode_notice(self, facts: NoticeFacts, corrupt: bool) -> Outgoing:
        txn = facts.txn
        txn_type = {TxnKind.PAYMENT: up.TxnType.CONSUME, TxnKind.REFUND: up.TxnType.REFUND,
                    TxnKind.PAYOUT: up.TxnType.PAYOUT}[txn.kind].value
        at = facts.at.astimezone(up.CHINA_TIME)
        numeric = _numeric(facts.currency)
        fields = {
            "version": up.ACP_VERSION, "encoding": "UTF-8", "accessType": "0",
            "bizType": up.BIZ_TYPE_PAYOUT if txn.kind is TxnKind.PAYOUT
            else up.BIZ_TYPE_B2C_GATEWAY,
            "merId": facts.merchant_id,
            "orderId": txn.extra.get("orderId", facts.reference)
            if facts.reference == txn.reference else facts.reference,
            "txnTime": txn.extra.get("txnTime", up.format_txn_time(txn.created_at)),
            "txnType": txn_type, "txnSubType": "01" if txn.kind is TxnKind.PAYMENT else "00",
            "txnAmt": str(facts.amount_minor), "currencyCode": numeric,
            "queryId": facts.bank_txn_id, "traceNo": facts.bank_txn_id[-6:],
            "traceTime": at.strftime("%m%d%H%M%S"),
            "settleAmt": str(facts.amount_minor), "settleCurrencyCode": numeric,
            "settleDate": at.strftime("%m%d"),
            "respCode": self._success(txn.reference)["respCode"] if facts.succeeded else "01",
            "respMsg": self._success(txn.reference)["respMsg"] if facts.succeeded else "交易失败",
            "reqReserved": facts.reference,
            "origQryId": txn.payment.bank_txn_id if txn.payment else "",
        }
        if facts.returned:
            # 退票: the return's own queryId, pointing at the payout's
            fields.update(respCode=up.RESP_RETURNED, respMsg=f"退票[{facts.return_reason}]",
                          origQryId=txn.bank_txn_id)
        signed = self._signer.sign(fields)
        if corrupt:
            signed["signature"] = base64.b64encode(secrets.token_bytes(256)).decode("ascii")
        body = up.encode_form(signed).encode("utf-8")
        return Outgoing(body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"})


def _numeric(currency: str) -> str:
    return str(get_currency(currency).numeric)


def _unsigned_refusal(exc: Exception) -> Response:
    # A request the bank cannot read or verify gets an unsigned refusal, as acp does:
    # the merchant cannot trust it either, which is right (nothing was done).
    reason = str(exc).replace("&", " ").replace("=", " ")[:120]
    return Response(f"respCode=13&respMsg=报文格式错误[{reason}]", media_type=_TEXT)


def _settle_date(txn: Txn) -> str:
    moment = txn.completed_at or txn.created_at
    return moment.astimezone(up.CHINA_TIME).strftime("%m%d")
