"""What a typed conversion costs before its COPY starts: the fixed part that every file pays once,
however large (imports, the sample read and profiled, the exact slow paths registered, the marker
counters created). ``convert.py`` times whole conversions, where this part is a few percent of a
gigabyte's and lost in the machine's noise; here it is timed alone.

Each run is a fresh process: it imports liberacion, inspects the file and runs ``convert_part`` up
to the typed COPY, which it does not run. It reports the wall and CPU time until then, and the CPU
time its threads burn in the next half second while the main thread sleeps: what would run beside
DuckDB's COPY (a thread pool spinning, say). The reference, ``duckdb``, is what DuckDB's own COPY
pays before it starts: importing duckdb and connecting.

Versions alternate in rotated order over the rounds: this tree, and each ``--baseline DIR`` (e.g.
``git archive HEAD~1 liberacion | tar -x -C DIR``). ``--env NAME=VALUE`` sets a variable for the
runs of every version; ``--also NAME=VALUE`` adds this tree with that variable set as one more
version. The ``liberacion`` command sets ``OPENBLAS_NUM_THREADS=1`` for itself: ``--env`` it to time
a conversion as the command runs it, ``--also`` it to see what it saves.

Usage: python benchmarks/fixed_costs.py FILE [--rounds 9] [--baseline DIR ...] [--env NAME=VALUE ...]
                                        [--also NAME=VALUE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from compiled import compiled_env

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import json, resource, sys, tempfile, time
start = time.perf_counter()
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
def report():
    wall, before = time.perf_counter() - start, cpu()
    time.sleep(0.5)
    print(json.dumps({"wall": wall, "cpu": before, "after": cpu() - before}))
if sys.argv[2] == "duckdb":
    import duckdb
    duckdb.connect().execute("SET enable_progress_bar = false")
    report()
    sys.exit()
sys.path.insert(0, sys.argv[2])
from pathlib import Path
import liberacion
assert liberacion.__file__.startswith(sys.argv[2]), liberacion.__file__
from liberacion.convert import ConvertOptions, convert_part, inspect, typed_copy
class Reached(BaseException):
    pass
copy_once = typed_copy._copy_once
def until_copy(con, *args, **kwargs):
    execute = con.execute
    class Connection:
        def __getattr__(self, name):
            return getattr(con, name)
        def execute(self, sql, *more):
            if sql.startswith("COPY ("):
                raise Reached
            return execute(sql, *more)
    return copy_once(Connection(), *args, **kwargs)
typed_copy._copy_once = until_copy
work = Path(tempfile.mkdtemp())
options = ConvertOptions()
part = inspect(Path(sys.argv[1]), options, work=work / "work")[0]
try:
    convert_part(part, work / "out", kv_metadata={}, options=options)
except Reached:
    report()
"""


def run(csv: Path, tree: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(csv), tree],
        capture_output=True,
        text=True,
        cwd="/",
        env={**compiled_env(), **env},
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"{tree}: {(done.stderr.strip().splitlines() or ['no report'])[-1]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--baseline", action="append", default=[], help="another version's package folder")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for every version's runs")
    parser.add_argument("--also", help="NAME=VALUE: this tree with it, as one more version")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    trees = {"duckdb": ("duckdb", {}), "this tree": (str(ROOT), env)}
    if args.also:
        trees[f"this tree, {args.also}"] = (str(ROOT), env | dict([args.also.split("=", 1)]))
    trees |= {f"baseline {d}": (str(Path(d).resolve()), env) for d in args.baseline}
    names = list(trees)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for n in range(args.rounds):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            runs[name].append(run(args.file, *trees[name]))
            print(f"round {n + 1} {name}: {json.dumps(runs[name][-1])}", file=sys.stderr, flush=True)
    told = f"; with {' '.join(args.env)}" if env else ""
    print(f"{args.file.name}, {args.rounds} rounds, medians in ms{told}")
    print(f"  {'version':40s} {'wall':>7s} {'CPU':>7s} {'CPU after':>10s}")
    for name in names:
        medians = [statistics.median(r[key] for r in runs[name]) * 1000 for key in ("wall", "cpu", "after")]
        print(f"  {name[:40]:40s} {medians[0]:7.0f} {medians[1]:7.0f} {medians[2]:10.0f}")
    print("command: python benchmarks/fixed_costs.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
