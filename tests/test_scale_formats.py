"""Formats other than CSV at scale: what a large file needs is read in bounded pieces, and shapes
that only large real files have (wide JSON records, very long or very deep records) convert or are
refused in one clear line. No timing or memory assertions: the pieces themselves are checked."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

import liberacion.convert.spreadsheets as spreadsheets


def query(cli: Any, sql: str) -> list[dict[str, Any]]:
    result = cli("sql", sql, "--format", "json")
    assert result.exit_code == 0, result.stdout + str(result.stderr)
    return json.loads(result.stdout)


def fetch(cli: Any, path: Path, table: str) -> Any:
    return cli("fetch", str(path), "--as", table, "--json")


def failure(result: Any) -> dict[str, Any]:
    assert result.exit_code == 1
    line = json.loads(result.stdout.splitlines()[0])
    assert line["status"] == "failed"
    return line


# --- workbooks -------------------------------------------------------------------------------------


def big_sheet(path: Path, rows: int, *, title: bool = True) -> Path:
    """A CMS-like sheet: a title in A1, the table from column B (dates, numbers, shared strings,
    booleans, error cells), and a footnote in column A below it (without the title: left of every
    column above it)."""
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Data"
    if title:
        sheet["A1"] = "Hospital report, 2024"
    for column, name in enumerate(["state", "day", "rate", "n", "open", "zip"], start=2):
        sheet.cell(3, column, name)
    for i in range(rows):
        r = i + 4
        sheet.cell(r, 2, ["AL", "AK", "AZ", "AR"][i % 4])
        sheet.cell(r, 3, datetime.datetime(2024, 1, 1) + datetime.timedelta(days=i % 365))
        rate = sheet.cell(r, 4, "#N/A" if i % 97 == 5 else i * 0.25)
        if i % 97 == 5:
            rate.data_type = "e"
        sheet.cell(r, 5, i)
        sheet.cell(r, 6, i % 3 == 0)
        sheet.cell(r, 7, f"{i % 1000:05d}")
    sheet.cell(rows + 6, 1, "Source: a footnote in column A")
    book.save(path)
    return path


class _Reads:
    """python-calamine's workbook class, recording how many rows each sheet read held."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.heights: list[int] = []

        self.paths: list[str] = []

    def from_path(self, path: str) -> Any:
        self.paths.append(path)
        return _Book(self.real.from_path(path), self.heights)


class _Book:
    def __init__(self, book: Any, heights: list[int]) -> None:
        self.book, self.heights = book, heights

    def get_sheet_by_name(self, name: str) -> Any:
        sheet = self.book.get_sheet_by_name(name)
        self.heights.append(sheet.height)
        return sheet

    def __getattr__(self, name: str) -> Any:
        return getattr(self.book, name)


def conversion(cli: Any, table: str) -> dict[str, Any]:
    """What the conversion of ``table``'s current snapshot noted."""
    return json.loads(cli("info", table, "--format", "json").stdout)["current"]["provenance"]["extra"]["conversion"]


def _fetch_whole_then_sliced(cli: Any, book: Path, monkeypatch: pytest.MonkeyPatch) -> _Reads:
    """Fetch ``book`` as x.whole, then, with 32 KiB counting as large, as x.sliced: calamine's reads."""
    python_calamine = pytest.importorskip("python_calamine")
    assert fetch(cli, book, "x.whole").exit_code == 0
    reads = _Reads(python_calamine.CalamineWorkbook)
    monkeypatch.setattr(python_calamine, "CalamineWorkbook", reads)
    monkeypatch.setattr(spreadsheets, "SLICE_BYTES", 32 * 1024, raising=False)
    assert fetch(cli, book, "x.sliced").exit_code == 0
    return reads


def test_a_large_xlsx_sheet_is_read_in_slices_giving_the_same_table(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sheet's XML (about 400 KB) is now "large": calamine must never be handed it whole.
    reads = _fetch_whole_then_sliced(cli, big_sheet(tmp_path / "big.xlsx", 3000), monkeypatch)
    assert reads.heights and max(reads.heights) < 1000, reads.heights  # bounded pieces of 3,007 rows

    whole = query(cli, "select * from x.whole order by n nulls last")
    assert query(cli, "select * from x.sliced order by n nulls last") == whole
    assert len(whole) == 3000  # the footnote under the rows is set aside, kept in the notes
    assert whole[1] == {
        "column_1": None, "state": "AK", "day": "2024-01-02", "rate": 0.25, "n": 1, "open": False, "zip": "00001"
    }  # fmt: skip
    for table in ("x.whole", "x.sliced"):
        assert conversion(cli, table)["trailing_notes"] == "Source: a footnote in column A"
    info = json.loads(cli("info", "x.sliced", "--format", "json").stdout)["current"]["provenance"]["columns"]
    assert info["rate"]["markers"] == {"#N/A": 31}  # error cells still counted, in every slice
    notes = json.loads(cli("info", "x.sliced", "--format", "json").stdout)["current"]["provenance"]
    assert "Hospital report, 2024" in json.dumps(notes)  # the title row above the header is kept


def test_a_sliced_sheet_keeps_rows_beyond_empty_stretches(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["num", "text"])
    for i in range(1500):
        sheet.append([i, "x" * 40])
    sheet.cell(5000, 1, 9999)  # after thousands of empty rows, and in a slice of its own
    sheet.cell(5000, 2, "last")
    book.save(tmp_path / "gaps.xlsx")
    monkeypatch.setattr(spreadsheets, "SLICE_BYTES", 16 * 1024, raising=False)
    assert fetch(cli, tmp_path / "gaps.xlsx", "x.gaps").exit_code == 0
    assert query(cli, "select count(*) as n, max(num) as top from x.gaps") == [{"n": 1501, "top": 9999}]
    assert query(cli, "select text from x.gaps where num = 9999") == [{"text": "last"}]


def test_a_sliced_sheet_whose_last_slice_begins_further_left_is_the_table_one_read_gives(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = big_sheet(tmp_path / "footnote.xlsx", 2000, title=False)  # columns B on, then a note in A
    assert fetch(cli, book, "x.whole").exit_code == 0
    monkeypatch.setattr(spreadsheets, "SLICE_BYTES", 32 * 1024, raising=False)
    assert fetch(cli, book, "x.sliced").exit_code == 0
    whole = query(cli, "select * from x.whole order by n nulls last")
    assert query(cli, "select * from x.sliced order by n nulls last") == whole
    assert len(whole) == 2000 and {row["column_1"] for row in whole} == {None}  # the footnote is set aside
    assert conversion(cli, "x.sliced")["trailing_notes"] == "Source: a footnote in column A"
    assert whole[0]["state"] == "AL"


MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest'
    ' xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
    '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>'
)
NUMBER = '<table:table-cell office:value-type="float" office:value="{0}"><text:p>{0}</text:p></table:table-cell>'


def ods_by_hand(path: Path, rows: int, *, grouped: bool = False) -> Path:
    """An .ods of two sheets (one named with an ampersand), its rows optionally in a row group."""
    import zipfile

    def cell(value: Any) -> str:
        if isinstance(value, str):
            return f'<table:table-cell office:value-type="string"><text:p>{value}</text:p></table:table-cell>'
        return NUMBER.format(value)

    def row(values: list[Any]) -> str:
        return "<table:table-row>" + "".join(cell(v) for v in values) + "</table:table-row>"

    body = "".join(row([i, f"{i % 1000:05d}", i * 0.5]) for i in range(rows))
    if grouped:
        body = f"<table:table-row-group>{body}</table:table-row-group>"
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content'
        ' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        '<office:body><office:spreadsheet><table:table table:name="Small">'
        + row(["a"]) + row([1])
        + '</table:table><table:table table:name="Rates &amp; counts"><table:table-column/>'
        + row(["n", "code", "half"]) + body
        + "</table:table></office:spreadsheet></office:body></office:document-content>"
    )  # fmt: skip
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("META-INF/manifest.xml", MANIFEST)
        zf.writestr("content.xml", content)
    return path


def test_a_large_ods_is_read_in_slices_giving_the_same_tables(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = ods_by_hand(tmp_path / "big.ods", 3000)
    reads = _fetch_whole_then_sliced(cli, book, monkeypatch)
    # calamine reads every sheet of an .ods as it opens it: the file itself is never opened.
    assert str(book) not in reads.paths
    assert reads.heights and max(reads.heights) < 1000, reads.heights
    for suffix in ("small", "rates_counts"):
        whole = query(cli, f"select * from x.whole__{suffix} order by 1")
        assert query(cli, f"select * from x.sliced__{suffix} order by 1") == whole
    assert query(cli, "select count(*) as n, max(n) as top, min(code) as code from x.sliced__rates_counts") == [
        {"n": 3000, "top": 2999, "code": "00000"}
    ]


def test_an_ods_sheet_whose_rows_are_grouped_is_read_whole_as_before(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = ods_by_hand(tmp_path / "grouped.ods", 1500, grouped=True)
    assert fetch(cli, book, "x.whole").exit_code == 0
    monkeypatch.setattr(spreadsheets, "SLICE_BYTES", 16 * 1024, raising=False)
    assert fetch(cli, book, "x.sliced").exit_code == 0
    whole = query(cli, "select * from x.whole__rates_counts order by 1")
    assert len(whole) == 1500
    assert query(cli, "select * from x.sliced__rates_counts order by 1") == whole


# --- JSON -------------------------------------------------------------------------------------------


def test_json_records_of_more_than_200_keys_are_records(cli: Any, tmp_path: Path) -> None:
    # DuckDB guesses an object of more than 200 keys is a MAP, and then refused the records.
    wide = tmp_path / "wide.json"
    wide.write_text(json.dumps([{f"k{c}": i * c for c in range(250)} for i in range(20)]))
    assert fetch(cli, wide, "x.wide").exit_code == 0
    assert query(cli, "select count(*) as n, sum(k249) as s from x.wide") == [{"n": 20, "s": 249 * 190}]


def test_json_lines_whose_keys_each_show_in_few_records_are_records(cli: Any, tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.jsonl"
    sparse.write_text("".join(json.dumps({"id": i, f"opt{i % 40}": i}) + "\n" for i in range(400)))
    assert fetch(cli, sparse, "x.sparse").exit_code == 0
    assert query(cli, "select count(*) as n, count(opt7) as some from x.sparse") == [{"n": 400, "some": 10}]


def test_a_socrata_rows_json_of_250_columns_converts(cli: Any, tmp_path: Path) -> None:
    columns = [{"id": -1, "name": "sid", "fieldName": ":sid"}]
    columns += [{"id": c, "name": f"Column {c}", "fieldName": f"col_{c}"} for c in range(250)]
    rows = [[i, *[str(i * c) for c in range(250)]] for i in range(30)]
    document = {"meta": {"view": {"id": "abcd-1234", "columns": columns}}, "data": rows}
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(document))
    assert fetch(cli, path, "x.socrata").exit_code == 0
    assert query(cli, "select count(*) as n, max(col_249) as top from x.socrata") == [{"n": 30, "top": 29 * 249}]


def test_a_json_record_beyond_the_readers_length_is_one_clear_line(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    with path.open("w") as fh:
        fh.write(json.dumps({"id": 1, "text": "short"}) + "\n")
        fh.write(json.dumps({"id": 2, "text": "y" * (70 * 1024 * 1024)}) + "\n")
    line = failure(fetch(cli, path, "x.long"))
    assert "a JSON record longer than 32 MiB" in line["error"]
    assert "maximum_object_size" not in line["error"]  # DuckDB's setting, not the user's to raise


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for level in range(depth):
        value = {f"k{level % 3}": value, "v": level}
    return value


def test_json_nested_too_deep_for_parquet_fails_converting_in_one_line(cli: Any, tmp_path: Path) -> None:
    # DuckDB reads objects 128 deep; Parquet readers stop at 100 levels. The fetch failed when
    # publishing, with pyarrow's advice to raise its limit.
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps([{"id": i, "deep": nested(98)} for i in range(3)]))
    line = failure(fetch(cli, deep, "x.deep"))
    assert line["stage"] == "convert"
    assert "nested too deeply for a Parquet table" in line["error"]
    assert "schema depth limit" not in line["error"]
    fine = tmp_path / "fine.json"
    fine.write_text(json.dumps([{"id": i, "deep": nested(90)} for i in range(3)]))
    assert fetch(cli, fine, "x.fine").exit_code == 0
