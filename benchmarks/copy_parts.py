"""Where a typed conversion's time goes, step by step, on one CSV file.

``convert.py`` compares whole conversions, each in its own process. This script takes one
conversion apart inside one process and one DuckDB connection (the one ``convert_part`` sets up,
with its reader and settings), and times each step of the typed SQL against the same COPY with
every column left as text:
- ``text``: ``COPY (SELECT every column as it is)``, the untyped reference;
- ``fast``: each typed column as its fast test and value only (``CASE WHEN test THEN value END``):
  what proving the canonical spellings costs;
- ``uncounted``: the typed SQL with the markers turned into NULL by one ``IN`` list, not counted;
- ``typed``: the typed SQL as the conversion runs it (each marker spelling counted by its sequence).
It also times the sample (reading it and deciding the types: ``_decide``) once, cold, as the
conversion pays it.

With ``--cold`` each step runs in a fresh process whose first COPY it is, as in ``convert.py``
(the sample is read and decided first in every process, untimed); the steps alternate as above.

With ``--operators`` each COPY is also profiled by DuckDB (``enable_profiling``): the CPU seconds
of its reader (``READ_CSV``), its projections (the typed SQL) and its writer (``COPY_TO_FILE``, the
Parquet encoding and zstd), summed over threads, medians per step.

With ``--columns`` the steps are instead one per typed column: that column typed as the
conversion types it (markers counted), every other column left as text; each is reported as the
time it adds to ``text`` (what typing that one column costs, net of writing it as text).

The steps alternate in rotated order over --rounds; medians, and each step's ratio to ``text``.

Usage: python benchmarks/copy_parts.py FILE [--rounds 6] [--columns] [--cold] [--operators]
       (e.g. the marker-heavy file: benchmarks/generate.py /tmp/markers.csv --mb 1024 --markers 0.15)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _Done(Exception):
    """Raised by the stand-in COPY once the steps are timed: the conversion goes no further."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--columns", action="store_true", help="one step per typed column instead")
    parser.add_argument("--cold", action="store_true", help="each step in a fresh process, its first COPY")
    parser.add_argument("--operators", action="store_true", help="also DuckDB's CPU seconds per operator")
    parser.add_argument("--step", help=argparse.SUPPRESS)  # one COPY of this step, timed, then exit
    args = parser.parse_args()
    if args.cold:
        report(args, _cold(args))
        return

    from liberacion.convert import ConvertOptions, convert_part, inspect, typed_copy

    timings: dict[str, list[float]] = {}  # steps, and "(sample)": a name no column has
    operators: dict[str, dict[str, list[float]]] = {}  # step: {operator: CPU seconds per round}
    kinds: dict[str, str] = {}
    decide = typed_copy._decide

    def timed_decide(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        try:
            return decide(*a, **k)
        finally:
            timings["(sample)"] = [time.perf_counter() - started]

    def steps(con: Any, relation: str, columns: list[Any], decisions: dict[str, Any], *_: Any, **__: Any) -> None:
        selects = (_column_selects if args.columns else _selects)(typed_copy, con, columns, decisions)
        kinds.update({c.name: decisions[c.source].kind for c in columns})
        out = Path(tempfile.mkdtemp(prefix="copy-parts-"))
        options = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {typed_copy.ROW_GROUP_ROWS}"
        names = list(selects)
        if args.step:
            started = time.perf_counter()
            con.execute(f"COPY (SELECT {selects[args.step]} FROM {relation}) TO '{out / 'step'}.parquet' ({options})")
            print(json.dumps({"seconds": time.perf_counter() - started}))
            raise _Done
        for n in range(args.rounds):
            for name in names[n % len(names) :] + names[: n % len(names)]:
                profile = out / f"{name}.json"
                if args.operators:
                    con.execute(f"PRAGMA enable_profiling = 'json'; PRAGMA profiling_output = '{profile}'")
                started = time.perf_counter()
                con.execute(f"COPY (SELECT {selects[name]} FROM {relation}) TO '{out / name}.parquet' ({options})")
                timings.setdefault(name, []).append(time.perf_counter() - started)
                if args.operators:
                    con.execute("PRAGMA disable_profiling")
                    for operator, seconds in _operator_seconds(json.loads(profile.read_text())).items():
                        operators.setdefault(name, {}).setdefault(operator, []).append(seconds)
                print(f"round {n + 1} {name:28s} {timings[name][-1]:.2f}s", file=sys.stderr, flush=True)
        raise _Done

    typed_copy._decide = timed_decide
    typed_copy._copy_once = steps
    with tempfile.TemporaryDirectory() as work:
        options = ConvertOptions()
        part = inspect(args.file, options, work=Path(work) / "work")[0]
        with contextlib.suppress(_Done):
            convert_part(part, Path(work) / "out", kv_metadata={}, options=options)
    if args.step:
        return
    if args.columns:
        report_columns(args, timings, kinds)
    else:
        report(args, timings)
    if operators:
        report_operators(operators)


def _cold(args: argparse.Namespace) -> dict[str, list[float]]:
    """Each step's COPY timed in its own process, the steps in rotated order over the rounds."""
    names = ["text", "fast", "uncounted", "typed"]
    timings: dict[str, list[float]] = {}
    for n in range(args.rounds):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            command = [sys.executable, __file__, str(args.file), "--step", name]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            timings.setdefault(name, []).append(json.loads(done.stdout.splitlines()[-1])["seconds"])
            print(f"round {n + 1} {name:28s} {timings[name][-1]:.2f}s (cold)", file=sys.stderr, flush=True)
    return timings


def _selects(typed_copy: Any, con: Any, columns: list[Any], decisions: dict[str, Any]) -> dict[str, str]:
    """Each step's select list over the conversion's own columns and decisions."""
    rules, quote = typed_copy.rules, typed_copy.quote_ident
    slow = typed_copy._slow_paths(con, columns, decisions, strict=True)
    counters = typed_copy._counters(con, columns, decisions)

    def fast(column: Any) -> str:
        decision = decisions[column.source]
        if decision.kind == rules.TEXT:
            return quote(column.source)
        test, value = rules._fast_sql(quote(column.source), decision)
        return f"CASE WHEN {test} THEN {value} END"

    def listing(sql: Any) -> str:
        return ", ".join(f"{sql(c)} AS {quote(c.name)}" for c in columns)

    return {
        "text": listing(lambda c: quote(c.source)),
        "fast": listing(fast),
        "uncounted": listing(lambda c: typed_copy._typed(c, decisions, slow, None)),
        "typed": listing(lambda c: typed_copy._typed(c, decisions, slow, counters)),
    }


def _column_selects(typed_copy: Any, con: Any, columns: list[Any], decisions: dict[str, Any]) -> dict[str, str]:
    """``text``, then one select list per typed column: that column typed, the others text."""
    rules, quote = typed_copy.rules, typed_copy.quote_ident
    slow = typed_copy._slow_paths(con, columns, decisions, strict=True)
    counters = typed_copy._counters(con, columns, decisions)

    def listing(typed: str | None) -> str:
        return ", ".join(
            f"{typed_copy._typed(c, decisions, slow, counters) if c.source == typed else quote(c.source)}"
            f" AS {quote(c.name)}"
            for c in columns
        )

    typed = [c for c in columns if decisions[c.source].kind != rules.TEXT]
    return {"text": listing(None)} | {c.name: listing(c.source) for c in typed}


def report_columns(args: argparse.Namespace, timings: dict[str, list[float]], kinds: dict[str, str]) -> None:
    text = statistics.median(timings["text"])
    print(f"\n{args.file.name} ({args.file.stat().st_size / 1e9:.2f} GB), {args.rounds} rounds, medians")
    print(f"  text {text:6.2f} s; each typed column alone, the time it adds:")
    for name in (n for n in timings if n not in ("text", "(sample)")):
        added = statistics.median(timings[name]) - text
        print(f"  {name:28s} {kinds[name]:10s} {1000 * added:+6.0f} ms  {added / text:+6.1%}")
    print(f"command: python benchmarks/copy_parts.py {args.file} --rounds {args.rounds} --columns")


def _operator_seconds(profile: dict[str, Any]) -> dict[str, float]:
    """CPU seconds per operator kind of one profiled query (DuckDB sums its threads' time)."""
    found: dict[str, float] = {}

    def walk(node: dict[str, Any]) -> None:
        # Files kept in row order (up to 64 MB) are written by the ordered writer: one column.
        kind = node["name"].removeprefix("BATCH_")
        found[kind] = found.get(kind, 0.0) + node["timing"]
        for child in node.get("children", ()):  # a leaf has none
            walk(child)

    for node in profile["operator"]:
        walk(node)
    return found


def report_operators(operators: dict[str, dict[str, list[float]]]) -> None:
    kinds = ["READ_CSV", "FILTER", "PROJECTION", "COPY_TO_FILE"]
    print("  CPU seconds per operator (DuckDB's profile, summed over threads), medians:")
    print("  " + " " * 10 + "".join(f"{kind:>14s}" for kind in [*kinds, "all"]))
    for name, found in operators.items():
        medians = {kind: statistics.median(seconds) for kind, seconds in found.items()}
        cells = "".join(f"{medians.get(kind, 0.0):14.2f}" for kind in kinds)
        print(f"  {name:10s}{cells}{sum(medians.values()):14.2f}")


def report(args: argparse.Namespace, timings: dict[str, list[float]]) -> None:
    text = statistics.median(timings["text"])
    print(f"\n{args.file.name} ({args.file.stat().st_size / 1e9:.2f} GB), {args.rounds} rounds, medians")
    for name in ("text", "fast", "uncounted", "typed"):
        seconds = statistics.median(timings[name])
        print(f"  {name:10s} {seconds:6.2f} s  {seconds / text:5.3f}x text")
    if "(sample)" in timings:
        sample = timings["(sample)"][0]
        print(f"  sample     {sample:6.2f} s  {sample / text:5.3f} of text (read and decide, once, cold)")
    flags = (" --cold" if args.cold else "") + (" --operators" if args.operators else "")
    print(f"command: python benchmarks/copy_parts.py {args.file} --rounds {args.rounds}{flags}")


if __name__ == "__main__":
    main()
