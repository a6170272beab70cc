"""Supply-chain finance: borrowers, applications, decisions, loans, accrual, settlement.

    paycore borrowers register|import|line|list
    paycore loans apply|queue|decide|disburse|extend|repay|write-off|recover|statement|portfolio
    paycore accrue --through DATE       (the daily accrual run, with a progress bar)
    paycore settle [--id ID] [--on DATE] (the supplier settlement run: offset, then payout)
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from moneyed import Money

import ledger
from paycore.amounts import known_currency, money_of
from paycore.commands.actor import actor_option
from paycore.runner import command_group, console, errors, in_transaction, read_only, run

# The domains are imported inside each command that uses them (#18 §5: `paycore --help`
# and `paycore balance` import none); a new command imports its own.
if TYPE_CHECKING:
    from rich.table import Table
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    import lending
    from lending import LendingConfig
    from paycore import settlement

    #: the lending configuration the commands use (read through `config()`)
    CONFIG: LendingConfig


def config() -> LendingConfig:
    """The lending configuration the commands use: `CONFIG` if a deployment or a test set
    one on this module, else lending's DEFAULT_CONFIG. Read when a command runs, not when
    this module is imported: importing lending (every loan module) cost every `paycore`
    call, `--help` too."""
    configured: LendingConfig | None = globals().get("CONFIG")
    if configured is not None:
        return configured
    from lending import DEFAULT_CONFIG

    return DEFAULT_CONFIG


def __getattr__(name: str) -> Any:
    # `from paycore.commands.lending import CONFIG` (jobs, disbursement, tests) reads it so
    if name == "CONFIG":
        return config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

borrowers_app = command_group("Borrowers (suppliers, merchants) and their data.")
loans_app = command_group("Loan applications, the manual review queue, loans.")


def _date(value: str | None, what: str = "date") -> dt.date:
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{what} {value!r} is not a date (YYYY-MM-DD)") from None


def _money(value: str, currency: str) -> Money:
    """An amount typed on the command line, read by the API's rule (paycore.amounts): the
    same refusal, in the same words, as a request with that amount gets."""
    try:
        return money_of(value, currency)
    except ledger.LedgerError as exc:
        raise typer.BadParameter(str(exc)) from None


def amt(units: int, currency: str) -> str:
    import lending

    return lending.format_minor(units, currency)


# -- borrowers ---------------------------------------------------------------------------


@borrowers_app.command("register")
def borrowers_register(
    borrower_id: str, name: str,
    currency: str = typer.Option("CNY"),
    onboarded: str = typer.Option(..., help="on the marketplace since (YYYY-MM-DD)"),
    kind: str = typer.Option("supplier", help="supplier or merchant"),
    cap: str | None = typer.Option(None, help="a cap on the credit line"),
) -> None:
    """Register a borrower (opens their supplier payable if it does not exist). Loan
    proceeds paid out go to the borrower's verified account in the register: 'paycore
    beneficiaries add <borrower id>', verified by a second person."""
    import lending

    try:
        known_currency(currency.upper())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    cap_units = None if cap is None else lending.from_money(_money(cap, currency.upper()))
    b = lending.Borrower(borrower_id, name, currency.upper(), _date(onboarded, "onboarded"),
                         kind=kind, credit_cap_minor=cap_units)
    saved = in_transaction(lambda conn: lending.register_borrower(conn, b, config()))
    console.print(f"borrower {saved.id} ({saved.name}), payable {saved.payable_account}")


@borrowers_app.command("import")
def borrowers_import(path: Path, on: str | None = typer.Option(None, help="import date")) -> None:
    """Import purchase orders, returns and settled sales from a CSV file
    (borrower_id,kind,ref,date,buyer,amount,currency); re-importing adds nothing."""
    import lending

    day = _date(on)
    try:
        batches = lending.parse_trade_csv(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    except lending.LendingError as exc:
        raise typer.BadParameter(f"{path}: {exc}") from None

    async def go(conn: AsyncConnection) -> dict[str, int]:
        return {b: await lending.import_trade_records(conn, b, rows, day, source="csv")
                for b, rows in batches.items()}
    for borrower, n in in_transaction(go).items():
        console.print(f"{borrower}: {n} new record(s)")


@borrowers_app.command("list")
def borrowers_list() -> None:
    """Borrowers with tenure and data freshness."""
    from rich.table import Table  # rich loads with the commands that print tables

    import lending

    rows = read_only(lending.list_borrowers)
    table = Table("id", "name", "kind", "cur", "on since", "payable", "data imported")
    for b in rows:
        table.add_row(b.id, b.name, b.kind, b.currency, str(b.onboarded_on), b.payable_account,
                      str(b.data_imported_on or "never"))
    console.print(table)


@borrowers_app.command("line")
def borrowers_line(borrower_id: str, product: str = typer.Option("supply_chain"),
                   on: str | None = typer.Option(None)) -> None:
    """The credit line recomputed from the borrower's data now, step by step: the limit,
    the exposure counted against it and what a new loan may still draw (the same figures
    `loans apply`, an officer's approval and `loans disburse` are checked against)."""
    import lending

    day = _date(on)
    line = read_only(lambda conn: lending.current_credit_line(conn, borrower_id, product, day,
                                                               config()))
    for step in line.explain():
        console.print(f"  {step}")
    console.print(f"[bold]line {amt(line.limit_minor, line.currency)}, exposure "
                  f"{amt(line.outstanding_minor, line.currency)}, available "
                  f"{amt(line.available_minor, line.currency)}[/bold]")


# -- applications and the review queue ----------------------------------------------------


def _print_decision(result: lending.ApplicationResult) -> None:
    d = result.decision
    colour = {"approve": "green", "decline": "red"}.get(d.outcome.value, "yellow")
    console.print(f"loan {result.loan.id}: [{colour}]{d.outcome.value}[/{colour}] "
                  f"(policy {d.policy_version})")
    for r in d.reasons:
        console.print(f"  - {r.code} ({r.effect.value}): {r.message}")


@loans_app.command("apply")
def loans_apply(
    borrower_id: str, amount: str, term_days: int,
    product: str = typer.Option("supply_chain"),
    on: str | None = typer.Option(None, help="application date"),
    loan_id: str | None = typer.Option(None, "--id"),
    as_: str = actor_option("risk"),
) -> None:
    """Apply for a loan on a borrower's behalf; the automatic decision and its reasons are
    printed (and stored). The applicant is a proved risk staff user: whoever applies
    cannot also decide the application if underwriting queues it (four eyes)."""
    import lending
    from paycore.commands.actor import authenticated_actor

    day = _date(on)
    applicant = authenticated_actor(as_, area="risk")

    async def go(conn: AsyncConnection) -> lending.ApplicationResult:
        # the product as it stands on the day (defined at run time or built in): an
        # unknown or retired one is refused like any other bad input
        prod = await lending.product_for_new_loan(conn, product, day, config())
        request = lending.LoanApplication(borrower_id, product, _money(amount, prod.currency),
                                          term_days, day, loan_id=loan_id or "",
                                          applied_by=applicant)
        return await lending.apply_for_loan(conn, request, config())
    _print_decision(in_transaction(go))


@loans_app.command("queue")
def loans_queue() -> None:
    """Applications waiting in the manual review queue, with why they are there."""
    from rich.table import Table  # rich loads with the commands that print tables

    import lending

    async def go(conn: AsyncConnection) -> list[tuple[lending.LoanRecord, list[str]]]:
        out = []
        for rec in await lending.review_queue(conn, config()):
            stored = await lending.decisions_for(conn, rec.id)
            out.append((rec, [r["message"] for r in stored[-1].reasons
                              if r["effect"] == "manual_review"] if stored else []))
        return out
    table = Table("loan", "borrower", "product", "amount", "days", "applied", "why")
    for rec, why in read_only(go):
        table.add_row(rec.id, rec.loan.borrower_id, rec.loan.product.code,
                      amt(rec.loan.amount_minor, rec.currency), str(rec.loan.term_days),
                      str(rec.loan.applied_on), "\n".join(why))
    console.print(table)


@loans_app.command("decide")
def loans_decide(
    loan_id: str,
    outcome: str = typer.Argument(..., help="approve or decline"),
    comment: str = typer.Option(..., help="the officer's reason (stored)"),
    officer: str = typer.Option(..., "--as", "--officer",
                                help="who decides: a console staff user of the risk "
                                "role, who gives their password (prompted without echo, "
                                "or PAYCORE_STAFF_PASSWORD)"),
    amount: str | None = typer.Option(None, help="approve a smaller amount"),
    on: str | None = typer.Option(None),
) -> None:
    """A risk officer approves or declines a queued application, with a comment."""
    import lending

    if outcome not in ("approve", "decline"):
        raise typer.BadParameter("approve or decline")
    from paycore.commands.actor import authenticated_actor

    # an approval stands in for the payout's approval at disbursement: the officer is a
    # proved person of the risk team, as in the console, never a name typed on trust
    actor = authenticated_actor(officer, area="risk")

    async def go(conn: AsyncConnection) -> lending.LoanRecord:
        rec = await lending.load_loan(conn, loan_id, config())
        money = None if amount is None else _money(amount, rec.currency)
        return await lending.review(conn, loan_id, officer=actor,
                                    approve=outcome == "approve", comment=comment,
                                    on=_date(on), config=config(), amount=money)
    rec = in_transaction(go)
    console.print(f"loan {rec.id} is now {rec.status.value}")


@loans_app.command("decisions")
def loans_decisions(loan_id: str,
                    inputs: bool = typer.Option(False, help="print the stored inputs (JSON)")
                    ) -> None:
    """The audit trail of a loan's underwriting: every decision, who made it, the reasons
    and (with --inputs) every input it was made from."""
    import json

    import lending

    for d in read_only(lambda conn: lending.decisions_for(conn, loan_id)):
        console.print(f"[bold]{d.decided_on} {d.outcome.value}[/bold] by {d.decided_by} "
                      f"(policy {d.policy_version})" + (f": {d.comment}" if d.comment else ""))
        for r in d.reasons:
            console.print(f"  - {r['code']} ({r['effect']}): {r['message']}")
        if inputs:
            console.print_json(json.dumps(d.inputs))


# -- loans -------------------------------------------------------------------------------


@loans_app.command("disburse")
def loans_disburse(loan_id: str, on: str | None = typer.Option(None),
                   mode: Annotated[str | None, typer.Option(
                       metavar="[balance|payout]",
                       help="balance (the borrower's marketplace balance) or payout (paid out "
                       "at once); default: the configuration's")] = None) -> None:
    """Disburse an approved loan to the supplier's balance or by a payout."""
    from lending import DisbursementMode
    from paycore import disbursement

    try:
        chosen = DisbursementMode(mode) if mode is not None else None
    except ValueError:
        raise typer.BadParameter(f"{mode!r} is not one of {', '.join(DisbursementMode)}",
                                 param_hint="--mode") from None

    res = in_transaction(lambda conn: disbursement.disburse(conn, loan_id, _date(on), config(),
                                                            mode=chosen))
    d = res.disbursement
    console.print(f"loan {loan_id} {res.loan.status.value}: {amt(d.net_minor, res.loan.currency)}"
                  f" to {d.payable_account}, matures {res.loan.loan.maturity}"
                  + (f"; payout {res.payout.id} requested" if res.payout else ""))


@loans_app.command("extend")
def loans_extend(loan_id: str, on: str | None = typer.Option(None)) -> None:
    """Extend a loan once by the product's extension days (before maturity)."""
    import lending

    rec = in_transaction(lambda conn: lending.extend_loan(conn, loan_id, _date(on), config()))
    console.print(f"loan {loan_id} extended: matures {rec.loan.maturity}")


@loans_app.command("repay")
def loans_repay(loan_id: str, amount: str, on: str | None = typer.Option(None),
                source: str = typer.Option("bank", help="bank or offset"),
                repayment_id: str | None = typer.Option(None, "--id")) -> None:
    """Repay by bank transfer or by offset against the supplier payable (waterfall)."""
    import lending

    async def go(conn: AsyncConnection) -> lending.Repayment:
        rec = await lending.load_loan(conn, loan_id, config())
        return await lending.repay_loan(conn, loan_id, _money(amount, rec.currency), _date(on),
                                        config(), repayment_id=repayment_id or uuid.uuid4().hex,
                                        source=source)
    rep = in_transaction(go)
    cur = rep.loan.currency
    for line in rep.allocation.lines:
        if line.applied_minor:
            console.print(f"  {line.bucket.value:<20} {amt(line.applied_minor, cur):>20}")
    if rep.allocation.excess_minor:
        console.print(f"  {'overpayment':<20} {amt(rep.allocation.excess_minor, cur):>20}")
    console.print(f"loan {loan_id} is {rep.loan.status.value}; outstanding "
                  f"{amt(rep.loan.total_outstanding_minor, cur)}")


@loans_app.command("write-off")
def loans_write_off(loan_id: str,
                    note: str = typer.Option(..., help="why (stored with the write-off)"),
                    as_: str = actor_option("risk"),
                    on: str | None = typer.Option(None)) -> None:
    """Write an overdue loan off to loan losses: a risk staff user's decision."""
    import lending
    from paycore.commands.actor import authenticated_user, record_decision

    day = _date(on)
    # what a borrower still owes leaves the books: a proved person of the risk team decides
    user = authenticated_user(as_, area="risk")

    async def go(conn: AsyncConnection) -> lending.LoanRecord:
        rec = await lending.write_off_loan(conn, loan_id, day, config(), note=note,
                                           actor=user.actor)
        await record_decision(conn, user, action="loan.write_off", subject=f"loan:{loan_id}",
                              reason=note, details={"written_off_minor": rec.written_off_minor,
                                                    "currency": rec.currency, "on": str(day)})
        return rec
    rec = in_transaction(go)
    console.print(f"loan {loan_id} written off: {amt(rec.written_off_minor, rec.currency)}")


@loans_app.command("recover")
def loans_recover(loan_id: str, amount: str, on: str | None = typer.Option(None),
                  recovery_id: str | None = typer.Option(None, "--id")) -> None:
    """Book money received on a written-off loan as a recovery."""
    import lending

    async def go(conn: AsyncConnection) -> lending.LoanRecord:
        rec = await lending.load_loan(conn, loan_id, config())
        return await lending.recover_loan(conn, loan_id, _money(amount, rec.currency),
                                          _date(on), config(),
                                          recovery_id=recovery_id or uuid.uuid4().hex)
    rec = in_transaction(go)
    console.print(f"loan {loan_id} {rec.status.value}: {amt(rec.recovered_minor, rec.currency)}")


@loans_app.command("refund-overpayment")
def loans_refund_overpayment(
    loan_id: str, amount: str,
    as_: str = actor_option("finance", extra=" (the payout's requester, whom four eyes compare "
                            "with its approver)"),
    account: str | None = typer.Option(None, help="the borrower's account in the register "
                                       "(default: their longest-verified usable one)"),
    on: str | None = typer.Option(None),
    move_id: str | None = typer.Option(None, "--id", help="idempotency key of the refund"),
) -> None:
    """Refund a loan's overpayment (held in 2203) to the borrower's verified bank account,
    by a supplier payout (a second person approves it above the payout threshold)."""
    import lending
    from paycore.commands.actor import authenticated_actor
    from paycore.overpayments import refund_overpayment

    day = _date(on)
    # the requester four eyes compare with the approver: proven, not claimed
    actor = authenticated_actor(as_, area="finance")  # money leaves: finance staff

    async def go(conn: AsyncConnection) -> tuple[lending.LoanRecord, str, str]:
        rec = await lending.load_loan(conn, loan_id, config())
        res = await refund_overpayment(conn, loan_id, _money(amount, rec.currency), day,
                                       config(), move_id=move_id or uuid.uuid4().hex, actor=actor,
                                       account_id=account)
        return res.move.loan, res.payout.id, res.payout.status.value
    rec, payout_id, status = in_transaction(go)
    console.print(f"loan {loan_id}: refund payout {payout_id} ({status}); overpayment still "
                  f"held {amt(rec.overpaid_minor, rec.currency)}")


@loans_app.command("apply-overpayment")
def loans_apply_overpayment(
    loan_id: str, target_loan_id: str, amount: str,
    as_: str = actor_option("finance"),
    on: str | None = typer.Option(None),
    move_id: str | None = typer.Option(None, "--id", help="idempotency key of the move"),
) -> None:
    """Apply a loan's overpayment to another loan of the same borrower (a repayment of that
    loan by its waterfall). A finance (or controller) staff user moves it."""
    import lending
    from paycore.commands.actor import authenticated_user, record_decision

    day = _date(on)
    user = authenticated_user(as_, area="finance")
    key = move_id or uuid.uuid4().hex

    async def go(conn: AsyncConnection) -> lending.OverpaymentMove:
        rec = await lending.load_loan(conn, loan_id, config())
        move = await lending.apply_overpayment(conn, loan_id, target_loan_id,
                                               _money(amount, rec.currency), day, config(),
                                               move_id=key, actor=user.actor)
        if not move.replayed:
            await record_decision(conn, user, action="overpayment.apply",
                                  subject=f"loan:{loan_id}", reason="",
                                  details={"target_loan_id": target_loan_id,
                                           "amount_minor": move.amount_minor,
                                           "currency": move.loan.currency, "move_id": key,
                                           "value_date": str(day)})
        return move
    move = in_transaction(go)
    target = move.repayment.loan if move.repayment else None
    console.print(f"loan {loan_id}: {amt(move.amount_minor, move.loan.currency)} applied to "
                  f"{target_loan_id}" + (f" (now {target.status.value})" if target else ""))


@loans_app.command("correct-disbursement")
def loans_correct_disbursement(
    loan_id: str,
    value_date: str = typer.Option(..., "--value-date", help="the day the bank paid it out"),
    reason: str = typer.Option(..., help="why (stored with the correction)"),
    as_: str = actor_option("finance"),
) -> None:
    """The bank paid the loan out on another day than it was booked: its accruals are
    reversed, its disbursement re-dated, its maturity counted again and its interest
    re-accrued (all new entries; the statement's history says why). A finance (or
    controller) staff user corrects it."""
    import lending
    from paycore.commands.actor import authenticated_user, record_decision

    day = _date(value_date, "--value-date")
    user = authenticated_user(as_, area="finance")  # it changes what the borrower owes

    async def go(conn: AsyncConnection) -> lending.LoanRecord:
        rec = await lending.correct_disbursement_date(conn, loan_id, day, reason=reason,
                                                      config=config())
        await record_decision(conn, user, action="loan.correct_disbursement",
                              subject=f"loan:{loan_id}", reason=reason,
                              details={"value_date": str(day)})
        return rec
    rec = in_transaction(go)
    console.print(f"loan {loan_id}: disbursed {rec.loan.disbursed_on}, matures "
                  f"{rec.loan.maturity}; interest accrued "
                  f"{amt(rec.interest_accrued_minor, rec.currency)}")


def statement_table(st: lending.LoanStatement) -> Table:
    from rich.table import Table  # rich loads with the commands that print tables

    import lending

    rec, cur = st.loan, st.loan.currency
    loan = rec.loan
    table = Table(title=f"Loan {rec.id} — {loan.borrower_id}, {loan.product.name}",
                  title_justify="left", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    rows = [
        ("status", f"{rec.status.value} ({st.bucket})"),
        ("principal", amt(loan.amount_minor, cur)),
        ("product", f"{loan.product.code} v{loan.product.version}"),
        ("disbursed / maturity", f"{loan.disbursed_on or '-'} / {loan.maturity or '-'}"),
        ("extensions", str(loan.extensions)),
        ("days of interest accrued", str(st.days_accrued)),
        ("days to maturity" if (st.days_to_maturity or 0) >= 0 else "days past due",
         str(abs(st.days_to_maturity)) if st.days_to_maturity is not None else "-"),
        ("principal repaid / outstanding", f"{amt(rec.principal_repaid_minor, cur)} / "
         f"{amt(rec.principal_outstanding_minor, cur)}"),
        ("interest accrued / paid", f"{amt(rec.interest_accrued_minor, cur)} / "
         f"{amt(rec.interest_paid_minor, cur)}"),
        ("penalty accrued / paid", f"{amt(rec.penalty_accrued_minor, cur)} / "
         f"{amt(rec.penalty_paid_minor, cur)}"),
        ("fees charged / paid", f"{amt(rec.fees_charged_minor, cur)} / "
         f"{amt(rec.fees_paid_minor, cur)}"),
        ("interest to maturity", amt(st.interest_to_maturity_minor, cur)),
        ("next due", f"{amt(st.due_at_maturity_minor, cur)} on {loan.maturity}"
         if rec.status in lending.RUNNING else "-"),
    ]
    if loan.contractual_maturity and loan.contractual_maturity != loan.maturity:
        rows.insert(3, ("rolled from", f"{loan.contractual_maturity} "
                        f"({loan.product.maturity_roll.value}, {loan.product.calendar_market} "
                        "closed)"))
    if rec.overpaid_minor:
        rows.append(("overpaid (held)", amt(rec.overpaid_minor, cur)))
    if rec.written_off_minor:
        rows.append(("written off / recovered", f"{amt(rec.written_off_minor, cur)} / "
                     f"{amt(rec.recovered_minor, cur)}"))
    for k, v in rows:
        table.add_row(k, v)
    return table


@loans_app.command("statement")
def loans_statement(loan_id: str, on: str | None = typer.Option(None)) -> None:
    """The loan's statement and schedule: principal, interest accrued and paid, days,
    next due, repayments and status history."""
    from rich.table import Table  # rich loads with the commands that print tables

    import lending

    st = read_only(lambda conn: lending.loan_statement(conn, loan_id, _date(on), config()))
    console.print(statement_table(st))
    cur = st.loan.currency
    if st.repayments:
        t = Table("paid on", "source", "amount", "penalty", "fees", "interest", "principal",
                  "excess", title="Repayments", title_justify="left")
        for r in st.repayments:
            t.add_row(str(r.paid_on), r.source, amt(r.amount_minor, cur), amt(r.penalty_minor, cur),
                      amt(r.fees_minor, cur), amt(r.interest_minor, cur),
                      amt(r.principal_minor, cur), amt(r.excess_minor, cur))
        console.print(t)
    t = Table("on", "from", "to", "by", "note", title="History", title_justify="left")
    for e in st.events:
        t.add_row(str(e.event_on), e.from_status or "", e.to_status, e.actor, e.note)
    console.print(t)


def portfolio_table(report: dict[str, list[lending.PortfolioRow]], on: dt.date) -> Table:
    from rich.table import Table  # rich loads with the commands that print tables

    table = Table("cur", "bucket", "loans", "principal", "interest", "penalty", "fees", "total",
                  title=f"Loan portfolio on {on} (outstanding by days past due)",
                  title_justify="left")
    for cur, rows in sorted(report.items()):
        for r in rows:
            table.add_row(cur, r.bucket, str(r.loans), amt(r.principal_minor, cur),
                          amt(r.interest_minor, cur), amt(r.penalty_minor, cur),
                          amt(r.fees_minor, cur), amt(r.total_minor, cur))
    return table


@loans_app.command("portfolio")
def loans_portfolio(on: str | None = typer.Option(None)) -> None:
    """Outstanding by days-past-due bucket, and the check against the ledger."""
    import lending

    day = _date(on)

    async def go(conn: AsyncConnection) -> tuple[dict[str, list[lending.PortfolioRow]],
                                                 lending.LedgerCheck]:
        return (await lending.portfolio_report(conn, day, config()),
                await lending.reconcile_with_ledger(conn, config()))
    report, check = read_only(go)
    console.print(portfolio_table(report, day))
    console.print("loan book = ledger: " + ("[green]yes[/green]" if check.ok
                                            else f"[red]NO[/red] {check.differences}"))


# -- the runs ----------------------------------------------------------------------------


def accrue(through: str = typer.Option(..., help="accrue loan-days up to this date"),
           batch: int = typer.Option(2000, help="loans per transaction")) -> None:
    """The daily accrual run: interest (and penalty when overdue) for every running loan,
    idempotent per loan-day, catching up missed days."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    import lending

    day = _date(through, "--through")
    with Progress(TextColumn("accruing"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("accrual", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        async def accrue_all(engine: AsyncEngine) -> lending.AccrualRunResult:
            from paycore.disbursement import unwind_returned_disbursements

            # a loan whose proceeds came back earns nothing: unwound before the night's
            # interest, as the worker's accrual job does
            await ledger.transact(engine, lambda conn: unwind_returned_disbursements(
                conn, config=config()))
            return await lending.run_accrual(engine, day, config(), batch_size=batch,
                                             progress=progress)

        result = run(accrue_all, quiet=True)
    console.print(f"accrued through {day}: {result.loans} loan(s), {result.entries} entries; "
                  f"interest {result.interest_minor:,}, penalty {result.penalty_minor:,} "
                  f"(minor units); {result.marked_overdue} loan(s) became overdue")


def settle(settlement_id: str | None = typer.Option(None, "--id", help="the settlement id "
                                                    "(default: settle-<date>)"),
           on: str | None = typer.Option(None),
           supplier: Annotated[list[str] | None,
                               typer.Option(help="only these suppliers")] = None) -> None:
    """The supplier settlement run: each supplier's payable first repays their loans (one
    offset entry), the rest is paid out; running the same settlement again posts nothing."""
    from rich.table import Table  # rich loads with the commands that print tables

    from paycore import settlement

    day = _date(on)
    sid = settlement_id or f"settle-{day.isoformat()}"

    from paycore.payout_controls import controls_from_env  # imports gateways: only here

    async def go(engine: AsyncEngine) -> settlement.SettlementRun:
        return await settlement.run_settlement(engine, sid, day, config(),
                                               suppliers=supplier or None,
                                               controls=controls_from_env())
    result = run(go)
    table = Table("supplier", "available", "loan offset", "payout", "payout id", "note",
                  title=f"Settlement {sid} on {day}", title_justify="left")
    for s in result.suppliers:
        if s.failed:  # nothing of theirs was written: no amounts to show
            table.add_row(s.supplier_id, "", "", "", "", s.note)
            continue
        table.add_row(s.supplier_id, amt(s.available_minor, s.currency),
                      amt(s.offset_minor, s.currency), amt(s.payout_minor, s.currency),
                      s.payout_id or "", ("replayed: " if s.replayed else "") + s.note)
    console.print(table)
    if result.failed:
        errors.print(f"[red]{len(result.failed)} supplier(s) not settled[/red] (see the notes); "
                     f"run `paycore settle --id {sid}` again: it posts nothing new for the others")
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.add_typer(borrowers_app, name="borrowers")
    app.add_typer(loans_app, name="loans")
    app.command("accrue")(accrue)
    app.command("settle")(settle)
