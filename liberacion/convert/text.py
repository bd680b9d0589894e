"""Delimited text (CSV, TSV, pipe, semicolon): encoding, a trailing notes block, the dialect and
the header, then DuckDB's reader with every column as text, typed by ``typed_copy``. Rows that
cannot be parsed go to a rejects file instead of failing the load."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
import os
import re
import shutil
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import liberacion.convert.typing_rules as rules
from liberacion.convert.model import BLOCK, MAX_LINE_BYTES, ConversionReport, ConvertOptions, Part, _Column, _sql_text
from liberacion.convert.typed_copy import SAMPLE_ROWS, NotUtf8, _write_typed
from liberacion.errors import ConversionError, note
from liberacion.naming import quote_ident

if TYPE_CHECKING:
    import duckdb

HEAD_BYTES = 1024 * 1024
# DuckDB's default CSV buffers are many times the longest line, and it fills them even to read the
# sample's first rows: buffers just over one line long read the sample in about half the time.
SAMPLE_BUFFER_BYTES = MAX_LINE_BYTES + (1 << 20)
NOTES_LIMIT = 64 * 1024
CUT_LINE_BYTES = 64 * 1024  # of a last line without a line end: enough to find it among the bad rows


def _convert_text(
    con: duckdb.DuckDBPyConnection,
    part: Part,
    out_dir: Path,
    kv: dict[str, str],
    options: ConvertOptions,
    *,
    checked: bool = False,
    newlines: bool = False,
    allow_empty: bool = False,
) -> ConversionReport:
    """``allow_empty``: the user's ``--allow-empty``; a file whose only line reads as a sentence is
    then a header without rows like any other (see ``_refuse_message``)."""
    source, notes = _prepare_text(part.path, out_dir, checked=checked, newlines=newlines)
    checked = checked or notes["encoding"] == "utf-16"  # transcoded whole: UTF-8 throughout
    if notes.get("nul_bytes"):
        count = notes["nul_bytes"]
        note(f"{_label(part)}: dropped {count:,} NUL byte{'' if count == 1 else 's'}")
    if notes.get("trailing_notes"):  # said, not only noted: lines left out of the table
        lines = notes["trailing_notes"].count("\n") + 1
        said = f"{lines:,} line{'' if lines == 1 else 's'}"
        note(f"{_label(part)}: left out {said} of notes after a '---' line")
    dialect = _dialect(source)
    notes |= {"format": "csv" if dialect.delimiter == "," else "delimited", "delimiter": dialect.delimiter}
    if dialect.skip:
        notes["skipped_title_lines"] = dialect.skip
        # Said, not only noted: a line taken for a title that was a row would otherwise vanish unseen.
        lines = f"{dialect.skip:,} line{'' if dialect.skip == 1 else 's'}"
        title = f": {dialect.title[:80]!r}" if dialect.title else ""
        note(f"{_label(part)}: skipped {lines} above the header{title}")
    if part.suffix is None:  # a member beside others is judged by its rows, as below
        _refuse_message_lines(part, source, dialect)
    source = _set_footer_aside(source, part, out_dir, dialect, notes)
    taken: set[str] = set()
    originals = [options.field_names.get(h, h) for h in dialect.header]
    columns = [
        _Column(n, n, h)
        for n, h in zip((rules.snake_case(o, i + 1, taken) for i, o in enumerate(originals)), dialect.header)
    ]
    names = [c.source for c in columns]
    relation = reader_sql(source, dialect, names)
    sample = reader_sql(source, dialect, names, sample=True)
    repeats = None
    if len(names) > 1 and not options.raw:  # --raw keeps every row exactly as published
        # A row equal to the header (files pasted together, each with its header) is not data: it
        # would make a column of numbers text. Dropped in the same scan, counted by a sequence.
        repeats = f"liberacion_repeats_{next(_repeat_names)}"
        con.execute(f"CREATE TEMP SEQUENCE {repeats}")
        plain = relation
        relation = _without_header_rows(relation, names, dialect.raw_header, repeats)
        # The sample's rows are cut before the filter, not after it: a LIMIT over a filter makes
        # DuckDB hold buffers for every column, and a file of 3,000 columns ran out of memory.
        sample = _without_header_rows(f"(SELECT * FROM {sample} LIMIT {SAMPLE_ROWS})", names, dialect.raw_header, None)
    strict = part.strict_types
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
            cut_line=None if part.unpacked else _cut_line(source),
            source=source,
        )
    except NotUtf8:
        # Only the head and the tail were checked: DuckDB validates the rest as it reads. A file
        # that is not UTF-8 after all is checked whole, transcoded, and converted again.
        _drop(source, part, con, repeats)
        return _convert_again(con, part, out_dir, kv, options, newlines=newlines, allow_empty=allow_empty)
    except ConversionError as err:
        _drop(source, part, con, repeats)
        if MIXED_NEWLINES in str(err):
            # Lines ending in LF here and CRLF there (files pasted together, or edited by hand):
            # DuckDB's reader takes one kind per file. They are made one kind in a work copy.
            if newlines:
                raise ConversionError(
                    f"{part.path.name}: mixed line endings (LF and CRLF) that could not be made one kind;"
                    " convert the file (e.g. dos2unix) and fetch it again"
                ) from None
            return _convert_again(con, part, out_dir, kv, options, newlines=True, allow_empty=allow_empty)
        if checked or _detect_encoding(part.path, _bom_length(part.path)) == ("utf-8", 0):
            raise
        return _convert_again(con, part, out_dir, kv, options, newlines=newlines, allow_empty=allow_empty)
    if repeats is not None:
        _note_repeated_header(con, part, notes, plain, names, dialect.raw_header, repeats)
    _drop(source, part)
    # A zip member without rows beside others is skipped by the caller instead.
    if part.suffix is None and not allow_empty:
        _refuse_message(part, dialect, report)
    if newlines:
        notes["line_endings"] = "mixed LF and CRLF, read as LF"
        note(f"{_label(part)}: mixed line endings (LF and CRLF), all read as LF")
    return report


_repeat_names = itertools.count(1)


def _cut_line(path: Path) -> bytes | None:
    """The end of the file's last line when the file does not end with a line end (LF or CR), else
    None. Most files end with one; a file cut short mid-row does not (see ``typed_copy._refuse_cut``).
    Only the tail is read."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - CUT_LINE_BYTES))
        tail = fh.read().rstrip(b" \t\x1a")  # trailing blanks, or DOS's end-of-file mark, are not a row
    if not tail or tail.endswith((b"\n", b"\r")):
        return None
    return re.split(rb"[\r\n]", tail)[-1]


@dataclass
class _Footer:
    at: int  # the byte it begins at
    lines: int  # its lines: footnotes and blank rows
    text: str  # its footnotes, one a line


FOOTER_BYTES = 64 * 1024  # of the end of a file, read for footnotes under the data
# How a footnote under a table begins: a label and a colon (``Source:``, ``NOTES:``, ``Data source:``)
# or words after it (``Data are provisional``, ``Rates per 100,000``), or a mark or a number before
# words (``* Rates are unreliable``, ``1. Includes residents``).
_FOOTNOTE_LABEL = re.compile(
    r"\s*(?:data\s+|suggested\s+|last\s+)?(?:sources?|notes?|footnotes?|data|suppressed|rates?|caveats?|citation"
    r"|abbreviations?|updated|accessed|retrieved|prepared)\b(?:\(s\))?\s*(:|\S+\s+\S)",
    re.IGNORECASE,
)
_FOOTNOTE_MARK = re.compile(r"\s*(?:[*†‡§¶]+|\(?\d{1,2}[.)])\s*[^\W\d_]+\s+\S")


def _set_footer_aside(source: Path, part: Part, out_dir: Path, dialect: _Dialect, notes: dict[str, Any]) -> Path:
    """The text without its footer (``_footer``), which is said and noted: its lines
    (``footer_lines``) and its footnotes, kept as ``trailing_notes`` (as a notes block after a
    ``---`` is, for ``info`` to show)."""
    footer = _footer(source, dialect)
    if footer is None:
        return source
    notes["footer_lines"] = footer.lines
    if footer.text:
        notes["trailing_notes"] = "\n".join(filter(None, [footer.text, notes.get("trailing_notes")]))
    said = f"{footer.lines:,} line{'' if footer.lines == 1 else 's'} of footnotes and blank rows after the data"
    shown = " (liberacion info shows them)" if footer.text else ""
    note(f"{_label(part)}: left out {said}{shown}")
    return _without_footer(source, part, out_dir, footer.at)


def _footer(path: Path, dialect: _Dialect) -> _Footer | None:
    """Footnotes and blank rows under the last row of data, as NCHS and CMS tables end (``,,``,
    ``Source: NCHS...``, ``"Note: rates per 100,000",,``): from the end of the file up, lines with no
    value (``,,``), or whose one value is the first field's and reads as a footnote
    (``_reads_as_footnote``), right under a row as wide as the header. Read as a row, each was a
    row of NULLs, a note in a column of numbers that made it text, or a bad row. Only the end of
    the file is read; a line with an odd number of quotes (a quoted value going on over lines)
    ends the search, and so does any other line: a row in the middle of the file is never one.
    Empty lines alone are no footer: DuckDB skips them. Nor is a blank line of a file of one
    column, unless a footnote follows: alone, it is a value, empty (or spaces, quoted), as written."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - FOOTER_BYTES))
        tail = fh.read()
    offset = size - len(tail)
    lines = tail.split(b"\n")
    if not lines[-1]:
        lines.pop()  # after the last line end: no line
    width = len(dialect.header)
    notes: list[str] = []
    read = False  # a line DuckDB would read as a row or a bad row
    top = len(lines)
    for index in range(len(lines) - 1, 0 if offset else -1, -1):  # a tail from mid-file: its first line may be cut
        line = lines[index].decode("utf-8", "replace").rstrip("\r")
        fields = _fields(line, dialect.delimiter)
        if fields is None:
            break
        values = [f.strip() for f in fields]
        if not any(values):
            read = read or (width > 1 and bool(line.strip()))  # ",,": a row of NULLs; alone, a value
        elif len(fields) <= width and not any(values[1:]) and _reads_as_footnote(values[0], width):
            notes.append(values[0])
            read = True
        else:
            break
        top = index
    else:
        return None  # footnotes up to the top of what was read: no row of data above them
    if not read or not _row_of_data(fields, dialect):
        return None
    at = offset + sum(len(piece) + 1 for piece in lines[:top])
    return _Footer(at, len(lines) - top, "\n".join(reversed(notes)))


def _fields(line: str, delimiter: str) -> list[str] | None:
    """The fields of one line; None for a line with an odd number of quotes (a quoted value going
    on over lines) or a line end inside it (lines ending in a lone CR)."""
    if line.count('"') % 2 or "\r" in line:
        return None
    return next(csv.reader([line], delimiter=delimiter), [])


def _row_of_data(fields: list[str] | None, dialect: _Dialect) -> bool:
    """Is the line above a footer a row of data: as wide as the header, not the header itself, and
    not the end of a quoted value begun on a line above it (``fields`` is None: odd quotes)?"""
    if fields is None or len(fields) != len(dialect.header) or not any(f.strip() for f in fields):
        return False
    return [f.strip().lower() for f in fields] != [h.strip().lstrip("\ufeff").lower() for h in dialect.raw_header]


def _reads_as_footnote(text: str, width: int) -> bool:
    """A label that begins footnotes (``Source:``, ``Data are provisional``) or a mark or number
    before words (``* Rates are unreliable``). In a file of one column, where every row has one
    value, only a label and a colon: the last of a list of names may be ``12. New York``."""
    label = _FOOTNOTE_LABEL.match(text)
    if label is not None:
        return label.group(1) == ":" or width > 1
    return width > 1 and _FOOTNOTE_MARK.match(text) is not None


def _without_footer(source: Path, part: Part, out_dir: Path, at: int) -> Path:
    """The text up to byte ``at``. A work copy is cut in place; the file itself is never changed:
    it is copied first by ``shutil.copyfile``, which the system does (no pass in Python)."""
    if source == part.path:
        target = out_dir / ".source.csv"
        shutil.copyfile(source, target)
        source = target
    os.truncate(source, at)
    return source


def _refuse_message(part: Part, dialect: _Dialect, report: ConversionReport) -> None:
    """A file whose only line reads as a sentence is a message (a server's "Too many requests,
    please slow down." sent with 200 OK), not a header without rows: refused, like an HTML page
    or a JSON error object, rather than published as a table of 0 rows with words for columns."""
    if report.rows or report.rejects or dialect.skip or {"trailing_notes", "wonder_notes"} & report.notes.keys():
        return
    if _reads_as_prose(dialect.raw_header):
        line = dialect.delimiter.join(dialect.raw_header).strip()
        raise ConversionError(
            f"{_label(part)} is not a data file: its only line reads {line[:160]!r};"
            " fetch it again later, or check where it comes from (a header without rows: --allow-empty)"
        )


MESSAGE_BYTES = 4 * 1024  # a server's message is a few lines; a longer file is judged by its rows
MESSAGE_LINES = 20
# A server's status line: ``503 Service Unavailable``, ``Error 503``, ``Access Denied``.
_STATUS_LINE = re.compile(
    r"\b(?:[45]\d\d\s+[a-z]|error\s*[:#]?\s*\d|error\s*:|service unavailable|temporarily unavailable|bad gateway"
    r"|gateway time-?out|not found|forbidden|access denied|unauthori[sz]ed|too many requests|rate limit"
    r"|internal server error|bad request|(?:under|down for|scheduled) maintenance|backend fetch failed)",
    re.IGNORECASE,
)
# A server's words about it: ``The server is temporarily unable ... Please try again later.``
_ERROR_WORDS = re.compile(
    r"\b(?:unavailable|unable|error|try again|failed|not found|forbidden|denied|unauthori[sz]ed|too many requests"
    r"|maintenance|rate limit|timed out|time-?out|blocked|temporarily)\b",
    re.IGNORECASE,
)


def _refuse_message_lines(part: Part, source: Path, dialect: _Dialect) -> None:
    """A short file of a few lines that read as a server's message (``Service Unavailable``, then
    ``The server is temporarily unable to service your request. Please try again later.``) sent
    with 200 OK is refused, not published as a table of one column whose rows are its sentences
    (replacing the table it was meant to update). Its first line is a status line, or a sentence
    saying something failed, and a line under it says more: a word of the kind, or a sentence. A
    list (``County``, ``Autauga County``...) has neither. One line is ``_refuse_message``'s."""
    if source.stat().st_size > MESSAGE_BYTES or (len(dialect.header) > 1 and not _reads_as_prose(dialect.raw_header)):
        return
    text = source.read_bytes().decode("utf-8", "replace").lstrip("\ufeff")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not 2 <= len(lines) <= MESSAGE_LINES:
        return
    first = lines[0]
    titled = _STATUS_LINE.search(first) or (_reads_as_prose([first]) and _ERROR_WORDS.search(first))
    if titled and any(_ERROR_WORDS.search(line) or _reads_as_prose([line]) for line in lines[1:]):
        shown = " ".join(lines)
        raise ConversionError(
            f"{_label(part)} is not a data file: its lines read as a message, not rows ({shown[:160]!r});"
            " fetch it again later, or check where it comes from"
        )


def _reads_as_prose(fields: list[str]) -> bool:
    """Words ending a sentence (``.``, ``!``, ``?``) in a line that is one field, or in a sentence
    going on past its commas: it starts with a capital and a later field goes on after a space in
    lower case (``Too many requests, please slow down.``). A header's names are neither:
    ``id,name,value``, ``id,Did you smoke?``, and names after a comma and a space, which start with
    a capital (``State, County, Deaths per 100 pop.``) or the line does not (``id, name, ...``)."""
    text = " ".join(f.strip() for f in fields).strip()
    last = fields[-1].strip() if fields else ""
    sentence = len(text.split()) >= 3 and len(last.split()) >= 2 and last[-1:] in (".", "!", "?")
    if not sentence or len(fields) == 1:
        return sentence
    goes_on = any(f[:1].isspace() and f.lstrip()[:1].islower() for f in fields[1:])
    return text[:1].isupper() and goes_on


def _header_test(names: list[str], header: list[str]) -> str:
    """SQL: is this row the header again, in any letter case and with any spaces around its names
    (``STATE, DEATHS`` under ``State,Deaths``)? An empty header field reads as NULL. Only a value as
    long as its name, or longer with a space at an end, is lowered (a value's length is stored
    with it): lowering every value made DuckDB's read of a 1 GB file of short values a quarter slower."""
    named, empty = [], []
    for n, h in zip(names, header):
        column, name = quote_ident(n), h.strip(" ")
        if not name:
            empty.append(f"({column} IS NULL OR trim({column}) = '')")
            continue
        size, lowered = len(name.encode()), _sql_text(name.lower())
        spaced = f"(starts_with({column}, ' ') OR ends_with({column}, ' '))"
        named.append(
            f"((strlen({column}) = {size} AND lower({column}) = '{lowered}')"
            f" OR (strlen({column}) > {size} AND {spaced} AND lower(trim({column})) = '{lowered}'))"
        )
    return " AND ".join(named + empty)  # a named field first: most rows fail there


def _without_header_rows(relation: str, names: list[str], header: list[str], sequence: str | None) -> str:
    counted = f"nextval('{sequence}') < 0" if sequence else "false"
    return f"(SELECT * FROM {relation} WHERE CASE WHEN {_header_test(names, header)} THEN {counted} ELSE true END)"


def _note_repeated_header(
    con: duckdb.DuckDBPyConnection,
    part: Part,
    notes: dict[str, Any],
    plain: str,
    names: list[str],
    header: list[str],
    sequence: str,
) -> None:
    found = con.execute(f"SELECT last_value FROM duckdb_sequences() WHERE sequence_name = '{sequence}'").fetchall()
    con.execute(f"DROP SEQUENCE IF EXISTS {sequence}")
    if not found or not found[0][0]:
        return
    count = int(found[0][0])
    if notes.get("reclassified"):  # the relation was scanned more than once: count them again
        count = int(con.execute(f"SELECT count(*) FROM {plain} WHERE {_header_test(names, header)}").fetchall()[0][0])
    notes["repeated_header_rows"] = count
    rows = f"{count:,} row{'' if count == 1 else 's'}"
    note(f"{_label(part)}: dropped {rows} repeating the header")


MIXED_NEWLINES = "state machine reached an invalid state"  # DuckDB's words for LF and CRLF in one file


def _label(part: Part) -> str:
    """The file as messages name it (a zip member as the zip spells it)."""
    return getattr(part, "label", None) or part.notes.get("member") or part.path.name


def _drop(source: Path, part: Part, con: duckdb.DuckDBPyConnection | None = None, sequence: str | None = None) -> None:
    """Remove a work copy (and the sequence counting repeated headers, after a failed read)."""
    if source != part.path:
        source.unlink(missing_ok=True)
    if con is not None and sequence is not None:
        import duckdb

        # After a failure the connection may refuse even this (out of memory): the failure, not
        # the tidying, is what the user must read, and the sequence goes with the connection.
        with suppress(duckdb.Error):
            con.execute(f"DROP SEQUENCE IF EXISTS {sequence}")


def _convert_again(
    con: duckdb.DuckDBPyConnection,
    part: Part,
    out_dir: Path,
    kv: dict[str, str],
    options: ConvertOptions,
    *,
    newlines: bool = False,
    allow_empty: bool = False,
) -> ConversionReport:
    # DuckDB lists only the scans that rejected rows: the first read's must not pass for the new one's.
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name IN ('rejects', 'scans')")
    for (table,) in tables.fetchall():
        con.execute(f"DELETE FROM {table}")
    return _convert_text(con, part, out_dir, kv, options, checked=True, newlines=newlines, allow_empty=allow_empty)


def reader_sql(source: Path, dialect: _Dialect, names: list[str], *, sample: bool = False) -> str:
    """DuckDB's reader of the file with every column as text (benchmarks/convert.py copies with it
    too: the reference is the same reader, untyped). ``sample``: a reader for the first rows only,
    through buffers just over the longest line (``SAMPLE_BUFFER_BYTES``) and on one thread. Two
    threads read ahead as many more rows in chunks of every column: a sample of 3,000 columns spilled
    under the 700 MB memory limit and took more than twice the time (``benchmarks/wide_parts.py``);
    a narrow one takes about the same time either way."""
    buffers = f" buffer_size={SAMPLE_BUFFER_BYTES}, parallel=false," if sample else ""
    spec = "{" + ", ".join(f"'{_sql_text(name)}': 'VARCHAR'" for name in names) + "}"
    return (
        f"read_csv('{_sql_text(str(source))}', columns={spec}, delim='{_sql_text(dialect.delimiter)}', quote='\"',"
        f" escape='\"', header=true, skip={dialect.skip}, auto_detect=false, null_padding=false,"
        f" max_line_size={MAX_LINE_BYTES},{buffers} store_rejects=true, rejects_table='rejects', rejects_scan='scans',"
        f" encoding='utf-8', compression='none')"  # archives are unpacked before: never trust a .zip/.gz name
    )


def _prepare_text(path: Path, out_dir: Path, *, checked: bool, newlines: bool = False) -> tuple[Path, dict[str, Any]]:
    """Make the file clean UTF-8 without a byte order mark, NUL bytes or a trailing notes block;
    copy only when it must change. The BOM is cut from the bytes before anything is decoded, so
    whatever the rest of the file's encoding, no column name carries its debris (``ï»¿``).

    Unless ``checked``, a file whose head and tail are UTF-8 is taken as UTF-8 without reading the
    rest here: DuckDB's reader validates every byte anyway, and the caller converts again with
    ``checked`` when it finds one that is not (reading a gigabyte in Python costs about a second).
    ``newlines``: make every line end (LF, CRLF, CR) outside quoted values one LF (DuckDB's reader
    refuses a file that mixes them). UTF-16 with a byte order mark is transcoded first.
    """
    notes: dict[str, Any] = {}
    utf16 = utf16_copy(path, out_dir)
    if utf16 is not None:
        path, replaced_16 = utf16
        checked = True
    start = _bom_length(path)
    clean_ends, nul = _ends_are_clean(path, start)
    if not checked and clean_ends:
        encoding, replaced = "utf-8", 0
    else:
        encoding, replaced = _detect_encoding(path, start)
    notes["encoding"] = "utf-8-sig" if start and encoding == "utf-8" else encoding
    if utf16 is not None:
        notes["encoding"] = "utf-16"
        replaced += replaced_16
    if replaced:
        notes["replaced_bytes"] = replaced
    data_end, trailing, wonder = _trailing_notes(path, encoding)
    if trailing:
        notes["wonder_notes" if wonder else "trailing_notes"] = trailing
    copy = newlines or nul or data_end is not None or start not in (0, len(codecs.BOM_UTF8))
    if encoding == "utf-8" and not copy:
        return path, notes  # DuckDB skips one UTF-8 BOM itself
    target = out_dir / ".source.csv"
    dropped = _transcode(path, target, data_end, start, newlines=newlines)
    if dropped:
        notes["nul_bytes"] = dropped
    if utf16 is not None:
        path.unlink(missing_ok=True)
    return target, notes


def is_utf16(path: Path) -> bool:
    """True for a file that begins with a UTF-16 byte order mark (and not UTF-32's)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and head != codecs.BOM_UTF32_LE


def utf16_copy(path: Path, out_dir: Path, suffix: str = ".csv") -> tuple[Path, int] | None:
    """A file in UTF-16 with a byte order mark (Excel's "Unicode Text") as a UTF-8 work copy, and
    the count of code units that were not text (replaced); None for any other file."""
    if not is_utf16(path):
        return None
    global _replaced
    _replaced = 0
    target = out_dir / f".utf16{suffix}"
    decoder = codecs.getincrementaldecoder("utf-16")("liberacion-count")
    with open(path, "rb") as src, open(target, "wb") as dst:
        while block := src.read(BLOCK):
            dst.write(decoder.decode(block).encode("utf-8"))
        dst.write(decoder.decode(b"", final=True).encode("utf-8"))
    return target, _replaced


def _bom_length(path: Path) -> int:
    """How many bytes of UTF-8 byte order marks the file starts with (some tools write two)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    length = 0
    while head.startswith(codecs.BOM_UTF8, length):
        length += len(codecs.BOM_UTF8)
    return length


def _ends_are_clean(path: Path, start: int) -> tuple[bool, bool]:
    """Are the first and the last megabyte (after ``start``, the BOM) valid UTF-8 (a character cut
    at the edge of a piece is not a fault), and does either hold a NUL byte?"""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(start)
        head = fh.read(HEAD_BYTES)
        fh.seek(max(start + len(head), size - HEAD_BYTES))
        tail = fh.read()
    nul = b"\x00" in head or b"\x00" in tail
    if not _valid_utf8(head, final=start + len(head) >= size):
        return False, nul
    cut = 0
    while cut < min(3, len(tail)) and tail[cut] & 0xC0 == 0x80:  # the end of a character cut in two
        cut += 1
    return _valid_utf8(tail[cut:], final=True), nul


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


def _transcode(path: Path, target: Path, data_end: int | None, start: int = 0, *, newlines: bool = False) -> int:
    """Write the bytes from ``start`` (after any BOM) to ``data_end`` as UTF-8, without NUL bytes
    (returns how many were dropped) and, with ``newlines``, every line end one LF."""
    remaining = None if data_end is None else data_end - start
    dropped = 0
    lines = _LineEnds() if newlines else None
    with open(path, "rb") as src, open(target, "wb") as dst:
        src.seek(start)
        # UTF-8 first, Windows-1252 for the bytes that are not UTF-8 (see _fallback_encoding).
        decoder = codecs.getincrementaldecoder("utf-8")("liberacion-cp1252")
        while True:
            size = BLOCK if remaining is None else min(BLOCK, remaining)
            block = src.read(size) if size else b""
            if remaining is not None:
                remaining -= len(block)
            final = not block
            data = decoder.decode(block, final=final).encode("utf-8")
            if b"\x00" in data:
                dropped += data.count(b"\x00")
                data = data.replace(b"\x00", b"")
            if lines is not None:
                data = lines.convert(data, final=final)
            dst.write(data)
            if final:
                break
    return dropped


class _LineEnds:
    """CRLF and a lone CR made LF outside quoted values, block by block; a quoted value keeps its
    line ends as they are (DuckDB keeps a CRLF inside quotes in a CRLF file too)."""

    def __init__(self) -> None:
        self.quoted = False
        self.held = b""  # a CR at the end of a block: the LF of a CRLF may start the next one

    def convert(self, data: bytes, *, final: bool) -> bytes:
        data = self.held + data
        self.held = b""
        if not final and data.endswith(b"\r"):
            data, self.held = data[:-1], b"\r"
        pieces = data.split(b'"')
        for i, piece in enumerate(pieces):
            if i:
                self.quoted = not self.quoted
            if not self.quoted and b"\r" in piece:
                pieces[i] = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return b'"'.join(pieces)


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
        fields = [f for f in next(csv.reader([decoded], delimiter=delimiter), []) if f.strip()]
        # A number alone is a row of data with its other fields empty, not a note: under a "---"
        # value such rows were left out of the table as a notes block.
        if len(fields) > 1 or (fields and _NUMBER.fullmatch(fields[0])):
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
    raw_header: list[str]  # as the fields are spelled, for a row that repeats the header
    title: str = ""  # the first line skipped above the header, for the note that says so


_NUMBER = re.compile(r"\s*[-+$(]*[\d,.]+%?\)?\s*")


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
        parsed = [row for row in csv.reader(io.StringIO(sample), delimiter=delimiter) if row][:100]
        if not parsed:
            continue
        counts = [len(row) for row in parsed]
        mode, freq = Counter(counts).most_common(1)[0]
        # Splitting inside quoted values leaves their quotes in the fields (``A,"x;y;z"`` read with
        # ``;``): the delimiter that does is the wrong one, however regular the counts it gives.
        broken = sum(1 for row in parsed if any('"' in v for v in row)) / len(parsed)
        score = freq / len(counts) * (mode > 1) * math.log(mode + 1) * (1 - broken / 2)
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
    if not extra:
        skip = _past_title(rows, skip, mode)
    titles = _titles_end(rows, skip)
    if titles < skip:
        skip, extra = titles, []
    header = [h.strip().lstrip("\ufeff") for h in rows[skip]] + extra
    raw = [rows[skip][0].lstrip("\ufeff"), *rows[skip][1:], *extra]
    title = next((delimiter.join(r).strip(delimiter + " ") for r in rows[:skip] if any(v.strip() for v in r)), "")
    # DuckDB's ``skip`` counts records as csv does, a quoted newline inside one (a title over two
    # lines) and a blank line included: adding the newlines skipped the first row of data.
    return _Dialect(delimiter, skip, header, raw, title)


_YEAR = re.compile(r"\s*(1[89]|2[0-9])[0-9]{2}\s*")  # a header may name its columns by year


def _titles_end(rows: list[list[str]], skip: int) -> int:
    """Where the lines taken for titles above ``rows[skip]`` really end: the first that does not read
    as a title is the header. A title is a line of one field (``Table 3. Deaths``), or one over a
    blank line, or any line over a header of names. Over a line of data, a line of several fields
    (``a,b`` over ``1,2,3``: a ragged file whose rows have more fields than its header) or one as
    wide as the data with names left empty (``id,,,,`` over ``1,2,3,4,5``) is the header: taking it
    for a title lost it and the first row of data, which became the header. In doubt a row stays a
    row: a title read as the header costs names, never data."""
    header = rows[skip]
    names = not any(_NUMBER.fullmatch(v) and not _YEAR.fullmatch(v) for v in header)
    if names:
        return skip
    for index, row in enumerate(rows[:skip]):
        fields = sum(1 for v in row if v.strip())
        blank_below = index + 1 < len(rows) and not any(v.strip() for v in rows[index + 1])
        if (fields > 1 or (fields and len(row) == len(header))) and not blank_below:
            return index
    return skip


def _past_title(rows: list[list[str]], skip: int, mode: int) -> int:
    """A title with a delimiter in it (``Table 3. Deaths by state, 2020``), then a blank line, then
    a row of names: the names are the header. A title has a number, an empty field or a field
    starting with a space (prose after a comma); a header's fields are all words."""
    candidate = rows[skip]
    after = skip + 1
    if after >= len(rows) or any(v.strip() for v in rows[after]):
        return skip  # no blank line under it
    while after < len(rows) and not any(v.strip() for v in rows[after]):
        after += 1
    if after >= len(rows) or len(rows[after]) != mode:
        return skip
    title = any(not v.strip() or _NUMBER.fullmatch(v) for v in candidate) or any(v[:1].isspace() for v in candidate[1:])
    named = all(v.strip() and not _NUMBER.fullmatch(v) for v in rows[after])
    return after if title and named else skip
