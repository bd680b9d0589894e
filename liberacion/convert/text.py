"""Delimited text (CSV, TSV, pipe, semicolon): encoding, a trailing notes block, the dialect and
the header, then DuckDB's reader with every column as text, typed by ``typed_copy``. Rows that
cannot be parsed go to a rejects file instead of failing the load."""

from __future__ import annotations

import codecs
import csv
import io
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import liberacion.convert.typing_rules as rules
from liberacion.convert.model import BLOCK, ConversionReport, ConvertOptions, Part, _Column, _sql_text
from liberacion.convert.typed_copy import NotUtf8, _write_typed
from liberacion.errors import ConversionError

if TYPE_CHECKING:
    import duckdb

HEAD_BYTES = 1024 * 1024
MAX_LINE_BYTES = 8 << 20  # DuckDB's reader: the longest line (a record with its quoted newlines)
# DuckDB's default CSV buffers are many times the longest line, and it fills them even to read the
# sample's first rows: buffers just over one line long read the sample in about half the time.
SAMPLE_BUFFER_BYTES = MAX_LINE_BYTES + (1 << 20)
NOTES_LIMIT = 64 * 1024


def _convert_text(
    con: duckdb.DuckDBPyConnection,
    part: Part,
    out_dir: Path,
    kv: dict[str, str],
    options: ConvertOptions,
    *,
    checked: bool = False,
) -> ConversionReport:
    source, notes = _prepare_text(part.path, out_dir, checked=checked)
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
    names = [c.source for c in columns]
    relation = reader_sql(source, dialect, names)
    sample = reader_sql(source, dialect, names, buffer_size=SAMPLE_BUFFER_BYTES)
    strict = part.suffix is None
    try:
        report = _write_typed(
            con,
            relation,
            columns,
            out_dir,
            kv,
            options,
            notes,
            strict_columns=strict,
            utf8=checked,
            sample=sample,
            delimiter=dialect.delimiter,
        )
    except NotUtf8:
        # Only the head and the tail were checked: DuckDB validates the rest as it reads. A file
        # that is not UTF-8 after all is checked whole, transcoded, and converted again.
        return _convert_again(con, part, out_dir, kv, options)
    except ConversionError:
        if checked or _detect_encoding(part.path, _bom_length(part.path)) == ("utf-8", 0):
            raise
        return _convert_again(con, part, out_dir, kv, options)
    if source != part.path:
        source.unlink(missing_ok=True)
    return report


def _convert_again(
    con: duckdb.DuckDBPyConnection, part: Part, out_dir: Path, kv: dict[str, str], options: ConvertOptions
) -> ConversionReport:
    # DuckDB lists only the scans that rejected rows: the first read's must not pass for the new one's.
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name IN ('rejects', 'scans')")
    for (table,) in tables.fetchall():
        con.execute(f"DELETE FROM {table}")
    return _convert_text(con, part, out_dir, kv, options, checked=True)


def reader_sql(source: Path, dialect: _Dialect, names: list[str], *, buffer_size: int | None = None) -> str:
    """DuckDB's reader of the file with every column as text (benchmarks/convert.py copies with it
    too: the reference is the same reader, untyped). ``buffer_size`` (bytes, more than
    ``MAX_LINE_BYTES``) replaces DuckDB's default buffers."""
    buffers = "" if buffer_size is None else f" buffer_size={buffer_size},"
    spec = "{" + ", ".join(f"'{_sql_text(name)}': 'VARCHAR'" for name in names) + "}"
    return (
        f"read_csv('{_sql_text(str(source))}', columns={spec}, delim='{_sql_text(dialect.delimiter)}', quote='\"',"
        f" escape='\"', header=true, skip={dialect.skip}, auto_detect=false, null_padding=false,"
        f" max_line_size={MAX_LINE_BYTES},{buffers} store_rejects=true, rejects_table='rejects', rejects_scan='scans',"
        f" encoding='utf-8', compression='none')"  # archives are unpacked before: never trust a .zip/.gz name
    )


def _prepare_text(path: Path, out_dir: Path, *, checked: bool) -> tuple[Path, dict[str, Any]]:
    """Make the file clean UTF-8 without a byte order mark or a trailing notes block; copy only
    when it must change. The BOM is cut from the bytes before anything is decoded, so whatever the
    rest of the file's encoding, no column name carries its debris (``ï»¿``).

    Unless ``checked``, a file whose head and tail are UTF-8 is taken as UTF-8 without reading the
    rest here: DuckDB's reader validates every byte anyway, and the caller converts again with
    ``checked`` when it finds one that is not (reading a gigabyte in Python costs about a second).
    """
    notes: dict[str, Any] = {}
    start = _bom_length(path)
    if not checked and _ends_are_utf8(path, start):
        encoding, replaced = "utf-8", 0
    else:
        encoding, replaced = _detect_encoding(path, start)
    notes["encoding"] = "utf-8-sig" if start and encoding == "utf-8" else encoding
    if replaced:
        notes["replaced_bytes"] = replaced
    data_end, trailing, wonder = _trailing_notes(path, encoding)
    if trailing:
        notes["wonder_notes" if wonder else "trailing_notes"] = trailing
    if encoding == "utf-8" and data_end is None and start in (0, len(codecs.BOM_UTF8)):
        return path, notes  # DuckDB skips one UTF-8 BOM itself
    target = out_dir / ".source.csv"
    _transcode(path, target, data_end, start)
    return target, notes


def _bom_length(path: Path) -> int:
    """How many bytes of UTF-8 byte order marks the file starts with (some tools write two)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    length = 0
    while head.startswith(codecs.BOM_UTF8, length):
        length += len(codecs.BOM_UTF8)
    return length


def _ends_are_utf8(path: Path, start: int) -> bool:
    """Are the first and the last megabyte (after ``start``, the BOM) valid UTF-8? A character
    cut at the edge of a piece is not a fault."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(start)
        head = fh.read(HEAD_BYTES)
        fh.seek(max(start + len(head), size - HEAD_BYTES))
        tail = fh.read()
    if not _valid_utf8(head, final=start + len(head) >= size):
        return False
    cut = 0
    while cut < min(3, len(tail)) and tail[cut] & 0xC0 == 0x80:  # the end of a character cut in two
        cut += 1
    return _valid_utf8(tail[cut:], final=True)


def _valid_utf8(data: bytes, *, final: bool) -> bool:
    if data.isascii():
        return True
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(data, final=final)
    except UnicodeDecodeError:
        return False
    return True


_replaced = 0


def _count_and_replace(err: UnicodeError) -> tuple[str, int]:
    global _replaced
    assert isinstance(err, UnicodeDecodeError)
    _replaced += err.end - err.start
    return "\ufffd", err.end


codecs.register_error("liberacion-count", _count_and_replace)

_cp1252_bytes = 0
MIXED = "utf-8+cp1252"  # UTF-8 with some bytes in Windows-1252 (a file pasted together from two systems)


def _cp1252_or_replace(err: UnicodeError) -> tuple[str, int]:
    """A byte that is not part of a UTF-8 character, read as Windows-1252 (U+FFFD, counted, for
    the five bytes that code leaves undefined): valid UTF-8 around it stays as it is."""
    global _replaced, _cp1252_bytes
    assert isinstance(err, UnicodeDecodeError)
    chars = []
    for byte in err.object[err.start : err.end]:
        _cp1252_bytes += 1
        try:
            chars.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            _replaced += 1
            chars.append("\ufffd")
    return "".join(chars), err.end


codecs.register_error("liberacion-cp1252", _cp1252_or_replace)


def _detect_encoding(path: Path, start: int = 0) -> tuple[str, int]:
    """utf-8, else cp1252 or utf-8+cp1252 (see ``_fallback_encoding``), of the bytes after
    ``start`` (the BOM); never fails on a stray byte (replaced, counted)."""
    with open(path, "rb") as fh:
        fh.seek(start)
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        try:
            while block := fh.read(BLOCK):
                if not block.isascii():
                    decoder.decode(block)
            decoder.decode(b"", final=True)
            return "utf-8", 0
        except UnicodeDecodeError:
            pass
    return _fallback_encoding(path, start)


def _fallback_encoding(path: Path, start: int = 0) -> tuple[str, int]:
    """Text that is not all UTF-8: every byte outside a UTF-8 character is read as Windows-1252,
    so a file of both keeps its UTF-8 characters. Returns the encoding (``cp1252`` when no UTF-8
    character was found, ``MIXED`` when both were) and the bytes neither could read."""
    global _replaced, _cp1252_bytes
    _replaced = _cp1252_bytes = 0
    non_ascii = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        decoder = codecs.getincrementaldecoder("utf-8")("liberacion-cp1252")
        while block := fh.read(BLOCK):
            text = decoder.decode(block)
            if not text.isascii():
                non_ascii += sum(1 for ch in text if ord(ch) > 127)
        decoder.decode(b"", final=True)
    utf8_characters = non_ascii - _cp1252_bytes  # each byte read as Windows-1252 made one character
    return (MIXED if utf8_characters else "cp1252"), _replaced


def _transcode(path: Path, target: Path, data_end: int | None, start: int = 0) -> None:
    """Write the bytes from ``start`` (after any BOM) to ``data_end`` as UTF-8."""
    remaining = None if data_end is None else data_end - start
    with open(path, "rb") as src, open(target, "wb") as dst:
        src.seek(start)
        # UTF-8 first, Windows-1252 for the bytes that are not UTF-8 (see _fallback_encoding).
        decoder = codecs.getincrementaldecoder("utf-8")("liberacion-cp1252")
        while True:
            size = BLOCK if remaining is None else min(BLOCK, remaining)
            block = src.read(size) if size else b""
            if remaining is not None:
                remaining -= len(block)
            if not block:
                dst.write(decoder.decode(b"", final=True).encode("utf-8"))
                break
            dst.write(decoder.decode(block).encode("utf-8"))


def _trailing_notes(path: Path, encoding: str) -> tuple[int | None, str | None, bool]:
    """A notes block after the data, as CDC WONDER exports have: from the first line ``"---"``
    (quoted or not) after which every line is one field (query parameters, citation, caveats,
    more ``"---"`` lines). Returns (where the data ends, the notes as text, WONDER-shaped?)."""
    _allow_long_fields()
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 256 * 1024))
        tail = fh.read()
    offset = size - len(tail)
    lines = tail.split(b"\n")
    position = 0
    found = None
    for index, line in enumerate(lines):
        if index or not offset:  # the first line of a tail that starts mid-file may be cut
            if _is_separator(line) and found is None:
                found = (index, position)
            elif found is not None and not _is_note(line):
                found = None  # data after a "---": it was not the notes block
        position += len(line) + 1
    if found is None:
        return None, None, False
    with open(path, "rb") as fh:
        first = fh.readline(64 * 1024).lstrip(codecs.BOM_UTF8)
    if _is_note(first):
        return None, None, False  # one column: a "---" there is a value, not a separator
    first = first.lstrip(b'"').lower()
    index, at = found
    codec = "utf-8" if encoding in ("utf-8-sig", MIXED) else encoding
    text = "\n".join(_note_text(line.decode(codec, "replace")) for line in lines[index:]).strip()
    wonder = first.startswith(b"notes") or b"query parameters" in tail[at:].lower()
    return offset + at, text[:NOTES_LIMIT], wonder


def _allow_long_fields() -> None:
    """Python's csv module refuses fields over 128 KB; a WKT geometry or a long note is bigger.
    Allow what DuckDB's reader allows (its ``max_line_size``, 8 MiB)."""
    csv.field_size_limit(max(csv.field_size_limit(), 8 * 1024 * 1024))


def _is_separator(line: bytes) -> bool:
    return line.strip().strip(b'"').strip(b",\t").strip(b'"') == b"---"


def _is_note(line: bytes) -> bool:
    """A line of a notes block: blank, a separator, or text that is one field (quoted or not)."""
    text = line.strip()
    if not text or _is_separator(text):
        return True
    decoded = text.decode("utf-8", "replace")
    for delimiter in (",", "\t", "|"):
        fields = next(csv.reader([decoded], delimiter=delimiter), [])
        if sum(1 for f in fields if f.strip()) > 1:
            return False
    return True


def _note_text(line: str) -> str:
    text = line.strip().rstrip(",\t").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].replace('""', '"')
    return text


@dataclass
class _Dialect:
    delimiter: str
    skip: int
    header: list[str]


def _dialect(path: Path) -> _Dialect:
    """Delimiter, title lines to skip, and the header, from the start of the file."""
    _allow_long_fields()
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
    widths = [len(r) for r in rows if any(v.strip() for v in r)]
    if not widths:
        raise ConversionError(f"{path.name} is empty: no header row")
    mode = Counter(widths[:100]).most_common(1)[0][0]
    # Rows that all end with a delimiter the header lacks (``a,b,c`` over ``1,2,3,``): the header
    # is one field short, not a title line.
    trailing = mode > 1 and all(not r[-1].strip() for r in rows[:200] if len(r) == mode)
    skip, extra = 0, []
    for skip, row in enumerate(rows):  # noqa: B007 - the index is the result
        if len(row) == mode and sum(1 for v in row if v.strip()) >= max(1, mode // 2):
            break
        if trailing and len(row) == mode - 1 and all(v.strip() for v in row):
            extra = [""]
            break
    header = [h.strip().lstrip("\ufeff") for h in rows[skip]] + extra
    physical = sum(r.count("\n") for r in (",".join(x) for x in rows[:skip]))  # quoted newlines in titles
    return _Dialect(delimiter, skip + physical, header)
