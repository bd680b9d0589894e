"""What the conversion modules share: the options, a table inside a file, the report, a column,
and the budget of bytes a download may expand to."""

from __future__ import annotations

import gzip
import shlex
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from liberacion.errors import ConversionError
from liberacion.limits import MAX_RATIO, MAX_UNZIPPED_ENV, RATIO_FLOOR, max_unzipped_bytes
from liberacion.naming import sanitize_identifier

BLOCK = 8 * 1024 * 1024
ROW_GROUP_ROWS = 122_880
# A row group is held in memory until it is written: rows of megabytes each (a long text field)
# made 200 rows one row group of 400 MB, past the memory limit. Ordinary rows never reach it.
ROW_GROUP_BYTES = "64MB"
MAX_LINE_BYTES = 8 << 20  # DuckDB's reader: the longest line (a record with its quoted newlines)
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
    # The overrides a catalog manifest declared (name -> where), so an error blames the manifest, not --type.
    declared_in: dict[str, str] = field(default_factory=dict)
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
    # How messages name it: the member as the zip spells it, or the sheet ("book.xlsx: sheet 'Data'"),
    # never the name it was unpacked under. None: the downloaded file itself.
    label: str | None = None
    # Unpacked from a zip or a gzip file, whose checksum (CRC-32 and length) was verified as it was
    # read: its bytes are whole, so a short last row is a short row, not a file cut off.
    unpacked: bool = False
    # A large zip member is unpacked only when it is converted (``convert_part`` calls this), so
    # the disk holds one such member at a time, not all of them (see ``containers.DEFER_BYTES``).
    pending: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    # One file of a dataset of several (openFDA's partitions): a --type may name a column that only
    # another file has, checked over all of them (``fetching._check_types_matched``).
    of_several: bool = False

    @property
    def strict_types(self) -> bool:
        """Whether a --type naming no column of this table alone is an error (with near matches)."""
        return self.suffix is None and not self.of_several

    def unpack(self) -> None:
        """Write the part's file if it is still pending (a no-op for a file already there)."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending()


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


NOT_A_TABLE = "not a table liberacion can read"  # why most skipped members are skipped
SHOWN_CHOICES = 20  # members or sheets an unknown --member lists


def distinct_suffixes(suffixes: Sequence[str]) -> list[str]:
    """The suffixes as table names, made distinct: two members or sheets that snake_case to the same
    name (``Data-1`` and ``Data 1``) would otherwise be written into one table. The first keeps its
    name, the next get ``_2``, ``_3``... (never a name another one has of its own)."""
    wanted = [sanitize_identifier(s) for s in suffixes]
    own = Counter(wanted)
    taken: set[str] = set()
    result = []
    for name in wanted:
        chosen, n = name, 2
        while chosen in taken or (chosen != name and chosen in own):
            chosen, n = f"{name}_{n}", n + 1
        taken.add(chosen)
        result.append(chosen)
    return result


def choose(names: Sequence[str], suffixes: Sequence[str | None], wanted: str, *, kind: str, where: str) -> int:
    """The index of the one member (or sheet) ``--member wanted`` names: by its whole name exactly as
    spelled, then in any case, its file name, its stem (members only), or the table suffix liberacion
    shows for it; the first of these that matches anything decides. None matching or several is an
    error listing them."""
    low = wanted.strip().lower()
    pures = [PurePosixPath(n.replace("\\", "/")) for n in names]
    tests = [
        lambda i: names[i] == wanted,  # exactly as spelled: it wins over names that differ in case
        lambda i: names[i].strip().lower() == low,
        lambda i: kind == "member" and pures[i].name.lower() == low,
        lambda i: kind == "member" and pures[i].stem.lower() == low,
        lambda i: suffixes[i] == low,
    ]
    for test in tests:
        found = [i for i in range(len(names)) if test(i)]
        if len(found) == 1:
            return found[0]
        if found:
            listed = ", ".join(names[i] for i in found)
            raise ConversionError(
                f"--member {wanted}: {where} has {len(found)} {kind}s of that name ({listed});"
                f" give the whole name, e.g. --member {shlex.quote(names[found[0]])}"  # quoted: run as printed
            )
    shown = ", ".join(names[:SHOWN_CHOICES]) + (
        f" and {len(names) - SHOWN_CHOICES:,} more" if len(names) > SHOWN_CHOICES else ""
    )
    raise ConversionError(f"{where} has no {kind} named {wanted!r}; its {kind}s: {shown or 'none'}")


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def note_skipped(notes: dict[str, Any], skipped: dict[str, str]) -> None:
    """Record members left out in a table's conversion notes: their names (``skipped_members``,
    which ``info`` shows) and, for those that are not merely unreadable, why (``skipped_why``)."""
    merged = {**dict.fromkeys(notes.get("skipped_members") or (), NOT_A_TABLE), **notes.get("skipped_why", {})}
    merged.update(skipped)
    notes["skipped_members"] = sorted(merged)
    why = {name: reason for name, reason in merged.items() if reason != NOT_A_TABLE}
    if why:
        notes["skipped_why"] = why
