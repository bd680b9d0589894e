"""A terminal table of a large result: `liberacion sql QUERY` in a pseudo-terminal, to its last line.

Usage: python benchmarks/terminal_table.py [--rows N] [--runs N] [--tree DIR ...]

A table of --rows rows and 10 columns (those of benchmarks/output.py) is published in a scratch
home; then each query is shown as a terminal table (stdout a pseudo-terminal of 40 x 200), whose
footer counts every row of the result: a sort of the whole table, a GROUP BY of many groups sorted
by count, a plain scan, and a GROUP BY of five groups (what a small result pays). Each --tree (a
checkout of liberacion, put first on PYTHONPATH; default: the installed one) runs every query,
trees and queries alternating round by round (the machine is shared and noisy: compare the medians
of one run). Each run's footer must be the same in every tree.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from output import COLUMNS

LIBERACION = [sys.executable, "-m", "liberacion"]
QUERIES = {
    "sorted whole table": "select * from bench.rows order by name, id",
    "many groups, sorted": "select zip, count(*) as n, avg(score) from bench.rows group by zip order by n desc, zip",
    "plain scan": "select * from bench.rows",
    "five groups, sorted": "select state, count(*) as n from bench.rows group by state order by n desc, state",
}


def shown(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Seconds until the command ends, run with a pseudo-terminal as stdout; its footer line. In
    ``cwd``, away from any checkout: ``python -m`` puts the current directory before PYTHONPATH."""
    import pty

    main, child = pty.openpty()
    os.set_blocking(main, True)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=child, stderr=child, env=env, cwd=cwd)
    os.close(child)
    output = bytearray()
    while True:
        try:
            block = os.read(main, 1 << 16)
        except OSError:  # the child closed the terminal
            break
        if not block:
            break
        output += block
    process.wait()
    elapsed = time.perf_counter() - start
    os.close(main)
    text = re.sub(r"\x1b\[[0-9;]*m", "", output.decode("utf-8", "replace"))  # without colours
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[3:])} exited {process.returncode}:\n{text[-2000:]}")
    footer = next((line for line in reversed(text.splitlines()) if re.search(r"\d rows?\b", line)), "")
    return elapsed, " ".join(footer.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tree", action="append", default=[], help="a liberacion checkout to time (repeatable)")
    args = parser.parse_args()
    import duckdb

    trees = [str(Path(t).resolve()) for t in args.tree] or [""]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
        env.update(LIBERACION_HOME=str(work / "home"), TERM="xterm-256color", COLUMNS="200", LINES="40")
        source = work / "rows.parquet"
        duckdb.sql(f"COPY (SELECT {COLUMNS} FROM range({args.rows}) t(i)) TO '{source}' (FORMAT parquet)")
        subprocess.run(
            [*LIBERACION, "fetch", str(source), "--as", "bench.rows"], env=env, check=True, capture_output=True
        )
        cases = [(tree, name) for name in QUERIES for tree in trees]
        times: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
        footers: dict[str, set[str]] = {name: set() for name in QUERIES}
        for round_ in range(args.runs):
            order = cases[round_ % len(cases) :] + cases[: round_ % len(cases)]  # rotate the order
            for tree, name in order:
                run_env = {**env, "PYTHONPATH": tree} if tree else env
                elapsed, footer = shown([*LIBERACION, "sql", QUERIES[name]], run_env, work)
                times[(tree, name)].append(elapsed)
                footers[name].add(footer)
        print(f"{args.rows:,} rows x 10 columns, {args.runs} rounds, a terminal of 40 x 200")
        print(f"{'query':<22} {'tree':<28} {'min':>7} {'median':>7} {'max':>7}")
        for tree, name in cases:
            t = times[(tree, name)]
            label = tree or "installed"
            print(f"{name:<22} {label[-28:]:<28} {min(t):6.2f}s {statistics.median(t):6.2f}s {max(t):6.2f}s")
        for name, seen in footers.items():
            print(f"{name}: footer {' / '.join(sorted(seen))}")
            if len(seen) != 1:
                raise SystemExit(f"{name}: the trees' footers differ")


if __name__ == "__main__":
    main()
