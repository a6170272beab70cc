"""Shared by the service tests and bench/jobs_bench.py: loans written straight into the
loan book (as bench/accrual_bench.py does), and a loopback webhook receiver that checks
every signature and can refuse for a while."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import lending
from lending.schema import borrowers, loans
from paycore.webhooks import verify_signature

CONFIG = lending.DEFAULT_CONFIG


def loan_amount(i: int) -> int:
    return 1_000_000 + (i % 997) * 1_371


async def seed_loans(engine: AsyncEngine, n: int, start: dt.date) -> None:
    """`n` active supply-chain loans disbursed on `start`, ids L0000000...."""
    now = dt.datetime.now(dt.UTC)
    async with engine.begin() as conn:
        await lending.ensure_accounts(conn, CONFIG)
        n_borrowers = max(1, n // 100)
        await conn.execute(sa.insert(borrowers), [dict(
            id=f"b{i:06d}", name=f"Borrower {i}", kind="supplier", currency="CNY",
            payable_account=f"2202.payable.b{i:06d}", onboarded_on=start - dt.timedelta(days=900),
            credit_cap_minor=None,
            data_imported_on=start, created_at=now) for i in range(n_borrowers)])
        rows = []
        for i in range(n):
            rows.append(dict(
                id=f"L{i:07d}", borrower_id=f"b{i % n_borrowers:06d}", product_code="supply_chain",
                currency="CNY", requested_minor=loan_amount(i), amount_minor=loan_amount(i),
                term_days=30, status="active", status_on=start, applied_on=start,
                disbursed_on=start, maturity=start + dt.timedelta(days=30), extensions=0,
                disbursement_mode="balance", payout_id=None, accrued_through=None,
                version=0, updated_at=now))
            if len(rows) == 10_000:
                await conn.execute(sa.insert(loans), rows)
                rows = []
        if rows:
            await conn.execute(sa.insert(loans), rows)


def expected_interest(n: int, days: int) -> int:
    return sum(lending.SUPPLY_CHAIN_LOAN.interest_for(loan_amount(i), days) for i in range(n))


@dataclass
class Receiver:
    """A merchant's webhook endpoint on 127.0.0.1: answers 503 to the first `refuse`
    requests, then 200; keeps every event it accepted, with its signature checked. With a
    `gate`, requests wait (unanswered: `held`) until it is set."""
    refuse: int = 0
    gate: asyncio.Event | None = None
    held: int = 0
    secret: str = ""
    seen: int = 0
    refused: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    port: int = 0
    server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}/hooks"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if self.gate is not None and not self.gate.is_set():
                    self.held += 1
                    await self.gate.wait()
                status = self._handle(headers, body)
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _handle(self, headers: dict[str, str], body: bytes) -> int:
        self.seen += 1
        if self.seen <= self.refuse:
            self.refused += 1
            return 503
        if not verify_signature(headers.get("paycore-signature", ""), body, self.secret):
            self.bad_signatures += 1
            return 400
        self.accepted.append(json.loads(body))
        return 200

    @property
    def event_ids(self) -> set[str]:
        return {e["id"] for e in self.accepted}
