"""Terminal rendering of ledger reports (rich)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from rich.table import Table

import ledger
from ledger import AccountStatement, TrialBalance


def short_id(entry_id: uuid.UUID | str) -> str:
    """An entry id shortened for people: its last 8 hex digits, marked as a tail.

    Entry ids are UUIDv7: the first 12 hex digits are the millisecond they were made, so
    entries of one batch or one second share their head ("entry 01a24e01 reverses
    01a24e01"). The tail is random (62 bits of it), so it tells them apart."""
    text = str(entry_id).replace("-", "")
    return f"…{text[-8:]}"


def amount(units: int, currency: str) -> str:
    return f"{ledger.from_minor(units, currency).amount:,}"


def trial_balance_table(tb: TrialBalance) -> Table:
    table = Table(title="Trial balance", title_justify="left")
    for col, justify in (("account", "left"), ("type", "left"), ("cur", "left"),
                         ("debit", "right"), ("credit", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in tb.rows:
        if not (r.debit or r.credit):
            continue
        table.add_row(f"{r.code}  {r.name}", r.type.value, r.currency,
                      amount(r.debit, r.currency) if r.debit else "",
                      amount(r.credit, r.currency) if r.credit else "")
    for cur, (debits, credits) in sorted(tb.totals.items()):
        mark = "" if debits == credits else "  ≠"
        table.add_row(f"[bold]total {cur}[/bold]", "", cur, f"[bold]{amount(debits, cur)}[/bold]",
                      f"[bold]{amount(credits, cur)}{mark}[/bold]", end_section=True)
    return table


def statement_table(st: AccountStatement) -> Table:
    acct = st.account
    table = Table(title=f"Statement {acct.code} ({acct.name}), {st.start} to {st.end}",
                  title_justify="left")
    for col, justify in (("booked", "left"), ("value date", "left"), ("kind", "left"),
                         ("description", "left"), ("debit", "right"), ("credit", "right"),
                         ("balance", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    table.add_row("", "", "", "[italic]opening balance[/italic]", "", "",
                  f"{st.opening.amount:,}")
    for line in st.lines:
        table.add_row(
            line.booked_at.strftime("%m-%d %H:%M:%S"), str(line.effective_date), line.kind,
            line.description, amount(line.amount, acct.currency) if line.amount > 0 else "",
            amount(-line.amount, acct.currency) if line.amount < 0 else "",
            f"{st.normal(line.balance_after).amount:,}",
        )
    table.add_row("", "", "", "[italic]closing balance[/italic]", "", "",
                  f"[bold]{st.closing.amount:,}[/bold]")
    return table


def money_text(value: Decimal, currency: str) -> str:
    return f"{value:,} {currency}"
