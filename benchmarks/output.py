"""Writing a large result: `liberacion sql --output` as CSV, JSON, JSON Lines and Markdown, against DuckDB's COPY.

Usage: python benchmarks/output.py [--rows N] [--runs N]

A table of --rows rows and 10 columns (text with commas and quotes, leading-zero codes, numbers,
a decimal, a date, a timestamp, a boolean) is published in a scratch home; then each format is
written with `liberacion sql "select * from bench.rows" --output out.<ext>`, the formats
alternating round by round (the machine is shared and noisy: compare the medians of one run).
The reference is the same query written by plain DuckDB (`COPY ... TO` from Python) over the
same Parquet files.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIBERACION = [sys.executable, "-m", "liberacion"]
COLUMNS = (
    "i AS id, ['MA','NY','TX','CA','PR'][1 + i % 5] AS state, lpad((i * 37 % 99999)::VARCHAR, 5, '0') AS zip, "
    "(i * 7919 % 1000) / 10.0 AS score, (i % 500)::INTEGER AS beds, (i % 1000 / 100)::DECIMAL(6, 2) AS rate, "
    "DATE '2001-01-01' + (i % 9000)::INTEGER AS opened, TIMESTAMP '2026-01-01' + to_seconds(i) AS updated, "
    "i % 3 = 0 AS emergency, CASE WHEN i % 50 = 0 THEN 'Mercy \"General\", Inc.' ELSE 'Hospital ' || i END AS name"
)


# Markdown goes through Arrow and liberacion's own writer, not DuckDB's COPY.
EXTENSIONS = ("csv", "json", "jsonl", "md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "LIBERACION_HOME": str(work / "home")}
        source = work / "rows.parquet"
        duckdb.sql(f"COPY (SELECT {COLUMNS} FROM range({args.rows}) t(i)) TO '{source}' (FORMAT parquet)")
        subprocess.run(
            [*LIBERACION, "fetch", str(source), "--as", "bench.rows"], env=env, check=True, capture_output=True
        )
        files = sorted(str(p) for p in (work / "home" / "lake" / "bench" / "rows").glob("snapshots/*/data-*.parquet"))
        plain = f"SELECT * FROM read_parquet({files!r})"
        cases: dict[str, list[str]] = {}
        for ext in EXTENSIONS:
            cases[f"liberacion sql --output out.{ext}"] = [
                *LIBERACION,
                "sql",
                "select * from bench.rows",
                "--output",
                str(work / f"out.{ext}"),
            ]
        copy = f"COPY ({plain}) TO '{work / 'plain.csv'}' (HEADER)"
        cases["plain DuckDB COPY to CSV"] = [sys.executable, "-c", f"import duckdb; duckdb.sql({copy!r})"]
        times: dict[str, list[float]] = {name: [] for name in cases}
        for round_ in range(args.runs):
            names = list(cases)
            names = names[round_ % len(names) :] + names[: round_ % len(names)]  # rotate the order
            for name in names:
                start = time.perf_counter()
                subprocess.run(cases[name], env=env, check=True, capture_output=True)
                times[name].append(time.perf_counter() - start)
        sizes = {ext: (work / f"out.{ext}").stat().st_size for ext in EXTENSIONS}
        csv_median = statistics.median(times["liberacion sql --output out.csv"])
        print(f"{args.rows:,} rows x 10 columns, {args.runs} rounds")
        print(f"{'command':<36} {'min':>7} {'median':>7} {'max':>7}  {'vs CSV':>6}")
        for name, t in times.items():
            median = statistics.median(t)
            print(f"{name:<36} {min(t):6.2f}s {median:6.2f}s {max(t):6.2f}s  {median / csv_median:5.2f}x")
        print("output sizes: " + ", ".join(f"{ext} {size / 1e6:.0f} MB" for ext, size in sizes.items()))


if __name__ == "__main__":
    main()
