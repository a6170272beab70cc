"""Loan products and business-day calendars, run by the risk team without a developer.

    paycore products define CODE --file TERMS.json|yaml --as USER --reason TEXT [--from DATE]
    paycore products change CODE --set annual_rate=0.11 [--set ...] --as USER --reason TEXT
    paycore products retire CODE --as USER --reason TEXT [--from DATE]
    paycore products list [--on DATE]
    paycore products show CODE              (every version: who, when, why, what)
    paycore calendar load CN 2027 FILE --as USER   (the official list for a year)
    paycore calendar show CN 2027           (the days closed, and weekends worked)

Every change is a new version (lending.catalogue); a loan keeps the version it was booked
under. Bad input gets the message the API gives, never a traceback.

Who changes a product or a calendar is a console staff user of the risk role who gives
their password (`--as`, paycore.commands.actor), as on the console's products page: the
risk team owns the terms it underwrites against (issue #20), and a calendar moves
maturities. Each change is recorded with them as `user:<name>` in the product's history
(or the calendar's `loaded_by`) and in the console's audit trail.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from paycore.commands.actor import actor_option, authenticated_user, record_decision
from paycore.commands.lending import _date, config
from paycore.runner import command_group, console, in_transaction, read_only

# The domains are imported inside each command that uses them (#18 §5: `paycore --help`
# and `paycore balance` import none); a new command imports its own.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from lending import catalogue
    from paycore.console.staff import StaffUser

products_app = command_group("Loan products: define, change, retire, list, show.")
calendar_app = command_group("Business-day calendars per market (holidays, working "
                           "weekends).")


_TERMS_HELP = ("the terms (JSON or YAML): name, currency, min_amount_minor, max_amount_minor, "
               "min_term_days, max_term_days, annual_rate (a decimal string), and optionally "
               "day_count, penalty_annual_rate, origination_fee, extension, "
               "non_performing_after_days, waterfall, maturity_roll, market")


def _terms(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            class TermsLoader(yaml.SafeLoader):
                """Numbers with a fraction as the text written, as the JSON path reads
                them (`parse_float=str`): a rate is an exact decimal, never a float."""

            TermsLoader.add_constructor(
                "tag:yaml.org,2002:float",
                lambda _loader, node: str(node.value).replace("_", ""))
            try:
                data = yaml.load(text, Loader=TermsLoader)  # a SafeLoader
            except yaml.YAMLError as exc:
                raise typer.BadParameter(f"{path} is not valid YAML: {exc}") from None
        else:
            data = json.loads(text, parse_float=str)  # rates stay exact decimals
    except ValueError as exc:
        raise typer.BadParameter(f"{path} is not valid JSON/YAML: {exc}") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path} must hold an object of product terms")
    return data


def _value(text: str) -> Any:
    """A --set value: JSON when it parses (numbers, null, objects), else the text itself;
    decimals stay strings, never binary floats."""
    try:
        return json.loads(text, parse_float=str)
    except ValueError:
        return text


def _audited(user: StaffUser, what: str, code: str, reason: str,
             work: Callable[[AsyncConnection], Awaitable[catalogue.ProductVersion]]
             ) -> Callable[[AsyncConnection], Awaitable[catalogue.ProductVersion]]:
    """The catalogue's call and its row in the console's audit trail, in one transaction
    (the console's products page records the same action, subject and details)."""
    from lending import catalogue

    async def go(conn: AsyncConnection) -> catalogue.ProductVersion:
        saved = await work(conn)
        await record_decision(conn, user, action=f"product.{what}", subject=f"product:{code}",
                              reason=reason,
                              details={"version": saved.product.version, "status": saved.status,
                                       "effective_from": str(saved.effective_from),
                                       "terms": catalogue.to_definition(saved.product)})
        return saved
    return go


def _print_version(v: catalogue.ProductVersion) -> None:
    import lending

    p = v.product
    fmt = lending.format_minor
    console.print(
        f"[bold]{p.code}[/bold] v{p.version} ({v.status}, from {v.effective_from}) {p.name}: "
        f"{fmt(p.min_amount_minor, p.currency)} to "
        f"{fmt(p.max_amount_minor, p.currency)}, {p.min_term_days}-{p.max_term_days} days, "
        f"{p.annual_rate} a year {p.day_count.value} (penalty {p.penalty_annual_rate}), "
        f"maturity roll {p.maturity_roll.value} on {p.calendar_market}")


@products_app.command("define")
def products_define(
    code: str,
    file: Path = typer.Option(..., "--file", help=_TERMS_HELP),  # noqa: B008
    as_: str = actor_option("risk"),
    reason: str = typer.Option("", help="why (stored)"),
    effective: str | None = typer.Option(None, "--from", help="first application day"),
) -> None:
    """Define a new product (version 1)."""
    from lending import catalogue

    terms, day = _terms(file), _date(effective)
    user = authenticated_user(as_, area="risk")
    v = in_transaction(_audited(user, "define", code, reason, lambda conn: (
        catalogue.define_product(conn, code, terms, effective_from=day, actor=user.actor,
                                 reason=reason, config=config()))))
    _print_version(v)


@products_app.command("change")
def products_change(
    code: str,
    sets: list[str] = typer.Option(..., "--set", help="FIELD=VALUE, repeatable"),  # noqa: B008
    as_: str = actor_option("risk"),
    reason: str = typer.Option("", help="why (stored)"),
    effective: str | None = typer.Option(None, "--from", help="first application day"),
) -> None:
    """A new version with the changes, for loans applied for from --from on."""
    from lending import catalogue

    changes: dict[str, Any] = {}
    for item in sets:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"--set {item!r}: expected FIELD=VALUE")
        changes[name.strip()] = _value(text)
    day = _date(effective)
    user = authenticated_user(as_, area="risk")
    v = in_transaction(_audited(user, "change", code, reason, lambda conn: (
        catalogue.change_product(conn, code, changes, effective_from=day, actor=user.actor,
                                 reason=reason, config=config()))))
    _print_version(v)


@products_app.command("retire")
def products_retire(
    code: str,
    as_: str = actor_option("risk"),
    reason: str = typer.Option(..., help="why (stored)"),
    effective: str | None = typer.Option(None, "--from", help="first day without new loans"),
) -> None:
    """No new loans from --from on; loans already booked run to their end."""
    from lending import catalogue

    day = _date(effective)
    user = authenticated_user(as_, area="risk")
    v = in_transaction(_audited(user, "retire", code, reason, lambda conn: (
        catalogue.retire_product(conn, code, effective_from=day, actor=user.actor,
                                 reason=reason, config=config()))))
    _print_version(v)


@products_app.command("list")
def products_list(on: str | None = typer.Option(None, help="as of (default today)")) -> None:
    """Each product's version in force."""
    from rich.table import Table  # rich loads with the commands that print tables

    from lending import catalogue

    day = _date(on)
    table = Table("code", "v", "status", "from", "cur", "rate", "day count", "terms (days)",
                  "roll", "name")
    for v in read_only(lambda conn: catalogue.products_now(conn, config(), day)):
        p = v.product
        table.add_row(p.code, str(p.version), v.status,
                      "built in" if p.version == 0 else str(v.effective_from), p.currency,
                      str(p.annual_rate), p.day_count.value,
                      f"{p.min_term_days}-{p.max_term_days}", p.maturity_roll.value, p.name)
    console.print(table)


@products_app.command("show")
def products_show(code: str) -> None:
    """Every version of a product: the audit trail of its definition."""
    from lending import catalogue
    from lending.errors import ProductNotFound

    async def go(conn: AsyncConnection) -> list[catalogue.ProductVersion]:
        history = await catalogue.product_history(conn, code)
        if not history and code in config().products:
            history = [catalogue.ProductVersion(config().products[code], "active", dt.date.min,
                                                "code", "built in", None)]
        if not history:
            raise ProductNotFound(code)
        return history
    for v in read_only(go):
        _print_version(v)
        console.print(f"    by {v.changed_by}"
                      + (f" at {v.recorded_at:%Y-%m-%d %H:%M}Z" if v.recorded_at else "")
                      + (f": {v.reason}" if v.reason else ""))
        console.print(f"    {json.dumps(catalogue.to_definition(v.product), sort_keys=True)}")


@calendar_app.command("load")
def calendar_load(
    market: str, year: int, file: Path,
    as_: str = actor_option("risk"),
) -> None:
    """Load a year's official list (lines 'YYYY-MM-DD,holiday|working[,name]'); it
    replaces the holidays package's data for that year and any list loaded before."""
    from lending import calendar as calendars

    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc.strerror}") from None
    user = authenticated_user(as_, area="risk")

    async def go(conn: AsyncConnection) -> int:
        days = calendars.parse_official_list(text, year)
        n = await calendars.load_official_year(conn, market, year, days, actor=user.actor)
        await record_decision(conn, user, action="calendar.load",
                              subject=f"calendar:{market.upper()}:{year}", reason="",
                              details={"file": file.name, "days": n})
        return n
    n = in_transaction(go)
    console.print(f"{market.upper()} {year}: {n} day(s) loaded")


@calendar_app.command("show")
def calendar_show(market: str, year: int) -> None:
    """The weekdays closed and the weekend days worked in a market's year."""
    from rich.table import Table  # rich loads with the commands that print tables

    from lending import calendar as calendars

    cal = read_only(lambda conn: calendars.load_calendar(conn, market.upper(), [year]))
    table = Table("day", "", "business day", "why")
    day = dt.date(year, 1, 1)
    while day.year == year:
        weekend = day.weekday() >= 5
        if weekend == cal.is_business_day(day):
            table.add_row(str(day), f"{day:%a}", "yes" if weekend else "no",
                          "worked weekend" if weekend else cal.why_closed(day))
        day += dt.timedelta(days=1)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(products_app, name="products")
    app.add_typer(calendar_app, name="calendar")
