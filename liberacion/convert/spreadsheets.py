"""Workbooks (.xlsx, legacy .xls, OpenDocument .ods): each sheet with a table becomes CSV from its
header row on, read with python-calamine (one reader for the three formats; about 17x faster than
openpyxl on CMS's workbooks, see benchmarks/readers.py).

calamine holds a whole sheet in memory while it is read, about twice its XML: 1.9 GB for an .xlsx
sheet of 900,000 rows of 20 columns (121 MB on disk), which the format's million rows allow. So
an .xlsx sheet whose XML passes ``SLICE_BYTES`` is read in slices: workbooks of the same parts
whose sheet holds a run of its rows alone, each read by calamine in turn (``_SlicedSheet``), with
the same values, types and positions as one read gives. An .ods whose ``content.xml`` (every sheet
in one part, rows without numbers) passes it is read in slices too, its rows counted as they
stream by; a sheet with grouped rows is read whole. .xls (65,536 rows a sheet) is read whole."""

from __future__ import annotations

import csv
import re
import shutil
import zipfile
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from liberacion.convert.model import DAMAGED, Budget, ConvertOptions, Part, choose, distinct_suffixes, note_skipped
from liberacion.convert.sniff import NAMES
from liberacion.errors import ConversionError, note
from liberacion.limits import WORKBOOK_RATIO

# An .xlsx sheet whose XML is larger than this is read in slices of about this much XML: calamine
# then holds about 100 MB at once (a slice and its rows as Python lists), not twice the sheet's XML.
SLICE_BYTES = 32 * 1024 * 1024
_READ = 4 * 1024 * 1024
_PREFIX = rb"(?:[A-Za-z_][\w.-]*:)?"  # a namespace prefix, as some writers spell every tag (x:row)
_SHEET_DATA = re.compile(rb"<(" + _PREFIX + rb")sheetData\b[^>]*?(/?)>")
_ROOT = re.compile(rb"<(" + _PREFIX + rb")worksheet\b")
MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
RELATION = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def _inspect_workbook(path: Path, fmt: str, options: ConvertOptions, directory: Path, budget: Budget) -> list[Part]:
    """One text part per sheet with a table, written as CSV into ``directory``."""

    erring: set[str] = set()  # the parts holding error cells
    if fmt in ("xlsx", "ods"):
        erring = _check_parts(path, fmt, budget)
    if fmt != "xlsx":
        erring = set()  # only xlsx marks error cells with t="e"; .xls and .ods keep them blank
    # calamine reads every sheet of an .ods as it opens it: a large one's sheets are named here.
    named = _ods_sheet_names(path) if fmt == "ods" and _ods_content(path) > SLICE_BYTES else None
    workbook = _Opened(path, fmt)
    try:
        every = named if named is not None else list(workbook.get().sheet_names)
        # Every sheet's suffix, from the whole workbook: the table names do not depend on --member.
        suffixes = distinct_suffixes(every)
        chosen = list(range(len(every)))
        if options.member:
            chosen = [choose(every, suffixes, options.member, kind="sheet", where=path.name)]
        parts: list[Part] = []
        empty: dict[str, str] = {}
        large = _large_sheets(path) if fmt == "xlsx" else dict.fromkeys(named or [], "content.xml")
        for index in chosen:
            name = every[index]
            target = directory / f"sheet{index}.csv"
            notes: dict[str, Any] | None = None
            if name in large:
                notes = _sliced_sheet_to_csv(_SlicedSheet(path, fmt, name, large[name], directory), erring, target)
            if notes is _WHOLE or name not in large:
                try:
                    sheet = workbook.get().get_sheet_by_name(name)
                    rows = sheet.iter_rows()
                    if erring:
                        rows = _with_errors(rows, _error_cells(path, name, erring), sheet.start)
                except Exception as err:
                    raise ConversionError(f"cannot read sheet {name!r} of {path.name}: {err}") from None
                notes = _sheet_to_csv(name, rows, target)
            if notes is None:
                empty[f"sheet {name!r}"] = "an empty sheet"
            else:
                _say_title(f"{path.name}: sheet {name!r}", notes["title_rows"])
                notes["workbook"] = fmt
                parts.append(Part(suffixes[index], target, "text", notes, f"sheet {name!r}"))
    finally:
        workbook.close()
    if not parts:
        raise ConversionError(f"{path.name} has no sheet with a table")
    if len(parts) == 1:
        parts[0].suffix = None
    if empty:
        for part in parts:
            note_skipped(part.notes, empty)  # said once by the fetch, like skipped zip members
    return parts


def _say_title(label: str, title: list[str]) -> None:
    """Rows above a sheet's header, said as a CSV's title lines are (their text is in the notes)."""
    if title:
        rows = f"{len(title)} row{'' if len(title) == 1 else 's'}"
        note(f"{label}: skipped {rows} above the header: {title[0][:80]!r}")


def _check_parts(path: Path, fmt: str, budget: Budget) -> set[str]:
    """Refuse a workbook before its reader expands it: every XML part is decompressed once, in
    blocks and within the download's budget (``model.Budget``), a part expanding more than
    ``WORKBOOK_RATIO``-fold (its reader would hold it all in memory) is refused as soon as it
    shows, and so is a part that declares entities (a "billion laughs" bomb: real workbooks never
    do). Returns the parts that hold error cells (``t="e"``), which the reader shows as blanks."""
    erring: set[str] = set()
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                scan = _ErrorScan()
                where = f"{path.name}: {info.filename}"
                with zf.open(info) as src:
                    head = src.read(4096)
                    if b"<!ENTITY" in head or b"<!DOCTYPE" in head:
                        raise ConversionError(
                            f"refusing {where}: it declares XML entities, which workbooks never need (an entity bomb?)"
                        )
                    budget.take(len(head))
                    scan.write(head)
                    budget.copy(
                        src, scan, where, compressed=info.compress_size, declared=info.file_size, ratio=WORKBOOK_RATIO
                    )
                if scan.found:
                    erring.add(info.filename)
    except DAMAGED as err:
        raise ConversionError(f"cannot read {path.name} as {NAMES[fmt]}: a damaged or truncated file ({err})") from None
    return erring


class _ErrorScan:
    """A sink for a part's bytes that notes whether it holds an error cell."""

    MARK = b't="e"'

    def __init__(self) -> None:
        self.found = False
        self._tail = b""

    def write(self, block: bytes) -> None:
        if not self.found:
            self.found = self.MARK in self._tail + block[: len(self.MARK)] or self.MARK in block
            self._tail = block[-len(self.MARK) :]


def _error_cells(path: Path, sheet: str, erring: set[str]) -> dict[tuple[int, int], str]:
    """{(row, column): "#N/A"} for the error cells of one sheet of an xlsx (0-based, absolute)."""
    from xml.etree.ElementTree import ParseError

    try:
        return _read_error_cells(path, sheet, erring)
    except (KeyError, ParseError):  # an unusual layout: the cells stay blank (NULL), uncounted
        return {}


def _sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """{sheet name: the zip part holding its XML} of an .xlsx."""
    import posixpath
    from xml.etree.ElementTree import iterparse

    # Entities were refused by _check_parts, and ElementTree never fetches external ones.
    ids = {e.get("name"): e.get(RELATION) for _, e in iterparse(zf.open("xl/workbook.xml")) if e.tag == f"{MAIN}sheet"}
    rels = {e.get("Id"): e.get("Target") or "" for _, e in iterparse(zf.open("xl/_rels/workbook.xml.rels"))}
    parts = {}
    for name, rid in ids.items():
        target = rels.get(rid or "", "")
        if name is not None and target:
            parts[name] = target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
    return parts


def _large_sheets(path: Path) -> dict[str, str]:
    """{sheet name: its part} of the sheets whose XML is larger than ``SLICE_BYTES``."""
    from xml.etree.ElementTree import ParseError

    try:
        with zipfile.ZipFile(path) as zf:
            sizes = {info.filename: info.file_size for info in zf.infolist()}
            parts = _sheet_parts(zf)
    except (KeyError, ParseError):  # an unusual layout: calamine reads each sheet whole, as before
        return {}
    return {name: part for name, part in parts.items() if sizes.get(part, 0) > SLICE_BYTES}


class _Opened:
    """The workbook as calamine opens it, opened when first asked for."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self._workbook: Any = None

    def get(self) -> Any:
        import python_calamine

        if self._workbook is None:
            try:
                self._workbook = python_calamine.CalamineWorkbook.from_path(str(self.path))
            except Exception as err:  # calamine's errors: not a workbook after all, encrypted, corrupt
                raise ConversionError(f"cannot read {self.path.name} as {NAMES[self.fmt]}: {err}") from None
        return self._workbook

    def close(self) -> None:
        if self._workbook is not None:
            self._workbook.close()


def _ods_content(path: Path) -> int:
    """Bytes of an .ods's ``content.xml``, where all its sheets are (0 when it has none)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.getinfo("content.xml").file_size
    except KeyError:
        return 0


def _ods_sheet_names(path: Path) -> list[str]:
    """The names of an .ods's sheets, in order, read from its ``content.xml`` as it streams by."""
    from html import unescape

    names: list[str] = []
    with zipfile.ZipFile(path) as zf, zf.open("content.xml") as src:
        pending = b""
        while block := src.read(_READ):
            pending += block
            cut = pending.rfind(b"<")  # a tag cut in two by the read waits for the next block
            whole, pending = (pending[:cut], pending[cut:]) if cut >= 0 else (pending, b"")
            for table in _TABLE.finditer(whole):
                label = _TABLE_NAME.search(table.group(1))
                if label is not None:
                    names.append(unescape(label.group(1).decode("utf-8", "replace")))
        for table in _TABLE.finditer(pending):
            label = _TABLE_NAME.search(table.group(1))
            if label is not None:
                names.append(unescape(label.group(1).decode("utf-8", "replace")))
    return names


def _read_error_cells(path: Path, sheet: str, erring: set[str]) -> dict[tuple[int, int], str]:
    from xml.etree.ElementTree import iterparse

    main = MAIN
    cells: dict[tuple[int, int], str] = {}
    with zipfile.ZipFile(path) as zf:
        part = _sheet_parts(zf).get(sheet, "")
        if part not in erring:
            return cells
        for _, element in iterparse(zf.open(part)):
            if element.tag == f"{main}c" and element.get("t") == "e":
                match = re.fullmatch(r"([A-Z]+)([0-9]+)", element.get("r") or "")
                value = element.findtext(f"{main}v")
                if match and value:
                    column = 0
                    for letter in match.group(1):
                        column = column * 26 + ord(letter) - 64
                    cells[(int(match.group(2)) - 1, column - 1)] = value.strip()
            if element.tag == f"{main}row":
                element.clear()  # a sheet of a million rows is never held whole
    return cells


def _with_errors(rows: Any, errors: dict[tuple[int, int], str], start: Any) -> Any:
    """The reader's rows with each error cell's code (``#N/A``, ``#DIV/0!``...) where it shows a
    blank: the code is a missing-value marker, so the cell becomes NULL and is counted. ``start``:
    the sheet's first (row, column), read as the rows are (a sliced sheet knows it once its first
    slice is read)."""
    if not errors:
        yield from rows
        return
    by_row: dict[int, dict[int, str]] = {}
    for (row, column), code in errors.items():
        by_row.setdefault(row, {})[column] = code
    # The reader yields rows from the sheet's first row, and columns from its first used column.
    for index, row in enumerate(rows):
        codes = by_row.get(index)
        if codes:
            row = list(row)
            for column, code in codes.items():
                column -= start[1]
                if 0 <= column < len(row) and row[column] in (None, ""):
                    row[column] = code
        yield row


class _Reframe(Exception):
    """A slice of a sheet holds a cell left of the columns the slices before it began with."""

    def __init__(self, column: int) -> None:
        super().__init__(column)
        self.column = column


def _sliced_sheet_to_csv(sheet: _SlicedSheet, erring: set[str], target: Path) -> dict[str, Any] | None:
    """``_sheet_to_csv`` of a sheet read in slices. The sheet's first column is known only once
    every slice is read: when a later slice begins further left (a note in column A under a table
    from column B), the sheet is written again from that column, as one read would give it."""
    errors = _error_cells(sheet.path, sheet.name, erring) if erring else {}
    first: int | None = None
    while True:
        start = [0, 0]  # filled in by the first slice, before any row is yielded
        rows = _with_errors(sheet.rows(first, start), errors, start)
        try:
            return _sheet_to_csv(sheet.name, rows, target)
        except _Reframe as moved:
            first = moved.column
        except _Unsliced:
            return _WHOLE


class _Unsliced(Exception):
    """A sheet laid out in a way its slices would not read as one read does (.ods row groups)."""


_WHOLE: dict[str, Any] = {}  # _sliced_sheet_to_csv's answer for a sheet to read whole after all


class _SlicedSheet:
    """An .xlsx sheet too large to read whole, read as workbooks that each hold a run of its rows.

    Each slice is the sheet's XML up to its ``<sheetData>``, whole rows of about ``SLICE_BYTES``,
    and the closing tags (the last slice the sheet's own tail), in a copy of the workbook's other
    parts (``_base``). A row keeps its ``r`` attributes, so calamine places every cell where one
    read of the sheet would: ``rows`` yields from the sheet's first row, columns from its first
    used one, as ``iter_rows`` does."""

    def __init__(self, path: Path, fmt: str, name: str, part: str, directory: Path) -> None:
        self.path, self.fmt, self.name, self.part, self.directory = path, fmt, name, part, directory

    def rows(self, first: int | None, start: list[int]) -> Iterator[list[Any]]:
        """The sheet's rows, from column ``first`` (None: the first slice's first column, put in
        ``start``). Raises ``_Reframe`` at a slice that begins left of it."""
        import python_calamine

        base = self._base()
        slice_path = self.directory / f"slice.{self.fmt}"
        at = 0  # the next row to yield
        slices = self._slices() if self.fmt == "xlsx" else _ods_slices(self.path, self.name)
        try:
            for xml, offset in slices:
                shutil.copyfile(base, slice_path)
                with zipfile.ZipFile(slice_path, "a", zipfile.ZIP_STORED) as zf:
                    zf.writestr(self.part, xml)
                del xml
                try:
                    workbook = python_calamine.CalamineWorkbook.from_path(str(slice_path))
                    try:
                        sheet = workbook.get_sheet_by_name(self.name)
                        corner = sheet.start
                        # The slice's own rows alone: the rows above it are other slices'.
                        values = sheet.to_python(skip_empty_area=True) if corner is not None else []
                    finally:
                        workbook.close()
                except Exception as err:
                    raise ConversionError(f"cannot read sheet {self.name!r} of {self.path.name}: {err}") from None
                if corner is None or not values:
                    continue
                corner = (corner[0] + offset, corner[1])  # an .ods slice's rows count from its own first
                if first is None:
                    first = start[1] = corner[1]
                if corner[1] < first:
                    raise _Reframe(corner[1])
                start[1] = first
                pad = [""] * (corner[1] - first)
                for _ in range(at, corner[0]):
                    yield []  # empty rows above the slice's first, as one read yields them
                yield from (pad + row if pad else row for row in values)
                at = corner[0] + len(values)
        finally:
            slice_path.unlink(missing_ok=True)
            base.unlink(missing_ok=True)

    def _base(self) -> Path:
        """The workbook without this sheet's XML, every other sheet left empty: each slice is a
        copy of it with its own sheet XML added."""
        base = self.directory / "base.xlsx"
        with zipfile.ZipFile(self.path) as src, zipfile.ZipFile(base, "w", zipfile.ZIP_DEFLATED) as dst:
            sheets = set(_sheet_parts(src).values()) if self.fmt == "xlsx" else set()
            for info in src.infolist():
                if info.filename == self.part:
                    continue
                if info.filename == "mimetype":  # .ods: first and stored, as readers look for it
                    dst.writestr(info, src.read(info), zipfile.ZIP_STORED)
                    continue
                if info.filename in sheets:  # never read here: calamine reads a sheet only when asked
                    dst.writestr(info.filename, _EMPTY_SHEET)
                    continue
                with src.open(info) as part, dst.open(info.filename, "w", force_zip64=True) as out:
                    shutil.copyfileobj(part, out, _READ)
        return base

    def _slices(self) -> Iterator[tuple[bytes, int]]:
        """The sheet's XML as slices of whole rows, each a sheet of its own."""
        with zipfile.ZipFile(self.path) as zf, zf.open(self.part) as src:
            pending = bytearray()
            while True:  # up to <sheetData>: every slice begins with it
                block = src.read(min(_READ, SLICE_BYTES))
                pending += block
                found = _SHEET_DATA.search(pending)
                if found or not block or len(pending) > SLICE_BYTES:
                    break
            root = _ROOT.search(pending)
            if found is None or found.group(2) or root is None:
                # No rows, or a layout not understood here: one slice, the sheet as calamine reads it.
                yield bytes(pending) + src.read(), 0
                return
            head = bytes(pending[: found.end()])
            del pending[: found.end()]
            tag = found.group(1)
            row_end = b"</" + tag + b"row>"
            closing = b"</" + tag + b"sheetData></" + root.group(1) + b"worksheet>"
            while block := src.read(min(_READ, SLICE_BYTES)):
                pending += block
                if len(pending) < SLICE_BYTES:
                    continue
                cut = pending.rfind(row_end)
                if cut < 0:
                    continue  # one row longer than a slice: read on to its end
                cut += len(row_end)
                yield head + bytes(pending[:cut]) + closing, 0
                del pending[:cut]
            yield head + bytes(pending), 0


_SPREADSHEET = re.compile(rb"<office:spreadsheet\b[^>]*>")
_TABLE = re.compile(rb"<table:table(?=[\s/>])([^>]*?)(/?)>")  # a sheet, not its rows or cells
_TABLE_NAME = re.compile(rb'\btable:name="([^"]*)"')
_ODS_ROWS = re.compile(rb"<table:table-row\b([^>]*)>")
_ODS_REPEATED = re.compile(rb'table:number-rows-repeated="([0-9]+)"')
_ODS_ROW_END = b"</table:table-row>"
_ODS_TABLE_END = b"</table:table>"
_ODS_CLOSING = b"</table:table></office:spreadsheet></office:body></office:document-content>"
# Rows inside these are not cut apart here: such a sheet is read whole, as before.
_ODS_NESTED = (b"table:table-row-group", b"table:table-header-rows", b"table:table-rows")


def _ods_slices(path: Path, name: str) -> Iterator[tuple[bytes, int]]:
    """An .ods sheet as slices: a ``content.xml`` holding a run of its rows alone, and the sheet's
    row the run begins at (.ods rows carry no numbers; a row repeated N times counts N). Raises
    ``_Unsliced`` when the sheet nests its rows (groups, header rows) or is not laid out as expected."""
    from html import unescape

    with zipfile.ZipFile(path) as zf, zf.open("content.xml") as src:
        pending = bytearray()
        step = min(_READ, SLICE_BYTES)

        def more() -> bool:
            block = src.read(step)
            pending.extend(block)
            return bool(block)

        while (found := _SPREADSHEET.search(pending)) is None:
            if not more() or len(pending) > 4 * SLICE_BYTES:
                raise _Unsliced
        head = bytes(pending[: found.end()])
        del pending[: found.end()]
        while True:  # on to this sheet's <table:table>, past the other sheets
            table = _TABLE.search(pending)
            if table is None:
                keep = pending.rfind(b"<")  # a tag cut in two by the read
                del pending[: keep if keep >= 0 else len(pending)]
                if not more():
                    raise _Unsliced
                continue
            label = _TABLE_NAME.search(table.group(1))
            if label is not None and unescape(label.group(1).decode("utf-8", "replace")) == name:
                break
            del pending[: table.end()]
        if table.group(2):  # <table:table .../>: a sheet without rows
            return
        opening = head + bytes(pending[table.start() : table.end()])
        del pending[: table.end()]
        while (row := pending.find(b"<table:table-row")) < 0:  # the columns' declarations go with every slice
            if not more():
                raise _Unsliced
        opening += bytes(pending[:row])
        del pending[:row]
        if any(mark in opening for mark in _ODS_NESTED):
            raise _Unsliced
        offset = 0
        while True:
            while len(pending) < SLICE_BYTES and _ODS_TABLE_END not in pending:
                if not more():
                    raise _Unsliced  # the sheet never ends
            end = pending.find(_ODS_TABLE_END)
            if end >= 0:
                cut = end  # the sheet's last rows
            else:
                cut = pending.rfind(_ODS_ROW_END)
                if cut < 0:
                    if not more():
                        raise _Unsliced
                    continue  # one row longer than a slice: read on to its end
                cut += len(_ODS_ROW_END)
            rows = bytes(pending[:cut])
            del pending[:cut]
            if any(mark in rows for mark in _ODS_NESTED):
                raise _Unsliced
            yield opening + rows + _ODS_CLOSING, offset
            if end >= 0:
                return
            offset += sum(_repeats(match.group(1)) for match in _ODS_ROWS.finditer(rows))


def _repeats(attributes: bytes) -> int:
    found = _ODS_REPEATED.search(attributes)
    return int(found.group(1)) if found else 1


_EMPTY_SHEET = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>'
)


def _sheet_to_csv(sheet_name: str, rows: Any, target: Path) -> dict[str, Any] | None:
    """Write a sheet's rows as CSV from its header row on; title rows above it become notes."""
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
    names = [_cell(v) for v in header[:width]]
    bands = _header_bands(head[:header_at], names)
    if bands:
        names = _banded_names(names, bands)
    title = [" ".join(str(v) for v in row if v not in (None, "")) for row in head[: header_at - len(bands)]]
    with open(target, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(names)
        for row in chain(head[header_at + 1 :], rows):  # never a list of every row: a sheet may be large
            cells = [_cell(v) for v in row[:width]]
            if any(cells):
                writer.writerow(cells + [""] * (width - len(cells)))
    notes: dict[str, Any] = {"sheet": sheet_name, "title_rows": [t for t in title if t]}
    if bands:
        notes["header_rows"] = len(bands) + 1
    return notes


def _header_bands(above: list[tuple[Any, ...]], names: list[str]) -> list[list[str]]:
    """The rows right above a header that label groups of its columns, as CMS's state tables
    have them ("All Males" over 16 columns, "0 to 1" ... "6+" under it, then the measure's name
    repeated): each as one label per column, a merged cell's label carried over its span. Only
    when the header repeats names that the bands tell apart; otherwise none (titles stay notes).
    """
    width = len(names)
    bands: list[list[str]] = []
    for row in reversed(above):
        cells = [_cell(v) for v in row[:width]]
        cells += [""] * (width - len(cells))
        filled = [i for i, v in enumerate(cells) if v]
        if not filled or filled == [0]:  # an empty row or a title ends the header
            break
        bands.insert(0, cells)
    for at, band in enumerate(bands):  # top down: a label spans on while the bands above it do
        for i in range(1, width):
            if not band[i] and band[i - 1] and names[i] and all(b[i] == b[i - 1] for b in bands[:at]):
                band[i] = band[i - 1]
    bands = [band for band in bands if len({v for v in band if v}) > 1]  # one label over all says nothing
    if len(set(names)) == width or len(set(_banded_names(names, bands))) <= len(set(names)):
        return []
    return bands


def _banded_names(names: list[str], bands: list[list[str]]) -> list[str]:
    """Each column's name followed by its band labels, top down: ``Per Capita Spending All Males 0 to 1``."""
    return [" ".join([name, *(band[i] for band in bands if band[i])]) if name else name for i, name in enumerate(names)]


def _cell(value: Any) -> str:
    from datetime import date, datetime, time, timedelta

    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.isoformat() if value.time() != datetime.min.time() else value.date().isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    # Trimmed, unlike a CSV's text: CMS's workbooks pad every cell ("Alabama ", "01 ", "* ").
    return str(value).strip()
