"""Bank statements: import, reconcile, exceptions, report.

    paycore recon configure BANK --currency CNY [--tolerance 1.00] [--account-number IBAN]
    paycore statement import FILE --account BANK [--format camt.053] [--csv-profile P.yaml]
    paycore reconcile --account BANK --date 2026-11-22
    paycore exceptions list [--account BANK] [--status open|resolved|all] [--json]
    paycore exceptions resolve ID --as USER --reason TEXT (--match X... | --adjust ACCOUNT | --write-off)

Resolving an exception posts to the books (a match, an adjustment, a write-off): USER is a
console staff user of the finance or controller role who gives their password, as on the
console's finance pages (paycore.commands.actor).
    paycore recon report --account BANK --date 2026-11-22 [--format table|json|csv]
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from moneyed import Money

import ledger
from paycore.commands.actor import actor_option
from paycore.runner import command_group, console, in_transaction, read_only, run

# The domains are imported inside each command that uses them (#18 §5: `paycore --help`
# and `paycore balance` import none); a new command imports its own.
if TYPE_CHECKING:
    from rich.table import Table
    from sqlalchemy.ext.asyncio import AsyncConnection

    import reconciliation

statement_app = command_group("Bank statements.")
exceptions_app = command_group("The reconciliation exceptions queue.")
recon_app = command_group("Reconciliation set-up and reports.")


def _date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


def _amount(units: int | None, currency: str) -> str:
    return "-" if units is None else f"{ledger.from_minor(units, currency).amount:,}"


def _csv_profile(path: Path | None) -> reconciliation.CsvProfile | None:
    """A `CsvProfile` from a YAML or JSON file of its fields, checked field by field."""
    import yaml

    import reconciliation

    if path is None:
        return None
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{path} is not YAML: {exc}", param_hint="--csv-profile") from None
    try:
        return reconciliation.CsvProfile.from_mapping(doc, source=str(path))
    except reconciliation.InvalidCsvProfile as exc:
        raise typer.BadParameter(str(exc), param_hint="--csv-profile") from None


# -- set-up ------------------------------------------------------------------------------


def configure(
    bank: str = typer.Argument(..., help="the bank's short code, e.g. icbc"),
    currency: str = typer.Option(..., help="the account's currency"),
    tolerance: str = typer.Option("0", help="largest difference written off automatically"),
    account_number: str | None = typer.Option(None, help="the account as the bank names it"),
    date_window: int = typer.Option(3, help="days a booked item may be from the bank's date"),
    payout_clearing: str | None = typer.Option(
        None, help="the payout clearing account; default: reconciliation's, the account "
        "gateways' payouts post to"),
) -> None:
    """Configure a bank account for reconciliation (opens its ledger accounts if needed)."""
    import reconciliation

    try:
        limit = Money(Decimal(tolerance), currency.upper())
    except InvalidOperation:
        raise typer.BadParameter(f"{tolerance!r} is not an amount", param_hint="--tolerance") from None
    config = reconciliation.BankAccountConfig.for_bank(
        bank, currency, tolerance=limit, bank_account_number=account_number,
        rules=reconciliation.MatchingRules(date_window_days=date_window))
    if payout_clearing is not None:
        config = dataclasses.replace(config, payout_clearing_account=payout_clearing)
    # the accounts it opens are in the line printed below: no log lines on the terminal
    result = run(lambda engine: ledger.transact(
        engine, lambda conn: reconciliation.configure_bank_account(conn, config)), quiet=True)
    c = result.config
    console.print(f"{c.code}: {c.bank_ledger_account} against {c.clearing_account}, "
                  f"{c.payout_clearing_account}; fees {c.fee_account}; differences "
                  f"{c.differences_account}; tolerance {_amount(c.tolerance_minor, c.currency)} "
                  f"{c.currency}")


def profile(example: bool = typer.Option(False, "--example",
                                         help="print a commented profile template")) -> None:
    """CSV column profiles: `--example` prints a template with every field explained."""
    import reconciliation

    if not example:
        raise typer.BadParameter("give --example (a template to copy and edit)",
                                 param_hint="--example")
    typer.echo(reconciliation.CSV_PROFILE_EXAMPLE, nl=False)


def bank_accounts() -> None:
    """List the bank accounts configured for reconciliation."""
    from rich.table import Table  # rich loads with the commands that print tables

    import reconciliation

    found = read_only(reconciliation.list_bank_accounts)
    table = Table("code", "cur", "bank account", "clearing", "payouts", "tolerance", "rules")
    for bank in found:
        c = bank.config
        table.add_row(c.code, c.currency, c.bank_ledger_account, c.clearing_account,
                      c.payout_clearing_account, _amount(c.tolerance_minor, c.currency),
                      ", ".join(c.rules.enabled))
    console.print(table)


# -- import ------------------------------------------------------------------------------


def statement_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    account: str = typer.Option(..., help="the bank account (code, ledger code or number)"),
    format: str | None = typer.Option(None, help="camt.053, camt.054, mt940, bai2, ofx, csv "
                                                 "(detected when omitted)"),
    csv_profile: Annotated[Path | None, typer.Option(exists=True,
                                                     help="CSV column profile (YAML)")] = None,
    by: str = typer.Option("cli", help="who imports"),
) -> None:
    """Import a statement file: checked whole before anything is stored; re-importing the
    same file or an overlapping statement adds no line twice."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    import reconciliation

    data = file.read_bytes()
    profile = _csv_profile(csv_profile)
    with Progress(TextColumn("importing {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(file.name, total=None)

        async def work(conn: AsyncConnection) -> reconciliation.ImportResult:
            bank = await reconciliation.get_bank_account(conn, account)
            selection = reconciliation.read_for_account(
                bank, data, format=format, profile=profile, source_name=file.name)
            bar.update(task, total=sum(len(s.lines) for s in selection.chosen))
            return await reconciliation.store_statements(
                conn, bank, selection.chosen, data_hash=reconciliation.file_hash(data),
                source_name=file.name, actor=by,
                progress=lambda n: bar.advance(task, n), skipped=selection.skipped)

        result = run(lambda engine: ledger.transact(engine, work), quiet=True)
    if result.already_imported:
        console.print(f"{file.name}: already imported for {account}; nothing added")
    else:
        console.print(f"{file.name}: {result.statements} statement(s), {result.lines} lines, "
                      f"{result.new_lines} new, {result.known_lines} already known")
    for skipped in result.skipped:
        console.print(f"  skipped {skipped.describe()}: another account's")
    for warning in result.warnings:
        console.print(f"  [yellow]read leniently:[/yellow] {warning}")


# -- reconcile ---------------------------------------------------------------------------


def reconcile(account: str = typer.Option(..., help="the bank account"),
              date: str = typer.Option(..., help="reconcile lines booked up to this day"),
              by: str = typer.Option("engine", help="who runs it")) -> None:
    """Match open statement lines against the books, post what they prove, and refresh the
    exceptions queue."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table  # rich loads with the commands that print tables

    import reconciliation

    day = _date(date, "--date")
    with Progress(TextColumn("matching"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task("lines", total=None)

        async def work(conn: AsyncConnection) -> reconciliation.ReconcileResult:
            bank = await reconciliation.get_bank_account(conn, account)
            return await reconciliation.reconcile(conn, bank, day, actor=by,
                                                  progress=lambda n: bar.advance(task, n))

        result = run(lambda engine: ledger.transact(engine, work), quiet=True)
    table = Table(title=f"Reconciliation of {result.bank} up to {day}", title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("open lines considered", f"{result.lines_considered:,}")
    table.add_row("new book items", f"{result.items_added:,}")
    for rule, n in sorted(result.by_rule.items()):
        table.add_row(f"  matched by {rule}", f"{n:,}")
    table.add_row("matched lines / items", f"{result.matched_lines:,} / {result.matched_items:,}")
    table.add_row("entries posted", f"{result.entries_posted:,}")
    table.add_row("open exceptions: lines / items",
                  f"{result.open_line_exceptions} / {result.open_item_exceptions}")
    console.print(table)


# -- exceptions --------------------------------------------------------------------------


def exceptions_list(account: str | None = typer.Option(None, help="only this bank account"),
                    status: str = typer.Option("open", help="open, resolved or all"),
                    as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The exceptions queue with suggested candidates."""
    from rich.table import Table  # rich loads with the commands that print tables

    import reconciliation

    async def work(conn: AsyncConnection) -> list[reconciliation.ExceptionRecord]:
        bank = await reconciliation.get_bank_account(conn, account) if account else None
        return await reconciliation.list_exceptions(conn, bank,
                                                    status=None if status == "all" else status)
    found = read_only(work)
    if as_json:
        console.print_json(json.dumps([e.to_json() for e in found]))
        return
    table = Table("id", "kind", "date", "amount", "reference", "description", "best candidate",
                  "status", title="Reconciliation exceptions", title_justify="left")
    for e in found:
        best = e.candidates[0] if e.candidates else None
        table.add_row(
            str(e.id), e.kind.replace("_", " "), e.date.isoformat(),
            f"{_amount(e.amount_minor, e.currency)} {e.currency}", e.reference or "",
            e.description[:50],
            f"{best['kind'].replace('_', ' ')} {best['id']} ({best['score']})" if best else "",
            e.status if not e.resolution else f"{e.status}: {e.resolution} by {e.resolved_by}")
    console.print(table)


def exceptions_resolve(
    exception_id: int = typer.Argument(...),
    as_: str = actor_option("finance"),
    reason: str = typer.Option(..., help="why"),
    match: Annotated[list[str] | None, typer.Option(
        help="counterparts: book items ACCOUNT_ID:SEQ for a line, line ids for an item")] = None,
    adjust: str | None = typer.Option(None, help="post an adjustment against this account"),
    write_off: bool = typer.Option(False, "--write-off", help="write off within tolerance"),
) -> None:
    """Resolve an exception by a manual match, an adjustment entry or a write-off."""
    import reconciliation

    chosen = sum((bool(match), adjust is not None, write_off))
    if chosen != 1:
        raise typer.BadParameter("give exactly one of --match, --adjust, --write-off")
    from paycore.commands.actor import authenticated_user, record_decision

    user = authenticated_user(as_, area="finance")
    how = "match" if match else "adjust" if adjust is not None else "write_off"

    async def work(conn: AsyncConnection) -> Any:
        if match:
            match_id = await reconciliation.resolve_by_match(
                conn, exception_id, counterparts=match, actor=user.actor, reason=reason)
        elif adjust is not None:
            match_id = await reconciliation.post_adjustment(
                conn, exception_id, counter_account=adjust, actor=user.actor, reason=reason)
        else:
            match_id = await reconciliation.write_off(conn, exception_id, actor=user.actor,
                                                      reason=reason)
        # the row the console's finance page writes for the same decision
        details = {"match_id": str(match_id)}
        if match:
            details["counterpart"] = ",".join(match)
        if adjust is not None:
            details["counter_account"] = adjust
        await record_decision(conn, user, action=f"exception.{how}",
                              subject=f"recon-exception:{exception_id}", reason=reason,
                              details=details)
        return match_id

    match_id = in_transaction(work)
    console.print(f"exception {exception_id} resolved (match {match_id}) by {user.actor}: "
                  f"{reason}")


# -- report ------------------------------------------------------------------------------


def report_table(r: reconciliation.ReconciliationReport) -> Table:
    from rich.table import Table  # rich loads with the commands that print tables

    c = r.currency
    table = Table(title=f"Reconciliation report {r.bank} ({c}) for {r.day}", title_justify="left")
    table.add_column("")
    table.add_column("bank", justify="right")
    table.add_column("books", justify="right")
    table.add_row("opening", _amount(r.bank_opening_minor, c), _amount(r.book_opening_minor, c))
    table.add_row("closing", _amount(r.bank_closing_minor, c), _amount(r.book_closing_minor, c),
                  end_section=True)
    table.add_row("[bold]difference (bank - books)[/bold]",
                  f"[bold]{_amount(r.difference_minor, c)}[/bold]", "", end_section=True)
    for label, value in r.explanation():
        table.add_row(f"  {label}", _amount(value, c), "")
    verdict = "[green]fully explained[/green]" if r.explained else "[red]NOT explained[/red]"
    table.add_row("  " + verdict, "", "", end_section=True)
    table.add_row(f"matched lines of the day ({r.matched_lines})",
                  _amount(r.matched_amount_minor, c), "")
    table.add_row("open exceptions: lines / items",
                  f"{r.open_line_exceptions} / {r.open_item_exceptions}", "")
    table.add_row(f"booked, still in clearing ({r.in_transit_count})", "",
                  _amount(r.in_transit_minor, c))
    for line in r.unmatched_lines:
        table.add_row(f"  line {line.line_id} {line.date} {line.reference or ''} "
                      f"{line.description[:40]}", _amount(line.amount_minor, c), "")
    for item in r.unmatched_items:
        table.add_row(f"  item {item.item} {item.date} {item.reference or ''} {item.kind}", "",
                      _amount(item.amount_minor, c))
    return table


def report(account: str = typer.Option(..., help="the bank account"),
           date: str = typer.Option(..., help="the day"),
           format: str = typer.Option("table", help="table, json or csv")) -> None:
    """Bank balance against book balance, the difference explained."""
    import reconciliation

    day = _date(date, "--date")

    async def work(conn: AsyncConnection) -> reconciliation.ReconciliationReport:
        bank = await reconciliation.get_bank_account(conn, account)
        return await reconciliation.build_report(conn, bank, day)

    result = read_only(work)
    if format == "json":
        console.print_json(json.dumps(result.to_json()))
    elif format == "csv":
        typer.echo(result.to_csv(), nl=False)
    else:
        console.print(report_table(result))


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the root app."""
    statement_app.command("import")(statement_import)
    exceptions_app.command("list")(exceptions_list)
    exceptions_app.command("resolve")(exceptions_resolve)
    recon_app.command("configure")(configure)
    recon_app.command("accounts")(bank_accounts)
    recon_app.command("profile")(profile)
    recon_app.command("report")(report)
    app.add_typer(statement_app, name="statement")
    app.add_typer(exceptions_app, name="exceptions")
    app.add_typer(recon_app, name="recon")
    app.command("reconcile")(reconcile)

