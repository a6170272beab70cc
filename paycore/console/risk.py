"""Risk: the manual review queue (the application, the borrower's data, every rule's
inputs and reasons, similar past decisions; approve or decline with a reason, and disburse),
and the loan book (by product and days-past-due bucket, exposure per borrower against their
line, loans due this week, overdue loans)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from moneyed import Money

import gateways
import ledger
import lending
from lending import catalogue
from lending.calendar import RollConvention
from lending.daycount import DayCount
from lending.money import check_currency
from lending.schema import book_by_maturity, borrowers, decisions, loans
from lending.schema import exposure as exposure_table
from lending.schema import products as product_versions
from paycore import disbursement
from paycore.console import audit
from paycore.console.staff import Session
from paycore.console.web import (
    Amount,
    Column,
    Link,
    PageRequest,
    Table,
    checked_form,
    engine_of,
    fill,
    may_act,
    redirect,
    render,
    respond,
    session_of,
    settings_of,
    today_local,
)

router = APIRouter(prefix="/console/risk", include_in_schema=False)
StaffSession = Annotated[Session, Depends(session_of)]
CONFIG = lending.DEFAULT_CONFIG
RUNNING = ("disbursed", "active", "extended", "overdue")


def _loan_row(r: Any) -> dict[str, Any]:
    return {"id": Link(r.id, f"/console/risk/applications/{r.id}"), "borrower": r.borrower_id,
            "product": r.product_code, "amount": Amount(r.amount_minor, r.currency),
            "term": r.term_days, "status": r.status, "applied": r.applied_on,
            "maturity": r.maturity,
            "outstanding": Amount(r.amount_minor - r.principal_repaid_minor, r.currency)}


def _loan_columns() -> list[Column]:
    c = loans.c
    return [Column("id", "Loan", c.id), Column("borrower", "Borrower", c.borrower_id),
            Column("product", "Product", c.product_code),
            Column("amount", "Amount", c.amount_minor, numeric=True),
            Column("term", "Days", c.term_days, numeric=True),
            Column("status", "Status", c.status), Column("applied", "Applied", c.applied_on),
            Column("maturity", "Matures", c.maturity),
            Column("outstanding", "Principal outstanding", numeric=True)]


@router.get("/queue")
async def queue(request: Request, session: StaffSession) -> Response:
    pr = PageRequest.of(request, "applied")
    table = Table("review-queue", "Manual review queue", _loan_columns(),
                  caption="Applications waiting for a risk officer, oldest first.")
    async with engine_of(request).connect() as conn:
        await fill(conn, table, sa.select(loans).where(loans.c.status == "manual_review"), pr,
                   _loan_row, tiebreak=[loans.c.id])
    return respond(request, session, "table_page.html", table, pr)


@router.get("/applications/{loan_id}")
async def application(request: Request, loan_id: str, session: StaffSession,
                      note: str = "", error: str = "") -> Response:
    today = today_local(settings_of(request).timezone)
    async with engine_of(request).connect() as conn:
        try:
            record = await lending.load_loan(conn, loan_id, CONFIG)
        except lending.LoanNotFound:
            return render(request, "error.html", session, status=404,
                          message=f"no loan application {loan_id}")
        borrower = await lending.get_borrower(conn, record.loan.borrower_id)
        stored = await lending.decisions_for(conn, loan_id)
        data = await lending.borrower_data(conn, borrower.id, today, CONFIG)
        try:
            line: lending.CreditLine | None = await lending.current_credit_line(
                conn, borrower.id, record.loan.product.code, today, CONFIG)
        except lending.LendingError:
            line = None
        low, high = record.loan.amount_minor // 2, record.loan.amount_minor * 2
        similar = (await conn.execute(
            sa.select(decisions.c.loan_id, decisions.c.outcome, decisions.c.decided_by,
                      decisions.c.decided_on, decisions.c.comment, loans.c.borrower_id,
                      loans.c.amount_minor, loans.c.currency, loans.c.status)
            .join(loans, loans.c.id == decisions.c.loan_id)
            .where(loans.c.product_code == record.loan.product.code,
                   loans.c.amount_minor.between(low, high), loans.c.id != loan_id)
            .order_by(decisions.c.id.desc()).limit(10))).all()
    return render(request, "risk_application.html", session, record=record, borrower=borrower,
                  decisions=stored,
                  data=_readable(dataclasses.asdict(data), record.currency), line=line,
                  similar=similar, Amount=Amount,
                  note=note, error=error)


@router.post("/applications/{loan_id}/decide")
async def decide(request: Request, loan_id: str, session: StaffSession) -> Response:
    form = await checked_form(request, session)
    approve = form.get("decision") == "approve"
    action = "loan.approve" if approve else "loan.decline"
    subject = f"loan:{loan_id}"
    reason = form.get("reason", "").strip()
    await may_act(request, session, "risk", action, subject)
    back = f"/console/risk/applications/{loan_id}"
    today = today_local(settings_of(request).timezone)
    user = session.user
    engine = engine_of(request)
    try:
        if not reason:
            raise lending.InvalidInput("say why: a decision needs a reason")
        if form.get("decision") not in ("approve", "decline"):
            raise lending.InvalidInput("choose approve or decline")

        async def decide(conn: Any) -> dict[str, Any]:
            record = await lending.load_loan(conn, loan_id, CONFIG)
            amount = None
            if approve and form.get("amount", "").strip():
                try:
                    amount = Money(Decimal(form["amount"].replace(",", "")), record.currency)
                except InvalidOperation:
                    raise lending.InvalidInput("the amount is not a number") from None
            saved = await lending.review(conn, loan_id, officer=user.actor, approve=approve,
                                         comment=reason, on=today, config=CONFIG, amount=amount)
            details: dict[str, Any] = {"status": saved.status.value,
                                       "amount_minor": saved.loan.amount_minor}
            if approve and form.get("disburse") == "yes":
                result = await disbursement.disburse(conn, loan_id, today, CONFIG)
                details.update(disbursed=result.disbursement.net_minor,
                               status=result.loan.status.value)
            await audit.record(conn, actor=user.actor, role=user.role.value, action=action,
                               subject=subject, reason=reason, details=details)
            return details

        # run again whole on a deadlock (disbursing locks what a return being booked
        # may hold), as the API and the workers do
        details = await ledger.transact(engine, decide)
    except (lending.LendingError, gateways.PaymentError) as exc:
        await audit.record_refusal(engine, actor=user.actor, role=user.role.value,
                                   action=action, subject=subject, reason=reason, why=str(exc))
        return redirect(back + "?" + _q(error=str(exc)))
    return redirect(back, f"loan {loan_id} is now {details['status']}")


def _readable(values: dict[str, Any], currency: str) -> dict[str, Any]:
    """The rules' inputs as a person reads them: amounts (`..._minor`) with their currency
    and thousands separators, the name without the storage suffix."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and all(isinstance(v, int) for v in value.values()):
            key += "_minor"  # amounts by counterparty (receivables by buyer)
        if not key.endswith("_minor"):
            out[key.replace("_", " ")] = value
            continue
        label = key.removesuffix("_minor").replace("_", " ")
        if isinstance(value, int):
            out[label] = Amount(value, currency)
        elif isinstance(value, (list, tuple)):
            out[label] = ", ".join(str(Amount(v, currency)) for v in value) or "none"
        elif isinstance(value, dict):
            out[label] = "; ".join(f"{k}: {Amount(v, currency)}" for k, v in value.items()
                                   ) or "none"
        else:
            out[label] = "none" if value is None else value
    return out


def _q(**values: str) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


def _bucket_case(today: dt.date, maturity: Any = loans.c.maturity) -> Any:
    """The days-past-due bucket of a running loan due on `maturity`, in SQL (dates compared,
    so it is the same on both databases): current up to maturity, then the product's
    buckets."""
    buckets = next(iter(CONFIG.products.values())).dpd_buckets
    whens = [(maturity >= today, "current")]
    for b in buckets:
        if b.to_days is None:
            whens.append((maturity < today - dt.timedelta(days=b.from_days - 1), b.label))
        else:
            whens.append((maturity >= today - dt.timedelta(days=b.to_days), b.label))
    return sa.case(*whens, else_="current")


@router.get("/loans")
async def loan_book(request: Request, session: StaffSession) -> Response:
    today = today_local(settings_of(request).timezone)
    view = request.query_params.get("view", "all")
    pr = PageRequest.of(request, "maturity")
    titles = {"all": "All loans", "due": "Due this week", "overdue": "Overdue",
              "running": "Running loans"}
    table = Table(f"loans-{view}", titles.get(view, "All loans"), _loan_columns(),
                  base_query={"view": view})
    query = sa.select(loans)
    if view == "due":
        query = query.where(loans.c.status.in_(RUNNING), loans.c.maturity >= today,
                            loans.c.maturity <= today + dt.timedelta(days=7))
    elif view == "overdue":
        query = query.where(loans.c.status.in_(RUNNING), loans.c.maturity < today)
    elif view == "running":
        query = query.where(loans.c.status.in_(RUNNING))
    # the book by product and bucket sums the running loans per maturity date, kept by
    # the loans' own writes (migration 0033): a few hundred rows, not the whole book
    m = book_by_maturity.c
    bucket = _bucket_case(today, m.maturity).label("bucket")
    async with engine_of(request).connect() as conn:
        await fill(conn, table, query, pr, _loan_row, tiebreak=[loans.c.id])
        if pr.export:
            return respond(request, session, "table_page.html", table, pr)
        # the book's summary tops the first page of all loans only
        book = None if pr.page > 1 or view != "all" else (await conn.execute(
            sa.select(m.product_code, m.currency, bucket,
                      sa.func.sum(m.loans).label("n"),
                      sa.func.sum(m.principal_minor).label("principal"))
            .where(m.loans > 0)
            .group_by(m.product_code, m.currency, bucket)
            .order_by(m.product_code, m.currency, bucket))).all()
    return render(request, "risk_loans.html", session, table=table, book=book, view=view,
                  Amount=Amount, today=today)


@router.get("/exposure")
async def exposure(request: Request, session: StaffSession) -> Response:
    """Each borrower's exposure (principal outstanding plus approved, not yet drawn) against
    the credit line of their latest underwriting decision."""
    pr = PageRequest.of(request, "exposure", "desc")
    # the open loans and exposure of each borrower, kept by the loans' own writes
    # (lending_exposure, migration 0033): one row a borrower, not a sum over the book
    open_loans = exposure_table.c
    total = sa.func.coalesce(open_loans.exposure_minor, 0)
    count = sa.func.coalesce(open_loans.loans, 0)
    query = (sa.select(borrowers.c.id, borrowers.c.name, borrowers.c.currency,
                       total.label("exposure"), count.label("n"))
             .select_from(borrowers.outerjoin(exposure_table,
                                              open_loans.borrower_id == borrowers.c.id)))
    table = Table("exposure", "Exposure per borrower against line", [
        Column("borrower", "Borrower", borrowers.c.id), Column("name", "Name", borrowers.c.name),
        Column("loans", "Open loans", count, numeric=True),
        Column("exposure", "Exposure", total, numeric=True),
        Column("limit", "Line", numeric=True), Column("decided", "Line as decided on"),
        Column("available", "Available", numeric=True), Column("used", "Used", numeric=True)],
        caption="Exposure = principal outstanding on running loans + approved, not drawn, now. "
                "Line = the limit the borrower's last underwriting decision computed from "
                "their data (kept with the decision; the application page recomputes it "
                "today); available = line less today's exposure.")
    async with engine_of(request).connect() as conn:
        await fill(conn, table, query, pr, lambda r: {
            "borrower": r.id, "name": r.name, "loans": r.n,
            "exposure": Amount(int(r.exposure), r.currency)}, tiebreak=[borrowers.c.id])
        # the line of each borrower's latest decision: one query for the page's borrowers
        # (recomputing each line from the borrower's data took ~6 queries a borrower)
        latest = (sa.select(sa.func.max(decisions.c.id))
                  .join(loans, loans.c.id == decisions.c.loan_id)
                  .where(loans.c.borrower_id.in_([row["borrower"] for row in table.rows]))
                  .group_by(loans.c.borrower_id))
        lines = {r.borrower_id: r for r in await conn.execute(
            sa.select(loans.c.borrower_id, decisions.c.credit_line, decisions.c.decided_on)
            .join(loans, loans.c.id == decisions.c.loan_id)
            .where(decisions.c.id.in_(latest.scalar_subquery())))}
    for row in table.rows:
        found = lines.get(row["borrower"])
        line = (found.credit_line or {}) if found is not None else {}
        if not isinstance(line.get("limit_minor"), int):
            continue
        limit, exposure = line["limit_minor"], row["exposure"]
        row["limit"] = Amount(limit, exposure.currency)
        row["decided"] = found.decided_on if found is not None else ""
        row["available"] = Amount(max(0, limit - exposure.minor), exposure.currency)
        if limit:
            row["used"] = f"{Decimal(exposure.minor * 100) / limit:.1f} %"
    return respond(request, session, "table_page.html", table, pr)


@router.get("/products")
async def products(request: Request, session: StaffSession) -> Response:
    """Every version of every product defined or changed at run time (the audit trail of
    the terms: who, when, why), and for the risk team the forms that define, change and
    retire one (the same catalogue as 'paycore products' and the API)."""
    return await _products_page(request, session)


async def _products_page(request: Request, session: Session, *, status: int = 200,
                         error: str = "", sent: dict[str, str] | None = None) -> Response:
    pr = PageRequest.of(request, "code")
    c = product_versions.c
    table = Table("products", "Loan products", [
        Column("code", "Product", c.code), Column("version", "Version", c.version, numeric=True),
        Column("status", "Status", c.status), Column("from", "For loans from", c.effective_from),
        Column("rate", "Rate a year"), Column("basis", "Day count"),
        Column("terms", "Term (days)"), Column("roll", "Maturity roll"),
        Column("by", "Changed by", c.changed_by), Column("why", "Reason", c.reason)],
        caption="Built-in products (version 0): " + ", ".join(sorted(CONFIG.products))
        + ". A loan keeps the version it was booked under.")

    def row(r: Any) -> dict[str, Any]:
        d = r.definition
        return {"code": r.code, "version": r.version, "status": r.status,
                "from": r.effective_from, "rate": d.get("annual_rate"),
                "basis": d.get("day_count"),
                "terms": f"{d.get('min_term_days')}-{d.get('max_term_days')}",
                "roll": d.get("maturity_roll"), "by": r.changed_by, "why": r.reason}
    today = today_local(settings_of(request).timezone)
    async with engine_of(request).connect() as conn:
        await fill(conn, table, sa.select(product_versions), pr, row,
                   tiebreak=[c.code, c.version])
        if pr.export:
            return respond(request, session, "table_page.html", table, pr)
        current = [v for v in await lending.products_now(conn, CONFIG, today) if not v.retired]
    return render(request, "risk_products.html", session, status=status, table=table,
                  error=error, sent=sent or {}, today=today,
                  codes=sorted(v.product.code for v in current),
                  day_counts=[d.value for d in DayCount],
                  rolls=[r.value for r in RollConvention])


def _text(form: dict[str, str], name: str) -> str:
    return form.get(name, "").strip()


def _whole(form: dict[str, str], name: str, what: str) -> int | None:
    text = _text(form, name).replace(",", "")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise lending.InvalidInput(f"{what} must be a whole number, got {text!r}") from None


def _minor(form: dict[str, str], name: str, what: str, currency: str) -> int | None:
    """An amount typed in the currency's units (`1,000.50`), as exact minor units."""
    text = _text(form, name).replace(",", "")
    if not text:
        return None
    try:
        return lending.from_money(Money(Decimal(text), currency), currency)
    except (InvalidOperation, ValueError):
        raise lending.InvalidInput(f"{what} is not an amount in {currency}: {text!r}") from None


def _day(form: dict[str, str], today: dt.date) -> dt.date:
    text = _text(form, "effective_from")
    if not text:
        return today
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise lending.InvalidInput(f"the first day must be a date (YYYY-MM-DD), got {text!r}"
                                   ) from None


def _terms(form: dict[str, str]) -> dict[str, Any]:
    """The define form's fields as the catalogue's terms; rates stay decimal strings and
    amounts exact minor units, and an empty optional field is left to the defaults."""
    currency = _text(form, "currency").upper()
    if not currency:
        raise lending.InvalidInput("choose the product's currency (e.g. CNY)")
    currency = check_currency(currency)
    terms: dict[str, Any] = {
        "name": _text(form, "name") or None, "currency": currency,
        "min_amount_minor": _minor(form, "min_amount", "the smallest amount", currency),
        "max_amount_minor": _minor(form, "max_amount", "the largest amount", currency),
        "min_term_days": _whole(form, "min_term_days", "the shortest term"),
        "max_term_days": _whole(form, "max_term_days", "the longest term"),
        "annual_rate": _text(form, "annual_rate") or None,
    }
    for field in ("day_count", "maturity_roll", "market"):
        if _text(form, field):
            terms[field] = _text(form, field)
    if _text(form, "penalty_annual_rate"):
        terms["penalty_annual_rate"] = _text(form, "penalty_annual_rate")
    grace = _whole(form, "grace_days", "the grace days")
    if grace is not None:
        terms["grace_days"] = grace
    fee_rate = _text(form, "fee_rate")
    fee_fixed = _minor(form, "fee_fixed", "the fixed fee", currency)
    if fee_rate or fee_fixed is not None:
        terms["origination_fee"] = {"rate": fee_rate or "0", "fixed_minor": fee_fixed or 0}
    return terms


def _changes(text: str) -> dict[str, Any]:
    """`field=value` lines, as the CLI's --set: JSON when it parses, else the text;
    decimals stay strings, never binary floats."""
    changes: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise lending.InvalidInput(f"{line.strip()!r}: expected field=value, one a line")
        try:
            changes[name.strip()] = json.loads(value.strip(), parse_float=str)
        except ValueError:
            changes[name.strip()] = value.strip()
    return changes


@router.post("/products/{what}")
async def product_action(request: Request, what: str, session: StaffSession) -> Response:
    """Define, change or retire a product: the catalogue's call and its console_audit row
    in one transaction; the catalogue's refusal shown on the page (422), nothing written."""
    if what not in ("define", "change", "retire"):
        return render(request, "error.html", session, status=404,
                      message=f"no product action {what!r}")
    form = await checked_form(request, session)
    code = _text(form, "code")
    action, subject = f"product.{what}", f"product:{code}"
    reason = _text(form, "reason")
    await may_act(request, session, "risk", action, subject)
    today = today_local(settings_of(request).timezone)
    user = session.user
    engine = engine_of(request)
    try:
        if not code:
            raise lending.InvalidInput("give the product's code")
        if not reason:
            raise lending.InvalidInput("say why: a product change needs a reason")
        day = _day(form, today)
        async with engine.begin() as conn:
            if what == "define":
                saved = await lending.define_product(
                    conn, code, _terms(form), effective_from=day, actor=user.actor,
                    reason=reason, config=CONFIG)
            elif what == "change":
                saved = await lending.change_product(
                    conn, code, _changes(form.get("changes", "")), effective_from=day,
                    actor=user.actor, reason=reason, config=CONFIG)
            else:
                saved = await lending.retire_product(conn, code, effective_from=day,
                                                     actor=user.actor, reason=reason,
                                                     config=CONFIG)
            await audit.record(conn, actor=user.actor, role=user.role.value, action=action,
                               subject=subject, reason=reason,
                               details={"version": saved.product.version,
                                        "status": saved.status,
                                        "effective_from": str(saved.effective_from),
                                        "terms": catalogue.to_definition(saved.product)})
    except lending.LendingError as exc:
        await audit.record_refusal(engine, actor=user.actor, role=user.role.value,
                                   action=action, subject=subject, reason=reason, why=str(exc))
        return await _products_page(request, session, status=422, error=str(exc),
                                    sent={**form, "form": what})
    return redirect("/console/risk/products",
                    f"{code} version {saved.product.version} ({saved.status}) from "
                    f"{saved.effective_from}")
