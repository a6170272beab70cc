"""The sandbox banks as a process of their own, as real banks are to paycore:

    python -m gateways.sandbox banks --directory banks.json [--banks unionpay,restbank,smbank]

starts each bank on a loopback port (its own keys, made now), writes what the merchant
holds for each (keys, certificates, secrets, base URL) to `--directory` for the API's
`PAYCORE_BANKS=gateways.sandbox.directory:banks`, prints one JSON line
`{"ready": true, "banks": {code: base_url}, "customers": {code: account}}` and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from gateways.sandbox.base import SandboxSettings
from gateways.sandbox.directory import write_directory
from gateways.sandbox.fleet import BANK_CODES, SandboxFleet


async def serve_banks(codes: Sequence[str], directory: Path,
                      settings: SandboxSettings | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with SandboxFleet.start(codes, settings=settings) as fleet:
        write_directory(fleet.banks, directory)
        sys.stdout.write(json.dumps({
            "ready": True, "directory": str(directory),
            "banks": {code: fleet.base_url(code) for code in fleet.banks},
            # the account a customer pays from at each bank's pay page
            "customers": {code: bank.default_customer.number
                          for code, bank in fleet.banks.items()}}) + "\n")
        sys.stdout.flush()
        await stop.wait()


def _run(main: Coroutine[Any, Any, None]) -> None:
    # uvloop when installed (a dependency; not on Windows): less CPU per event
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateways.sandbox",
                                     description="Run the sandbox banks on loopback.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("banks", help="start the banks and serve until stopped")
    run.add_argument("--directory", type=Path, required=True,
                     help="file to write the merchant's credentials to (read by "
                          "PAYCORE_BANKS=gateways.sandbox.directory:banks)")
    run.add_argument("--banks", default=",".join(BANK_CODES),
                     help=f"comma-separated bank codes (default {','.join(BANK_CODES)})")
    run.add_argument("--retry-delays-ms", dest="retry_delays", default="50,200,500,1000,2000",
                     help="milliseconds between notification retries")
    args = parser.parse_args(argv)
    codes = [c.strip() for c in args.banks.split(",") if c.strip()]
    unknown = [c for c in codes if c not in BANK_CODES]
    if unknown or not codes:
        parser.error(f"unknown bank(s) {', '.join(unknown) or '(none given)'}; "
                     f"known: {', '.join(BANK_CODES)}")
    delays = tuple(dt.timedelta(milliseconds=int(d)) for d in args.retry_delays.split(",")
                   if d.strip())
    with contextlib.suppress(KeyboardInterrupt):
        _run(serve_banks(codes, args.directory, SandboxSettings(retry_delays=delays)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
