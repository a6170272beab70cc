"""A long-running paycore process freezes the objects it made while starting up.

CPython's cyclic collector walks every tracked object in its oldest generation on each full
collection. A paycore process starts with ~130,000 of them (SQLAlchemy, Alembic, structlog,
py-moneyed, the app's own tables and routes), none of which will ever be garbage. A batch
of journal entries lives long enough (its requests, drafts and results) to be promoted into
that generation and so to trigger full collections about twice a second under load; each
one walked the whole startup heap again. Measured in `bench/ledger_bench.py`'s batched
workload: 12 us per entry, a third of the caller's Python time, was the collector walking
the startup heap; with the startup heap frozen, 3 us.

`gc.freeze()` moves every object tracked so far to a permanent generation that collections
skip; objects made later are collected as before. CPython documents it for a process that
forks after making its long-lived objects (to keep their pages shared); the same move keeps
them out of every later full collection. `paycore serve` does it once the app is built.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect what startup left as garbage, then freeze the rest; the number of objects
    now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
