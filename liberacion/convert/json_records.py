"""JSON records: an array, JSON Lines, openFDA ``{meta, results}``, Socrata ``rows.json`` or any
``{"results"|"data": [...]}`` document, streamed in bounded memory and typed by ``typed_copy``."""

from __future__ import annotations

import codecs
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import liberacion.convert.typing_rules as rules
from liberacion.convert.model import BLOCK, ConversionReport, ConvertOptions, Part, _Column, _sql_text
from liberacion.convert.typed_copy import _write_typed
from liberacion.errors import ConversionError, one_line
from liberacion.limits import MAX_JSON_DEPTH
from liberacion.naming import quote_ident

if TYPE_CHECKING:
    import duckdb


def _convert_json(
    con: duckdb.DuckDBPyConnection, part: Part, out_dir: Path, kv: dict[str, str], options: ConvertOptions
) -> ConversionReport:
    notes: dict[str, Any] = {"format": part.format}
    path = part.path
    if part.format in ("json-object", "openfda", "socrata-json"):
        path, extra = _records_or_refuse(part.path, out_dir, options)
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
        if "maximum recursion depth" in str(err):  # DuckDB's own limit
            raise ConversionError(f"{part.path.name}: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        if "expected records" in str(err):  # [] or [1, 2]: no objects to be rows
            raise ConversionError(f"{part.path.name} holds no records: its list has no JSON objects") from None
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
    strict = part.suffix is None
    report = _write_typed_json(con, relation, columns, out_dir, kv, options, notes, passthrough, strict)
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
    strict_columns: bool = True,
) -> ConversionReport:
    # Typing SQL refers to source columns by name; JSON keys may need quoting, so alias them first.
    inner = ", ".join(f"{quote_ident(c.source)} AS {quote_ident('c' + str(i))}" for i, c in enumerate(columns))
    aliased = [_Column(f"c{i}", c.name, c.original) for i, c in enumerate(columns)]
    renamed = {f"c{i}": passthrough[c.source] for i, c in enumerate(columns) if c.source in passthrough}
    relation = f"(SELECT {inner} FROM {relation})"
    return _write_typed(con, relation, aliased, out_dir, kv, options, notes, renamed, strict_columns=strict_columns)


def _without_bom(path: Path, out_dir: Path) -> Path:
    with open(path, "rb") as fh:
        if fh.read(3) != codecs.BOM_UTF8:
            return path
        target = out_dir / ".source.json"
        with open(target, "wb") as dst:
            shutil.copyfileobj(fh, dst, BLOCK)
    return target


def _records_or_refuse(path: Path, out_dir: Path, options: ConvertOptions) -> tuple[Path, dict[str, Any]]:
    """``_json_records_to_lines``, with a broken or too deeply nested document as one clear error."""
    import ijson

    try:
        return _json_records_to_lines(path, out_dir, options)
    except RecursionError:
        raise ConversionError(f"{path.name}: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ijson.JSONError as err:
        raise ConversionError(f"{path.name}: not valid JSON ({one_line(err, lines=1, limit=200)})") from None


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
