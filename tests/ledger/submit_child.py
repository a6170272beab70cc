"""A process of submitters for the SIGKILL test (tests/ledger/test_coalescer_kill.py):
callers submit entries through one `ledger.Coalescer` without end, and print each entry
the coalescer acknowledged (`ack <key> <entry id>`, flushed) until the process is killed.

Usage: python -m tests.ledger.submit_child DATABASE_URL SEARCH_PATH RUN CALLERS
(SEARCH_PATH "-" on SQLite)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys

import structlog

import ledger
from ledger import EntryRequest, Posting
from tests.ledger.chart import cny

ACCOUNTS = ("1102.clearing.icbc", "2202.payable.s1", "2202.payable.s2",
            "6001.income.commission")


async def main(url: str, search_path: str, run: str, callers: int) -> None:
    # stdout carries the acknowledgements alone; the ledger's warnings go to stderr
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr),
                        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    connect_args = {} if search_path == "-" else {
        "server_settings": {"search_path": search_path}}
    engine = ledger.create_engine(url, connect_args=connect_args)
    coalescer = ledger.Coalescer(engine, max_batch=50)

    async def caller(n: int) -> None:
        for i in itertools.count():
            key = f"{run}:{n}:{i}"
            payee = ACCOUNTS[1 + (n + i) % 3]
            amount = cny(f"{1 + i % 7}.{n % 100:02d}")
            entry = await coalescer.submit(EntryRequest(key, "test.kill", [
                Posting(ACCOUNTS[0], debit=amount), Posting(payee, credit=amount)]))
            print(f"ack {key} {entry.id}", flush=True)

    await asyncio.gather(*(caller(n) for n in range(callers)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
