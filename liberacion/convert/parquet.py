"""Parquet downloads: read directly (already typed by their writer), after pyarrow has checked the
footer, so a file that starts with ``PAR1`` but is not Parquet is refused. Text columns follow the
same rules as CSV text; ``--type`` and ``--raw`` apply as for any format."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import liberacion.convert.typing_rules as rules
from liberacion.convert.model import ConversionReport, ConvertOptions, Part, _Column, _sql_text
from liberacion.convert.typed_copy import _write_typed
from liberacion.errors import ConversionError, one_line
from liberacion.naming import quote_ident

if TYPE_CHECKING:
    import duckdb


def _convert_parquet(
    con: duckdb.DuckDBPyConnection, part: Part, out_dir: Path, kv: dict[str, str], options: ConvertOptions
) -> ConversionReport:
    import pyarrow.parquet as pq

    try:
        declared = pq.ParquetFile(part.path).metadata.num_rows
    except Exception as err:  # pyarrow's ArrowInvalid, OSError: a damaged or truncated file
        raise ConversionError(f"cannot read {part.path.name} as Parquet: {one_line(err, limit=200)}") from None
    source = f"read_parquet('{_sql_text(str(part.path))}')"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except Exception as err:
        raise ConversionError(f"cannot read {part.path.name} as Parquet: {one_line(err, limit=200)}") from None
    taken: set[str] = set()
    columns, native = [], {}
    inner = []
    for i, (name, type_, *_) in enumerate(described):
        column = _Column(f"c{i}", rules.snake_case(name, i + 1, taken), name)
        columns.append(column)
        inner.append(f"{quote_ident(name)} AS {quote_ident(column.source)}")
        if type_ != "VARCHAR":
            native[column.source] = type_
    relation = f"(SELECT {', '.join(inner)} FROM {source})"
    notes: dict[str, Any] = {"format": "parquet", "declared_rows": declared}
    return _write_typed(
        con,
        relation,
        columns,
        out_dir,
        kv,
        options,
        notes,
        native,
        native="Parquet",
        strict_columns=part.strict_types,
    )
