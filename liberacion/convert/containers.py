"""The tables inside a downloaded file: zip members and gzip are unpacked, workbooks split into
sheets; most files are one table.

Everything unpacked is written under the caller's work directory, never beside the file (which
may be the user's own), and within limits: members that would escape the directory, archives
nested deeper than ``MAX_ARCHIVE_DEPTH``, more than ``LIBERACION_MAX_UNZIPPED_BYTES`` in all (zip
members, gzip, nested archives and workbook parts together) and members expanding
``MAX_RATIO``-fold are refused, and a damaged or truncated archive is an error that says so.
"""

from __future__ import annotations

import gzip
import tempfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath

from liberacion.convert.model import (
    DAMAGED,
    NOT_A_TABLE,
    Budget,
    ConvertOptions,
    Part,
    choose,
    distinct_suffixes,
    note_skipped,
)
from liberacion.convert.sniff import HEAD_BYTES, mismatch, refuse_unreadable, sniff, sniff_head
from liberacion.convert.spreadsheets import _inspect_workbook
from liberacion.errors import ConversionError, UsageError, one_line, option
from liberacion.formats import reader_format
from liberacion.limits import MAX_ARCHIVE_DEPTH, MAX_RATIO, MAX_UNZIPPED_ENV, RATIO_FLOOR
from liberacion.naming import sanitize_identifier

BLANK_BYTES = 64 * 1024  # a member this small may be white space only: read it to tell
# A member larger than this, of a format that is one table (text, JSON, SAS...), beside others is
# unpacked only when converted: the disk holds one such member at a time, not the whole zip.
DEFER_BYTES = 64 * 1024 * 1024
SKIP_EXTENSIONS = frozenset({".pdf", ".doc", ".docx", ".rtf", ".htm", ".html", ".png", ".jpg", ".gif", ".md"})


def inspect(path: Path, options: ConvertOptions, *, work: Path) -> list[Part]:
    """The tables inside a downloaded file: one for most files, one per member or sheet otherwise.

    The format comes from the bytes; the listing's label (``options.format``) is only a hint, and
    a disagreement is noted (``format_mismatch``) on every table, never fatal. Unpacked members,
    gunzipped files and sheets are written under ``work``, a directory the caller removes when
    the tables are published (or have failed).
    """
    return _inspect(path, options, work, Budget(path.name), depth=0, label=path.name)


def _inspect(path: Path, options: ConvertOptions, work: Path, budget: Budget, *, depth: int, label: str) -> list[Part]:
    fmt = sniff(path)
    parts = _inspect_as(path, fmt, options, work, budget, depth=depth, label=label)
    differs = mismatch(options.format, reader_format(options.format), fmt)
    if differs:
        for part in parts:
            part.notes["format_mismatch"] = differs
    return parts


def _inspect_as(
    path: Path, fmt: str, options: ConvertOptions, work: Path, budget: Budget, *, depth: int, label: str
) -> list[Part]:
    refuse_unreadable(path, fmt)
    if fmt in ("zip", "gz") and depth >= MAX_ARCHIVE_DEPTH:
        raise ConversionError(
            f"refusing {budget.name}: archives nested more than {MAX_ARCHIVE_DEPTH} deep ({label} is one more)"
        )
    if fmt == "zip":
        return _inspect_zip(path, options, work, budget, depth=depth, label=label)
    if fmt == "gz":
        inner = _gunzip(path, work, budget, label)
        plain = ConvertOptions(**{**options.__dict__, "format": None})
        parts = _inspect(inner, plain, work, budget, depth=depth + 1, label=label.removesuffix(".gz"))
        for part in parts:
            part.unpacked = True  # gzip checked its CRC and length at the end of the stream
        return parts
    if fmt in ("xlsx", "xls", "ods"):
        return _inspect_workbook(path, fmt, options, Path(tempfile.mkdtemp(dir=work, prefix="sheets-")), budget)
    if options.member:
        shown = {"text": "delimited text"}.get(fmt, fmt)
        member = option("member")
        raise UsageError(f"{member} {options.member}: {label} is {shown}, not a zip or a workbook; drop {member}")
    return [Part(suffix=None, path=path, format=fmt)]


def _gunzip(path: Path, work: Path, budget: Budget, label: str) -> Path:
    target = Path(tempfile.mkdtemp(dir=work, prefix="gunzip-")) / sanitize_identifier(label.removesuffix(".gz"))
    try:
        with gzip.open(path, "rb") as src, open(target, "wb") as dst:
            budget.copy(src, dst, label, compressed=path.stat().st_size)
    except DAMAGED as err:
        raise ConversionError(f"cannot unpack {label}: a damaged or truncated gzip file ({_reason(err)})") from None
    return target


def _inspect_zip(
    path: Path, options: ConvertOptions, work: Path, budget: Budget, *, depth: int, label: str
) -> list[Part]:
    directory = Path(tempfile.mkdtemp(dir=work, prefix="members-"))
    try:
        zf = zipfile.ZipFile(path)
    except DAMAGED as err:
        raise ConversionError(f"cannot unpack {label}: a damaged or truncated zip file ({_reason(err)})") from None
    with zf:
        listing = _tabular_members(zf, label, budget)
        members = listing.members
        # Every member's suffix, from the whole listing: the table names do not depend on --member.
        suffixes: list[str | None] = list(_member_suffixes([m.filename for m in members]))
        skipped = dict(listing.skipped)
        if options.member:
            names = [m.filename for m in members] + list(listing.copies)
            shown = [*suffixes, *[None] * len(listing.copies)]
            chosen = choose(names, shown, options.member, kind="member", where=label)
            if chosen < len(members):
                members, suffixes = [members[chosen]], [suffixes[chosen]]
            else:  # the copy asked for by name: the same bytes, under the name the user gave
                members, suffixes = [listing.copies[names[chosen]][1]], [None]
            skipped = {}
        else:
            skipped.update({name: f"the same bytes as {first}" for name, (first, _info) in listing.copies.items()})
        parts: list[Part] = []
        for info, suffix in zip(members, suffixes):
            name = PurePosixPath(info.filename.replace("\\", "/")).name
            if name.lower().startswith(("readme", "read_me", "read me")) and len(members) > 1:
                skipped[info.filename] = NOT_A_TABLE  # documentation beside the data, whatever its extension
                continue
            target = directory / f"{len(parts):03d}-{sanitize_identifier(name)}"
            where = f"{label}: {info.filename}"
            if len(members) > 1 and info.file_size > DEFER_BYTES:
                deferred = _deferred(zf, path, info, target, budget, where)
                if deferred == NOT_A_TABLE:
                    skipped[info.filename] = NOT_A_TABLE
                    continue
                if isinstance(deferred, Part):
                    deferred.suffix = _join(suffix, None)
                    parts.append(deferred)
                    continue
            try:
                with zf.open(info) as src, open(target, "wb") as dst:
                    budget.copy(src, dst, where, compressed=info.compress_size, declared=info.file_size)
            except DAMAGED as err:
                raise ConversionError(f"cannot unpack {where}: the member is damaged ({_reason(err)})") from None
            if len(members) > 1 and _blank(target):
                skipped[info.filename] = "an empty file"  # a placeholder beside the data, not a table
                target.unlink(missing_ok=True)
                continue
            nested = ConvertOptions(**{**options.__dict__, "format": None, "member": None})
            try:
                inner = _inspect(target, nested, work, budget, depth=depth + 1, label=name)
            except ConversionError as err:
                if len(members) == 1:
                    raise ConversionError(_named(str(err), target.name, info.filename)) from None
                skipped[info.filename] = NOT_A_TABLE  # a readme or a SAS catalog beside the data
                target.unlink(missing_ok=True)
                continue
            for part in inner:
                notes = {**part.notes, "member": info.filename}
                shown = info.filename if part.label is None else f"{info.filename}: {part.label}"
                # zipfile checked the member's CRC as it was copied out: the bytes are whole.
                parts.append(Part(_join(suffix, part.suffix), part.path, part.format, notes, shown, unpacked=True))
    if not parts:
        raise ConversionError(f"{label} contains no data files")
    if len(parts) == 1:
        parts[0].suffix = None
    else:  # a member's sheets beside other members: still one table each
        for part, distinct in zip(parts, distinct_suffixes([p.suffix or "" for p in parts])):
            part.suffix = distinct
    if skipped:
        for part in parts:
            note_skipped(part.notes, skipped)
    return parts


_ONE_TABLE_NOT = frozenset({"gz", "xls"})  # containers and workbooks: inspected whole, as before
_NOT_DATA = frozenset({"html", "json-error", "json-scalar", "unknown"})


def _deferred(
    zf: zipfile.ZipFile, zip_path: Path, info: zipfile.ZipInfo, target: Path, budget: Budget, where: str
) -> Part | str | None:
    """A large member of ``zf`` (the zip at ``zip_path``) of a format that is one table, as a part
    unpacked when converted; the ``NOT_A_TABLE`` reason for one no reader takes; None for one to
    inspect now (a zip, a gzip file or a workbook inside the zip)."""
    try:
        with zf.open(info) as src:
            head = src.read(HEAD_BYTES)
    except DAMAGED as err:
        raise ConversionError(f"cannot unpack {where}: the member is damaged ({_reason(err)})") from None
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return None
    fmt = sniff_head(head)
    if fmt in _ONE_TABLE_NOT:
        return None
    if fmt in _NOT_DATA:
        return NOT_A_TABLE  # a readme or a SAS catalog beside the data, as when unpacked
    unpack = partial(_unpack_member, zip_path, info, target, budget, where)
    return Part(None, target, fmt, {"member": info.filename}, info.filename, unpacked=True, pending=unpack)


def _unpack_member(zip_path: Path, info: zipfile.ZipInfo, target: Path, budget: Budget, where: str) -> None:
    try:
        with zipfile.ZipFile(zip_path) as zf, zf.open(info) as src, open(target, "wb") as dst:
            budget.copy(src, dst, where, compressed=info.compress_size, declared=info.file_size)
    except DAMAGED as err:
        raise ConversionError(f"cannot unpack {where}: the member is damaged ({_reason(err)})") from None


@dataclass
class _Listing:
    """A zip's members worth reading, the copies of one of them, and what is left out and why."""

    members: list[zipfile.ZipInfo] = field(default_factory=list)
    copies: dict[str, tuple[str, zipfile.ZipInfo]] = field(default_factory=dict)  # name -> (first, info)
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why


def _tabular_members(zf: zipfile.ZipFile, label: str, budget: Budget) -> _Listing:
    """The members worth reading, after refusing what a zip bomb or a zip slip declares."""
    listing = _Listing()
    seen: dict[tuple[int, int], str] = {}
    total = 0
    for info in zf.infolist():
        name = info.filename
        pure = PurePosixPath(name.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or (len(name) > 1 and name[1] == ":"):
            raise ConversionError(f"refusing {label}: member {name!r} would escape the extraction directory")
        if info.is_dir() or pure.name.startswith(".") or "__MACOSX" in pure.parts:
            continue
        if pure.suffix.lower() in SKIP_EXTENSIONS:
            listing.skipped[name] = NOT_A_TABLE
            continue
        total += info.file_size
        if budget.used + total > budget.limit:
            raise ConversionError(
                f"refusing {budget.name}: it expands to more than {budget.limit:,} bytes (see {MAX_UNZIPPED_ENV})"
            )
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ConversionError(f"refusing {label}: member {name!r} expands {MAX_RATIO}-fold (a zip bomb?)")
        key = (info.CRC, info.file_size)
        if key in seen:  # the same bytes under another name (FDA ships .txt and .xls copies)
            listing.copies[name] = (seen[key], info)
            continue
        seen[key] = name
        listing.members.append(info)
    return listing


def _blank(path: Path) -> bool:
    """True for a member with nothing but white space (or a byte-order mark) in it."""
    if path.stat().st_size > BLANK_BYTES:
        return False
    return not path.read_bytes().lstrip(b"\xef\xbb\xbf").strip()


def _named(message: str, internal: str, name: str) -> str:
    """A message about an unpacked member, naming it as the zip spells it."""
    return message.replace(internal, name) if internal in message else f"{name}: {message}"


def _reason(err: BaseException) -> str:
    kind = "zlib.error" if isinstance(err, zlib.error) else type(err).__name__
    text = one_line(err, lines=1, limit=160)
    return f"{kind}: {text}" if text else kind


def _member_suffixes(names: list[str]) -> list[str]:
    """Each member's table suffix: its stem; its whole file name when another member has the same
    stem; its path when another member has the same file name in another folder
    (``2023/data.csv``, ``2024/data.csv``). Made distinct at the end (``distinct_suffixes``)."""
    pures = [PurePosixPath(n.replace("\\", "/")) for n in names]
    stems = Counter(p.stem.lower() for p in pures)  # once: 2,000 members
    files = Counter(p.name.lower() for p in pures)
    wanted = []
    for pure in pures:
        if stems[pure.stem.lower()] == 1:
            wanted.append(pure.stem)
        elif files[pure.name.lower()] == 1:
            wanted.append(pure.name)
        else:
            wanted.append(str(pure))
    return distinct_suffixes(wanted)


def _join(first: str | None, second: str | None) -> str | None:
    return "__".join(p for p in (first, second) if p) or None
