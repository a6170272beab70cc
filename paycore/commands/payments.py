"""Checkout payments, refunds, payouts, the status-inquiry janitor, bank health.

    paycore payments terms SUPPLIER RATE [--refund-commission proportional|keep]
    paycore payments list --merchant M [--status S]     a merchant's intents
    paycore payments show INTENT_ID                     intent, attempts, refunds
    paycore payments expire                             expire unpaid intents
    paycore payments janitor [--max-tries N]            one pass of status inquiries
    paycore payments submit-payouts                     hand requested payouts to banks
    paycore payments payouts [--status S]               payouts
    paycore payments review                             what waits for a person
    paycore payments inquiries                          the janitor's schedule
    paycore payments rejections [--limit N]             notifications that changed nothing
    paycore payments health                             circuit breakers and certificates
    paycore payments check-returns [--payout ID] [--days N]  ask the banks about returns
    paycore payments resolve-payout-review ID --as USER --note TEXT   (payments staff)

Commands that talk to banks (janitor, submit-payouts) need a `BankDirectory`: set
`PAYCORE_BANKS=module:function` to a function returning one (the deployment's bank
configuration: adapters, credentials, notify URL); the others read the database only.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import os
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import typer

import ledger
from paycore.commands.actor import actor_option
from paycore.runner import command_group, console, in_transaction, read_only, run

# The domains are imported inside each command that uses them (#18 §5: `paycore --help`
# and `paycore balance` import none); a new command imports its own.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    import gateways

payments_app = command_group("Checkout payments, refunds, payouts, janitor, bank health.")


def _amt(units: int, currency: str) -> str:
    return f"{ledger.from_minor(units, currency).amount:,}"


async def load_banks(engine: AsyncEngine | None = None) -> gateways.BankDirectory:
    """The deployment's banks, from `PAYCORE_BANKS=module:function`; with `engine`, their
    circuit breakers are the database's, shared with every other process (API servers,
    workers, a janitor run by hand)."""
    import gateways

    # A process that talks to banks books payouts' returns (the janitor's inquiry, the
    # return check): paycore's hooks — a returned loan disbursement is unwound in the
    # return's own transaction — must be in it. The CLI and the worker had them only when
    # PAYCORE_ACCOUNT_KEYS was set, as a side effect of an import (found by review).
    from paycore.disbursement import install_payout_hooks

    install_payout_hooks()

    target = os.environ.get("PAYCORE_BANKS", "")
    if ":" not in target:
        raise gateways.InvalidPaymentRequest(
            "no banks configured: set PAYCORE_BANKS=module:function (a function returning a "
            "gateways.BankDirectory)")
    module_name, _, attr = target.partition(":")
    factory: Callable[[], Any] = getattr(importlib.import_module(module_name), attr)
    made = factory()
    banks = await made if inspect.isawaitable(made) else made
    if not isinstance(banks, gateways.BankDirectory):
        raise gateways.InvalidPaymentRequest(f"{target} did not return a BankDirectory")
    if engine is not None and banks.shared is None:
        banks.share_breakers(engine)
    return banks


def _with_banks(work: Callable[[AsyncEngine, gateways.BankDirectory], Awaitable[Any]]) -> Any:
    import gateways

    async def go(engine: AsyncEngine) -> Any:
        banks = await load_banks(engine)
        try:
            return await work(engine, banks)
        finally:
            async with engine.begin() as conn:
                await gateways.save_bank_health(conn, banks)
            for code in banks.codes:
                close = getattr(banks.get(code), "aclose", None)
                if close is not None:
                    await close()
    return run(go)


@payments_app.command("terms")
def terms(supplier: str, rate: str,
          refund_commission: str = typer.Option("proportional", help="proportional or keep")
          ) -> None:
    """Set a supplier's commission rate (e.g. 0.03) and refund-commission policy."""
    import gateways

    try:
        value = Decimal(rate)
        policy = gateways.RefundCommission(refund_commission)
    except (InvalidOperation, ValueError):
        raise typer.BadParameter("rate must be a decimal like 0.03; policy proportional or keep"
                                 ) from None
    saved = in_transaction(lambda conn: gateways.set_supplier_terms(
        conn, gateways.SupplierTerms(supplier, value, policy)))
    console.print(f"{saved.supplier_id}: commission {saved.commission_rate}, refunds "
                  f"{saved.refund_commission.value}")


@payments_app.command("list")
def list_intents(merchant: str = typer.Option(..., help="the merchant whose intents"),
                 status: str | None = typer.Option(None), limit: int = typer.Option(50)) -> None:
    """A merchant's payment intents, newest first."""
    from rich.table import Table  # rich loads with the commands that print tables

    import gateways

    wanted = gateways.IntentState(status) if status else None
    found = read_only(lambda conn: gateways.list_intents(conn, merchant, status=wanted,
                                                         limit=limit))
    table = Table(title=f"Payment intents of {merchant}")
    for col in ("intent", "order", "supplier", "bank", "amount", "status", "refunded", "created"):
        table.add_column(col, justify="right" if col in ("amount", "refunded") else "left")
    for i in found:
        table.add_row(i.id, i.order_id, i.supplier_id, i.bank or "", _amt(i.amount_minor, i.currency),
                      i.status.value, _amt(i.refunded_minor, i.currency),
                      f"{i.created_at:%Y-%m-%d %H:%M:%S}")
    console.print(table)


@payments_app.command("show")
def show(intent_id: str) -> None:
    """One intent with its attempts and refunds."""
    import gateways

    async def load(conn: AsyncConnection) -> tuple[Any, Any, Any]:
        intent = await gateways.get_intent(conn, intent_id)
        return (intent, await gateways.list_attempts(conn, intent_id),
                await gateways.list_refunds(conn, intent_id))
    intent, attempts, refunds = read_only(load)
    console.print(f"[bold]{intent.id}[/bold] order {intent.order_id} of {intent.merchant_id}, "
                  f"supplier {intent.supplier_id}: {_amt(intent.amount_minor, intent.currency)} "
                  f"{intent.currency}, [bold]{intent.status.value}[/bold]; captured "
                  f"{_amt(intent.captured_minor, intent.currency)}, commission "
                  f"{_amt(intent.commission_minor, intent.currency)}, refunded "
                  f"{_amt(intent.refunded_minor, intent.currency)}; expires {intent.expires_at:%H:%M:%S}")
    if intent.review_reason:
        console.print(f"  review: {intent.review_reason}")
    for a in attempts:
        console.print(f"  attempt {a.id} at {a.bank}: {a.status.value}"
                      f"{', bank txn ' + a.bank_txn_id if a.bank_txn_id else ''}"
                      f"{' (' + a.failure_reason + ')' if a.failure_reason else ''}")
    for r in refunds:
        console.print(f"  refund {r.id}: {_amt(r.amount_minor, r.currency)} {r.status.value}"
                      f"{', bank refund ' + r.bank_txn_id if r.bank_txn_id else ''}")


@payments_app.command("expire")
def expire() -> None:
    """Expire unpaid intents past their expiry that no bank can be taking money for."""
    import gateways

    expired = in_transaction(lambda conn: gateways.expire_intents(conn))
    console.print(f"{len(expired)} intents expired")


def _moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 moment") from None
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{text!r} needs its UTC offset (e.g. +00:00)")
    return moment


@payments_app.command("janitor")
def janitor(max_tries: int | None = typer.Option(
                None, help="unanswered inquiries before manual review [default: "
                           "gateways.DEFAULT_MAX_TRIES, 8]"),
            limit: int = typer.Option(200),
            now: str | None = typer.Option(
                None, help="run as of this moment (ISO 8601 with its UTC offset): look "
                           "ahead to what falls due later, e.g. a catch-up run")) -> None:
    """One pass: expiry, then a status inquiry for every due pending/unknown record."""
    import gateways

    as_of = _moment(now) if now else None
    # the default is read here, not in the signature, so that `paycore --help` does not
    # import gateways
    tries = gateways.DEFAULT_MAX_TRIES if max_tries is None else max_tries
    report = _with_banks(lambda engine, banks: gateways.run_janitor(
        engine, banks, max_tries=tries, limit=limit, now=as_of))
    console.print(report.summary())


@payments_app.command("submit-payouts")
def submit_payouts(limit: int = typer.Option(100)) -> None:
    """Hand requested payouts to the banks, in failover order."""
    import gateways

    done = _with_banks(lambda engine, banks: gateways.submit_payouts(engine, banks, limit=limit))
    for p in done:
        console.print(f"{p.id}: {p.status.value}{' at ' + p.bank if p.bank else ''}")
    console.print(f"{len(done)} payouts handled")


@payments_app.command("check-returns")
def check_returns(payout_ids: list[str] | None = typer.Option(  # noqa: B008
                      None, "--payout", help="this payout only (repeat for more)"),
                  days: int = typer.Option(7, min=1, help="payouts succeeded this recently")
                  ) -> None:
    """Ask the banks whether succeeded payouts came back (退票); book the returns."""
    from datetime import timedelta

    import gateways
    report = _with_banks(lambda engine, banks: gateways.check_payout_returns(
        engine, banks, payout_ids=payout_ids or None, within=timedelta(days=days)))
    for pid in report.booked:
        console.print(f"{pid}: [yellow]returned[/yellow], booked back (see payments review)")
    for pid in report.to_review:
        console.print(f"{pid}: return reported, [red]not booked[/red]: in review")
    for error in report.errors:
        console.print(f"[red]{error}[/red]")
    console.print(f"{report.asked} payouts asked about, {len(report.booked)} returned")


@payments_app.command("payouts")
def list_payouts(status: str | None = typer.Option(None),
                 beneficiary: str | None = typer.Option(None)) -> None:
    """Payouts, oldest first."""
    from rich.table import Table  # rich loads with the commands that print tables

    import gateways

    wanted = gateways.PayoutState(status) if status else None
    found = read_only(lambda conn: gateways.list_payouts(conn, status=wanted,
                                                         beneficiary_ref=beneficiary, limit=500))
    table = Table(title="Payouts")
    for col in ("payout", "beneficiary", "amount", "from account", "purpose", "bank", "status"):
        table.add_column(col, justify="right" if col == "amount" else "left")
    for p in found:
        table.add_row(p.id, p.beneficiary_ref, _amt(p.amount_minor, p.currency), p.debit_account,
                      p.purpose, p.bank or "", p.status.value)
    console.print(table)


@payments_app.command("review")
def review() -> None:
    """Intents and payouts waiting for a person."""
    import gateways

    intents, held = read_only(gateways.list_in_review)
    for i in intents:
        console.print(f"intent {i.id} (order {i.order_id}, {i.merchant_id}): {i.review_reason}")
    for p in held:
        console.print(f"payout {p.id} ({p.status.value}): {p.review_reason or p.failure_reason}")
    console.print(f"{len(intents)} intents and {len(held)} payouts in review")
    items = read_only(gateways.list_payout_reviews)
    for r in items:
        console.print(f"payout review {r.id}: payout {r.payout_id} [{r.kind}] {r.detail}")
    console.print(f"{len(items)} payout review items open")


@payments_app.command("resolve-payout-review")
def resolve_payout_review(review_id: int,
                          as_: str = actor_option("payments"),
                          note: str = typer.Option(..., help="what was found and done")) -> None:
    """Close a payout review item (a return, a mismatch, a contradiction) with a note. A
    payments staff user closes it, proved by their password, as on the console."""
    import gateways
    from paycore.commands.actor import authenticated_user, record_decision

    user = authenticated_user(as_, area="payments")

    async def work(conn: AsyncConnection) -> gateways.PayoutReview:
        review = await gateways.resolve_payout_review(conn, review_id, by=user.actor,
                                                      note=note)
        # the row the console's payments page writes for the same decision
        await record_decision(conn, user, action="payout-review.resolve",
                              subject=f"payout-review:{review_id}", reason=note,
                              details={"payout_id": review.payout_id})
        return review
    done = in_transaction(work)
    console.print(f"payout review {done.id} ({done.payout_id}) resolved by {done.resolved_by}")


@payments_app.command("inquiries")
def list_inquiries() -> None:
    """The janitor's schedule: open inquiries and those handed to review."""
    from rich.table import Table  # rich loads with the commands that print tables

    import gateways

    found = read_only(gateways.list_inquiries)
    table = Table(title="Status inquiries")
    for col in ("subject", "id", "bank", "status", "tries", "next check", "last answer"):
        table.add_column(col)
    for q in found:
        table.add_row(q.subject.value, q.subject_id, q.bank, q.status, str(q.tries),
                      f"{q.next_check_at:%Y-%m-%d %H:%M:%S}", q.last_outcome or "")
    console.print(table)


@payments_app.command("rejections")
def rejections(limit: int = typer.Option(50)) -> None:
    """Notifications that changed nothing: forged, stale, duplicate, mismatched, unknown."""
    from rich.table import Table  # rich loads with the commands that print tables

    import gateways

    rows = read_only(lambda conn: gateways.list_rejections(conn, limit=limit))
    table = Table(title="Rejected notifications (headers redacted)")
    for col in ("received", "bank", "reason", "reference", "bank txn", "detail"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"{r.received_at:%Y-%m-%d %H:%M:%S}", r.bank, r.reason, r.reference or "",
                      r.bank_txn_id or "", r.detail[:80])
    console.print(table)


@payments_app.command("health")
def health() -> None:
    """Each bank's circuit breaker, as the workers last saved it."""
    from rich.table import Table  # rich loads with the commands that print tables

    import gateways

    found = read_only(gateways.load_bank_health)
    table = Table(title="Bank health")
    for col in ("bank", "circuit", "consecutive failures", "opened at", "last error"):
        table.add_column(col)
    for h in found:
        style = {"closed": "green", "open": "red"}.get(h.state.value, "yellow")
        table.add_row(h.bank, f"[{style}]{h.state.value}[/{style}]", str(h.consecutive_failures),
                      f"{h.opened_at:%Y-%m-%d %H:%M:%S}" if h.opened_at else "",
                      h.last_error or "")
    console.print(table)
    if not found:
        console.print("no bank health saved yet (the janitor and submit-payouts save it)")
    _certificates(read_only(gateways.load_bank_certificates))


def _certificates(found: list[gateways.CertificateStatus]) -> None:
    """The banks' certificates, soonest to expire first; a warning for each that ends
    within 30 days (or has ended), as of now."""
    from rich.table import Table  # rich loads with the commands that print tables

    if not found:
        return
    from datetime import UTC, datetime
    now = datetime.now(UTC)
    table = Table(title="Certificates")
    for col in ("bank", "role", "subject", "not after", "days left", "state"):
        table.add_column(col)
    for c in found:
        state = c.state(now)
        style = {"valid": "green", "expiring": "yellow"}.get(state.value, "red")
        table.add_row(c.bank, c.role, c.subject, f"{c.not_after:%Y-%m-%d %H:%M}",
                      str(c.days_left(now)), f"[{style}]{state.value}[/{style}]")
    console.print(table)
    for c in found:
        warning = c.warning(now)
        if warning:
            console.print(f"[yellow]WARNING[/yellow]: {warning}")


def register(app: typer.Typer) -> None:
    app.add_typer(payments_app, name="payments")
