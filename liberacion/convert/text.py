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
from liberacion.convert.typed_copy import _write_typed
from liberacion.errors import ConversionError

if TYPE_CHECKING:
    import duckdb

HEAD_BYTES = 1024 * 1024
NOTES_LIMIT = 64 * 1024


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
