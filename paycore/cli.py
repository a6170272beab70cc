"""The `paycore` command line."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from moneyed import Money

import ledger
from paycore import commands
from paycore.runner import command_group, console, errors, in_transaction, read_only, run

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# Start-up (#18): `paycore --help` and `paycore balance` import this module, every command
# module and the ledger. What only some commands use (YAML, rich's tables, the checkpoint
# files' crypto, the domains' packages, the web stack) is imported inside those commands;
# tests/paycore/test_cli_startup.py holds the list of what stays out.

T = TypeVar("T")

app = command_group("paycore: the marketplace's ledger and payment core.", add_completion=False)
db_app = command_group("The database schema.")
accounts_app = command_group("The chart of accounts.")
holds_app = command_group("Two-phase transfers.")
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(holds_app, name="holds")
commands.register_all(app)
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema (Alembic); safe to run on an up-to-date database."""
    from paycore import db  # Alembic and every domain's tables: only to migrate

    async def go(engine: AsyncEngine) -> str | None:
        await db.upgrade(engine)
        return await db.current_revision(engine)
    revision = run(go)
    console.print(f"database at revision {revision}")


@accounts_app.command("list")
def accounts_list(owner: str | None = typer.Option(None, help="owner reference"),
                  prefix: str | None = typer.Option(None, help="code prefix")) -> None:
    """List accounts with their balances."""
    from rich.table import Table

    async def go(conn: AsyncConnection) -> list[tuple[ledger.Account, ledger.Balance]]:
        found = await ledger.list_accounts(conn, owner_ref=owner, code_prefix=prefix)
        return [(a, await ledger.balance(conn, a.id)) for a in found]
    table = Table("code", "name", "type", "cur", "posted", "available", "status")
    for account, bal in read_only(go):
        table.add_row(account.code, account.name, account.type.value, account.currency,
                      f"{bal.posted.amount:,}", f"{bal.available.amount:,}", account.status.value)
    console.print(table)


@accounts_app.command("open")
def accounts_open(
    code: str, name: str,
    type_: ledger.AccountType = typer.Argument(..., metavar="TYPE"),
    currency: str = typer.Argument(...),
    limit: ledger.BalanceLimit | None = typer.Option(None, help="balance limit"),
    owner: str | None = typer.Option(None, help="owner reference"),
    lanes: int = typer.Option(1, help="balance rows (lanes) that many writers post to at "
                              "once: for a hot account without a balance limit"),
) -> None:
    """Open an account."""
    spec = ledger.AccountSpec(code, name, type_, currency.upper(), limit, owner, lanes=lanes)
    account = in_transaction(lambda conn: ledger.open_account(conn, spec))
    split = f", {account.lanes} lanes" if account.lanes > 1 else ""
    console.print(f"opened {account.code} (id {account.id}, {account.currency}{split})")


@accounts_app.command("add-lanes")
def accounts_add_lanes(code: str, lanes: int = typer.Argument(..., help="lanes it will have")) -> None:
    """Raise an unlimited (hot) account's lanes: that many writers then post to it at once.
    Lanes are added, never removed."""
    account = in_transaction(lambda conn: ledger.add_lanes(conn, code, lanes))
    console.print(f"{account.code} has {account.lanes} lanes")


def _entry_loader() -> type:
    """YAML's safe loader, its numbers with a fraction read as exact decimals (`Decimal`
    of the text written): YAML would read an unquoted 1234567890123456.78 as a binary
    float, 1234567890123456.8. In metadata such a number is refused (quote it): the books
    keep JSON, and an exact value has no JSON number that stays exact everywhere."""
    import yaml

    class EntryLoader(yaml.SafeLoader):
        pass

    def number(_loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
        text = str(node.value).replace("_", "")
        try:
            return Decimal(text)
        except InvalidOperation:  # .inf, .nan: never an amount
            raise yaml.constructor.ConstructorError(
                None, None, f"{text!r} is not a number an entry can hold",
                node.start_mark) from None

    EntryLoader.add_constructor("tag:yaml.org,2002:float", number)
    return EntryLoader


def _money(value: Any, currency: Any, where: str) -> Money:
    from moneyed import CurrencyDoesNotExist

    text = str(value)  # a Decimal from the loader: the digits written
    try:
        amount = Decimal(text)
    except (InvalidOperation, ValueError):
        raise ledger.InvalidRequest(f"{where}: {value!r} is not an amount") from None
    try:
        return Money(amount, currency)
    except (CurrencyDoesNotExist, TypeError, ValueError):
        raise ledger.InvalidRequest(f"{where}: {currency!r} is not a currency") from None


def entry_from_document(doc: Any, n: int = 1) -> ledger.EntryRequest:
    """An entry from the JSON/YAML shape `paycore post` reads; amounts are decimal strings.
    A document of another shape is refused saying where (entry, posting, field)."""
    if not isinstance(doc, dict):
        raise ledger.InvalidRequest(f"entry {n}: expected a mapping with idempotency_key, "
                                    f"kind and postings, got {type(doc).__name__}")
    key = doc.get("idempotency_key")
    if not key:
        raise ledger.InvalidRequest(f"entry {n}: each entry needs an idempotency_key")
    postings = doc.get("postings", [])
    if not isinstance(postings, list):
        raise ledger.InvalidRequest(f"entry {key!r}: postings must be a list")
    legs = []
    for i, p in enumerate(postings):
        where = f"entry {key!r} posting {i + 1}"
        if not isinstance(p, dict) or "currency" not in p or "account" not in p:
            raise ledger.InvalidRequest(f"{where}: needs account and currency")
        account = p["account"]
        if isinstance(account, bool) or not isinstance(account, str | int):
            raise ledger.InvalidRequest(f"{where}: account {account!r} is not an account "
                                        "code or id")
        debit = _money(p["debit"], p["currency"], where) if "debit" in p else None
        credit = _money(p["credit"], p["currency"], where) if "credit" in p else None
        legs.append(ledger.Posting(account, debit=debit, credit=credit))
    effective = doc.get("effective_date")
    try:
        effective_date = dt.date.fromisoformat(str(effective)) if effective else None
    except ValueError:
        raise ledger.InvalidRequest(f"entry {key!r}: effective_date {effective!r} is not a "
                                    "date (YYYY-MM-DD)") from None
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ledger.InvalidRequest(f"entry {key!r}: metadata must be a mapping")
    try:  # as the ledger stores it (YAML reads an unquoted 2026-05-01 as a date)
        json.dumps(metadata, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ledger.InvalidRequest(f"entry {key!r}: metadata must be JSON (text, whole "
                                    "numbers, true/false, lists, mappings; quote dates and "
                                    f"numbers with a fraction): {exc}") from None
    external_ref = doc.get("external_ref")
    return ledger.EntryRequest(
        idempotency_key=str(key), kind=str(doc.get("kind", "manual")), postings=legs,
        effective_date=effective_date, description=str(doc.get("description", "")),
        external_ref=None if external_ref is None else str(external_ref), metadata=metadata,
    )


@app.command("post")
def post(file: Path = typer.Argument(..., exists=True, readable=True)) -> None:
    """Post the entries in a JSON or YAML file (one entry or a list), all or nothing."""
    import yaml

    try:
        # YAML is a superset of JSON; the loader is yaml.SafeLoader's (amounts as written)
        raw = yaml.load(file.read_text(encoding="utf-8"), Loader=_entry_loader())
        docs = raw if isinstance(raw, list) else [raw]
        requests = [entry_from_document(d, n) for n, d in enumerate(docs, 1)]
    except (yaml.YAMLError, UnicodeDecodeError, ledger.LedgerError) as exc:
        # refused before any transaction opens: nothing was posted
        name = "InvalidRequest" if not isinstance(exc, ledger.LedgerError) else \
            type(exc).__name__
        from rich.markup import escape

        errors.print(f"[red]{name}[/red]: {escape(f'{file}: {exc}')}", highlight=False)
        raise typer.Exit(2) from None
    posted = in_transaction(lambda conn: ledger.post_many(conn, requests))
    for e in posted:
        state = "replayed" if e.replayed else "posted"
        console.print(f"{state} {e.id} {e.idempotency_key} ({len(e.postings)} postings)")


@app.command("balance")
def balance(account: str, as_of: str | None = typer.Option(
        None, help="a date (end of day, UTC) or an ISO timestamp with zone")) -> None:
    """An account's posted, pending and available balance."""
    from paycore.balance_lookup import balance_line

    when: dt.date | dt.datetime | None = None
    if as_of:
        when = dt.datetime.fromisoformat(as_of) if "T" in as_of else dt.date.fromisoformat(as_of)
    # isdecimal, not isdigit: '²' is a digit int() does not read
    ref: ledger.AccountRef = int(account) if account.isdecimal() else account
    bal = read_only(lambda conn: ledger.balance(conn, ref, as_of=when))
    console.print(balance_line(bal) + (f" (as of {bal.as_of})" if bal.as_of else ""))


@accounts_app.command("statement")
def account_statement(account: str,
              start: str = typer.Option(..., "--from", help="first day, YYYY-MM-DD"),
              end: str = typer.Option(..., "--to", help="last day, YYYY-MM-DD")) -> None:
    """Opening balance, postings with running balance, closing balance."""
    from paycore import render  # rich's tables

    ref: ledger.AccountRef = int(account) if account.isdecimal() else account
    st = read_only(lambda conn: ledger.statement(
        conn, ref, dt.date.fromisoformat(start), dt.date.fromisoformat(end)))
    console.print(render.statement_table(st))


@app.command("trial-balance")
def trial_balance(as_json: bool = typer.Option(False, "--json")) -> None:
    """Balances by account and type, per currency; debits must equal credits."""
    from paycore import render  # rich's tables

    tb = read_only(ledger.trial_balance)
    if as_json:
        console.print_json(json.dumps({
            "rows": [{"code": r.code, "type": r.type.value, "currency": r.currency,
                      "debit": str(ledger.from_minor(r.debit, r.currency).amount),
                      "credit": str(ledger.from_minor(r.credit, r.currency).amount)}
                     for r in tb.rows],
            "balanced": tb.balanced,
        }))
    else:
        console.print(render.trial_balance_table(tb))
    if not tb.balanced:
        raise typer.Exit(1)


@app.command("verify")
def verify(
    checkpoint: list[Path] | None = typer.Option(
        None, "--checkpoint", help="a signed checkpoint file, or a directory of them, the books "
        "must still extend (repeatable)"),
    keys: Path | None = typer.Option(None, help="directory of trusted public keys; default "
                                     "$PAYCORE_CHECKPOINT_KEYS"),
    public_key: list[Path] | None = typer.Option(None, "--public-key",
                                                 help="a trusted public key file (repeatable)"),
) -> None:
    """Recompute every balance and hash chain from the postings, and hold the books against
    each signed checkpoint given; exit 1 on a discrepancy."""
    from paycore import checkpoints

    async def go(conn: AsyncConnection) -> ledger.VerifyReport:
        if not checkpoint:
            return await ledger.verify(conn)
        keys_dir = keys if keys or public_key else checkpoints.CheckpointSettings.from_env().keys_dir
        trusted = checkpoints.load_trusted(keys_dir, public_key or [])
        return await checkpoints.verify(conn, checkpoint, trusted)
    report = read_only(go)
    console.print(report.summary(), style="green" if report.ok else "red")
    for problem in report.discrepancies[1:]:
        console.print(f"  also: {problem}", style="red")
    if not report.ok:
        raise typer.Exit(1)


@app.command("reverse")
def reverse(entry_id: str, reason: str = typer.Option("", help="why")) -> None:
    """Post the mirror of an entry (once)."""
    entry = in_transaction(lambda conn: ledger.reverse(
        conn, uuid.UUID(entry_id), description=reason or None))
    console.print(f"{'replayed' if entry.replayed else 'posted'} reversal {entry.id}")


@holds_app.command("expire")
def holds_expire() -> None:
    """Release every pending hold whose deadline has passed."""
    expired = in_transaction(ledger.expire_holds)
    console.print(f"expired {len(expired)} holds")


@app.command("demo")
def run_demo(path: Path = typer.Option(Path("paycore-demo.sqlite"), "--db",
                                       help="the SQLite file (recreated)")) -> None:
    """The whole story on an embedded SQLite file."""
    from paycore import demo  # the demo acts import every domain: only for `paycore demo`

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    console.print(f"[bold]paycore demo[/bold] — books kept in {path}")
    report = run(lambda engine: demo.run(engine, console), url=demo.database_url(path),
                  quiet=True)
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    app()
