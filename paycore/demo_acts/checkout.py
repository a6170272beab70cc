"""Act 2: checkout — customers pay through the sandbox banks; refunds, payouts."""

from __future__ import annotations

from paycore.demo_acts.context import DemoContext


async def run(ctx: DemoContext) -> None:
    """Not written yet: this act tells nothing."""
