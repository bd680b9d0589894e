"""CSV → Parquet: liberacion's typed conversion vs DuckDB's all-VARCHAR COPY of the same file.

The reference is the COPY liberacion would do if it typed nothing: the same ``read_csv`` call
(liberacion's own reader settings: every column VARCHAR, the sniffed dialect, rejects stored), the
same connection settings (memory limit, insertion order) and zstd. So the ratio is the price of
typing: deciding types, proving them over every value and counting the missing-value markers.

Two files by default, generated under /tmp (benchmarks/generate.py, seeded): the project's messy
file (few markers, traps late in the file) and a marker-heavy variant (15% of the cells of every
numeric column are markers such as ``Not Available``, ``*``, ``Suppressed``, all through the file).

Methods, each in its own process (peak RSS is that process's), alternated in rotated order over
the rounds because the machine is shared and noisy: only ratios count.
- ``duckdb-varchar``: the reference above.
- ``liberacion``: ``convert_part`` (the conversion alone, in the environment the command sets for
  itself: ``OPENBLAS_NUM_THREADS=1``, see the README).
- ``fetch``: ``liberacion fetch FILE`` end to end into a fresh home (hash, inspect, convert, publish).
- ``duckdb-auto`` and ``pandas`` (with ``--methods``): general tools, for their failures on the traps.
- ``baseline`` (with ``--baseline DIR``): ``convert_part`` of another version of the package, e.g.
  ``git archive HEAD~3 liberacion | tar -x -C DIR``; ``baseline-fetch``: its ``fetch FILE``.
Besides wall time each run reports its CPU time (user + system, all threads): on a shared machine
the CPU ratio moves less than the wall ratio.

After the first round liberacion's result is checked: every column's type, and each column's
marker counts against a count made in SQL over the CSV (exact, per spelling).

Usage: python benchmarks/convert.py [--mb 1024] [--rounds 3] [--files messy,markers]
                                    [--methods duckdb-varchar,liberacion,fetch] [--csv FILE ...]
                                    [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from compiled import compiled_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Sets up a connection as convert_part does and returns the reader of argv[1]: the reference and
# the ground-truth check read the file exactly as liberacion does.
READER = """
import duckdb, sys
from pathlib import Path
from liberacion.convert import parts, text
from liberacion.engine import memory_limit
from liberacion.convert.typing_rules import snake_case
source = Path(sys.argv[1])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"SET memory_limit = '{memory_limit()}'")
if source.stat().st_size > parts.ORDERED_BYTES:
    con.execute("SET preserve_insertion_order = false")
con.execute(f"SET temp_directory = '{sys.argv[2]}.tmp'")
dialect = text._dialect(source)
taken = set()
names = [snake_case(h, i + 1, taken) for i, h in enumerate(dialect.header)]
reader = text.reader_sql(source, dialect, dialect.header)
"""

FETCH = """
import sys
from liberacion.cli import main
home = sys.argv[2] + '.home'
sys.argv = ['liberacion', '--home', home, 'fetch', sys.argv[1], '--as', 'bench.t', '--json']
try:
    main()
except SystemExit as stop:
    if stop.code:
        raise RuntimeError(f'exit {stop.code}') from None
"""
BASELINE = """
import os, sys
sys.path.insert(0, os.environ['LIBERACION_BASELINE'])
"""
# The environment the ``liberacion`` command sets for itself (liberacion.cli.app.BLAS_THREADS), for
# the methods that call the API: the conversion as the command runs it.
COMMAND_ENV = """
import os
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
"""

METHODS = {
    "duckdb-varchar": READER
    + """
from liberacion.convert.model import ROW_GROUP_BYTES, ROW_GROUP_ROWS
options = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS}, ROW_GROUP_SIZE_BYTES '{ROW_GROUP_BYTES}'"
con.execute(f"COPY (FROM {reader}) TO '{sys.argv[2]}' ({options})")
""",
    "liberacion": COMMAND_ENV
    + """
import json, sys, inspect as signature
from pathlib import Path
from liberacion.convert import ConvertOptions, convert_part, inspect
out = Path(sys.argv[2]).with_suffix('.d')
work = {'work': out.with_suffix('.work')} if 'work' in signature.signature(inspect).parameters else {}
part = inspect(Path(sys.argv[1]), ConvertOptions(), **work)[0]
report = convert_part(part, out, kv_metadata={}, options=ConvertOptions())
Path(sys.argv[2]).with_suffix('.json').write_text(json.dumps({'rows': report.rows, 'columns': report.columns}))
""",
    "baseline": BASELINE
    + COMMAND_ENV
    + """
import inspect as signature
from pathlib import Path
from liberacion.convert import ConvertOptions, convert_part, inspect
out = Path(sys.argv[2]).with_suffix('.d')
work = {'work': out.with_suffix('.work')} if 'work' in signature.signature(inspect).parameters else {}
part = inspect(Path(sys.argv[1]), ConvertOptions(), **work)[0]
convert_part(part, out, kv_metadata={}, options=ConvertOptions())
""",
    "fetch": FETCH,
    "baseline-fetch": BASELINE + FETCH,
    "duckdb-auto": """
import duckdb, sys
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"COPY (FROM read_csv('{sys.argv[1]}')) TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION zstd)")
""",
    "pandas": """
import sys
import pandas as pd
pd.read_csv(sys.argv[1]).to_parquet(sys.argv[2], compression='zstd')
""",
}

# What every column of the generated file must become (benchmarks/generate.py).
EXPECTED = {
    "facility_id": "VARCHAR", "facility_name": "VARCHAR", "address": "VARCHAR", "city": "VARCHAR",
    "state": "VARCHAR", "zip_code": "VARCHAR", "county_fips": "VARCHAR", "npi": "VARCHAR",
    "phone_number": "VARCHAR", "hospital_type": "VARCHAR", "emergency_services": "BOOLEAN",
    "overall_rating": "BIGINT", "score": "DOUBLE", "measure_start_date": "DATE", "measure_end_date": "DATE",
    "total_payments": "DECIMAL(18,2)", "percent_readmitted": "DOUBLE", "deaths": "BIGINT", "beds": "BIGINT",
    "updated_at": "TIMESTAMP", "sample": "BIGINT", "footnote": "BIGINT", "comments": "VARCHAR",
}  # fmt: skip


def run(method: str, csv: Path, out: Path) -> dict[str, object]:
    """Time one method in a fresh process; returns seconds, peak RSS (MB) and any error."""
    code = (
        "import resource, sys, time\n"
        "start = time.perf_counter()\n"
        "error = None\n"
        f"try:\n    exec({METHODS[method]!r})\n"
        "except Exception as err:\n    error = ' '.join(str(err).split())[:200]\n"
        "import json\n"
        "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(json.dumps({'seconds': time.perf_counter() - start, 'error': error,"
        " 'cpu': usage.ru_utime + usage.ru_stime, 'rss_mb': usage.ru_maxrss / 1024}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(csv), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=compiled_env(),
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{"seconds"')]
    if proc.returncode != 0 or not lines:
        error = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return {"seconds": None, "cpu": None, "error": error, "rss_mb": None}
    return json.loads(lines[-1])


def check_liberacion(csv: Path, report_path: Path, work: Path) -> list[str]:
    """Problems with liberacion's result: a wrong type, or marker counts that differ from SQL's."""
    report = json.loads(report_path.read_text())
    columns = report["columns"]
    problems = [
        f"{name}: {columns.get(name, {}).get('type')} instead of {want}"
        for name, want in EXPECTED.items()
        if columns.get(name, {}).get("type") != want
    ]
    code = (
        READER
        + """
import json
from liberacion.convert.typing_rules import MISSING_MARKERS
typed = json.loads(sys.argv[3])
markers = '[' + ', '.join("'" + m.replace("'", "''") + "'" for m in MISSING_MARKERS) + ']'
counts = {}
for header, name in zip(dialect.header, names):
    if name not in typed:
        continue
    c = '"' + header.replace('"', '""') + '"'
    counts[name] = dict(con.execute(
        f"SELECT trim({c}), count(*) FROM {reader} WHERE list_contains({markers}, lower(trim({c}))) GROUP BY 1"
    ).fetchall())
print(json.dumps(counts))
"""
    )
    typed = [name for name, info in columns.items() if info["type"] != "VARCHAR"]
    proc = subprocess.run(
        [sys.executable, "-c", code, str(csv), str(work / "check"), json.dumps(typed)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    truth = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, counts in truth.items():
        got = columns[name].get("markers") or {}
        if got != counts:
            problems.append(f"{name}: markers {got} but the file holds {counts}")
    return problems


def check_duckdb_auto(out: Path) -> str:
    """Is DuckDB's automatic result right? Look for the zero-padded ZIP codes the file holds."""
    import duckdb

    if not out.exists():
        return "failed (no output)"
    con = duckdb.connect()
    zip_type = con.execute(f"SELECT typeof(\"ZIP Code\") FROM read_parquet('{out}') LIMIT 1").fetchone()[0]  # type: ignore[index]
    return "wrong: ZIP codes lost their leading zeros" if zip_type != "VARCHAR" else "ZIP codes kept"


def bench(csv: Path, methods: list[str], rounds: int, work: Path) -> None:
    results: dict[str, list[dict[str, object]]] = {m: [] for m in methods}
    for round_ in range(rounds):
        order = methods[round_ % len(methods) :] + methods[: round_ % len(methods)]
        for method in order:
            out = work / f"{method}.parquet"
            for stale in work.glob(f"{method}.*"):
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
            os.sync()  # no method pays for writing back the pages another one left dirty
            results[method].append(run(method, csv, out))
            if round_ == 0 and method == "duckdb-auto":
                verdict = results[method][-1]["error"] or check_duckdb_auto(out)
                print(f"  duckdb-auto result: {verdict}")
            if round_ == 0 and method == "liberacion" and not results[method][-1]["error"]:
                problems = check_liberacion(csv, out.with_suffix(".json"), work)
                print("  liberacion result: " + ("; ".join(problems) or "every type right, marker counts exact"))
    reference = results.get("duckdb-varchar")
    print(f"  {'method':<16} {'median s':>9} {'ratio':>7} {'paired':>7} {'CPU s':>7} {'ratio':>7} {'RSS MB':>7}  error")
    for method in methods:
        seconds, cpu = _median(results[method]), _median(results[method], "cpu")
        ratio = paired = cpu_ratio = "-"
        if reference and seconds and _median(reference):
            ratio = f"{seconds / _median(reference):.2f}x"  # type: ignore[operator]
            pairs = [
                float(r["seconds"]) / float(ref["seconds"])  # type: ignore[arg-type]
                for r, ref in zip(results[method], reference)
                if r["seconds"] and ref["seconds"] and not r["error"] and not ref["error"]
            ]
            paired = f"{statistics.median(pairs):.2f}x" if pairs else "-"
            cpu_ratio = f"{cpu / _median(reference, 'cpu'):.2f}x" if cpu else "-"  # type: ignore[operator]
        rss = max((r["rss_mb"] or 0) for r in results[method])  # type: ignore[type-var]
        error = next((r["error"] for r in results[method] if r["error"]), "")
        if error:  # how long it ran before failing: the time a user loses to it
            spent = statistics.median(float(r["seconds"]) for r in results[method] if r["seconds"] is not None)  # type: ignore[arg-type]
            error = f"failed after {spent:.1f} s: {error}"
        times = f"{seconds or 0:9.2f} {ratio:>7} {paired:>7} {cpu or 0:7.2f} {cpu_ratio:>7}"
        print(f"  {method:<16} {times} {rss:7.0f}  {error}")
    for method in methods:  # every round, in order: a run that stands out shows here
        print(f"  {method:<16} runs " + " ".join(f"{float(r['seconds'] or 0):.2f}" for r in results[method]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", default="messy,markers", help="which generated files: messy, markers")
    parser.add_argument("--methods", default="duckdb-varchar,liberacion,fetch")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the generated files (default /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated CSVs")
    parser.add_argument("--csv", type=Path, action="append", help="use this CSV instead of generating (repeatable)")
    parser.add_argument("--baseline", type=Path, help="a directory holding another version's liberacion/ package")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from generate import generate

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.baseline:
        if not (args.baseline / "liberacion" / "__init__.py").exists():
            parser.error(f"--baseline {args.baseline}: no liberacion/ package in it")
        os.environ["LIBERACION_BASELINE"] = str(args.baseline.resolve())
        methods += [] if {"baseline", "baseline-fetch"} & set(methods) else ["baseline"]
    elif "baseline" in methods or "baseline-fetch" in methods:
        parser.error("the baseline methods need --baseline DIR")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method {unknown[0]}; choose from {', '.join(METHODS)}")
    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="liberacion-bench-"))
    files: list[Path] = list(args.csv or [])
    if not files:
        for variant in args.files.split(","):
            csv = work / f"{variant}-{int(args.mb)}mb.csv"
            rows = generate(csv, args.mb, markers=0.15 if variant == "markers" else 0.0)
            print(f"generated {csv.name}: {csv.stat().st_size / 1e9:.2f} GB, {rows:,} rows")
            files.append(csv)
    print(f"methods {', '.join(methods)}; {args.rounds} rounds, rotated; ratio = median / median of duckdb-varchar,")
    print("paired = median of the per-round ratios (the machine is shared: only ratios count)")
    for csv in files:
        print(f"\n{csv.name} ({csv.stat().st_size / 1e9:.2f} GB)")
        bench(csv, methods, args.rounds, work)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)  # the generated files with it


def _median(runs: list[dict[str, object]], key: str = "seconds") -> float | None:
    times = [float(r[key]) for r in runs if r[key] is not None and not r["error"]]  # type: ignore[arg-type]
    return statistics.median(times) if times else None


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
