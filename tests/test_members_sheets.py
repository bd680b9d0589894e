"""Zip members and workbook sheets: one readable table each, whatever their names; ``--member``
says what it matched (or what exists); every member or sheet left out is said once, by its name."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from liberacion.lake import Lake

HOSPITALS = "facility_id,name,beds\n010001,General,120\n010002,Mercy,80\n010003,County,45\n"


def make_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def fetched(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("fetch", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def tables_of(record: dict[str, Any]) -> list[str]:
    return record.get("tables") or [record["table"]]


def query(cli: Any, sql: str) -> list[dict[str, Any]]:
    result = cli("sql", sql, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def failure(cli: Any, *args: str) -> str:
    result = cli("fetch", *args)
    assert result.exit_code == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("note:")]


# -- one table per member or sheet ------------------------------------------------------------------


def test_same_file_name_in_two_folders_makes_two_readable_tables(cli: Any, tmp_path: Path) -> None:
    bundle = make_zip(
        tmp_path / "yearly.zip",
        {"2023/data.csv": "facility_id,beds\n010001,5\n", "2024/data.csv": "facility_id,beds,rating\n010002,7,3\n"},
    )
    record = fetched(cli, str(bundle), "--as", "y.beds")
    assert tables_of(record) == ["y.beds__t_2023_data_csv", "y.beds__t_2024_data_csv"]
    assert record["table"] == "y.beds__t_2023_data_csv" and record["rows"] == 2
    assert record["table_rows"] == {"y.beds__t_2023_data_csv": 1, "y.beds__t_2024_data_csv": 1}
    assert query(cli, "select * from y.beds__t_2023_data_csv") == [{"facility_id": "010001", "beds": 5}]
    # The 2024 member's extra column is in its own table, not lost under the 2023 schema.
    assert query(cli, "select * from y.beds__t_2024_data_csv") == [{"facility_id": "010002", "beds": 7, "rating": 3}]


def test_members_with_no_column_in_common_are_each_queryable(cli: Any, tmp_path: Path) -> None:
    bundle = make_zip(
        tmp_path / "multi.zip",
        {
            "a/hospitals.csv": HOSPITALS,
            "b/clinics.csv": "npi,name\n0123456789,Clinic A\n",
            "c/hospitals.csv": "n,x\n1,2\n",
        },
    )
    record = fetched(cli, str(bundle), "--as", "z.multi")
    assert sorted(tables_of(record)) == ["z.multi__a_hospitals_csv", "z.multi__c_hospitals_csv", "z.multi__clinics"]
    for table in tables_of(record):
        assert query(cli, f"select * from {table}")  # every published table reads
    assert query(cli, "select * from z.multi__c_hospitals_csv") == [{"n": 1, "x": 2}]


def test_member_stems_that_snake_case_alike_are_two_tables(cli: Any, tmp_path: Path) -> None:
    bundle = make_zip(tmp_path / "stems.zip", {"Data-1.csv": "x\n1\n", "data_1.txt": "y,z\na,b\n"})
    record = fetched(cli, str(bundle), "--as", "z.stems")
    assert tables_of(record) == ["z.stems__data_1", "z.stems__data_1_2"]
    assert query(cli, "select * from z.stems__data_1_2") == [{"y": "a", "z": "b"}]


def test_sheets_whose_names_snake_case_alike_are_two_tables(cli: Any, tmp_path: Path) -> None:
    book = make_workbook(tmp_path / "collide.xlsx", {"Data-1": [["x"], [1]], "Data 1": [["y", "z"], ["a", "b"]]})
    record = fetched(cli, str(book))
    # The fetch names exactly the tables published, and each of them reads.
    assert tables_of(record) == ["local.collide__data_1", "local.collide__data_1_2"]
    assert record["table"] == "local.collide__data_1"
    assert query(cli, "select * from local.collide__data_1") == [{"x": 1}]
    assert query(cli, "select * from local.collide__data_1_2") == [{"y": "a", "z": "b"}]
    again = fetched(cli, str(book))
    assert again["status"] == "unchanged" and again["table"] == record["table"]

    text = cli("fetch", str(book), "--force")
    assert text.exit_code == 0
    assert "local.collide__data_1, local.collide__data_1_2" in text.stdout + text.stderr


# -- --member ---------------------------------------------------------------------------------------


def test_an_ambiguous_member_is_an_error_listing_the_matches(cli: Any, home: Path, tmp_path: Path) -> None:
    bundle = make_zip(
        tmp_path / "multi.zip",
        {
            "a/hospitals.csv": HOSPITALS,
            "b/clinics.csv": "npi,name\n0123456789,Clinic A\n",
            "c/hospitals.csv": "n,x\n1,2\n",
        },
    )
    line = failure(cli, str(bundle), "--as", "z.m", "--member", "hospitals.csv")
    assert "a/hospitals.csv, c/hospitals.csv" in line and "--member a/hospitals.csv" in line
    assert Lake(home).names() == []  # nothing written under a name the fetch did not report

    record = fetched(cli, str(bundle), "--as", "z.m", "--member", "c/hospitals.csv")
    assert record["table"] == "z.m" and record["rows"] == 1  # the table reported is the one written
    assert query(cli, "select * from z.m") == [{"n": 1, "x": 2}]
    record = fetched(cli, str(bundle), "--as", "z.suffix", "--member", "a_hospitals_csv")  # as `tables` shows it
    assert record["table"] == "z.suffix" and record["rows"] == 3


def test_an_unknown_member_or_sheet_lists_what_there_is(cli: Any, tmp_path: Path) -> None:
    members = {f"part{i:02d}.csv": f"n\n{i}\n" for i in range(25)}
    bundle = make_zip(tmp_path / "many.zip", members)
    line = failure(cli, str(bundle), "--as", "z.m", "--member", "nosuch")
    assert "many.zip has no member named 'nosuch'" in line
    assert "part00.csv, part01.csv" in line and "part19.csv and 5 more" in line and "part20.csv" not in line

    book = make_workbook(
        tmp_path / "ugly.xlsx", {"Hospitals 2024": [["id", "beds"], ["010001", 3]], "Notes": [["note"], ["x"]]}
    )
    line = failure(cli, str(book), "--as", "x.m", "--member", "nosuch")
    assert "ugly.xlsx has no sheet named 'nosuch'; its sheets: Hospitals 2024, Notes" in line
    # The suffix liberacion itself shows for the sheet (x.ugly__hospitals_2024) names it too.
    assert tables_of(fetched(cli, str(book), "--as", "x.ugly"))[0] == "x.ugly__hospitals_2024"
    record = fetched(cli, str(book), "--as", "x.m", "--member", "hospitals_2024")
    assert record["table"] == "x.m" and record["rows"] == 1


def test_a_byte_identical_copy_is_said_and_can_be_named(cli: Any, tmp_path: Path) -> None:
    bundle = make_zip(
        tmp_path / "unfinished.zip",
        {
            "package.txt": "ndc|name\n0001|A\n0002|B\n",
            "package.xls": "ndc|name\n0001|A\n0002|B\n",
            "other.csv": "a\n1\n",
        },
    )
    result = cli("fetch", str(bundle), "--as", "f.u")
    assert result.exit_code == 0, result.stderr
    assert "note: f.u: skipped package.xls: the same bytes as package.txt" in result.stderr
    record = fetched(cli, str(bundle), "--as", "f.copy", "--member", "package.xls")
    assert record["table"] == "f.copy" and record["rows"] == 2


# -- members left out -------------------------------------------------------------------------------


def test_empty_prose_and_program_members_are_skipped_with_one_note_each(cli: Any, tmp_path: Path) -> None:
    bundle = make_zip(
        tmp_path / "garbage.zip",
        {
            "a.csv": "x,y\n1,2\n",
            "b.csv": "x,z\n3,4\n",
            "empty.csv": "",
            "hdr_only.csv": "p,q\n",
            "notes.txt": "This file describes the data. It is not a table.\n",
            "layout.sas": "data x; input a b; run;\n",
            "blob.bin": bytes(range(256)) * 2,
            "doc.pdf": "%PDF-1.4",
        },
    )
    result = cli("fetch", str(bundle), "--as", "g.z", "--json")
    assert result.exit_code == 0, result.stderr
    assert tables_of(json.loads(result.stdout)) == ["g.z__a", "g.z__b"]
    said = notes(result.stderr)
    assert "note: g.z: skipped empty.csv: an empty file" in said
    assert "note: g.z: skipped hdr_only.csv, layout.sas, notes.txt: no data rows, beside members that have rows" in said
    assert "note: g.z: skipped blob.bin, doc.pdf: not a table liberacion can read" in said
    assert len(said) == len(set(said)) == 3  # once per fetch, not once per table
    assert "002-" not in result.stderr and "empty_csv" not in result.stderr
    info = json.loads(cli("info", "g.z__a", "--format", "json").stdout)
    assert "notes.txt" in json.dumps(info)  # the table's own record says what was left out


def test_a_member_that_fails_is_named_as_the_zip_spells_it(cli: Any, tmp_path: Path) -> None:
    good = "a,b\n" + "".join(f"{i},{i}\n" for i in range(200))
    bundle = make_zip(tmp_path / "one_bad.zip", {"good.csv": good, "data/bad.csv": "a,b\n1,2\n3,4,5,6\n7\n"})
    line = failure(cli, str(bundle), "--as", "b.z")
    assert "data/bad.csv: 2 bad rows (of 3) is more than allowed" in line

    alone = make_zip(tmp_path / "alone.zip", {"folder/Empty File.csv": ""})
    line = failure(cli, str(alone), "--as", "b.alone")
    assert "folder/Empty File.csv" in line and "000-" not in line


# -- values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xpt", "sav", "dta", "sas7bdat"])
def test_blank_text_in_statistical_files_is_null(cli: Any, tmp_path: Path, fmt: str) -> None:
    pd = pytest.importorskip("pandas")
    pyreadstat = pytest.importorskip("pyreadstat")
    frame = pd.DataFrame({"ID": [1.0, 2.0, 3.0], "ZIPCD": ["02115", "", "00501"]})
    path = tmp_path / f"labels.{fmt}"
    writer = {"xpt": "write_xport", "sav": "write_sav", "dta": "write_dta", "sas7bdat": "write_sas7bdat"}[fmt]
    getattr(pyreadstat, writer)(frame, path)
    assert cli("fetch", str(path), "--as", "s.t").exit_code == 0
    counts = query(
        cli, "select count(*) filter (where zipcd is null) nulls, count(*) filter (where zipcd = '') blanks from s.t"
    )
    assert counts == [{"nulls": 1, "blanks": 0}]
    assert query(cli, "select zipcd from s.t where id = 1") == [{"zipcd": "02115"}]


def test_excel_error_cells_are_null_and_counted_as_markers(cli: Any, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "E"
    sheet["C3"], sheet["D3"], sheet["E3"] = "state", "rate", "n"  # the table starts at C3
    values = [("AL", 1.5, 10), ("AK", "#N/A", 20), ("AZ", "#DIV/0!", "*"), ("AR", 2.25, "#REF!")]
    for r, row in enumerate(values, start=4):
        for c, value in enumerate(row, start=3):
            cell = sheet.cell(r, c, value)
            if isinstance(value, str) and value.startswith("#"):
                cell.data_type = "e"
    book.save(tmp_path / "xlerr.xlsx")
    assert cli("fetch", str(tmp_path / "xlerr.xlsx"), "--as", "x.err").exit_code == 0
    assert query(cli, "select state, rate, n from x.err order by state") == [
        {"state": "AK", "rate": None, "n": 20},
        {"state": "AL", "rate": 1.5, "n": 10},
        {"state": "AR", "rate": 2.25, "n": None},
        {"state": "AZ", "rate": None, "n": None},
    ]
    columns = json.loads(cli("info", "x.err", "--format", "json").stdout)["current"]["provenance"]["columns"]
    assert columns["rate"]["markers"] == {"#DIV/0!": 1, "#N/A": 1}
    assert columns["n"]["markers"] == {"#REF!": 1, "*": 1}


def test_a_sheet_named_exactly_wins_over_sheets_named_alike(cli: Any, tmp_path: Path) -> None:
    book = make_workbook(
        tmp_path / "alike.xlsx",
        {"Sheet1": [["a", "b"], [1, "s1"]], "sheet1 ": [["a", "c"], [10, "x"]], "SHEET-1": [["a"], [5]]},
    )
    fetched(cli, str(book), "--as", "x.alike", "--member", "sheet1 ")
    assert query(cli, "select * from x.alike") == [{"a": 10, "c": "x"}]


def test_a_sheets_title_is_said_and_its_cells_trimmed(cli: Any, tmp_path: Path) -> None:
    # The title rows above the header were skipped without the note a CSV's title lines get. Cells
    # are trimmed, as CMS's workbooks need ("Alabama ", "01 ").
    book = make_workbook(
        tmp_path / "t.xlsx",
        {"Data": [["State deaths, 2020"], [], ["state", "code ", "n"], ["Alabama ", "01 ", 5], ["Alaska", "02", 6]]},
    )
    result = cli("fetch", str(book), "--as", "x.t")
    assert result.exit_code == 0, result.stderr
    assert "note: t.xlsx: sheet 'Data': skipped 1 row above the header: 'State deaths, 2020'" in result.stderr
    assert query(cli, "select state, code, n from x.t order by n") == [
        {"state": "Alabama", "code": "01", "n": 5},
        {"state": "Alaska", "code": "02", "n": 6},
    ]
