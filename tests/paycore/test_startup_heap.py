"""A long-running paycore process freezes its startup heap (paycore.startup_heap)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
import uvicorn
from typer.testing import CliRunner

from paycore.cli import app as cli
from paycore.startup_heap import freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # back to one heap the collector walks, for the tests that follow


def test_startup_objects_are_frozen_startup_garbage_is_collected_first(unfrozen):
    kept, dropped = _Node(), _Node()
    gone = weakref.ref(dropped)
    del dropped
    assert gc.get_freeze_count() == 0
    frozen = freeze_startup_heap()
    assert frozen == gc.get_freeze_count() > 1_000
    assert gone() is None  # garbage of the startup was collected, not frozen forever
    assert all(o is not kept for o in gc.get_objects())  # frozen: no collection walks it
    later = _Node()
    later_ref = weakref.ref(later)
    del later
    gc.collect()
    assert later_ref() is None  # what is made afterwards is collected as before


def test_paycore_serve_freezes_the_heap_once_the_app_is_built(unfrozen, tmp_path, monkeypatch):
    seen: list[int] = []

    async def serve(self: uvicorn.Server, sockets: object = None) -> None:
        seen.append(gc.get_freeze_count())

    monkeypatch.setattr(uvicorn.Server, "serve", serve)
    monkeypatch.setenv("PAYCORE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/serve.sqlite")
    monkeypatch.delenv("PAYCORE_BANKS", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert len(seen) == 1 and seen[0] > 1_000
