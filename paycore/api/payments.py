"""Checkout payments, refunds, payouts, bank notifications and bank health (issue #4),
on the payment core in `gateways`.

A merchant sees only its own intents, refunds and payouts: every lookup passes
`principal.merchant_id`, and another merchant's record is a 404. Ids of refunds and
payouts are derived from the request's Idempotency-Key, so a retry after a lost response
(even after a crash) reaches the same refund or payout instead of making a second one; an
intent is idempotent by its merchant order id.

Bank notifications (`POST /v1/notifications/{bank}`) are the banks' own protocols: no API
key, no Idempotency-Key; the raw body and headers go to `gateways.handle_notification`
(which verifies the signature and de-duplicates by the bank's transaction id), and its
`BankReply` goes back byte for byte.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from sqlalchemy.ext.asyncio import AsyncConnection

import gateways
import ledger
from paycore.api import ratelimit
from paycore.api.auth import Principal, person, requires
from paycore.api.deps import (
    DomainIdempotencyKey,
    Engine,
    ReadConnection,
    Settings,
    app_service,
)
from paycore.api.models import MoneyIn, MoneyOut
from paycore.api.oneshot import one_statement
from paycore.api.problems import ApiProblem, NotFound, register_error
from paycore.api.supplier_access import controls_of, require_binding
from paycore.schema import api_payout_owners


def intent_changes_of(app: FastAPI) -> gateways.IntentChanges:
    """The app's watch on intents moving."""
    return app_service(app, "intent_changes", gateways.IntentChanges, gateways.IntentChanges)


@asynccontextmanager
async def intent_changes_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown, close the intent watch's listening connection (if it opened one)."""
    try:
        yield
    finally:
        changes = getattr(app.state, "intent_changes", None)
        if isinstance(changes, gateways.IntentChanges):
            await changes.close()


router = APIRouter(tags=["payments"], lifespan=intent_changes_lifespan)
IDEMPOTENCY_EXEMPT = ("/v1/notifications/",)

#: a notification is a few kilobytes; anything far larger is not one
NOTIFICATION_MAX_BYTES = 1 << 20

for _error, _status in (
    (gateways.PaymentError, 422),
    (gateways.InvalidPaymentRequest, 422),
    (gateways.NotFound, 404),
    # named in a request body, not in the path: the request is what is wrong
    (gateways.UnknownBank, 422),
    (gateways.UnknownSupplier, 422),
    (gateways.IllegalTransition, 409),
    (gateways.DuplicateOrder, 409),
    (gateways.PayoutConflict, 409),
    (gateways.RefundExceedsCaptured, 422),
    # the service functions settle these themselves; should one escape, the caller may retry
    (gateways.BankUnavailable, 503),
    (gateways.OutcomeUnknown, 502),
    (gateways.BankRejected, 422),
):
    register_error(_error, _status)

Reader = Annotated[Principal, requires("payments:read")]
Writer = Annotated[Principal, requires("payments:write")]
Refunder = Annotated[Principal, requires("refunds:write")]
PayoutReader = Annotated[Principal, requires("payouts:read")]
#: every payout asked for through the API waits for a second person: its maker is one too
PayoutMaker = Annotated[Principal, person("payouts:write", "asking for a payout")]
IntentId = Annotated[str, Path(max_length=64)]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


#: IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64 well-known and
#: local-use, SIIT's IPv4-translated, IPv4-compatible): the client is that IPv4 address
_EMBEDS_IPV4 = tuple(ipaddress.ip_network(n) for n in (
    "64:ff9b::/96", "64:ff9b:1::/48", "::ffff:0:0:0/96", "::/96"))


def _source_of(request: Request) -> str:
    """The client address a notification is counted under: an IPv4 address (also when it
    arrives inside IPv6: mapped, NAT64, SIIT, 6to4, Teredo), or an IPv6 address's /64 (one
    host is given a whole /64 and can send from any address in it)."""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address.sixtofour is not None:  # 2002:<ipv4>::/48, one IPv4 host's
        return str(address.sixtofour)
    if address.teredo is not None:  # (server, client): the client behind the relay
        return str(address.teredo[1])
    if any(address in net for net in _EMBEDS_IPV4):
        return str(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


def banks_of(request: Request) -> gateways.BankDirectory:
    banks = getattr(request.app.state, "banks", None)
    if not isinstance(banks, gateways.BankDirectory):
        raise ApiProblem("no banks are configured on this server (PAYCORE_BANKS)", status=503,
                         code="banks-not-configured")
    return banks


def derived_id(prefix: str, domain_key: str) -> str:
    """An id the banks accept (alphanumeric, 32 characters), the same for every retry."""
    return prefix + hashlib.sha256(domain_key.encode()).hexdigest()[:30]


# -- shapes --------------------------------------------------------------------------------


class NextAction(BaseModel):
    """Send the customer's browser to the bank: `redirect` (GET `url`) or `form_post`
    (an auto-submitted form POSTing `fields` to `url`)."""

    type: Literal["redirect", "form_post"]
    method: str
    url: str
    fields: dict[str, str]


class AttemptOut(BaseModel):
    id: str
    bank: str
    status: str
    failure_reason: str | None


class IntentOut(BaseModel):
    id: str
    order_id: str
    supplier_id: str
    amount: MoneyOut
    status: str
    bank: str | None
    description: str
    captured: MoneyOut
    refunded: MoneyOut
    refundable: MoneyOut
    commission: MoneyOut
    review_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    expires_at: dt.datetime
    attempt: AttemptOut | None
    next_action: NextAction | None = Field(
        description="present while the customer still has to pay at the bank")

    @classmethod
    def of(cls, checkout: gateways.Checkout | None, intent: gateways.PaymentIntent) -> IntentOut:
        attempt, action = None, None
        if checkout is not None:
            a = checkout.attempt
            attempt = AttemptOut(id=a.id, bank=a.bank, status=a.status.value,
                                 failure_reason=a.failure_reason)
            i = checkout.instruction
            if i is not None and intent.status in (gateways.IntentState.CREATED,
                                                   gateways.IntentState.PENDING):
                post = i.method.upper() == "POST"
                action = NextAction(type="form_post" if post else "redirect",
                                    method=i.method.upper(), url=i.url, fields=dict(i.fields))
        cur = intent.currency
        return cls(
            id=intent.id, order_id=intent.order_id, supplier_id=intent.supplier_id,
            amount=MoneyOut.of(intent.amount), status=intent.status.value, bank=intent.bank,
            description=intent.description, captured=MoneyOut.of(intent.captured),
            refunded=MoneyOut.of(intent.refunded), refundable=MoneyOut.of(intent.refundable),
            commission=MoneyOut.minor(intent.commission_minor, cur),
            review_reason=intent.review_reason, created_at=intent.created_at,
            updated_at=intent.updated_at, expires_at=intent.expires_at, attempt=attempt,
            next_action=action)


class IntentList(BaseModel):
    data: list[IntentOut]
    has_more: bool


class IntentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: Ident = Field(description="the merchant's order id; the same order again "
                                        "returns the same intent")
    supplier_id: Ident
    amount: MoneyIn
    bank: Ident = Field(description="the bank the customer chose (see /v1/banks/health)")
    description: str = Field("", max_length=200)
    return_url: HttpUrl | None = Field(None, description="where the bank sends the customer back")
    expires_in_seconds: int = Field(1800, ge=60, le=86400)


class RetryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank: Ident
    return_url: HttpUrl | None = None


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MoneyIn
    reason: str = Field("", max_length=200)


class RefundOut(BaseModel):
    id: str
    payment_intent_id: str
    status: str
    amount: MoneyOut
    reason: str
    bank: str
    failure_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    settled_at: dt.datetime | None

    @classmethod
    def of(cls, r: gateways.Refund) -> RefundOut:
        return cls(id=r.id, payment_intent_id=r.intent_id, status=r.status.value,
                   amount=MoneyOut.of(r.amount), reason=r.reason, bank=r.bank,
                   failure_reason=r.failure_reason, created_at=r.created_at,
                   updated_at=r.updated_at, settled_at=r.settled_at)


class RefundList(BaseModel):
    data: list[RefundOut]


class BeneficiaryOut(BaseModel):
    name: str
    account_number: str = Field(description="masked: only the last four characters")
    bank_name: str


class PayoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    supplier_id: Ident = Field(description="paid from the supplier's own payable account "
                                           "(the key's merchant must be bound to it)")
    amount: MoneyIn
    account_id: Ident = Field(description="a verified bank account of the supplier, from "
                                          "its register (/v1/suppliers/{id}/bank-accounts)")
    description: str = Field("", max_length=140)
    banks: list[Ident] = Field(default_factory=list, max_length=5,
                               description="failover order; empty: the server's order")


class PayoutOut(BaseModel):
    id: str
    supplier_id: str | None
    beneficiary: BeneficiaryOut
    amount: MoneyOut
    status: str
    bank: str | None
    description: str
    failure_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    settled_at: dt.datetime | None

    @classmethod
    def of(cls, p: gateways.Payout) -> PayoutOut:
        number = p.beneficiary.account_number
        ref = p.beneficiary_ref
        return cls(
            id=p.id, supplier_id=ref.split(":", 1)[1] if ref.startswith("supplier:") else None,
            beneficiary=BeneficiaryOut(name=p.beneficiary.name, account_number="***" + number[-4:],
                                       bank_name=p.beneficiary.bank_name),
            amount=MoneyOut.of(p.amount), status=p.status.value, bank=p.bank,
            description=p.description, failure_reason=p.failure_reason,
            created_at=p.created_at, updated_at=p.updated_at, settled_at=p.settled_at)


class PayoutList(BaseModel):
    data: list[PayoutOut]


class BankHealthOut(BaseModel):
    bank: str
    state: str
    consecutive_failures: int
    opened_at: dt.datetime | None
    last_error: str | None


class BankHealthList(BaseModel):
    data: list[BankHealthOut]


# -- payment intents -----------------------------------------------------------------------


async def _intent_out(engine: Engine, intent_id: str, merchant_id: str) -> IntentOut:
    # get_checkout is one statement: no BEGIN/ROLLBACK round trips around it
    async with one_statement(engine) as conn:
        checkout = await gateways.get_checkout(conn, intent_id, merchant_id=merchant_id)
    return IntentOut.of(checkout, checkout.intent)


@router.post("/v1/payment-intents", status_code=201, summary="Create a payment intent",
             description="Creates the intent and its attempt at the chosen bank; "
                         "`next_action` tells the checkout page how to send the customer "
                         "there. If the bank cannot be reached the intent is `failed` "
                         "(retry at another bank); if its answer is lost, `unknown` until the "
                         "bank is asked.")
async def create_intent(body: IntentIn, principal: Writer, engine: Engine,
                        request: Request) -> IntentOut:
    banks = banks_of(request)
    extra = {"return_url": str(body.return_url)} if body.return_url else {}
    checkout = await gateways.create_intent(engine, banks, gateways.IntentRequest(
        merchant_id=principal.merchant_id, order_id=body.order_id, supplier_id=body.supplier_id,
        amount=body.amount.to_money(), bank=body.bank, description=body.description,
        expires_in=dt.timedelta(seconds=body.expires_in_seconds), **extra))
    return IntentOut.of(checkout, checkout.intent)


#: an intent in these states moves without the merchant doing anything: its outcome is
#: the bank's to tell (or the janitor's inquiry's), so a checkout page may wait for it
_MOVES_BY_ITSELF = frozenset({gateways.IntentState.CREATED, gateways.IntentState.PENDING,
                              gateways.IntentState.UNKNOWN})


@router.get("/v1/payment-intents/{intent_id}", summary="A payment intent",
            description="With `wait=N` (seconds, at most 30) an intent that is `created`, "
                        "`pending` or `unknown` is answered as soon as it moves, or after N "
                        "seconds as it then is: the shop's return page asks once instead of "
                        "polling. Without it, at once.")
async def get_intent(intent_id: IntentId, principal: Reader, engine: Engine, request: Request,
                     wait: Annotated[int, Query(ge=0, le=30)] = 0) -> IntentOut:
    if wait == 0:
        return await _intent_out(engine, intent_id, principal.merchant_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    # watched before the first read: a move committed between the read and the wait
    # still wakes it
    async with intent_changes_of(request.app).watching(intent_id,
                                                       principal.merchant_id) as moved:
        out = await _intent_out(engine, intent_id, principal.merchant_id)
        if moved is None:  # this process keeps as many waiters as it takes: at once
            return out
        # a client that hangs up is waited for no longer (uvicorn does not cancel a route)
        hung_up = asyncio.create_task(_hang_up(request))
        try:
            while out.status in _MOVES_BY_ITSELF and (left := deadline - loop.time()) > 0:
                woken = asyncio.create_task(moved.wait(dt.timedelta(seconds=left)))
                await asyncio.wait({woken, hung_up}, return_when=asyncio.FIRST_COMPLETED)
                if hung_up.done():
                    woken.cancel()
                    break
                out = await _intent_out(engine, intent_id, principal.merchant_id)
        finally:
            hung_up.cancel()
    return out


async def _hang_up(request: Request) -> None:
    """Returns when the client disconnects (a GET's body, if any, is read and ignored)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.get("/v1/payment-intents", summary="The merchant's payment intents, newest first")
async def list_intents(
    principal: Reader, conn: ReadConnection,
    status: Annotated[gateways.IntentState | None, Query()] = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> IntentList:
    found = await gateways.list_intents(conn, principal.merchant_id, status=status,
                                        order_id=order_id, limit=limit + 1, offset=offset)
    return IntentList(data=[IntentOut.of(None, i) for i in found[:limit]],
                      has_more=len(found) > limit)


@router.post("/v1/payment-intents/{intent_id}/cancel", summary="Cancel a payment intent",
             description="Only an intent no bank can be taking money for (created or "
                         "failed); a pending one expires instead.")
async def cancel_intent(intent_id: IntentId, principal: Writer, engine: Engine) -> IntentOut:
    await ledger.transact(engine, lambda conn: gateways.cancel_intent(
        conn, intent_id, merchant_id=principal.merchant_id))
    return await _intent_out(engine, intent_id, principal.merchant_id)


@router.post("/v1/payment-intents/{intent_id}/retry", summary="Retry a failed intent at a bank")
async def retry_intent(intent_id: IntentId, body: RetryIn, principal: Writer, engine: Engine,
                       request: Request) -> IntentOut:
    extra = {"return_url": str(body.return_url)} if body.return_url else {}
    checkout = await gateways.retry_intent(engine, banks_of(request), intent_id, body.bank,
                                           merchant_id=principal.merchant_id, **extra)
    return IntentOut.of(checkout, checkout.intent)


# -- refunds -------------------------------------------------------------------------------


@router.post("/v1/payment-intents/{intent_id}/refunds", status_code=201,
             summary="Refund a paid intent, in whole or in part",
             description="Several partial refunds may be made, never more than captured. "
                         "The refund comes back `succeeded`, `pending` (the bank is "
                         "processing), `unknown` (being asked) or `failed`.")
async def create_refund(intent_id: IntentId, body: RefundIn, principal: Refunder,
                        engine: Engine, key: DomainIdempotencyKey, request: Request) -> RefundOut:
    refund = await gateways.refund_payment(
        engine, banks_of(request), intent_id, body.amount.to_money(), reason=body.reason,
        refund_id=derived_id("rf", key), merchant_id=principal.merchant_id)
    return RefundOut.of(refund)


@router.get("/v1/payment-intents/{intent_id}/refunds", summary="An intent's refunds")
async def list_refunds(intent_id: IntentId, principal: Reader, conn: ReadConnection) -> RefundList:
    found = await gateways.list_refunds(conn, intent_id, merchant_id=principal.merchant_id)
    return RefundList(data=[RefundOut.of(r) for r in found])


@router.get("/v1/refunds/{refund_id}", summary="A refund")
async def get_refund(refund_id: Annotated[str, Path(max_length=64)], principal: Reader,
                     conn: ReadConnection) -> RefundOut:
    return RefundOut.of(await gateways.get_refund(conn, refund_id,
                                                  merchant_id=principal.merchant_id))


# -- payouts -------------------------------------------------------------------------------


async def _owned_payout(conn: AsyncConnection, payout_id: str, merchant_id: str) -> gateways.Payout:
    owner = await conn.scalar(sa.select(api_payout_owners.c.merchant_id)
                              .where(api_payout_owners.c.payout_id == payout_id))
    if owner != merchant_id:
        raise NotFound(f"no payout {payout_id!r}", payout_id=payout_id)
    return await gateways.get_payout(conn, payout_id)


@router.post("/v1/payouts", status_code=201, summary="Ask to pay a supplier out",
             description="Only to a verified account of the supplier (past its cooling-off), "
                         "from the supplier's own payable, and only for a supplier the key's "
                         "merchant is bound to. Reserves the amount (a ledger hold; refused "
                         "beyond what is available) and comes back `pending_approval`: a "
                         "second person approves it (POST /v1/payouts/{id}/approve), and then "
                         "it goes to the banks.")
async def create_payout(body: PayoutIn, principal: PayoutMaker, engine: Engine,
                        key: DomainIdempotencyKey, request: Request) -> PayoutOut:
    banks = banks_of(request)
    for code in body.banks:
        banks.get(code)
    # refused before anything is written when no bank of its failover order can carry it
    gateways.taking(banks, body.banks or banks.payout_order, body.amount.to_money())
    payout_id = derived_id("po", key)
    payout_request = gateways.SupplierPayoutRequest(
        payout_id=payout_id, supplier_id=body.supplier_id, account_id=body.account_id,
        amount=body.amount.to_money(), requested_by=principal.actor, manual=True,
        purpose="settlement", description=body.description, banks=tuple(body.banks))
    controls = controls_of(request)

    async def record(conn: AsyncConnection) -> None:
        await require_binding(conn, principal, body.supplier_id)
        owner = await conn.scalar(sa.select(api_payout_owners.c.merchant_id)
                                  .where(api_payout_owners.c.payout_id == payout_id))
        await gateways.request_supplier_payout(conn, payout_request, controls)
        if owner is None:
            await conn.execute(api_payout_owners.insert().values(
                payout_id=payout_id, merchant_id=principal.merchant_id,
                created_at=dt.datetime.now(dt.UTC)))

    await ledger.transact(engine, record)
    async with engine.connect() as conn:
        # pending_approval: the banks see it once a second person approves it
        return PayoutOut.of(await gateways.get_payout(conn, payout_id))


@router.get("/v1/payouts/{payout_id}", summary="A payout")
async def get_payout(payout_id: Annotated[str, Path(max_length=64)], principal: PayoutReader,
                     conn: ReadConnection) -> PayoutOut:
    return PayoutOut.of(await _owned_payout(conn, payout_id, principal.merchant_id))


@router.get("/v1/payouts", summary="The payouts this merchant requested, newest first")
async def list_payouts(principal: PayoutReader, conn: ReadConnection,
                       limit: Annotated[int, Query(ge=1, le=100)] = 20) -> PayoutList:
    ids = (await conn.execute(
        sa.select(api_payout_owners.c.payout_id)
        .where(api_payout_owners.c.merchant_id == principal.merchant_id)
        .order_by(api_payout_owners.c.created_at.desc(), api_payout_owners.c.payout_id)
        .limit(limit))).scalars().all()
    return PayoutList(data=[PayoutOut.of(await gateways.get_payout(conn, i)) for i in ids])


# -- banks ---------------------------------------------------------------------------------


@router.post("/v1/notifications/{bank}", tags=["bank callbacks"],
             summary="A bank's notification (the bank's own protocol)",
             description="For the banks, not for merchants: no API key and no "
                         "Idempotency-Key. The body is verified by the bank's signature and "
                         "answered in the bank's own protocol (not problem+json).",
             response_class=Response, max_body_size=NOTIFICATION_MAX_BYTES,
             responses={200: {"description": "the bank's acknowledgement, in its format",
                              "content": {"*/*": {}}}})
async def bank_notification(bank: Annotated[str, Path(max_length=64)], request: Request,
                            engine: Engine, settings: Settings) -> Response:
    banks = banks_of(request)
    if bank not in banks:  # nothing to verify against: answered without a write
        return Response(content=b"unknown bank", status_code=404,
                        headers={"content-type": "text/plain"})
    # what is limited per address is notifications that fail the bank's own verification
    # (anyone can send those, each costs a signature check and a rejection row); a verified
    # one is the bank's, and its count is given back — a bank's whole traffic may come from
    # a few addresses, and a throttled notification is a customer's payment left waiting.
    # Counted before the work, not after: requests in flight at once then cannot all read a
    # count below the limit, and one whose handling fails stays counted
    bucket = f"notifications:{_source_of(request)}"
    window = settings.notification_rate_window_seconds
    counted = await ratelimit.hit(engine, bucket, limit=settings.notification_rate_limit,
                                  window_seconds=window)
    if not counted.allowed:
        raise ApiProblem(f"more than {counted.limit} notifications from this address failed "
                         f"the bank's verification in {window} s; send again later",
                         status=429, code="rate-limited",
                         headers={"Retry-After": str(counted.retry_after)})
    body = await request.body()
    headers = {name: value for name, value in request.headers.items()}
    reply = await gateways.handle_notification(engine, banks, bank, headers, body)
    if not reply.unverified:
        await ratelimit.give_back(engine, bucket, counted)
    return Response(content=reply.body, status_code=reply.status_code,
                    headers={"content-type": reply.content_type})


@router.get("/v1/banks/health", summary="The banks' circuit breakers (shared by every "
            "process when the server's banks share them, else as this server sees them)")
async def banks_health(_: Reader, request: Request, engine: Engine) -> BankHealthList:
    banks = banks_of(request)
    found = gateways.bank_health_report(banks)
    if banks.shared is not None:  # the database's state, whichever process changed it
        async with engine.connect() as conn:
            stored = {h.bank: h for h in await gateways.load_bank_health(conn)}
        found = [stored.get(h.bank, h) for h in found]
    return BankHealthList(data=[
        BankHealthOut(bank=h.bank, state=h.state.value, consecutive_failures=h.consecutive_failures,
                      opened_at=h.opened_at, last_error=h.last_error)
        for h in found])
