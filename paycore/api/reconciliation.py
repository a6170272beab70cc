"""Bank reconciliation over HTTP (finance's back office): configure a bank account, import a
statement file, run the matching, work the exceptions queue, read the daily report.

Reconciliation is not merchant-owned: any key with `reconciliation:read` /
`reconciliation:write` acts on every bank account. Resolutions are recorded as made by
`api:<merchant>:<key id>`. Importing is idempotent by itself (file hash, line identity);
the `Idempotency-Key` every POST carries makes a retried resolution act once.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
import reconciliation
from paycore.api.auth import Principal, requires
from paycore.api.deps import Engine, ReadConnection
from paycore.api.guard import NulByte
from paycore.api.models import BIGINT_MAX, ApiDate, Currency, MoneyIn, MoneyOut
from paycore.api.problems import ApiProblem, register_error

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"])

register_error(reconciliation.ReconciliationError, 422)
register_error(reconciliation.UnknownBankAccount, 404)
register_error(reconciliation.ExceptionNotOpen, 409)

Reader = Annotated[Principal, requires("reconciliation:read")]
Writer = Annotated[Principal, requires("reconciliation:write")]
BankCode = Annotated[str, Path(max_length=60, description="the bank account's code, e.g. icbc")]
ExceptionId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="the exception's id")]


def _actor(principal: Principal) -> str:
    return f"api:{principal.merchant_id}:{principal.key_id}"


# -- shapes ------------------------------------------------------------------------------


class BankAccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: Currency
    tolerance: MoneyIn | None = None
    bank_account_number: str | None = Field(None, max_length=60)
    date_window_days: int = Field(3, ge=0, le=31)
    item_grace_days: int = Field(0, ge=0, le=31)


class BankAccountOut(BaseModel):
    code: str
    currency: str
    bank_ledger_account: str
    clearing_account: str
    payout_clearing_account: str
    fee_account: str
    differences_account: str
    tolerance: MoneyOut
    rules: dict[str, Any]

    @classmethod
    def of(cls, bank: reconciliation.BankAccount) -> BankAccountOut:
        c = bank.config
        return cls(code=c.code, currency=c.currency, bank_ledger_account=c.bank_ledger_account,
                   clearing_account=c.clearing_account,
                   payout_clearing_account=c.payout_clearing_account, fee_account=c.fee_account,
                   differences_account=c.differences_account,
                   tolerance=MoneyOut.minor(c.tolerance_minor, c.currency),
                   rules=c.rules.to_json())


class StatementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_name: str = Field(max_length=300, examples=["icbc-2026-11-22.xml"])
    content_base64: str = Field(description="the statement file, base64")
    format: Literal["camt.053", "camt.054", "mt940", "bai2", "ofx", "csv"] | None = Field(
        None, description="detected when omitted (CSV needs csv_profile)")
    csv_profile: dict[str, Any] | None = Field(
        None, description="the fields of a reconciliation.CsvProfile")


class SkippedOut(BaseModel):
    statement_id: str
    account: str
    currency: str
    lines: int


class ImportOut(BaseModel):
    file_name: str
    file_hash: str
    already_imported: bool
    statements: int
    lines: int
    new_lines: int
    skipped: list[SkippedOut] = Field(
        default_factory=list, description="the file's statements of other accounts, left out")
    warnings: list[str] = Field(
        default_factory=list, description="what was read leniently (line and deviation)")


class ReconcileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: ApiDate = Field(description="match lines booked up to this day")


class ReconcileOut(BaseModel):
    bank: str
    up_to: dt.date
    lines_considered: int
    matched_lines: int
    matched_items: int
    matched_amount: MoneyOut
    by_rule: dict[str, int]
    fees: MoneyOut
    written_off: MoneyOut
    entries_posted: int
    open_line_exceptions: int
    open_item_exceptions: int


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["match", "adjustment", "write_off"]
    reason: str = Field(min_length=1, max_length=2000)
    counterparts: list[str] = Field(default_factory=list, description=(
        "for match: book items ACCOUNT_ID:SEQ (for a line) or statement line ids (for an item)"))
    counter_account: str | None = Field(None, description="for adjustment: the other account")


class ResolveOut(BaseModel):
    exception_id: int
    match_id: uuid.UUID
    resolved_by: str


# -- routes ------------------------------------------------------------------------------


@router.put("/bank-accounts/{code}", response_model=BankAccountOut)
async def configure(code: BankCode, body: BankAccountIn, engine: Engine,
                    principal: Writer) -> BankAccountOut:
    """Configure a bank account for reconciliation (opens its ledger accounts if needed)."""
    tolerance = body.tolerance.to_money() if body.tolerance else None
    if tolerance is not None and tolerance.currency.code != body.currency:
        raise ApiProblem("the tolerance must be in the account's currency", status=422,
                         code="currency-mismatch")
    config = reconciliation.BankAccountConfig.for_bank(
        code, body.currency, tolerance=tolerance, bank_account_number=body.bank_account_number,
        rules=reconciliation.MatchingRules(date_window_days=body.date_window_days,
                                           item_grace_days=body.item_grace_days))

    async def work(conn: AsyncConnection) -> BankAccountOut:
        for account in (config.bank_ledger_account, config.clearing_account,
                        config.payout_clearing_account, config.fee_account,
                        config.differences_account):
            found = await ledger.find_account(conn, account)
            if found is not None and found.currency != body.currency:
                raise ApiProblem(f"{account} is kept in {found.currency}, not {body.currency}",
                                 status=422, code="currency-mismatch", account=account)
        # the answer is built inside the transaction: if it cannot be, nothing is kept
        return BankAccountOut.of(await reconciliation.configure_bank_account(conn, config))

    return await ledger.transact(engine, work)


@router.get("/bank-accounts", response_model=list[BankAccountOut])
async def bank_accounts(conn: ReadConnection, principal: Reader) -> list[BankAccountOut]:
    return [BankAccountOut.of(b) for b in await reconciliation.list_bank_accounts(conn)]


@router.post("/bank-accounts/{code}/statements", response_model=ImportOut, status_code=201)
async def import_statement(code: BankCode, body: StatementIn, engine: Engine,
                           principal: Writer) -> ImportOut:
    """Import a statement file: checked whole first (a refused file stores nothing);
    re-importing the same file or an overlapping statement adds no line twice."""
    try:
        data = base64.b64decode(body.content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise ApiProblem("content_base64 is not base64", status=422, code="bad-content") from None
    if b"\x00" in data:  # no statement format has one, and PostgreSQL's text cannot hold it
        raise NulByte("statement file")
    profile = None
    if body.csv_profile is not None:
        try:
            profile = reconciliation.CsvProfile.from_mapping(body.csv_profile,
                                                             source="csv_profile")
        except reconciliation.InvalidCsvProfile as exc:
            raise ApiProblem(str(exc), status=422, code="bad-csv-profile") from None

    async def work(conn: AsyncConnection) -> reconciliation.ImportResult:
        bank = await reconciliation.get_bank_account(conn, code)
        return await reconciliation.import_statement(
            conn, bank, data, format=body.format, profile=profile, source_name=body.file_name,
            actor=_actor(principal))

    result = await ledger.transact(engine, work)
    return ImportOut(file_name=result.source_name, file_hash=result.file_hash,
                     already_imported=result.already_imported, statements=result.statements,
                     lines=result.lines, new_lines=result.new_lines,
                     skipped=[SkippedOut(statement_id=s.statement_id, account=s.account,
                                         currency=s.currency, lines=s.lines)
                              for s in result.skipped],
                     warnings=list(result.warnings))


@router.post("/bank-accounts/{code}/reconcile", response_model=ReconcileOut)
async def reconcile(code: BankCode, body: ReconcileIn, engine: Engine,
                    principal: Writer) -> ReconcileOut:
    """Match open lines up to the date, post what they prove, refresh the exceptions."""
    async def work(conn: AsyncConnection) -> tuple[reconciliation.ReconcileResult, str]:
        bank = await reconciliation.get_bank_account(conn, code)
        return await reconciliation.reconcile(conn, bank, body.date, actor=_actor(principal)), \
            bank.currency

    result, currency = await ledger.transact(engine, work)
    return ReconcileOut(
        bank=result.bank, up_to=result.up_to, lines_considered=result.lines_considered,
        matched_lines=result.matched_lines, matched_items=result.matched_items,
        matched_amount=MoneyOut.minor(result.matched_amount_minor, currency),
        by_rule=dict(result.by_rule), fees=MoneyOut.minor(result.fees_minor, currency),
        written_off=MoneyOut.minor(result.written_off_minor, currency),
        entries_posted=result.entries_posted, open_line_exceptions=result.open_line_exceptions,
        open_item_exceptions=result.open_item_exceptions)


@router.get("/exceptions")
async def exceptions(conn: ReadConnection, principal: Reader,
                     bank_account: Annotated[str | None, Query(max_length=60)] = None,
                     status: Literal["open", "resolved", "all"] = "open",
                     limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    """The exceptions queue, each with suggested candidates and their scores."""
    bank = await reconciliation.get_bank_account(conn, bank_account) if bank_account else None
    found = await reconciliation.list_exceptions(conn, bank,
                                                 status=None if status == "all" else status,
                                                 limit=limit)
    return [e.to_json() for e in found]


@router.post("/exceptions/{exception_id}/resolve", response_model=ResolveOut)
async def resolve(exception_id: ExceptionId, body: ResolveIn, engine: Engine,
                  principal: Writer) -> ResolveOut:
    """Resolve by a manual match, an adjustment entry or a write-off (within tolerance);
    each leaves an audit record."""
    actor = _actor(principal)

    async def work(conn: AsyncConnection) -> uuid.UUID:
        if body.action == "match":
            return await reconciliation.resolve_by_match(
                conn, exception_id, counterparts=body.counterparts, actor=actor,
                reason=body.reason)
        if body.action == "adjustment":
            if not body.counter_account:
                raise ApiProblem("an adjustment needs counter_account", status=422,
                                 code="invalid-resolution")
            return await reconciliation.post_adjustment(
                conn, exception_id, counter_account=body.counter_account, actor=actor,
                reason=body.reason)
        return await reconciliation.write_off(conn, exception_id, actor=actor,
                                              reason=body.reason)

    match_id = await ledger.transact(engine, work)
    return ResolveOut(exception_id=exception_id, match_id=match_id, resolved_by=actor)


@router.get("/bank-accounts/{code}/report", response_model=None)
async def report(code: BankCode, conn: ReadConnection, principal: Reader,
                 date: ApiDate, format: Literal["json", "csv"] = "json",
                 ) -> dict[str, Any] | PlainTextResponse:
    """Bank balance against the book balance for the day, the difference explained."""
    bank = await reconciliation.get_bank_account(conn, code)
    result = await reconciliation.build_report(conn, bank, date)
    if format == "csv":
        return PlainTextResponse(result.to_csv(), media_type="text/csv")
    return result.to_json()
