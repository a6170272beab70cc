"""Borrowers and the data a credit decision is made from.

* receivables: what the marketplace owes the borrower now for goods sold and has not yet
  settled, read from the ledger (their supplier payable's captures net of refunds, never
  loan proceeds: `lending.receivables`), capped at its available balance;
* settled sales per month: the `payment.capture` credits to that payable, or an imported
  series for months the ledger does not cover (an imported month wins: it is the
  borrower's full figure, the ledger only what sold here);
* purchase orders (by buyer: receivable concentration) and returns, imported from CSV or
  the API; the import date is the data's freshness;
* past loan behaviour and today's exposure (principal, reserved approvals, interest,
  penalty and fees outstanding), from the lending tables.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from ledger import AccountSpec, AccountType, BalanceLimit
from lending.config import LendingConfig
from lending.creditline import BorrowerData
from lending.errors import BorrowerNotFound, InvalidImport, InvalidInput
from lending.money import check_currency, from_money
from lending.receivables import payable_origins
from lending.schema import borrowers, loans, trade_records
from lending.store import RUNNING, utcnow

__all__ = [
    "Borrower",
    "TradeRecord",
    "borrower_data",
    "get_borrower",
    "import_trade_records",
    "list_borrowers",
    "parse_trade_csv",
    "register_borrower",
]

#: how far back purchase orders count toward receivable concentration
_PO_WINDOW_DAYS = 90


@dataclass(frozen=True)
class Borrower:
    id: str
    name: str
    currency: str
    onboarded_on: dt.date
    kind: str = "supplier"
    payable_account: str = ""
    credit_cap_minor: int | None = None
    data_imported_on: dt.date | None = None

    def tenure_months(self, on: dt.date) -> int:
        months = (on.year - self.onboarded_on.year) * 12 + on.month - self.onboarded_on.month
        if on.day < self.onboarded_on.day:
            months -= 1
        return max(0, months)


@dataclass(frozen=True)
class TradeRecord:
    kind: str  # purchase_order | return | sale
    record_ref: str
    record_date: dt.date
    amount: Money
    buyer_ref: str | None = None


def _row(r: sa.Row[tuple[object, ...]]) -> Borrower:
    m = r._mapping
    return Borrower(id=m["id"], name=m["name"], currency=m["currency"],
                    onboarded_on=m["onboarded_on"], kind=m["kind"],
                    payable_account=m["payable_account"], credit_cap_minor=m["credit_cap_minor"],
                    data_imported_on=m["data_imported_on"])


async def register_borrower(conn: AsyncConnection, borrower: Borrower,
                            config: LendingConfig) -> Borrower:
    """Register (or update) a borrower; open their supplier payable if nobody has yet."""
    if not borrower.id or not borrower.name:
        raise InvalidInput("a borrower needs an id and a name")
    if borrower.kind not in ("supplier", "merchant"):
        raise InvalidInput(f"a borrower is a supplier or a merchant, not {borrower.kind!r}")
    currency = check_currency(borrower.currency)
    payable = borrower.payable_account or config.gl.code("supplier_payable", "", borrower.id)
    if await ledger.find_account(conn, payable) is None:
        await ledger.open_account(conn, AccountSpec(
            payable, f"Payable to {borrower.name}", AccountType.LIABILITY, currency,
            balance_limit=BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS,
            owner_ref=f"supplier:{borrower.id}"))
    values = dict(name=borrower.name, kind=borrower.kind, currency=currency,
                  payable_account=payable, onboarded_on=borrower.onboarded_on,
                  credit_cap_minor=borrower.credit_cap_minor)
    exists = await conn.scalar(sa.select(borrowers.c.id).where(borrowers.c.id == borrower.id))
    if exists is None:
        await conn.execute(sa.insert(borrowers).values(id=borrower.id, created_at=utcnow(),
                                                       data_imported_on=None, **values))
    else:
        await conn.execute(sa.update(borrowers).where(borrowers.c.id == borrower.id)
                           .values(**values))
    return await get_borrower(conn, borrower.id)


async def get_borrower(conn: AsyncConnection, borrower_id: str, *,
                       for_update: bool = False) -> Borrower:
    query = sa.select(borrowers).where(borrowers.c.id == borrower_id)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise BorrowerNotFound(borrower_id)
    return _row(row)


async def list_borrowers(conn: AsyncConnection) -> list[Borrower]:
    return [_row(r) for r in await conn.execute(sa.select(borrowers).order_by(borrowers.c.id))]


_KINDS = ("purchase_order", "return", "sale")


def parse_trade_csv(text: str) -> dict[str, list[TradeRecord]]:
    """`borrower_id,kind,ref,date,buyer,amount,currency` rows, by borrower.

    A malformed row refuses the whole file (naming the line), so an import is all or
    nothing.
    """
    reader = csv.DictReader(io.StringIO(text))
    need = {"borrower_id", "kind", "ref", "date", "amount", "currency"}
    missing = need - set(reader.fieldnames or ())
    if missing:
        raise InvalidImport(f"the CSV lacks column(s) {', '.join(sorted(missing))}")
    out: dict[str, list[TradeRecord]] = {}
    for line, row in enumerate(reader, start=2):
        try:
            kind = row["kind"].strip()
            if kind not in _KINDS:
                raise ValueError(f"kind must be one of {', '.join(_KINDS)}, not {kind!r}")
            amount = Money(Decimal(row["amount"].strip()), row["currency"].strip().upper())
            if amount.amount < 0:
                raise ValueError("amount must not be negative")
            record = TradeRecord(kind=kind, record_ref=row["ref"].strip(),
                                 record_date=dt.date.fromisoformat(row["date"].strip()),
                                 amount=amount, buyer_ref=(row.get("buyer") or "").strip() or None)
            if not record.record_ref or not row["borrower_id"].strip():
                raise ValueError("borrower_id and ref are required")
        except (ValueError, InvalidOperation, KeyError, AttributeError) as exc:
            raise InvalidImport(f"line {line}: {exc}") from None
        out.setdefault(row["borrower_id"].strip(), []).append(record)
    return out


async def import_trade_records(
    conn: AsyncConnection, borrower_id: str, records: Sequence[TradeRecord], imported_on: dt.date,
    *, source: str = "api",
) -> int:
    """Add records not yet imported (by kind and ref); returns how many were new. The
    borrower's data counts as fresh as of `imported_on` afterwards."""
    borrower = await get_borrower(conn, borrower_id)
    rows = []
    for r in records:
        if r.kind not in _KINDS:
            raise InvalidImport(f"record {r.record_ref!r}: unknown kind {r.kind!r}")
        units = from_money(r.amount, borrower.currency)
        if units < 0:
            raise InvalidImport(f"record {r.record_ref!r}: negative amount")
        rows.append(dict(borrower_id=borrower_id, kind=r.kind, record_ref=r.record_ref,
                         record_date=r.record_date, buyer_ref=r.buyer_ref, amount_minor=units,
                         currency=borrower.currency, source=source, imported_on=imported_on))
    known: set[tuple[str, str]] = set()
    refs = sorted({str(r["record_ref"]) for r in rows})
    for start in range(0, len(refs), 1000):
        known |= {(k, ref) for k, ref in await conn.execute(
            sa.select(trade_records.c.kind, trade_records.c.record_ref)
            .where(trade_records.c.borrower_id == borrower_id,
                   trade_records.c.record_ref.in_(refs[start:start + 1000])))}
    new = [r for r in rows if (r["kind"], r["record_ref"]) not in known]
    unique = list({(r["kind"], r["record_ref"]): r for r in new}.values())
    if unique:
        await conn.execute(sa.insert(trade_records), unique)
    await conn.execute(sa.update(borrowers).where(borrowers.c.id == borrower_id)
                       .values(data_imported_on=imported_on))
    return len(unique)


def _month(day: dt.date) -> tuple[int, int]:
    return day.year, day.month


def _previous_months(on: dt.date, n: int) -> list[tuple[int, int]]:
    """The `n` full calendar months before `on`'s month, oldest first."""
    year, month = on.year, on.month
    out = []
    for _ in range(n):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        out.append((year, month))
    return out[::-1]


async def _ledger_sales(conn: AsyncConnection, payable: str,
                        months: Iterable[tuple[int, int]]) -> dict[tuple[int, int], int]:
    months = list(months)
    if not months or await ledger.find_account(conn, payable) is None:
        return {}
    first = dt.date(months[0][0], months[0][1], 1)
    last_y, last_m = months[-1]
    end = dt.date(last_y + (last_m == 12), last_m % 12 + 1, 1) - dt.timedelta(days=1)
    # the statement is by booking time and captures may be booked after their value
    # date: read everything booked since the first month, then the value date decides
    stmt = await ledger.statement(conn, payable, first, max(end, utcnow().date()))
    out: dict[tuple[int, int], int] = {}
    wanted = set(months)
    for line in stmt.lines:
        if line.kind == "payment.capture" and line.amount < 0:
            key = _month(line.effective_date)
            if key in wanted:
                out[key] = out.get(key, 0) - line.amount
    return out


async def borrower_data(conn: AsyncConnection, borrower_id: str, on: dt.date,
                        config: LendingConfig) -> BorrowerData:
    """Everything the credit line and underwriting rules read, as of `on`."""
    borrower = await get_borrower(conn, borrower_id)
    months = _previous_months(on, config.underwriting.line.sales_months)
    receivables = (await payable_origins(conn, borrower.payable_account)
                   ).unsettled_receivables_minor

    imported: dict[str, dict[tuple[int, int], int]] = {"sale": {}, "return": {}}
    by_buyer: dict[str, int] = {}
    rows = await conn.execute(
        sa.select(trade_records.c.kind, trade_records.c.record_date, trade_records.c.buyer_ref,
                  trade_records.c.amount_minor)
        .where(trade_records.c.borrower_id == borrower_id,
               trade_records.c.record_date <= on)
    )
    po_from = on - dt.timedelta(days=_PO_WINDOW_DAYS)
    for r in rows:
        if r.kind == "purchase_order":
            if r.record_date >= po_from:
                buyer = r.buyer_ref or "(unknown buyer)"
                by_buyer[buyer] = by_buyer.get(buyer, 0) + r.amount_minor
        else:
            key = _month(r.record_date)
            imported[r.kind][key] = imported[r.kind].get(key, 0) + r.amount_minor

    from_ledger = await _ledger_sales(conn, borrower.payable_account, months)
    sales: list[int] = []
    returns: list[int] = []
    for m in months:
        if m in imported["sale"] or m in from_ledger:
            sales.append(imported["sale"].get(m, from_ledger.get(m, 0)))
            returns.append(imported["return"].get(m, 0))
        elif sales:  # a gap after the first month with data is a month without sales
            sales.append(0)
            returns.append(imported["return"].get(m, 0))

    running = [s.value for s in RUNNING]
    history = (await conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.max(loans.c.max_dpd), 0),
            sa.func.count().filter(loans.c.status.in_(("overdue", "written_off"))),
            # an approved loan not yet drawn is reserved against the line
            sa.func.coalesce(sa.func.sum(sa.case(
                (loans.c.status.in_(running),
                 loans.c.amount_minor - loans.c.principal_repaid_minor),
                (loans.c.status == "approved", loans.c.amount_minor),
                else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case(
                (loans.c.status.in_(running),
                 loans.c.interest_accrued_minor - loans.c.interest_paid_minor),
                else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case(
                (loans.c.status.in_(running),
                 loans.c.penalty_accrued_minor - loans.c.penalty_paid_minor
                 + loans.c.fees_charged_minor - loans.c.fees_paid_minor),
                else_=0)), 0),
        ).where(loans.c.borrower_id == borrower_id)
    )).one()
    # ledger figures are live; imported ones are as fresh as the last import
    data_as_of = borrower.data_imported_on or borrower.onboarded_on
    return BorrowerData(
        borrower_id=borrower_id,
        currency=borrower.currency,
        data_as_of=min(data_as_of, on),
        unsettled_receivables_minor=max(0, receivables),
        receivables_by_buyer=by_buyer,
        monthly_settled_sales_minor=tuple(sales),
        monthly_returns_minor=tuple(returns) if any(returns) else (),
        tenure_months=borrower.tenure_months(on),
        max_days_overdue=int(history[0]),
        overdue_loans_now=int(history[1]),
        outstanding_principal_minor=int(history[2]),
        outstanding_interest_minor=int(history[3]),
        outstanding_fees_minor=int(history[4]),
        borrower_cap_minor=borrower.credit_cap_minor,
    )
