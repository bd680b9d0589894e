"""Workbooks (.xlsx, legacy .xls, OpenDocument .ods): each sheet with a table becomes CSV from its
header row on, read with python-calamine (one reader for the three formats; about 17x faster than
openpyxl on CMS's workbooks, see benchmarks/readers.py). A sheet is held in memory while it is
read, which the formats' size limits (about a million rows a sheet) keep bounded."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Any

from liberacion.convert.model import DAMAGED, Budget, ConvertOptions, Part, _matches
from liberacion.convert.sniff import NAMES
from liberacion.errors import ConversionError
from liberacion.limits import WORKBOOK_RATIO
from liberacion.naming import sanitize_identifier


def _inspect_workbook(path: Path, fmt: str, options: ConvertOptions, directory: Path, budget: Budget) -> list[Part]:
    """One text part per sheet with a table, written as CSV into ``directory``."""
    import python_calamine

    if fmt in ("xlsx", "ods"):
        _check_parts(path, fmt, budget)
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except Exception as err:  # calamine's errors: not a workbook after all, encrypted, corrupt
        raise ConversionError(f"cannot read {path.name} as {NAMES[fmt]}: {err}") from None
    try:
        names = [n for n in workbook.sheet_names if options.member is None or _matches(n, options.member)]
        if options.member and not names:
            raise ConversionError(f"{path.name} has no sheet named {options.member!r}")
        parts = []
        for index, name in enumerate(names):
            target = directory / f"sheet{index}.csv"
            try:
                rows = workbook.get_sheet_by_name(name).iter_rows()
            except Exception as err:
                raise ConversionError(f"cannot read sheet {name!r} of {path.name}: {err}") from None
            notes = _sheet_to_csv(name, rows, target)
            if notes is not None:
                notes["workbook"] = fmt
                parts.append(Part(sanitize_identifier(name), target, "text", notes))
    finally:
        workbook.close()
    if not parts:
        raise ConversionError(f"{path.name} has no sheet with a table")
    if len(parts) == 1:
        parts[0].suffix = None
    return parts


def _check_parts(path: Path, fmt: str, budget: Budget) -> None:
    """Refuse a workbook before its reader expands it: every XML part is decompressed once, in
    blocks and within the download's budget (``model.Budget``), a part expanding more than
    ``WORKBOOK_RATIO``-fold (its reader would hold it all in memory) is refused as soon as it
    shows, and so is a part that declares entities (a "billion laughs" bomb: real workbooks never
    do)."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                where = f"{path.name}: {info.filename}"
                with zf.open(info) as src:
                    head = src.read(4096)
                    if b"<!ENTITY" in head or b"<!DOCTYPE" in head:
                        raise ConversionError(
                            f"refusing {where}: it declares XML entities, which workbooks never need (an entity bomb?)"
                        )
                    budget.take(len(head))
                    budget.copy(
                        src, None, where, compressed=info.compress_size, declared=info.file_size, ratio=WORKBOOK_RATIO
                    )
    except DAMAGED as err:
        raise ConversionError(f"cannot read {path.name} as {NAMES[fmt]}: a damaged or truncated file ({err})") from None


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
    title = [" ".join(str(v) for v in row if v not in (None, "")) for row in head[:header_at]]
    with open(target, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([_cell(v) for v in header[:width]])
        for row in [*head[header_at + 1 :], *rows]:
            cells = [_cell(v) for v in row[:width]]
            if any(cells):
                writer.writerow(cells + [""] * (width - len(cells)))
    return {"sheet": sheet_name, "title_rows": [t for t in title if t]}


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
