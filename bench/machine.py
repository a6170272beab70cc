"""How fast this VM is at the moment a benchmark runs: its speed swings by a factor of two
from hour to hour, so benchmarks print their figures beside it."""

from __future__ import annotations

import time


def machine_speed() -> float:
    """CPU seconds of `sum(range(10**7))` in this interpreter (0.10-0.14 s on a fast hour of
    this VM, ~0.3 s on a slow one)."""
    started = time.process_time()
    sum(range(10**7))
    return time.process_time() - started
