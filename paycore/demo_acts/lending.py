"""Act 3: supply-chain finance — credit lines, loans, daily accrual, settlement offset.

Fifty days are told in order, ending today (`ctx.day`); every entry carries its own value
date, and the accrual run goes day by day (as the nightly job would):

* a supplier with receivables (from checkout if it left one in `ctx.shared["suppliers"]`,
  else sup-001, whose payable act 1 credited) applies, is approved automatically (the
  reasons are shown), draws a 30-day loan paid out through a gateways payout; today's
  settlement run repays it by offset from their payable and pays the rest out;
* a second supplier's application goes to the manual review queue (a sales spike) and a
  risk officer approves it with a comment;
* a third supplier's loan is extended once (a second extension is refused) and repaid by
  bank transfer; their other loan goes overdue and accrues penalty;
* the risk team defines a product at run time; a loan under it would mature on a day the
  market is closed and is due on the next business day; a repayment value-dated three days
  back arrives with this morning's statement and the days after it are reversed and
  re-accrued; an overpayment is refunded to the borrower's verified account by a payout.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from moneyed import Money
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
import lending
from lending import DEFAULT_CONFIG, Borrower, DisbursementMode, LoanApplication, TradeRecord
from paycore import disbursement, settlement
from paycore.commands.lending import portfolio_table
from paycore.demo_acts.context import DemoContext

CONFIG = DEFAULT_CONFIG
CLEARING = "1102.clearing.icbc"


def cny(value: str) -> Money:
    return Money(Decimal(value), "CNY")


def _supplier_from(shared: dict[str, Any]) -> str:
    """The first supplier the checkout act handed over, whatever shape it used."""
    found = shared.get("suppliers")
    if not found:
        return "sup-001"
    first = next(iter(found))
    if isinstance(found, dict) and not isinstance(first, str):
        first = found[first]
    if isinstance(first, str):
        return first
    for attr in ("supplier_id", "id"):
        value = getattr(first, attr, None) or (first.get(attr) if isinstance(first, dict) else None)
        if isinstance(value, str):
            return value
    return "sup-001"


def _months_before(day: dt.date, n: int) -> list[dt.date]:
    """The 15th of each of the `n` full months before `day`'s month, oldest first."""
    out, year, month = [], day.year, day.month
    for _ in range(n):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        out.append(dt.date(year, month, 15))
    return out[::-1]


async def _borrower(conn: AsyncConnection, supplier: str, on: dt.date, sales: list[str],
                    months: list[dt.date]) -> Borrower:
    account = await ledger.find_account(conn, f"2202.payable.{supplier}")
    name = account.name.removeprefix("Payable to ") if account else f"Supplier {supplier}"
    borrower = await lending.register_borrower(conn, Borrower(
        supplier, name, "CNY", onboarded_on=on - dt.timedelta(days=800)), CONFIG)
    records = [TradeRecord("sale", f"sales-{m:%Y-%m}", m, cny(v))
               for m, v in zip(months, sales, strict=True)]
    records += [TradeRecord("purchase_order", f"po-{supplier}-{i}", on - dt.timedelta(days=3 * i),
                            cny("18000.00"), buyer_ref=f"buyer-{i % 4}") for i in range(8)]
    records.append(TradeRecord("return", f"ret-{supplier}-1", months[-1], cny("2400.00")))
    await lending.import_trade_records(conn, supplier, records, on)
    return borrower


async def _feed(conn: AsyncConnection, supplier: str, on: dt.date) -> None:
    """The day's purchase-order feed: keeps the borrower's data fresh."""
    await lending.import_trade_records(conn, supplier, [TradeRecord(
        "purchase_order", f"po-{supplier}-{on.isoformat()}", on, cny("12000.00"),
        buyer_ref=f"buyer-{on.toordinal() % 4}")], on)


async def _capture(conn: AsyncConnection, supplier: str, order: str, amount: str,
                   on: dt.date) -> None:
    """A sale collected for the supplier (booked by hand, as in act 1)."""
    gross = Decimal(amount)
    fee = (gross * Decimal("0.03")).quantize(Decimal("0.01"))
    await ledger.ensure_account(conn, ledger.AccountSpec(
        CLEARING, "ICBC gateway clearing", ledger.AccountType.ASSET, "CNY"))
    await ledger.ensure_account(conn, ledger.AccountSpec(
        "6001.income.commission", "Marketplace commission", ledger.AccountType.INCOME, "CNY"))
    await ledger.post(conn, ledger.EntryRequest(
        f"capture:{order}", "payment.capture", effective_date=on, external_ref=order,
        description=f"Order {order} paid", postings=[
            ledger.Posting(CLEARING, debit=cny(amount)),
            ledger.Posting(f"2202.payable.{supplier}", credit=Money(gross - fee, "CNY")),
            ledger.Posting("6001.income.commission", credit=Money(fee, "CNY")),
        ]))


def _amt(units: int) -> str:
    return lending.format_minor(units, "CNY")


async def run(ctx: DemoContext) -> None:
    engine, console, today = ctx.engine, ctx.console, ctx.day
    step = ctx.step
    sup_a = _supplier_from(ctx.shared)
    sup_b, sup_c = "sup-002", "sup-003"
    if sup_a in (sup_b, sup_c):
        sup_b, sup_c = "sup-004", "sup-005"

    def day(n: int) -> dt.date:
        return today + dt.timedelta(days=n)

    step("Lending: borrowers and the data a credit line is made of")
    # nine steady months before this one; the spiking supplier's last month before its
    # application is five times its usual
    steady = ["92000.00", "95000.00", "101000.00", "98000.00", "104000.00", "99000.00",
              "97000.00", "103000.00", "100000.00"]
    spike = ["30000.00", "28000.00", "31000.00", "29000.00", "33000.00", "160000.00"]
    await lending.open_books(engine, CONFIG)
    async with engine.begin() as conn:
        for sup, sales, months in ((sup_a, steady, _months_before(today, 9)),
                                   (sup_b, spike, _months_before(day(-3), 6)),
                                   (sup_c, steady, _months_before(today, 9))):
            b = await _borrower(conn, sup, day(-50), sales, months)
            console.print(f"  {b.id} {b.name}: on the marketplace "
                          f"{b.tenure_months(today)} months; monthly settled sales, "
                          "8 purchase orders and a return imported")
    async with engine.connect() as conn:
        line = await lending.current_credit_line(conn, sup_a, "supply_chain", day(-50), CONFIG)
    console.print(f"  credit line of {sup_a}, recomputed from that data:")
    for text in line.explain():
        console.print(f"    {text}")

    step("Fifty days of loans, one nightly accrual run per day")
    loans: dict[str, str] = {"A": f"loan-{sup_a}-a", "B": f"loan-{sup_b}-b",
                             "C": f"loan-{sup_c}-c", "D": f"loan-{sup_c}-d"}
    entries = 0
    for n in range(-50, 1):
        d = day(n)
        async with engine.begin() as conn:
            applying = {-50: sup_c, -45: sup_c, -30: sup_a, -3: sup_b}.get(n)
            if applying:
                await _feed(conn, applying, d)
            if n == -50:
                res = await lending.apply_for_loan(conn, LoanApplication(
                    sup_c, "supply_chain", cny("20000.00"), 30, d, loan_id=loans["C"]), CONFIG)
                await lending.disburse_loan(conn, loans["C"], d, CONFIG)
                console.print(f"  {d}  {sup_c} borrows 20,000.00 for 30 days: "
                              f"{res.decision.outcome.value}; credited to their balance")
            if n == -45:
                await lending.apply_for_loan(conn, LoanApplication(
                    sup_c, "supply_chain", cny("15000.00"), 30, d, loan_id=loans["D"]), CONFIG)
                await lending.disburse_loan(conn, loans["D"], d, CONFIG)
                console.print(f"  {d}  {sup_c} borrows 15,000.00 more for 30 days")
            if n == -30:
                res = await lending.apply_for_loan(conn, LoanApplication(
                    sup_a, "supply_chain", cny("10000.00"), 30, d, loan_id=loans["A"]), CONFIG)
                console.print(f"  {d}  {sup_a} applies for 10,000.00 for 30 days: "
                              f"[green]{res.decision.outcome.value}[/green], automatically:")
                for r in res.decision.reasons:
                    console.print(f"              {r.code}: {r.message}")
                out = await disbursement.disburse(conn, loans["A"], d, CONFIG,
                                                  mode=DisbursementMode.PAYOUT)
                assert out.payout is not None
                console.print(f"              disbursed: payout {out.payout.id} of "
                              f"{out.payout.amount.amount:,} requested from "
                              f"{out.disbursement.payable_account}")
            if n == -25:
                rec = await lending.extend_loan(conn, loans["C"], d, CONFIG)
                console.print(f"  {d}  {loans['C']} extended once: matures {rec.loan.maturity} "
                              f"(fee {_amt(rec.fees_charged_minor)})")
            if n in (-12, -6, -2):
                amount = {-12: "5200.00", -6: "4800.00", -2: "3900.00"}[n]
                await _capture(conn, sup_a, f"ord-ln{-n}", amount, d)
            if n == -3:
                res = await lending.apply_for_loan(conn, LoanApplication(
                    sup_b, "supply_chain", cny("20000.00"), 45, d, loan_id=loans["B"]), CONFIG)
                console.print(f"  {d}  {sup_b} applies for 20,000.00: "
                              f"[yellow]{res.decision.outcome.value}[/yellow]")
                for r in res.decision.reasons:
                    if r.effect is lending.Outcome.MANUAL_REVIEW:
                        console.print(f"              {r.code}: {r.message}")
            if n == -2:
                rec = await lending.review(
                    conn, loans["B"], officer="risk.wang", approve=True, on=d, config=CONFIG,
                    comment="spike is the Double-11 promotion; confirmed with 3 buyers' POs")
                console.print(f"  {d}  risk officer approves {loans['B']}: {rec.status.value}, "
                              "comment stored with the decision")
        if n == -24:
            try:
                async with engine.begin() as conn:
                    await lending.extend_loan(conn, loans["C"], d, CONFIG)
            except lending.LendingError as exc:
                console.print(f"  {d}  a second extension: [red]{type(exc).__name__}[/red]")
        result = await lending.run_accrual(engine, d, CONFIG)
        entries += result.entries
        if result.marked_overdue:
            console.print(f"  {d}  accrual run: {result.marked_overdue} loan past due "
                          f"({loans['D']})")
    console.print(f"  51 nightly runs posted {entries} accrual entries; "
                  "a re-run for today posts "
                  f"{(await lending.run_accrual(engine, today, CONFIG)).entries}")

    step("Today's settlement run: the payable repays the loan first, the rest is paid out")
    async with engine.connect() as conn:
        before = await ledger.balance(conn, f"2202.payable.{sup_a}")
    console.print(f"  {sup_a} payable: posted {before.posted.amount:,}, available "
                  f"{before.available.amount:,} (the loan proceeds are on hold for their payout)")
    sid = f"settle-{today.isoformat()}"
    run_ = await settlement.run_settlement(engine, sid, today, CONFIG, suppliers=[sup_a])
    s = run_.suppliers[0]
    console.print(f"  {sid}: available {_amt(s.available_minor)} -> loan offset "
                  f"{_amt(s.offset_minor)} (repaid: {', '.join(s.loans_repaid) or 'none'}), "
                  f"payout {_amt(s.payout_minor)} ({s.payout_id})")
    again = await settlement.run_settlement(engine, sid, today, CONFIG, suppliers=[sup_a])
    console.print(f"  the same settlement again: replayed={again.suppliers[0].replayed}, "
                  "nothing posted")

    step("Repaid after an extension; overdue with penalty")
    async with engine.begin() as conn:
        rec = await lending.load_loan(conn, loans["C"], CONFIG)
        owed = rec.total_outstanding_minor
        rep = await lending.repay_loan(conn, loans["C"], lending.to_money(owed, "CNY"), today,
                                       CONFIG, repayment_id=f"bank-{loans['C']}")
    console.print(f"  {loans['C']} repaid by bank transfer: {_amt(owed)} "
                  f"({_amt(rep.loan.interest_paid_minor)} interest for 50 days, "
                  f"{_amt(rep.loan.fees_paid_minor)} extension fee) -> {rep.loan.status.value}")
    async with engine.connect() as conn:
        st = await lending.loan_statement(conn, loans["D"], today, CONFIG)
        report = await lending.portfolio_report(conn, today, CONFIG)
        check = await lending.reconcile_with_ledger(conn, CONFIG)
        income = await ledger.balance(conn, "6011.income.loan_interest.supply_chain")
        funding = CONFIG.funding
        cost = (await ledger.balance(conn, funding.interest_expense)) if funding else None
    console.print(f"  {loans['D']}: {st.loan.status.value}, {st.days_past_due} days past due "
                  f"(bucket {st.bucket}), penalty accrued {_amt(st.loan.penalty_accrued_minor)}")
    console.print(portfolio_table(report, today))
    margin = f"interest income {income.posted.amount:,}"
    if cost is not None:
        margin += f", funding cost {cost.posted.amount:,} (the bank line at the benchmark rate)"
    console.print(f"  {margin}")
    console.print("  loan book = ledger accounts: "
                  + ("[green]yes[/green]" if check.ok else f"[red]NO[/red] {check.differences}"))
    await _risk_team(ctx, sup_a, sup_c, loans)
    ctx.shared["lending"] = {"loans": loans, "settlement_id": sid}


#: the product the risk team defines in the demo, at run time (lending.catalogue)
SHORT_TERMS = {
    "name": "Short supply-chain loan", "currency": "CNY", "min_amount_minor": 100_000,
    "max_amount_minor": 20_000_000, "min_term_days": 7, "max_term_days": 60,
    "annual_rate": "0.09", "penalty_annual_rate": "0.135", "day_count": "ACT/ACT-ISDA",
    "maturity_roll": "following", "extension": {"max_extensions": 1, "days": 15},
}


async def _closed_term(conn: AsyncConnection, on: dt.date) -> tuple[int, str]:
    """A term of 7 to 60 days whose end falls on a day China's market is closed: a public
    holiday if one is that near, else a weekend."""
    cal = await lending.load_calendar(conn, "CN", {on.year, on.year + 1})
    candidates = range(7, 61)
    for term in candidates:
        end = on + dt.timedelta(days=term)
        if end in cal.holidays:
            return term, cal.why_closed(end)
    term = next(t for t in candidates if not cal.is_business_day(on + dt.timedelta(days=t)))
    return term, cal.why_closed(on + dt.timedelta(days=term))


async def _risk_team(ctx: DemoContext, sup_a: str, sup_c: str, loans: dict[str, str]) -> None:
    from paycore.demo_acts.checkout import CONTROLS
    from paycore.overpayments import refund_overpayment

    engine, console, today = ctx.engine, ctx.console, ctx.day
    ctx.step("The risk team runs lending: a product defined at run time, a holiday, late "
             "money, an overpayment")
    async with engine.begin() as conn:
        v = await lending.define_product(conn, "short_sc", SHORT_TERMS, effective_from=today,
                                         actor="user:risk.wang", reason="pilot for Q1",
                                         config=CONFIG)
    p = v.product
    # on the command line the risk officer proves who they are (a staff user's password)
    console.print(f"  $ paycore products define short_sc --file short_sc.json --as "
                  f"risk.wang --reason 'pilot for Q1'  ->  v{p.version}: {p.annual_rate} a year "
                  f"{p.day_count.value}, {p.min_term_days}-{p.max_term_days} days, maturity "
                  f"roll {p.maturity_roll.value} on the {p.calendar_market} calendar")
    async with engine.begin() as conn:
        await _feed(conn, sup_a, today)
        term, why = await _closed_term(conn, today)
        loan_id = f"loan-{sup_a}-short"
        await lending.apply_for_loan(conn, LoanApplication(
            sup_a, "short_sc", cny("5000.00"), term, today, loan_id=loan_id), CONFIG)
        rec = (await lending.disburse_loan(conn, loan_id, today, CONFIG)).loan
    console.print(f"  {loan_id}: 5,000.00 for {term} days under short_sc v{p.version}; "
                  f"start + term = {rec.loan.contractual_maturity} ({why}): due "
                  f"{rec.loan.maturity}, the next business day")

    # the bank statement of this morning: sup_c paid 5,000.00 on loan D three days ago
    d_id = loans["D"]
    async with engine.connect() as conn:
        before = await lending.load_loan(conn, d_id, CONFIG)
    value_date = today - dt.timedelta(days=3)
    async with engine.begin() as conn:
        rep = await lending.repay_loan(conn, d_id, cny("5000.00"), value_date, CONFIG,
                                       repayment_id=f"stmt-{d_id}-{value_date.isoformat()}")
        st = await lending.loan_statement(conn, d_id, today, CONFIG)
    after = rep.loan
    console.print(f"  {d_id}: 5,000.00 value-dated {value_date} arrives with today's "
                  f"statement, after accrual ran through {before.accrued_through}:")
    for e in st.events:
        if e.actor == "back-value":
            console.print(f"      {e.note}")
    console.print(f"      penalty accrued {_amt(before.penalty_accrued_minor)} -> "
                  f"{_amt(after.penalty_accrued_minor)}, interest "
                  f"{_amt(before.interest_accrued_minor)} -> "
                  f"{_amt(after.interest_accrued_minor)} (append-only: reversals and "
                  "re-accruals are new entries)")

    # sup_a pays the short loan back at once, a round 5,050.00: 50.00 too much
    async with engine.begin() as conn:
        paid = await lending.repay_loan(conn, loan_id, cny("5050.00"), today, CONFIG,
                                        repayment_id=f"bank-{loan_id}")
        excess = paid.loan.overpaid_minor
        refund = await refund_overpayment(conn, loan_id, lending.to_money(excess, "CNY"),
                                          today, CONFIG, move_id=f"refund-{loan_id}",
                                          actor="user:risk.wang", controls=CONTROLS)
    status = refund.payout.status.value
    if status == "pending_approval":
        status = "a manual payout: waiting for a second person's approval"
    console.print(f"  {loan_id} repaid with {_amt(excess)} too much (held in 2203); "
                  f"refunded to {sup_a}'s verified account: payout {refund.payout.id} "
                  f"({status}), overpayment held now {_amt(refund.move.loan.overpaid_minor)}")
    async with engine.connect() as conn:
        check = await lending.reconcile_with_ledger(conn, CONFIG)
    console.print("  loan book = ledger accounts, after all of it: "
                  + ("[green]yes[/green]" if check.ok else f"[red]NO[/red] {check.differences}"))
