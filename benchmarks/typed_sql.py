"""What each kind of typed column costs DuckDB, cell by cell: liberacion's typed SQL against a plain
cast of the same text, in memory (no CSV reading, no Parquet writing: only the expressions).

For each kind (integers, separated integers, decimals, percentages, currency, US dates, ISO
timestamps, booleans) a column of --rows generated values, clean or with 14% of its cells missing-
value markers (``Not Available``, ``*``, ``Suppressed``), and for each, medians over --rounds
alternated rounds of ``SELECT count(expression)``:
- ``text``: the column itself (the floor: reading the text);
- ``cast``: a plain TRY_CAST / TRY_STRPTIME of the text, what a tool that checks nothing does;
- ``typed``: ``typing_rules.typed_sql`` as the typed COPY runs it (fast test, markers counted in SQL,
  the exact slow path registered but not reached);
- for integers, dates and timestamps, ``typed, below ':'``: the same SQL parsing every cell that
  sorts below ``:`` (``*``, ``--`` and ``(NA)`` too: what liberacion did before it parsed only
  text that starts with a digit, or a minus sign for an integer), and ``typed, unguarded``: parsing
  every cell, markers too.
Two more lines show why the guard pays: a failed parse against a good one (``TRY_STRPTIME`` over
markers only and over dates only), and the same for an integer cast.

Figures are milliseconds per million cells over ``text``; the machine is shared, so only
figures of one run compare.

Usage: python benchmarks/typed_sql.py [--rows 4000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MARKERS = ("Not Available", "*", "Suppressed")
KINDS = {  # kind: (SQL making the i-th value, the plain cast of the column {c})
    "int": ("(i % 100000)::VARCHAR", "TRY_CAST({c} AS BIGINT)"),
    "int_sep": ("format('{:,}', (i * 7919) % 10000000)", "TRY_CAST(replace({c}, ',', '') AS BIGINT)"),
    "double": ("round((i % 10000) / 7.0, 2)::VARCHAR", "TRY_CAST({c} AS DOUBLE)"),
    "percent": ("(i % 100)::VARCHAR || '%'", "TRY_CAST(rtrim({c}, '%') AS DOUBLE)"),
    "currency": (
        "'$' || format('{:,}', (i * 7919) % 10000000) || '.' || lpad((i % 100)::VARCHAR, 2, '0')",
        "TRY_CAST(replace(substr({c}, 2), ',', '') AS DECIMAL(18,2))",
    ),
    "date_us": ("strftime(DATE '2020-01-01' + (i % 2000)::INT, '%m/%d/%Y')", "TRY_STRPTIME({c}, '%m/%d/%Y')::DATE"),
    "timestamp": (
        "strftime(TIMESTAMP '2020-01-01' + to_seconds(i * 37), '%Y-%m-%dT%H:%M:%S')",
        "TRY_STRPTIME({c}, '%Y-%m-%dT%H:%M:%S')",
    ),
    "bool": ("CASE WHEN i % 3 = 0 THEN 'No' ELSE 'Yes' END", "CASE {c} WHEN 'Yes' THEN true WHEN 'No' THEN false END"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import duckdb

    from liberacion.convert import typing_rules as rules

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    build = [f"{make} AS {kind}" for kind, (make, _cast) in KINDS.items()]
    marked = ", ".join(f"CASE WHEN i % 7 = 0 THEN '{MARKERS[0]}' WHEN i % 50 = 1 THEN '{MARKERS[1]}'"
                       f" WHEN i % 50 = 2 THEN '{MARKERS[2]}' ELSE {make} END AS {kind}"
                       for kind, (make, _cast) in KINDS.items())  # fmt: skip
    con.execute(f"CREATE TABLE clean AS SELECT {', '.join(build)} FROM range({args.rows}) r(i)")
    con.execute(f"CREATE TABLE markers AS SELECT {marked} FROM range({args.rows}) r(i)")
    con.execute(f"CREATE TABLE only_markers AS SELECT '{MARKERS[0]}' AS c FROM range({args.rows})")
    con.execute(f"CREATE TABLE only_values AS SELECT {KINDS['date_us'][0]} AS c, {KINDS['int'][0]} AS n"
                f" FROM range({args.rows}) r(i)")  # fmt: skip

    queries: dict[str, str] = {}
    for table in ("clean", "markers"):
        for kind, (_make, cast) in KINDS.items():
            decision = rules.Decision(kind, scale=2 if kind == "currency" else 0, spellings=MARKERS)
            slow = f"slow_{kind}"
            if table == "clean":
                con.create_function(slow, lambda _text: None, ["VARCHAR"], decision.sql_type, null_handling="special")
            counters = {}
            for n, spelling in enumerate(MARKERS):
                counters[spelling] = f"seq_{table}_{kind}_{n}"
                con.execute(f"CREATE SEQUENCE {counters[spelling]}")
            typed = rules.typed_sql(kind, decision, f"{slow}({kind})", counters)
            queries[f"{table} {kind} text"] = f"SELECT count({kind}) FROM {table}"
            queries[f"{table} {kind} cast"] = f"SELECT count({cast.replace('{c}', kind)}) FROM {table}"
            queries[f"{table} {kind} typed"] = f"SELECT count({typed}) FROM {table}"
            for guard in (rules._digit_led(f'"{kind}"'), rules._digit_led(f'"{kind}"', signed=True)):
                if guard in typed:
                    below = typed.replace(guard, f"""CASE WHEN "{kind}" < ':' THEN "{kind}" END""")
                    queries[f"{table} {kind} typed, below ':'"] = f"SELECT count({below}) FROM {table}"
                    unguarded = typed.replace(guard, f'"{kind}"')
                    queries[f"{table} {kind} typed, unguarded"] = f"SELECT count({unguarded}) FROM {table}"
    queries["parse: a date"] = "SELECT count(TRY_STRPTIME(c, '%m/%d/%Y')) FROM only_values"
    queries["parse: a marker as a date"] = "SELECT count(TRY_STRPTIME(c, '%m/%d/%Y')) FROM only_markers"
    queries["cast: an integer"] = "SELECT count(TRY_CAST(n AS BIGINT)) FROM only_values"
    queries["cast: a marker as an integer"] = "SELECT count(TRY_CAST(c AS BIGINT)) FROM only_markers"
    queries["read: the dates' text"] = "SELECT count(c) FROM only_values"
    queries["read: the markers' text"] = "SELECT count(c) FROM only_markers"

    times: dict[str, list[float]] = {name: [] for name in queries}
    names = list(queries)
    for round_ in range(args.rounds):
        shift = round_ * 7 % len(names)
        for name in names[shift:] + names[:shift]:  # rotated: no query always runs first or last
            start = time.perf_counter()
            con.execute(queries[name]).fetchall()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    per_million = 1e3 * 1e6 / args.rows  # seconds over the rows -> ms per million cells

    print(f"{args.rows:,} cells per column, {args.rounds} rounds; ms per million cells over reading the text")
    for table in ("clean", "markers"):
        print(f"\n{table}" + (" (14% of the cells markers)" if table == "markers" else ""))
        for kind in KINDS:
            base = median[f"{table} {kind} text"]
            cells = [
                f"{label} {(median[key] - base) * per_million:6.1f}"
                for label, key in (
                    ("cast", f"{table} {kind} cast"),
                    ("typed", f"{table} {kind} typed"),
                    ("typed, below ':'", f"{table} {kind} typed, below ':'"),
                    ("typed, unguarded", f"{table} {kind} typed, unguarded"),
                )
                if key in median
            ]
            print(f"  {kind:10s} " + "   ".join(cells))
    print("\nfailed against good (ms per million cells over reading the text)")
    pairs = {  # what: (the good parse, the failed one)
        "a date": ("parse: a date", "parse: a marker as a date"),
        "an integer": ("cast: an integer", "cast: a marker as an integer"),
    }
    for what, (good, bad) in pairs.items():
        good_ms = (median[good] - median["read: the dates' text"]) * per_million  # ints and dates: one table
        bad_ms = (median[bad] - median["read: the markers' text"]) * per_million
        print(f"  {what:10s} good {good_ms:6.1f}   failed {bad_ms:6.1f}   ({bad_ms / max(good_ms, 1e-9):.1f}x)")


if __name__ == "__main__":
    main()
