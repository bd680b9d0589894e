"""Workbooks (.xlsx, legacy .xls, OpenDocument .ods): each sheet with a table becomes CSV from its
header row on, read with python-calamine (one reader for the three formats; about 17x faster than
openpyxl on CMS's workbooks, see benchmarks/readers.py). A sheet is held in memory while it is
read, which the formats' size limits (about a million rows a sheet) keep bounded."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Any

from liberacion.convert.model import DAMAGED, Budget, ConvertOptions, Part, choose, distinct_suffixes, note_skipped
from liberacion.convert.sniff import NAMES
from liberacion.errors import ConversionError
from liberacion.limits import WORKBOOK_RATIO


def _inspect_workbook(path: Path, fmt: str, options: ConvertOptions, directory: Path, budget: Budget) -> list[Part]:
    """One text part per sheet with a table, written as CSV into ``directory``."""
    import python_calamine

    erring: set[str] = set()  # the parts holding error cells
    if fmt in ("xlsx", "ods"):
        erring = _check_parts(path, fmt, budget)
    if fmt != "xlsx":
        erring = set()  # only xlsx marks error cells with t="e"; .xls and .ods keep them blank
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except Exception as err:  # calamine's errors: not a workbook after all, encrypted, corrupt
        raise ConversionError(f"cannot read {path.name} as {NAMES[fmt]}: {err}") from None
    try:
        every = list(workbook.sheet_names)
        # Every sheet's suffix, from the whole workbook: the table names do not depend on --member.
        suffixes = distinct_suffixes(every)
        chosen = list(range(len(every)))
        if options.member:
            chosen = [choose(every, suffixes, options.member, kind="sheet", where=path.name)]
        parts: list[Part] = []
        empty: dict[str, str] = {}
        for index in chosen:
            name = every[index]
            target = directory / f"sheet{index}.csv"
            try:
                sheet = workbook.get_sheet_by_name(name)
                rows = sheet.iter_rows()
                if erring:
                    rows = _with_errors(rows, _error_cells(path, name, erring), sheet.start)
            except Exception as err:
                raise ConversionError(f"cannot read sheet {name!r} of {path.name}: {err}") from None
            notes = _sheet_to_csv(name, rows, target)
            if notes is None:
                empty[f"sheet {name!r}"] = "an empty sheet"
            else:
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


def _read_error_cells(path: Path, sheet: str, erring: set[str]) -> dict[tuple[int, int], str]:
    import posixpath
    import re
    from xml.etree.ElementTree import iterparse

    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    rel = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    cells: dict[tuple[int, int], str] = {}
    with zipfile.ZipFile(path) as zf:
        # Entities were refused by _check_parts, and ElementTree never fetches external ones.
        ids = {e.get("name"): e.get(rel) for _, e in iterparse(zf.open("xl/workbook.xml")) if e.tag == f"{main}sheet"}
        rels = {e.get("Id"): e.get("Target") or "" for _, e in iterparse(zf.open("xl/_rels/workbook.xml.rels"))}
        target = rels.get(ids.get(sheet) or "", "")
        part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
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


def _with_errors(rows: Any, errors: dict[tuple[int, int], str], start: tuple[int, int]) -> Any:
    """The reader's rows with each error cell's code (``#N/A``, ``#DIV/0!``...) where it shows a
    blank: the code is a missing-value marker, so the cell becomes NULL and is counted."""
    if not errors:
        yield from rows
        return
    by_row: dict[int, dict[int, str]] = {}
    for (row, column), code in errors.items():
        by_row.setdefault(row, {})[column - start[1]] = code
    # The reader yields rows from the sheet's first row, and columns from its first used column.
    for index, row in enumerate(rows):
        codes = by_row.get(index)
        if codes:
            row = list(row)
            for column, code in codes.items():
                if 0 <= column < len(row) and row[column] in (None, ""):
                    row[column] = code
        yield row


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
        for row in [*head[header_at + 1 :], *rows]:
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
    return str(value).strip()
