"""JSON records: an array, JSON Lines, openFDA ``{meta, results}``, Socrata ``rows.json`` or any
``{"results"|"data": [...]}`` document, streamed in bounded memory and typed by ``typed_copy``."""

from __future__ import annotations

import codecs
import json
import re
import shutil
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import liberacion.convert.json_document as json_document
import liberacion.convert.typing_rules as rules
from liberacion.convert.model import BLOCK, ConversionReport, ConvertOptions, Part, _Column, _sql_text
from liberacion.convert.text import is_utf16, utf16_copy
from liberacion.convert.typed_copy import _check_bad_rows, _write_typed
from liberacion.errors import ConversionError, one_line, shorten
from liberacion.limits import MAX_JSON_DEPTH
from liberacion.naming import quote_ident

if TYPE_CHECKING:
    import duckdb


EMPTY_KEY = "\u2400liberacion-empty-key"  # a record's "" key, renamed in the work copy: column_N
# A key renamed in the work copy: the key, this mark, its spelling's number. Spelled out like
# EMPTY_KEY, so that no key a file holds (``a\u24002``) is taken for, or collides with, a renamed one.
KEY_MARK = "\u2400liberacion-spelling-"
MAX_REJECT_TEXT = 64 * 1024  # of a bad line kept in the rejects table
# The longest record DuckDB's reader takes. Its buffers are twice this, a few at a time: 256 MiB
# would need 512 MiB buffers, more than the default memory limit holds.
MAX_RECORD_BYTES = 32 * 1024 * 1024
# How pyarrow, which publishing reads the table's files with, refuses a schema over 100 levels deep.
PARQUET_DEPTH_WORDS = "too deeply nested"


def _convert_json(
    con: duckdb.DuckDBPyConnection, part: Part, out_dir: Path, kv: dict[str, str], options: ConvertOptions
) -> ConversionReport:
    notes: dict[str, Any] = {"format": part.format}
    path = part.path
    name = part.path.name  # a member's or a sheet's: convert_part puts its label in the message
    described: list[tuple[Any, ...]] | None = None
    if part.format in ("json-object", "openfda", "socrata-json"):
        decoded = _utf8(part.path, out_dir)
        path, fmt, extra, described = _document_records(con, decoded, out_dir, options, name)
        if decoded != part.path:
            decoded.unlink(missing_ok=True)
        descriptions = extra.pop("descriptions", {})
        options = replace(options, descriptions={**descriptions, **options.descriptions})
        notes |= extra
    elif part.format == "jsonl":
        path = _utf8(path, out_dir)
        fmt = "newline_delimited"
    else:
        decoded = _utf8(path, out_dir)
        path = _without_bom(decoded, out_dir)
        if decoded not in (path, part.path):
            decoded.unlink(missing_ok=True)
        fmt = "array"
    if is_utf16(part.path):
        notes["encoding"] = "utf-16"
    rejects: list[tuple[int, str, str]] = []
    try:
        if described is None:
            described = _describe(con, path, fmt, name)
        if _case_variants(described):  # "A" beside "a": DuckDB's names ignore case, one would read as NULL
            raise _Repairable
    except _Repairable:
        # Only now, DuckDB having refused the file, is it read in Python: one bad line of JSON
        # Lines becomes a bad row, a record's "" key gets a name, and anything else that is not a
        # record is said exactly.
        path, rejects, described = _work_copy(con, path, part.path, out_dir, fmt, name)
        fmt = "newline_delimited"
    strict = part.strict_types
    try:
        report = _write_records(con, path, fmt, described, out_dir, kv, options, dict(notes), strict)
    except ConversionError as err:
        if fmt != "array" or "has duplicate key" not in str(err):
            raise
        # A record naming a key twice ({"a": 1, "a": 2}): DuckDB's reader refuses it only as it
        # reads the values. The work copy keeps the last value, as the streaming parse always did.
        path, rejects, described = _work_copy(con, path, part.path, out_dir, fmt, name)
        fmt = "newline_delimited"
        report = _write_records(con, path, fmt, described, out_dir, kv, options, dict(notes), strict)
    if path != part.path:
        path.unlink(missing_ok=True)
    _refuse_unreadable_nesting(out_dir, described, name)
    if rejects:
        _write_rejects(con, rejects, out_dir / "rejects.parquet", kv)
        _check_bad_rows(report.rows, len(rejects), options)
        report.rejects = len(rejects)
    return report


def _refuse_unreadable_nesting(out_dir: Path, described: list[tuple[Any, ...]], name: str) -> None:
    """Refuse records nested deeper than a Parquet reader takes. DuckDB reads objects 128 levels
    deep and writes them, but pyarrow, which publishing reads the table's files with, stops at a
    schema 100 levels deep (a LIST counts two): the fetch failed at publishing, with pyarrow's
    advice to raise a limit that is not the user's. Only the written files' footers are read."""
    if not any(mark in str(type_) for _key, type_, *_ in described for mark in ("STRUCT", "[]", "MAP")):
        return
    import pyarrow.parquet as pq

    for path in sorted(out_dir.glob("data-*.parquet")):
        try:
            pq.ParquetFile(path).metadata  # noqa: B018 (reading the schema is the check)
        except OSError as err:
            if PARQUET_DEPTH_WORDS not in str(err):
                raise
            raise ConversionError(
                f"{name}: JSON nested too deeply for a Parquet table (objects and lists about 100 levels"
                " deep; each list counts two)"
            ) from None


def _work_copy(
    con: duckdb.DuckDBPyConnection, path: Path, source: Path, out_dir: Path, fmt: str, name: str
) -> tuple[Path, list[tuple[int, str, str]], list[tuple[Any, ...]]]:
    """The records read in Python into a work copy of JSON Lines (``_records_copy``): its path, its
    bad lines and its description. ``path``, when it is not the ``source`` file, is removed."""
    copy, rejects = _records_copy(path, out_dir, fmt, name)
    if path != source:
        path.unlink(missing_ok=True)
    return copy, rejects, _describe(con, copy, "newline_delimited", name, again=True)


def _write_records(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    described: list[tuple[Any, ...]],
    out_dir: Path,
    kv: dict[str, str],
    options: ConvertOptions,
    notes: dict[str, Any],
    strict: bool,
) -> ConversionReport:
    """The records' table, each key read as ``described`` (its first DESCRIBE) says."""
    # Keys whose reader's type would lose digits or misread dates are read as their text, typed as in CSV.
    described = [(key, _portable(type_), *rest) for key, type_, *rest in described]
    as_read = [(str(key), "VARCHAR" if _typed_from_text(type_) else str(type_)) for key, type_, *_ in described]
    # Spelled out, the types spare every later query on the records DuckDB's detection, which reads
    # the whole file (sample_size=-1) each time the query is bound.
    relation = _relation(path, fmt, as_read)
    taken: set[str] = set()
    columns, passthrough = [], {}
    for i, (key, type_, *_) in enumerate(described):
        original = _original_key(str(key))
        original = options.field_names.get(original, original) if original else original
        column = _Column(key, rules.snake_case(original, i + 1, taken), original)
        columns.append(column)
        if type_ in ("HUGEINT", "UHUGEINT") or _typed_from_text(type_):
            # Whole numbers beyond BIGINT: Parquet would store them as DOUBLE, losing digits.
            # Their text is typed like a CSV's (kept exactly, as text, when it is that long); so
            # are dates (see ``_typed_from_text``).
            continue
        if type_ != "VARCHAR":
            passthrough[column.source] = type_
    huge = {c.source for c, (_k, t, *_r) in zip(columns, described) if t in ("HUGEINT", "UHUGEINT")}
    return _write_typed_json(con, relation, columns, out_dir, kv, options, notes, passthrough, strict, huge)


def _document_records(
    con: duckdb.DuckDBPyConnection, path: Path, out_dir: Path, options: ConvertOptions, name: str
) -> tuple[Path, str, dict[str, Any], list[tuple[Any, ...]] | None]:
    """The records of a ``{..., "results"|"data": [...]}`` document, their reader's format, the
    document's notes and, when known, their description: the list's own bytes when DuckDB reads
    them, else JSON Lines from a streaming parse in Python (which says exactly what is wrong)."""
    listed = _listed_records(con, path, out_dir, name)
    if listed:
        records, fmt, notes = listed
        try:
            return records, fmt, notes, _describe(con, records, fmt, name)
        except (_Repairable, ConversionError):  # a "" key, an element that is not a record...
            records.unlink(missing_ok=True)
    records, notes = _records_or_refuse(path, out_dir, options, name)
    return records, "newline_delimited", notes, None


def _listed_records(
    con: duckdb.DuckDBPyConnection, path: Path, out_dir: Path, name: str
) -> tuple[Path, str, dict[str, Any]] | None:
    """The document's list of records as a file DuckDB reads (its format, the notes), or None."""
    found = json_document.find_record_list(path)
    if found is None or json_document.empty_list(found, path):
        return None
    meta = found.before.get("meta")
    view = _socrata_view(meta) if found.key == "data" else None
    if found.key == "data" and "meta" in found.before and view is None:
        return None  # {meta, data} without Socrata's columns: the parse decides as it always has
    target = out_dir / ".records.json"
    json_document.copy_list(found, path, target)
    if view is None:
        notes = {}
        if "meta" in found.before:
            notes = {"meta": meta, "format": "openfda" if isinstance(meta, dict) and "results" in meta else "json"}
        return target, "array", notes
    try:
        lines = _socrata_rows(con, target, out_dir, view)
    except Exception:  # duckdb.Error: a row that is not a list, broken JSON: the parse says which
        return None
    finally:
        target.unlink(missing_ok=True)
    return lines, "newline_delimited", {"format": "socrata-json", **_socrata_notes(view)}


def _socrata_rows(con: duckdb.DuckDBPyConnection, rows: Path, out_dir: Path, view: dict[str, Any]) -> Path:
    """Socrata's rows (lists, one value per column of the view) as JSON Lines of records, by DuckDB."""
    target = out_dir / ".records.jsonl"
    work = _WorkKeys()  # field names that differ only in case stay apart, as the parse keeps them
    select = ", ".join(
        f"json[{position + 1}] AS {quote_ident(work.key(key))}" for key, position in _socrata_columns(view).items()
    )
    count = con.execute(
        f"COPY (SELECT {select} FROM read_json('{_sql_text(str(rows))}', format='array', records=false,"
        f" columns={{'json': 'JSON[]'}}, maximum_object_size={MAX_RECORD_BYTES}, compression='none')"
        # A row that is null is no list of values: refused, for the parse to name it.
        " WHERE json IS NOT NULL OR error('a row that is null'))"
        f" TO '{_sql_text(str(target))}' (FORMAT json)"
    ).fetchall()[0][0]
    if not count:
        raise ValueError("no rows")
    return target


def _portable(type_: Any) -> Any:
    """The type to read a key as: UUIDs, times of day and the like (``rules.portable_type``), in
    the key or nested in it, as their text exactly as published (the reader would write a UUID in
    lower case, ``13:45`` as ``13:45:00``), as a CSV's are; a key of mixed values (JSON) is typed
    from its text later, as it always was."""
    import duckdb

    text = str(type_)
    if text == "JSON" or not rules.UNPORTABLE_NAMES.search(text):
        return type_
    return rules.portable_type(duckdb.sqltype(text)) or type_


def _typed_from_text(type_: Any) -> bool:
    """Whether a key DuckDB's reader typed is read as its text and typed by the rules, as in CSV.

    DOUBLE: a key whose numbers do not fit BIGINT (a negative one, a long one) is DOUBLE, losing
    digits. DATE and TIMESTAMP: the reader guesses one date format for the whole file, day-first
    for ``01-05-2024`` (a US January 5th read as May 1st) and a two-digit year for ``24-01-05``,
    and fails the file when another key's dates disagree; the rules read ISO dates as it does,
    ``MM/DD/YYYY`` month first, and keep any other spelling as text.
    """
    return str(type_) in ("DOUBLE", "DATE", "TIMESTAMP")


class _Repairable(Exception):
    """DuckDB refused the file for something a Python pass over it can repair or say exactly:
    broken JSON Lines, a value that is not a record, a record's "" key."""


def _relation(path: Path, fmt: str, types: list[tuple[str, str]] | None = None, *, structs: bool = False) -> str:
    """The reader of the records; with ``types`` ((key, type), every key), each key read as that type;
    ``structs``: every object read as a STRUCT, never guessed to be a MAP."""
    spelled = ""
    if types:
        spelled = ", columns={" + ", ".join(f"'{_sql_text(k)}': '{_sql_text(t)}'" for k, t in types) + "}"
    if structs:
        spelled += ", map_inference_threshold=-1"
    return (
        f"read_json('{_sql_text(str(path))}', format='{fmt}', records=true, sample_size=-1,"
        f" maximum_object_size={MAX_RECORD_BYTES}, union_by_name=true, compression='none'{spelled})"
    )


def _describe(
    con: duckdb.DuckDBPyConnection, path: Path, fmt: str, name: str, *, again: bool = False
) -> list[tuple[Any, ...]]:
    try:
        try:
            return con.execute(f"DESCRIBE SELECT * FROM {_relation(path, fmt)}").fetchall()
        except Exception as err:
            if "expected records" not in str(err):
                raise
            # DuckDB guesses that an object of more than 200 keys, or whose keys each show in few
            # records, is a MAP, and then refuses the records as "non-record JSON": a Socrata view
            # of 250 columns, or records each holding a few of many optional keys, are records.
            # The types found here are spelled out for every later read, which then guesses nothing.
            return con.execute(f"DESCRIBE SELECT * FROM {_relation(path, fmt, structs=True)}").fetchall()
    except Exception as err:
        text = str(err)
        if "maximum recursion depth" in text:  # DuckDB's own limit
            raise ConversionError(f"{name}: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        if "maximum_object_size" in text:  # DuckDB's advice to raise it is not the user's to follow
            raise ConversionError(
                f"{name}: a JSON record longer than {MAX_RECORD_BYTES // 1024 // 1024} MiB; liberacion reads"
                " records of up to that length (each is held whole while it is read)"
            ) from None
        if not again and "expected records" in text:  # [1, 2], a "" key, or a line that is a list
            raise _Repairable from None
        if not again and "Malformed JSON" in text and fmt == "newline_delimited":
            raise _Repairable from None
        if not again and "Duplicate name" in text:  # {"p": {"X": 1, "x": 2}}: struct fields ignore case
            raise _Repairable from None
        raise ConversionError(f"{name}: not valid JSON records ({_engine_words(err)})") from None


def _engine_words(err: BaseException) -> str:
    """DuckDB's message without its internal SQL, the caret line under it, or the work file's path."""
    kept = []
    for line in str(err).splitlines():
        if line.strip().startswith("LINE ") or set(line.strip()) <= {"^", " "}:
            break
        kept.append(line)
    text = re.sub(r' in file "[^"]*"', "", " ".join(kept))
    return shorten(text, 300)


def _records_copy(path: Path, out_dir: Path, fmt: str, name: str) -> tuple[Path, list[tuple[int, str, str]]]:
    """The records as JSON Lines in a work copy, a record's "" key renamed ``EMPTY_KEY``. JSON
    Lines: each line that is not one JSON object is a bad row (line number, text, reason). An array:
    an element that is not an object is an error that names it."""
    target = out_dir / ".records-copy.jsonl"
    rejects: list[tuple[int, str, str]] = []
    count = 0
    keys = _WorkKeys()
    with open(target, "w", encoding="utf-8") as out:
        if fmt == "array":
            import ijson

            with open(path, "rb") as fh:
                try:
                    for index, record in enumerate(ijson.items(fh, "item"), start=1):
                        if not isinstance(record, dict):
                            raise ConversionError(
                                f"{name}: element {index:,} of its list is {_kind(record)}, not an object"
                                " (a record); a list of records holds only objects"
                            )
                        out.write(keys.dumps(record))
                        count += 1
                except ijson.JSONError as err:
                    raise ConversionError(f"{name}: not valid JSON ({_parse_error(err)})") from None
        else:
            with open(path, "rb") as fh:
                for number, raw in enumerate(fh, start=1):
                    line = raw.decode("utf-8", "replace")
                    if number == 1:
                        line = line.lstrip("\ufeff")
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line, parse_constant=_no_constant)
                    except (ValueError, RecursionError) as err:
                        reason = f"INVALID JSON: {getattr(err, 'msg', None) or type(err).__name__}"
                        if isinstance(err, json.JSONDecodeError):
                            reason = f"{reason.removesuffix(' at')} at column {err.colno}"
                        rejects.append((number, line.rstrip("\r\n")[:MAX_REJECT_TEXT], reason))
                        continue
                    if not isinstance(record, dict):
                        reason = f"NOT A RECORD: {_kind(record)}, not a JSON object"
                        rejects.append((number, line.rstrip("\r\n")[:MAX_REJECT_TEXT], reason))
                        continue
                    out.write(keys.dumps(record) if keys.renames(record) else line.rstrip("\r\n") + "\n")
                    count += 1
    if count == 0:
        target.unlink(missing_ok=True)
        if rejects:
            raise ConversionError(
                f"{name}: none of its {len(rejects):,} lines is a JSON record (line {rejects[0][0]:,}: {rejects[0][2]})"
            )
        raise ConversionError(f"{name} holds no records")
    return target, rejects


def _parse_error(err: BaseException) -> str:
    """The parser's message: yajl's comes as bytes, the text around the error drawn under it."""
    text = err.args[0] if len(err.args) == 1 else err
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return one_line(ValueError(text) if isinstance(text, str) else err, lines=1, limit=200)


def _no_constant(word: str) -> Any:
    raise ValueError(f"{word} is not JSON")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return "a number"


class _WorkKeys:
    """The keys of a work copy's records: a record's "" key as ``EMPTY_KEY``, and a key spelled as
    another but for case (``A`` beside ``a``) as itself, ``KEY_MARK`` and its spelling's number:
    DuckDB's column names ignore case, so one of the two would read as NULL."""

    def __init__(self) -> None:
        self._spellings: dict[str, dict[str, str]] = {}  # lowercased: {spelling: its work key}

    def key(self, key: str) -> str:
        if key == "":
            return EMPTY_KEY
        seen = self._spellings.setdefault(key.lower(), {})
        if key not in seen:
            seen[key] = f"{key}{KEY_MARK}{len(seen) + 1}" if seen else key
        return seen[key]

    def renames(self, record: dict[str, Any]) -> bool:
        return any(self.key(k) != k for k in record) or any(_nested_variants(v) for v in record.values())

    def dumps(self, record: dict[str, Any]) -> str:
        if self.renames(record):
            record = {self.key(k): _apart(v) for k, v in record.items()}
        return json.dumps(record, ensure_ascii=False, default=_number) + "\n"


def _nested_variants(value: Any) -> bool:
    """Whether a nested object of ``value`` holds keys that differ only in case."""
    if isinstance(value, list):
        return any(_nested_variants(item) for item in value)
    if not isinstance(value, dict):
        return False
    return len({k.lower() for k in value}) < len(value) or any(_nested_variants(v) for v in value.values())


def _apart(value: Any) -> Any:
    """``value`` with the keys of its nested objects that differ only in case from an earlier one
    renamed ``x_2``, ``x_3``: DuckDB's struct fields ignore case and refuse such a pair."""
    if isinstance(value, list):
        return [_apart(item) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    taken: set[str] = set()
    for key, item in value.items():
        name, number = key, 1
        while name.lower() in taken:
            number += 1
            name = f"{key}_{number}"
        taken.add(name.lower())
        kept[name] = _apart(item)
    return kept


def _original_key(key: str) -> str:
    """A work copy's key as the file spells it (see ``_WorkKeys``)."""
    if key == EMPTY_KEY:
        return ""
    head, mark, number = key.rpartition(KEY_MARK)
    return head if mark and number.isdigit() else key


def _case_variants(described: list[tuple[Any, ...]]) -> bool:
    """Whether DuckDB's reader named a key as itself plus ``_N`` beside the same key spelled with
    other capitals, as it does for keys that differ only in case (``A`` and ``a``: ``A``, ``a_1``)."""
    names = [str(key) for key, *_ in described]
    spellings: dict[str, set[str]] = {}
    for name in names:
        spellings.setdefault(name.lower(), set()).add(name)
    for name in names:
        match = re.fullmatch(r"(.+)_[0-9]+", name)
        if match and spellings.get(match.group(1).lower(), set()) - {match.group(1)}:
            return True
    return False


# ijson reads numbers exactly (use_float would overflow on a whole number beyond 64 bits, which
# DuckDB reads as its text): a whole number stays an int, a decimal becomes the float that
# json.loads makes of it.
def _number(value: Any) -> float:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _floats(value: Any) -> Any:
    """``value`` with its decimals as floats, as json.loads reads it."""
    return value if value is None else json.loads(json.dumps(value, default=_number))


def _write_rejects(
    con: duckdb.DuckDBPyConnection, rejects: list[tuple[int, str, str]], target: Path, kv: dict[str, str]
) -> None:
    """The bad lines as the rejects table has them for CSV: line number, raw text, reason."""
    import pyarrow as pa

    table = pa.table(
        {
            "line_number": pa.array([r[0] for r in rejects], pa.int64()),
            "raw_text": pa.array([r[1] for r in rejects], pa.string()),
            "reason": pa.array([r[2] for r in rejects], pa.string()),
        }
    )
    metadata = ", ".join(f"'{_sql_text(k)}': '{_sql_text(v)}'" for k, v in kv.items())
    con.register("liberacion_json_rejects", table)
    try:
        con.execute(
            f"COPY (SELECT * FROM liberacion_json_rejects) TO '{_sql_text(str(target))}'"
            f" (FORMAT parquet, COMPRESSION zstd, KV_METADATA {{{metadata}}})"
        )
    finally:
        con.unregister("liberacion_json_rejects")


def _write_typed_json(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: list[_Column],
    out_dir: Path,
    kv: dict[str, str],
    options: ConvertOptions,
    notes: dict[str, Any],
    passthrough: dict[str, str],
    strict_columns: bool = True,
    as_text: set[str] | None = None,
) -> ConversionReport:
    # Typing SQL refers to source columns by name; JSON keys may need quoting, so alias them first.
    # ``as_text``: columns read as their text (whole numbers beyond BIGINT).
    inner = ", ".join(
        f"{'CAST(' + quote_ident(c.source) + ' AS VARCHAR)' if c.source in (as_text or ()) else quote_ident(c.source)}"
        f" AS {quote_ident('c' + str(i))}"
        for i, c in enumerate(columns)
    )
    aliased = [_Column(f"c{i}", c.name, c.original) for i, c in enumerate(columns)]
    renamed = {f"c{i}": passthrough[c.source] for i, c in enumerate(columns) if c.source in passthrough}
    relation = f"(SELECT {inner} FROM {relation})"
    return _write_typed(con, relation, aliased, out_dir, kv, options, notes, renamed, strict_columns=strict_columns)


def _utf8(path: Path, out_dir: Path) -> Path:
    """A UTF-16 file (with its byte order mark) as a UTF-8 work copy; any other file as it is."""
    copied = utf16_copy(path, out_dir, ".json")
    return path if copied is None else copied[0]


def _without_bom(path: Path, out_dir: Path) -> Path:
    with open(path, "rb") as fh:
        if fh.read(3) != codecs.BOM_UTF8:
            return path
        target = out_dir / ".source.json"
        with open(target, "wb") as dst:
            shutil.copyfileobj(fh, dst, BLOCK)
    return target


def _records_or_refuse(
    path: Path, out_dir: Path, options: ConvertOptions, name: str | None = None
) -> tuple[Path, dict[str, Any]]:
    """``_json_records_to_lines``, with a broken or too deeply nested document as one clear error."""
    import ijson

    try:
        return _json_records_to_lines(path, out_dir, options, name)
    except RecursionError:
        raise ConversionError(f"{name or path.name}: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ijson.JSONError as err:
        raise ConversionError(f"{name or path.name}: not valid JSON ({_parse_error(err)})") from None


def _json_records_to_lines(
    path: Path, out_dir: Path, options: ConvertOptions, name: str | None = None
) -> tuple[Path, dict[str, Any]]:
    """Stream the records out of an openFDA ``{meta, results}``, a Socrata ``rows.json`` or any
    ``{"results"|"data": [...]}`` document into JSON Lines, in bounded memory."""
    import ijson

    name = name or path.name

    target = out_dir / ".records.jsonl"
    notes: dict[str, Any] = {}
    with open(path, "rb") as fh:
        start = 3 if fh.read(3) == codecs.BOM_UTF8 else 0
        fh.seek(start)
        keys, lists = _members(fh)
        where = json_document.record_path(lists, keys)
        if where is None:
            raise ConversionError(f"{name}: a JSON object without a list of records (keys: {sorted(keys)[:8]})")
        meta = None
        if "meta" in keys:
            fh.seek(start)
            meta = _floats(next(ijson.items(fh, "meta"), None))
        fh.seek(start)
        view = _socrata_view(meta) if where == "data" else None
        rows = ijson.items(fh, f"{where}.item")
        if view is not None and not _socrata_columns(view):
            raise ConversionError(f"{name}: its Socrata view lists no columns of data, only Socrata's own (:id, ...)")
        if view is not None:
            rows = _socrata_records(rows, _socrata_columns(view), name)
            notes |= {"format": "socrata-json", **_socrata_notes(view)}
        elif "meta" in keys:
            notes |= {"meta": meta, "format": "openfda" if isinstance(meta, dict) and "results" in meta else "json"}
        count = 0
        keys = _WorkKeys()
        with open(target, "w", encoding="utf-8") as out:
            for index, record in enumerate(rows, start=1):
                if not isinstance(record, dict):
                    raise ConversionError(
                        f"{name}: element {index:,} of its {where!r} list is"
                        f" {_kind(record)}, not an object (a record); a list of records holds only objects"
                    )
                out.write(keys.dumps(record))
                count += 1
    if count == 0:
        raise ConversionError(f"{name} holds no records")
    return target, notes


def _members(fh: Any) -> tuple[set[str], set[str]]:
    """The object's keys, and the paths of its members that are lists (``results``), with those
    of CKAN's ``result`` when it is an object (``result.records``)."""
    import ijson

    keys: set[str] = set()
    lists: set[str] = set()
    member = None  # the path of the member whose value starts with the next event
    for prefix, event, value in ijson.parse(fh):
        if member is not None and event == "start_array":
            lists.add(member)
        member = None
        if event == "map_key" and prefix == "":
            keys.add(value)
            member = value
        elif event == "map_key" and prefix == "result":
            member = f"result.{value}"
    return keys, lists


def _socrata_view(meta: Any) -> dict[str, Any] | None:
    """Socrata's ``meta.view`` when it lists the columns of the rows, else None."""
    view = meta.get("view") if isinstance(meta, dict) else None
    if isinstance(view, dict) and isinstance(view.get("columns"), list):
        return view
    return None


def _socrata_columns(view: dict[str, Any]) -> dict[str, int]:
    """{field name: position in a row} of the view's own columns (a repeated name: its last)."""
    columns: dict[str, int] = {}
    for position, column in enumerate(view["columns"]):
        field_name = _field_name(position, column)
        if not field_name.startswith(":"):  # Socrata's own bookkeeping columns (:id, :created_at, ...)
            columns[field_name] = position
    return columns


def _socrata_notes(view: dict[str, Any]) -> dict[str, Any]:
    descriptions = {
        _field_name(position, column): column["description"]
        for position, column in enumerate(view["columns"])
        if isinstance(column, dict) and column.get("description")
    }
    return {"view": view.get("id"), "descriptions": descriptions}


def _field_name(position: int, column: Any) -> str:
    """A view column's field name: ``fieldName``, else its ``name``, else ``column_N``."""
    column = column if isinstance(column, dict) else {}
    return str(column.get("fieldName") or column.get("name") or f"column_{position + 1}")


def _socrata_records(rows: Any, columns: dict[str, int], name: str) -> Any:
    """Each row (a list) as a record of the view's columns; a row too short has nulls at its end."""
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, list):
            raise ConversionError(f"{name}: row {index:,} of its 'data' list is {_kind(row)}, not a list of values")
        yield {key: row[position] if position < len(row) else None for key, position in columns.items()}
