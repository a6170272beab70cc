"""Act 4: finance reconciles the sandbox banks' statements against the books.

Each sandbox bank writes the day's statement of our settlement account in its own format
(unionpay MT940, restbank BAI2, smbank camt.053): the day's captures as one batch
settlement net of the bank's fees, refunds, payouts — and, at one bank, a charge the books
do not know. The MT940 export also holds a second account's statement (a time deposit):
it is shown skipped, not filed under the settlement account. Finance imports each file
(twice: the second import adds nothing), reconciles, finds the one exception, sees the
bank-vs-book difference explained, and resolves it with an adjustment entry.

Expects `ctx.shared["sandbox_fleet"]` (left by the checkout act); skips without it.
"""

from __future__ import annotations

from moneyed import Money
from rich.table import Table

import ledger
import reconciliation
from paycore.commands.reconciliation import report_table
from paycore.demo_acts.context import DemoContext

CHARGED_BANK, CHARGE_MINOR = "unionpay", 1_500
CHARGE_TEXT = "SMS NOTIFICATION FEE NOV"
FINANCE = "finance.li.wei"


def _with_deposit_account(data: bytes, yymmdd: str) -> bytes:
    """The export as a bank's portal gives it: the day's statement of every account of
    ours at the bank, here the settlement account and a time deposit (its own `:25:`).
    The import takes the configured account's statement and reports the other skipped."""
    deposit = "\r\n".join((
        f":20:DEP{yymmdd}", ":25:DEPOSIT/880012345001", ":28C:00001/001",
        f":60F:C{yymmdd}CNY1000000,00",
        f":61:{yymmdd}{yymmdd[2:]}C2083,33NINTNONREF//DEPINT{yymmdd}",
        ":86:TIME DEPOSIT INTEREST", f":62F:C{yymmdd}CNY1002083,33", "-"))
    return data.rstrip(b"\r\n") + b"\r\n" + deposit.encode("ascii") + b"\r\n"


def _amt(minor: int) -> str:
    return f"{ledger.from_minor(minor, 'CNY').amount:,}"


async def run(ctx: DemoContext) -> None:
    fleet = ctx.shared.get("sandbox_fleet")
    ctx.step("Reconciliation: the banks' statements against the books")
    if fleet is None:
        ctx.console.print("  [yellow]skipped: no sandbox banks are running (the checkout act "
                          "leaves them in ctx.shared['sandbox_fleet'])[/yellow]")
        return
    engine, console = ctx.engine, ctx.console
    day = fleet.business_day()
    fleet.add_bank_charge(CHARGED_BANK, CHARGE_MINOR, day=day, description=CHARGE_TEXT)
    console.print(f"  {CHARGED_BANK} also takes a {_amt(CHARGE_MINOR)} charge the books do not "
                  f"know ({CHARGE_TEXT})")

    table = Table(title=f"Statements of {day}")
    for col in ("bank", "file", "format", "lines", "again", "matched", "rules", "fee posted",
                "open"):
        table.add_column(col, justify="right" if col in ("lines", "matched", "fee posted",
                                                         "open") else "left")
    banks: dict[str, reconciliation.BankAccount] = {}
    imports: dict[str, tuple[str, str, int, bool]] = {}
    for code in fleet.banks:
        sandbox = fleet.bank(code)
        name, data = fleet.statement_file(code, day)
        if reconciliation.detect_format(data) == "mt940":
            data = _with_deposit_account(data, day.strftime("%y%m%d"))
        config = reconciliation.BankAccountConfig.for_bank(
            code, sandbox.currency, tolerance=Money("1.00", sandbox.currency),
            bank_account_number=sandbox.book.merchant_account,
            # a booked item becomes an exception once a day's statement has not shown it
            rules=reconciliation.MatchingRules(item_grace_days=1))
        async with engine.begin() as conn:
            bank = await reconciliation.configure_bank_account(conn, config)
            imported = await reconciliation.import_statement(conn, bank, data, source_name=name,
                                                             actor=FINANCE)
        async with engine.begin() as conn:
            again = await reconciliation.import_statement(conn, bank, data, source_name=name,
                                                          actor=FINANCE)
        banks[code] = bank
        for other in imported.skipped:
            console.print(f"  {name} also holds {other.describe()}: not {code}'s settlement "
                          f"account, so skipped (nothing filed under it)")
        imports[code] = (name, reconciliation.detect_format(data) or "?", imported.new_lines,
                         again.already_imported and again.new_lines == 0)
    for code, bank in banks.items():
        async with engine.begin() as conn:
            result = await reconciliation.reconcile(conn, bank, day, actor=FINANCE)
        name, format, lines, idempotent = imports[code]
        table.add_row(code, name, format, str(lines),
                      "nothing added" if idempotent else "[red]added lines[/red]",
                      str(result.matched_lines),
                      ", ".join(f"{r} {n}" for r, n in sorted(result.by_rule.items())),
                      _amt(result.fees_minor), str(result.open_line_exceptions))
    console.print(table)
    console.print("  each batch settlement posted Dr 1001.bank net, Dr 6602.expense.bank_fees "
                  "fee, Cr 1102.clearing gross; each payout Dr 1103.clearing.payout, "
                  "Cr 1001.bank")

    async with engine.connect() as conn:
        queue = await reconciliation.list_exceptions(conn)
    exceptions = Table(title="Exceptions queue")
    for col in ("id", "kind", "bank", "amount", "reference", "description", "best candidate"):
        exceptions.add_column(col, justify="right" if col == "amount" else "left")
    owners = {b.id: code for code, b in banks.items()}
    for e in queue:
        best = e.candidates[0] if e.candidates else None
        exceptions.add_row(str(e.id), e.kind.replace("_", " "),
                           owners.get(e.bank_account_id or -1, "shared"), _amt(e.amount_minor),
                           e.reference or "", e.description,
                           f"{best['id']} ({best['score']})" if best else "none")
    console.print(exceptions)

    charged = banks[CHARGED_BANK]
    async with engine.connect() as conn:
        report = await reconciliation.build_report(conn, charged, day)
    console.print(report_table(report))

    line = next((e for e in queue if e.kind == "statement_line"
                 and e.bank_account_id == charged.id), None)
    if line is not None:
        async with engine.begin() as conn:
            await reconciliation.post_adjustment(
                conn, line.id, counter_account=charged.config.fee_account, actor=FINANCE,
                reason="monthly SMS notification fee per the bank's tariff")
            after = await reconciliation.build_report(conn, charged, day)
            trail = await reconciliation.audit_trail(conn, exception_id=line.id)
        console.print(f"  {FINANCE} resolves exception {line.id} with an adjustment entry to "
                      f"{charged.config.fee_account} (audit: {trail[-1]['action']} by "
                      f"{trail[-1]['actor']}); the difference is now "
                      f"{_amt(after.difference_minor)} "
                      f"({'explained' if after.explained else 'NOT explained'})")
