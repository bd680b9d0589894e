"""What the conversion modules share: the options, a table inside a file, the report, a column."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

BLOCK = 8 * 1024 * 1024
ROW_GROUP_ROWS = 122_880


@dataclass
class ConvertOptions:
    format: str | None = None  # the listing's label (csv, xlsx, ...): a hint, the bytes decide
    columns: dict[str, str] = field(default_factory=dict)  # type overrides by original or snake_case name
    raw: bool = False  # every column VARCHAR exactly as published
    member: str | None = None  # one zip member or Excel sheet
    max_bad_rows: int | None = None  # None: 1% of the rows
    field_names: dict[str, str] = field(default_factory=dict)  # display name -> API field name (Socrata)
    descriptions: dict[str, str] = field(default_factory=dict)  # column descriptions when known


@dataclass
class Part:
    """One table inside a downloaded file."""

    suffix: str | None  # None: the file is one table; else the table is "<table>__<suffix>"
    path: Path
    format: str | None = None  # None: sniffed when converted
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConversionReport:
    rows: int
    rejects: int
    columns: dict[str, dict[str, Any]]
    notes: dict[str, Any]


@dataclass
class _Column:
    source: str  # the column's name in the DuckDB relation
    name: str  # the output (snake_case) name
    original: str  # the name as published


def _matches(name: str, wanted: str) -> bool:
    pure = PurePosixPath(name)
    return wanted.lower() in (name.lower(), pure.name.lower(), pure.stem.lower())


def _sql_text(text: str) -> str:
    return text.replace("'", "''")
