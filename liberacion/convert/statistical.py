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

ReadStat skips ``row_offset`` rows of a SAS transport file by reading (and converting) every row
before them, so reading chunk after chunk at growing offsets takes time in the square of the rows.
A transport file's rows are fixed-length records after its headers, so each chunk is handed to
pyreadstat instead as a small file of its own: the original header bytes followed by that chunk's
rows alone, read from its first row. Every byte is read once (benchmarks/xpt.py).

pyreadstat sets aside room for 100,000 rows of every variable it reads when the file does not say
how many rows it holds (SAS transport never does; an SPSS file may not), however few rows are
asked for: 1.7 GB for 2,000 variables. Such a file's chunks are read a group of variables at a
time (``usecols``), each group small enough for that room to fit ``PREALLOCATED_BYTES``, and the
groups' columns joined in the file's order: the same chunk as one read gives. A file of up to 209
variables is still read once a chunk (benchmarks/xpt.py --variables).
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
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
CHUNK_CELLS = 2_000_000  # values held in Python at once: rows per chunk = this / columns
_WHOLE_LIMIT = 2**53
# What pyreadstat may set aside at once for a file that does not declare its row count: it makes
# room for _UNCOUNTED_ROWS of each variable read, 8 bytes a value (a list slot or a double).
PREALLOCATED_BYTES = 160 << 20  # 209 variables a read: 0.4 GB peak for 2,000 variables, not 1.7
_UNCOUNTED_ROWS = 100_000
_DUPLICATE = re.compile(r"_duplicated\d+$")  # pyreadstat's renaming of a repeated variable name

# Reads rows [offset, offset + limit) of the file as pyreadstat's dict output.
ReadRows = Callable[[int, int], dict[str, Any]]

_RECORD = 80
_NAMESTR = 140  # ReadStat reads every variable descriptor as 140 bytes, whatever the header says
_HEADER = re.compile(rb"HEADER RECORD\*{7}([A-Z0-9]{1,8}) *HEADER RECORD!{7}")
_BLOCK = 1 << 20


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
    declared = meta.number_rows if isinstance(meta.number_rows, int) and meta.number_rows >= 0 else None
    if declared is None:
        read = _grouped(read, names)
    rows, types, whole = _stage(_row_reader(read, path, fmt, encoding), path, fmt, meta, staged)
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
        strict_columns=part.strict_types,
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


def _grouped(read: Any, names: list[str]) -> Any:
    """``read`` for a file without a row count, by groups of variables when pyreadstat's room for
    them all would pass ``PREALLOCATED_BYTES``; ``read`` itself for a narrow file."""
    size = max(1, PREALLOCATED_BYTES // (_UNCOUNTED_ROWS * 8))
    if len(names) <= size or not _selectable(names):
        return read
    groups = [names[i : i + size] for i in range(0, len(names), size)]
    return partial(_read_groups, read, groups)


def _selectable(names: list[str]) -> bool:
    """Whether ``usecols`` can pick every variable by the name the metadata gives it: not for a
    nameless one, nor for a repeated name: pyreadstat calls the second ``X_duplicated1`` in the
    metadata, a name ``usecols`` does not know."""
    return len(set(names)) == len(names) and not any(
        not isinstance(n, str) or not n or _DUPLICATE.search(n) for n in names
    )


def _read_groups(read: Any, groups: list[list[str]], source: Any, **options: Any) -> tuple[dict[str, Any], Any]:
    """pyreadstat's (data, metadata) read one group of variables at a time, the groups' columns
    joined in the file's order: the same data as one read, with room set aside for a group only."""
    data: dict[str, Any] = {}
    meta = None
    for group in groups:
        if hasattr(source, "seek"):  # an in-memory chunk is read again for every group
            source.seek(0)
        part, meta = read(source, usecols=group, **options)
        if list(part) != group or len({len(values) for values in [*part.values(), *data.values()]}) > 1:
            # Not how pyreadstat selects (a name it spells otherwise): one read, as before grouping.
            if hasattr(source, "seek"):
                source.seek(0)
            return read(source, **options)
        data.update(part)
    return data, meta


def _row_reader(read: Any, path: Path, fmt: str, encoding: str | None) -> ReadRows:
    """How to read a run of rows: by offset in the file, or for a SAS transport file whose layout
    is understood, from a file made of its header and those rows alone."""
    extra = {"encoding": encoding} if encoding else {}
    layout = _xport_rows(path) if fmt == "xpt" else None
    if layout is None:
        return partial(_read_at_offset, read, path, extra)
    return partial(_read_xport_rows, read, path, layout, extra)


def _read_at_offset(read: Any, path: Path, extra: dict[str, str], offset: int, limit: int) -> dict[str, Any]:
    chunk, _ = read(str(path), row_offset=offset, row_limit=limit, output_format="dict", **extra)
    return chunk


@dataclass(frozen=True)
class _XportRows:
    """Where ReadStat finds the rows of a SAS transport file."""

    header: bytes  # everything before the first row, given again with every chunk
    length: int  # bytes of one row
    count: int  # the rows ReadStat reads: whole rows to the end of the file, trailing blank ones left out


def _xport_rows(path: Path) -> _XportRows | None:
    """The rows' layout, found by walking the headers as ReadStat does; None for anything unusual
    (another namestr size, an unknown record where the rows should begin), read by offset instead."""
    with open(path, "rb") as fh:
        try:
            found = _xport_header(fh)
        except (ValueError, struct.error):
            return None
        if found is None:
            return None
        start, length = found
        fh.seek(0)
        header = fh.read(start)
        # ReadStat reads whole rows up to the end of the file (a partial last one is left unread)
        # and keeps blank rows only when a row that is not blank follows them.
        full = (path.stat().st_size - start) // length
        last = _last_nonblank(fh, start, start + full * length)
    count = 0 if last is None else (last - start) // length + 1
    return _XportRows(header, length, count)


def _xport_header(fh: io.BufferedReader) -> tuple[int, int] | None:
    """(offset of the first row, bytes of a row), or None where ReadStat's reading is not followed."""
    library = _header_name(fh.read(_RECORD))
    if library not in ("LIBRARY", "LIBV8"):
        return None
    v8 = library == "LIBV8"
    fh.seek(2 * _RECORD, io.SEEK_CUR)  # the library's real header and its dates
    member = fh.read(_RECORD)
    if _header_name(member) != ("MEMBV8" if v8 else "MEMBER") or member[74:78] != b"%04d" % _NAMESTR:
        return None
    if _header_name(fh.read(_RECORD)) != ("DSCPTV8" if v8 else "DSCRPTR"):
        return None
    fh.seek(2 * _RECORD, io.SEEK_CUR)  # the data set's name, label and dates
    namestrs = fh.read(_RECORD)
    if _header_name(namestrs) != ("NAMSTV8" if v8 else "NAMESTR"):
        return None
    variables = int(namestrs[53:58])
    descriptors = fh.read(variables * _NAMESTR)
    if variables < 1 or len(descriptors) < variables * _NAMESTR:
        return None
    length = sum(struct.unpack_from(">h", descriptors, i * _NAMESTR + 4)[0] for i in range(variables))
    _skip_rest_of_record(fh)
    record = fh.read(_RECORD)
    name = _header_name(record)
    if v8 and name in ("LABELV8", "LABELV9"):
        _skip_labels(fh, record, name == "LABELV9")
        name = _header_name(fh.read(_RECORD))
    if name != ("OBSV8" if v8 else "OBS") or length < 1:
        return None
    return fh.tell(), length


def _header_name(record: bytes) -> str | None:
    match = _HEADER.match(record) if len(record) == _RECORD else None
    return match.group(1).decode("ascii") if match else None


def _skip_labels(fh: io.BufferedReader, record: bytes, v9: bool) -> None:
    """Past version 8's long names and labels: a count in the header, then for each a few lengths
    and the texts, the last one padded to a whole record."""
    count = re.match(rb"\s*(\d{1,5})", record[48:])  # ReadStat reads it with sscanf's %05d
    if count is None:
        raise ValueError("no label count")
    fields = 5 if v9 else 3
    for _ in range(int(count.group(1))):
        lengths = struct.unpack(f">{fields}H", fh.read(2 * fields))
        fh.seek(sum(lengths[1:]), io.SEEK_CUR)
    _skip_rest_of_record(fh)


def _skip_rest_of_record(fh: io.BufferedReader) -> None:
    fh.seek(-fh.tell() % _RECORD, io.SEEK_CUR)


def _last_nonblank(fh: io.BufferedReader, start: int, end: int) -> int | None:
    """Offset of the last byte in [start, end) that is not a space, read backwards in blocks."""
    while end > start:
        size = min(_BLOCK, end - start)
        fh.seek(end - size)
        block = fh.read(size)
        kept = len(block.rstrip(b" "))
        if kept:
            return end - size + kept - 1
        end -= size
    return None


def _read_xport_rows(
    read: Any, path: Path, layout: _XportRows, extra: dict[str, str], offset: int, limit: int
) -> dict[str, Any]:
    """Rows [offset, offset + limit) as pyreadstat reads them from a file of the header and those
    rows alone: the same values as reading the whole file, without reading what comes before."""
    rows = min(limit, layout.count - offset)
    if rows <= 0:
        return {}
    start = len(layout.header)
    end = start + rows * layout.length
    # ReadStat holds blank rows back until a row that is not blank follows (trailing blank rows are
    # padding): this zero row lets the chunk's own trailing blank rows out. The limit stops the
    # reader before it, and the spaces complete the last record, as XPORT pads a member's end.
    closing = b"\0" * layout.length
    buffer = io.BytesIO()
    buffer.write(layout.header)
    buffer.seek(end)  # the rows go in place below: the chunk's bytes are held once, not copied
    buffer.write(closing + b" " * (-(end + len(closing)) % _RECORD))
    with open(path, "rb") as fh, buffer.getbuffer() as view, view[start:end] as rows_view:
        fh.seek(start + offset * layout.length)
        got = fh.readinto(rows_view)
    if got != end - start:  # the file changed since its rows were counted
        raise ConversionError(f"it ends inside row {offset + got // layout.length + 1:,} (changed while read?)")
    buffer.seek(0)
    chunk, _ = read(buffer, row_limit=rows, output_format="dict", **extra)
    return chunk


def _stage(
    read_rows: ReadRows, path: Path, fmt: str, meta: Any, staged: Path
) -> tuple[int, list[str], dict[str, bool]]:
    """Append every chunk of rows to ``staged``; (rows, DuckDB type per column, whole-number doubles)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    width = max(1, len(meta.column_names))
    chunk_rows = max(1_000, CHUNK_CELLS // width)
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
                chunk = read_rows(offset, chunk_rows)
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
