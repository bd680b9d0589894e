"""Start-up and query overhead: liberacion against a bare interpreter and plain DuckDB.

Usage: python benchmarks/startup.py [--runs N] [--rows N] [--tables N] [--iceberg] [--baseline DIR]

Measures, each command alternating with the others round by round (the machine is shared and
noisy: compare the medians of one run, never figures from different runs):
- `liberacion --help`, `tables` on an empty home, and the shell completion of a table name;
- `liberacion sql "select 42"` against `python -c "import duckdb; duckdb.sql('select 42')"`;
- a group-by over a generated table of --rows rows (published in a home that also holds --tables
  small tables) through `liberacion sql`, against the same query in plain DuckDB from Python over
  the same Parquet files. Both write the result as CSV to a pipe.

With --iceberg, the same tables are also published into a lake of Iceberg tables in a directory
(``--lake``) and `sql 'select 42'` and the group-by run over it too (issue 14: they keep the home
lake's figures).

With --baseline DIR (a directory holding another version's liberacion/ package, e.g. ``git archive
HEAD~3 liberacion | tar -x -C DIR``), `--help`, `tables`, `sql 'select 42'` and the group-by also
run with that version, in the same rounds, over the same home: a change's cost on start-up, side
by side.

Targets (issues 12 and 13): --help under 150 ms, `sql "select 42"` under 250 ms, a query's fixed
overhead over plain DuckDB under 0.1 s.
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

from compiled import NEUTRAL, package_env

ROOT = Path(__file__).resolve().parent.parent
LIBERACION = [sys.executable, "-m", "liberacion"]
GROUP_BY = "select state, count(*) as n, avg(score) as score from {table} group by state order by state"


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, every thread) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=NEUTRAL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def make_lake(home: Path, rows: int, tables: int, env: dict[str, str]) -> list[str]:
    """A home with one big table and a few small ones; the Parquet files of the big one."""
    import duckdb

    work = home.parent
    big = work / "big.parquet"
    duckdb.sql(
        f"COPY (SELECT i AS id, ['MA','NY','TX','CA','PR','VT','ME','NJ'][1 + i % 8] AS state, "
        f"(i * 7919 % 1000) / 10.0 AS score, 'facility ' || i AS name FROM range({rows}) t(i)) "
        f"TO '{big}' (FORMAT parquet, COMPRESSION zstd)"
    )
    small = work / "small.csv"
    small.write_text("code,name\n01,one\n02,two\n", encoding="utf-8")
    fetch = {"env": env, "cwd": NEUTRAL, "check": True, "capture_output": True}
    subprocess.run([*LIBERACION, "fetch", str(big), "--as", "bench.big"], **fetch)
    for i in range(tables):
        subprocess.run([*LIBERACION, "fetch", str(small), "--as", f"bench.small_{i}"], **fetch)
    return sorted(str(p) for p in (home / "lake" / "bench" / "big" / "snapshots").glob("*/data-*.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--tables", type=int, default=20)
    parser.add_argument("--iceberg", action="store_true", help="also over a lake of Iceberg tables")
    parser.add_argument("--baseline", type=Path, help="a directory holding another version's liberacion/ package")
    args = parser.parse_args()
    this = package_env(ROOT)
    # Only where it imports liberacion from: the case's own home stays (not the caller's LIBERACION_HOME).
    before = {"PYTHONPATH": package_env(args.baseline)["PYTHONPATH"]} if args.baseline else {}
    with tempfile.TemporaryDirectory() as tmp:
        empty = {**this, "LIBERACION_HOME": os.path.join(tmp, "empty")}
        home = Path(tmp) / "home"
        lake = {**this, "LIBERACION_HOME": str(home)}
        files = make_lake(home, args.rows, args.tables, lake)
        plain_group_by = GROUP_BY.format(table=f"read_parquet({files!r})")
        plain_copy = f"COPY ({plain_group_by}) TO '/dev/stdout' (HEADER)"
        complete = {
            **lake,
            "_LIBERACION_COMPLETE": "complete_bash",
            "COMP_WORDS": "liberacion info ben",
            "COMP_CWORD": "2",
        }
        cases = {
            "python -c pass": ([sys.executable, "-c", "pass"], empty),
            "liberacion --help": ([*LIBERACION, "--help"], empty),
            "liberacion tables (empty home)": ([*LIBERACION, "tables"], empty),
            "completion of a table name": ([*LIBERACION], complete),
            "duckdb.sql('select 42')": (
                [sys.executable, "-c", "import duckdb; duckdb.sql('select 42').fetchall()"],
                empty,
            ),
            "liberacion sql 'select 42'": ([*LIBERACION, "sql", "select 42"], empty),
            f"plain DuckDB group-by ({args.rows:,} rows)": (
                [sys.executable, "-c", f"import duckdb; duckdb.sql({plain_copy!r})"],
                lake,
            ),
            f"liberacion sql group-by ({args.tables + 1} tables)": (
                [*LIBERACION, "sql", GROUP_BY.format(table="bench.big")],
                lake,
            ),
        }
        if args.iceberg:
            ice = {**lake, "LIBERACION_HOME": str(Path(tmp) / "home-ice"), "LIBERACION_LAKE": str(Path(tmp) / "ice")}
            make_lake(Path(tmp) / "home-ice", args.rows, args.tables, ice)
            cases["liberacion sql 'select 42' (iceberg lake)"] = ([*LIBERACION, "sql", "select 42"], ice)
            group_by = [*LIBERACION, "sql", GROUP_BY.format(table="bench.big")]
            cases["liberacion sql group-by (iceberg lake)"] = (group_by, ice)
        if args.baseline:
            cases["baseline --help"] = ([*LIBERACION, "--help"], {**empty, **before})
            cases["baseline tables (empty home)"] = ([*LIBERACION, "tables"], {**empty, **before})
            cases["baseline sql 'select 42'"] = ([*LIBERACION, "sql", "select 42"], {**empty, **before})
            group_by = [*LIBERACION, "sql", GROUP_BY.format(table="bench.big")]
            cases["baseline sql group-by"] = (group_by, {**lake, **before})
        for command, env in cases.values():  # warm the file cache
            timed(command, env)
        wall: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for round_ in range(args.runs):
            names = list(cases)
            names = names[round_ % len(names) :] + names[: round_ % len(names)]  # rotate the order
            for name in names:
                command, env = cases[name]
                w, c = timed(command, env)
                wall[name].append(w)
                cpu[name].append(c)
        print(f"{'command':<44} {'wall min':>9} {'median':>7} {'max':>7} {'cpu median':>11}")
        for name in cases:
            w, c = wall[name], cpu[name]
            print(
                f"{name:<44} {min(w) * 1000:7.0f}ms {statistics.median(w) * 1000:5.0f}ms {max(w) * 1000:5.0f}ms "
                f"{statistics.median(c) * 1000:9.0f}ms"
            )
        plain, group_by_plain = "duckdb.sql('select 42')", f"plain DuckDB group-by ({args.rows:,} rows)"
        pairs = [
            ("sql 'select 42'", "liberacion sql 'select 42'", plain),
            ("group-by", f"liberacion sql group-by ({args.tables + 1} tables)", group_by_plain),
        ]
        if args.iceberg:
            pairs += [
                ("iceberg lake: sql 'select 42'", "liberacion sql 'select 42' (iceberg lake)", plain),
                ("iceberg lake: group-by", "liberacion sql group-by (iceberg lake)", group_by_plain),
            ]
        if args.baseline:
            pairs += [
                ("baseline: sql 'select 42'", "baseline sql 'select 42'", plain),
                ("baseline: group-by", "baseline sql group-by", group_by_plain),
            ]
        for label, ours, theirs in pairs:
            for kind, series in (("wall", wall), ("cpu", cpu)):
                a, b = statistics.median(series[ours]), statistics.median(series[theirs])
                print(f"{label} over plain DuckDB ({kind}): {a / b:.2f}x, +{(a - b) * 1000:.0f} ms")
        print("CPU time counts every thread of a run; a loaded machine stretches wall time far more than it.")


if __name__ == "__main__":
    main()
