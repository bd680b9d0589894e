"""JSON documents whose records are one member's list (openFDA ``{meta, results}``, Socrata
``rows.json``): DuckDB reads the list's own bytes, and any document it cannot read that way goes
to the streaming parse, with the same table either way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from liberacion.convert import ConvertOptions, convert_part, inspect, json_document, json_records
from liberacion.errors import ConversionError


def convert(path: Path, out: Path) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]], Any]:
    """(column types, rows in order, the report) of the document's table."""
    part = inspect(path, ConvertOptions(), work=out / "work")[0]
    report = convert_part(part, out / "table", kv_metadata={}, options=ConvertOptions())
    con = duckdb.connect()
    data = f"read_parquet('{out}/table/data-*.parquet')"
    types = [(name, type_) for name, type_, *_ in con.execute(f"DESCRIBE FROM {data}").fetchall()]
    return types, con.execute(f"FROM {data}").fetchall(), report


@pytest.fixture
def parsed_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The streaming parse alone, as before DuckDB read the list itself."""
    monkeypatch.setattr(json_document, "find_record_list", lambda path: None)


def _refuse(*args: object) -> None:
    raise AssertionError("the document was parsed in Python")


@pytest.fixture
def never_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the document goes to the streaming parse."""
    monkeypatch.setattr(json_records, "_json_records_to_lines", _refuse)


def same_either_way(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, read_by_duckdb: bool = False
) -> tuple[Any, Any]:
    """Both reports, after checking that DuckDB reading the list and the streaming parse make the
    same table; ``read_by_duckdb``: and that the first did not fall back to the parse."""
    with monkeypatch.context() as patch:
        if read_by_duckdb:
            patch.setattr(json_records, "_json_records_to_lines", _refuse)
        types, rows, report = convert(path, tmp_path / "fast")
    with monkeypatch.context() as patch:
        patch.setattr(json_document, "find_record_list", lambda path: None)
        parsed_types, parsed_rows, parsed_report = convert(path, tmp_path / "parsed")
    assert types == parsed_types
    assert rows == parsed_rows
    assert report.columns == parsed_report.columns and report.rows == parsed_report.rows
    return report, parsed_report


def write(tmp_path: Path, document: object | str, name: str = "doc.json") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document, indent=1))
    return path


SOCRATA_META = {
    "view": {
        "id": "abcd-1234",
        "columns": [
            {"fieldName": ":sid", "name": "sid"},
            {"fieldName": ":id", "name": "id"},
            {"fieldName": "zip_code", "name": "ZIP Code", "description": "Five digits"},
            {"fieldName": "deaths", "name": "Deaths"},
            {"fieldName": "location", "name": "Location"},
        ],
    }
}


def test_real_socrata_rows_json_is_read_by_duckdb_into_the_same_table(
    realdata: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = realdata / "socrata/is477-fa24-PHS/cdc.json"
    report, _ = same_either_way(path, tmp_path, monkeypatch, read_by_duckdb=True)
    assert report.rows == 10_380
    assert report.notes["format"] == "socrata-json" and report.notes["view"] == "pwn4-m3yp"
    assert any(column.get("description") for column in report.columns.values())


def test_real_openfda_file_is_read_by_duckdb_into_the_same_table(
    realdata: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = realdata / "fda/Business-Intelligence-Coursework/animalandveterinary-event-0001-of-0001.json"
    report, parsed = same_either_way(path, tmp_path, monkeypatch, read_by_duckdb=True)
    assert report.rows == 204 and report.notes["meta"] == parsed.notes["meta"]
    assert report.notes["meta"]["last_updated"] == "2021-11-28"


def test_socrata_rows_keep_leading_zeros_long_numbers_and_nested_values(tmp_path: Path, never_parsed: None) -> None:
    rows = [
        ["row-1", "a", "02115", "123456789012345678901234", [None, "42.36", "-71.06", None, False]],
        ["row-2", "b", "10001", None, None],
        ["row-3", "c", "00501"],  # shorter than the columns: nulls at its end
    ]
    path = write(tmp_path, {"meta": SOCRATA_META, "data": rows})
    types, got, report = convert(path, tmp_path / "out")
    assert [name for name, _ in types] == ["zip_code", "deaths", "location"]
    assert dict(types)["zip_code"] == "VARCHAR" and dict(types)["deaths"] == "VARCHAR"
    assert [row[:2] for row in got] == [("02115", "123456789012345678901234"), ("10001", None), ("00501", None)]
    assert report.columns["zip_code"]["description"] == "Five digits"


def test_a_socrata_row_that_is_not_a_list_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, {"meta": SOCRATA_META, "data": [["r", "i", "02115", "1", None], {"zip_code": "1"}]})
    with pytest.raises(ConversionError, match=r"row 2 of its 'data' list is an object, not a list of values"):
        convert(path, tmp_path / "out")


def test_meta_and_data_without_socrata_columns_is_a_list_of_records(tmp_path: Path) -> None:
    # An API's {meta, data} answer: its records are objects, and meta says nothing of columns.
    path = write(tmp_path, {"meta": {"status": "ok", "count": 2}, "data": [{"zip": "02115"}, {"zip": "10001"}]})
    types, got, _ = convert(path, tmp_path / "out")
    assert types == [("zip", "VARCHAR")] and got == [("02115",), ("10001",)]


@pytest.mark.parametrize(
    "document",
    [
        # the list is not the last member: its bytes alone are not the records
        '{"meta": {"results": {"total": 2}}, "results": [{"a": "1"}, {"a": "2"}], "more": [3]}',
        # meta after the records
        '{"results": [{"a": "1"}, {"a": "2"}], "meta": {"results": {"total": 2}}}',
        # a record's "" key, renamed by the parse
        '{"meta": {}, "results": [{"a": "1", "": "x"}, {"a": "2", "": "y"}]}',
    ],
    ids=["list-then-more", "meta-last", "empty-key"],
)
def test_documents_duckdb_cannot_read_by_their_list_go_to_the_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: str
) -> None:
    path = write(tmp_path, document)
    report, _ = same_either_way(path, tmp_path, monkeypatch)
    assert report.rows == 2


def test_a_long_meta_full_of_brackets_and_quotes_is_skipped_exactly(tmp_path: Path, never_parsed: None) -> None:
    tricky = {"text": 'a "quoted" ]} and [{ inside \\ strings', "nested": [[{"x": "]"}]] * 3}
    meta = {"results": {"total": 2}, "notes": [tricky] * 20_000}  # about 2 MB: the head is read further
    path = write(tmp_path, {"meta": meta, "results": [{"a": "1"}, {"a": "2"}]})
    assert path.stat().st_size > 2 * 1024 * 1024
    _, got, report = convert(path, tmp_path / "out")
    assert got == [(1,), (2,)] and report.notes["format"] == "openfda"
    assert report.notes["meta"]["notes"][0] == tricky


def test_an_element_that_is_not_a_record_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, {"meta": {}, "results": [{"a": "1"}, 2]})
    with pytest.raises(ConversionError, match=r"element 2 of its 'results' list is a number, not an object"):
        convert(path, tmp_path / "out")


def test_an_empty_list_holds_no_records(tmp_path: Path) -> None:
    path = write(tmp_path, {"meta": {"results": {"total": 0}}, "results": []})
    with pytest.raises(ConversionError, match="holds no records"):
        convert(path, tmp_path / "out")
    socrata = write(tmp_path, {"meta": SOCRATA_META, "data": []}, "socrata.json")
    with pytest.raises(ConversionError, match="holds no records"):
        convert(socrata, tmp_path / "socrata")


def test_a_byte_order_mark_and_a_truncated_document(tmp_path: Path, never_parsed: None) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"meta": {}, "results": [{"a": "x"}]}).encode())
    assert convert(path, tmp_path / "out")[1] == [("x",)]


def test_a_truncated_document_is_refused_as_broken(tmp_path: Path) -> None:
    text = json.dumps({"meta": {}, "results": [{"a": "x"}, {"a": "y"}]})
    path = write(tmp_path, text[: text.index('{"a": "y"') + 5] + "]}")  # cut inside a record, closed as if whole
    with pytest.raises(ConversionError, match="not valid JSON"):
        convert(path, tmp_path / "out")


def test_the_list_is_copied_where_the_kernel_cannot_copy_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, never_parsed: None
) -> None:
    import errno
    import os

    calls = []

    def cross_device(src: int, dst: int, count: int, offset_src: int) -> int:
        calls.append(count)
        if len(calls) > 1:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return os.write(dst, os.pread(src, count // 3, offset_src))  # a first part, then it refuses

    monkeypatch.setattr(os, "copy_file_range", cross_device)
    records = [{"zip": f"{i:05d}", "n": str(i)} for i in range(2_000)]
    path = write(tmp_path, {"meta": {"results": {"total": 2_000}}, "results": records})
    _, got, _ = convert(path, tmp_path / "out")
    assert len(calls) == 2 and got == [(r["zip"], int(r["n"])) for r in records]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("array.json", json.dumps([{"A": "1", "a": "2", "n": 1.5}, {"A": "3", "a": "4", "n": 2.5}])),
        ("lines.jsonl", '{"A": "1", "a": "2", "n": 1.5}\n{"A": "3", "a": "4", "n": 2.5}\n'),
        (
            "fda.json",
            json.dumps({"meta": {}, "results": [{"A": "1", "a": "2", "n": 1.5}, {"A": "3", "a": "4", "n": 2.5}]}),
        ),
    ],
    ids=["array", "json-lines", "document"],
)
def test_keys_that_differ_only_in_case_keep_their_values(tmp_path: Path, name: str, text: str) -> None:
    # DuckDB's column names ignore case: "a" was read as a column a_1 that matched no key, all NULL.
    path = tmp_path / name
    path.write_text(text)
    types, got, report = convert(path, tmp_path / "out")
    assert [n for n, _ in types] == ["a", "a_2", "n"]
    assert got == [(1, 2, 1.5), (3, 4, 2.5)]
    assert [column["original"] for column in report.columns.values()][:2] == ["A", "a"]


def test_socrata_field_names_that_differ_only_in_case_keep_their_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = {"view": {"id": "abcd-1234", "columns": [{"fieldName": ":id"}, {"fieldName": "X"}, {"fieldName": "x"}]}}
    path = write(tmp_path, {"meta": meta, "data": [["r1", "1", "2"], ["r2", "3", "4"]]})
    same_either_way(path, tmp_path, monkeypatch)
    types, got, _ = convert(path, tmp_path / "again")
    assert [n for n, _ in types] == ["x", "x_2"] and got == [(1, 2), (3, 4)]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("array.json", json.dumps([{"id": "1", "p": {"X": 1, "x": 2}}, {"id": "2", "p": {"X": 3, "x": 4}}])),
        ("lines.jsonl", '{"id": "1", "p": {"X": 1, "x": 2}}\n{"id": "2", "p": {"X": 3, "x": 4}}\n'),
        ("fda.json", json.dumps({"meta": {}, "results": [{"id": "1", "p": [{"X": 1, "x": 2}]}]})),
    ],
    ids=["array", "json-lines", "document"],
)
def test_nested_keys_that_differ_only_in_case_keep_their_values(tmp_path: Path, name: str, text: str) -> None:
    # DuckDB's struct fields ignore case: it refused the file ("Duplicate name in struct").
    path = tmp_path / name
    path.write_text(text)
    types, got, _ = convert(path, tmp_path / "out")
    assert "x_2" in dict(types)["p"]
    first = got[0][1][0] if isinstance(got[0][1], list) else got[0][1]
    assert first == {"X": 1, "x_2": 2}
