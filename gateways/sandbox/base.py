"""What every sandbox bank shares: its payments, refunds and payouts (`records`), its
book (`book`), the customer's pay page (`paypage`), fault handling (`faults`),
notifications (`notifier`), statements (`statements`), the control endpoints and its
loopback server (`server`).  A protocol module (`unionpay`, `restbank`, `smbank`) adds
the wire format: its routes and how it encodes a notification.

Control endpoints (any bank, JSON, loopback only):
- `POST /_sandbox/faults` `{"reference": "...", "faults": ["no_notify", ...],
  "processing_polls": 3, "server_errors": 1, "slow_seconds": 0.5}`; `DELETE` clears all;
- `GET /_sandbox/book`: the merchant account's balance and movements;
- `POST /_sandbox/returns` `{"reference": "<payout id>", "reason": "account closed"}`:
  the beneficiary's bank sends a paid payout back (退票, `return_payout`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import html
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from gateways.adapters import BankAdapter
from gateways.adapters._http import DEFAULT_TIMEOUT, Duration, as_timedelta
from gateways.bank import PaymentInstruction
from gateways.sandbox.book import Book, BookError, Movement
from gateways.sandbox.faults import Fault, FaultBook, FaultPlan
from gateways.sandbox.notifier import Notifier, Outgoing
from gateways.sandbox.paypage import PayPageResult, click_through, page, paid_page, pay_page, read_form
from gateways.sandbox.records import NoticeFacts, RefundRefused, Txn, TxnKind, TxnState
from gateways.sandbox.server import LoopbackServer
from gateways.sandbox.statements import day_statement, render

__all__ = [
    "NoticeFacts",
    "PayPageResult",
    "RefundRefused",
    "SandboxBank",
    "SandboxSettings",
    "Txn",
    "TxnKind",
    "TxnState",
]

log = structlog.get_logger("gateways.sandbox")


@dataclass(frozen=True)
class SandboxSettings:
    #: how long an answer hangs under TIMEOUT_AFTER_DEBIT; must exceed the adapter's
    #: read time-out so that the client gives up first
    hang_seconds: Duration = 3.0
    #: how late the notification comes under TIMEOUT_AFTER_DEBIT
    late_notify_seconds: Duration = 1.0
    #: default delay under SLOW
    slow_seconds: Duration = 1.0
    #: pauses between notification retries (first delivery is immediate)
    retry_delays: Sequence[Duration] = (0.05, 0.2, 0.5, 1.0, 2.0)
    #: the merchant settlement account's balance when the bank opens
    opening_balance_minor: int = 0
    #: the bank's fee on each captured payment, in basis points
    fee_bps: int = 60
    #: each bank opens one customer account with this balance (`default_customer`)
    customer_balance_minor: int = 100_000_000


class SandboxBank:
    """Base class; subclasses set `code`, `display_name`, and implement the hooks."""

    code = "sandbox"
    display_name = "Sandbox Bank"
    currency = "CNY"
    #: the format of this bank's account statements (see `gateways.sandbox.statements`)
    statement_format = "camt.053"

    def __init__(
        self,
        *,
        merchant_id: str,
        settings: SandboxSettings | None = None,
        business_day: Callable[[], dt.date] | None = None,
        merchant_account: str | None = None,
    ) -> None:
        self.settings = settings or SandboxSettings()
        self.merchant_id = merchant_id
        self.book = Book(
            bank_code=self.code,
            currency=self.currency,
            merchant_account=merchant_account or "".join(
                str(secrets.randbelow(10)) for _ in range(16)
            ),
            merchant_name="PAYCORE MARKETPLACE",
            opening_balance_minor=self.settings.opening_balance_minor,
            fee_bps=self.settings.fee_bps,
            business_day=business_day,
        )
        self.default_customer = self.book.open_customer(
            "Sandbox Customer", self.settings.customer_balance_minor
        )
        self.faults = FaultBook()
        self.txns: dict[tuple[TxnKind, str], Txn] = {}
        self._by_bank_id: dict[str, Txn] = {}
        self._by_token: dict[str, Txn] = {}
        self._stopping = asyncio.Event()
        self.notifier = Notifier(
            bank=self.code, acknowledged=self.is_acknowledged,
            retry_delays=self.settings.retry_delays,
        )
        self.server = LoopbackServer(self.build_app(), name=self.code)
        self._browser: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return self.server.base_url

    async def start(self) -> str:
        self._browser = httpx.AsyncClient(timeout=10.0, trust_env=False)
        return await self.server.start()

    async def stop(self) -> None:
        self._stopping.set()
        await self.notifier.close()
        await self.server.stop()
        if self._browser is not None:
            await self._browser.aclose()

    def build_app(self) -> Starlette:
        routes = [
            *self.protocol_routes(),
            Route("/pay/{token}", self._pay_page, methods=["GET", "POST"]),
            Route("/_sandbox/faults", self._faults_endpoint, methods=["POST", "DELETE"]),
            Route("/_sandbox/book", self._book_endpoint, methods=["GET"]),
            Route("/_sandbox/returns", self._returns_endpoint, methods=["POST"]),
            Route("/_sandbox/deliveries", self._deliveries_endpoint, methods=["GET"]),
            Route("/_sandbox/drain", self._drain_endpoint, methods=["POST"]),
        ]
        return Starlette(routes=routes)

    # ------------------------------------------------------------------ protocol hooks

    def credentials(self, base_url: str | None = None) -> Any:
        """The merchant's credentials for this bank (the adapter's constructor input)."""
        raise NotImplementedError

    def adapter(
        self, *, timeout: Duration = DEFAULT_TIMEOUT, base_url: str | None = None
    ) -> BankAdapter:
        """A merchant-side adapter for this bank (the caller closes it: `aclose()`)."""
        raise NotImplementedError

    def protocol_routes(self) -> list[Route]:
        raise NotImplementedError

    def encode_notice(self, facts: NoticeFacts, corrupt: bool) -> Outgoing:
        """The notification on the wire; `corrupt` breaks its signature."""
        raise NotImplementedError

    def is_acknowledged(self, response: httpx.Response, outgoing: Outgoing) -> bool:
        return response.status_code == 200

    def new_bank_txn_id(self, kind: TxnKind) -> str:
        return secrets.token_hex(10)

    # ------------------------------------------------------------------ records

    def find(self, kind: TxnKind, reference: str) -> Txn | None:
        return self.txns.get((kind, reference))

    def find_by_bank_id(self, bank_txn_id: str) -> Txn | None:
        return self._by_bank_id.get(bank_txn_id)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def register_payment(
        self, *, reference: str, amount_minor: int, currency: str, notify_url: str,
        return_url: str, description: str = "", expires_at: dt.datetime | None = None,
        extra: dict[str, str] | None = None,
    ) -> Txn:
        """A new payment awaiting the customer (the same order again returns it)."""
        existing = self.find(TxnKind.PAYMENT, reference)
        if existing is not None:
            return existing
        txn = Txn(
            kind=TxnKind.PAYMENT, reference=reference,
            bank_txn_id=self.new_bank_txn_id(TxnKind.PAYMENT), amount_minor=amount_minor,
            currency=currency, state=TxnState.AWAITING, created_at=self.now(),
            notify_url=notify_url, return_url=return_url, description=description,
            token=secrets.token_urlsafe(16), expires_at=expires_at, extra=dict(extra or {}),
        )
        self._remember(txn)
        self._by_token[txn.token] = txn
        return txn

    def _remember(self, txn: Txn) -> None:
        self.txns[(txn.kind, txn.reference)] = txn
        self._by_bank_id[txn.bank_txn_id] = txn

    def pay_url(self, txn: Txn) -> str:
        return f"{self.base_url}/pay/{txn.token}"

    def settle_expiry(self, txn: Txn) -> None:
        """An unpaid payment past its expiry is failed (the customer can no longer pay)."""
        if (txn.state is TxnState.AWAITING and txn.expires_at is not None
                and self.now() > txn.expires_at):
            txn.state = TxnState.FAILED
            txn.failure = "expired"
            txn.completed_at = self.now()

    def answer_processing(self, txn: Txn) -> bool:
        """Whether an inquiry should say "processing" now (fault QUERY_PROCESSING)."""
        return self.faults.take_processing_poll(txn.reference)

    # ------------------------------------------------------------------ money movements

    def pay(self, txn: Txn, customer_number: str) -> Movement:
        """The customer approves at the bank: debit, record, notify."""
        self.settle_expiry(txn)
        if txn.state is not TxnState.AWAITING:
            raise BookError(f"the order is {txn.state.value}, it cannot be paid")
        movement = self.book.capture(
            bank_txn_id=txn.bank_txn_id, reference=txn.reference,
            amount_minor=txn.amount_minor, customer_number=customer_number, at=self.now(),
            description=txn.description,
        )
        txn.state = TxnState.SUCCEEDED
        txn.customer = customer_number
        txn.completed_at = movement.booked_at
        log.info("sandbox payment captured", bank=self.code, reference=txn.reference,
                 bank_txn_id=txn.bank_txn_id, amount_minor=txn.amount_minor)
        self.notify(txn)
        return movement

    def decline(self, txn: Txn, reason: str = "customer canceled") -> None:
        if txn.state is TxnState.AWAITING:
            txn.state = TxnState.FAILED
            txn.failure = reason
            txn.completed_at = self.now()
            self.notify(txn)

    def refund(
        self, *, reference: str, payment: Txn, amount_minor: int, notify_url: str | None,
        extra: dict[str, str] | None = None,
    ) -> Txn:
        """Refund part of a captured payment; never more than what is left of it.
        Raises `RefundRefused` (code: duplicate, not_refundable, exceeds)."""
        existing = self.find(TxnKind.REFUND, reference)
        if existing is not None:
            if existing.amount_minor != amount_minor or existing.payment is not payment:
                raise RefundRefused("duplicate", "this refund id was used for another refund")
            return existing
        if payment.state is not TxnState.SUCCEEDED:
            raise RefundRefused("not_refundable", "the original payment is not captured")
        if amount_minor <= 0 or amount_minor > payment.refundable_minor:
            raise RefundRefused(
                "exceeds", "the refund exceeds what is left of the original payment"
            )
        txn = Txn(
            kind=TxnKind.REFUND, reference=reference,
            bank_txn_id=self.new_bank_txn_id(TxnKind.REFUND), amount_minor=amount_minor,
            currency=payment.currency, state=TxnState.SUCCEEDED, created_at=self.now(),
            notify_url=notify_url, payment=payment, extra=dict(extra or {}),
        )
        self.book.refund(
            bank_txn_id=txn.bank_txn_id, reference=reference,
            original_bank_txn_id=payment.bank_txn_id, amount_minor=amount_minor,
            customer_number=payment.customer or self.default_customer.number, at=txn.created_at,
        )
        payment.refunded_minor += amount_minor
        txn.completed_at = txn.created_at
        self._remember(txn)
        self.notify(txn)
        return txn

    def payout(
        self, *, reference: str, amount_minor: int, currency: str, beneficiary_name: str,
        beneficiary_account: str, notify_url: str | None, description: str = "",
        extra: dict[str, str] | None = None,
    ) -> Txn:
        """Pay out of the merchant's settlement account; a failed payout (not enough
        funds) is recorded as FAILED and answered as such."""
        existing = self.find(TxnKind.PAYOUT, reference)
        if existing is not None:
            return existing
        txn = Txn(
            kind=TxnKind.PAYOUT, reference=reference,
            bank_txn_id=self.new_bank_txn_id(TxnKind.PAYOUT), amount_minor=amount_minor,
            currency=currency, state=TxnState.SUCCEEDED, created_at=self.now(),
            notify_url=notify_url, beneficiary_name=beneficiary_name,
            beneficiary_account=beneficiary_account, description=description,
            extra=dict(extra or {}),
        )
        if currency != self.currency:
            txn.state = TxnState.FAILED
            txn.failure = "currency"
        else:
            try:
                self.book.payout(
                    bank_txn_id=txn.bank_txn_id, reference=reference,
                    amount_minor=amount_minor, beneficiary_name=beneficiary_name,
                    beneficiary_account=beneficiary_account, at=txn.created_at,
                    description=description,
                )
            except BookError:
                txn.state = TxnState.FAILED
                txn.failure = "insufficient_funds"
        txn.completed_at = txn.created_at
        self._remember(txn)
        self.notify(txn)
        return txn

    def return_payout(self, reference: str, reason: str = "account closed") -> Txn:
        """The beneficiary's bank sends a paid payout back (退票: wrong name, closed
        account): credited back to the merchant's account, the payout `returned`, and
        the merchant told (notification, and the status inquiry's answer). The payout's
        faults apply to the notification (NO_NOTIFY, DUPLICATE_NOTIFY, AMOUNT_MISMATCH...)."""
        txn = self.find(TxnKind.PAYOUT, reference)
        if txn is None or txn.state is not TxnState.SUCCEEDED:
            raise BookError(f"no paid payout {reference!r} to return")
        now = self.now()
        txn.state = TxnState.RETURNED
        txn.return_id = self.new_bank_txn_id(TxnKind.PAYOUT)
        txn.return_reason = reason
        txn.returned_at = now
        self._by_bank_id[txn.return_id] = txn
        self.book.payout_return(
            bank_txn_id=txn.return_id, reference=reference,
            original_bank_txn_id=txn.bank_txn_id, amount_minor=txn.amount_minor,
            beneficiary_name=txn.beneficiary_name,
            beneficiary_account=txn.beneficiary_account, reason=reason, at=now)
        log.info("sandbox payout returned", bank=self.code, reference=reference,
                 return_id=txn.return_id, reason=reason)
        self._notify_facts(txn, NoticeFacts(
            txn=txn, reference=reference, bank_txn_id=txn.return_id,
            amount_minor=txn.amount_minor, currency=txn.currency,
            merchant_id=self.merchant_id, succeeded=False, at=now, return_reason=reason))
        return txn

    # ------------------------------------------------------------------ faults in calls

    def plan(self, reference: str) -> FaultPlan:
        return self.faults.plan(reference)

    def server_error(self, reference: str,
                     not_processed: Callable[[], Response] | None = None) -> Response | None:
        """Refused before anything is accepted (fault SERVER_ERROR), with the bank's
        documented "not processed" answer (`not_processed`; a bare 503 without one)."""
        if self.faults.take_server_error(reference):
            if not_processed is not None:
                return not_processed()
            return Response("503 Service Unavailable: sandbox fault", status_code=503,
                            media_type="text/plain")
        return None

    async def before_processing(self, reference: str) -> None:
        """Slowness before the bank acts (fault SLOW)."""
        plan = self.plan(reference)
        if Fault.SLOW in plan:
            await self._sleep(plan.slow_seconds if plan.slow_seconds is not None
                              else self.settings.slow_seconds)

    async def after_processing(self, reference: str, *, debited: bool,
                               answer: Response) -> Response:
        """What goes back once the bank has acted: `answer`, after a hang (fault TIMEOUT,
        or TIMEOUT_AFTER_DEBIT on a call that moved money: the client times out), or
        instead a bare 500 / 502 (faults SERVER_ERROR_AFTER_BOOKING,
        BAD_GATEWAY_AFTER_BOOKING): the bank has booked it either way."""
        plan = self.plan(reference)
        if Fault.TIMEOUT in plan or (debited and Fault.TIMEOUT_AFTER_DEBIT in plan):
            await self._sleep(self.settings.hang_seconds)
        if Fault.SERVER_ERROR_AFTER_BOOKING in plan:
            return Response("500 Internal Server Error", status_code=500,
                            media_type="text/plain")
        if Fault.BAD_GATEWAY_AFTER_BOOKING in plan:
            return Response("<html><body><h1>502 Bad Gateway</h1></body></html>",
                            status_code=502, media_type="text/html")
        return answer

    async def _sleep(self, duration: Duration) -> None:
        # Wakes early when the bank stops, so a hanging answer never outlives the bank.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(),
                                   timeout=as_timedelta(duration).total_seconds())

    # ------------------------------------------------------------------ notifications

    def notify(self, txn: Txn) -> None:
        if not txn.notify_url:
            return
        self._notify_facts(txn, NoticeFacts(
            txn=txn, reference=txn.reference, bank_txn_id=txn.bank_txn_id,
            amount_minor=txn.amount_minor, currency=txn.currency,
            merchant_id=self.merchant_id, succeeded=txn.state is TxnState.SUCCEEDED,
            at=txn.completed_at or self.now(),
        ))

    def _notify_facts(self, txn: Txn, facts: NoticeFacts) -> None:
        if not txn.notify_url:
            return
        plan = self.plan(txn.reference)
        if Fault.NO_NOTIFY in plan:
            return
        note = ""
        if Fault.AMOUNT_MISMATCH in plan:
            facts = _replace(facts, amount_minor=facts.amount_minor + 100)
            note = "amount mismatch"
        if Fault.CURRENCY_MISMATCH in plan:
            facts = _replace(facts, currency="USD" if facts.currency != "USD" else "EUR")
            note = "currency mismatch"
        if Fault.MERCHANT_MISMATCH in plan:
            facts = _replace(facts, merchant_id=_other_merchant(self.merchant_id))
            note = "merchant mismatch"
        final = facts
        self.notifier.send(
            reference=txn.reference, kind=txn.kind.value, url=txn.notify_url,
            build=lambda corrupt: self.encode_notice(final, corrupt),
            delay=self.settings.late_notify_seconds
            if Fault.TIMEOUT_AFTER_DEBIT in plan or Fault.TIMEOUT in plan else 0.0,
            corrupt_first=Fault.BAD_SIGNATURE in plan,
            duplicate=Fault.DUPLICATE_NOTIFY in plan,
            hold=Fault.OUT_OF_ORDER_NOTIFY in plan,
            note=note,
        )
        if Fault.UNKNOWN_ORDER in plan:
            stranger = _replace(
                facts, reference=_other_reference(txn.reference),
                bank_txn_id=self.new_bank_txn_id(txn.kind),
            )
            self.notifier.send(
                reference=stranger.reference, kind=txn.kind.value, url=txn.notify_url,
                build=lambda corrupt: self.encode_notice(stranger, corrupt),
                note="unknown order",
            )

    async def drain_notifications(self) -> None:
        await self.notifier.drain()

    # ------------------------------------------------------------------ the customer

    async def customer_pays(
        self,
        instruction: PaymentInstruction,
        *,
        account_number: str | None = None,
        decline: bool = False,
    ) -> PayPageResult:
        """Be the customer's browser: follow the instruction to the bank's pay page
        (GET a redirect, or submit the auto-post form), then press Pay (or Cancel)."""
        if self._browser is None:
            raise RuntimeError("the sandbox bank is not running")
        return await click_through(
            self._browser, instruction,
            account_number=account_number or self.default_customer.number, decline=decline,
        )

    async def _pay_page(self, request: Request) -> Response:
        txn = self._by_token.get(request.path_params["token"])
        if txn is None:
            return HTMLResponse("<h1>Unknown or expired payment</h1>", status_code=404)
        if request.method == "GET":
            return HTMLResponse(self.render_pay_page(txn))
        form = await read_form(request)
        if form.get("action", "") == "cancel":
            self.decline(txn)
            return HTMLResponse(page(self.display_name, "<p>Payment canceled.</p>"))
        try:
            self.pay(txn, form.get("account", ""))
        except BookError as exc:
            return HTMLResponse(page(self.display_name, f"<p>{html.escape(str(exc))}</p>"),
                                status_code=402)
        return HTMLResponse(paid_page(self.display_name, txn.return_url))

    def render_pay_page(self, txn: Txn) -> str:
        return pay_page(self.display_name, self.merchant_id, txn)

    # ------------------------------------------------------------------ statements

    def statement_file(self, day: dt.date, format: str | None = None) -> tuple[str, bytes]:
        """The statement of the merchant's settlement account for `day`, in this bank's
        format (or `format`): (file name, bytes)."""
        statement = day_statement(self.book, day, bank_name=self.display_name)
        return render(statement, format or self.statement_format)

    def add_bank_charge(self, amount_minor: int, *, day: dt.date | None = None,
                        description: str = "ACCOUNT MAINTENANCE FEE") -> Movement:
        """A charge the bank takes from the settlement account that the merchant's books
        do not know about (reconciliation has to find it)."""
        return self.book.charge(amount_minor, description=description, on=day)

    # ------------------------------------------------------------------ control

    async def _faults_endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
            return JSONResponse({"cleared": True})
        obj: dict[str, Any] = await request.json()
        try:
            plan = self.faults.set(
                str(obj["reference"]), *[Fault(f) for f in obj.get("faults", [])],
                processing_polls=int(obj.get("processing_polls", 3)),
                server_errors=int(obj.get("server_errors", 1)),
                slow_seconds=obj.get("slow_seconds"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"reference": obj["reference"],
                             "faults": sorted(f.value for f in plan.faults)})

    async def _returns_endpoint(self, request: Request) -> Response:
        try:
            obj: dict[str, Any] = await request.json()
            txn = self.return_payout(str(obj["reference"]),
                                     str(obj.get("reason") or "account closed"))
        except (KeyError, ValueError, TypeError, BookError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"reference": txn.reference, "return_id": txn.return_id,
                             "reason": txn.return_reason})

    async def _deliveries_endpoint(self, request: Request) -> Response:
        """Every notification delivery from `?after=N` on (a bank in another process is
        inspected over HTTP): reference, attempt, status, acknowledged, round trip."""
        after = int(request.query_params.get("after", "0") or 0)
        return JSONResponse({"bank": self.code, "total": len(self.notifier.deliveries), "deliveries": [
            {"reference": d.reference, "kind": d.kind, "attempt": d.attempt,
             "status_code": d.status_code, "acknowledged": d.acknowledged, "note": d.note,
             "error": d.error, "elapsed_ms": None if d.elapsed is None
             else round(d.elapsed / dt.timedelta(milliseconds=1), 3)}
            for d in self.notifier.deliveries[after:]]})

    async def _drain_endpoint(self, request: Request) -> Response:
        """Deliver every outstanding notification now; answers when all are done."""
        await self.drain_notifications()
        return JSONResponse({"bank": self.code, "deliveries": len(self.notifier.deliveries)})

    async def _book_endpoint(self, request: Request) -> Response:
        return JSONResponse({
            "bank": self.code,
            "currency": self.currency,
            "merchant_balance_minor": self.book.merchant_balance(),
            "movements": [
                {"kind": m.kind.value, "bank_txn_id": m.bank_txn_id, "reference": m.reference,
                 "amount_minor": m.amount_minor, "fee_minor": m.fee_minor,
                 "booked_on": m.booked_on.isoformat()}
                for m in self.book.movements
            ],
        })


def _replace(facts: NoticeFacts, **changes: Any) -> NoticeFacts:
    return dataclasses.replace(facts, **changes)


def _other_merchant(merchant_id: str) -> str:
    # Same shape (length, alphabet) as the real one, so only the check can catch it.
    last = merchant_id[-1]
    return merchant_id[:-1] + ("1" if last != "1" else "2")


def _other_reference(reference: str) -> str:
    return "X" + secrets.token_hex(max(4, min(15, len(reference) // 2)))
