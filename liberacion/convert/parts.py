"""Convert one table (a ``Part`` that ``inspect`` found) into Parquet, by its format."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from liberacion.convert.json_records import _convert_json
from liberacion.convert.model import ConversionReport, ConvertOptions, Part, _sql_text
from liberacion.convert.parquet import _convert_parquet
from liberacion.convert.sniff import refuse_unreadable, sniff
from liberacion.convert.statistical import _convert_statistical
from liberacion.convert.text import _convert_text
from liberacion.errors import ConversionError

if TYPE_CHECKING:
    import duckdb

SMALL_BYTES = 16 * 1024 * 1024  # files up to this size convert on the process's shared database
ORDERED_BYTES = 64 * 1024 * 1024  # files up to this size keep their row order in the table
# Files of more columns than this convert on a database of their own (a chunk of 3,000 text
# columns is about 100 MB: the shared database must never spill).
WIDE_COLUMNS = 1_000
# DuckDB's common-subexpression pass plans the typed COPY in a time that grows with the square of
# the columns (1,000 columns: 3.7 s against 0.5 s without it, benchmarks/wide_parts.py), and saves
# a share of a TRY_CAST per typed cell. It is turned off (a database-wide setting, so on a
# database of the file's own) when fields² x PLAN_BYTES is more than the file's size: a file of
# 1,000 columns under 4 GB, of 200 under 164 MB (benchmarks/wide.py).
PLAN_BYTES = 4096
PLANNED_FROM = 100  # fields; with fewer, the pass plans in milliseconds


def convert_part(
    part: Part, out_dir: Path, *, kv_metadata: dict[str, str], options: ConvertOptions, allow_empty: bool = False
) -> ConversionReport:
    """Write ``out_dir/data-0000.parquet`` (and ``rejects.parquet`` for bad rows) for one table.

    ``allow_empty`` (``fetch --allow-empty``): a text file whose only line reads as a sentence is
    a header without rows, not refused as a server's message. It is a choice of this run, not a
    conversion setting (``ConvertOptions``, which a snapshot records to tell when to convert again).
    """
    try:
        return _convert_part(part, out_dir, kv_metadata=kv_metadata, options=options, allow_empty=allow_empty)
    except ConversionError as err:
        if part.label is None:
            raise
        # Readers name the file they read, which for a member or a sheet is the name it was
        # unpacked under (``002-data_csv``, ``sheet0.csv``): say the member's or the sheet's.
        message = str(err)
        internal = part.path.name
        shown = message.replace(internal, part.label) if internal in message else f"{part.label}: {message}"
        raise ConversionError(shown) from None


def _convert_part(
    part: Part, out_dir: Path, *, kv_metadata: dict[str, str], options: ConvertOptions, allow_empty: bool = False
) -> ConversionReport:
    from liberacion.engine import new_connection, set_memory_limit, small_connection

    out_dir.mkdir(parents=True, exist_ok=True)
    part.unpack()  # a large zip member, unpacked only now (see ``Part.pending``)
    if part.format is None:
        part.format = sniff(part.path)
    refuse_unreadable(part.path, part.format)
    size = part.path.stat().st_size
    fields = text_fields(part.path) if part.format == "text" else 0
    unshared = fields >= PLANNED_FROM and fields * fields * PLAN_BYTES > size
    own = size > SMALL_BYTES or fields > WIDE_COLUMNS or unshared
    with new_connection() if own else small_connection() as con:
        if own:
            # Bounded memory whatever the input size: DuckDB spills to the staging directory instead.
            set_memory_limit(con)
            con.execute(f"SET temp_directory = '{_sql_text(str(out_dir / '.tmp'))}'")
        if unshared:
            con.execute("SET disabled_optimizers = 'common_subexpressions'")
        if size > ORDERED_BYTES:
            # Keeping the file's row order makes DuckDB buffer and serialise its writers: about
            # 1.5x the time under the memory cap. Big files trade it away; SQL has ORDER BY.
            con.execute("SET preserve_insertion_order = false")
        if part.format == "text":
            report = _convert_text(con, part, out_dir, kv_metadata, options, allow_empty=allow_empty)
        elif part.format in ("json", "jsonl", "json-object", "openfda", "socrata-json"):
            report = _convert_json(con, part, out_dir, kv_metadata, options)
        elif part.format in ("xpt", "sas7bdat", "dta", "sav"):
            report = _convert_statistical(con, part, out_dir, kv_metadata, options)
        elif part.format == "parquet":
            report = _convert_parquet(con, part, out_dir, kv_metadata, options)
        else:
            raise ConversionError(f"cannot convert {part.path.name}: unsupported format {part.format!r}")
    shutil.rmtree(out_dir / ".tmp", ignore_errors=True)
    report.notes = {**part.notes, **report.notes}
    return report


def text_fields(path: Path) -> int:
    """The most fields one of a text file's first lines has by any usual delimiter (a guess: a
    miss costs only planning time, or a database of the file's own)."""
    with path.open("rb") as handle:
        head = handle.read(4 * 1024 * 1024)
    lines = head.split(b"\n", 10)[:10]
    return 1 + max(line.count(d) for line in lines for d in (b",", b"\t", b"|", b";"))


def unify_files(paths: list[Path]) -> dict[str, str]:
    """Give the data files of one table (the parts of a dataset of several files, each converted on
    its own: openFDA's partitions) one schema: each column the type DuckDB's ``union_by_name``
    gives it over every file (a part typed BIGINT and another text makes text; a JSON object with
    a field only some parts have has it in all), a column a part lacks its NULLs. A reader takes one
    file's schema for them all: ``sql`` failed on the first value another part typed otherwise,
    and dropped the columns only later parts had; pandas, pyarrow and Spark failed too. Only the
    files whose schema differs are written again, keeping their key-value metadata.
    Returns {column: type} of the columns some file had otherwise (or lacked)."""
    from liberacion.engine import new_connection

    if len(paths) < 2:
        return {}
    with new_connection() as con:
        # Else DuckDB writes a column it knows holds no NULL here (its statistics say so) as required.
        con.execute("SET disabled_optimizers = 'statistics_propagation'")
        owns, _empties, unified = _schemas(con, paths)
        changed: dict[str, str] = {}
        for path, own in zip(paths, owns):
            if list(own.items()) == unified:
                continue
            changed |= {n: t for n, t in unified if own.get(n) != t}
            _rewrite(con, path, own, unified)
    return changed


def made_text(paths: list[Path]) -> list[dict[str, str]]:
    """For each of the data files of one table, {column: its type} of the columns ``unify_files``
    would make text that the file typed (another file holds text there, or a type that cannot hold
    its values exactly) or held no value in (text of NULLs, which may have been markers)."""
    from liberacion.engine import new_connection

    if len(paths) < 2:
        return [{} for _ in paths]
    with new_connection() as con:
        owns, empties, unified = _schemas(con, paths)
    texts = {n for n, t in unified if t == "VARCHAR"}
    return [
        {n: t for n, t in own.items() if n in texts and (t != "VARCHAR" or n in empty)}
        for own, empty in zip(owns, empties)
    ]


def _schemas(
    con: duckdb.DuckDBPyConnection, paths: list[Path]
) -> tuple[list[dict[str, str]], list[set[str]], list[tuple[str, str]]]:
    """Each file's own {column: type}, its text columns without a value (``_valueless``), and the
    [(column, type)] that holds every file's values."""
    listed = [str(p) for p in paths]
    unified = [
        (str(n), str(t))
        for n, t, *_ in con.execute("DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [listed]).fetchall()
    ]
    owns = [
        {str(n): str(t) for n, t, *_ in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()}
        for path in paths
    ]
    empties = [_valueless(con, path, own) for path, own in zip(paths, owns)]
    unified = _without_valueless(con, owns, empties, unified)
    return owns, empties, _lossless(con, paths, owns, unified)


def _valueless(con: duckdb.DuckDBPyConnection, path: Path, own: dict[str, str]) -> set[str]:
    """The text columns of a file that hold no value (every row NULL, or no row: a header alone),
    from its footer's statistics: a file without them counts as having values."""
    found = con.execute(
        "SELECT path_in_schema, sum(row_group_num_rows), sum(stats_null_count) FROM parquet_metadata(?)"
        " GROUP BY path_in_schema",
        [str(path)],
    ).fetchall()
    nulls = {str(name): (rows, count) for name, rows, count in found}
    empty = {n for n, t in own.items() if t == "VARCHAR" and n in nulls and nulls[n][1] == nulls[n][0]}
    if not found:  # no row group: no row
        empty = {n for n, t in own.items() if t == "VARCHAR"}
    return empty


def _without_valueless(
    con: duckdb.DuckDBPyConnection, owns: list[dict[str, str]], empties: list[set[str]], unified: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``unified`` typed without the text columns a file holds no value in: a file of no rows (a
    header alone) or a column of empty cells was text of NULLs, which made every other file's
    numbers and dates text, where one file of the same rows types them."""
    from liberacion.naming import quote_ident

    if not any(empties):
        return unified
    # The common type of each column over the files that hold values in it, as the reader's
    # union_by_name gives it: asked of typed NULLs, one SELECT for each distinct schema.
    schemas = {tuple((n, t) for n, t in own.items() if n not in empty) for own, empty in zip(owns, empties)}
    selects = [", ".join(f"NULL::{t} AS {quote_ident(n)}" for n, t in schema) for schema in sorted(schemas) if schema]
    if not selects:
        return unified
    described = con.execute("DESCRIBE SELECT " + " UNION ALL BY NAME SELECT ".join(selects)).fetchall()
    typed = {str(n): str(t) for n, t, *_ in described}
    touched = set().union(*empties)
    return [(n, typed.get(n, t) if n in touched else t) for n, t in unified]


def _lossless(
    con: duckdb.DuckDBPyConnection, paths: list[Path], owns: list[dict[str, str]], unified: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``unified`` with text for a column whose common type would change a part's values: a BIGINT
    part and a DOUBLE one make DOUBLE, which rounds a whole number of more than 15 digits (as the
    rows in one file would have, the column is then text, every digit kept)."""
    from liberacion.naming import quote_ident

    kept: list[tuple[str, str]] = []
    for name, type_ in unified:
        scalar = type_ != "VARCHAR" and not type_.endswith("]") and not type_.startswith(("STRUCT", "MAP", "UNION"))
        col = quote_ident(name)
        for path, own in zip(paths, owns):
            theirs = own.get(name)
            if not scalar or theirs is None or theirs == type_:
                continue
            [(lost,)] = con.execute(
                f"SELECT count(*) FROM read_parquet(?) WHERE {col} IS NOT NULL"
                f" AND TRY_CAST(TRY_CAST({col} AS {type_}) AS {theirs}) IS DISTINCT FROM {col}",
                [str(path)],
            ).fetchall()
            if lost:
                type_ = "VARCHAR"
                break
        kept.append((name, type_))
    return kept


def _rewrite(con: duckdb.DuckDBPyConnection, path: Path, own: dict[str, str], unified: list[tuple[str, str]]) -> None:
    """``path`` written again with the ``unified`` columns, in their order, and its own metadata."""
    from liberacion.convert.model import ROW_GROUP_BYTES, ROW_GROUP_ROWS
    from liberacion.naming import quote_ident

    select = ", ".join(f"CAST({quote_ident(n) if n in own else 'NULL'} AS {t}) AS {quote_ident(n)}" for n, t in unified)
    kv = con.execute("SELECT key, value FROM parquet_kv_metadata(?)", [str(path)]).fetchall()
    metadata = ", ".join(f"'{_sql_text(bytes(k).decode())}': '{_sql_text(bytes(v).decode())}'" for k, v in kv)
    staged = path.with_name(f".{path.name}.unified")
    con.execute(
        f"COPY (SELECT {select} FROM read_parquet('{_sql_text(str(path))}')) TO '{_sql_text(str(staged))}'"
        f" (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS},"
        f" ROW_GROUP_SIZE_BYTES '{ROW_GROUP_BYTES}', KV_METADATA {{{metadata}}})"
    )
    staged.replace(path)
