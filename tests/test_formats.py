"""Formats by content: CDC WONDER exports, BOM + cp1252, legacy Excel, OpenDocument, SAS, Stata,
SPSS, Parquet; unreadable files refused; ``--type`` and ``--raw`` on every format.

Every fixture is made here, small, by the libraries that write these formats (pyreadstat, xlwt,
pandas with odfpy: the ``dev`` extra), and converted through ``liberacion.fetching.fetch``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from liberacion.lake import Lake
from tests.conftest import Cli
from tests.server import LocalServer
from tests.test_convert import column_types, load, refused, rows, write
from tests.test_fetch import json_lines, manifest

pd = pytest.importorskip("pandas")
pyreadstat = pytest.importorskip("pyreadstat")


def conversion_notes(lake: Lake, table: str = "t.data") -> dict[str, Any]:
    return lake.current(table).provenance.extra["conversion"]


def column_info(lake: Lake, table: str = "t.data") -> dict[str, dict[str, Any]]:
    return lake.current(table).provenance.columns


# -- CDC WONDER -----------------------------------------------------------------------------------

WONDER = (
    '"Notes"\t"State"\t"State Code"\t"Year"\t"Year Code"\t"Deaths"\t"Population"\t"Crude Rate"\n'
    '\t"Alabama"\t"01"\t"2019"\t"2019"\t53\t4903185\t"1.1"\n'
    '\t"Alabama"\t"01"\t"2020"\t"2020"\t14\t4921532\t"0.3 (Unreliable)"\n'
    '\t"Alaska"\t"02"\t"2019"\t"2019"\tSuppressed\t731545\tSuppressed\n'
    '\t"Alaska"\t"02"\t"2020"\t"2020"\t12\tNot Applicable\tNot Applicable\n'
    '"Total"\t\t\t\t\t79\t15287793\t"0.5"\n'
    '"---"\n'
    '"Dataset: Underlying Cause of Death, 1999-2020"\n'
    '"Query Parameters:"\n'
    '"States: Alabama (01); Alaska (02)"\n'
    '"Group By: State; Year"\n'
    '"Show Totals: True"\n'
    '"---"\n'
    '"Help: See http://wonder.cdc.gov/wonder/help/ucd.html for more information."\n'
    '"---"\n'
    '"Query Date: Mar 1, 2023 10:22:18 AM"\n'
    '"---"\n'
    '"Suggested Citation: Centers for Disease Control and Prevention, National Center for Health'
    ' Statistics. Underlying Cause of Death 1999-2020 on CDC WONDER Online Database."\n'
    '"---"\n'
    '"Messages:"\n'
    '"1. Death rates are flagged as Unreliable when the rate is calculated with a numerator of 20 or less."\n'
    '"2. Rows with suppressed data are hidden when the data are grouped by more than one field."\n'
)


def test_cdc_wonder_export(home: Path, tmp_path: Path) -> None:
    lake = load(home, write(tmp_path, "Underlying Cause of Death, 1999-2020.txt", WONDER))
    types = column_types(lake)
    assert types["state_code"] == "VARCHAR" and types["deaths"] == "BIGINT" and types["crude_rate"] == "DOUBLE"
    assert lake.current("t.data").rows == 5  # four rows and the total; none of the notes block
    assert rows(lake, "select state_code, year, deaths, population, crude_rate from t.data where notes is null") == [
        ("01", 2019, 53, 4903185, 1.1),
        ("01", 2020, 14, 4921532, 0.3),
        ("02", 2019, None, 731545, None),
        ("02", 2020, 12, None, None),
    ]
    assert rows(lake, "select deaths, crude_rate from t.data where notes = 'Total'") == [(79, 0.5)]
    info = column_info(lake)
    assert info["crude_rate"]["markers"] == {"(Unreliable)": 1, "Not Applicable": 1, "Suppressed": 1}
    assert info["deaths"]["markers"] == {"Suppressed": 1}
    notes = conversion_notes(lake)
    assert notes["wonder_notes"].startswith("---\nDataset: Underlying Cause of Death, 1999-2020\nQuery Parameters:")
    assert "Suggested Citation: Centers for Disease Control" in notes["wonder_notes"]
    assert notes["wonder_notes"].endswith("grouped by more than one field.")
    assert lake.current("t.data").schema[0].original == "Notes"


def test_info_shows_the_wonder_notes_and_the_real_format(cli: Cli, home: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "wonder.txt", WONDER)
    assert cli("fetch", str(path), "--as", "cdc.wonder").exit_code == 0
    shown = cli("info", "cdc.wonder", "--format", "table").stdout
    assert "notes kept from the end of the file:" in shown
    assert "Query Parameters:" in shown and "Suggested Citation" in shown
    assert "numerator of 20 or less." in shown  # long lines wrap at a word, nothing is cut


def test_cdc_wonder_export_raw_and_type(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "wonder.txt", WONDER)
    lake = load(home, path, raw=True)
    assert rows(lake, "select crude_rate from t.data where year_code = '2020' and state = 'Alabama'") == [
        ("0.3 (Unreliable)",)
    ]
    lake = load(home, path, table="t.typed", types={"Year Code": "VARCHAR", "population": "double"})
    assert column_types(lake, "t.typed")["year_code"] == "VARCHAR"
    assert column_types(lake, "t.typed")["population"] == "DOUBLE"


# -- encodings --------------------------------------------------------------------------------------


def test_bom_then_cp1252_leaves_no_debris(home: Path, tmp_path: Path) -> None:
    body = "Rndrng_Prvdr_CCN,Rndrng_Prvdr_City,Tot_Dschrgs\n010001,Dothan,120\n" + "".join(
        f"0{10002 + i},Town {i},{i}\n" for i in range(200)
    )
    path = tmp_path / "MUP_IHP.csv"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("ascii") + "099999,Cañon City,7\n".encode("cp1252"))
    lake = load(home, path)
    schema = lake.current("t.data").schema
    assert [c.name for c in schema] == ["rndrng_prvdr_ccn", "rndrng_prvdr_city", "tot_dschrgs"]
    assert schema[0].original == "Rndrng_Prvdr_CCN"
    assert rows(lake, "select rndrng_prvdr_ccn from t.data limit 1") == [("010001",)]
    assert rows(lake, "select rndrng_prvdr_city from t.data where rndrng_prvdr_ccn = '099999'") == [("Cañon City",)]
    assert conversion_notes(lake)["encoding"] == "cp1252"


def test_bom_on_a_one_column_file_and_a_double_bom(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbfcode\n01\n02\n")
    lake = load(home, path)
    assert [c.name for c in lake.current("t.data").schema] == ["code"]
    assert rows(lake, "select code from t.data") == [("01",), ("02",)]


# -- spreadsheets -----------------------------------------------------------------------------------


def make_xls(path: Path) -> Path:
    xlwt = pytest.importorskip("xlwt")
    book = xlwt.Workbook()
    sheet = book.add_sheet("Hospitals")
    sheet.write(0, 0, "Hospital Compare, as of 2024")  # a title row above the header
    for c, name in enumerate(["Facility ID", "County Code", "Beds", "Rating"]):
        sheet.write(2, c, name)
    for r, (facility, county, beds, rating) in enumerate(
        [("010001", "01069", 420.0, "4"), ("020017", "02020", 88.0, "Not Available"), ("670001", "48201", 12, "3")]
    ):
        for c, value in enumerate((facility, county, beds, rating)):
            sheet.write(3 + r, c, value)
    other = book.add_sheet("Notes")
    other.write(0, 0, "Source")
    other.write(1, 0, "CMS")
    book.save(str(path))
    return path


def make_ods(path: Path) -> Path:
    pytest.importorskip("odf")
    frame = pd.DataFrame(
        {"FIPS": ["01001", "02013", "06037"], "Deaths": ["12", "*", "40"], "Rate": ["1.5", "N/A", "2.25"]}
    )
    frame.to_excel(path, engine="odf", index=False, sheet_name="Counties")
    return path


def test_legacy_excel_xls(home: Path, tmp_path: Path) -> None:
    lake = load(home, make_xls(tmp_path / "hospitals.xls"))
    assert lake.names() == ["t.data__hospitals", "t.data__notes"]
    table = "t.data__hospitals"
    assert column_types(lake, table) == {
        "facility_id": "VARCHAR",
        "county_code": "VARCHAR",
        "beds": "BIGINT",
        "rating": "BIGINT",
    }
    assert rows(lake, f"select facility_id, county_code, beds, rating from {table} order by 1") == [
        ("010001", "01069", 420, 4),
        ("020017", "02020", 88, None),
        ("670001", "48201", 12, 3),
    ]
    assert column_info(lake, table)["rating"]["markers"] == {"Not Available": 1}
    notes = conversion_notes(lake, table)
    assert notes["workbook"] == "xls" and notes["title_rows"] == ["Hospital Compare, as of 2024"]


def test_legacy_excel_xls_type_raw_and_member(home: Path, tmp_path: Path) -> None:
    path = make_xls(tmp_path / "hospitals.xls")
    lake = load(home, path, member="Hospitals", types={"Beds": "VARCHAR"})
    assert lake.names() == ["t.data"] and column_types(lake)["beds"] == "VARCHAR"
    lake = load(home, path, table="t.raw", member="hospitals", raw=True)
    assert set(column_types(lake, "t.raw").values()) == {"VARCHAR"}
    assert rows(lake, "select rating from t.raw where facility_id = '020017'") == [("Not Available",)]


def test_opendocument_ods(home: Path, tmp_path: Path) -> None:
    path = make_ods(tmp_path / "counties.ods")
    lake = load(home, path)
    assert column_types(lake) == {"fips": "VARCHAR", "deaths": "BIGINT", "rate": "DOUBLE"}
    assert rows(lake, "select fips, deaths, rate from t.data order by 1") == [
        ("01001", 12, 1.5),
        ("02013", None, None),
        ("06037", 40, 2.25),
    ]
    assert column_info(lake)["deaths"]["markers"] == {"*": 1}
    lake = load(home, path, table="t.typed", types={"deaths": "VARCHAR", "rate": "decimal"})
    assert column_types(lake, "t.typed") == {"fips": "VARCHAR", "deaths": "VARCHAR", "rate": "DECIMAL(18,2)"}
    lake = load(home, path, table="t.raw", raw=True)
    assert rows(lake, "select deaths from t.raw where fips = '02013'") == [("*",)]


# -- statistical files ------------------------------------------------------------------------------

SURVEY = {
    "SEQN": [93703.0, 93704.0, 93705.0, 93706.0],
    "STATEFIP": ["01", "06", "36", "06"],
    "RIAGENDR": [2.0, 1.0, 2.0, None],
    "INCOME": ["25000", "Not Available", "61000", "--"],
    "WTINT2YR": [9246.49, 37338.77, 8614.57, 8548.63],
}
LABELS = ["Respondent sequence number", "State FIPS code", "Gender", "Household income", "Interview weight"]


def survey_frame() -> Any:
    return pd.DataFrame(SURVEY)


def write_statistical(tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / f"survey.{fmt}"
    frame = survey_frame()
    if fmt == "dta":
        pyreadstat.write_dta(frame, path, column_labels=LABELS, variable_value_labels={"RIAGENDR": {1: "M", 2: "F"}})
    elif fmt == "sav":
        pyreadstat.write_sav(
            frame, path, column_labels=LABELS, variable_value_labels={"RIAGENDR": {1.0: "Male", 2.0: "Female"}}
        )
    elif fmt == "sas7bdat":
        pyreadstat.write_sas7bdat(frame, path, column_labels=LABELS, table_name="SURVEY")
    else:
        pyreadstat.write_xport(frame, path, column_labels=LABELS, table_name="SURVEY")
    return path


STATISTICAL = ["dta", "sav", "sas7bdat", "xpt"]


@pytest.mark.parametrize("fmt", STATISTICAL)
def test_statistical_files(home: Path, tmp_path: Path, fmt: str) -> None:
    lake = load(home, write_statistical(tmp_path, fmt))
    assert lake.current("t.data").rows == 4  # never an empty table
    assert column_types(lake) == {
        "seqn": "BIGINT",
        "statefip": "VARCHAR",
        "riagendr": "BIGINT",
        "income": "BIGINT",
        "wtint2yr": "DOUBLE",
    }
    assert rows(lake, "select seqn, statefip, riagendr, income from t.data order by seqn") == [
        (93703, "01", 2, 25000),
        (93704, "06", 1, None),
        (93705, "36", 2, 61000),
        (93706, "06", None, None),
    ]
    info = column_info(lake)
    assert info["income"]["markers"] == {"--": 1, "Not Available": 1}
    assert info["seqn"]["description"] == "Respondent sequence number"
    notes = conversion_notes(lake)
    assert notes["format"] == fmt and notes["declared_rows"] in (4, None)
    if fmt in ("dta", "sav"):
        assert set(notes["value_labels"]["riagendr"]) == {"1", "2"}


@pytest.mark.parametrize("fmt", STATISTICAL)
def test_statistical_files_type_and_raw(home: Path, tmp_path: Path, fmt: str) -> None:
    path = write_statistical(tmp_path, fmt)
    lake = load(home, path, types={"seqn": "VARCHAR", "INCOME": "varchar", "riagendr": "double"})
    assert column_types(lake)["seqn"] == "VARCHAR" and column_types(lake)["riagendr"] == "DOUBLE"
    assert rows(lake, "select seqn, income from t.data order by seqn limit 2") == [
        ("93703", "25000"),
        ("93704", "Not Available"),
    ]
    lake = load(home, path, table="t.raw", raw=True)
    assert set(column_types(lake, "t.raw").values()) == {"VARCHAR"}
    assert rows(lake, "select seqn, wtint2yr, riagendr from t.raw order by seqn limit 1") == [("93703", "9246.49", "2")]
    refused(home, path, "not BIGINT", table="t.bad", types={"wtint2yr": "integer"})


def test_stata_file_that_used_to_convert_to_zero_rows(home: Path, tmp_path: Path) -> None:
    path = write_statistical(tmp_path, "dta")
    assert path.read_bytes().startswith(b"<stata_dta>")  # text-like start: once read as an empty CSV
    lake = load(home, path)
    assert lake.current("t.data").rows == 4
    truncated = tmp_path / "cut.dta"
    truncated.write_bytes(path.read_bytes()[:900])
    refused(home, truncated, "cannot read cut.dta as Stata", table="t.cut")


def test_a_statistical_file_declaring_no_rows_is_an_empty_table(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "empty.sav"
    pyreadstat.write_sav(survey_frame().iloc[0:0], path)
    lake = load(home, path)
    assert lake.current("t.data").rows == 0 and "seqn" in column_types(lake)


def test_real_nhanes_type_and_raw(home: Path, realdata: Path) -> None:
    path = realdata / "nhanes/2018-sp-stats131/DEMO_I.XPT"
    lake = load(home, path, types={"seqn": "VARCHAR"})
    assert column_types(lake)["seqn"] == "VARCHAR"
    assert rows(lake, "select min(seqn) from t.data") == [("83732",)]
    lake = load(home, path, table="t.raw", raw=True)
    assert set(column_types(lake, "t.raw").values()) == {"VARCHAR"}


# -- Parquet, unreadable files ------------------------------------------------------------------------


def test_parquet_input_is_read_and_garbage_refused(home: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "f.parquet"
    table = pa.table({"Zip Code": ["02115", "10001"], "Beds": [5, 7], "Share": ["41%", "N/A"]})
    pq.write_table(table, path)
    lake = load(home, path)
    assert column_types(lake) == {"zip_code": "VARCHAR", "beds": "BIGINT", "share": "DOUBLE"}
    assert rows(lake, "select zip_code, beds, share from t.data order by 1") == [("02115", 5, 41.0), ("10001", 7, None)]
    lake = load(home, path, table="t.typed", types={"beds": "VARCHAR"})
    assert column_types(lake, "t.typed")["beds"] == "VARCHAR"
    garbage = tmp_path / "bad.parquet"
    garbage.write_bytes(b"PAR1" + b"\x15\x04" * 300)
    refused(home, garbage, "cannot read bad.parquet as Parquet", table="t.bad")


def test_unreadable_bytes_are_an_error_never_an_empty_table(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(bytes(range(256)) * 40)
    refused(home, path, r"cannot read data.csv: it is not CSV/TSV, JSON, .* \(it starts with \\x00\\x01")
    fake = tmp_path / "fake.xls"
    fake.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    refused(home, fake, "cannot read fake.xls as Excel .xls", table="t.fake")


# -- overrides ------------------------------------------------------------------------------------------


def test_an_unknown_type_column_fails_with_near_matches(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "f.csv", "Facility ID,Facility Name,Beds\n010001,A,5\n")
    refused(
        home,
        path,
        r"types\['facilty_id'\]='VARCHAR': no column \"facilty_id\" in the file \(did you mean: .*facility_id",
        types={"facilty_id": "VARCHAR"},
    )
    refused(
        home,
        path,
        r'no column "nosuch" in the file \(its columns: Facility ID, Facility Name, Beds',
        types={"nosuch": "VARCHAR"},
    )


def test_overrides_by_published_or_snake_case_name(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "f.csv", "Facility ID,Bed Count\n7,0012\n")
    lake = load(home, path, types={"Bed Count": "integer", "facility_id": "integer"})
    assert rows(lake, "select * from t.data") == [(7, 12)]


def test_json_overrides_raw_and_all_null_columns(home: Path, tmp_path: Path) -> None:
    records = [{"seqn": 93703, "zip": "02115", "rate": 1.5, "gone": None}, {"seqn": 93704, "zip": "10001", "rate": 2.0}]
    path = write(tmp_path, "r.json", json.dumps(records))
    lake = load(home, path)
    assert column_types(lake) == {"seqn": "BIGINT", "zip": "VARCHAR", "rate": "DOUBLE", "gone": "VARCHAR"}
    lake = load(home, path, table="t.typed", types={"seqn": "VARCHAR"})
    assert rows(lake, "select seqn from t.typed order by 1") == [("93703",), ("93704",)]
    lake = load(home, path, table="t.raw", raw=True)
    assert set(column_types(lake, "t.raw").values()) == {"VARCHAR"}
    # --raw: the numbers as published (json.dumps writes 2.0)
    assert rows(lake, "select seqn, rate from t.raw order by 1") == [("93703", "1.5"), ("93704", "2.0")]
    refused(home, path, 'no column "nosuch"', table="t.bad", types={"nosuch": "VARCHAR"})


# -- the listing's label is a hint ---------------------------------------------------------------------


def test_a_mislabelled_file_converts_and_the_mismatch_is_noted(
    cli: Cli, http_server: LocalServer, tmp_path: Path, home: Path
) -> None:
    url = http_server.add("/download", "fips,n\n01001,3\n", content_type="application/vnd.ms-excel")
    catalogs = manifest(tmp_path, [{"id": "counties", "title": "Counties", "url": url, "format": "xlsx"}])
    result = cli("--catalogs", str(catalogs), "fetch", "cms/counties", "--json")
    assert result.exit_code == 0, result.stderr
    [record] = json_lines(result.stdout)
    lake = Lake(home)
    assert rows(lake, f"select fips, n from {record['table']}") == [("01001", 3)]
    assert conversion_notes(lake, record["table"])["format_mismatch"] == "labelled xlsx, content csv"
