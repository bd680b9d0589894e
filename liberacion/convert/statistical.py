"""Statistical files: SAS transport (.xpt, NHANES), SAS .sas7bdat, Stata .dta and SPSS .sav (AHRQ
MEPS, SAMHSA NSDUH, NCHS surveys), read with pyreadstat in chunks so memory stays bounded.

Each chunk is appended to a staging Parquet with the reader's types (numbers, text, dates); then
``typed_copy`` writes the table: numbers that are all whole become BIGINT, text variables follow
the same rules as CSV text (markers become NULL, leading zeros stay), ``--type`` and ``--raw``
apply as for any format. Variable labels become column descriptions; value labels (1 = "Male")
are kept in the conversion notes. Blank text values are NULL, as in CSV. A file that yields no
rows is an error unless it declares none.

pyreadstat replaced liberacion's own XPORT parser: 0.5x its time on NHANES DEMO_I (1.3x on the
smaller BMX_I), and it streams where the parser held the whole file (benchmarks/readers.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import liberacion.convert.typing_rules as rules
from liberacion.convert.headers import check_xport
from liberacion.convert.model import ConversionReport, ConvertOptions, Part, _Column, _sql_text
from liberacion.convert.sniff import NAMES
from liberacion.convert.typed_copy import _write_typed
from liberacion.errors import ConversionError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

READERS = {"xpt": "read_xport", "sas7bdat": "read_sas7bdat", "dta": "read_dta", "sav": "read_sav"}
CHUNK_CELLS = 5_000_000  # values held in Python at once: rows per chunk = this / columns
_WHOLE_LIMIT = 2**53


def _convert_statistical(
    con: duckdb.DuckDBPyConnection, part: Part, out_dir: Path, kv: dict[str, str], options: ConvertOptions
) -> ConversionReport:
    fmt = part.format or "xpt"
    path = part.path
    layout = check_xport(path) if fmt == "xpt" else None  # the reader trusts the header: check it first
    read, meta, encoding = _open(path, fmt)
    names = list(meta.column_names)
    if not names:
        raise ConversionError(f"cannot read {path.name} as {NAMES[fmt]}: it has no variables")
    staged = out_dir / ".staged.parquet"
    rows, types, whole = _stage(read, path, fmt, meta, staged, encoding)
    declared = meta.number_rows if isinstance(meta.number_rows, int) and meta.number_rows >= 0 else None
    if layout is not None:
        declared = layout.rows  # XPORT declares no count: its size says how many rows it holds
    if rows == 0 and declared != 0:
        said = f" although it declares {declared:,}" if declared else ""
        raise ConversionError(f"cannot read {path.name} as {NAMES[fmt]}: no rows could be read{said}")
    if declared is not None and rows != declared and (fmt != "sas7bdat" or rows > declared):
        # A short table is never published silently (.sas7bdat may count deleted rows it skips).
        raise ConversionError(
            f"cannot read {path.name} as {NAMES[fmt]}: read {rows:,} of the {declared:,} rows it holds"
            " (truncated or damaged?)"
        )
    taken: set[str] = set()
    columns = [_Column(f"c{i}", rules.snake_case(n, i + 1, taken), n) for i, n in enumerate(names)]
    select, native = [], {}
    for column, type_ in zip(columns, types):
        if whole.get(column.source):
            select.append(f'CAST("{column.source}" AS BIGINT) AS "{column.source}"')
            native[column.source] = "BIGINT"
        else:
            select.append(f'"{column.source}"')
            if type_ != "VARCHAR":
                native[column.source] = type_
    relation = f"(SELECT {', '.join(select)} FROM read_parquet('{_sql_text(str(staged))}'))"
    labels = {n: label for n, label in zip(names, meta.column_labels or []) if label}
    options = replace(options, descriptions={**labels, **options.descriptions})
    notes: dict[str, Any] = {
        "format": fmt,
        "dataset": meta.table_name or None,
        "label": meta.file_label or None,
        "declared_rows": declared,
    }
    if encoding:
        notes["encoding"] = encoding
    value_labels = _value_labels(meta, {c.original: c.name for c in columns})
    if value_labels:
        notes["value_labels"] = value_labels
    report = _write_typed(
        con,
        relation,
        columns,
        out_dir,
        kv,
        options,
        notes,
        native,
        native=NAMES[fmt],
        strict_columns=part.suffix is None,
    )
    staged.unlink(missing_ok=True)
    return report


def _open(path: Path, fmt: str) -> tuple[Any, Any, str | None]:
    """(the pyreadstat reader, the file's metadata, an encoding to force or None)."""
    import pyreadstat

    read = getattr(pyreadstat, READERS[fmt])
    try:
        _, meta = read(str(path), metadataonly=True, output_format="dict")
        return read, meta, None
    except Exception as err:  # pyreadstat's errors: not this format after all, truncated, bad text
        if "encod" in str(err).lower() or "iconv" in str(err).lower() or "convert string" in str(err).lower():
            try:  # text in a legacy 8-bit encoding the file does not declare
                _, meta = read(str(path), metadataonly=True, output_format="dict", encoding="LATIN1")
                return read, meta, "LATIN1"
            except Exception:
                pass
        raise ConversionError(f"cannot read {path.name} as {NAMES[fmt]}: {err}") from None


def _stage(
    read: Any, path: Path, fmt: str, meta: Any, staged: Path, encoding: str | None
) -> tuple[int, list[str], dict[str, bool]]:
    """Append every chunk of rows to ``staged``; (rows, DuckDB type per column, whole-number doubles)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    width = max(1, len(meta.column_names))
    chunk_rows = max(1_000, CHUNK_CELLS // width)
    extra = {"encoding": encoding} if encoding else {}
    schema: pa.Schema | None = None
    writer: pq.ParquetWriter | None = None
    whole: dict[str, bool] = {}
    offset = 0
    # A reader that keeps returning rows past what the bytes can hold is looping, not reading.
    most = 8 * path.stat().st_size + 1_000
    try:
        while True:
            if offset > most:
                raise ConversionError(f"cannot read {path.name} as {NAMES[fmt]}: the reader does not stop")
            try:
                chunk, _ = read(str(path), row_offset=offset, row_limit=chunk_rows, output_format="dict", **extra)
            except Exception as err:
                raise ConversionError(
                    f"cannot read {path.name} as {NAMES[fmt]} (after row {offset:,}): {err}"
                ) from None
            got = len(next(iter(chunk.values()), []))
            if got == 0:
                break
            table = _arrow_chunk(chunk, meta, schema, path)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(staged, schema, compression="zstd")
                whole = {f"c{i}": pa.types.is_floating(t) for i, t in enumerate(schema.types)}
            writer.write_table(table)
            for name in [n for n, still in whole.items() if still]:
                whole[name] = _all_whole(table.column(name))
            offset += got
            if got < chunk_rows:
                break
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # no rows: the columns' declared kinds, for an empty table
        types = [pa.string() if _is_text(meta, n) else pa.float64() for n in meta.column_names]
        schema = pa.schema([(f"c{i}", t) for i, t in enumerate(types)])
        pq.write_table(schema.empty_table(), staged)
    assert schema is not None
    return offset, [_duckdb_type(t) for t in schema.types], whole


def _arrow_chunk(chunk: dict[str, Any], meta: Any, schema: pa.Schema | None, path: Path) -> pa.Table:
    import pyarrow as pa

    arrays = []
    for i, (name, values) in enumerate(chunk.items()):
        wanted = schema.field(i).type if schema is not None else None
        try:
            array = pa.array(values, type=wanted, from_pandas=True)  # NaN is a missing value
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as err:
            raise ConversionError(f"{path.name}: variable {name} changes kind between rows ({err})") from None
        if wanted is None and pa.types.is_null(array.type):
            array = array.cast(pa.string() if _is_text(meta, name) else pa.float64())
        elif pa.types.is_integer(array.type):
            array = array.cast(pa.int64())
        elif pa.types.is_floating(array.type):
            array = array.cast(pa.float64())
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            array = _blank_as_null(array)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])


def _blank_as_null(array: pa.Array) -> pa.Array:
    """A blank character value (SAS's missing value for text; pyreadstat reads it as ``''``) as
    NULL, as a blank cell of CSV or Excel is: ``where x is null`` must not depend on the format."""
    import pyarrow.compute as pc

    blank = pc.equal(pc.utf8_trim_whitespace(array), "")
    return pc.if_else(blank, None, array) if pc.any(blank).as_py() else array


def _is_text(meta: Any, name: str) -> bool:
    return (getattr(meta, "readstat_variable_types", None) or {}).get(name) == "string"


def _all_whole(column: pa.ChunkedArray) -> bool:
    import pyarrow.compute as pc

    values = column.drop_null()
    if not len(values):
        return True
    whole = pc.and_(pc.equal(values, pc.floor(values)), pc.less(pc.abs(values), _WHOLE_LIMIT))
    return bool(pc.all(whole).as_py())


def _duckdb_type(type_: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "VARCHAR"
    if pa.types.is_integer(type_):
        return "BIGINT"
    if pa.types.is_floating(type_):
        return "DOUBLE"
    if pa.types.is_date(type_):
        return "DATE"
    if pa.types.is_timestamp(type_):
        return "TIMESTAMP"
    if pa.types.is_time(type_):
        return "TIME"
    if pa.types.is_boolean(type_):
        return "BOOLEAN"
    return str(type_).upper()


def _value_labels(meta: Any, names: dict[str, str]) -> dict[str, dict[str, str]]:
    """{column: {value: label}} with values as text (``1``, not ``1.0``), for the notes."""
    labels: dict[str, dict[str, str]] = {}
    for variable, mapping in (getattr(meta, "variable_value_labels", None) or {}).items():
        if variable in names and mapping:
            labels[names[variable]] = {_label_key(k): str(v) for k, v in mapping.items()}
    return labels


def _label_key(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
