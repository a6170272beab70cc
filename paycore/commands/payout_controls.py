"""Suppliers' bank accounts, merchant-supplier bindings, and payout approval, from the
command line. Every command that changes something names the person acting (`--as NAME`)
and proves it: NAME is a console staff user (`paycore staff add`), whose password is
prompted without echo (or read from PAYCORE_STAFF_PASSWORD, for scripts) and checked like
a console login (argon2id; unknown, disabled and locked users refused; failures count
towards the lock-out). The actor recorded, and compared by the four-eyes rules, is
`user:<name>`; nobody acts as `system:` or as an API key from here.

    paycore beneficiaries add SUPPLIER --holder NAME [--bank NAME] --as USER   (number prompted)
    paycore beneficiaries list [SUPPLIER]
    paycore beneficiaries verify ACCOUNT --as USER       a second person
    paycore beneficiaries change ACCOUNT [--holder] [--bank] [--new-number] --as USER
    paycore beneficiaries retire ACCOUNT --reason TEXT --as USER
    paycore beneficiaries rekey --as USER                re-encrypt under the newest key
    paycore beneficiaries new-key ID                     a new PAYCORE_ACCOUNT_KEYS entry
    paycore beneficiaries audit [--supplier S]           the payout-control audit trail
    paycore bindings add|remove MERCHANT SUPPLIER --as USER;  paycore bindings list
    paycore payments request-payout SUPPLIER AMOUNT CURRENCY --account ID --as USER
    paycore payments pending                             payouts waiting for approval
    paycore payments approve PAYOUT --as USER            a second person
    paycore payments reject PAYOUT --reason TEXT --as USER

The account number is never an argument (shell history, the process list): `add` prompts
for it without echo, or reads PAYCORE_ACCOUNT_NUMBER.
"""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import typer
from moneyed import Money

import ledger
from paycore.commands.actor import actor_option, authenticated_actor
from paycore.commands.payments import payments_app
from paycore.runner import command_group, console, in_transaction, read_only

# The domains are imported inside each command that uses them (#18 §5: `paycore --help`
# and `paycore balance` import none); a new command imports its own.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    import gateways


def controls_from_env() -> gateways.PayoutControls:
    # imported when a command needs it: `paycore.payout_controls` subclasses gateways'
    # errors, which would import every bank adapter for `paycore --help`
    from paycore import payout_controls

    return payout_controls.controls_from_env()

beneficiaries_app = command_group("Suppliers' bank accounts: the only places supplier "
                                     "money may go.")
bindings_app = command_group("Which suppliers a merchant's API keys may act for.")

# Who registers, verifies and changes suppliers' bank accounts and requests, approves or
# rejects payouts: payments staff, as on the console's payments pages (the same table,
# console.staff.ACTORS). A finance, risk or controller user must not be the second person
# that lets money leave from the command line when the console would refuse them.
ACTOR = actor_option("payments", extra=", and compared by the four-eyes rules")


def _actor(name: str) -> str:
    return authenticated_actor(name, area="payments")


def _print_account(a: gateways.BeneficiaryAccount) -> None:
    console.print(f"{a.id} {a.supplier_id}: {a.holder_name} {a.masked_number} "
                  f"({a.bank_name or 'bank not named'}) [bold]{a.status.value}[/bold]")


@beneficiaries_app.command("add")
def add(supplier: str, holder: str = typer.Option(..., help="the account holder's name"),
        bank: str = typer.Option("", help="the bank's name"),
        as_: str = ACTOR) -> None:
    """Register a supplier's account, unverified. The account number is prompted for
    without echo, or read from PAYCORE_ACCOUNT_NUMBER: never an argument, which would
    stay in the shell's history and the process list."""
    import os

    import gateways

    actor = _actor(as_)
    number = os.environ.get("PAYCORE_ACCOUNT_NUMBER") or typer.prompt(
        "Account number", hide_input=True)
    account = in_transaction(lambda conn: gateways.add_account(
        conn, supplier, holder_name=holder, account_number=number, bank_name=bank,
        actor=actor))
    _print_account(account)
    console.print("  someone else must verify it: paycore beneficiaries verify "
                  f"{account.id} --as <name>")


@beneficiaries_app.command("list")
def list_(supplier: str | None = typer.Argument(None)) -> None:
    """Registered accounts (numbers masked), with when each may be paid."""
    from rich.table import Table  # rich loads with the commands that print tables

    import gateways

    found = read_only(lambda conn: gateways.list_accounts(conn, supplier))
    cooling = controls_from_env().cooling_off
    table = Table(title="Suppliers' bank accounts")
    for col in ("account", "supplier", "holder", "number", "bank", "status", "entered by",
                "verified by", "payable from"):
        table.add_column(col)
    for a in found:
        usable = a.usable_from(cooling)
        # a suspended account (a payout to it came back) says why beside its status
        status = a.status.value + (f" ({a.status_reason})" if a.status_reason else "")
        table.add_row(a.id, a.supplier_id, a.holder_name, a.masked_number, a.bank_name,
                      status, a.changed_by, a.verified_by or "",
                      f"{usable:%Y-%m-%d %H:%M}" if usable else "")
    console.print(table)


@beneficiaries_app.command("verify")
def verify(account: str, as_: str = ACTOR) -> None:
    """Verify an account someone else entered (after confirming it with the supplier)."""
    import gateways

    actor = _actor(as_)
    done = in_transaction(lambda conn: gateways.verify_account(conn, account,
                                                               actor=actor))
    _print_account(done)


@beneficiaries_app.command("change")
def change(account: str, holder: str | None = typer.Option(None),
           bank: str | None = typer.Option(None),
           new_number: bool = typer.Option(False, "--new-number",
                                           help="prompt for a new account number"),
           as_: str = ACTOR) -> None:
    """New details: unverified again, and the cooling-off starts over."""
    import gateways

    actor = _actor(as_)
    number = typer.prompt("New account number", hide_input=True) if new_number else None
    done = in_transaction(lambda conn: gateways.change_account(
        conn, account, actor=actor, holder_name=holder, bank_name=bank,
        account_number=number))
    _print_account(done)


@beneficiaries_app.command("retire")
def retire(account: str, reason: str = typer.Option(...), as_: str = ACTOR) -> None:
    import gateways

    actor = _actor(as_)
    done = in_transaction(lambda conn: gateways.retire_account(conn, account, actor=actor,
                                                               reason=reason))
    _print_account(done)


@beneficiaries_app.command("rekey")
def rekey(as_: str = ACTOR) -> None:
    """Re-encrypt every account, and every webhook signing secret (the same key ring),
    under the newest key of PAYCORE_ACCOUNT_KEYS."""
    import gateways

    actor = _actor(as_)
    from paycore import webhooks

    count = in_transaction(lambda conn: gateways.rekey_accounts(conn, actor=actor))
    sealed = in_transaction(webhooks.rekey_secrets)
    console.print(f"{count} accounts re-encrypted under key "
                  f"{gateways.current_account_keys().current_id}")
    console.print(f"{sealed} webhook endpoints' secrets sealed under it")


@beneficiaries_app.command("new-key")
def new_key(key_id: str = typer.Argument(None, help="the new key's id")) -> None:
    """A new key for PAYCORE_ACCOUNT_KEYS: put it first, run rekey, then drop the old one."""
    import gateways

    console.print(gateways.new_key_spec(key_id or f"k{secrets.token_hex(3)}"), markup=False,
                  highlight=False, soft_wrap=True)


@beneficiaries_app.command("audit")
def audit(supplier: str | None = typer.Option(None), subject: str | None = typer.Option(None),
          limit: int = typer.Option(200)) -> None:
    """Who changed which account, and who requested, approved or rejected which payout."""
    from rich.table import Table  # rich loads with the commands that print tables

    import gateways

    rows = read_only(lambda conn: gateways.audit_trail(conn, subject, supplier_id=supplier,
                                                       limit=limit))
    table = Table(title="Payout-control audit trail")
    for col in ("at", "actor", "action", "supplier", "subject", "details"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"{r['at']:%Y-%m-%d %H:%M:%S}", r["actor"], r["action"], r["supplier_id"],
                      r["subject_id"], ", ".join(f"{k}={v}" for k, v in r["details"].items()))
    console.print(table)


@bindings_app.command("add")
def bindings_add(merchant: str, supplier: str, as_: str = ACTOR) -> None:
    from paycore.supplier_bindings import bind_supplier

    actor = _actor(as_)
    made = in_transaction(lambda conn: bind_supplier(conn, merchant, supplier,
                                                     actor=actor))
    console.print(f"{merchant} -> {supplier}: {'bound' if made else 'already bound'}")


@bindings_app.command("remove")
def bindings_remove(merchant: str, supplier: str, as_: str = ACTOR) -> None:
    from paycore.supplier_bindings import unbind_supplier

    actor = _actor(as_)
    done = in_transaction(lambda conn: unbind_supplier(conn, merchant, supplier,
                                                       actor=actor))
    console.print(f"{merchant} -> {supplier}: {'removed' if done else 'was not bound'}")


@bindings_app.command("list")
def bindings_list(merchant: str | None = typer.Option(None)) -> None:
    from paycore.supplier_bindings import bound_suppliers

    for m, s in read_only(lambda conn: bound_suppliers(conn, merchant)):
        console.print(f"{m} -> {s}")


def request_payout(supplier: str, amount: str, currency: str,
                   account: str = typer.Option(..., help="a verified account of the supplier"),
                   payout_id: str | None = typer.Option(None, "--id"),
                   description: str = typer.Option(""), as_: str = ACTOR) -> None:
    """A manual payout from the supplier's payable: it waits for a second person."""
    import gateways

    actor = _actor(as_)
    try:
        money = Money(Decimal(amount), currency.upper())
    except (InvalidOperation, ValueError, LookupError):
        raise typer.BadParameter("amount is a decimal like 150.00; currency an ISO code"
                                 ) from None
    pid = payout_id or f"po-{secrets.token_hex(8)}"
    controls = controls_from_env()
    payout = in_transaction(lambda conn: gateways.request_supplier_payout(
        conn, gateways.SupplierPayoutRequest(
            payout_id=pid, supplier_id=supplier, account_id=account, amount=money,
            requested_by=actor, manual=True, description=description), controls))
    console.print(f"{payout.id}: {payout.amount.amount:,} {payout.currency} to "
                  f"{payout.beneficiary.name} ***{payout.beneficiary.account_number[-4:]}: "
                  f"[bold]{payout.status.value}[/bold]")


def pending() -> None:
    """Payouts waiting for a second person."""
    from rich.table import Table  # rich loads with the commands that print tables

    import gateways

    found = read_only(lambda conn: gateways.list_pending_approval(conn))
    table = Table(title="Payouts waiting for approval")
    for col in ("payout", "supplier", "amount", "account", "requested by", "why"):
        table.add_column(col, justify="right" if col == "amount" else "left")
    for p, r in found:
        table.add_row(p.id, r.supplier_id, f"{ledger.from_minor(p.amount_minor, p.currency).amount:,}"
                      f" {p.currency}", f"{r.account_id} {p.beneficiary.account_number}",
                      r.requested_by, r.approval_reason or "")
    console.print(table)


def approve(payout: str, as_: str = ACTOR) -> None:
    """Approve a payout someone else requested; `submit-payouts` then sends it."""
    import gateways

    actor = _actor(as_)
    controls = controls_from_env()

    async def work(conn: AsyncConnection) -> gateways.Payout:
        return await gateways.approve_payout(conn, payout, actor=actor, controls=controls)
    done = in_transaction(work)
    console.print(f"{done.id}: [bold]{done.status.value}[/bold] (approved by {actor})")


def reject(payout: str, reason: str = typer.Option(...), as_: str = ACTOR) -> None:
    """Reject a payout waiting for approval: canceled, its reservation released."""
    import gateways

    actor = _actor(as_)
    done = in_transaction(lambda conn: gateways.reject_payout(conn, payout, actor=actor,
                                                              reason=reason))
    console.print(f"{done.id}: [bold]{done.status.value}[/bold] ({done.failure_reason})")


def register(app: typer.Typer) -> None:
    app.add_typer(beneficiaries_app, name="beneficiaries")
    app.add_typer(bindings_app, name="bindings")
    payments_app.command("request-payout")(request_payout)
    payments_app.command("pending")(pending)
    payments_app.command("approve")(approve)
    payments_app.command("reject")(reject)
