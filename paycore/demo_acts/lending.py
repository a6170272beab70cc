"""Act 3: supply-chain finance — credit lines, loans, accrual, settlement offset."""

from __future__ import annotations

from paycore.demo_acts.context import DemoContext


async def run(ctx: DemoContext) -> None:
    """Not written yet: this act tells nothing."""
