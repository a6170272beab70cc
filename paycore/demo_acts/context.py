"""What the demo's acts share: the engine, the console, the day, and what one act leaves
for a later one (the running sandbox banks, the suppliers, the day's statements)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class DemoContext:
    engine: AsyncEngine
    console: Console
    day: dt.date
    #: what an act hands to later acts, by name (e.g. "sandbox_banks"); each act documents
    #: what it puts here and what it expects
    shared: dict[str, Any] = field(default_factory=dict)
    _steps: int = 0

    def step(self, title: str) -> None:
        """A numbered section heading, numbered across all acts."""
        self._steps += 1
        self.console.rule(f"[bold]{self._steps}. {title}")
