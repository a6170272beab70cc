"""A process posting through the coalescer is SIGKILLed mid-run (on both databases):
every entry it acknowledged is in the ledger under the id it printed, none is there twice,
and the books prove out (`verify`). An acknowledgement is printed only after the
coalescer answered, which it does only after COMMIT returned."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import ledger
from tests.ledger.chart import open_chart

ROOT = Path(__file__).resolve().parents[2]
#: acknowledgements to see before the kill: enough for many batches to have committed
ACKS_BEFORE_KILL = 300


async def database_of(engine: AsyncEngine) -> tuple[str, str]:
    """The URL (with its password) and search_path another process needs for `engine`."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "sqlite":
        return url, "-"
    async with engine.connect() as conn:
        return url, str(await conn.scalar(sa.text("SHOW search_path")))


async def test_sigkill_mid_batch_loses_no_acknowledged_entry(db, tmp_path):
    await open_chart(db)
    url, search_path = await database_of(db)
    run = uuid.uuid4().hex[:8]
    errors = tmp_path / "child.stderr"
    with errors.open("wb") as stderr:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.ledger.submit_child", url, search_path, run, "24",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=stderr)
    assert child.stdout is not None
    acked: dict[str, str] = {}

    def take(line: bytes) -> None:
        _, key, entry_id = line.decode().split()
        acked[key] = entry_id

    try:
        while len(acked) < ACKS_BEFORE_KILL:
            line = await asyncio.wait_for(child.stdout.readline(), timeout=120)
            if not line:
                raise AssertionError(f"the child stopped: {errors.read_text()[-2000:]}")
            take(line)
        child.send_signal(signal.SIGKILL)  # callers still queued and a batch under way
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGKILL)
    # what it printed before it died is acknowledged too
    for line in (await child.stdout.read()).splitlines():
        take(line)
    assert await child.wait() == -signal.SIGKILL

    async with db.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT idempotency_key, id FROM journal_entries WHERE idempotency_key LIKE :run"),
            {"run": run + ":%"})).all()
        report = await ledger.verify(conn)
    stored = {key: str(uuid.UUID(str(entry_id))) for key, entry_id in rows}
    assert len(stored) == len(rows)  # (keys are unique)
    missing = [key for key in acked if key not in stored]
    assert not missing, f"{len(missing)} acknowledged entries are not in the ledger: {missing[:5]}"
    assert all(stored[key] == entry_id for key, entry_id in acked.items())
    assert len(stored) >= len(acked)  # committed, but killed before it could say so: allowed
    assert report.ok, report.discrepancies
    assert report.entries == len(stored)
