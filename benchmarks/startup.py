"""Start-up time of `liberacion --help` and `liberacion tables` (empty home) vs a bare interpreter.

Usage: python benchmarks/startup.py [--runs N]
The goal (issue: foundation) is under 0.3 s for both on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "liberacion --help": [sys.executable, "-m", "liberacion", "--help"],
    "liberacion tables (empty home)": [sys.executable, "-m", "liberacion", "tables"],
    "liberacion sql 'select 42'": [sys.executable, "-m", "liberacion", "sql", "select 42"],
}


def measure(command: list[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "LIBERACION_HOME": os.path.join(home, "empty")}
        for command in CASES.values():  # warm the file cache
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        print(f"{'command':<34} {'min':>8} {'median':>8} {'max':>8}")
        for name, command in CASES.items():
            t = measure(command, args.runs, env)
            print(f"{name:<34} {min(t) * 1000:7.0f}ms {statistics.median(t) * 1000:7.0f}ms {max(t) * 1000:7.0f}ms")


if __name__ == "__main__":
    main()
