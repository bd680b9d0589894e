"""A column of nothing but missing-value markers (FDA's ``igm_result``: ``NA`` in every row) is a
column of NULLs with its markers counted, like the markers of any typed column; one whose only
marker may be a flag (``X`` beside empty cells) keeps its text, and says why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from liberacion.convert import typed_copy
from tests.conftest import Cli


@pytest.fixture
def tiny_sample(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(typed_copy, "SAMPLE_ROWS", 1)
    yield


def fetched(cli: Cli, path: Path, table: str = "t.m") -> dict:
    result = cli("fetch", str(path), "--as", table, "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(cli("info", table, "-f", "json").stdout)
    return info["current"]["provenance"]["columns"]


def query(cli: Cli, sql: str) -> list[dict]:
    return json.loads(cli("sql", sql, "--format", "json").stdout)


def test_a_column_of_markers_only_is_null_and_its_markers_are_counted(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "elisa.csv"
    path.write_text(
        "sample,igm_result,days,note\n" + "".join(f"s{i},NA,{i if i % 3 else 'NA'},n/a\n" for i in range(9))
    )
    columns = fetched(cli, path)
    assert columns["igm_result"]["type"] == "VARCHAR"
    assert columns["igm_result"]["markers"] == {"NA": 9}
    assert columns["note"]["markers"] == {"n/a": 9}
    assert "markers" in columns["igm_result"]["rule"] and columns["igm_result"]["rule"] != "no values"
    assert columns["days"]["markers"] == {"NA": 3}  # as a typed column's markers are
    found = query(cli, "select count(*) as n from t.m where igm_result is null and note is null")
    assert found == [{"n": 9}]


def test_a_value_after_a_sample_of_markers_types_the_column_from_all_its_values(
    cli: Cli, tmp_path: Path, tiny_sample: None
) -> None:
    path = tmp_path / "late.csv"
    path.write_text("id,count,label\n1,Not Available,N/A\n2,12,Yes and no\n3,7,N/A\n")
    columns = fetched(cli, path)
    assert columns["count"]["type"] == "BIGINT" and columns["count"]["markers"] == {"Not Available": 1}
    assert columns["label"]["type"] == "VARCHAR" and "markers" not in columns["label"]
    got = query(cli, "select count, label from t.m order by id")
    assert got == [
        {"count": None, "label": "N/A"},  # a text column keeps its markers as published
        {"count": 12, "label": "Yes and no"},
        {"count": 7, "label": "N/A"},
    ]


def test_a_lone_flag_marker_keeps_its_text_and_the_rule_says_so(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "flags.csv"
    path.write_text("id,checked,footnote,status\n1,X,*,NA\n2,,,NA\n3,X,*,NA\n")
    columns = fetched(cli, path)
    assert "maybe a flag" in columns["checked"]["rule"] and "maybe a flag" in columns["footnote"]["rule"]
    assert query(cli, "select checked, footnote, status from t.m order by id") == [
        {"checked": "X", "footnote": "*", "status": None},
        {"checked": None, "footnote": None, "status": None},
        {"checked": "X", "footnote": "*", "status": None},
    ]


@pytest.mark.parametrize("flag", ["*", "-", "."])
def test_a_flag_like_marker_after_a_sample_of_markers_keeps_the_column_as_text(
    cli: Cli, tmp_path: Path, tiny_sample: None, flag: str
) -> None:
    """The sample (one row here, 50,000 in life) shows only ``N/A``; a ``*`` further down may be a
    footnote flag: the column is decided from all its values, as when the sample holds the flag,
    not made NULL with the flag counted as a marker."""
    path = tmp_path / "late_flags.csv"
    path.write_text(f"id,note,status\n1,N/A,N/A\n2,N/A,Suppressed\n3,{flag},n/a\n4,N/A,N/A\n")
    columns = fetched(cli, path)
    assert columns["note"]["rule"] == f"only markers, {flag!r} maybe a flag: kept as text"
    assert "markers" not in columns["note"]
    # Other markers past the sample are markers still: the column stays NULL, every one counted.
    assert columns["status"]["rule"] == "only missing-value markers: all NULL"
    assert columns["status"]["markers"] == {"N/A": 2, "Suppressed": 1, "n/a": 1}
    got = query(cli, "select note, status from t.m order by id")
    assert [row["note"] for row in got] == ["N/A", "N/A", flag, "N/A"]
    assert {row["status"] for row in got} == {None}
