"""SAS transport conversion time against rows: linear reading keeps seconds per million rows flat.

    .venv/bin/python benchmarks/xpt.py 3000000

Writes two generated XPORT v5 files (N/4 and N rows of 20 variables, 157 bytes: an id, 16
numbers with missing values, a date, an 11-character text with blanks, a 2-character code; so
250,000 rows a chunk), converts each with
``liberacion fetch FILE --as bench.x`` in a fresh home, and prints seconds, peak RSS and seconds per
million rows for both. A reader that re-reads the file up to each chunk (quadratic) shows about
four times the seconds per million rows at N as at N/4. ``--keep DIR`` leaves the files there
(they are deleted otherwise).

    .venv/bin/python benchmarks/xpt.py 3000000 --baseline DIR --rounds 5

This checkout against the ``liberacion/`` package under DIR (``git archive REV liberacion | tar -x
-C DIR``) on one file of N rows, in alternated rounds: medians of seconds and peak RSS.

    .venv/bin/python benchmarks/xpt.py 250 --variables 2000

Wide files instead: N/4 and N rows of that many numeric variables (5% missing). pyreadstat sets
aside 100,000 rows a variable for a transport file, read by groups of variables to stay within
``PREALLOCATED_BYTES``: peak RSS stays about 0.4 GB at 2,000 variables (1.7 GB in one read).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_xpt(path: Path, rows: int) -> None:
    """An XPORT v5 file of ``rows`` rows, made in blocks so that generating it stays small."""
    import datetime as dt

    import numpy as np
    import pandas as pd
    import pyreadstat

    rng = np.random.default_rng(7)
    ids = np.arange(rows, dtype=np.float64)
    value = rng.normal(50, 10, rows).round(3)
    value[rng.random(rows) < 0.1] = np.nan
    days = rng.integers(0, 20_000, rows)
    base = dt.date(1970, 1, 1)
    dates = [base + dt.timedelta(days=int(d)) for d in days]
    words = np.array(["alpha", "beta gamma", "", "delta-epsil", "   ", "z"])
    text = words[rng.integers(0, len(words), rows)]
    codes = np.array(["A1", "B2", "C3", ""])[rng.integers(0, 4, rows)]
    columns = {"SEQN": ids, "VALUE": value, "DAY": dates, "TEXT": text, "CODE": codes}
    for i in range(15):  # measurements: whole numbers and decimals, some missing
        numbers = rng.integers(0, 1000, rows) / (1 if i % 2 else 8)
        columns[f"M{i:02d}"] = np.where(rng.random(rows) < 0.05, np.nan, numbers)
    pyreadstat.write_xport(pd.DataFrame(columns), str(path), table_name="BENCH", file_format_version=5)


def write_wide_xpt(path: Path, rows: int, variables: int) -> None:
    """An XPORT v5 file of ``rows`` rows of ``variables`` numbers, a twentieth of them missing."""
    import numpy as np
    import pandas as pd
    import pyreadstat

    rng = np.random.default_rng(7)
    columns = {}
    for i in range(variables):
        numbers = rng.integers(0, 1000, rows) / (1 if i % 2 else 8)
        columns[f"V{i}"] = np.where(rng.random(rows) < 0.05, np.nan, numbers)
    pyreadstat.write_xport(pd.DataFrame(columns), str(path), table_name="WIDE", file_format_version=5)


def convert(path: Path, home: Path, package: Path = ROOT) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one conversion, measured by /usr/bin/time around the CLI run
    from ``package`` (a directory holding ``liberacion/``: this checkout, or a baseline)."""
    shutil.rmtree(home, ignore_errors=True)
    command = ["/usr/bin/time", "-f", "%M KB %e s", sys.executable, "-m", "liberacion"]
    command += ["--home", str(home), "fetch", str(path), "--as", "bench.x"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=package)
    if done.returncode:
        raise SystemExit(f"conversion failed: {done.stderr.strip()}")
    match = re.search(r"(\d+) KB ([\d.]+) s", done.stderr)
    assert match, done.stderr
    return float(match.group(2)), int(match.group(1)) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int, nargs="?", default=2_000_000)
    parser.add_argument("--keep", type=Path, help="write the files here and leave them")
    parser.add_argument("--variables", type=int, help="wide files: this many numeric variables")
    parser.add_argument("--baseline", type=Path, help="also convert with the liberacion/ package under DIR")
    parser.add_argument("--rounds", type=int, default=1, help="alternated rounds of each (medians)")
    args = parser.parse_args()
    if args.baseline:
        compare(args)
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if args.variables:
            print(f"{args.variables:,} variables")
        print(f"{'rows':>12} {'MB':>8} {'seconds':>8} {'peak RSS MB':>12} {'s per M rows':>13}")
        for rows in (max(1, args.rows // 4), args.rows):
            path = folder / f"bench_{rows}.xpt"
            if args.variables:
                write_wide_xpt(path, rows, args.variables)
            else:
                write_xpt(path, rows)
            seconds, rss = convert(path, Path(scratch) / f"home_{rows}")
            size = path.stat().st_size / 1e6
            print(f"{rows:>12,} {size:>8.1f} {seconds:>8.1f} {rss:>12.0f} {seconds / rows * 1e6:>13.2f}")
            if not args.keep:
                path.unlink()


def compare(args: argparse.Namespace) -> None:
    """This checkout against ``--baseline`` on the same file of ``rows`` rows, in alternated rounds:
    medians of seconds and peak RSS, and their ratios."""
    with tempfile.TemporaryDirectory() as scratch:
        path = (args.keep or Path(scratch)) / f"bench_{args.rows}.xpt"
        path.parent.mkdir(parents=True, exist_ok=True)
        (write_wide_xpt(path, args.rows, args.variables) if args.variables else write_xpt(path, args.rows))
        runs: dict[str, list[tuple[float, float]]] = {"liberacion": [], "baseline": []}
        packages = {"liberacion": ROOT, "baseline": args.baseline.resolve()}
        for round_ in range(args.rounds):
            for name in list(packages)[:: 1 if round_ % 2 == 0 else -1]:
                seconds, rss = convert(path, Path(scratch) / "home", packages[name])
                runs[name].append((seconds, rss))
                print(f"round {round_ + 1} {name:<10} {seconds:6.1f} s {rss:6.0f} MB", flush=True)
        time = {n: statistics.median(r[0] for r in v) for n, v in runs.items()}
        peak = {n: statistics.median(r[1] for r in v) for n, v in runs.items()}
        print(f"{path.stat().st_size / 1e6:.0f} MB file, {args.rows:,} rows, {args.rounds} rounds (medians)")
        for name in runs:
            print(f"{name:<10} {time[name]:6.1f} s {peak[name]:6.0f} MB peak RSS")
        print(
            f"liberacion / baseline: {time['liberacion'] / time['baseline']:.2f}x time,"
            f" {peak['liberacion'] / peak['baseline']:.2f}x peak RSS"
        )


if __name__ == "__main__":
    main()
