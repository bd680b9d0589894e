"""JSON documents → Parquet: Socrata ``rows.json`` and openFDA ``{meta, results}`` files.

Two generated files (seeded), each about ``--mb`` MB:
- ``socrata``: a ``rows.json`` as Socrata serves it: ``meta.view.columns`` (its eight bookkeeping
  columns first), then ``data``, one list of values per row, numbers as strings, a location as a
  nested list, a check box as true/false.
- ``openfda``: openFDA's bulk shape, pretty-printed, its records the animal and veterinary events
  of ``../shared/realdata`` (repeated with fresh ids), or nested records of the same shape when
  that file is absent.

Methods, each in its own process, alternated in rotated order over the rounds (only ratios count):
- ``duckdb``: the reference, DuckDB's own JSON reader: ``COPY`` of the same records to Parquet with
  zstd, types as DuckDB infers them, from a file written beforehand (untimed): openFDA's list as
  it stands in the document (a pretty-printed array), Socrata's rows as JSON Lines of records.
- ``liberacion``: ``convert_part`` of the document, as the Python API runs it.
- ``baseline`` (with ``--baseline DIR``): ``convert_part`` of another version of the package, e.g.
  ``git archive HEAD~3 liberacion | tar -x -C DIR``; its table is checked equal to liberacion's
  (types and every row).

Usage: python benchmarks/json_records.py [--mb 200] [--rounds 3] [--files socrata,openfda]
                                         [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANIMAL = ROOT.parent / "shared" / "realdata" / "fda" / "Business-Intelligence-Coursework"
ANIMAL = ANIMAL / "animalandveterinary-event-0001-of-0001.json"

CONVERT = """
import sys
from pathlib import Path
from liberacion.convert import ConvertOptions, convert_part, inspect
out = Path(sys.argv[2]) / 'table'
part = inspect(Path(sys.argv[1]), ConvertOptions(), work=out.with_suffix('.work'))[0]
convert_part(part, out, kv_metadata={}, options=ConvertOptions())
"""
METHODS = {
    "duckdb": """
import duckdb, sys
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
fmt = 'array' if sys.argv[3].endswith('.json') else 'newline_delimited'
con.execute(f"COPY (FROM read_json('{sys.argv[3]}', format='{fmt}')) TO '{sys.argv[2]}/data.parquet'"
            " (FORMAT parquet, COMPRESSION zstd)")
""",
    "liberacion": CONVERT,
    "baseline": "import os, sys\nsys.path.insert(0, os.environ['LIBERACION_BASELINE'])\n" + CONVERT,
}


def socrata(path: Path, mb: float) -> Path:
    """A Socrata rows.json of about ``mb`` MB; returns its records as JSON Lines (the reference's input)."""
    rng = random.Random(7)
    bookkeeping = [":sid", ":id", ":position", ":created_at", ":created_meta", ":updated_at", ":updated_meta", ":meta"]
    own = ["year", "state", "zip_code", "county_fips", "measure", "value", "lower_ci", "upper_ci", "deaths"]
    own += ["population", "start_date", "footnote", "location", "rate", "flag", "note"]
    columns = [
        {"id": 100 + i, "name": n.strip(":"), "fieldName": n, "position": i, "description": n}
        for i, n in enumerate(bookkeeping + own)
    ]
    head = '{\n  "meta" : {\n    "view" : ' + json.dumps({"id": "abcd-1234", "columns": columns}, indent=2) + "\n  },\n"
    lines = path.with_suffix(".jsonl")
    with open(path, "w") as doc, open(lines, "w") as records:
        doc.write(head + '  "data" : [ ')
        size, i = 0, 0
        while size < mb * 1e6:
            v = rng.random() * 100
            values = [
                str(2000 + i % 20), rng.choice(["NY", "CA", "TX", "MA", "PR"]), f"{rng.randrange(99999):05d}",
                f"{rng.randrange(1000, 56999):05d}", "Heart disease mortality",
                f"{v:.1f}" if rng.random() > 0.1 else None,
                f"{v - 3:.1f}", f"{v + 3:.1f}", str(rng.randrange(5000)), str(rng.randrange(1000, 10**7)),
                f"20{i % 20:02d}-01-01T00:00:00", "Suppressed" if rng.random() < 0.2 else None,
                [None, f"{rng.uniform(25, 48):.6f}", f"{rng.uniform(-120, -70):.6f}", None, False],
                f"{rng.random() * 10:.2f}", rng.random() < 0.5, "Some note text here",
            ]  # fmt: skip
            kept = [f"row-{i:08x}", f"00000000-0000-0000-{i:04x}-000000000000", 0, 1600000000 + i, None]
            text = ("\n, " if i else "") + json.dumps([*kept, 1600000000 + i, None, "{ }", *values])
            doc.write(text)
            records.write(json.dumps(dict(zip(own, values))) + "\n")
            size, i = size + len(text), i + 1
        doc.write("\n ]\n}\n")
    return lines


def openfda(path: Path, mb: float) -> Path:
    """An openFDA bulk file of about ``mb`` MB; returns its list of records alone (an array file)."""
    if ANIMAL.exists():
        source = json.loads(ANIMAL.read_bytes())
        meta, samples = source["meta"], source["results"]
    else:
        meta = {"last_updated": "2021-11-28", "results": {"skip": 0, "limit": 1, "total": 1}}
        samples = [
            {
                "receiver": {"city": "X", "postal_code": "02115"},
                "drug": [{"brand_name": "B", "dose": {"numerator": "1"}}],
                "reaction": [{"veddra_term_name": "Vomiting", "veddra_term_code": "2"}],
                "onset_date": "20190104",
            }
        ]
    listed = path.with_name(f"{path.stem}-list.json")
    with open(path, "w") as doc, open(listed, "w") as records:
        doc.write('{\n"meta": ' + json.dumps(meta, indent=2) + ',\n"results": ')
        records.write("[\n")
        size, i = 0, 0
        while size < mb * 1e6:
            record = dict(samples[i % len(samples)], unique_aer_id_number=f"N{i:09d}")
            text = (",\n" if i else "") + json.dumps(record, indent=2)
            records.write(text)
            size, i = size + len(text), i + 1
        records.write("\n]")
    with open(listed, "rb") as records, open(path, "ab") as doc:
        shutil.copyfileobj(records, doc)
        doc.write(b"\n}\n")
    return listed


def run(method: str, document: Path, lines: Path, out: Path) -> dict[str, float | None]:
    code = (
        "import resource, sys, time\nstart = time.perf_counter()\n"
        f"exec({METHODS[method]!r})\n"
        "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        "import json\nprint(json.dumps({'seconds': time.perf_counter() - start, 'cpu': usage.ru_utime + usage.ru_stime,"
        " 'rss_mb': usage.ru_maxrss / 1024}))\n"
    )
    out.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(document), str(out), str(lines)], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode:
        print(f"  {method} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        return {"seconds": None, "cpu": None, "rss_mb": None}
    return json.loads(proc.stdout.strip().splitlines()[-1])


SAME_TABLE = """
import duckdb, sys
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
left, right = (f"read_parquet('{p}/table/data-*.parquet')" for p in sys.argv[1:3])
if con.execute(f"DESCRIBE FROM {left}").fetchall() != con.execute(f"DESCRIBE FROM {right}").fetchall():
    print("different types")
else:
    differ = sum(con.execute(f"SELECT count(*) FROM (FROM {x} EXCEPT ALL FROM {y})").fetchone()[0]
                 for x, y in ((left, right), (right, left)))
    print(f"{differ:,} rows differ" if differ else "the same table (types and every row)")
"""


def same_table(a: Path, b: Path) -> str:
    """In its own process: this one's peak memory would count in every run started after it."""
    proc = subprocess.run([sys.executable, "-c", SAME_TABLE, str(a), str(b)], capture_output=True, text=True)
    return proc.stdout.strip() or proc.stderr.strip()[-200:]


def bench(document: Path, lines: Path, methods: list[str], rounds: int, work: Path) -> None:
    results: dict[str, list[dict[str, float | None]]] = {m: [] for m in methods}
    for round_ in range(rounds):
        for method in methods[round_ % len(methods) :] + methods[: round_ % len(methods)]:
            out = work / method
            shutil.rmtree(out, ignore_errors=True)
            os.sync()
            results[method].append(run(method, document, lines, out))
        if round_ == 0 and "baseline" in methods:
            print(f"  liberacion against baseline: {same_table(work / 'liberacion', work / 'baseline')}")
    reference = _median(results["duckdb"])
    print(f"  {'method':<12} {'median s':>9} {'ratio':>7} {'paired':>7} {'CPU s':>7} {'RSS MB':>7}")
    for method in methods:
        seconds = _median(results[method])
        ratio = f"{seconds / reference:.2f}x" if seconds and reference else "-"
        pairs = [
            r["seconds"] / ref["seconds"]
            for r, ref in zip(results[method], results["duckdb"])
            if r["seconds"] and ref["seconds"]
        ]
        paired = f"{statistics.median(pairs):.2f}x" if pairs else "-"
        cpu = _median(results[method], "cpu") or 0
        rss = max(r["rss_mb"] or 0 for r in results[method])
        print(f"  {method:<12} {seconds or 0:9.2f} {ratio:>7} {paired:>7} {cpu:7.2f} {rss:7.0f}")
    for method in methods:
        print(f"  {method:<12} runs " + " ".join(f"{r['seconds'] or 0:.2f}" for r in results[method]))


def _median(runs: list[dict[str, float | None]], key: str = "seconds") -> float | None:
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None  # type: ignore[type-var]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", default="socrata,openfda")
    parser.add_argument("--baseline", type=Path, help="a directory holding another version's liberacion/ package")
    args = parser.parse_args()
    methods = ["duckdb", "liberacion"]
    if args.baseline:
        if not (args.baseline / "liberacion" / "__init__.py").exists():
            parser.error(f"--baseline {args.baseline}: no liberacion/ package in it")
        os.environ["LIBERACION_BASELINE"] = str(args.baseline.resolve())
        methods.append("baseline")
    makers = {"socrata": socrata, "openfda": openfda}
    work = Path(tempfile.mkdtemp(prefix="liberacion-json-"))
    try:
        print(f"{', '.join(methods)}; {args.rounds} rounds, rotated; ratio = median / median of duckdb")
        for kind in args.files.split(","):
            document = work / f"{kind}.json"
            lines = makers[kind](document, args.mb)
            print(f"\n{kind}: {document.stat().st_size / 1e6:.0f} MB")
            bench(document, lines, methods, args.rounds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
