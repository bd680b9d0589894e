"""Excel workbooks (.xlsx): each sheet with a table becomes CSV from its header row on."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from liberacion.convert.model import ConvertOptions, Part, _matches
from liberacion.errors import ConversionError
from liberacion.naming import sanitize_identifier


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
