"""The parts of a wide file's conversion that grow faster than its size, each timed both ways.

``wide.py`` times whole conversions; this script takes apart the three choices that make a wide
CSV convert in about half the time, on generated data (in one process, alternated over --rounds,
medians; only ratios count on a shared machine):

- ``distinct``: the sample's distinct values counted by one GROUP BY per column (32 at a time)
  against one over the UNPIVOT of 256 columns at a time (``typing_rules._distinct_values``), on
  sample tables as ``_classify_sample`` sizes them (5 M cells, at least 2,000 rows), for each of
  --columns.
- ``sample read``: the first 2,000 rows of a CSV of --sample-columns columns read as the sample
  is (``text.reader_sql(sample=True)``), on one thread (``parallel=false``) against two, under
  the conversion's default memory limit (700 MB, 667 MiB) with a spill directory: whether it
  spills, and its time.
- ``plan``: planning (``EXPLAIN``) a typed SELECT of --wide columns, half integers and half
  decimals as ``typing_rules.typed_sql`` writes them, with DuckDB's common-subexpression pass on
  and off (``parts.PLAN_BYTES``).

Usage: python benchmarks/wide_parts.py [--columns 20,200,500,1000,3000] [--sample-columns 3000]
                                       [--wide 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from liberacion.convert import text  # noqa: E402
from liberacion.convert import typing_rules as rules  # noqa: E402
from liberacion.convert.typed_copy import SAMPLE_ROWS  # noqa: E402


def timed(rounds: int, ways: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median seconds of each way, alternated in rotated order over the rounds."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for n in range(rounds):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            started = time.perf_counter()
            ways[name]()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def distinct(columns: list[int], rounds: int) -> None:
    print("distinct values of a sample (ms): GROUP BY per column / UNPIVOT")
    for count in columns:
        rows = min(50_000, max(2_000, 5_000_000 // count))
        con = duckdb.connect()
        cells = ", ".join(
            f"CASE WHEN {i} % 2 = 0 THEN (hash(r, {i}) % 10000)::VARCHAR"
            f" ELSE ((hash(r, {i}) % 10000) / 100)::VARCHAR END AS c{i}"
            for i in range(count)
        )
        con.execute(f"CREATE TABLE s AS SELECT {cells} FROM range({rows}) t(r)")
        names = [f"c{i}" for i in range(count)]
        ways = {"per column": _counting(con, names, 10**9), "unpivot": _counting(con, names, 0)}
        medians = {name: 1000 * seconds for name, seconds in timed(rounds, ways).items()}
        print(f"  {count:5d} columns x {rows:6d} rows  {medians['per column']:7.0f}  {medians['unpivot']:7.0f}")


def _counting(con: duckdb.DuckDBPyConnection, names: list[str], unpivot_from: int) -> Callable[[], object]:
    """The distinct values of the sample ``s`` as ``sample_profiles`` counts them, one way."""

    def run() -> object:
        rules.PROFILE_UNPIVOT_FROM = unpivot_from
        con.execute("CREATE OR REPLACE TABLE v (col VARCHAR, v VARCHAR, n BIGINT)")
        for query in rules._distinct_values("s", names):
            con.execute(f"INSERT INTO v {query}")
        return con.execute("SELECT count(*) FROM v").fetchall()

    return run


def write_wide_csv(path: Path, columns: int, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(f"m{i}" for i in range(columns)) + "\n")
        for r in range(rows):
            out.write(",".join(f"{(r * 7919 + i) % 10000 / 100:.2f}" for i in range(columns)) + "\n")


def sample_read(columns: int, rounds: int, work: Path) -> None:
    csv = work / "wide.csv"
    write_wide_csv(csv, columns, 2_000)
    dialect = text._dialect(csv)
    spill = work / "spill"
    print(f"the first 2,000 rows of {columns:,} columns under a 667 MiB limit: seconds, spilled")
    one_thread = text.reader_sql(csv, dialect, dialect.header, sample=True)
    two_threads = one_thread.replace(" parallel=false,", "")  # the sample's reader until 2026-12-07
    if two_threads == one_thread:
        raise SystemExit("text.reader_sql(sample=True) no longer says parallel=false: update this script")
    for label, reader in (("two threads", two_threads), ("one thread", one_thread)):
        # As ``_convert_text`` words the sample: its rows cut first, then rows repeating the header dropped.
        reader = text._without_header_rows(
            f"(SELECT * FROM {reader} LIMIT {SAMPLE_ROWS})", dialect.header, dialect.raw_header, None
        )
        spilled = []

        def run(reader: str = reader, spilled: list[bool] = spilled) -> object:
            con = duckdb.connect()
            con.execute("SET memory_limit = '667MiB'")
            con.execute(f"SET temp_directory = '{spill}'")
            con.execute(f"SELECT count(*) FROM (SELECT * FROM {reader} LIMIT 2000)").fetchall()
            spilled.append(spill.is_dir() and any(spill.iterdir()))
            con.close()
            for leftover in spill.glob("*") if spill.is_dir() else ():
                leftover.unlink()
            return None

        median = timed(rounds, {label: run})[label]
        print(f"  {label:12s} {median:6.2f} s  spilled: {any(spilled)}")


def plan(columns: int, rounds: int) -> None:
    con = duckdb.connect()
    cells = ", ".join(f"'1' AS c{i}" for i in range(columns))
    con.execute(f"CREATE TABLE t AS SELECT {cells}")
    for name, type_ in (("slow_int", "BIGINT"), ("slow_double", "DOUBLE")):
        con.create_function(name, lambda _i, _x: None, ["INTEGER", "VARCHAR"], type_, null_handling="special")
    typed = []
    for i in range(columns):
        kind, slow = (rules.INT, "slow_int") if i % 2 else (rules.DOUBLE, "slow_double")
        typed.append(rules.typed_sql(f"c{i}", rules.Decision(kind), f"{slow}({i}, c{i})", {}))
    query = f"EXPLAIN SELECT {', '.join(typed)} FROM t"

    def run(disabled: str) -> Callable[[], object]:
        def planned() -> object:
            con.execute(f"SET disabled_optimizers = '{disabled}'")
            return con.execute(query).fetchall()

        return planned

    medians = timed(rounds, {"pass on": run(""), "pass off": run("common_subexpressions")})
    print(f"planning a typed SELECT of {columns:,} columns: the common-subexpression pass on / off")
    print(f"  {medians['pass on']:6.2f} s  {medians['pass off']:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--columns", default="20,200,500,1000,3000")
    parser.add_argument("--sample-columns", type=int, default=3000)
    parser.add_argument("--wide", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    distinct([int(c) for c in args.columns.split(",")], args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        sample_read(args.sample_columns, args.rounds, Path(tmp))
    plan(args.wide, args.rounds)
    print(
        f"command: python benchmarks/wide_parts.py --columns {args.columns} --sample-columns {args.sample_columns}"
        f" --wide {args.wide} --rounds {args.rounds}"
    )


if __name__ == "__main__":
    main()
