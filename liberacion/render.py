"""Write query results and listings as a table, CSV, TSV, JSON, JSON Lines, Markdown or Parquet.

Everything streams: rows are written batch by batch, so a result of millions of rows is never
held in memory (except for the terminal table, which is capped by ``max_rows``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from liberacion.errors import UsageError
from liberacion.files import atomic_path

if TYPE_CHECKING:
    import pyarrow as pa


class Format(str, Enum):
    table = "table"
    csv = "csv"
    tsv = "tsv"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"
    parquet = "parquet"


DEFAULT_MAX_ROWS = 1000


def default_format(stream: IO[Any]) -> Format:
    """A table for people at a terminal, CSV for pipes and files."""
    isatty = getattr(stream, "isatty", None)
    return Format.table if isatty is not None and isatty() else Format.csv


@dataclass
class Rows:
    """A result to render: column names and chunks of row tuples, or an Arrow stream."""

    columns: list[str]
    chunks: Iterable[Sequence[Sequence[Any]]] = ()
    arrow: pa.RecordBatchReader | None = None

    @classmethod
    def from_dicts(cls, columns: list[str], records: Iterable[dict[str, Any]]) -> Rows:
        return cls(columns, [[tuple(r.get(c) for c in columns) for r in records]])

    @classmethod
    def from_arrow(cls, reader: pa.RecordBatchReader) -> Rows:
        return cls(list(reader.schema.names), arrow=reader)

    def iter_chunks(self) -> Iterator[Sequence[Sequence[Any]]]:
        if self.arrow is None:
            yield from self.chunks
            return
        for batch in self.arrow:
            columns = [col.to_pylist() for col in batch.columns]
            yield list(zip(*columns)) if columns else [() for _ in range(batch.num_rows)]


def render(
    rows: Rows,
    fmt: Format,
    *,
    output: Path | None = None,
    stdout: IO[Any] | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    title: str | None = None,
) -> None:
    """Write ``rows`` in ``fmt`` to ``output`` (atomically) or to ``stdout``."""
    import sys

    if fmt is Format.parquet and output is None:
        raise UsageError("--format parquet needs --output FILE (Parquet is not written to a terminal)")
    if output is None:
        stream = stdout or sys.stdout
        _render_to(rows, fmt, stream, max_rows=max_rows, title=title)
        return
    with atomic_path(output) as tmp:
        if fmt is Format.parquet:
            _write_parquet(rows, tmp)
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                _render_to(rows, fmt, fh, max_rows=max_rows, title=title)


def _render_to(rows: Rows, fmt: Format, stream: IO[Any], *, max_rows: int, title: str | None) -> None:
    if fmt is Format.table:
        _write_table(rows, stream, max_rows=max_rows, title=title)
    elif fmt in (Format.csv, Format.tsv):
        _write_delimited(rows, stream, "," if fmt is Format.csv else "\t")
    elif fmt is Format.json:
        _write_json(rows, stream)
    elif fmt is Format.jsonl:
        _write_jsonl(rows, stream)
    elif fmt is Format.markdown:
        _write_markdown(rows, stream)
    else:  # pragma: no cover - parquet is handled by the caller
        raise UsageError(f"cannot write {fmt.value} to a stream")
    stream.flush()


# -- value formatting --------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):  # a DuckDB MAP
            return {str(k): _json_value(v) for k, v in value}
        return [_json_value(v) for v in value]
    return value


def _text(value: Any) -> str:
    """A cell as text for CSV, Markdown and the terminal table."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(_json_value(value), ensure_ascii=False)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


# -- writers -----------------------------------------------------------------------------------


def _write_delimited(rows: Rows, stream: IO[Any], delimiter: str) -> None:
    if rows.arrow is not None and _arrow_csv_ok(rows.arrow.schema):
        _write_delimited_arrow(rows.arrow, stream, delimiter)
        return
    writer = csv.writer(stream, delimiter=delimiter, lineterminator="\n")
    writer.writerow(rows.columns)
    for chunk in rows.iter_chunks():
        writer.writerows([_text(v) for v in row] for row in chunk)


def _arrow_csv_ok(schema: pa.Schema) -> bool:
    import pyarrow.types as t

    def simple(dtype: pa.DataType) -> bool:
        return not (t.is_nested(dtype) or t.is_binary(dtype) or t.is_large_binary(dtype) or t.is_duration(dtype))

    return all(simple(f.type) for f in schema) and len(set(schema.names)) == len(schema.names)


def _write_delimited_arrow(reader: pa.RecordBatchReader, stream: IO[Any], delimiter: str) -> None:
    """The fast path: pyarrow's C++ CSV writer, batch by batch."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    binary = _binary(stream)
    # Unquoted where the values allow it (clean output for cut/awk); pyarrow refuses "none" for
    # a batch holding a delimiter, quote or newline, and that batch is written quoted instead.
    plain = pacsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="none")
    quoted = pacsv.WriteOptions(include_header=False, delimiter=delimiter)
    header = io.StringIO()
    csv.writer(header, delimiter=delimiter, lineterminator="\n").writerow(reader.schema.names)
    binary.write(header.getvalue().encode())
    for batch in reader:
        # ISO 8601 with a "T", as the JSON formats write it, rather than pyarrow's space.
        columns = [
            pc.strftime(col, "%Y-%m-%dT%H:%M:%S") if pa.types.is_timestamp(col.type) and col.type.tz is None else col
            for col in batch.columns
        ]
        batch = pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
        buffer = io.BytesIO()
        try:
            pacsv.write_csv(batch, buffer, plain)
        except pa.ArrowInvalid:
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, quoted)
        binary.write(buffer.getvalue())
    binary.flush()


def _binary(stream: IO[Any]) -> IO[bytes]:
    stream.flush()
    return getattr(stream, "buffer", stream)


def _write_json(rows: Rows, stream: IO[Any]) -> None:
    stream.write("[")
    first = True
    for chunk in rows.iter_chunks():
        for row in chunk:
            stream.write("\n" if first else ",\n")
            stream.write(_dump(rows.columns, row))
            first = False
    stream.write("\n]\n" if not first else "]\n")


def _write_jsonl(rows: Rows, stream: IO[Any]) -> None:
    for chunk in rows.iter_chunks():
        stream.write("".join(_dump(rows.columns, row) + "\n" for row in chunk))


def _dump(columns: list[str], row: Sequence[Any]) -> str:
    record = {name: _json_value(value) for name, value in zip(columns, row)}
    return json.dumps(record, ensure_ascii=False)


def _write_markdown(rows: Rows, stream: IO[Any]) -> None:
    def cell(value: Any) -> str:
        return _text(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")

    stream.write("| " + " | ".join(cell(c) for c in rows.columns) + " |\n")
    stream.write("|" + "|".join("---" for _ in rows.columns) + "|\n")
    for chunk in rows.iter_chunks():
        for row in chunk:
            stream.write("| " + " | ".join(cell(v) for v in row) + " |\n")


def _write_table(rows: Rows, stream: IO[Any], *, max_rows: int, title: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for name in rows.columns:
        table.add_column(name, overflow="fold")
    shown = 0
    left_out = 0
    for chunk in rows.iter_chunks():
        for row in chunk:
            if shown < max_rows:
                table.add_row(*(_table_cell(v) for v in row))
                shown += 1
            else:
                left_out += 1
    console = Console(file=stream, highlight=False, soft_wrap=False)
    console.print(table)
    if left_out:
        console.print(
            f"[dim]… {left_out:,} more rows not shown (--max-rows {max_rows}); use --format csv for all[/dim]"
        )


def _table_cell(value: Any) -> str:
    from rich.markup import escape

    return "[dim]NULL[/dim]" if value is None else escape(_text(value))


def _write_parquet(rows: Rows, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if rows.arrow is not None:
        reader = rows.arrow
    else:
        columns = rows.columns
        records = [dict(zip(columns, row)) for chunk in rows.iter_chunks() for row in chunk]
        table = pa.Table.from_pylist(records) if records else pa.table({c: pa.array([], pa.null()) for c in columns})
        reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    with pq.ParquetWriter(path, reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)
