"""Typing and writing, shared by text and JSON: a sample decides each column's type
(typing_rules), and one typed COPY writes the Parquet while proving the types over *every* value
and counting the missing-value markers (in SQL for the spellings the sample showed and the
common ones, in Python for any other). A value the sample did not foresee stops that COPY; only
then are all values classified (one scan, for the surprised columns) and the COPY run again. Bad
rows go to ``rejects.parquet``, and too many of them fail the conversion."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import liberacion.convert.typing_rules as rules
from liberacion.convert.model import (
    BLOCK,
    MAX_LINE_BYTES,
    ROW_GROUP_BYTES,
    ROW_GROUP_ROWS,
    ConversionReport,
    ConvertOptions,
    _Column,
    _sql_text,
)
from liberacion.engine import create_function, preload_functions
from liberacion.errors import ConversionError, one_line, option
from liberacion.naming import quote_ident

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb

SAMPLE_ROWS = 50_000
SAMPLE_CHARS = 256  # of each value in the sample
MAX_COUNTERS = 1_000  # marker counters (sequences) in one COPY


class NotUtf8(Exception):
    """The reader, told the file was UTF-8, found bytes that are not (the caller transcodes it)."""


def _write_typed(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: list[_Column],
    out_dir: Path,
    kv: dict[str, str],
    options: ConvertOptions,
    notes: dict[str, Any],
    passthrough: dict[str, str] | None = None,
    *,
    native: str = "JSON",
    strict_columns: bool = True,
    utf8: bool = True,
    sample: str | None = None,
    delimiter: str = ",",
    cut_line: bytes | None = None,
    source: Path | None = None,
) -> ConversionReport:
    """Decide types, write Parquet (one scan when the sample was right) and rejects; return the report.

    ``passthrough`` holds the columns the reader already typed ({source: SQL type}, e.g. JSON
    numbers or SAS variables; ``native`` names the reader): they are kept as they are, unless
    ``--raw`` or a ``--type`` names them, or they have no type at all (an all-null JSON key): then
    their text goes through the same rules as every text column. ``strict_columns``: a ``--type``
    naming no column of the table is an error (a table that is one of several only notes it).
    ``utf8=False``: the reader's UTF-8 was not checked beforehand; ``NotUtf8`` when it finds
    otherwise (before any rejects are written or counted). ``sample``: the same rows as ``relation``
    through a reader that is quicker to start, for the sample that decides the types.
    ``delimiter``: the text's, to tell rows a bad one swallowed from its own lines. ``cut_line``:
    the end of the text's last line when the file does not end with a line end (see ``_refuse_cut``).
    ``source``: the file the text's reader reads, for the whole text of a long bad row.
    """
    if not options.raw:  # --raw registers no function: every column stays text
        preload_functions()  # while the sample is read
    unmatched = _check_overrides(columns, options, strict=strict_columns)
    if unmatched:
        notes["unmatched_types"] = unmatched
    kept = dict(passthrough or {})
    texts = {}
    for column in columns:
        type_ = kept.get(column.source)
        if type_ is None:
            continue
        wanted = _wanted(options, column)
        # NULL: no value anywhere; JSON: a key holding strings here and numbers there (a ZIP as
        # "02115" and 2115): both are typed from their text, like any text column.
        untyped = type_.strip('"').upper() in ("NULL", "JSON")
        # A JSON number under an identifier's name (NPPES's NPI as "number": 1234567893) is an id.
        identifier = native == "JSON" and not wanted and rules.is_identifier_name(column.name)
        whole = type_.strip('"').upper() in ("BIGINT", "INTEGER", "UBIGINT", "HUGEINT")
        if untyped or (identifier and whole) or options.raw or (wanted and rules.override(wanted).sql_type != type_):
            texts[column.source] = rules.text_view(column.source, type_)
            del kept[column.source]
    nested = _nested_texts(con, relation, kept) if native == "JSON" else {}
    texts |= nested
    sample = sample or relation
    if texts:
        replaced = ", ".join(f"{sql} AS {quote_ident(source)}" for source, sql in texts.items())
        relation = f"(SELECT * REPLACE ({replaced}) FROM {relation})"
        sample = f"(SELECT * REPLACE ({replaced}) FROM {sample})"
    if nested:  # their types now, for the report
        listed = ", ".join(map(quote_ident, nested))
        kept |= {s: str(t) for s, t in zip(nested, con.sql(f"SELECT {listed} FROM {relation} LIMIT 0").types)}
    read_as = dict(kept)  # the reader's types, which the rule each column follows names
    portable = _portable_casts(con, relation, kept)
    if portable:
        replaced = ", ".join(
            f"CAST({quote_ident(source)} AS {type_}) AS {quote_ident(source)}" for source, type_ in portable.items()
        )
        relation = f"(SELECT * REPLACE ({replaced}) FROM {relation})"
        sample = f"(SELECT * REPLACE ({replaced}) FROM {sample})"
        kept |= portable
    decisions = _decide(con, sample, [c for c in columns if c.source not in kept], options)
    decisions |= {
        c.source: rules.Decision(rules.TEXT, reason=f"{native} {read_as[c.source]}")
        for c in columns
        if c.source in kept
    }
    target = out_dir / "data-0000.parquet"
    rows, markers = _copy_typed(con, relation, columns, decisions, target, kv, notes)
    if not utf8 and "store_rejects" in relation and _invalid_encoding(con):
        raise NotUtf8
    rejects, lines = (0, 0)
    if "store_rejects" in relation:
        rejects, lines = _write_rejects(con, out_dir / "rejects.parquet", kv, delimiter, len(columns), source)
    if lines > rejects:
        notes["rejected_lines"] = lines
    if rejects and cut_line:
        _refuse_cut(con, cut_line, len(columns), out_dir / "rejects.parquet")
    first = _first_reject(con, out_dir / "rejects.parquet") if rejects and not rows else ""
    _check_bad_rows(rows, rejects, options, lines=lines, first=first)
    described = {c.name: _column_report(c, decisions[c.source], markers.get(c.source), options) for c in columns}
    for name, type_ in passthrough_types(con, relation, columns, kept):
        described[name]["type"] = type_
    return ConversionReport(rows=rows, rejects=rejects, columns=described, notes=notes)


def _nested_texts(con: duckdb.DuckDBPyConnection, relation: str, kept: dict[str, str]) -> dict[str, str]:
    """{source: SQL} for the nested JSON columns (objects, lists) some field of which must be text
    (``rules.nested_text_sql``); their types are read from DuckDB only when one may hold such a field."""
    nested = [source for source, type_ in kept.items() if type_.startswith("STRUCT") or type_.endswith("]")]
    if not nested:
        return {}
    listed = ", ".join(quote_ident(source) for source in nested)
    types = con.sql(f"SELECT {listed} FROM {relation} LIMIT 0").types
    found = {source: rules.nested_text_sql(quote_ident(source), type_) for source, type_ in zip(nested, types)}
    return {source: sql for source, sql in found.items() if sql is not None}


# {reader's type: (common type, SQL true when every value of the column {c} fits it)}
_LOSSLESS = {
    "timestamp_ns": ("TIMESTAMP", "coalesce(bool_and(epoch_ns({c}) % 1000 = 0), true)"),
    "ubigint": ("BIGINT", "coalesce(max({c}) <= 9223372036854775807, true)"),
}


def _portable_casts(con: duckdb.DuckDBPyConnection, relation: str, kept: dict[str, str]) -> dict[str, str]:
    """{source: SQL type} for the columns a reader typed that common Parquet readers cannot read
    (``rules.portable_type``): stored as text, except a column that loses nothing as a common type:
    nanosecond timestamps that are all whole microseconds (TIMESTAMP), unsigned 64-bit numbers that
    all fit a BIGINT."""
    suspects = [source for source, type_ in kept.items() if rules.UNPORTABLE_NAMES.search(type_)]
    if not suspects:
        return {}
    listed = ", ".join(map(quote_ident, suspects))
    types = con.sql(f"SELECT {listed} FROM {relation} LIMIT 0").types
    found = {source: rules.portable_type(type_) for source, type_ in zip(suspects, types)}
    for source, type_ in zip(suspects, types):
        if type_.id in _LOSSLESS:
            common, test = _LOSSLESS[type_.id]
            [(fits,)] = con.sql(f"SELECT {test.format(c=quote_ident(source))} FROM {relation}").fetchall()
            found[source] = common if fits else "VARCHAR"
    return {source: type_ for source, type_ in found.items() if type_ is not None}


def _copy_typed(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: list[_Column],
    decisions: dict[str, rules.Decision],
    target: Path,
    kv: dict[str, str],
    notes: dict[str, Any],
) -> tuple[int, dict[str, dict[str, int]]]:
    """One typed COPY whose casts fail fast on a value the sample did not foresee; only then are
    the columns checked over every value, the surprised ones classified again, and the COPY rerun.

    Returns the row count and, per column, the missing-value markers the scan turned into NULL.
    Changes ``decisions`` in place when a column had to be classified again.
    """
    copy = _copy_once(con, relation, columns, decisions, target, kv)
    if copy is None:
        notes["reclassified"] = _reclassify(con, relation, columns, decisions)
        copy = _copy_once(con, relation, columns, decisions, target, kv, retry=False)
    assert copy is not None
    return copy


def _copy_once(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: list[_Column],
    decisions: dict[str, rules.Decision],
    target: Path,
    kv: dict[str, str],
    *,
    retry: bool = True,
) -> tuple[int, dict[str, dict[str, int]]] | None:
    """The typed COPY: (rows, markers), or None when a value surprised it and ``retry`` allows it."""
    slow = _slow_paths(con, columns, decisions, strict=True)
    counters = _counters(con, columns, decisions)
    select = ", ".join(f"{_typed(c, decisions, slow, counters)} AS {quote_ident(c.name)}" for c in columns)
    metadata = ", ".join(f"'{_sql_text(k)}': '{_sql_text(v)}'" for k, v in kv.items())
    try:
        rows = con.execute(
            f"COPY (SELECT {select} FROM {relation}) TO '{_sql_text(str(target))}'"
            f" (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS},"
            f" ROW_GROUP_SIZE_BYTES '{ROW_GROUP_BYTES}', KV_METADATA {{{metadata}}})"
        ).fetchall()[0][0]
    except Exception as err:  # duckdb.Error: a surprise, a broken file
        surprised = [path for path, _ in slow.values() if path.surprises]
        if not surprised or not retry:
            raise _engine_error(err) from None
        _refuse_override(surprised[0])
        return None
    _add_counted(con, slow, counters)
    return int(rows), {source: _by_count(path.markers) for source, (path, _) in slow.items() if path.markers}


def _by_count(markers: dict[str, int]) -> dict[str, int]:
    return dict(sorted(markers.items(), key=lambda item: (-item[1], item[0])))


def _typed(
    column: _Column,
    decisions: dict[str, rules.Decision],
    slow: dict[str, tuple[rules.SlowPath, str]],
    counters: dict[str, dict[str, str]] | None = None,
) -> str:
    path = slow.get(column.source)
    counted = None if counters is None else counters.get(column.source, {})
    return rules.typed_sql(column.source, decisions[column.source], path[1] if path else "NULL", counted)


_slow_names = itertools.count(1)  # a function name is registered once per connection
_sequence_names = itertools.count(1)


def _counters(
    con: duckdb.DuckDBPyConnection, columns: list[_Column], decisions: dict[str, rules.Decision]
) -> dict[str, dict[str, str]]:
    """A fresh sequence per typed column and marker spelling: {source: {spelling: sequence}}.

    Counting markers in SQL (``nextval``) instead of in the Python slow path keeps a file where
    markers fill many cells at DuckDB's speed; a sequence is exact however many threads scan.
    """
    typed = [c for c in columns if decisions[c.source].kind != rules.TEXT]
    # Creating a sequence takes a fraction of a millisecond: a very wide table counts only its
    # columns' first spellings (the sample's most frequent first) in SQL, the rest in Python.
    each = MAX_COUNTERS // max(1, len(typed))
    counters: dict[str, dict[str, str]] = {}
    for column in typed:
        spellings = decisions[column.source].sql_spellings[:each]
        if spellings:
            counters[column.source] = {s: f"liberacion_markers_{next(_sequence_names)}" for s in spellings}
    names = [name for spellings in counters.values() for name in spellings.values()]
    if names:
        con.execute("; ".join(f"CREATE TEMP SEQUENCE {name}" for name in names))
    return counters


def _add_counted(
    con: duckdb.DuckDBPyConnection, slow: dict[str, tuple[rules.SlowPath, str]], counters: dict[str, dict[str, str]]
) -> None:
    """Add the markers the SQL path counted to each column's slow-path counts (by trimmed spelling)."""
    names = [name for spellings in counters.values() for name in spellings.values()]
    if not names:
        return
    listed = ", ".join(f"'{name}'" for name in names)
    counted = dict(
        con.execute(
            f"SELECT sequence_name, last_value FROM duckdb_sequences() WHERE sequence_name IN ({listed})"
        ).fetchall()
    )
    for source, spellings in counters.items():
        for spelling, name in spellings.items():
            if counted.get(name):
                slow[source][0].count(spelling.strip(), int(counted[name]))


def _invalid_encoding(con: duckdb.DuckDBPyConnection) -> bool:
    """Did the last scan reject rows for bytes that are not UTF-8?"""
    found = con.execute(
        "SELECT count(*) FROM rejects WHERE scan_id = (SELECT max(scan_id) FROM rejects)"
        " AND error_type = 'INVALID ENCODING'"
    ).fetchall()
    return bool(found[0][0])


def _slow_paths(
    con: duckdb.DuckDBPyConnection, columns: list[_Column], decisions: dict[str, rules.Decision], *, strict: bool
) -> dict[str, tuple[rules.SlowPath, str]]:
    """Register the typed columns' exact slow paths: {source: (slow path, SQL calling it on the
    column)}. One function per SQL type, given the column's place among that type's columns: one
    registered per column made a file of thousands of columns pay for each (``benchmarks/wide.py``)."""
    paths = {}
    by_type: dict[str, tuple[str, list[rules.SlowPath]]] = {}
    for column in columns:
        decision = decisions[column.source]
        if decision.kind == rules.TEXT:
            continue
        name, group = by_type.setdefault(decision.sql_type, (f"liberacion_slow_{next(_slow_names)}", []))
        path = rules.SlowPath(column.name, decision, strict=strict)
        paths[column.source] = (path, f"{name}({len(group)}, {quote_ident(column.source)})")
        group.append(path)
    for sql_type, (name, group) in by_type.items():
        create_function(
            con,
            name,
            _dispatch(group),
            ["INTEGER", "VARCHAR"],
            sql_type,
            type="native",
            null_handling="special",
            side_effects=True,
        )
    return paths


def _dispatch(paths: list[rules.SlowPath]) -> Callable[[int, str | None], Any]:
    """One function for the slow paths of several columns: the first argument names the column."""

    def slow(index: int, text: str | None) -> Any:
        return paths[index](text)

    return slow


def _refuse_override(path: rules.SlowPath) -> None:
    if path.decision.reason == "override":
        example = f" (such as {path.example[:40]!r})" if path.example else ""
        raise ConversionError(
            f"column {path.column} has values that are not {path.decision.sql_type}{example};"
            f" drop the type override or use {_raw()}"
        )


def _raw() -> str:
    """``--raw`` on the command line, ``raw=True`` from Python (which has no ``--raw``)."""
    return "raw=True" if option("raw") == "raw" else "--raw"


def _given_type(name: str, sql_type: str) -> str:
    """A type override as the caller gave it: ``--type beds=BIGINT``, or ``types['beds']='BIGINT'``."""
    return f"types[{name!r}]={sql_type!r}" if option("types") == "types" else f"--type {name}={sql_type}"


def _reclassify(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[_Column], decisions: dict[str, rules.Decision]
) -> list[str]:
    """Find every typed column with a value the sample did not foresee, classify those from all
    their values, and make text of any that still would not convert; returns their names."""
    surprised = _surprised(con, relation, columns, decisions)
    decisions |= _classify_all(con, relation, [c for c, _ in surprised], decisions)
    for column, example in _surprised(con, relation, [c for c, _ in surprised], decisions):
        answer = decisions[column.source].kind == rules.BOOL and example.lower() in rules.BOOL_ANSWERS
        reason = f"yes/no with {example!r} answers: kept as text" if answer else "values that do not convert"
        decisions[column.source] = rules.Decision(rules.TEXT, reason=reason)
    return [c.name for c, _ in surprised]


def _surprised(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[_Column], decisions: dict[str, rules.Decision]
) -> list[tuple[_Column, str]]:
    """The typed columns holding a value that is neither a marker nor of the decided type (one
    scan), each with the first such value."""
    slow = _slow_paths(con, columns, decisions, strict=False)
    if not slow:
        return []
    counts = ", ".join(f"count({_typed(c, decisions, slow)})" for c in columns if c.source in slow)
    _one_row(con, f"SELECT {counts} FROM {relation}")
    paths = [(c, slow[c.source][0]) for c in columns if c.source in slow]
    surprised = [(c, path.example or "") for c, path in paths if path.surprises]
    for column, _ in surprised:
        _refuse_override(slow[column.source][0])
    return surprised


def passthrough_types(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[_Column], passthrough: dict[str, str] | None
) -> list[tuple[str, str]]:
    if not passthrough:
        return []
    return [(c.name, passthrough[c.source]) for c in columns if c.source in passthrough]


def _decide(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[_Column], options: ConvertOptions
) -> dict[str, rules.Decision]:
    decisions: dict[str, rules.Decision] = {}
    to_sample = []
    for column in columns:
        wanted = _wanted(options, column)
        if options.raw:
            decisions[column.source] = rules.Decision(rules.TEXT, reason="--raw")
        elif wanted:
            decisions[column.source] = rules.override(wanted)
        else:  # a column named like an identifier too: its values may show a quantity (``decide``)
            to_sample.append(column)
    if to_sample:
        decisions |= _classify_sample(con, relation, to_sample)
    return decisions


def _wanted(options: ConvertOptions, column: _Column) -> str | None:
    """The ``--type`` for a column, named by its snake_case or its published name (any case).

    A ``--type`` wins over the manifest's ``[dataset.columns]`` however each spells the column:
    the manifest's ``facility_id = "string"`` once beat ``--type "Facility ID=BIGINT"``, which
    was then ignored without a word."""
    if not options.columns:
        return None
    given = {k: v for k, v in options.columns.items() if k not in options.declared_in}
    declared = {k: v for k, v in options.columns.items() if k in options.declared_in}
    for overrides in (given, declared):
        for key in (column.name, column.original):
            if key in overrides:
                return overrides[key]
        lowered = {k.lower(): v for k, v in overrides.items()}
        found = lowered.get(column.name.lower()) or lowered.get(column.original.lower())
        if found:
            return found
        # Named as another file of the table publishes it: --type "Zip Code=BIGINT" is also the
        # zip_code of a file whose header says zip_code (it was typed there by its values, then the
        # whole column made text, the --type dropped without a word).
        found = next((v for k, v in overrides.items() if snake_name(k) == column.name), None)
        if found:
            return found
    return None


def snake_name(name: str) -> str:
    """The column name a published ``name`` becomes (``Zip Code`` -> ``zip_code``)."""
    return rules.snake_case(name, 1, set())


def _one_type_each(columns: list[_Column], options: ConvertOptions) -> None:
    """Two overrides of one column (``--type beds=BIGINT --type BEDS=VARCHAR``, or its published
    and its snake_case name) are an error: one was taken and the other dropped without a word. A
    name that is exactly another column's belongs to that one (a file may hold ``beds`` and ``BEDS``)."""
    exact = {c.name for c in columns} | {c.original for c in columns}
    given = {k: v for k, v in options.columns.items() if k not in options.declared_in}
    declared = {k: v for k, v in options.columns.items() if k in options.declared_in}
    for overrides in (given, declared):
        for column in columns:
            spellings = (column.name.lower(), column.original.lower())
            named = [
                k
                for k in overrides
                if k in (column.name, column.original)
                or (k not in exact and (k.lower() in spellings or snake_name(k) == column.name))
            ]
            if len({overrides[k].strip().upper() for k in named}) < 2:
                continue
            first, second = named[:2]
            if first in options.declared_in:
                raise ConversionError(
                    f"{options.declared_in[first]}: {first} and {second} both name the column {column.original!r}"
                    " with different types; correct the manifest"
                )
            raise ConversionError(
                f"{_given_type(first, overrides[first])} and {_given_type(second, overrides[second])} both name"
                f" the column {column.original!r}; give each column once"
            )


def _check_overrides(columns: list[_Column], options: ConvertOptions, *, strict: bool) -> list[str]:
    """The ``--type`` names that match no column; an error listing the near matches when ``strict``."""
    import difflib

    _one_type_each(columns, options)
    known = {c.name.lower() for c in columns} | {c.original.lower() for c in columns}
    names = {c.name for c in columns}
    unmatched = [name for name in options.columns if name.lower() not in known and snake_name(name) not in names]
    if unmatched and strict:
        name = unmatched[0]
        candidates = list(dict.fromkeys([c.original for c in columns] + [c.name for c in columns]))
        near = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
        near += [c for c in candidates if name.lower() in c.lower() and c not in near][: 5 - len(near)]
        hint = f"did you mean: {', '.join(near)}?" if near else f"its columns: {', '.join(candidates[:12])}"
        hint += "" if near or len(candidates) <= 12 else ", ..."
        if name in options.declared_in:
            raise ConversionError(
                f'{options.declared_in[name]}: {name} = "{options.columns[name]}": no column "{name}"'
                f" in the file ({hint}); correct the manifest"
            )
        raise ConversionError(f'{_given_type(name, options.columns[name])}: no column "{name}" in the file ({hint})')
    return unmatched


def _classify_sample(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[_Column]
) -> dict[str, rules.Decision]:
    """Decide types from the first rows (the typed COPY then proves them over every value)."""
    rows = min(SAMPLE_ROWS, max(2_000, 5_000_000 // max(1, len(columns))))
    # No value of a typed kind is longer than a few dozen characters: a longer one is text however
    # it ends, so the sample holds only its start (fields of megabytes filled gigabytes in Python).
    # ``strlen`` (bytes, stored with the text) spares the cost of ``left`` on the short texts that
    # are nearly all of them.
    select = ", ".join(
        f"CASE WHEN strlen({q}) <= {SAMPLE_CHARS} THEN {q} ELSE left({q}, {SAMPLE_CHARS}) END AS c{i}"
        for i, q in enumerate(quote_ident(c.source) for c in columns)
    )
    table = f"liberacion_sample_{next(_sample_names)}"
    try:
        con.execute(f"CREATE TEMP TABLE {table} AS SELECT {select} FROM {relation} LIMIT {rows}")
        try:
            (taken,) = _one_row(con, f"SELECT count(*) FROM {table}")
            text = rules.text_early(con, table, len(columns))
            named = [f"c{i}" for i, c in enumerate(columns) if f"c{i}" not in text and rules.is_identifier_name(c.name)]
            text |= set(named) - rules.written_as_quantities(con, table, named, len(columns))
            rest = [f"c{i}" for i in range(len(columns)) if f"c{i}" not in text]
            profiled = rules.sample_profiles(con, table, rest)
        finally:
            con.execute(f"DROP TABLE IF EXISTS {table}")
    except Exception as err:
        raise _engine_error(err) from None
    text_only = rules.Profile({"t": 1}, [None, None], 0, (), None)  # all the decision needs of them
    profiles = dict(zip(rest, profiled, strict=True))
    # A sample that is the whole file has shown every marker spelling; a longer file may hold others.
    common = rules.COMMON_SPELLINGS if taken >= rows else ()
    decisions = {}
    for i, column in enumerate(columns):
        seen = profiles.get(f"c{i}", text_only)
        decision = rules.decide(column.name, seen.classes, seen.dates, seen.scale, markers=seen.markers, lone=seen.lone)
        if decision.kind != rules.TEXT:
            decision.spellings = _sql_markers(decision, seen.markers, common)
        decisions[column.source] = decision
    return decisions


_sample_names = itertools.count(1)


def _sql_markers(decision: rules.Decision, markers: tuple[str, ...], common: tuple[str, ...]) -> tuple[str, ...]:
    """The marker spellings a typed column turns into NULL in SQL: the sample's, then the common ones.
    A column of markers only leaves out the common ones that may be flags (``*``, ``-``, ``.``): past
    the sample they go to the slow path, which takes them for a surprise (see ``SlowPath``)."""
    if decision.kind == rules.MISSING:
        common = tuple(s for s in common if not rules.flag_like(s))
    return tuple(dict.fromkeys((*markers, *common)))[: rules.MAX_SPELLINGS]


def _classify_all(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[_Column], decisions: dict[str, rules.Decision]
) -> dict[str, rules.Decision]:
    """Decide the columns' types from the classes of all their values in ``relation``; a column
    ``decisions`` held to be markers only is judged by all its markers too (one may be a flag)."""
    aggregates = []
    for c in columns:
        aggregates += [rules.class_mask(c.source), rules.date_evidence(c.source), rules.scale_evidence(c.source)]
        aggregates.append(rules.lone_evidence(c.source))
        # Only such a column can lack values of every class: any other held one in its sample.
        missing = decisions[c.source].kind == rules.MISSING
        aggregates.append(rules.marker_evidence(c.source) if missing else "NULL")
    row = _one_row(con, f"SELECT {', '.join(aggregates)} FROM {relation}")
    decided = {}
    for i, c in enumerate(columns):
        mask, dates, scale, extremes, counts = row[5 * i : 5 * i + 5]
        markers = rules.markers_of_evidence(counts)
        lone = rules.lone_value(*extremes)
        decision = rules.decide(c.name, rules.classes_of_mask(mask), dates, scale, markers=markers, lone=lone)
        if decision.kind == rules.MISSING:
            decision.spellings = markers[: rules.MAX_SPELLINGS]  # all seen: any other is counted by the slow path
        decided[c.source] = decision
    return decided


def _engine_error(err: Exception) -> BaseException:
    """A DuckDB error as liberacion reports it; an interrupted query is the user's Ctrl-C."""
    text = str(err)
    if text.startswith("Query interrupted") or "KeyboardInterrupt" in text:  # DuckDB's RuntimeError on SIGINT
        return KeyboardInterrupt()
    return ConversionError(one_line(err, lines=3, limit=400))


def _one_row(con: duckdb.DuckDBPyConnection, query: str) -> tuple[Any, ...]:
    try:
        rows = con.execute(query).fetchall()  # all of it: a half-read result blocks the connection
    except Exception as err:
        raise _engine_error(err) from None
    return rows[0]


def _write_rejects(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    kv: dict[str, str],
    delimiter: str,
    fields: int,
    source: Path | None = None,
) -> tuple[int, int]:
    """Bad rows of the last scan (the COPY): line number, raw text, reason. Returns the count of bad
    rows and of the rows they hold: a quote that is never closed makes one bad row of every line
    up to the next quote, and each of those lines with a whole row's delimiters (``fields`` - 1)
    is a row lost. The lines of one long quoted field cut short are not."""
    # One reason per line, kept short: DuckDB reports a row cut short at the end of a file once per
    # field it lacks ("Found: 4", "Found: 5", ... "Found: 37"), and the first says what happened.
    error = "error_type || ': ' || error_message"
    # DuckDB's text of a bad row after a CRLF line end starts with that line end's LF: not the row's.
    inner = (
        "SELECT line AS line_number, ltrim(any_value(csv_line), chr(13) || chr(10)) AS raw_text,"
        f" any_value(line_byte_position) AS line_at, max(length(csv_line)) >= {RAW_TEXT_CUT} AS cut,"
        f" count(DISTINCT {error}) AS errors,"
        f" arg_min({error}, coalesce(column_idx, 0)) AS first"
        " FROM rejects WHERE scan_id = (SELECT max(scan_id) FROM rejects) GROUP BY line"
    )
    reason = "first || CASE WHEN errors > 1 THEN ' (and ' || (errors - 1) || ' more)' ELSE '' END AS reason"
    full = _whole_rows(con, inner, source) if source is not None else None
    numbers = _line_numbers(con, inner, source) if source is not None else None
    number, text, joins = "r.line_number", "r.raw_text", ""
    if full:
        text = "coalesce(w.raw_text, r.raw_text)"
        joins += f" LEFT JOIN {full} w ON r.line_number = w.line_number"
    if numbers:
        number = "coalesce(n.line_number, r.line_number)"
        joins += f" LEFT JOIN {numbers} n ON r.line_number = n.line"
    query = f"SELECT {number} AS line_number, {text} AS raw_text, {reason} FROM ({inner}) r{joins} ORDER BY 1"
    separators = f"length(x) - length(replace(x, '{_sql_text(delimiter)}', ''))"
    whole = f"list_filter(string_split(raw_text, chr(10)), lambda x: {separators} >= {fields - 1})"
    lines = f"greatest(1, len({whole}))"
    count, spanned = con.execute(f"SELECT count(*), coalesce(sum({lines}), 0) FROM ({query})").fetchall()[0]
    if count:
        metadata = ", ".join(f"'{_sql_text(k)}': '{_sql_text(v)}'" for k, v in kv.items())
        con.execute(
            f"COPY ({query}) TO '{_sql_text(str(path))}'"
            f" (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE_BYTES '{ROW_GROUP_BYTES}', KV_METADATA {{{metadata}}})"
        )
    for name in (full, numbers):
        if name:
            con.execute(f"DROP TABLE {name}")
    return int(count), int(spanned)


RAW_TEXT_CUT = 10_000  # characters of a bad row's text that DuckDB's rejects table keeps


def _whole_rows(con: duckdb.DuckDBPyConnection, inner: str, source: Path) -> str | None:
    """The whole text of the bad rows DuckDB cut at ``RAW_TEXT_CUT`` characters, read from the file,
    as a temporary table (line_number, raw_text); None when no row was cut. A rejects table must
    hold a bad row whole: it is the only place the row is kept."""
    cut = con.execute(f"SELECT line_number, line_at, raw_text FROM ({inner}) WHERE cut")
    found = {line: _row_at(source, at, text) for line, at, text in cut.fetchall()}
    found = {line: text for line, text in found.items() if text is not None}
    if not found:
        return None
    name = f"liberacion_whole_rows_{next(_sequence_names)}"
    columns = {"line_number": ("BIGINT", [int(n) for n in found]), "raw_text": ("VARCHAR", [*found.values()])}
    _temp_table(con, name, columns)
    return name


def _temp_table(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, tuple[str, list[Any]]]) -> None:
    """A temporary table of ``columns`` ({name: (SQL type, values)}), from lists passed to DuckDB:
    no pyarrow, which a fetch never imports."""
    listed = ", ".join(f"unnest(?::{type_}[]) AS {quote_ident(column)}" for column, (type_, _) in columns.items())
    con.execute(f"CREATE TEMP TABLE {name} AS SELECT {listed}", [values for _, values in columns.values()])


def _line_numbers(con: duckdb.DuckDBPyConnection, inner: str, source: Path) -> str | None:
    """The line of the file each bad row begins on where DuckDB's number differs, as a temporary
    table (line: DuckDB's, line_number); None when none does. DuckDB counts rows, not lines: each
    line end inside a quoted value (``"a<LF>b"``) above a bad row made its number one too small.
    The file is read once, up to the last bad row, counting line ends (half a second a gigabyte,
    and only for a file with bad rows)."""
    found = con.execute(f"SELECT line_number, line_at FROM ({inner}) WHERE line_at IS NOT NULL ORDER BY line_at")
    rows = found.fetchall()
    if not rows:
        return None
    scan = con.execute("SELECT newline_delimiter FROM scans WHERE scan_id = (SELECT max(scan_id) FROM rejects)")
    end = b"\r" if scan.fetchall() == [("\\r",)] else b"\n"  # DuckDB spells a lone CR '\r'
    numbers: dict[int, int] = {}
    with open(source, "rb") as fh:
        starts = [(int(line), _text_start(fh, int(at))) for line, at in rows]
        fh.seek(0)
        read = ends = 0
        for line, start in sorted(starts, key=lambda pair: pair[1]):
            while read < start and (block := fh.read(min(BLOCK, start - read))):
                read, ends = read + len(block), ends + block.count(end)
            if ends + 1 != line:
                numbers[line] = ends + 1
    if not numbers:
        return None
    name = f"liberacion_line_numbers_{next(_sequence_names)}"
    # In DuckDB's type for its line numbers, which the rejects table keeps.
    _temp_table(con, name, {"line": ("UBIGINT", list(numbers)), "line_number": ("UBIGINT", list(numbers.values()))})
    return name


def _text_start(fh: BinaryIO, at: int) -> int:
    """Where a bad row's text begins in the file: DuckDB's position (``at``) is the byte after the
    start of its text, which begins with the line end before it in a CRLF file and with any blank
    lines above it: they are passed over."""
    position = max(0, at - 1)
    fh.seek(position)
    while block := fh.read(256):
        kept = block.lstrip(b"\r\n")
        position += len(block) - len(kept)
        if kept:
            break
    return position


def _row_at(source: Path, at: int | None, start: str) -> str | None:
    """The row of the file whose text DuckDB begins with ``start``, near byte ``at`` (DuckDB's
    position is the row's first byte or the one after it): its lines up to the one that closes its
    last quote. None when the bytes there do not begin with ``start``."""
    if at is None:
        return None
    head = start[:200].encode("utf-8")
    with open(source, "rb") as fh:
        for offset in (max(0, at - 1), at):
            fh.seek(offset)
            if fh.read(len(head)) != head:
                continue
            fh.seek(offset)
            pieces, quotes, size = [], 0, 0
            for line in fh:  # a quoted line end continues the row
                pieces.append(line)
                quotes, size = quotes + line.count(b'"'), size + len(line)
                if quotes % 2 == 0 or size > MAX_LINE_BYTES:
                    break
            return b"".join(pieces).rstrip(b"\r\n").decode("utf-8", "replace")
    return None


def _refuse_cut(con: duckdb.DuckDBPyConnection, cut_line: bytes, fields: int, written: Path) -> None:
    """A file whose last line has no line end and was set aside as a row with fields missing (or
    a quote never closed) was cut short, not published that way: a download stopped early, a copy
    interrupted. Publishing it would replace a whole table with its first part, the lost rows
    counted as one bad row. Checked on the rejects table only: no pass over the file.

    A short last row in a file with other short rows is one more of them (ragged files, common in
    CDC data, often lack the last line end too): it is a bad row like the others. The line named is
    the file's, as the rejects ``written`` hold it: DuckDB's counts rows, not quoted line ends."""
    scan = "scan_id = (SELECT max(scan_id) FROM rejects)"
    last = con.execute(
        "SELECT line, any_value(csv_line), list(DISTINCT error_type),"
        " min(TRY_CAST(regexp_extract(error_message, 'Found: ([0-9]+)', 1) AS INTEGER))"
        f" FROM rejects WHERE {scan} GROUP BY line ORDER BY line DESC LIMIT 1"
    ).fetchall()
    if not last:
        return
    line, text, kinds, present = last[0]
    ending = cut_line[-200:]  # DuckDB's text of a very long row may be cut
    if not ending or not (text or "").encode("utf-8").rstrip(b"\r\n").endswith(ending):
        return  # the last bad row is not the file's last line
    shown = con.execute(f"SELECT max(line_number) FROM read_parquet('{_sql_text(str(written))}')").fetchall()[0][0]
    if "UNQUOTED VALUE" in kinds:
        what = f"from line {shown:,}, stops inside a quoted value"
    elif "MISSING COLUMNS" in kinds:
        ragged = con.execute(
            f"SELECT count(*) FROM rejects WHERE {scan} AND error_type = 'MISSING COLUMNS' AND line < ?", [line]
        ).fetchall()[0][0]
        if ragged:
            return
        count = f"{present} of {fields}" if present is not None else f"fewer than {fields}"
        what = f"line {shown:,}, stops after {count} fields"
    else:
        return  # too many fields, say: not what cutting a file short makes
    raise ConversionError(
        f"the file ends inside a row (truncated?): its last row, {what} with no line end;"
        " nothing was published: fetch it again once the file is complete"
        " (a whole file loads that row as a bad row once it ends with a line end)"
    )


def _first_reject(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """``, such as line 2: <reason>``: the first of the bad rows written to ``path``."""
    found = con.execute(
        "SELECT line_number, reason FROM read_parquet(?) ORDER BY line_number LIMIT 1", [str(path)]
    ).fetchall()
    return f", such as line {found[0][0]:,}: {found[0][1]}" if found else ""


def _check_bad_rows(rows: int, rejects: int, options: ConvertOptions, *, lines: int = 0, first: str = "") -> None:
    """Too many bad rows fail the conversion; rows lost inside a bad one (an unclosed quote) count.
    So does a table of bad rows only. ``first``: the first bad row, said then (``_first_reject``)."""
    lost = max(rejects, lines)
    if lost and not rows:  # a table of none of its rows: the file was not read, whatever the limit
        bad = f"{rejects:,} bad row{'' if rejects == 1 else 's'}"
        raise ConversionError(f"none of its rows could be read ({bad}{first}); check the file and its delimiter")
    allowed = options.max_bad_rows
    if allowed is None:
        allowed = max(1, math.ceil((rows + lost) / 100))
    if lost > allowed:
        spanned = f" spanning {lines:,} lines (a quote that is never closed?)" if lines > rejects else ""
        bad = f"{rejects:,} bad row{'' if rejects == 1 else 's'}{spanned}"
        raise ConversionError(
            f"{bad} (of {rows + lost:,}) is more than allowed ({allowed:,});"
            f" check the file, or raise the limit with {option('max_bad_rows')}"
        )


def _column_report(
    column: _Column, decision: rules.Decision, markers: dict[str, int] | None, options: ConvertOptions
) -> dict[str, Any]:
    info: dict[str, Any] = {"original": column.original, "type": decision.sql_type, "rule": decision.reason}
    description = options.descriptions.get(column.original) or options.descriptions.get(column.name)
    if description:
        info["description"] = description
    if markers:
        info["markers"] = markers
    info.update(decision.notes)
    return info
