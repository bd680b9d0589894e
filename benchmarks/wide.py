"""Wide files: the conversion of a CSV of thousands of columns, with DuckDB's common-subexpression
pass on and off, against DuckDB's all-VARCHAR COPY of the same file.

DuckDB plans the typed COPY's SELECT (a CASE per column) with a common-subexpression pass whose
time grows with the square of the columns; a file whose fields² x ``parts.PLAN_BYTES`` is more than
its size (from ``parts.PLANNED_FROM`` fields) is converted with it off. This script shows the
choice: each method in a fresh process, alternated in rotated order over the rounds; medians (only
ratios count on a shared machine).

- ``duckdb-varchar``: COPY of the file with every column as text through liberacion's reader
  (the sniffed dialect, no type detection), zstd: the floor.
- ``liberacion``: ``convert_part`` as it runs.
- ``liberacion-cse``: the same with the pass left on (``PLANNED_FROM`` raised past the file).
- ``baseline`` (with ``--baseline DIR``, a directory holding another version's ``liberacion/``
  package, e.g. ``git archive HEAD~1 liberacion | tar -x -C DIR``): ``liberacion`` with that version.

Usage: python benchmarks/wide.py [--columns 3000] [--rows 2000] [--rounds 3] [--baseline DIR] [--no-cse]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from compiled import NEUTRAL, package_env

ROOT = Path(__file__).resolve().parent.parent

CONVERT = """
import shutil, sys
from pathlib import Path
from liberacion.convert import ConvertOptions, convert_part, inspect, parts
if sys.argv[3] == 'cse':
    parts.PLANNED_FROM = 10**9
out = Path(sys.argv[2])
shutil.rmtree(out, ignore_errors=True)
part = inspect(Path(sys.argv[1]), ConvertOptions(), work=out.with_suffix('.work'))[0]
convert_part(part, out, kv_metadata={}, options=ConvertOptions())
"""
COPY = """
import duckdb, sys
from pathlib import Path
from liberacion.convert import text
source = Path(sys.argv[1])
dialect = text._dialect(source)
con = duckdb.connect()
reader = text.reader_sql(source, dialect, dialect.header)
con.execute(f"COPY (FROM {reader}) TO '{sys.argv[2]}.parquet' (FORMAT parquet, COMPRESSION zstd)")
"""
METHODS = {"duckdb-varchar": (COPY, "-"), "liberacion": (CONVERT, "-"), "liberacion-cse": (CONVERT, "cse")}


def generate(path: Path, columns: int, rows: int) -> None:
    """Integers and decimals, half each, seeded: every column typed."""
    rng = random.Random(7)
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(f"measure_{i}" for i in range(columns)) + "\n")
        for _ in range(rows):
            cells = (str(rng.randint(0, 9999)) if i % 2 else f"{rng.random() * 100:.2f}" for i in range(columns))
            out.write(",".join(cells) + "\n")


def run(method: str, csv: Path, out: Path, baseline: Path | None = None) -> float:
    """One method in a fresh process, this tree's package or (``baseline``) the other version's."""
    code, mode = METHODS["liberacion" if method == "baseline" else method]
    timed = f"import time\nstart = time.perf_counter()\nexec({code!r})\nprint(time.perf_counter() - start)\n"
    proc = subprocess.run(
        [sys.executable, "-c", timed, str(csv), str(out), mode],
        capture_output=True,
        text=True,
        cwd=NEUTRAL,
        env=package_env(baseline if method == "baseline" and baseline else ROOT),
        check=True,
    )
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--columns", type=int, default=3000)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="a directory holding another version's liberacion/ package")
    parser.add_argument("--no-cse", action="store_true", help="leave out liberacion-cse (the slowest)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "wide.csv"
        generate(csv, args.columns, args.rows)
        names = [m for m in METHODS if not (args.no_cse and m == "liberacion-cse")]
        names += ["baseline"] if args.baseline else []
        times: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(args.rounds):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                times[name].append(run(name, csv, Path(tmp) / name, args.baseline))
        size = csv.stat().st_size / 1e6
        print(f"{args.columns:,} columns x {args.rows:,} rows ({size:.0f} MB), {args.rounds} rounds, medians")
        floor = statistics.median(times["duckdb-varchar"])
        for name in names:
            median = statistics.median(times[name])
            print(f"  {name:16s} {median:6.2f} s  {median / floor:5.2f}x duckdb-varchar")
        print(json.dumps({name: [round(t, 2) for t in values] for name, values in times.items()}))


if __name__ == "__main__":
    main()
