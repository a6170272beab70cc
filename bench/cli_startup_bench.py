"""How long a `paycore` command takes before it does anything: the start-up of the CLI.

Runs `paycore --help` and `paycore balance ACCOUNT` N times each in fresh processes (a
new interpreter each time, as a person's shell starts it) and prints the median wall
time and the median CPU time of the process (user + system: on a loaded machine the wall
time includes waiting for a core, the CPU time does not), then the modules that
`python -X importtime` says cost most for `--help`.

    .venv/bin/python bench/cli_startup_bench.py [--runs 15] [--top 15]

`paycore balance` runs against a small SQLite file made once before timing (schema
migrated, one account opened), so the figure is start-up plus one read, as a person sees
it. The target is under 0.5 s for both on a quiet machine.
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

CLI = "from paycore.cli import main; main()"


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


def import_times(env: dict[str, str], top: int) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the costliest imports of `paycore --help`."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", CLI, "--help"], env=env,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="processes per command")
    parser.add_argument("--top", type=int, default=15, help="import-time rows to print")
    options = parser.parse_args()
    if options.runs < 1:
        parser.error("--runs must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp)}/b.sqlite",
               "PAYCORE_LOG_LEVEL": "WARNING"}
        _run(["db", "upgrade"], env)
        _run(["accounts", "open", "1001.bank.bench", "Bench bank", "asset", "CNY"], env)
        commands = {"paycore --help": ["--help"],
                    "paycore balance 1001.bank.bench": ["balance", "1001.bank.bench"]}
        print(f"CLI start-up, median of {options.runs} fresh processes each")
        print(f"  load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        for label, args in commands.items():
            runs = [_run(args, env) for _ in range(options.runs)]
            wall = [w for w, _ in runs]
            cpu = [c for _, c in runs]
            print(f"  {label:<34} wall {statistics.median(wall) * 1000:6.0f} ms "
                  f"(min {min(wall) * 1000:.0f}), CPU {statistics.median(cpu) * 1000:6.0f} ms "
                  f"(min {min(cpu) * 1000:.0f})")
        print("costliest imports of `paycore --help` (python -X importtime, cumulative):")
        for micros, name in import_times(env, options.top):
            print(f"  {micros / 1000:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
