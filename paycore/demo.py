"""`paycore demo`: the whole story on an SQLite file, act by act, ending with the proof."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
from paycore import checkpoints, db, render
from paycore.demo_acts import checkout, ledger_day, lending, reconciliation, webhooks
from paycore.demo_acts.context import DemoContext

ACTS = (ledger_day, checkout, lending, reconciliation, webhooks)


async def run(engine: AsyncEngine, console: Console) -> ledger.VerifyReport:
    await db.upgrade(engine)
    ctx = DemoContext(engine=engine, console=console, day=dt.datetime.now(dt.UTC).date())
    try:
        for act in ACTS:
            await act.run(ctx)
    finally:
        # what acts left running for later ones (the sandbox banks, a receiver) stops here
        for resource in reversed(list(ctx.shared.values())):
            if hasattr(resource, "aclose"):
                await resource.aclose()

    ctx.step("What finance sees")
    async with engine.connect() as conn:
        console.print(render.statement_table(
            await ledger.statement(conn, "2202.payable.sup-001", ctx.day, ctx.day)))
        console.print(render.trial_balance_table(await ledger.trial_balance(conn)))
    report = await checkpoints.demo_proof(engine, console)
    console.print(report.summary(), style="bold green" if report.ok else "bold red")
    from paycore.console.demo import HOW_TO_OPEN  # the console (#19) on the demo's books

    console.print(HOW_TO_OPEN)
    return report


def database_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"
