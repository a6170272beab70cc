"""The books (scope `ledger:read`): accounts, balances, statements, entries, trial balance
and verify. `ledger:read` is a back-office scope: the ledger is the marketplace's one set
of books, so it is not filtered by merchant.

`POST /v1/ledger/entries` (scope `ledger:write`, for internal services) posts an entry
that needs no other state through the coalescing write path: the app's `ledger.Coalescer`
(started and closed with the app's lifespan) commits many callers' entries in one
transaction and answers each with its own outcome once COMMIT returned. The entry's
idempotency key is the request's (`deps.domain_key`: `api:<merchant>:<Idempotency-Key>`),
so a retry after a lost answer is a replay, never a second entry.

The route posts only what no domain reads meaning into. Kinds of the domains' own families
(`payment.*`, `payout.*`, `loan.*`, ...: lending counts `payment.capture` on a payable as
goods sold, settlement pays it out) are refused, 422 `reserved-kind`; accounts are the
internal services' own range (codes starting with `9`) and the prefixes the operator
allows (`ApiSettings.ledger_accounts`, PAYCORE_LEDGER_API_ACCOUNTS), anything else 403
`account-not-allowed`."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

import ledger
from paycore.api import keys
from paycore.api.auth import Principal, requires
from paycore.api.deps import DomainIdempotencyKey, ReadConnection, Settings, app_service
from paycore.api.idempotency import IDEMPOTENCY_KEY
from paycore.api.models import ApiDate, ApiDateOrDateTime, MoneyIn, MoneyOut
from paycore.api.problems import ApiProblem

keys.declare_scope("ledger:write", "post journal entries through the ledger's coalescing "
                   "write path (internal services)")


def coalescer_of(app: FastAPI) -> ledger.Coalescer:
    """The app's coalescer on its engine."""
    return app_service(app, "ledger_coalescer", ledger.Coalescer, ledger.Coalescer)


@asynccontextmanager
async def coalescer_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the coalescer with the app; on shutdown take no more entries and settle
    every queued one before the engine goes."""
    coalescer = coalescer_of(app)
    coalescer.start()
    try:
        yield
    finally:
        await coalescer.close()


router = APIRouter(prefix="/v1/ledger", tags=["ledger"], lifespan=coalescer_lifespan)

Reader = Annotated[Principal, requires("ledger:read")]
Poster = Annotated[Principal, requires("ledger:write")]
#: the ledger keeps keys of up to 200 characters; the API adds `api:<merchant>:`
_ENTRY_KEY_MAX = 200
#: the first part of every kind a domain posts (gateways: payment.capture, payment.refund,
#: payout, payout.return; lending: loan.*, lending; reconciliation: recon.write_off,
#: recon.adjustment, bank.fee; paycore: settlement.*), and of their reversals
#: (`<kind>.reversal`): an entry of one of these kinds through this route would be taken
#: by the domains as their own
RESERVED_KIND_FAMILIES = frozenset({
    "payment", "payments", "refund", "refunds", "payout", "payouts", "loan", "loans",
    "lending", "settlement", "recon", "reconciliation", "bank", "capture", "chargeback"})
#: accounts in this range are the internal services' own: no domain opens one
_SERVICE_RANGE = "9"
AccountCode = Annotated[str, Path(description="chart-of-accounts code, e.g. 1102.clearing.icbc",
                                  max_length=120)]


class AccountOut(BaseModel):
    id: int
    code: str
    name: str
    type: str
    currency: str
    balance_limit: str | None
    owner_ref: str | None
    status: str
    opened_at: dt.datetime
    metadata: dict[str, Any]

    @classmethod
    def of(cls, a: ledger.Account) -> AccountOut:
        return cls(id=a.id, code=a.code, name=a.name, type=a.type.value, currency=a.currency,
                   balance_limit=a.balance_limit.value if a.balance_limit else None,
                   owner_ref=a.owner_ref, status=a.status.value, opened_at=a.opened_at,
                   metadata=dict(a.metadata))


class AccountList(BaseModel):
    data: list[AccountOut]


class BalanceOut(BaseModel):
    account: str
    currency: str
    posted: MoneyOut
    pending: MoneyOut
    available: MoneyOut
    as_of: dt.datetime | None


class StatementLineOut(BaseModel):
    entry_id: uuid.UUID
    account_seq: int
    booked_at: dt.datetime
    effective_date: dt.date
    kind: str
    description: str
    external_ref: str | None
    side: str
    amount: MoneyOut
    balance_after: MoneyOut


class StatementOut(BaseModel):
    account: str
    currency: str
    start: dt.date
    end: dt.date
    opening: MoneyOut
    closing: MoneyOut
    lines: list[StatementLineOut]


class PostingOut(BaseModel):
    account: str
    side: str
    amount: MoneyOut
    account_seq: int


class EntryOut(BaseModel):
    id: uuid.UUID
    idempotency_key: str
    kind: str
    description: str
    effective_date: dt.date
    booked_at: dt.datetime
    reverses_entry_id: uuid.UUID | None
    external_ref: str | None
    metadata: dict[str, Any]
    postings: list[PostingOut]

    @classmethod
    def of(cls, e: ledger.JournalEntry) -> EntryOut:
        return cls(id=e.id, idempotency_key=e.idempotency_key, kind=e.kind,
                   description=e.description, effective_date=e.effective_date,
                   booked_at=e.booked_at, reverses_entry_id=e.reverses_entry_id,
                   external_ref=e.external_ref, metadata=dict(e.metadata),
                   postings=[PostingOut(account=p.account_code, side=p.side,
                                        amount=MoneyOut.of(p.money), account_seq=p.account_seq)
                             for p in e.postings])


class TrialBalanceRowOut(BaseModel):
    code: str
    name: str
    type: str
    currency: str
    debit: MoneyOut
    credit: MoneyOut


class TotalsOut(BaseModel):
    debit: MoneyOut
    credit: MoneyOut


class TrialBalanceOut(BaseModel):
    balanced: bool
    rows: list[TrialBalanceRowOut]
    totals: dict[str, TotalsOut]


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    postings: int
    accounts: int
    holds_pending: int
    discrepancies: list[str]


@router.get("/accounts", summary="List accounts")
async def list_accounts(
    _: Reader, conn: ReadConnection,
    owner_ref: Annotated[str | None, Query(max_length=120)] = None,
    code_prefix: Annotated[str | None, Query(max_length=120)] = None,
) -> AccountList:
    found = await ledger.list_accounts(conn, owner_ref=owner_ref, code_prefix=code_prefix)
    return AccountList(data=[AccountOut.of(a) for a in found])


@router.get("/accounts/{code}", summary="An account")
async def get_account(_: Reader, conn: ReadConnection, code: AccountCode) -> AccountOut:
    return AccountOut.of(await ledger.get_account(conn, code))


@router.get("/accounts/{code}/balance", summary="An account's balance, now or as of a time",
            description="Without `as_of`: posted, pending and available now. With `as_of` "
                        "(a date = the end of that UTC day, or a timezone-aware time): the "
                        "posted balance as the books stood then (no pending amounts).")
async def get_balance(
    _: Reader, conn: ReadConnection, code: AccountCode,
    as_of: Annotated[ApiDateOrDateTime | None, Query()] = None,
) -> BalanceOut:
    b = await ledger.balance(conn, code, as_of=as_of)
    return BalanceOut(account=b.account_code, currency=b.currency, posted=MoneyOut.of(b.posted),
                      pending=MoneyOut.of(b.pending), available=MoneyOut.of(b.available),
                      as_of=b.as_of)


@router.get("/accounts/{code}/statement", summary="An account's statement for a period")
async def get_statement(
    _: Reader, conn: ReadConnection, code: AccountCode,
    start: Annotated[ApiDate, Query(alias="from", description="first day (UTC), inclusive")],
    end: Annotated[ApiDate, Query(alias="to", description="last day (UTC), inclusive")],
) -> StatementOut:
    s = await ledger.statement(conn, code, start, end)
    cur = s.account.currency
    return StatementOut(
        account=s.account.code, currency=cur, start=s.start, end=s.end,
        opening=MoneyOut.of(s.opening), closing=MoneyOut.of(s.closing),
        lines=[StatementLineOut(
            entry_id=line.entry_id, account_seq=line.account_seq, booked_at=line.booked_at,
            effective_date=line.effective_date, kind=line.kind, description=line.description,
            external_ref=line.external_ref, side="debit" if line.amount > 0 else "credit",
            amount=MoneyOut.minor(abs(line.amount), cur),
            balance_after=MoneyOut.of(s.normal(line.balance_after)))
            for line in s.lines])


@router.get("/entries/{entry_id}", summary="A journal entry with its postings")
async def get_entry(_: Reader, conn: ReadConnection, entry_id: uuid.UUID) -> EntryOut:
    return EntryOut.of(await ledger.get_entry(conn, entry_id))


@router.get("/trial-balance", summary="Every account's balance on its side, with totals")
async def get_trial_balance(_: Reader, conn: ReadConnection) -> TrialBalanceOut:
    tb = await ledger.trial_balance(conn)
    return TrialBalanceOut(
        balanced=tb.balanced,
        rows=[TrialBalanceRowOut(code=r.code, name=r.name, type=r.type.value,
                                 currency=r.currency, debit=MoneyOut.minor(r.debit, r.currency),
                                 credit=MoneyOut.minor(r.credit, r.currency)) for r in tb.rows],
        totals={cur: TotalsOut(debit=MoneyOut.minor(d, cur), credit=MoneyOut.minor(c, cur))
                for cur, (d, c) in sorted(tb.totals.items())},
    )


@router.get("/verify", summary="Prove the books from their postings",
            description="Recomputes every balance and hash chain; `ok` is false and "
                        "`discrepancies` lists what differs when the books do not prove out.")
async def get_verify(_: Reader, conn: ReadConnection) -> VerifyOut:
    report = await ledger.verify(conn)
    return VerifyOut(ok=report.ok, entries=report.entries, postings=report.postings,
                     accounts=report.accounts, holds_pending=report.holds_pending,
                     discrepancies=list(report.discrepancies))


class LegIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str = Field(min_length=1, max_length=120,
                         description="chart-of-accounts code, e.g. 1102.clearing.icbc")
    side: Literal["debit", "credit"]
    amount: MoneyIn


class EntryIn(BaseModel):
    """A balanced journal entry: at least two postings, debits equal to credits in each
    currency, each posting in its account's currency."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=80, pattern=r"^[a-z][a-z0-9_.:-]*$",
                      examples=["transfer.internal"])
    description: str = Field("", max_length=500)
    effective_date: ApiDate | None = Field(None, description="value date (default: today, UTC)")
    external_ref: str | None = Field(None, max_length=200)
    metadata: dict[str, str | int | bool | None] = Field(default_factory=dict, max_length=50)
    postings: list[LegIn] = Field(min_length=2, max_length=100)


@router.post(
    "/entries", status_code=201, summary="Post a journal entry (coalescing write path)",
    description="For internal services (scope `ledger:write`). The entry joins other "
                "callers' entries in one transaction and is answered once that committed: "
                "201 with the entry, or its own refusal (problem+json); another entry's "
                "refusal never affects it. The Idempotency-Key is the entry's key: a retry "
                "returns the entry posted the first time. 503 with Retry-After when the "
                "write queue is full or closing, or the outcome could not be confirmed; "
                "retry with the same Idempotency-Key.",
    responses={503: {"description": "The write queue is full or closing, or the outcome "
                                    "is not confirmed: retry later with the same key"}})
async def post_entry(body: EntryIn, _: Poster, key: DomainIdempotencyKey, request: Request,
                     response: Response, settings: Settings) -> EntryOut:
    family = body.kind.replace(":", ".").split(".", 1)[0]
    if family in RESERVED_KIND_FAMILIES:
        raise ApiProblem(f"kind {body.kind!r} is reserved: '{family}.*' entries are the "
                         "domains' own (the payment, payout, lending, reconciliation and "
                         "settlement flows post them); use a kind of your service's own, "
                         "e.g. 'transfer.internal'", status=422, code="reserved-kind",
                         reserved_prefix=f"{family}.")
    allowed = (_SERVICE_RANGE, *settings.ledger_accounts)
    refused = sorted({leg.account for leg in body.postings
                      if not leg.account.startswith(allowed)})
    if refused:
        raise ApiProblem(f"account(s) {', '.join(refused)} belong to the marketplace's "
                         "domains; a ledger:write key posts to the internal services' "
                         f"accounts ({_SERVICE_RANGE}xxx) and to the prefixes the operator "
                         "allows (PAYCORE_LEDGER_API_ACCOUNTS)", status=403,
                         code="account-not-allowed", accounts=refused)
    if len(key) > _ENTRY_KEY_MAX:
        room = _ENTRY_KEY_MAX - (len(key) - len(request.scope["state"][IDEMPOTENCY_KEY]))
        raise ApiProblem(f"the Idempotency-Key is too long for a ledger entry: at most {room} "
                         "characters for this API key's merchant", status=422,
                         code="idempotency-key-too-long")
    entry_request = ledger.EntryRequest(
        idempotency_key=key, kind=body.kind, description=body.description,
        effective_date=body.effective_date, external_ref=body.external_ref,
        metadata=dict(body.metadata),
        postings=[ledger.Posting(leg.account, **{leg.side: leg.amount.to_money()})
                  for leg in body.postings])
    try:
        entry = await coalescer_of(request.app).submit(entry_request)
    except ledger.SubmitError as exc:
        raise ApiProblem(str(exc), status=503, code=exc.code,
                         headers={"Retry-After": "1"}) from None
    if entry.replayed:
        response.status_code = 200
    return EntryOut.of(entry)
