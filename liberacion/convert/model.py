"""What the conversion modules share: the options, a table inside a file, the report, a column,
and the budget of bytes a download may expand to."""

from __future__ import annotations

import gzip
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from liberacion.errors import ConversionError
from liberacion.limits import MAX_RATIO, MAX_UNZIPPED_ENV, RATIO_FLOOR, max_unzipped_bytes

BLOCK = 8 * 1024 * 1024
ROW_GROUP_ROWS = 122_880
# What a damaged archive raises while it is read: a bad CRC, a truncated stream, an unknown method.
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, gzip.BadGzipFile)


class Budget:
    """The bytes one downloaded file may still expand to, shared by everything unpacked from it."""

    def __init__(self, name: str, limit: int | None = None) -> None:
        self.name = name  # the downloaded file, for messages
        self.limit = max_unzipped_bytes() if limit is None else limit
        self.used = 0

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise ConversionError(
                f"refusing {self.name}: it expands to more than {self.limit:,} bytes (see {MAX_UNZIPPED_ENV})"
            )

    def copy(
        self, src: Any, dst: Any, label: str, *, compressed: int, declared: int | None = None, ratio: int = MAX_RATIO
    ) -> int:
        """Copy a decompressing stream, refusing a bomb as soon as it shows: beyond the budget,
        beyond its declared size, or expanding ``ratio``-fold once past ``RATIO_FLOOR``."""
        written = 0
        while block := src.read(BLOCK):
            written += len(block)
            self.take(len(block))
            if declared is not None and written > declared + 1024:
                raise ConversionError(f"refusing {label}: it expands beyond its declared size")
            if written > RATIO_FLOOR and written > ratio * max(compressed, 1):
                msg = f"refusing {label}: it expands more than {ratio}-fold (a decompression bomb?)"
                raise ConversionError(msg)
            if dst is not None:
                dst.write(block)
        return written


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
