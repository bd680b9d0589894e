"""Turn a downloaded file into correctly typed Parquet: CSV/TSV/pipe, zip, gzip, JSON, JSON Lines,
openFDA, Socrata rows.json, Excel and SAS transport.

Formats are sniffed from the bytes, never trusted from a name or a server's media type. Delimited
text goes through DuckDB at its own speed: a sample decides each column's type (typing_rules), and
one typed COPY writes the Parquet while proving the types over *every* value and counting the
missing-value markers. A value the sample did not foresee stops that COPY; only then are all values
classified (one scan, for the surprised columns) and the COPY run again. Rows that cannot be parsed
go to a rejects file instead of failing the load.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import math
import os
import shutil
import zipfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from liberacion import typing_rules as rules
from liberacion.errors import ConversionError, one_line
from liberacion.formats import reader_format
from liberacion.naming import quote_ident, sanitize_identifier

if TYPE_CHECKING:
    import duckdb

    from liberacion.lake import Lake, Provenance, Snapshot

SAMPLE_ROWS = 50_000
HEAD_BYTES = 1024 * 1024
BLOCK = 8 * 1024 * 1024
MAX_UNZIPPED = int(os.environ.get("LIBERACION_MAX_UNZIPPED_BYTES", str(64 * 1024**3)))
MAX_RATIO = 1000  # a member expanding more than this is a zip bomb, not a data file
NOTES_LIMIT = 64 * 1024
ROW_GROUP_ROWS = 122_880
MEMORY_LIMIT = os.environ.get("LIBERACION_MEMORY_LIMIT", "700MB")
ORDERED_BYTES = 64 * 1024 * 1024  # files up to this size keep their row order in the table
SKIP_EXTENSIONS = frozenset({".pdf", ".doc", ".docx", ".rtf", ".htm", ".html", ".png", ".jpg", ".gif", ".md"})


@dataclass
class ConvertOptions:
    format: str | None = None  # csv, tsv, json, jsonl, openfda, socrata-json, xlsx, xpt, zip, gz; None: sniff
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


# -- sniffing ------------------------------------------------------------------------------------


def sniff(path: Path) -> str:
    """The format of a file from its first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        return "xlsx" if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names) else "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD"):
        return "xpt"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    lower = text[:200].lower()
    if lower.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (
        lower.startswith(b"<") and b"<html" in lower
    ):
        return "html"
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return _sniff_json_object(text)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    return "text"


def _sniff_json_object(text: bytes) -> str:
    first_line = text.split(b"\n", 1)[0].strip()
    try:
        first = json.loads(first_line)
        if isinstance(first, dict) and any(isinstance(first.get(k), list) for k in ("results", "data")):
            return "json-object"  # a whole {meta, results} document on one line
        rest = text.split(b"\n", 1)[1].lstrip() if b"\n" in text else b""
        if rest.startswith(b"{") or not rest:
            return "jsonl"
    except ValueError:
        pass
    head = text[:4096]
    if b'"view"' in head and b'"meta"' in head:
        return "socrata-json"
    return "json-object"


def _html_error(path: Path) -> ConversionError:
    with open(path, "rb") as fh:
        start = " ".join(fh.read(300).decode("utf-8", "replace").split())[:120]
    return ConversionError(f"{path.name} is an HTML page, not data (it starts with {start!r})")


# -- inspect: the tables inside a file ------------------------------------------------------------


def inspect(path: Path, options: ConvertOptions) -> list[Part]:
    """The tables inside a downloaded file: one for most files, one per member or sheet otherwise."""
    fmt = reader_format(options.format) or sniff(path)
    if fmt == "html":
        raise _html_error(path)
    if fmt == "zip":
        return _inspect_zip(path, options)
    if fmt == "gz":
        return inspect(_gunzip(path), ConvertOptions(**{**options.__dict__, "format": None}))
    if fmt == "xlsx":
        return _inspect_xlsx(path, options)
    if fmt == "xls":
        raise ConversionError(f"{path.name} is a legacy binary Excel (.xls) file; save it as .xlsx or CSV first")
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
        for info in members:
            target = directory / f"{len(parts):03d}-{sanitize_identifier(PurePosixPath(info.filename).name)}"
            with zf.open(info) as src, open(target, "wb") as dst:
                _copy_capped(src, dst, info)
            suffix = _member_suffix(info.filename, members)
            nested = ConvertOptions(**{**options.__dict__, "format": None, "member": None})
            for part in inspect(target, nested):
                parts.append(Part(_join(suffix, part.suffix), part.path, part.format, {"member": info.filename}))
    if not parts:
        raise ConversionError(f"{path.name} contains no data files")
    if len(parts) == 1:
        parts[0].suffix = None
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


def _matches(name: str, wanted: str) -> bool:
    pure = PurePosixPath(name)
    return wanted.lower() in (name.lower(), pure.name.lower(), pure.stem.lower())


def _member_suffix(name: str, members: list[zipfile.ZipInfo]) -> str:
    pure = PurePosixPath(name)
    stems = [PurePosixPath(m.filename).stem.lower() for m in members]
    if stems.count(pure.stem.lower()) > 1:
        return sanitize_identifier(pure.name)
    return sanitize_identifier(pure.stem)


def _join(first: str | None, second: str | None) -> str | None:
    return "__".join(p for p in (first, second) if p) or None


# -- Excel ---------------------------------------------------------------------------------------


def _inspect_xlsx(path: Path, options: ConvertOptions) -> list[Part]:
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheets = [ws for ws in workbook.worksheets if options.member is None or _matches(ws.title, options.member)]
        if options.member and not sheets:
            raise ConversionError(f"{path.name} has no sheet named {options.member!r}")
        parts = []
        for index, sheet in enumerate(sheets):
            target = path.with_name(f"{path.name}.sheet{index}.csv")
            notes = _sheet_to_csv(sheet, target)
            if notes is not None:
                parts.append(Part(sanitize_identifier(sheet.title), target, "text", notes))
    finally:
        workbook.close()
    if not parts:
        raise ConversionError(f"{path.name} has no sheet with a table")
    if len(parts) == 1:
        parts[0].suffix = None
    return parts


def _sheet_to_csv(sheet: Any, target: Path) -> dict[str, Any] | None:
    """Write a sheet as CSV from its header row on; title rows above it become notes."""
    rows = sheet.iter_rows(values_only=True)
    head: list[tuple[Any, ...]] = []
    for row in rows:
        head.append(row)
        if len(head) >= 30:
            break
    filled = [sum(1 for v in row if v not in (None, "")) for row in head]
    if not filled or max(filled) < 1:
        return None
    header_at = filled.index(max(filled))
    header = head[header_at]
    width = max(i for i, v in enumerate(header) if v not in (None, "")) + 1
    title = [" ".join(str(v) for v in row if v not in (None, "")) for row in head[:header_at]]
    with open(target, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([_cell(v) for v in header[:width]])
        for row in [*head[header_at + 1 :], *rows]:
            cells = [_cell(v) for v in row[:width]]
            if any(cells):
                writer.writerow(cells + [""] * (width - len(cells)))
    return {"sheet": sheet.title, "title_rows": [t for t in title if t]}


def _cell(value: Any) -> str:
    from datetime import date, datetime

    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.isoformat() if value.time() != datetime.min.time() else value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


# -- convert one part ------------------------------------------------------------------------------


def convert_part(
    part: Part, out_dir: Path, *, kv_metadata: dict[str, str], options: ConvertOptions
) -> ConversionReport:
    """Write ``out_dir/data-0000.parquet`` (and ``rejects.parquet`` for bad rows) for one table."""
    from liberacion.engine import new_connection

    out_dir.mkdir(parents=True, exist_ok=True)
    if part.format is None:
        part.format = reader_format(sniff(part.path))
    if part.format == "xpt":
        return _convert_xpt(part, out_dir, kv_metadata)
    with new_connection() as con:
        # Bounded memory whatever the input size: DuckDB spills to the staging directory instead.
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        if part.path.stat().st_size > ORDERED_BYTES:
            # Keeping the file's row order makes DuckDB buffer and serialise its writers: about
            # 1.5x the time under the memory cap. Big files trade it away; SQL has ORDER BY.
            con.execute("SET preserve_insertion_order = false")
        con.execute(f"SET temp_directory = '{_sql_text(str(out_dir / '.tmp'))}'")
        if part.format == "text":
            report = _convert_text(con, part, out_dir, kv_metadata, options)
        elif part.format in ("json", "jsonl", "json-object", "openfda", "socrata-json"):
            report = _convert_json(con, part, out_dir, kv_metadata, options)
        else:
            raise ConversionError(f"cannot convert {part.path.name}: unsupported format {part.format!r}")
    shutil.rmtree(out_dir / ".tmp", ignore_errors=True)
    report.notes = {**part.notes, **report.notes}
    return report


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


@dataclass
class _Column:
    source: str  # the column's name in the DuckDB relation
    name: str  # the output (snake_case) name
    original: str  # the name as published


# -- delimited text --------------------------------------------------------------------------------


def _convert_text(
    con: duckdb.DuckDBPyConnection, part: Part, out_dir: Path, kv: dict[str, str], options: ConvertOptions
) -> ConversionReport:
    source, notes = _prepare_text(part.path, out_dir)
    dialect = _dialect(source)
    notes |= {"format": "csv" if dialect.delimiter == "," else "delimited", "delimiter": dialect.delimiter}
    if dialect.skip:
        notes["skipped_title_lines"] = dialect.skip
    taken: set[str] = set()
    originals = [options.field_names.get(h, h) for h in dialect.header]
    columns = [
        _Column(n, n, h)
        for n, h in zip((rules.snake_case(o, i + 1, taken) for i, o in enumerate(originals)), dialect.header)
    ]
    spec = "{" + ", ".join(f"'{_sql_text(c.source)}': 'VARCHAR'" for c in columns) + "}"
    relation = (
        f"read_csv('{_sql_text(str(source))}', columns={spec}, delim='{_sql_text(dialect.delimiter)}', quote='\"',"
        f" escape='\"', header=true, skip={dialect.skip}, auto_detect=false, null_padding=false,"
        f" max_line_size=8388608, store_rejects=true, rejects_table='rejects', rejects_scan='scans',"
        f" encoding='utf-8', compression='none')"  # archives are unpacked before: never trust a .zip/.gz name
    )
    report = _write_typed(con, relation, columns, out_dir, kv, options, notes)
    if source != part.path:
        source.unlink(missing_ok=True)
    return report


def _prepare_text(path: Path, out_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Make the file clean UTF-8 without a trailing notes block; copy only when it must change."""
    notes: dict[str, Any] = {}
    encoding, replaced = _detect_encoding(path)
    notes["encoding"] = encoding
    if replaced:
        notes["replaced_bytes"] = replaced
    data_end, trailing = _trailing_notes(path, encoding)
    if trailing:
        notes["trailing_notes"] = trailing
    if encoding in ("utf-8", "utf-8-sig") and data_end is None:
        return path, notes
    target = out_dir / ".source.csv"
    _transcode(path, target, encoding, data_end)
    return target, notes


_replaced = 0


def _count_and_replace(err: UnicodeError) -> tuple[str, int]:
    global _replaced
    assert isinstance(err, UnicodeDecodeError)
    _replaced += err.end - err.start
    return "\ufffd", err.end


codecs.register_error("liberacion-count", _count_and_replace)


def _detect_encoding(path: Path) -> tuple[str, int]:
    """utf-8 (with or without BOM), else cp1252; never fails on a stray byte (replaced, counted)."""
    with open(path, "rb") as fh:
        bom = fh.read(3) == codecs.BOM_UTF8
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        try:
            while block := fh.read(BLOCK):
                if not block.isascii():
                    decoder.decode(block)
            decoder.decode(b"", final=True)
            return ("utf-8-sig" if bom else "utf-8"), 0
        except UnicodeDecodeError:
            pass
    return _fallback_encoding(path)


def _fallback_encoding(path: Path) -> tuple[str, int]:
    """Mostly-UTF-8 text with a few bad bytes stays UTF-8; anything else is Windows-1252."""
    global _replaced
    valid_multibyte = 0
    _replaced = 0
    with open(path, "rb") as fh:
        decoder = codecs.getincrementaldecoder("utf-8")("liberacion-count")
        while block := fh.read(BLOCK):
            text = decoder.decode(block)
            if not text.isascii():
                valid_multibyte += sum(1 for ch in text if ord(ch) > 127 and ch != "\ufffd")
    bad_utf8 = _replaced
    if valid_multibyte > bad_utf8 * 10:
        return "utf-8", bad_utf8
    _replaced = 0
    with open(path, "rb") as fh:
        decoder = codecs.getincrementaldecoder("cp1252")("liberacion-count")
        while block := fh.read(BLOCK):
            decoder.decode(block)
    return "cp1252", _replaced


def _transcode(path: Path, target: Path, encoding: str, data_end: int | None) -> None:
    errors = "strict" if encoding in ("utf-8", "utf-8-sig") else "liberacion-count"
    errors = "liberacion-count"
    remaining = data_end
    with open(path, "rb") as src, open(target, "wb") as dst:
        decoder = codecs.getincrementaldecoder(encoding)(errors)
        while True:
            size = BLOCK if remaining is None else min(BLOCK, remaining)
            block = src.read(size) if size else b""
            if remaining is not None:
                remaining -= len(block)
            if not block:
                dst.write(decoder.decode(b"", final=True).encode("utf-8"))
                break
            dst.write(decoder.decode(block).encode("utf-8"))


def _trailing_notes(path: Path, encoding: str) -> tuple[int | None, str | None]:
    """A CDC WONDER-style notes block after the data: a line ``"---"`` and text below it."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 256 * 1024))
        tail = fh.read()
    offset = size - len(tail)
    for marker in (b'\n"---"', b"\n---"):
        at = tail.rfind(marker)
        if at >= 0:
            line_end = tail.find(b"\n", at + 1)
            line = tail[at + 1 : line_end if line_end >= 0 else len(tail)].strip().strip(b'"').strip(b",")
            if line == b"---":
                text = tail[at + 1 :].decode(encoding if encoding != "utf-8-sig" else "utf-8", "replace").strip()
                return offset + at + 1, text[:NOTES_LIMIT]
    return None, None


@dataclass
class _Dialect:
    delimiter: str
    skip: int
    header: list[str]


def _dialect(path: Path) -> _Dialect:
    """Delimiter, title lines to skip, and the header, from the start of the file."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES).decode("utf-8-sig", "replace")
    lines = head.splitlines()
    if len(head) == HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut in the middle
    sample = "\n".join(lines[:200])
    best = (",", -1.0)
    for delimiter in (",", "\t", "|", ";"):
        counts = [len(row) for row in csv.reader(io.StringIO(sample), delimiter=delimiter) if row][:100]
        if not counts:
            continue
        mode, freq = Counter(counts).most_common(1)[0]
        score = freq / len(counts) * (mode > 1) * math.log(mode + 1)
        if score > best[1]:
            best = (delimiter, score)
    delimiter = best[0]
    rows = list(csv.reader(io.StringIO(sample), delimiter=delimiter))
    widths = [len(r) for r in rows if r]
    if not widths:
        raise ConversionError(f"{path.name} is empty: no header row")
    mode = Counter(widths[:100]).most_common(1)[0][0]
    skip = 0
    for skip, row in enumerate(rows):  # noqa: B007 - the index is the result
        if len(row) == mode and sum(1 for v in row if v.strip()) >= max(1, mode // 2):
            break
    header = [h.strip() for h in rows[skip]]
    physical = sum(r.count("\n") for r in (",".join(x) for x in rows[:skip]))  # quoted newlines in titles
    return _Dialect(delimiter, skip + physical, header)


# -- typing and writing (shared by text and JSON) -------------------------------------------------


def _write_typed(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: list[_Column],
    out_dir: Path,
    kv: dict[str, str],
    options: ConvertOptions,
    notes: dict[str, Any],
    passthrough: dict[str, str] | None = None,
) -> ConversionReport:
    """Decide types, write Parquet (one scan when the sample was right) and rejects; return the report."""
    kept = passthrough or {}
    decisions = _decide(con, relation, [c for c in columns if c.source not in kept], options)
    decisions |= {
        c.source: rules.Decision(rules.TEXT, reason=f"JSON {kept[c.source]}") for c in columns if c.source in kept
    }
    target = out_dir / "data-0000.parquet"
    rows, markers = _copy_typed(con, relation, columns, decisions, target, kv, notes)
    rejects = _write_rejects(con, out_dir / "rejects.parquet", kv) if "store_rejects" in relation else 0
    _check_bad_rows(rows, rejects, options)
    described = {c.name: _column_report(c, decisions[c.source], markers.get(c.source), options) for c in columns}
    for name, type_ in passthrough_types(con, relation, columns, passthrough):
        described[name]["type"] = type_
    return ConversionReport(rows=rows, rejects=rejects, columns=described, notes=notes)


def _copy_typed(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: list[_Column],
    decisions: dict[str, rules.Decision],
    target: Path,
    kv: dict[str, str],
    notes: dict[str, Any],
) -> tuple[int, dict[str, dict[str, int]]]:
    """One typed COPY whose casts fail fast on a value the sample did not foresee; only then are
    the columns checked over every value, the surprised ones classified again, and the COPY rerun.

    Returns the row count and, per column, the missing-value markers the scan turned into NULL.
    Changes ``decisions`` in place when a column had to be classified again.
    """
    copy = _copy_once(con, relation, columns, decisions, target, kv)
    if copy is None:
        notes["reclassified"] = _reclassify(con, relation, columns, decisions)
        copy = _copy_once(con, relation, columns, decisions, target, kv, retry=False)
    assert copy is not None
    return copy


def _copy_once(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: list[_Column],
    decisions: dict[str, rules.Decision],
    target: Path,
    kv: dict[str, str],
    *,
    retry: bool = True,
) -> tuple[int, dict[str, dict[str, int]]] | None:
    """The typed COPY: (rows, markers), or None when a value surprised it and ``retry`` allows it."""
    slow = _slow_paths(con, columns, decisions, strict=True)
    select = ", ".join(f"{_typed(c, decisions, slow)} AS {quote_ident(c.name)}" for c in columns)
    metadata = ", ".join(f"'{_sql_text(k)}': '{_sql_text(v)}'" for k, v in kv.items())
    try:
        rows = con.execute(
            f"COPY (SELECT {select} FROM {relation}) TO '{_sql_text(str(target))}'"
            f" (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS}, KV_METADATA {{{metadata}}})"
        ).fetchall()[0][0]
    except Exception as err:  # duckdb.Error: a surprise, a broken file
        surprised = [path for path, _ in slow.values() if path.surprises]
        if not surprised or not retry:
            raise _engine_error(err) from None
        _refuse_override(surprised[0])
        return None
    return int(rows), {source: _by_count(path.markers) for source, (path, _) in slow.items() if path.markers}


def _by_count(markers: dict[str, int]) -> dict[str, int]:
    return dict(sorted(markers.items(), key=lambda item: (-item[1], item[0])))


def _typed(column: _Column, decisions: dict[str, rules.Decision], slow: dict[str, tuple[rules.SlowPath, str]]) -> str:
    path = slow.get(column.source)
    return rules.typed_sql(column.source, decisions[column.source], path[1] if path else "")


_slow_names = itertools.count(1)  # a function name is registered once per connection


def _slow_paths(
    con: duckdb.DuckDBPyConnection, columns: list[_Column], decisions: dict[str, rules.Decision], *, strict: bool
) -> dict[str, tuple[rules.SlowPath, str]]:
    """Register a slow-path function for each typed column: {source: (slow path, SQL name)}."""
    paths = {}
    for column in columns:
        decision = decisions[column.source]
        if decision.kind == rules.TEXT:
            continue
        name = f"liberacion_slow_{next(_slow_names)}"
        path = rules.SlowPath(column.name, decision, strict=strict)
        con.create_function(
            name, path, ["VARCHAR"], decision.sql_type, type="native", null_handling="special", side_effects=True
        )
        paths[column.source] = (path, name)
    return paths


def _refuse_override(path: rules.SlowPath) -> None:
    if path.decision.reason == "override":
        raise ConversionError(
            f"column {path.column} has values that are not {path.decision.sql_type};"
            " drop the type override or use --raw"
        )


def _reclassify(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[_Column], decisions: dict[str, rules.Decision]
) -> list[str]:
    """Find every typed column with a value the sample did not foresee, classify those from all
    their values, and make text of any that still would not convert; returns their names."""
    surprised = _surprised(con, relation, columns, decisions)
    decisions |= _classify_all(con, relation, surprised)
    still = _surprised(con, relation, surprised, decisions)
    for column in still:
        decisions[column.source] = rules.Decision(rules.TEXT, reason="values that do not convert")
    return [c.name for c in surprised]


def _surprised(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[_Column], decisions: dict[str, rules.Decision]
) -> list[_Column]:
    """The typed columns holding a value that is neither a marker nor of the decided type (one scan)."""
    slow = _slow_paths(con, columns, decisions, strict=False)
    if not slow:
        return []
    counts = ", ".join(f"count({_typed(c, decisions, slow)})" for c in columns if c.source in slow)
    _one_row(con, f"SELECT {counts} FROM {relation}")
    surprised = [c for c in columns if c.source in slow and slow[c.source][0].surprises]
    for column in surprised:
        _refuse_override(slow[column.source][0])
    return surprised


def passthrough_types(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[_Column], passthrough: dict[str, str] | None
) -> list[tuple[str, str]]:
    if not passthrough:
        return []
    return [(c.name, passthrough[c.source]) for c in columns if c.source in passthrough]


def _decide(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[_Column], options: ConvertOptions
) -> dict[str, rules.Decision]:
    decisions: dict[str, rules.Decision] = {}
    to_sample = []
    for column in columns:
        wanted = options.columns.get(column.name) or options.columns.get(column.original)
        if options.raw:
            decisions[column.source] = rules.Decision(rules.TEXT, reason="--raw")
        elif wanted:
            decisions[column.source] = rules.override(wanted)
        elif rules.is_identifier_name(column.name):
            decisions[column.source] = rules.Decision(rules.TEXT, reason="identifier column name")
        else:
            to_sample.append(column)
    if to_sample:
        decisions |= _classify_sample(con, relation, to_sample)
    return decisions


def _classify_sample(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[_Column]
) -> dict[str, rules.Decision]:
    """Decide types from the first rows (the typed COPY then proves them over every value)."""
    rows = min(SAMPLE_ROWS, max(2_000, 5_000_000 // max(1, len(columns))))
    select = ", ".join(
        f"{quote_ident(c.source)} AS {quote_ident('c' + str(i))}" for i, c in enumerate(columns)
    )
    try:
        sample = con.sql(f"SELECT {select} FROM {relation} LIMIT {rows}").to_arrow_table()
    except Exception as err:
        raise _engine_error(err) from None
    decisions = {}
    for i, column in enumerate(columns):
        classes, dates, scale = rules.profile(sample.column(i).combine_chunks())
        decisions[column.source] = rules.decide(column.name, classes, dates, scale)
    return decisions


def _classify_all(con: duckdb.DuckDBPyConnection, relation: str, columns: list[_Column]) -> dict[str, rules.Decision]:
    """Decide the columns' types from the classes of all their values in ``relation``."""
    aggregates = []
    for c in columns:
        aggregates += [rules.class_mask(c.source), rules.date_evidence(c.source), rules.scale_evidence(c.source)]
    row = _one_row(con, f"SELECT {', '.join(aggregates)} FROM {relation}")
    decisions = {}
    for i, c in enumerate(columns):
        classes, dates, scale = rules.classes_of_mask(row[3 * i]), row[3 * i + 1], row[3 * i + 2]
        decisions[c.source] = rules.decide(c.name, classes, dates, scale)
    return decisions


def _engine_error(err: Exception) -> BaseException:
    """A DuckDB error as liberacion reports it; an interrupted query is the user's Ctrl-C."""
    text = str(err)
    if text.startswith("Query interrupted") or "KeyboardInterrupt" in text:  # DuckDB's RuntimeError on SIGINT
        return KeyboardInterrupt()
    return ConversionError(one_line(err, lines=3, limit=400))


def _one_row(con: duckdb.DuckDBPyConnection, query: str) -> tuple[Any, ...]:
    try:
        rows = con.execute(query).fetchall()  # all of it: a half-read result blocks the connection
    except Exception as err:
        raise _engine_error(err) from None
    return rows[0]


def _write_rejects(con: duckdb.DuckDBPyConnection, path: Path, kv: dict[str, str]) -> int:
    """Bad rows of the last scan (the COPY): line number, raw text, reason."""
    query = (
        "SELECT line AS line_number, any_value(csv_line) AS raw_text,"
        " string_agg(DISTINCT error_type || ': ' || error_message, '; ') AS reason"
        " FROM rejects WHERE scan_id = (SELECT max(scan_id) FROM rejects) GROUP BY line ORDER BY line"
    )
    count = con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0]
    if count:
        metadata = ", ".join(f"'{_sql_text(k)}': '{_sql_text(v)}'" for k, v in kv.items())
        con.execute(
            f"COPY ({query}) TO '{_sql_text(str(path))}' (FORMAT parquet, COMPRESSION zstd, KV_METADATA {{{metadata}}})"
        )
    return int(count)


def _check_bad_rows(rows: int, rejects: int, options: ConvertOptions) -> None:
    allowed = options.max_bad_rows
    if allowed is None:
        allowed = max(1, math.ceil((rows + rejects) / 100))
    if rejects > allowed:
        raise ConversionError(
            f"{rejects:,} bad rows (of {rows + rejects:,}) is more than allowed ({allowed:,});"
            " check the file, or raise the limit with --max-bad-rows"
        )


def _column_report(
    column: _Column, decision: rules.Decision, markers: dict[str, int] | None, options: ConvertOptions
) -> dict[str, Any]:
    info: dict[str, Any] = {"original": column.original, "type": decision.sql_type, "rule": decision.reason}
    description = options.descriptions.get(column.original) or options.descriptions.get(column.name)
    if description:
        info["description"] = description
    if markers:
        info["markers"] = markers
    info.update(decision.notes)
    return info


# -- JSON ------------------------------------------------------------------------------------------


def _convert_json(
    con: duckdb.DuckDBPyConnection, part: Part, out_dir: Path, kv: dict[str, str], options: ConvertOptions
) -> ConversionReport:
    notes: dict[str, Any] = {"format": part.format}
    path = part.path
    if part.format in ("json-object", "openfda", "socrata-json"):
        path, extra = _json_records_to_lines(part.path, out_dir, options)
        descriptions = extra.pop("descriptions", {})
        options = replace(options, descriptions={**descriptions, **options.descriptions})
        notes |= extra
        fmt = "newline_delimited"
    elif part.format == "jsonl":
        fmt = "newline_delimited"
    else:
        path = _without_bom(path, out_dir)
        fmt = "array"
    relation = (
        f"read_json('{_sql_text(str(path))}', format='{fmt}', records=true, sample_size=-1,"
        f" maximum_object_size=33554432, union_by_name=true, compression='none')"
    )
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    except Exception as err:
        raise ConversionError(
            f"{part.path.name}: not valid JSON records ({one_line(err, lines=3, limit=400)})"
        ) from None
    taken: set[str] = set()
    columns, passthrough = [], {}
    for i, (name, type_, *_) in enumerate(described):
        original = options.field_names.get(name, name)
        column = _Column(name, rules.snake_case(original, i + 1, taken), original)
        columns.append(column)
        if type_ != "VARCHAR":
            passthrough[column.source] = type_
    report = _write_typed_json(con, relation, columns, out_dir, kv, options, notes, passthrough)
    if path != part.path:
        path.unlink(missing_ok=True)
    return report


def _write_typed_json(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: list[_Column],
    out_dir: Path,
    kv: dict[str, str],
    options: ConvertOptions,
    notes: dict[str, Any],
    passthrough: dict[str, str],
) -> ConversionReport:
    # Typing SQL refers to source columns by name; JSON keys may need quoting, so alias them first.
    inner = ", ".join(
        f"{quote_ident(c.source)} AS {quote_ident('c' + str(i))}" for i, c in enumerate(columns)
    )
    aliased = [_Column(f"c{i}", c.name, c.original) for i, c in enumerate(columns)]
    renamed = {f"c{i}": passthrough[c.source] for i, c in enumerate(columns) if c.source in passthrough}
    relation = f"(SELECT {inner} FROM {relation})"
    return _write_typed(con, relation, aliased, out_dir, kv, options, notes, renamed)


def _without_bom(path: Path, out_dir: Path) -> Path:
    with open(path, "rb") as fh:
        if fh.read(3) != codecs.BOM_UTF8:
            return path
        target = out_dir / ".source.json"
        with open(target, "wb") as dst:
            shutil.copyfileobj(fh, dst, BLOCK)
    return target


def _json_records_to_lines(path: Path, out_dir: Path, options: ConvertOptions) -> tuple[Path, dict[str, Any]]:
    """Stream the records out of an openFDA ``{meta, results}``, a Socrata ``rows.json`` or any
    ``{"results"|"data": [...]}`` document into JSON Lines, in bounded memory."""
    import ijson

    target = out_dir / ".records.jsonl"
    notes: dict[str, Any] = {}
    with open(path, "rb") as fh:
        if fh.read(3) != codecs.BOM_UTF8:
            fh.seek(0)
        keys = _top_level_keys(fh)
        fh.seek(0 if fh.read(3) != codecs.BOM_UTF8 else 3)
        if "meta" in keys and "data" in keys:
            meta = _socrata_meta(fh)
            fh.seek(0 if fh.read(3) != codecs.BOM_UTF8 else 3)
            rows = (
                dict(zip(meta["names"], (r[i] for i in meta["positions"])))
                for r in ijson.items(fh, "data.item", use_float=True)
            )
            notes |= {"format": "socrata-json", "view": meta["view"], "descriptions": meta["descriptions"]}
        else:
            list_key = (
                "results" if "results" in keys else next((k for k in ("data", "items", "records") if k in keys), None)
            )
            if list_key is None:
                raise ConversionError(
                    f"{path.name}: a JSON object without a list of records (keys: {sorted(keys)[:8]})"
                )
            if "meta" in keys:
                fh.seek(0 if fh.read(3) != codecs.BOM_UTF8 else 3)
                notes["meta"] = next(ijson.items(fh, "meta", use_float=True), None)
                fh.seek(0 if fh.read(3) != codecs.BOM_UTF8 else 3)
                notes["format"] = (
                    "openfda" if isinstance(notes["meta"], dict) and "results" in notes["meta"] else "json"
                )
            rows = ijson.items(fh, f"{list_key}.item", use_float=True)
        count = 0
        with open(target, "w", encoding="utf-8") as out:
            for record in rows:
                if isinstance(record, dict):
                    out.write(json.dumps(record, ensure_ascii=False))
                    out.write("\n")
                    count += 1
    if count == 0:
        raise ConversionError(f"{path.name} holds no records")
    return target, notes


def _top_level_keys(fh: Any) -> set[str]:
    import ijson

    keys = set()
    for prefix, event, value in ijson.parse(fh):
        if prefix == "" and event == "map_key":
            keys.add(value)
    return keys


def _socrata_meta(fh: Any) -> dict[str, Any]:
    import ijson

    view = next(ijson.items(fh, "meta.view", use_float=True), None) or {}
    names, positions, descriptions = [], [], {}
    for position, column in enumerate(view.get("columns", [])):
        field_name = column.get("fieldName") or column.get("name") or f"column_{position + 1}"
        if field_name.startswith(":"):
            continue  # Socrata's own bookkeeping columns (:id, :created_at, ...)
        names.append(field_name)
        positions.append(position)
        if column.get("description"):
            descriptions[field_name] = column["description"]
    return {"names": names, "positions": positions, "descriptions": descriptions, "view": view.get("id")}


# -- SAS transport -------------------------------------------------------------------------------


def _convert_xpt(part: Part, out_dir: Path, kv: dict[str, str]) -> ConversionReport:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from liberacion import xpt

    dataset = xpt.read(part.path)
    arrays, columns, taken = [], {}, set()
    names = []
    for variable, values in zip(dataset.variables, dataset.columns):
        name = rules.snake_case(variable.name, len(names) + 1, taken)
        names.append(name)
        if variable.numeric and all(v is None or (v.is_integer() and abs(v) < 2**53) for v in values):
            arrays.append(pa.array([None if v is None else int(v) for v in values], pa.int64()))
        elif variable.numeric:
            arrays.append(pa.array(values, pa.float64()))
        else:
            arrays.append(pa.array(values, pa.string()))
        columns[name] = {"original": variable.name, "description": variable.label or None, "type": str(arrays[-1].type)}
    table = pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(kv)
    pq.write_table(table, out_dir / "data-0000.parquet", compression="zstd", row_group_size=ROW_GROUP_ROWS)
    notes = {"format": "xpt", "dataset": dataset.name, "label": dataset.label}
    return ConversionReport(rows=table.num_rows, rejects=0, columns=columns, notes=notes)


# -- local files straight into the lake ------------------------------------------------------------


def table_for(table: str, part: Part) -> str:
    return f"{table}__{part.suffix}" if part.suffix else table


def convert_file(path: Path, lake: Lake, table: str, provenance: Provenance, options: ConvertOptions) -> list[Snapshot]:
    """Convert a local file and publish each table in it; returns the new snapshots."""

    snapshots = []
    parts = inspect(path, options)
    try:
        for part in parts:
            with lake.stage(table_for(table, part)) as staging:
                report = convert_part(part, staging.dir, kv_metadata=staging.kv_metadata(provenance), options=options)
                prov = replace(
                    provenance, columns=report.columns, extra={**provenance.extra, "conversion": report.notes}
                )
                snapshots.append(staging.commit(prov))
    finally:
        cleanup(path)
    return snapshots


def cleanup(path: Path) -> None:
    """Remove what ``inspect`` extracted next to ``path`` (members, sheets, gunzipped copies)."""
    for extra in path.parent.glob(f"{path.name}.*"):
        if extra.is_dir():
            shutil.rmtree(extra, ignore_errors=True)
        elif extra.suffix in (".csv", ".gunzip") or ".sheet" in extra.name:
            extra.unlink(missing_ok=True)
