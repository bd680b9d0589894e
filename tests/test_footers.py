"""Footnotes and blank rows under a table (NCHS's ``Source: ...``, ``"Note: ...",,``, ``,,``) are
not rows: they are set aside with a note and kept in the conversion notes, so the columns keep
their types and a short file does not fail for bad rows. A row in the middle of a file is never
one, nor is the last value of a list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from liberacion.lake import Lake
from tests.conftest import Cli
from tests.test_members_sheets import make_workbook


def fetch(cli: Cli, path: Path, table: str, *args: str) -> tuple[dict[str, Any], str]:
    result = cli("fetch", str(path), "--as", table, "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def rows(cli: Cli, query: str) -> list[dict[str, Any]]:
    result = cli("sql", query, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def types(cli: Cli, table: str) -> dict[str, str]:
    return {r["column_name"]: r["column_type"] for r in rows(cli, f"describe {table}")}


def conversion(home: Path, table: str) -> dict[str, Any]:
    return Lake(home).current(table).provenance.extra["conversion"]


def test_footnotes_and_blank_rows_after_the_data_are_set_aside(cli: Cli, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "yr.csv"
    path.write_text(
        'Year,Deaths,Rate\n2019,"2,854,838",715.2\n2020,"3,383,729",835.4\n,,\n'
        'Source: NCHS National Vital Statistics System,,\n"Note: 2020 data are final, rates per 100,000",,\n'
    )
    record, stderr = fetch(cli, path, "s.yr")
    assert record["rows"] == 2 and record["rejects"] == 0
    assert types(cli, "s.yr") == {"year": "BIGINT", "deaths": "BIGINT", "rate": "DOUBLE"}
    assert rows(cli, "select * from s.yr order by year") == [
        {"year": 2019, "deaths": 2854838, "rate": 715.2},
        {"year": 2020, "deaths": 3383729, "rate": 835.4},
    ]
    assert "note: yr.csv: left out 3 lines of footnotes and blank rows after the data" in stderr
    noted = conversion(home, "s.yr")
    assert noted["footer_lines"] == 3
    assert noted["trailing_notes"] == (
        "Source: NCHS National Vital Statistics System\nNote: 2020 data are final, rates per 100,000"
    )
    shown = cli("info", "s.yr", "-f", "table")
    assert "notes kept from the end of the file" in shown.stdout and "Source: NCHS National" in shown.stdout


def test_a_short_footer_of_fewer_fields_is_not_bad_rows(cli: Cli, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "footer2.csv"
    footer = "\nSource: CDC WONDER\nNote: counts under 10 suppressed\n"
    path.write_text("state,deaths,rate\nAL,100,1.5\nAK,200,2.5\n" + footer)
    record, stderr = fetch(cli, path, "s.f2")
    assert record["rows"] == 2 and record["rejects"] == 0
    assert types(cli, "s.f2") == {"state": "VARCHAR", "deaths": "BIGINT", "rate": "DOUBLE"}
    assert "left out 3 lines of footnotes and blank rows after the data" in stderr
    assert conversion(home, "s.f2")["trailing_notes"] == "Source: CDC WONDER\nNote: counts under 10 suppressed"


def test_marked_and_numbered_footnotes_without_a_last_line_end_are_set_aside(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "marks.tsv"
    body = "".join(f"{state}\t{n}\n" for state, n in (("AL", 5), ("AK", 7)))
    path.write_text("state\tdeaths\n" + body + "* Rates are unreliable\t\n1. Includes residents only")
    record, stderr = fetch(cli, path, "s.marks")
    assert record["rows"] == 2 and types(cli, "s.marks")["deaths"] == "BIGINT"
    assert "left out 2 lines" in stderr


def test_rows_with_empty_fields_in_the_middle_or_as_data_stay(cli: Cli, home: Path, tmp_path: Path) -> None:
    # A note-like row in the middle, an empty row in the middle and a last row whose other fields
    # are empty but that does not read as a footnote: all rows, as before.
    path = tmp_path / "mid.csv"
    path.write_text("name,n\nSource: mid-file,\n,\nAnn,1\nTotal,\n")
    record, stderr = fetch(cli, path, "s.mid")
    assert record["rows"] == 4 and "footnotes" not in stderr
    assert "footer_lines" not in conversion(home, "s.mid")
    # One column: the last value of a list, and a last empty value, are values.
    listed = tmp_path / "list.csv"
    listed.write_text("city\nBoston\n12. New York\n\n")
    record, stderr = fetch(cli, listed, "s.list")
    assert record["rows"] == 3 and "footnotes" not in stderr
    # A footnote right under the header is not under data: the table is the header alone.
    lone = tmp_path / "lone.csv"
    lone.write_text("state,deaths\nSource: nothing yet,\n")
    record, _ = fetch(cli, lone, "s.lone")
    assert record["rows"] == 1


def test_a_footnote_under_a_sheets_data_is_set_aside(cli: Cli, home: Path, tmp_path: Path) -> None:
    book = make_workbook(
        tmp_path / "book.xlsx",
        {"Data": [["state", "deaths"], ["AL", 100], ["AK", 200], [], ["Source: CMS Chronic Conditions Warehouse"]]},
    )
    record, stderr = fetch(cli, book, "s.book")
    assert record["rows"] == 2
    assert types(cli, "s.book") == {"state": "VARCHAR", "deaths": "BIGINT"}
    assert "left out 1 line of footnotes and blank rows after the data" in stderr
    assert conversion(home, "s.book")["trailing_notes"] == "Source: CMS Chronic Conditions Warehouse"
