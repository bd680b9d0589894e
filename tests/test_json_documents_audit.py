"""JSON documents whose records sit in one member's list, as real services answer: every shape
either reads into the same table by DuckDB and by the streaming parse, or fails with one line
that says what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from liberacion.errors import ConversionError
from tests.test_json_documents import SOCRATA_META, convert, same_either_way, write

RECORDS = [{"zip": "02115", "n": 1}, {"zip": "10001", "n": 2}]


def test_whole_numbers_beyond_64_bits_are_kept_by_the_streaming_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DKAN's datastore query answers {results, count, schema}: the list is not last, so it is parsed.
    big = 123456789012345678901234567890
    dkan = write(tmp_path, {"results": [{"id": big}, {"id": 1}], "count": 2, "schema": {}}, "dkan.json")
    types, rows, _ = convert(dkan, tmp_path / "dkan")
    assert types == [("id", "VARCHAR")] and rows == [(str(big),), ("1",)]
    # the list last, a big number in meta and a record's "" key: DuckDB falls back to the parse
    openfda = write(tmp_path, {"meta": {"n": big}, "results": [{"": "x", "id": -big}]}, "openfda.json")
    report, _ = same_either_way(openfda, tmp_path, monkeypatch)
    assert report.notes["meta"] == {"n": big}


CKAN_SEARCH = {"help": "https://ckan/api/3/action/help_show", "success": True, "result": {"records": RECORDS}}


@pytest.mark.parametrize(
    ("document", "indent"),
    [
        ({"count": 2, "items": RECORDS}, None),
        ({"total": 2, "records": RECORDS}, None),
        (CKAN_SEARCH, None),
        (CKAN_SEARCH, 1),
        ({"help": "", "success": True, "result": {"fields": [{"id": "zip"}], "records": RECORDS}}, 1),
    ],
    ids=["items-one-line", "records-one-line", "ckan-one-line", "ckan-indented", "ckan-records-last"],
)
def test_a_document_holding_its_records_gives_them_as_rows(
    tmp_path: Path, document: dict[str, Any], indent: int | None
) -> None:
    # APIs answer on one line: that is a document, not JSON Lines of one record. CKAN's envelope
    # keeps datastore_search's records in its result.
    path = tmp_path / "page.json"
    path.write_text(json.dumps(document, indent=indent))
    types, rows, _ = convert(path, tmp_path / "out")
    assert types == [("zip", "VARCHAR"), ("n", "BIGINT")] and rows == [("02115", 1), ("10001", 2)]


def test_json_lines_whose_records_hold_a_data_list_stay_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text('{"id": "a", "data": [1, 2]}\n{"id": "b", "data": [3]}\n')
    types, rows, _ = convert(path, tmp_path / "out")
    assert [name for name, _ in types] == ["id", "data"] and [row[0] for row in rows] == ["a", "b"]


def test_a_ckan_package_show_answer_is_a_table_of_its_packages(realdata: Path, tmp_path: Path) -> None:
    path = realdata / "socrata/delphi-epidata-covid_hosp/common/metadata.json"
    types, rows, _ = convert(path, tmp_path / "out")
    names = [name for name, _ in types]
    assert len(rows) == 1
    assert rows[0][names.index("name")] == "covid-19-estimated-patient-impact-and-hospital-capacity-state"


def test_a_records_key_that_is_not_a_list_gives_way_to_one_that_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, {"results": {"total": 2}, "items": RECORDS})
    report, _ = same_either_way(path, tmp_path, monkeypatch)
    assert report.rows == 2


def test_a_socrata_row_that_is_null_is_named_by_both_readers(tmp_path: Path) -> None:
    path = write(tmp_path, {"meta": SOCRATA_META, "data": [None, ["r", "i", "02115", "1", None]]})
    with pytest.raises(ConversionError, match=r"row 1 of its 'data' list is null, not a list of values"):
        convert(path, tmp_path / "out")


@pytest.mark.parametrize("member", ["tru", "01", '{"a" 1}', "NaN"])
def test_a_member_before_the_list_that_is_not_json_makes_the_document_broken(tmp_path: Path, member: str) -> None:
    path = write(tmp_path, '{\n "x": ' + member + ',\n "results": [{"a": "1"}, {"a": "2"}]\n}\n')
    with pytest.raises(ConversionError, match="not valid JSON"):
        convert(path, tmp_path / "out")


def test_a_socrata_view_without_columns_of_data_is_said(tmp_path: Path) -> None:
    meta = {"view": {"id": "abcd-1234", "columns": [{"fieldName": ":sid"}, {"fieldName": ":id"}]}}
    path = write(tmp_path, {"meta": meta, "data": [["r", "i"], ["s", "j"]]})
    with pytest.raises(ConversionError, match=r"^doc.json: its Socrata view lists no columns of data"):
        convert(path, tmp_path / "out")


def test_a_document_that_is_not_utf8_is_refused_in_plain_words(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('{"meta": {}, "results": [{"a": "caf\xe9"}],\n "count": 1}'.encode("latin-1"))
    with pytest.raises(ConversionError) as refused:
        convert(path, tmp_path / "out")
    assert str(refused.value) == "latin1.json: not valid JSON (lexical error: invalid bytes in UTF8 string.)"


def test_a_ckan_answer_fetched_and_queried_through_the_cli(home: Path, cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "datastore_search.json"
    path.write_text(json.dumps(CKAN_SEARCH))
    assert cli("fetch", str(path), "--as", "ckan.search").exit_code == 0
    result = cli("sql", "select zip, n from ckan.search order by n", "-f", "csv")
    assert result.stdout.splitlines() == ["zip,n", "02115,1", "10001,2"]
