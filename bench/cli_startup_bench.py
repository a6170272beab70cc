"""How long a `paycore` command takes before it does anything: the start-up of the CLI.

Runs `paycore --help` and `paycore balance ACCOUNT` N times each in fresh processes (a
new interpreter each time, as a person's shell starts it) and prints the median (p50) and
the least wall time and CPU time of the process (user + system: on a loaded machine the
wall time includes waiting for a core, and a busy machine's shared caches slow even the
CPU time, so both are printed with the load average before and after), the goal beside
them, then the modules that `python -X importtime` says cost most.

    .venv/bin/python bench/cli_startup_bench.py [--runs 10] [--top 15]
    .venv/bin/python bench/cli_startup_bench.py --db /tmp/cli-demo.sqlite --account 1001.bank.icbc

Without `--db`, `paycore balance` runs against a small SQLite file made once before timing
(schema migrated, one account opened); with `--db` (a file `paycore demo --db FILE` made)
against those books. Either way the figure is start-up plus one read, as a person sees it.
The goal (#18 §5) is under 0.5 s for both on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import machine_speed  # (this directory: the scripts run from here)

CLI = "from paycore.entry import main; main()"
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("paycore", "ledger", "gateways", "lending", "reconciliation")
#: #18 §5: a plain `paycore --help` or `paycore balance` starts in under 0.5 s
GOAL_MS = 500


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `paycore ARGS` process. CPU time (user + system)
    is what the process itself spent: on a busy machine the wall time also counts the
    waiting for a core, so CPU time is the nearer figure for a quiet machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CLI, *args], env=env, capture_output=True,
                          text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"paycore {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def import_times(args: list[str], env: dict[str, str], top: int) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the costliest imports of `paycore ARGS`."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", CLI, *args], env=env,
                          capture_output=True, text=True, check=False)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line.split(":", 1)[1].split("|")
        # nesting is shown by indentation: one space before a module imported directly
        depth = len(name) - len(name.lstrip(" "))
        rows.append((int(cumulative), name.strip(), depth))
    shallow = [(us, name) for us, name, depth in rows if depth <= 5]
    return sorted(shallow, reverse=True)[:top]


def _load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="processes per command")
    parser.add_argument("--top", type=int, default=15, help="import-time rows to print")
    parser.add_argument("--db", type=Path, default=None,
                        help="an existing SQLite file (e.g. from `paycore demo --db FILE`)")
    parser.add_argument("--account", default="1001.bank.icbc",
                        help="the account `paycore balance` reads with --db")
    options = parser.parse_args()
    if options.runs < 1:
        parser.error("--runs must be at least 1")
    if options.db is not None and not options.db.is_file():
        parser.error(f"--db {options.db}: no such file (make one: paycore demo --db FILE)")
    # bytecode as any run leaves it where PYTHONDONTWRITEBYTECODE is unset (this workplace
    # sets it: without this every paycore module would be compiled in every process)
    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    *(str(ROOT / p) for p in PACKAGES)], check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = options.db.resolve() if options.db else Path(tmp) / "b.sqlite"
        env = {**os.environ, "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{path}",
               "PAYCORE_LOG_LEVEL": "WARNING"}
        env.pop("PAYCORE_ACCOUNT_KEYS", None)
        account = options.account
        if options.db is None:
            account = "1001.bank.bench"
            _run(["db", "upgrade"], env)
            _run(["accounts", "open", account, "Bench bank", "asset", "CNY"], env)
        commands = {"paycore --help": ["--help"],
                    f"paycore balance {account}": ["balance", account]}
        print(f"CLI start-up, p50 of {options.runs} fresh processes each "
              f"(goal: under {GOAL_MS} ms on a quiet machine); books: {path}")
        print(f"  load average before: {_load()}; machine speed: sum(range(10**7)) in "
              f"{machine_speed():.2f} s of CPU")
        for label, args in commands.items():
            runs = [_run(args, env) for _ in range(options.runs)]
            wall = statistics.median(w for w, _ in runs) * 1000
            cpu = statistics.median(c for _, c in runs) * 1000
            verdict = "within" if max(wall, cpu) < GOAL_MS else (
                "CPU within" if cpu < GOAL_MS else "over")
            print(f"  {label:<30} CPU p50 {cpu:5.0f} ms (min {min(c for _, c in runs) * 1000:.0f})"
                  f"  wall p50 {wall:5.0f} ms (min {min(w for w, _ in runs) * 1000:.0f})"
                  f"  goal {GOAL_MS} ms: {verdict}")
        print(f"  load average after:  {_load()}")
        for label, args in commands.items():
            print(f"costliest imports of `{label}` (python -X importtime, cumulative):")
            for micros, name in import_times(args, env, options.top):
                print(f"  {micros / 1000:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
