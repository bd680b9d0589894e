"""CSV → Parquet: liberacion vs DuckDB (and pandas when installed), time and peak memory.

Each method runs in its own process (peak RSS is that process's), in rotated order over several
rounds, on the same generated file (benchmarks/generate.py, seeded). DuckDB's automatic COPY is
also checked for correctness: on this file it fails or loses leading zeros.

Usage: python benchmarks/convert.py [--mb 1024] [--rounds 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

METHODS = {
    "duckdb-auto": """
import duckdb, sys
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"COPY (FROM read_csv('{sys.argv[1]}')) TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION zstd)")
""",
    "duckdb-varchar": """
import duckdb, sys
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(
    f"COPY (FROM read_csv('{sys.argv[1]}', all_varchar=true)) TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION zstd)")
""",
    "liberacion": """
import sys
from pathlib import Path
from liberacion.convert import ConvertOptions, convert_part, inspect
out = Path(sys.argv[2]).with_suffix('.d')
part = inspect(Path(sys.argv[1]), ConvertOptions())[0]
convert_part(part, out, kv_metadata={}, options=ConvertOptions())
""",
    "pandas": """
import sys
import pandas as pd
pd.read_csv(sys.argv[1]).to_parquet(sys.argv[2], compression='zstd')
""",
}


def run(method: str, csv: Path, out: Path) -> dict[str, object]:
    """Time one method in a fresh process; returns seconds, peak RSS (MB) and any error."""
    code = (
        "import resource, sys, time\n"
        "start = time.perf_counter()\n"
        "error = None\n"
        f"try:\n    exec({METHODS[method]!r})\n"
        "except Exception as err:\n    error = ' '.join(str(err).split())[:200]\n"
        "import json\n"
        "print(json.dumps({'seconds': time.perf_counter() - start, 'error': error,"
        " 'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(csv), str(out)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"seconds": None, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1], "rss_mb": None}
    return json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])


def check_duckdb_auto(csv: Path, out: Path) -> str:
    """Is DuckDB's automatic result right? Look for the zero-padded ZIP codes the file holds."""
    import duckdb

    if not out.exists():
        return "failed (no output)"
    con = duckdb.connect()
    zip_type = con.execute(f"SELECT typeof(\"ZIP Code\") FROM read_parquet('{out}') LIMIT 1").fetchone()[0]  # type: ignore[index]
    return "wrong: ZIP codes lost their leading zeros" if zip_type != "VARCHAR" else "ZIP codes kept"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the generated file")
    parser.add_argument("--keep", action="store_true", help="keep the generated CSV")
    parser.add_argument("--csv", type=Path, default=None, help="use this CSV instead of generating one")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from generate import generate

    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="liberacion-bench-"))
    if args.csv is not None:
        csv = args.csv
        print(f"{csv.name}: {csv.stat().st_size / 1e9:.2f} GB")
    else:
        csv = work / f"messy-{int(args.mb)}mb.csv"
        rows = generate(csv, args.mb)
        print(f"{csv.name}: {csv.stat().st_size / 1e9:.2f} GB, {rows:,} rows")
    methods = [m for m in METHODS if m != "pandas" or _has_pandas()]
    results: dict[str, list[dict[str, object]]] = {m: [] for m in methods}
    for round_ in range(args.rounds):
        order = methods[round_ % len(methods) :] + methods[: round_ % len(methods)]
        for method in order:
            out = work / f"{method}.parquet"
            results[method].append(run(method, csv, out))
            if method == "duckdb-auto" and round_ == 0:
                verdict = results[method][-1]["error"] or check_duckdb_auto(csv, out)
                print(f"duckdb-auto result: {verdict}")
    reference = _median(results["duckdb-varchar"])
    print(f"\n{'method':<16} {'median s':>9} {'vs duckdb':>10} {'peak RSS MB':>12}  error")
    for method in methods:
        seconds = _median(results[method])
        ratio = f"{seconds / reference:.2f}x" if seconds and reference else "-"
        rss = max((r["rss_mb"] or 0) for r in results[method])  # type: ignore[type-var]
        error = next((r["error"] for r in results[method] if r["error"]), "")
        if error:  # how long it ran before failing: the time a user loses to it
            spent = statistics.median(float(r["seconds"]) for r in results[method] if r["seconds"] is not None)
            error = f"failed after {spent:.1f} s: {error}"
        print(f"{method:<16} {seconds or 0:9.2f} {ratio:>10} {rss:12.0f}  {error}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def _median(runs: list[dict[str, object]]) -> float | None:
    times = [float(r["seconds"]) for r in runs if r["seconds"] is not None and not r["error"]]  # type: ignore[arg-type]
    return statistics.median(times) if times else None


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
