"""The tables inside a downloaded file: zip members and gzip are unpacked (refusing members that
escape the directory and zip bombs), workbooks split into sheets; most files are one table."""

from __future__ import annotations

import gzip
import os
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from liberacion.convert.model import BLOCK, ConvertOptions, Part, _matches
from liberacion.convert.sniff import _html_error, mismatch, sniff, unreadable
from liberacion.convert.spreadsheets import _inspect_workbook
from liberacion.errors import ConversionError
from liberacion.formats import reader_format
from liberacion.naming import sanitize_identifier

MAX_UNZIPPED = int(os.environ.get("LIBERACION_MAX_UNZIPPED_BYTES", str(64 * 1024**3)))
MAX_RATIO = 1000  # a member expanding more than this is a zip bomb, not a data file
SKIP_EXTENSIONS = frozenset({".pdf", ".doc", ".docx", ".rtf", ".htm", ".html", ".png", ".jpg", ".gif", ".md"})


def inspect(path: Path, options: ConvertOptions) -> list[Part]:
    """The tables inside a downloaded file: one for most files, one per member or sheet otherwise.

    The format comes from the bytes; the listing's label (``options.format``) is only a hint, and
    a disagreement is noted (``format_mismatch``) on every table, never fatal.
    """
    fmt = sniff(path)
    parts = _inspect_as(path, fmt, options)
    differs = mismatch(options.format, reader_format(options.format), fmt)
    if differs:
        for part in parts:
            part.notes["format_mismatch"] = differs
    return parts


def _inspect_as(path: Path, fmt: str, options: ConvertOptions) -> list[Part]:
    if fmt == "html":
        raise _html_error(path)
    if fmt == "unknown":
        raise unreadable(path)
    if fmt == "zip":
        return _inspect_zip(path, options)
    if fmt == "gz":
        return inspect(_gunzip(path), ConvertOptions(**{**options.__dict__, "format": None}))
    if fmt in ("xlsx", "xls", "ods"):
        return _inspect_workbook(path, fmt, options)
    return [Part(suffix=None, path=path, format=fmt)]


def _gunzip(path: Path) -> Path:
    target = path.with_name(path.name + ".gunzip")
    with gzip.open(path, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, BLOCK)
    return target


def _inspect_zip(path: Path, options: ConvertOptions) -> list[Part]:
    directory = path.with_name(path.name + ".members")
    directory.mkdir(exist_ok=True)
    with zipfile.ZipFile(path) as zf:
        members = _tabular_members(zf, path)
        if options.member:
            members = [m for m in members if _matches(m.filename, options.member)]
            if not members:
                raise ConversionError(f"{path.name} has no member named {options.member!r}")
        parts: list[Part] = []
        skipped: list[str] = []
        for info in members:
            target = directory / f"{len(parts):03d}-{sanitize_identifier(PurePosixPath(info.filename).name)}"
            with zf.open(info) as src, open(target, "wb") as dst:
                _copy_capped(src, dst, info)
            suffix = _member_suffix(info.filename, members)
            nested = ConvertOptions(**{**options.__dict__, "format": None, "member": None})
            try:
                inner = inspect(target, nested)
            except ConversionError:
                if len(members) == 1:
                    raise
                skipped.append(info.filename)  # a readme or a SAS catalog beside the data
                target.unlink(missing_ok=True)
                continue
            for part in inner:
                notes = {**part.notes, "member": info.filename}
                parts.append(Part(_join(suffix, part.suffix), part.path, part.format, notes))
    if not parts:
        raise ConversionError(f"{path.name} contains no data files")
    if len(parts) == 1:
        parts[0].suffix = None
    for part in parts:
        if skipped:
            part.notes["skipped_members"] = skipped
    return parts


def _tabular_members(zf: zipfile.ZipFile, path: Path) -> list[zipfile.ZipInfo]:
    members, seen, total = [], set(), 0
    for info in zf.infolist():
        name = info.filename
        pure = PurePosixPath(name.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or (len(name) > 1 and name[1] == ":"):
            raise ConversionError(f"refusing {path.name}: member {name!r} would escape the extraction directory")
        if info.is_dir() or pure.name.startswith(".") or "__MACOSX" in pure.parts:
            continue
        if pure.suffix.lower() in SKIP_EXTENSIONS:
            continue
        total += info.file_size
        if total > MAX_UNZIPPED:
            raise ConversionError(f"refusing {path.name}: it expands to more than {MAX_UNZIPPED:,} bytes")
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 2**24:
            raise ConversionError(f"refusing {path.name}: member {name!r} expands {MAX_RATIO}-fold (a zip bomb?)")
        key = (info.CRC, info.file_size)
        if key in seen:  # the same bytes under another name (FDA ships .txt and .xls copies)
            continue
        seen.add(key)
        members.append(info)
    return members


def _copy_capped(src: Any, dst: Any, info: zipfile.ZipInfo) -> None:
    written = 0
    while block := src.read(BLOCK):
        written += len(block)
        if written > info.file_size + 1024:  # the header lied about the size
            raise ConversionError(f"refusing member {info.filename!r}: it expands beyond its declared size")
        dst.write(block)


def _member_suffix(name: str, members: list[zipfile.ZipInfo]) -> str:
    pure = PurePosixPath(name)
    stems = [PurePosixPath(m.filename).stem.lower() for m in members]
    if stems.count(pure.stem.lower()) > 1:
        return sanitize_identifier(pure.name)
    return sanitize_identifier(pure.stem)


def _join(first: str | None, second: str | None) -> str | None:
    return "__".join(p for p in (first, second) if p) or None
