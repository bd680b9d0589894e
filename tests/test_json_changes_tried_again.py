"""JSON documents read by DuckDB from the list's own bytes, tried again: a record naming a key twice,
and keys that hold the mark of the work copy's renamed keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from liberacion.convert import ConvertOptions, convert_part, inspect

META = {"disclaimer": "d", "results": {"skip": 0, "limit": 2, "total": 2}}


def convert(path: Path, out: Path) -> tuple[list[str], list[tuple[Any, ...]], Any]:
    """(column names, rows in order, the report) of the file's table."""
    part = inspect(path, ConvertOptions(), work=out / "work")[0]
    report = convert_part(part, out / "table", kv_metadata={}, options=ConvertOptions())
    con = duckdb.connect()
    data = f"read_parquet('{out}/table/data-*.parquet')"
    names = [name for name, *_ in con.execute(f"DESCRIBE FROM {data}").fetchall()]
    return names, con.execute(f"FROM {data}").fetchall(), report


def test_an_openfda_record_naming_a_key_twice_keeps_its_last_value(tmp_path: Path) -> None:
    # The streaming parse kept the last value; DuckDB's reader refuses the record as it reads it.
    path = tmp_path / "event.json"
    path.write_text('{"meta": ' + json.dumps(META) + ', "results": [{"n": 1, "a": 1, "a": 2}, {"n": 2, "a": 3}]}')
    names, rows, report = convert(path, tmp_path / "out")
    assert names == ["n", "a"]
    assert rows == [(1, 2), (2, 3)]
    assert report.notes["meta"] == META
    assert not list((tmp_path / "out").rglob(".records*"))


def test_a_plain_array_record_naming_a_key_twice_keeps_its_last_value(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    path.write_text('[{"a": 1, "a": 2}, {"a": 3}]')
    assert convert(path, tmp_path / "out")[:2] == (["a"], [(2,), (3,)])


def test_a_key_holding_the_renamed_keys_mark_is_not_taken_for_one(tmp_path: Path) -> None:
    # "a\u24002" is a key of the file, not the work copy's name for the second spelling of "a".
    path = tmp_path / "lines.jsonl"
    path.write_text('{"A": 1, "a": 2, "a\u24002": 3}\n{"A": 4, "a": 5, "a\u24002": 6}\n', encoding="utf-8")
    names, rows, report = convert(path, tmp_path / "out")
    assert rows == [(1, 2, 3), (4, 5, 6)]
    assert [column["original"] for column in report.columns.values()] == ["A", "a", "a\u24002"]
    assert len(set(names)) == 3


def test_a_document_key_holding_the_mark_keeps_its_name(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"meta": META, "results": [{"a\u24001": 1, "b": 2}]}), encoding="utf-8")
    _names, rows, report = convert(path, tmp_path / "out")
    assert rows == [(1, 2)]
    assert [column["original"] for column in report.columns.values()] == ["a\u24001", "b"]
