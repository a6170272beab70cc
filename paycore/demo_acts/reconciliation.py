"""Act 4: finance reconciles the sandbox banks' statements against the books."""

from __future__ import annotations

from paycore.demo_acts.context import DemoContext


async def run(ctx: DemoContext) -> None:
    """Not written yet: this act tells nothing."""
