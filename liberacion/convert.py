"""Raw files to Parquet (a minimal stand-in for the conversion module: CSV only, all VARCHAR).

The full module (typing rules, JSON, XPT, zip members, Excel sheets) replaces this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liberacion.errors import ConversionError
from liberacion.lake import sanitize_identifier


@dataclass
class ConvertOptions:
    format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    raw: bool = False
    member: str | None = None
    max_bad_rows: int | None = None
    field_names: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)


@dataclass
class Part:
    suffix: str | None
    path: Path


@dataclass
class ConversionReport:
    rows: int
    rejects: int
    columns: dict[str, dict[str, Any]]
    notes: dict[str, Any]


def inspect(path: Path, options: ConvertOptions) -> list[Part]:
    """The tables in a source file: a CSV is one part."""
    head = path.read_bytes()[:8]
    if head.startswith((b"PK\x03\x04", b"\x1f\x8b", b"HEADER R")) or (options.format or "csv").lower() != "csv":
        raise ConversionError(f"cannot convert {path.name}: only CSV is supported by this build")
    return [Part(suffix=None, path=path)]


def convert_part(
    part: Part, out_dir: Path, *, kv_metadata: dict[str, str], options: ConvertOptions
) -> ConversionReport:
    """Write the CSV as ``out_dir/data-0000.parquet`` with every column as text."""
    import duckdb
    import pyarrow.parquet as pq

    try:
        with duckdb.connect() as con:
            table = con.read_csv(str(part.path), all_varchar=True).to_arrow_table()
    except duckdb.Error as err:
        raise ConversionError(f"cannot read {part.path.name} as CSV: {err}") from None
    originals = table.column_names
    names: list[str] = []
    for original in originals:
        name = sanitize_identifier(original, fallback="c")
        while name in names:
            name += "_"
        names.append(name)
    table = table.rename_columns(names)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **kv_metadata})
    pq.write_table(table, out_dir / "data-0000.parquet", compression="zstd")
    columns = {n: {"original": o} for n, o in zip(names, originals)}
    return ConversionReport(rows=table.num_rows, rejects=0, columns=columns, notes={"format": "csv"})
