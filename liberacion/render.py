"""Write query results and listings as a table, CSV, TSV, JSON, JSON Lines, Markdown or Parquet.

Everything streams: rows are written batch by batch, so a result of millions of rows is never
held in memory (the terminal table converts only the rows it shows). Arrow results are written by
C++ code (pyarrow's CSV writer, DuckDB's ``to_json``); Python formats only small listings.

The terminal table fits the screen: whole columns, the first and the last ones, with a ``…``
column for those left out and a footer that says so; values are cut with ``…``, never wrapped
(titles excepted: a few lines each). A listing may show its rows as blocks instead (``Rows.cramped``).
Colour only where a person looks at it: a terminal, without ``NO_COLOR`` or ``--no-color``.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from liberacion.errors import UsageError, output_error
from liberacion.files import is_special, output_path
from liberacion.naming import QUANTITY_NAMES, is_identifier_name, quote_ident

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from rich.console import Console
    from rich.text import Text


class Format(str, Enum):
    table = "table"
    csv = "csv"
    tsv = "tsv"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"
    parquet = "parquet"


class DocumentFormat(str, Enum):
    """The formats of commands that describe one thing (info, show): a terminal view or JSON."""

    table = "table"
    json = "json"


DEFAULT_MAX_ROWS = 1000
Cramped = Literal["hide", "blocks", "blocks_for_names"]  # see ``Rows.cramped``
PARQUET_ON_A_TERMINAL = "Parquet is binary and is not written to a terminal: add --output FILE, or pipe it"

# --output FILE takes its format from the extension unless --format names one.
EXTENSIONS = {
    ".csv": Format.csv,
    ".tsv": Format.tsv,
    ".json": Format.json,
    ".jsonl": Format.jsonl,
    ".ndjson": Format.jsonl,
    ".md": Format.markdown,
    ".parquet": Format.parquet,
}


# Extensions of compressed files: what is written is never compressed, so a name with one is said.
COMPRESSED = frozenset({".gz", ".bz2", ".xz", ".zst", ".zip"})


def not_compressed(output: Path) -> str:
    """Why ``output`` (``x.csv.gz``) would not be what its name says, and what to do instead."""
    return (
        f"liberacion does not compress what it writes; write {output.with_suffix('')}, or pipe it through a"
        f" compressor, e.g. -o >(gzip > {output})"
    )


class OutputClosed(Exception):
    """The reader of stdout went away (``| head``): stop writing and end quietly, exit code 0.

    stdout is already pointed at the null device when this is raised, so the interpreter's last
    flush cannot fail either.
    """


def default_format(stream: IO[Any]) -> Format:
    """A table for people at a terminal, CSV for pipes and files."""
    return Format.table if _isatty(stream) else Format.csv


def format_for_output(output: Path) -> Format:
    """The format a file name asks for (``.csv .tsv .json .jsonl .ndjson .md .parquet``).

    A FIFO or a device named without any extension (a process substitution, ``/dev/fd/63``) is a
    pipe by another name: it takes the format a pipe on stdout takes, CSV. An extension no format
    has asks for something the name does not say, whatever the file is."""
    fmt = EXTENSIONS.get(output.suffix.lower())
    if fmt is None and not output.suffix and is_special(output):
        return Format.csv
    if fmt is None and output.suffix.lower() in COMPRESSED:  # "add --format csv" wrote plain CSV into x.csv.gz
        raise UsageError(f"cannot write {output}: {not_compressed(output)}")
    if fmt is None:
        known = " ".join(EXTENSIONS)
        msg = f"cannot tell the format of {output} from its extension ({known}): add --format csv (or another)"
        raise UsageError(msg)
    return fmt


def choose_format(fmt: Format | None, output: Path | None, stream: IO[Any] | None = None) -> Format:
    """``--format`` when given; else the extension of ``--output``; else a table on a terminal, CSV elsewhere."""
    if output is not None:
        _check_output(output)
    if fmt is not None:
        return fmt
    if output is not None:
        return format_for_output(output)
    return default_format(stream or sys.stdout)


def _check_output(output: Path) -> None:
    """An output file goes into a directory that exists: a typo must not create directories."""
    if output.is_symlink():
        try:
            os.stat(output)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise UsageError(f"--output {output}: a loop of symbolic links") from None
        output = Path(os.path.realpath(output))  # the file the link names is the one written
    if output.is_file() and not os.stat(output).st_mode & 0o222:
        raise UsageError(f"--output {output} is read-only; make it writable, or give another name")
    if output.is_dir():
        raise UsageError(f"--output {output} is a directory; give a file name, e.g. {output / 'result.csv'}")
    if not output.parent.is_dir() and not is_special(output):
        raise UsageError(f"--output {output}: the directory {output.parent} does not exist")


def _isatty(stream: IO[Any]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # a closed stream
        return False


# -- colour ------------------------------------------------------------------------------------

_colour_switch: list[bool] = [True]  # --no-color sets it to False for the rest of the run


def set_color(enabled: bool) -> None:
    """Allow colour (the default) or forbid it whatever the stream (``--no-color``)."""
    _colour_switch[0] = enabled


def color_enabled(stream: IO[Any]) -> bool:
    """Colour and styles only on a terminal, and never with ``NO_COLOR`` set, ``--no-color`` or TERM=dumb."""
    if not _colour_switch[0] or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def make_console(stream: IO[Any], *, width: int | None = None) -> Console:
    """A Rich console on ``stream`` that writes plain text unless :func:`color_enabled`."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # Rich would exit 1: let the caller end quietly instead
            raise BrokenPipeError()

    colour = color_enabled(stream)
    return _Console(
        file=_StandIns(stream) if not _can_write_all(stream) else stream,
        color_system="auto" if colour else None,
        force_terminal=colour or None,
        highlight=False,
        emoji=False,
        soft_wrap=False,
        width=width,
    )


def _encoding(stream: IO[Any]) -> str:
    return (getattr(stream, "encoding", None) or "utf-8").lower().replace("-", "").replace("_", "")


def _can_write_all(stream: IO[Any]) -> bool:
    """Whether ``stream``'s encoding holds every character (UTF-8, UTF-16 ...), unlike a Latin-1 terminal's."""
    return _encoding(stream).startswith("utf")


# What a terminal that cannot show a character gets instead: an ASCII character as wide, so that a
# table's columns stay in line ("…" as "~", as the ASCII box cuts values).
_STAND_INS = {"…": "~", "→": ">", "←": "<", "—": "-", "–": "-", "·": "-", "↵": "|", "�": "?", "•": "*"}
_STAND_INS.update(dict.fromkeys("‘’‚", "'") | dict.fromkeys("“”„", '"') | dict.fromkeys("─━┄", "-"))
_STAND_INS.update(dict.fromkeys("│┃┆", "|") | dict.fromkeys("┌┐└┘├┤┬┴┼", "+"))
_STAND_INS.update(zip("øØđĐłŁħĦı", "oOdDlLhHi"))  # letters with a stroke, which no accent makes


class _StandIns:
    """A terminal's text stream whose encoding lacks characters (``LC_ALL=es_ES.ISO-8859-1``): what
    it cannot write is written as a stand-in (``_STAND_INS``, else ``?``), never an error."""

    def __init__(self, stream: IO[Any]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        encoding = getattr(self._stream, "encoding", None) or "ascii"
        try:
            text.encode(encoding)
        except UnicodeEncodeError:
            text = "".join(_stand_in(char, encoding) for char in text)
        except LookupError:  # an encoding Python does not know: ASCII is safe
            text = "".join(_stand_in(char, "ascii") for char in text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding: the stream's own
        return getattr(self._stream, name)


def _stand_in(char: str, encoding: str) -> str:
    from rich.cells import cell_len

    try:
        char.encode(encoding)
        return char
    except UnicodeEncodeError:
        return _STAND_INS.get(char) or _base_letter(char, encoding) or "?" * cell_len(char)


def _base_letter(char: str, encoding: str) -> str | None:
    """A letter without its accent (``é`` as ``e``, ``ñ`` as ``n``) when the terminal can show that
    and it is as wide: on an ASCII terminal "José Núñez" reads "Jose Nunez", not "Jos? N??ez"."""
    import unicodedata

    from rich.cells import cell_len

    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    try:
        base.encode(encoding)
    except UnicodeEncodeError:
        return None
    return base if base and cell_len(base) == cell_len(char) else None


class _Utf8Text:
    """Text written to a stream as UTF-8 bytes whatever its encoding: data (CSV, JSON ...) is UTF-8,
    as DuckDB writes it, under a Latin-1 locale too."""

    encoding = "utf-8"

    def __init__(self, stream: IO[Any]) -> None:
        stream.flush()
        self._stream = stream
        self.buffer = stream.buffer

    def write(self, text: str) -> int:
        self.buffer.write(text.encode("utf-8"))
        return len(text)

    def flush(self) -> None:
        self.buffer.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


STATUS_STYLES = {
    "fetched": "green",
    "published": "green",
    "failed": "red",
    "gone": "red",
    "error": "red",
    "unchanged": "dim",
    "skipped": "dim",
    "retired": "dim",
    "schema-changed": "yellow",
    "changed": "yellow",
}


# -- rows --------------------------------------------------------------------------------------

# How a listing's columns read in a terminal table, by column name. Machine formats keep the
# raw values; the table shows sizes, times and sources for people, and never cuts a name.
LISTING_KINDS = {
    "table": "name",
    "tables": "name",
    "ref": "name",
    "name": "name",
    "table_name": "name",
    "snapshot": "name",
    "catalog": "name",
    "column": "name",
    "bytes": "size",
    "downloaded": "size",
    "size": "size",
    "fetched_at": "time",
    "published_at": "time",
    "last_discovered": "time",
    "fetched": "time",
    "modified": "date",
    "source_url": "source",
    "source": "source",
    "url": "source",
    "landing_page": "source",
    "status": "status",
    "event": "status",
    "change": "name",  # diff's kind of change (rows_removed): never cut
    "old": "old",  # diff's values before and after: cut so that where they differ stays in sight
    "new": "new",
}


def listing_kinds(columns: Iterable[str]) -> dict[str, str]:
    return {c: LISTING_KINDS[c] for c in columns if c in LISTING_KINDS}


@dataclass
class Rows:
    """A result to render: column names and chunks of row tuples, or an Arrow stream.

    ``kinds`` says how a column reads in a terminal table (``name``: never cut; ``size``,
    ``time``, ``date``, ``source``: shown for people; ``status``: coloured); other formats ignore it.
    """

    columns: list[str]
    chunks: Iterable[Sequence[Sequence[Any]]] = ()
    arrow: pa.RecordBatchReader | None = None
    kinds: dict[str, str] = field(default_factory=dict)
    null_text: str = "NULL"  # how the terminal table shows a missing value ("-" in listings)
    keep_last: bool = True  # a table too wide shows the last columns too (a listing: its first ones only)
    # Counts the rows after ``chunks`` without converting them (a terminal table of a large query).
    remaining: Callable[[], int] | None = None
    # A terminal table's column order when it differs from the columns' (what matters most first);
    # a listing's columns that hold nothing go last.
    terminal_order: Sequence[str] | None = None
    all_hint: str = "--format csv"  # the footer's way to see every column and row
    empty_text: str | None = None  # a terminal table without rows says this instead of an empty box
    # A terminal table too narrow for every column whole: "hide" leaves columns out (a "…" column
    # that the footer explains); "blocks" shows each row as a block instead, its name on a line of
    # its own and every other column under it, whenever a column holding anything would be left
    # out; "blocks_for_names" only when a name would be cut or shown alone (a listing of many rows
    # stays a grid while it shows more than the names).
    cramped: Cramped = "hide"
    # Columns a terminal table never leaves out while they hold anything: its rows go as blocks instead.
    never_hide: frozenset[str] = frozenset()
    # ``arrow`` holds each row's Markdown line, made by DuckDB in the query (``query.export``).
    markdown_lines: bool = False

    @classmethod
    def from_dicts(
        cls, columns: list[str], records: Iterable[dict[str, Any]], kinds: dict[str, str] | None = None
    ) -> Rows:
        """A listing: the columns named in ``LISTING_KINDS`` read for people in a terminal table."""
        chosen = listing_kinds(columns) if kinds is None else kinds
        chunk = [tuple(r.get(c) for c in columns) for r in records]
        return cls(columns, [chunk], kinds=chosen, null_text="-", keep_last=False)

    @classmethod
    def from_arrow(cls, reader: pa.RecordBatchReader) -> Rows:
        return cls(list(reader.schema.names), arrow=reader)

    def iter_chunks(self) -> Iterator[Sequence[Sequence[Any]]]:
        if self.arrow is None:
            yield from self.chunks
            return
        for batch in self.arrow:
            yield _batch_rows(batch)

    def head(self, limit: int) -> tuple[list[Sequence[Any]], int]:
        """The first ``limit`` rows and the number of rows in all (the rest are counted, not converted)."""
        kept: list[Sequence[Any]] = []
        total = 0
        if self.arrow is not None:
            for batch in self.arrow:
                if len(kept) < limit:
                    kept.extend(_batch_rows(batch.slice(0, limit - len(kept))))
                total += batch.num_rows
            return kept, total
        for chunk in self.chunks:
            for row in chunk:
                if len(kept) < limit:
                    kept.append(row)
                total += 1
        if self.remaining is not None:
            total += self.remaining()
        return kept, total


def _batch_rows(batch: pa.RecordBatch) -> list[tuple[Any, ...]]:
    columns = [_python_values(_shortest_reals(col)) for col in batch.columns]
    return list(zip(*columns)) if columns else [() for _ in range(batch.num_rows)]


class WholeText(str):
    """A date or a time that Python cannot hold, as DuckDB writes it (``infinity``, ``24:00:00``,
    a year past 9999): a terminal table shows it as it shows dates, never cut."""


def _python_values(column: pa.Array) -> list[Any]:
    """``column``'s values in Python. A date or a time Python cannot hold is DuckDB's text of it:
    Arrow would make DuckDB's ``infinity`` the year 9999 (or 2262), fail on a year past 9999, and
    wrap ``24:00:00`` to midnight."""
    import pyarrow as pa

    if not (pa.types.is_temporal(column.type) and _python_range(column.type)):
        return column.to_pylist()
    low, high = _python_range(column.type)
    raw = column.view(pa.int32() if column.type.bit_width == 32 else pa.int64()).to_pylist()
    outside = [v is not None and not low <= v <= high for v in raw]
    if not any(outside):
        try:
            return column.to_pylist()
        except (OverflowError, ValueError):  # a time zone that moves a value past year 1 or 9999
            pass
    texts = _duckdb_texts(column)
    values: list[Any] = []
    for at, scalar in enumerate(column):
        try:
            values.append(WholeText(texts[at]) if outside[at] else scalar.as_py())
        except (OverflowError, ValueError):
            values.append(WholeText(texts[at]))
    return values


_DAYS_FROM_1 = 719_162  # days from 0001-01-01 to 1970-01-01
_DAYS_TO_10000 = 2_932_897  # days from 1970-01-01 to 10000-01-01
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_INT64_MAX = 2**63 - 1


def _python_range(type_: pa.DataType) -> tuple[int, int] | None:
    """The raw values of an Arrow date, time or timestamp type that Python's (or pandas') types
    hold; None for the types whose values Arrow always converts."""
    import pyarrow as pa

    t = pa.types
    if t.is_date32(type_):
        return -_DAYS_FROM_1, _DAYS_TO_10000 - 1
    if t.is_time64(type_) or t.is_time32(type_):
        return 0, 86_400 * _PER_SECOND[type_.unit] - 1
    if t.is_timestamp(type_):
        if type_.unit == "ns":  # pandas holds every nanosecond value but DuckDB's infinities
            return -_INT64_MAX + 1, _INT64_MAX - 1
        per = 86_400 * _PER_SECOND[type_.unit]
        return -_DAYS_FROM_1 * per, _DAYS_TO_10000 * per - 1
    return None


def _duckdb_texts(column: pa.Array) -> list[str]:
    """The values of an Arrow column as DuckDB writes them as text."""
    import pyarrow as pa

    from liberacion.engine import new_connection

    con = new_connection()
    try:
        rows = con.from_arrow(pa.table({"c": column})).project("c::VARCHAR").fetchall()
    finally:
        con.close()
    return [row[0] for row in rows]


def _shortest_reals(column: pa.Array) -> pa.Array:
    """``column`` with each REAL (float32, at any depth) as the double of its shortest text: 0.1,
    as DuckDB's CSV and JSON write it, not the 0.10000000149011612 that its float32 widens to in
    Python. Arrow's cast to text writes the shortest digits that read back as the same float32."""
    import pyarrow as pa

    if not _holds_float32(column.type):
        return column
    try:
        text = column.cast(_floats_as(column.type, pa.string()))
        return text.cast(_floats_as(column.type, pa.float64()))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # a union, say: its digits as they are
        return column


def _holds_float32(type_: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_float32(type_):
        return True
    return any(_holds_float32(type_.field(i).type) for i in range(type_.num_fields))


def _floats_as(type_: pa.DataType, to: pa.DataType) -> pa.DataType:
    """``type_`` with every float32 in it, at any depth, replaced by ``to``."""
    import pyarrow as pa

    t = pa.types
    if t.is_float32(type_):
        return to
    if t.is_map(type_):
        item = type_.item_field
        return pa.map_(type_.key_field, item.with_type(_floats_as(item.type, to)), type_.keys_sorted)
    if t.is_list(type_) or t.is_large_list(type_) or t.is_fixed_size_list(type_):
        value = type_.value_field.with_type(_floats_as(type_.value_type, to))
        if t.is_fixed_size_list(type_):
            return pa.list_(value, type_.list_size)
        return pa.large_list(value) if t.is_large_list(type_) else pa.list_(value)
    if t.is_struct(type_):
        return pa.struct(
            [type_.field(i).with_type(_floats_as(type_.field(i).type, to)) for i in range(type_.num_fields)]
        )
    return type_


def render(
    rows: Rows,
    fmt: Format,
    *,
    output: Path | None = None,
    stdout: IO[Any] | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    title: str | None = None,
    expanded: bool = False,
    expand_option: str | None = None,
) -> None:
    """Write ``rows`` in ``fmt`` to ``output`` (atomically) or to ``stdout``.

    ``expanded`` shows the terminal table one record per block; ``expand_option`` names the
    option that does so (the footer suggests it when columns were left out).
    """
    view = _TableView(max_rows=max_rows, title=title, expanded=expanded, expand_option=expand_option)
    if output is None:
        stream = stdout or sys.stdout
        if fmt is Format.parquet and _isatty(stream):
            raise UsageError(PARQUET_ON_A_TERMINAL)
        try:
            if fmt is Format.parquet:
                stream.flush()
                # to a pipe: | duckdb -c "from read_parquet('/dev/stdin')"
                _write_parquet(rows, stream.buffer, "--format csv")
            elif fmt is not Format.table and not _can_write_all(stream) and hasattr(stream, "buffer"):
                _render_to(rows, fmt, _Utf8Text(stream), view)  # type: ignore[arg-type]
            else:
                _render_to(rows, fmt, stream, view)
        except BrokenPipeError:
            if stream is sys.stdout or stream is sys.__stdout__:
                silence_stdout()
            raise OutputClosed() from None
        except OSError as err:  # where stdout goes is full (a file the shell opened): not the home
            if err.filename:
                raise
            raise output_error(err, "the standard output") from None
        return
    with output_path(output) as tmp:
        if fmt is Format.parquet:
            with open(tmp, "wb") as fh:
                # --format csv alone would write CSV into a file named .parquet
                _write_parquet(rows, fh, f"--format csv --output {shlex.quote(str(output.with_suffix('.csv')))}")
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                _render_to(rows, fmt, fh, view)


def silence_stdout() -> None:
    """Point file descriptor 1 at the null device: nothing more can fail to reach a closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout is not a real file
        pass


@dataclass
class _TableView:
    max_rows: int = DEFAULT_MAX_ROWS
    title: str | None = None
    expanded: bool = False
    expand_option: str | None = None


def _render_to(rows: Rows, fmt: Format, stream: IO[Any], view: _TableView) -> None:
    if fmt is Format.table:
        _write_table(rows, stream, view)
    elif fmt in (Format.csv, Format.tsv):
        _write_delimited(rows, stream, "," if fmt is Format.csv else "\t")
    elif fmt in (Format.json, Format.jsonl):
        if rows.arrow is not None:
            _write_json_arrow(_renamed(rows.arrow), stream, lines=fmt is Format.jsonl)
        elif fmt is Format.json:
            _write_json(rows, stream)
        else:
            _write_jsonl(rows, stream)
    elif fmt is Format.markdown:
        _write_markdown(rows, stream)
    else:  # pragma: no cover - parquet is handled by the caller
        raise UsageError(f"cannot write {fmt.value} to a stream")
    stream.flush()


def _unique(names: Sequence[str]) -> bool:
    """No two names alike, ignoring case: DuckDB binds ``A`` and ``a`` to the same column."""
    return len({n.lower() for n in names}) == len(names)


def unique_names(names: Sequence[str]) -> list[str]:
    """``names`` made distinct as DuckDB makes them when it reads such a Parquet file (``a``, ``a_1``):
    a JSON record holds each key once, so a later column must not overwrite an earlier one."""
    taken = {n.lower() for n in names}
    seen: set[str] = set()
    out = []
    for name in names:
        new, k = name, 0
        while new.lower() in seen or (k and new.lower() in taken):
            k += 1
            new = f"{name}_{k}"
        seen.add(new.lower())
        out.append(new)
    return out


def _renamed(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The same stream with distinct column names (see ``unique_names``)."""
    import pyarrow as pa

    if _unique(reader.schema.names):
        return reader
    names = unique_names(reader.schema.names)
    schema = pa.schema([f.with_name(n) for f, n in zip(reader.schema, names)], metadata=reader.schema.metadata)
    batches = (pa.RecordBatch.from_arrays(batch.columns, schema=schema) for batch in reader)
    return pa.RecordBatchReader.from_batches(schema, batches)


# -- value formatting --------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):  # a HUGEINT arrives as a Decimal: a whole one stays exact
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if type(value).__name__ == "MonthDayNano":  # an INTERVAL inside a list or a struct
        return interval_text(*value)
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):  # a DuckDB MAP
            return {str(k): _json_value(v) for k, v in value}
        return [_json_value(v) for v in value]
    return value


def _text(value: Any) -> str:
    """A cell as text for CSV and Markdown."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if type(value).__name__ == "MonthDayNano":  # Arrow's INTERVAL, a tuple: not a JSON list
        return interval_text(*value)
    if isinstance(value, bytes):
        return value.hex()  # as CSV and JSON give BLOBs
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(_json_value(value), ensure_ascii=False)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


def interval_text(months: int, days: int, nanoseconds: int) -> str:
    """An INTERVAL as DuckDB writes it: ``1 year 2 months 3 days 04:05:06.5``."""
    years, months = divmod(months, 12) if months >= 0 else (-(-months // 12), -(-months % 12))
    parts = [
        f"{n} {unit}{'' if abs(n) == 1 else 's'}"
        for n, unit in ((years, "year"), (months, "month"), (days, "day"))
        if n
    ]
    if nanoseconds or not parts:
        sign, micros = ("-" if nanoseconds < 0 else ""), abs(nanoseconds) // 1000
        seconds, fraction = divmod(micros, 1_000_000)
        clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        parts.append(sign + clock + (f".{fraction:06d}".rstrip("0") if fraction else ""))
    return " ".join(parts)


def size_text(n: int | None) -> str:
    """Bytes for people, in decimal units as the progress bars count them: ``12.3 MB`` is 12.3 × 10^6 bytes."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


def when_text(value: Any, *, now: datetime | None = None) -> str:
    """A stored time for people: ``3 h ago`` within a week, else ``2026-12-02 16:31`` (UTC)."""
    moment = _as_datetime(value)
    if moment is None:
        return _text(value)
    now = now or datetime.now(UTC)
    seconds = (now - moment).total_seconds()
    if 0 <= seconds < 7 * 86400:
        if seconds < 60:
            return "just now"
        if seconds < 3600:
            return f"{int(seconds // 60)} min ago"
        if seconds < 86400:
            return f"{int(seconds // 3600)} h ago"
        return f"{int(seconds // 86400)} d ago"
    return moment.strftime("%Y-%m-%d %H:%M")


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) >= 16 and value[10:11] in ("T", " "):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def source_text(value: Any) -> str:
    """A URL as host and file name (``data.cms.gov/…/Hospital_General_Information.csv``); a path as its file name."""
    text = _text(value)
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme in ("http", "https", "ftp", "s3") and parts.netloc:
        segments = [s for s in parts.path.split("/") if s]
        if not segments:
            return parts.netloc
        middle = "/…/" if len(segments) > 1 else "/"
        return f"{parts.netloc}{middle}{segments[-1]}"
    return re.split(r"[\\/]", text.rstrip("/\\"))[-1] or text


# Control characters, and the bidirectional overrides that would reorder the rest of the line; and
# halves of UTF-16 pairs alone, which no UTF-8 terminal or pipe can be sent.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def key_text(value: str) -> str:
    """A row's key as people read it: ``{"facility_id": "010001"}`` → ``facility_id=010001``."""
    try:
        key = json.loads(value)
    except ValueError:
        return value
    if not isinstance(key, dict):
        return value
    return ", ".join(f"{k}={'NULL' if v is None else v}" for k, v in key.items())


def _display(value: Any, kind: str | None, null_text: str = "NULL") -> tuple[str, str | None, bool]:
    """A cell for people: its text, its style, and whether it is a number (right-aligned)."""
    if value is None:
        return null_text, "dim", False
    if kind == "size" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return size_text(int(value)), None, True
    if kind == "time":
        return one_line(when_text(value)), None, False
    if kind == "date":  # a listing's "modified" is whatever text its publisher wrote
        text = one_line(_text(value))
        return (text[:10] if re.match(r"\d{4}-\d{2}-\d{2}", text) else text), None, False
    if kind == "source":
        return one_line(source_text(value)), None, False
    if kind == "link":  # a whole URL, cut in the middle when it must be (see ``cut_middle``)
        return one_line(re.sub(r"^https?://", "", _text(value))), None, False
    if kind == "key" and isinstance(value, str) and value.startswith("{"):
        return one_line(key_text(value)), None, False
    if isinstance(value, bool):
        return ("true" if value else "false"), None, False
    if isinstance(value, int):
        return (str(value) if kind == "code" else f"{value:,}"), None, True
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value), None, True
        return (f"{value:,}" if abs(value) < 1e15 else repr(value)), None, True
    if isinstance(value, Decimal):  # every digit of its scale, never "1.000E-7" or "0E-10"
        return f"{value:,f}", None, True
    if isinstance(value, datetime):
        return value.isoformat(sep=" "), None, False
    if isinstance(value, (date, time)):
        return value.isoformat(), None, False
    if isinstance(value, bytes):
        return "\\x" + value.hex(), None, False
    text = one_line(_text(value))
    if kind == "status":
        return text, STATUS_STYLES.get(text), False
    return text, None, False


# Integer columns that are years, codes, keys or sort orders (``year``, ``data_year``, ``YearStart``,
# ``provider_id``, NHANES's ``seqn``, ``reporting_area_sort``): shown without thousands separators,
# as ``2017``, not ``2,017``. Counts (``number_of_beds``) keep them.
_CODE_NAME = re.compile(
    r"(?:^|_)(?:year|yr|fy|id|code|fips|zip|zipcode|npi|ccn|ndc|seqn|key|sort)(?:_|$)|year$|^year", re.I
)
_WHOLE_TYPES = (int, float, Decimal, date, time, WholeText)  # datetime is a date


def _code_name(column: str) -> bool:
    """A column of codes by its name (``fy``, ``zip5``, ``provider_number``: typing's identifiers
    too), not one that says what it counts (``year_2020_deaths``)."""
    name = column.lower()
    return bool(_CODE_NAME.search(name) or is_identifier_name(name)) and not QUANTITY_NAMES.search(name)


def one_line(text: str) -> str:
    """Newlines as ``↵`` and control characters (escape sequences in data) as ``�``: a cell is one line."""
    text = text.replace("\r\n", "↵").replace("\n", "↵").replace("\r", "↵").replace("\t", " ")
    return _CONTROL.sub("�", text)


def inert(text: str) -> str:
    """Text from a listing, a server or a file, made safe to print for people: its lines kept, every
    other control character as ``�``, so an escape sequence in it is shown, never obeyed by the
    terminal (``ESC [2J`` clears the screen, ``ESC ]0;`` retitles the window, U+202E reverses)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return _CONTROL.sub("�", text)


# -- writers -----------------------------------------------------------------------------------


def _write_delimited(rows: Rows, stream: IO[Any], delimiter: str) -> None:
    if rows.arrow is not None:
        _write_delimited_arrow(rows.arrow, stream, delimiter)
        return
    writer = _csv_writer(stream, delimiter)
    writer.writerow(rows.columns)
    for chunk in rows.iter_chunks():
        writer.writerows([_text(v) for v in row] for row in chunk)


def _csv_writer(stream: IO[Any], delimiter: str) -> Any:
    """A CSV writer ending rows with ``\\n`` that still quotes a value holding a bare ``\\r``: Python's
    writer quotes only the characters of its own line end, and readers end a row at a lone ``\\r``."""
    return csv.writer(_LineFeedRows(stream), delimiter=delimiter, lineterminator="\r\n")


class _LineFeedRows:
    """A stream for ``csv.writer`` (one ``write`` per row): each row's ``\\r\\n`` written as ``\\n``."""

    def __init__(self, stream: IO[Any]) -> None:
        self._stream = stream

    def write(self, row: str) -> int:
        return self._stream.write(row[:-2] + "\n" if row.endswith("\r\n") else row)


def _write_delimited_arrow(reader: pa.RecordBatchReader, stream: IO[Any], delimiter: str) -> None:
    """An Arrow stream as CSV: pyarrow's C++ writer, batch by batch, each value as the COPY of a
    query writes it (``_text_batches``)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    binary = _binary(stream)
    # Unquoted where the values allow it (clean output for cut/awk); pyarrow refuses "none" for
    # a batch holding a delimiter, quote or newline, and that batch is written quoted instead.
    plain = pacsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="none")
    quoted = pacsv.WriteOptions(include_header=False, delimiter=delimiter)
    header = io.StringIO()
    _csv_writer(header, delimiter).writerow(reader.schema.names)
    binary.write(header.getvalue().encode())
    for batch in _text_batches(reader):
        buffer = io.BytesIO()
        try:
            pacsv.write_csv(batch, buffer, plain)
        except pa.ArrowInvalid:
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, quoted)
        binary.write(buffer.getbuffer())
    binary.flush()


# DuckDB types whose values pyarrow's CSV writer writes as DuckDB's COPY does.
_TEXT_AS_IS = frozenset(
    {
        "boolean",
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "float",
        "double",
        "varchar",
    }
)


def _text_batches(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """``reader``'s batches with every value of another type than numbers, booleans and text as
    the text the COPY of one query writes (``_text_exprs``): a script of several statements gets
    the same CSV as one query. pyarrow's own text would write an infinite date as a year, a
    TIMESTAMP past 2262 wrong, ``24:00:00`` as an error, a DECIMAL as ``1E-38`` and a nested one as
    an inexact float."""
    import pyarrow as pa

    from liberacion.engine import new_connection
    from liberacion.naming import quote_ident

    schema = _positional(reader.schema)
    con = new_connection()
    try:
        exprs = _text_exprs(_duck_types(con, schema))
        if all(expr is None for expr in exprs):
            yield from reader
            return
        columns = [quote_ident(name) for name in schema.names]
        query = f"SELECT {', '.join(f'{expr or col} AS {col}' for expr, col in zip(exprs, columns))} FROM batch"
        for batch in reader:
            positional = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
            yield from con.from_arrow(positional).query("batch", query).to_arrow_table().to_batches()
    finally:
        con.close()


def _positional(schema: pa.Schema) -> pa.Schema:
    """``schema`` with its columns named by position (``c0``, ``c1``...): DuckDB takes ``A`` and
    ``a`` for one name."""
    import pyarrow as pa

    return pa.schema([f.with_name(f"c{at}") for at, f in enumerate(schema)])


def _text_exprs(types: Sequence[Any]) -> list[str | None]:
    """For each column of the DuckDB ``types`` (named by position: ``c0``, ``c1``...), the SQL of its
    values as the text the COPY of one query writes (``export_expr``, DuckDB's own text for the
    rest), nested values as JSON with a space after each ``,`` and ``:``, as this path has always
    written them; None for a number, a boolean or text, which the writers take as they are."""
    exprs: list[str | None] = []
    for at, duck_type in enumerate(types):
        col = f'"c{at}"'
        if duck_type.id in _TEXT_AS_IS:
            exprs.append(None)
            continue
        text = f"({export_expr(col, duck_type, json=False) or col})::VARCHAR"
        exprs.append(_spaced_json(text) if duck_type.id in _DUCK_NESTED else text)
    return exprs


# A run of JSON strings and other characters up to the next "," or ":" outside a string (or the end).
_JSON_UP_TO_PUNCTUATION = r'((?:"(?:[^"\\]|\\.)*"|[^",:])*)([,:]|$)'


def _spaced_json(expr: str) -> str:
    """The SQL of ``expr``'s compact JSON with a space after each ``,`` and ``:`` outside its
    strings, as people read it. The end's match adds a space too, trimmed: JSON ends in none."""
    from liberacion.naming import quote_literal

    return f"rtrim(regexp_replace({expr}, {quote_literal(_JSON_UP_TO_PUNCTUATION)}, '\\1\\2 ', 'g'), ' ')"


def _binary(stream: IO[Any]) -> IO[bytes]:
    """The byte stream under a text stream (a text stream without one gets the bytes decoded)."""
    stream.flush()
    if hasattr(stream, "buffer"):
        return stream.buffer  # type: ignore[no-any-return]
    if isinstance(stream, io.TextIOBase):
        return _Decoding(stream)  # type: ignore[return-value]
    return stream


class _Decoding:
    """Bytes written to a text stream that has no byte stream under it (``io.StringIO``)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, data: Any) -> int:
        return self.stream.write(bytes(data).decode("utf-8"))

    def flush(self) -> None:
        self.stream.flush()


def _write_json_arrow(reader: pa.RecordBatchReader, stream: IO[Any], *, lines: bool) -> None:
    """The fast path for JSON and JSON Lines: DuckDB's ``to_json`` turns each Arrow batch into
    one buffer of lines, written as it is (no Python object per value)."""
    from liberacion.engine import new_connection

    binary = _binary(stream)
    con = new_connection()
    try:
        query = _json_query(con, reader.schema, lines=lines)
        first = True
        if not lines:
            binary.write(b"[")
        for batch in reader:
            if batch.num_rows == 0:
                continue
            text = _text_data(con.from_arrow(batch).query("batch", query).to_arrow_table().column(0))
            # Each JSON record starts with ",\n": the array's first one drops its comma.
            binary.write(text if lines or not first else text[1:])
            first = False
        if not lines:
            binary.write(b"]\n" if first else b"\n]\n")
        binary.flush()
    finally:
        con.close()


def _json_query(con: duckdb.DuckDBPyConnection, schema: pa.Schema, *, lines: bool) -> str:
    """``select to_json({...}) || chr(10) from batch``, each value as the COPY of a query writes it
    (``export_expr``): NaN as null, ISO 8601 times, BLOBs in hex, HUGEINTs exact."""
    from liberacion.naming import quote_ident, quote_literal

    fields = []
    for f, duck_type in zip(schema, _duck_types(con, schema)):
        col = quote_ident(f.name)
        # Text that is JSON (a JSON or BIGNUM column of the query): written as it is, not as a string.
        marked = f.metadata is not None and f.metadata.get(b"liberacion") == b"json"
        expr = f"{col}::JSON" if marked else export_expr(col, duck_type, json=True) or col
        fields.append(f"{quote_literal(f.name)}: {expr}")
    record = f"to_json({{{', '.join(fields)}}})::VARCHAR" if fields else "'{}'"
    line = f"{record} || chr(10)" if lines else f"',' || chr(10) || {record}"
    return f"SELECT {line} AS line FROM batch"


def _duck_types(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> list[Any]:
    """The DuckDB types an Arrow batch of ``schema`` reads as."""
    return con.from_arrow(schema.empty_table()).types if len(schema) else []


# DuckDB's types whose values liberacion writes in its own way (see ``export_expr``).
_DUCK_TIMESTAMPS = ("timestamp", "timestamp_ns", "timestamp_ms", "timestamp_s", "timestamp with time zone")
_DUCK_NESTED = ("list", "struct", "map", "array", "union")


def export_expr(col: str, duck_type: Any, *, json: bool) -> str | None:
    """The SQL for column ``col`` (quoted) of DuckDB type ``duck_type`` as liberacion writes it in CSV
    (``json`` false) or JSON: ISO 8601 times (``T``, no empty fraction, a TIMESTAMP_NS's nanoseconds
    kept, ``+00:00`` in UTC, ``infinity`` as DuckDB names it), BLOBs in hex, nested values as JSON
    in CSV, NaN/infinity as JSON can hold them (in nested values too). None: as DuckDB writes it.
    The COPY of one query and the Arrow stream of a script write the same text through it."""
    type_id = duck_type.id
    if type_id in _DUCK_TIMESTAMPS:
        return _iso_moment(col, type_id)
    if type_id == "blob":
        return f"lower(hex({col}))"
    if type_id == "decimal" and dict(duck_type.children).get("scale") == 0:
        # A HUGEINT comes back from Arrow as DECIMAL(38,0), which holds its 39-digit values but
        # cannot write them (DuckDB fails on -2^127): as the integer it is.
        return f"{col}::HUGEINT"
    safe = json_safe(col, duck_type) if json or type_id in _DUCK_NESTED else None
    if type_id in _DUCK_NESTED and not json:
        return f"{safe or f'to_json({col})'}::VARCHAR"
    return safe


def _iso_moment(col: str, type_id: str) -> str:
    """A timestamp in ISO 8601; ``infinity`` and ``-infinity`` as DuckDB writes them."""
    zoned = type_id == "timestamp with time zone"
    value = f"timezone('UTC', {col})" if zoned else col
    nanos = type_id == "timestamp_ns"
    whole = f"epoch_ns({value}) % 1000000000 = 0" if nanos else f"microsecond({value}) % 1000000 = 0"
    fraction = "%n" if nanos else "%f"
    iso = (
        f"CASE WHEN {whole} THEN strftime({value}, '%Y-%m-%dT%H:%M:%S') "
        f"ELSE strftime({value}, '%Y-%m-%dT%H:%M:%S.{fraction}') END"
    )
    if zoned:
        iso = f"{iso} || '+00:00'"
    return f"CASE WHEN isfinite({col}) THEN {iso} ELSE {col}::VARCHAR END"


def json_safe(expr: str, duck_type: Any, depth: int = 0) -> str | None:
    """``expr`` as JSON DuckDB writes validly: NaN as null and infinity as ``"inf"``/``"-inf"``, at
    the top and inside lists, structs and maps (DuckDB would write bare ``NaN``/``Infinity``).
    None when ``duck_type`` (a DuckDB type) holds no floating-point value: ``expr`` is fine as it is."""
    from liberacion.naming import quote_ident

    kind = duck_type.id
    if kind in ("float", "double"):
        # A REAL as its shortest text (0.1, as CSV writes it), not as the double it widens to.
        finite = f"{expr}::VARCHAR::JSON" if kind == "float" else f"to_json({expr})"
        return (
            f"CASE WHEN isnan({expr}) THEN NULL::JSON WHEN isinf({expr}) "
            f"THEN to_json(CASE WHEN {expr} > 0 THEN 'inf' ELSE '-inf' END) ELSE {finite} END"
        )
    var = f"v{depth}"  # a lambda's variable, distinct at each depth
    if kind in ("list", "array"):
        inner = json_safe(var, duck_type.children[0][1], depth + 1)
        return None if inner is None else f"to_json(list_transform({expr}, lambda {var}: {inner}))"
    if kind == "map":
        inner = json_safe(f"{var}.value", duck_type.children[1][1], depth + 1)
        if inner is None:
            return None
        entries = f"list_transform(map_entries({expr}), lambda {var}: struct_pack(key := {var}.key, value := {inner}))"
        return f"to_json(map_from_entries({entries}))"
    if kind == "struct":
        members = [
            (quote_ident(name), json_safe(f"{expr}.{quote_ident(name)}", t, depth)) for name, t in duck_type.children
        ]
        if all(inner is None for _, inner in members):
            return None
        packed = ", ".join(f"{name} := {inner or f'{expr}.{name}'}" for name, inner in members)
        # struct_pack of a NULL struct's members would be a struct of NULLs
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE to_json(struct_pack({packed})) END"
    return None


def _text_data(column: pa.ChunkedArray | pa.Array) -> memoryview:
    """The values of a string column end to end, as one buffer (lines made by DuckDB)."""
    import pyarrow as pa

    parts = []
    for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        if len(chunk) == 0:
            continue
        _, offsets, data = chunk.buffers()
        ints = memoryview(offsets).cast("B").cast("q" if pa.types.is_large_string(chunk.type) else "i")
        start, end = ints[chunk.offset], ints[chunk.offset + len(chunk)]
        parts.append(memoryview(data)[start:end])
    if not parts:
        return memoryview(b"")
    return parts[0] if len(parts) == 1 else memoryview(b"".join(parts))


def _write_json(rows: Rows, stream: IO[Any]) -> None:
    stream.write("[")
    first = True
    names = unique_names(rows.columns)
    for chunk in rows.iter_chunks():
        for row in chunk:
            stream.write("\n" if first else ",\n")
            stream.write(_dump(names, row))
            first = False
    stream.write("\n]\n" if not first else "]\n")


def _write_jsonl(rows: Rows, stream: IO[Any]) -> None:
    names = unique_names(rows.columns)
    for chunk in rows.iter_chunks():
        stream.write("".join(_dump(names, row) + "\n" for row in chunk))


def _dump(columns: list[str], row: Sequence[Any]) -> str:
    record = {name: _json_value(value) for name, value in zip(columns, row)}
    return json.dumps(record, ensure_ascii=False)


def _write_markdown(rows: Rows, stream: IO[Any]) -> None:
    stream.write(_markdown_line(rows.columns))
    stream.write("|" + "|".join("---" for _ in rows.columns) + "|\n")
    if rows.markdown_lines and rows.arrow is not None:
        binary = _binary(stream)
        for batch in rows.arrow:
            binary.write(_text_data(batch.column(0)))
        binary.flush()
    elif rows.arrow is not None:
        _write_markdown_arrow(rows.arrow, stream)
    else:
        for chunk in rows.iter_chunks():
            stream.write("".join(_markdown_line([_text(v) for v in row]) for row in chunk))


def _markdown_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|").replace("\r", " ").replace("\n", " ") for c in cells) + " |\n"


def _write_markdown_arrow(reader: pa.RecordBatchReader, stream: IO[Any]) -> None:
    """An Arrow stream's rows as Markdown (a script ending in a PRAGMA, a REAL column): DuckDB makes
    each batch's lines (``markdown_selects``), written as one buffer."""
    import pyarrow as pa

    from liberacion.engine import new_connection

    schema = _positional(reader.schema)
    binary = _binary(stream)
    con = new_connection()
    try:
        texts, line = markdown_selects(_duck_types(con, schema))
        query = f"SELECT {line} FROM (SELECT {texts} FROM batch)"
        for batch in reader:
            if batch.num_rows == 0:
                continue
            if not schema:  # no column to give DuckDB
                binary.write(b"|  |\n" * batch.num_rows)
                continue
            # A REAL as the double of its shortest text, as Python printed it (0.1): Arrow's digits.
            columns = [_shortest_reals(c) if pa.types.is_float32(c.type) else c for c in batch.columns]
            positional = pa.RecordBatch.from_arrays(columns, names=schema.names)
            binary.write(_text_data(con.from_arrow(positional).query("batch", query).to_arrow_table().column(0)))
        binary.flush()
    finally:
        con.close()


def markdown_selects(types: Sequence[Any]) -> tuple[str, str]:
    """Two select lists over the columns ``c0``, ``c1``... of the DuckDB ``types``: each value's
    text as its CSV writes it, then the Markdown line of those texts (``line``, ending in a line
    feed). Numbers read as Python prints them (``nan``, ``1e+16``) and NULL as nothing; ``|`` is
    escaped and line breaks become spaces, so a value stays in its cell and a row on one line."""
    from liberacion.naming import quote_literal

    texts, cells = [], []
    for at, (duck_type, text) in enumerate(zip(types, _text_exprs(types))):
        col = f'"c{at}"'
        if text is None and duck_type.id == "varchar":
            text = f"{col}::VARCHAR"  # a JSON column too: text, not JSON that must stay valid when escaped
        texts.append(f"{text} AS {col}" if text else col)
        if text is None and duck_type.id in ("float", "double"):
            cells.append(f"CASE WHEN isnan({col}) THEN 'nan' ELSE {col}::VARCHAR END")  # not DuckDB's -nan
        elif text is None and duck_type.id != "varchar":  # a number or a boolean: nothing to escape
            cells.append(f"{col}::VARCHAR")
        else:  # most values hold none of the three: looking is cheaper than replacing
            bar = quote_literal("\\|")
            escaped = f"replace(replace(replace({col}, '|', {bar}), chr(13), ' '), chr(10), ' ')"
            found = f"contains({col}, '|') OR contains({col}, chr(10)) OR contains({col}, chr(13))"
            cells.append(f"CASE WHEN {found} THEN {escaped} ELSE {col} END")
    values = ", ' | ', ".join(cells) or "''"
    return ", ".join(texts) or "1", f"concat('| ', {values}, ' |', chr(10)) AS line"


_BARE_COLUMN = re.compile(r"[a-z_][a-z0-9_]*")  # one DuckDB reads unquoted (keywords aside)


def _holds_interval(type_: Any) -> bool:
    """An INTERVAL, or a list, struct or map with one inside."""
    import pyarrow as pa

    if pa.types.is_interval(type_):
        return True
    return any(_holds_interval(type_.field(i).type) for i in range(type_.num_fields))


def _write_parquet(rows: Rows, sink: IO[bytes], as_csv: str) -> None:
    """``rows`` as Parquet into ``sink``; ``as_csv``: the options that write CSV instead, for the
    refusal of a column Parquet cannot hold."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if rows.arrow is not None:
        reader = rows.arrow
    else:
        columns = rows.columns
        records = [dict(zip(columns, row)) for chunk in rows.iter_chunks() for row in chunk]
        table = pa.Table.from_pylist(records) if records else pa.table({c: pa.array([], pa.null()) for c in columns})
        reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    intervals = [f.name for f in reader.schema if _holds_interval(f.type)]
    if intervals:  # Arrow cannot write them, and text would pass for a value of another type
        name = intervals[0]
        column = name if _BARE_COLUMN.fullmatch(name) else quote_ident(name)  # as the SQL must write it
        raise UsageError(
            f"Parquet output cannot hold the INTERVAL column {name}: select it as {column}::VARCHAR, or use {as_csv}"
        )
    # A Python file: Arrow's own would seek, which a pipe, a FIFO or a process substitution cannot.
    with pq.ParquetWriter(pa.PythonFile(sink, mode="w"), reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)
    sink.flush()


# -- the terminal table ------------------------------------------------------------------------

MIN_WIDTH = 40  # narrower screens are drawn as if they were this wide
_VALUE_CAP = 40  # a column is at most this wide when everything fits (names excepted)
_VALUE_FLOOR = 8  # and at least this wide (or its header) before columns are left out
_KEY_FLOOR = 24  # a row's key (diff) says which row: it gives up width last


@dataclass
class _Box:
    top: tuple[str, str, str, str]  # left, fill, join, right
    middle: tuple[str, str, str, str]
    bottom: tuple[str, str, str, str]
    side: str
    ellipsis: str


_UNICODE_BOX = _Box(("┌", "─", "┬", "┐"), ("├", "─", "┼", "┤"), ("└", "─", "┴", "┘"), "│", "…")
_ASCII_BOX = _Box(("+", "-", "+", "+"), ("+", "-", "+", "+"), ("+", "-", "+", "+"), "|", "~")


def _box_for(stream: IO[Any]) -> _Box:
    return _UNICODE_BOX if _can_write_all(stream) else _ASCII_BOX


def cut(text: str, width: int, ellipsis: str = "…") -> str:
    """``text`` in at most ``width`` cells, ending in ``…`` when something was cut."""
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return text
    if width <= 0:
        return ""
    return set_cell_size(text, width - 1).rstrip() + ellipsis


def cut_middle(text: str, width: int, ellipsis: str = "…") -> str:
    """``text`` in at most ``width`` cells, cut in the middle: a URL keeps its host and the end that
    tells it from its neighbours (openFDA's partitions differ only in a folder before the file name)."""
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return text
    if width <= 2:
        return cut(text, width, ellipsis)
    tail_room = (width - 1) * 2 // 3  # the end tells files apart: it gets the larger share
    tail, used = "", 0
    for char in reversed(text):
        if used + cell_len(char) > tail_room:
            break
        tail, used = char + tail, used + cell_len(char)
    return set_cell_size(text, width - 1 - used) + ellipsis + tail


def cut_around(text: str, width: int, at: int, ellipsis: str = "…") -> str:
    """``text`` in at most ``width`` cells with its character ``at`` in sight: where it first differs
    from the value it is compared with (diff's old and new), which a cut at the end would hide
    when they share a long start. ``…`` stands for what was left out, before and after."""
    from rich.cells import cell_len

    if cell_len(text) <= width:
        return text
    if width <= 4 or cell_len(text[: at + 4]) <= width - 1:  # the difference and a little after it fit
        return cut(text, width, ellipsis)
    start = len(text)
    while start > 0 and cell_len(text[start - 1 :]) <= width - 1:
        start -= 1
    if start <= at:  # the end, with as much as fits before the difference
        return ellipsis + text[start:]
    start, before = at, 0
    while start > 0 and before + cell_len(text[start - 1]) <= (width - 2) // 3:  # a third for context
        start -= 1
        before += cell_len(text[start])
    return ellipsis + cut(text[start:], width - 1, ellipsis)


def _cut_pairs(
    cells: list[list[tuple[str, str | None, bool]]], kinds: Sequence[str | None], widths: dict[int, int], ellipsis: str
) -> bool:
    """Cut each row's old and new values (diff) around their first difference (``cut_around``), so
    that two values that differ never look the same. Whether any was cut."""
    from rich.cells import cell_len

    if "old" not in kinds or "new" not in kinds:
        return False
    pair = (kinds.index("old"), kinds.index("new"))
    cut_any = False
    for row in cells:
        old, new = row[pair[0]][0], row[pair[1]][0]
        at = next((k for k, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
        for i in pair:
            text, style, number = row[i]
            if i in widths and cell_len(text) > widths[i]:
                row[i] = (cut_around(text, widths[i], at, ellipsis), style, number)
                cut_any = True
    return cut_any


def fit_columns(
    headers: Sequence[str],
    naturals: Sequence[int],
    keep: Sequence[bool],
    width: int,
    *,
    keep_last: bool = True,
    floors: Sequence[int] | None = None,
    caps: Sequence[int] | None = None,
) -> tuple[list[int], list[int], bool]:
    """Which columns a table of ``width`` cells shows, how wide each is, and whether some are left out.

    Each column wants its widest value (at most ``_VALUE_CAP``, a name column its whole width) and
    always its whole header. When they do not all fit, wide columns give up width down to
    ``_VALUE_FLOOR`` (or their ``floors``); when that is not enough, columns are taken alternately
    from the front and the back (only from the front unless ``keep_last``) until the screen is
    full, and a ``…`` column stands for the rest. Spare width goes
    back to the columns shown. The first column is always shown, cut if it must be.
    """
    from rich.cells import cell_len

    n = len(headers)
    head = [cell_len(h) for h in headers]
    cap = caps or [_VALUE_CAP] * n
    want = [max(head[i], naturals[i] if keep[i] else min(naturals[i], cap[i]), 1) for i in range(n)]
    floor = floors or [_VALUE_FLOOR] * n
    least = [want[i] if keep[i] else max(head[i], min(naturals[i], floor[i]), 1) for i in range(n)]
    room = width - 1  # the left border; each column costs its width + 3 (padding and border)

    def cost(widths: Iterable[int]) -> int:
        return sum(w + 3 for w in widths)

    if cost(want) <= room:
        # Room to spare: values cut at the cap get it back, up to their whole width.
        fitted = dict(enumerate(want))
        _hand_out(fitted, naturals, room - cost(want))
        return list(range(n)), list(fitted.values()), False
    if cost(least) <= room:
        shown, hidden = list(range(n)), False
    else:
        hidden = True
        room_left = room - 4  # the "…" column
        front: list[int] = []
        back: list[int] = []
        used = 0
        lo, hi = 0, n - 1
        open_front, open_back = True, keep_last
        take_front = True
        while lo <= hi and (open_front or open_back):
            if (take_front and open_front) or not open_back:
                if used + least[lo] + 3 <= room_left:
                    front.append(lo)
                    used += least[lo] + 3
                    lo += 1
                else:
                    open_front = False
            else:
                if used + least[hi] + 3 <= room_left:
                    back.append(hi)
                    used += least[hi] + 3
                    hi -= 1
                else:
                    open_back = False
            take_front = not take_front
        if not front:  # the first column does not fit whole: show it cut, and nothing from the back
            back = []
            hidden = n > 1
            least[0] = max(1, (room_left if hidden else room) - 3)
            front = [0]
        shown = front + back[::-1]
    widths = {i: least[i] for i in shown}
    _hand_out(widths, want, room - cost(widths.values()) - (4 if hidden else 0))
    return shown, [widths[i] for i in shown], hidden


def _hand_out(widths: dict[int, int], limits: Sequence[int], spare: int) -> None:
    """Give ``spare`` cells, one at a time in turn, to the columns still below their ``limits``."""
    while spare > 0:
        growing = [i for i in widths if widths[i] < limits[i]]
        if not growing:
            break
        for i in growing[:spare]:
            widths[i] += 1
        spare -= min(spare, len(growing))


def _write_table(rows: Rows, stream: IO[Any], view: _TableView) -> None:
    from rich.cells import cell_len
    from rich.text import Text

    console = make_console(stream)
    width = max(console.width, MIN_WIDTH)
    kept, total = rows.head(view.max_rows)
    if not rows.columns:
        return
    if total == 0 and rows.empty_text:
        console.print(Text(rows.empty_text, style="dim"), overflow="fold")
        return
    order = _terminal_order(rows, kept)
    columns = [rows.columns[i] for i in order]
    kept = [[row[i] for i in order] for row in kept]
    kinds = [rows.kinds.get(c) or ("code" if _code_name(c) else None) for c in columns]
    box = _box_for(stream)
    labels = _file_title_columns(columns, kinds)
    for i in labels:
        _drop_shared_words(kept, i, box.ellipsis)
    cells = [[_display(v, kinds[i], rows.null_text) for i, v in enumerate(row)] for row in kept]
    numeric = [
        kinds[i] == "size" or (any(r[i][2] for r in cells) and all(r[i][2] or r[i][1] == "dim" for r in cells))
        for i in range(len(columns))
    ]
    headers = [one_line(c) for c in columns]

    def out(text: Text | str) -> None:
        console.print(text, no_wrap=True, overflow="ignore", crop=False)

    if view.title:
        out(Text(cut(one_line(view.title), width, box.ellipsis), style="bold"))
    cut_pairs = False
    if view.expanded:
        _write_records(headers, cells, numeric, width, box, out)
        hidden = False
        shown_count = len(headers)
    else:
        naturals = [max([cell_len(r[i][0]) for r in cells], default=0) for i in range(len(headers))]
        # Names, and numbers and times, whose every character counts: never cut (left out whole instead).
        whole = [all(isinstance(r[i], _WHOLE_TYPES) or r[i] is None for r in kept) for i in range(len(headers))]
        keep = [
            k == "name" or (whole[i] and k in (None, "code")) or headers[i] in rows.never_hide
            for i, k in enumerate(kinds)
        ]
        # A URL gets a third of the screen before other columns are left out: cut in the middle, its
        # host and its file name must both stay readable.
        link_floor = max(18, width // 3)
        floors = [_floor(k, i in labels, link_floor) for i, k in enumerate(kinds)]
        caps = [2 * _VALUE_CAP if k == "key" else _VALUE_CAP for k in kinds]
        shown, widths, hidden = fit_columns(
            headers, naturals, keep, width, keep_last=rows.keep_last, floors=floors, caps=caps
        )
        shown_count = len(shown)
        informative = [any(row[i] not in (None, "") for row in kept) for i in range(len(headers))]
        needed = [informative[i] and h in rows.never_hide for i, h in enumerate(headers)]
        if _blocks_instead(rows.cramped, kinds, naturals, shown, widths, informative, needed):
            _write_blocks(headers, cells, width, out)
            hidden, shown_count = False, len(headers)
        else:
            middle = [k == "link" or i in labels for i, k in enumerate(kinds)]
            cut_pairs = _cut_pairs(cells, kinds, dict(zip(shown, widths)), box.ellipsis)
            wrap = [k == "title" for k in kinds]
            _write_grid(headers, cells, numeric, shown, widths, hidden, box, out, middle=middle, wrap=wrap)
    footer = _footer(total, len(kept), len(headers), shown_count, hidden, view, rows.all_hint, cut_pairs)
    if footer:  # on a narrow screen, one line per part rather than a sentence broken anywhere
        lines = [footer] if cell_len(footer) <= width else footer.replace(" — ", "\n").replace(" · ", "\n").split("\n")
        for line in lines:
            console.print(Text(line, style="dim"), overflow="fold")


def _blocks_instead(
    cramped: Cramped,
    kinds: Sequence[str | None],
    naturals: Sequence[int],
    shown: Sequence[int],
    widths: Sequence[int],
    informative: Sequence[bool],
    needed: Sequence[bool] = (),
) -> bool:
    """Whether a table fitted as ``fit_columns`` fitted it is better shown as blocks (see
    ``Rows.cramped``). ``informative``: whether each column holds anything (an empty column left
    out hides nothing); ``needed``: whether it is one of ``Rows.never_hide`` holding anything."""
    if any(needed[i] for i in range(len(needed)) if i not in shown):
        return True
    if cramped == "hide":
        return False
    if any(kinds[i] == "name" and w < naturals[i] for i, w in zip(shown, widths)):
        return True  # a name cut: never, people copy them
    left_out = [i for i in range(len(kinds)) if i not in shown]
    if cramped == "blocks":
        return any(informative[i] for i in left_out)
    return bool(left_out) and all(kinds[i] == "name" for i in shown)  # the names and nothing else


def _write_blocks(
    headers: list[str], cells: list[list[tuple[str, str | None, bool]]], width: int, out: Callable[[Any], None]
) -> None:
    """Each row as a block: its first column (its name) alone on a line, and under it the other
    columns as ``field: value`` pairs, as many to a line as fit. Nothing is cut or left out: a
    name longer than the screen goes on as the terminal wraps it (and copies whole, one line), a
    long value over lines of its own. A pair without a value (an empty detail) says nothing."""
    from rich.text import Text

    for row in cells:
        out(Text(row[0][0], style="bold"))
        pairs = [(headers[i], row[i][0], row[i][1]) for i in range(1, len(headers)) if row[i][0]]
        for line in _pair_lines(pairs, width - len(_BLOCK_INDENT)):
            out(Text(_BLOCK_INDENT) + line)


_BLOCK_INDENT = "  "
_PAIR_GAP = "   "  # between two pairs on one line: wider than the space inside a value ("4.5 kB")


def _pair_lines(pairs: list[tuple[str, str, str | None]], room: int) -> list[Text]:
    """``field: value`` pairs in lines of at most ``room`` cells: each pair whole on a line with
    others while it fits, else on lines of its own, its value wrapped under itself."""
    from rich.cells import cell_len
    from rich.text import Text

    lines: list[Text] = []
    open_line = False  # whether the last line takes another pair (not a long value's)
    for label, value, style in pairs:
        pair = Text(f"{label}: ", style="dim")
        pair.append(value, style=style)
        if open_line and cell_len(lines[-1].plain) + len(_PAIR_GAP) + cell_len(pair.plain) <= room:
            lines[-1].append(_PAIR_GAP)
            lines[-1].append_text(pair)
        elif cell_len(pair.plain) <= room:
            lines.append(pair)
            open_line = True
        else:
            lines.extend(_long_pair(label, value, style, room))
            open_line = False
    return lines


def _long_pair(label: str, value: str, style: str | None, room: int) -> list[Text]:
    """A pair too long for a line: its value wrapped, each line under the first one's start."""
    from rich.cells import cell_len
    from rich.text import Text

    indent = min(cell_len(label) + 2, room // 2)
    parts = wrapped(value, room - indent, whole_words=True)
    lines = [Text(f"{label}: ", style="dim")]
    if cell_len(lines[0].plain) <= indent:  # else a label as long as half the line: its value under it
        lines[0].append(parts.pop(0), style=style)
    for part in parts:
        line = Text(" " * indent)
        line.append(part, style=style)
        lines.append(line)
    return lines


def _floor(kind: str | None, file_title: bool, link_floor: int) -> int:
    """How narrow a column may get before columns are left out."""
    if kind == "link":
        return link_floor
    if kind == "source" or file_title:
        return 18
    if kind in ("old", "new"):  # cut around their difference, a few cells show it: the key stays whole
        return 6
    return _KEY_FLOOR if kind == "key" else _VALUE_FLOOR


def _file_title_columns(columns: Sequence[str], kinds: Sequence[str | None]) -> list[int]:
    """In a table of files (one with a ``link`` column, as ``show`` draws), the columns of their
    titles: what tells one file from the next is at their end, so they are cut in the middle."""
    if "link" not in kinds:
        return []
    return [i for i, (c, k) in enumerate(zip(columns, kinds)) if c == "title" and k is None]


def _drop_shared_words(kept: list[list[Any]], column: int, ellipsis: str) -> None:
    """Drop the words every file title of the table starts with (data.cms.gov repeats the
    dataset's title in each: "County-level ... Beneficiaries : 2023-12-03oc2"), keeping the rest
    after an ellipsis, so the part that tells the files apart is what the column shows. Nothing
    is dropped when a title would be left empty."""
    titles = [row[column] for row in kept]
    if len(titles) < 2 or not all(isinstance(t, str) and t.strip() for t in titles):
        return
    split = [t.split(" ") for t in titles]
    shared = 0
    for words in zip(*split):
        if any(w != words[0] for w in words):
            break
        shared += 1
    rests = [" ".join(words[shared:]).strip() for words in split]
    if shared == 0 or not all(rests):
        return
    for row, rest in zip(kept, rests):
        row[column] = ellipsis + rest


def _write_grid(
    headers: list[str],
    cells: list[list[tuple[str, str | None, bool]]],
    numeric: list[bool],
    shown: list[int],
    widths: list[int],
    hidden: bool,
    box: _Box,
    out: Callable[[Any], None],
    *,
    middle: Sequence[bool] = (),
    wrap: Sequence[bool] = (),
) -> None:
    """The grid: one line per row, but for the columns in ``wrap`` (titles), whose values go on
    over up to ``_TITLE_LINES`` lines (``wrap_ends``)."""
    from rich.cells import cell_len
    from rich.text import Text

    # Where the "…" column goes: after the columns taken from the front.
    split = next((k for k in range(1, len(shown)) if shown[k] != shown[k - 1] + 1), len(shown)) if hidden else None

    def rule(parts: tuple[str, str, str, str]) -> str:
        left, fill, join, right = parts
        segments = [fill * (w + 2) for w in widths]
        if split is not None:
            segments.insert(split, fill * 3)
        return left + join.join(segments) + right

    def line(values: list[tuple[str, str | None]], aligns: list[bool], cuts: list[bool], first: bool = True) -> Text:
        text = Text(box.side)
        pieces = [(v, s, a, w, c) for (v, s), a, w, c in zip(values, aligns, widths, cuts)]
        if split is not None:  # the "…" column on a row's first line only
            pieces.insert(split, (box.ellipsis if first else "", "dim", False, 1, False))
        for value, style, right, w, in_middle in pieces:
            value = (cut_middle if in_middle else cut)(value, w, box.ellipsis)
            pad = " " * (w - cell_len(value))
            text.append(" ")
            if right:
                text.append(pad)
            text.append(value, style=style)
            if not right:
                text.append(pad)
            text.append(" " + box.side)
        return text

    out(rule(box.top))
    aligns = [numeric[i] for i in shown]
    out(line([(headers[i], "bold") for i in shown], aligns, [False] * len(shown)))
    out(rule(box.middle))
    cuts = [bool(middle) and middle[i] for i in shown]
    wraps = [bool(wrap) and wrap[i] for i in shown]
    for row in cells:
        stacks = [
            wrap_ends(row[i][0], w, _TITLE_LINES, box.ellipsis) if wrapping else [row[i][0]]
            for i, w, wrapping in zip(shown, widths, wraps)
        ]
        for k in range(max(map(len, stacks), default=1)):
            values = [(stack[k] if k < len(stack) else "", row[i][1]) for stack, i in zip(stacks, shown)]
            out(line(values, aligns, cuts, first=k == 0))
    out(rule(box.bottom))


def _write_records(
    headers: list[str],
    cells: list[list[tuple[str, str | None, bool]]],
    numeric: list[bool],
    width: int,
    box: _Box,
    out: Callable[[Any], None],
) -> None:
    """One block per record, one line per column (psql's ``\\x``): the view that shows all, so a
    name or a value longer than its side of the screen goes on over more lines, never cut."""
    from rich.cells import cell_len
    from rich.text import Text

    name_width = min(max((cell_len(h) for h in headers), default=1), max(width // 2, 12))
    value_width = max(width - name_width - 3, 8)
    fill = box.top[1]
    for number, row in enumerate(cells, 1):
        label = f"{fill}[ RECORD {number:,} ]"
        out(Text(label + fill * max(width - cell_len(label), 0), style="dim"))
        for i, header in enumerate(headers):
            value, style, _ = row[i]
            names, values = wrapped(header, name_width), wrapped(value, value_width)
            for k in range(max(len(names), len(values))):
                name = names[k] if k < len(names) else ""
                text = Text(name + " " * (name_width - cell_len(name)), style="bold")
                text.append(f" {box.side} ")
                text.append(values[k] if k < len(values) else "", style=style)
                out(text)


_TITLE_LINES = 3  # a title column's most lines a row: titles told apart, rows still scanned at a glance


def wrap_ends(text: str, width: int, most: int, ellipsis: str = "…") -> list[str]:
    """``text`` in at most ``most`` lines of ``width`` cells, broken after spaces (``wrapped``). A
    longer text keeps its start and its end, ``…`` in the last line standing for the middle left
    out: titles that differ only at the end ("... General Information 2023", "... 2024") stay apart."""
    from rich.cells import cell_len

    lines = wrapped(text, width, whole_words=True)
    if len(lines) <= most or width < 2:
        return lines[:most]
    tail, used = "", 0
    for char in reversed(text):
        if used + cell_len(char) > width - 1:
            break
        tail, used = char + tail, used + cell_len(char)
    space = tail.find(" ")
    if 0 <= space < len(tail) // 3:  # a word cut at its start: begin at the next whole one
        tail = tail[space + 1 :]
    return [*lines[: most - 1], ellipsis + tail]


def wrapped(text: str, width: int, *, whole_words: bool = False) -> list[str]:
    """``text`` in lines of at most ``width`` cells, broken after a space where one is near (with
    ``whole_words``, after the line's last space: prose and titles, whose words are read whole)."""
    from rich.cells import cell_len

    lines: list[str] = []
    while cell_len(text) > width:
        end, used = 0, 0
        while used + cell_len(text[end]) <= width:
            used += cell_len(text[end])
            end += 1
        space = text.rfind(" ", 0, end)
        if space >= end // 2 or (whole_words and space > 0):
            end = space + 1
        lines.append(text[:end].rstrip())
        text = text[end:]
    return [*lines, text]


def _terminal_order(rows: Rows, kept: Sequence[Sequence[Any]]) -> list[int]:
    """The order a terminal table shows ``rows``' columns in (see ``Rows.terminal_order``)."""
    index = {c: i for i, c in enumerate(rows.columns)}
    order = [index[c] for c in rows.terminal_order or () if c in index]
    order += [i for i in range(len(rows.columns)) if i not in order]
    if rows.keep_last or not kept:
        return order
    empty = {i for i in order if all(row[i] in (None, "") for row in kept)}
    return [i for i in order if i not in empty] + [i for i in order if i in empty]


def _footer(
    total: int, kept: int, columns: int, shown: int, hidden: bool, view: _TableView, hint: str, cut_pairs: bool = False
) -> str:
    left_out = total - kept
    if not (left_out or hidden or total == 0 or total >= 10 or cut_pairs):
        return ""
    parts = [f"{total:,} row{'' if total == 1 else 's'}"]
    if left_out:
        parts[0] += f", {left_out:,} more rows not shown (--max-rows {view.max_rows})"
    if hidden:
        parts.append(f"{columns:,} columns ({shown:,} shown)")
    text = " · ".join(parts)
    if hidden and view.expand_option:
        text += f" — use {hint} or {view.expand_option} for all"
    elif hidden or left_out:
        text += f" — use {hint} for all"
    elif cut_pairs:  # old and new values were cut: say where they are whole
        text += f" — values cut: use {hint} to see them whole"
    return text
