"""Conversion: formats, typing rules, bad rows, and real HHS files."""

from __future__ import annotations

import gzip
import json
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liberacion.errors import ConversionError
from liberacion.fetching import FetchOptions, FetchResult, fetch
from liberacion.lake import Lake
from liberacion.query import run


def fetch_file(home: Path, path: Path, table: str = "t.data", **options: Any) -> FetchResult:
    """``liberacion fetch PATH --as TABLE``, the production path: inspect, convert, publish (zip
    members and sheets as ``TABLE__<member>``). ``options``: FetchOptions' types, raw, member, max_bad_rows."""
    [result] = fetch([str(path)], home, FetchOptions(table=table, **options))
    return result


def load(home: Path, path: Path, table: str = "t.data", **options: Any) -> Lake:
    """Fetch a local file; the test fails unless it was converted and published."""
    result = fetch_file(home, path, table, **options)
    assert result.status == "fetched", result.error
    return Lake(home)


def refused(home: Path, path: Path, match: str, table: str = "t.data", **options: Any) -> None:
    """Fetch a file that must not convert: the fetch fails with a conversion error matching
    ``match`` and publishes no table."""
    result = fetch_file(home, path, table, **options)
    assert result.status == "failed", f"expected a failure, got {result.status} ({result.tables})"
    assert result.error is not None and re.search(match, result.error), result.error
    assert result.error_code == ConversionError.exit_code
    assert not [n for n in Lake(home).names() if n == table or n.startswith(table + "__")]


def fresh(tmp_path: Path) -> Path:
    """A new directory for one Hypothesis example (tmp_path is shared by all of them)."""
    return Path(tempfile.mkdtemp(dir=tmp_path))


def rows(lake: Lake, sql: str) -> list[tuple]:
    return [tuple(r.values()) for r in run(lake, sql).read_all().to_pylist()]


def column_types(lake: Lake, table: str = "t.data") -> dict[str, str]:
    return {c.name: c.type for c in lake.current(table).schema}


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# -- typing rules on small files --------------------------------------------------------------------


def test_late_leading_zero_and_late_marker(home: Path, tmp_path: Path) -> None:
    body = "".join(f"{10000 + i},{i},{i}.5,01/0{1 + i % 9}/2023\n" for i in range(60_000))
    body += "02115,Not Available,*,02/13/2023\n"  # after the sample: a zero-padded code and markers
    lake = load(home, write(tmp_path, "f.csv", "code,count,rate,when\n" + body))
    types = column_types(lake)
    assert types == {"code": "VARCHAR", "count": "BIGINT", "rate": "DOUBLE", "when": "DATE"}
    assert rows(lake, "select * from t.data where code = '02115'") == [
        ("02115", None, None, __import__("datetime").date(2023, 2, 13))
    ]
    info = lake.current("t.data").provenance.columns
    assert info["count"]["markers"] == {"Not Available": 1} and info["rate"]["markers"] == {"*": 1}


def test_identifier_names_stay_text_and_values_are_kept(home: Path, tmp_path: Path) -> None:
    lake = load(home, write(tmp_path, "f.csv", "ZIP Code,NPI,Facility ID,Beds\n2115,1234567890,10001,5\n"))
    assert column_types(lake) == {"zip_code": "VARCHAR", "npi": "VARCHAR", "facility_id": "VARCHAR", "beds": "BIGINT"}
    assert rows(lake, "select * from t.data") == [("2115", "1234567890", "10001", 5)]


def test_quantities_named_after_codes_are_numbers(home: Path, tmp_path: Path) -> None:
    # AHRQ's and NCHS's "Number"/"Percent" pairs, and counts of codes: what the name counts, or
    # values no identifier is written in (separators, $, %), make a quantity of an id-like name.
    header = "Number,Number of ZIP codes,Phone visits,ICD-10 deaths,Tract count,NPI,Facility ID\n"
    text = header + '"35,798,453","1,234",5,6,7,1234567890,10001\n"1,000",12,3,4,5,1234567891,10002\n'
    lake = load(home, write(tmp_path, "f.csv", text))
    assert column_types(lake) == {
        "number": "BIGINT",
        "number_of_zip_codes": "BIGINT",
        "phone_visits": "BIGINT",
        "icd_10_deaths": "BIGINT",
        "tract_count": "BIGINT",
        "npi": "VARCHAR",
        "facility_id": "VARCHAR",
    }
    assert rows(lake, "select number, number_of_zip_codes from t.data order by 1") == [(1000, 12), (35798453, 1234)]
    assert "named like an identifier" in lake.current("t.data").provenance.columns["number"]["rule"]
    # NPPES's "number" (an NPI), plain digits: an id, as its name says.
    lake = load(home, write(tmp_path, "g.csv", "number,name\n1234567890,A\n1234567891,B\n"), "t.npi")
    assert column_types(lake, "t.npi")["number"] == "VARCHAR"


def test_numbers_with_separators_currency_percent_and_booleans(home: Path, tmp_path: Path) -> None:
    text = 'deaths,paid,share,er,day\n"169,936","$1,234.50",41%,Yes,2024-01-02\n12,$ 5.00,3.5%,No,2024-01-03\n'
    lake = load(home, write(tmp_path, "f.csv", text))
    assert column_types(lake) == {
        "deaths": "BIGINT",
        "paid": "DECIMAL(18,2)",
        "share": "DOUBLE",
        "er": "BOOLEAN",
        "day": "DATE",
    }
    first = rows(lake, "select deaths, paid::double, share, er from t.data order by deaths desc")[0]
    assert first == (169936, 1234.5, 41.0, True)
    assert lake.current("t.data").provenance.columns["share"]["percent"] is True


def test_day_first_only_when_a_value_proves_it(home: Path, tmp_path: Path) -> None:
    lake = load(home, write(tmp_path, "f.csv", "a,b\n01/02/2023,01/02/2023\n03/04/2023,25/12/2023\n"))
    assert rows(lake, "select strftime(a, '%Y-%m-%d'), strftime(b, '%Y-%m-%d') from t.data") == [
        ("2023-01-02", "2023-02-01"),
        ("2023-03-04", "2023-12-25"),
    ]


def test_mixed_values_stay_text_exactly(home: Path, tmp_path: Path) -> None:
    lake = load(home, write(tmp_path, "f.csv", "v,w\n12,1.0\nabc,1.50\n"))
    assert column_types(lake)["v"] == "VARCHAR"
    assert rows(lake, "select v from t.data") == [("12",), ("abc",)]


def test_overrides_and_raw(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "f.csv", "id,n\n7,0012\n")
    lake = load(home, path, types={"n": "integer"})
    assert rows(lake, "select n from t.data") == [(12,)]
    lake = load(home, write(tmp_path, "g.csv", "id,n\n7,Not Available\n"), table="t.raw", raw=True)
    assert rows(lake, "select * from t.raw") == [("7", "Not Available")]
    refused(home, write(tmp_path, "h.csv", "id,n\n7,abc\n"), "not BIGINT", table="t.bad", types={"n": "integer"})


def test_column_names_are_snake_case_unique_and_never_empty(home: Path, tmp_path: Path) -> None:
    lake = load(home, write(tmp_path, "f.csv", "Hospital Name,hospital name,,Ação %\na,b,c,d\n"))
    schema = lake.current("t.data").schema
    assert [c.name for c in schema] == ["hospital_name", "hospital_name_2", "column_3", "acao"]
    assert [c.original for c in schema] == ["Hospital Name", "hospital name", "", "Ação %"]


# -- text files: encodings, dialects, bad rows --------------------------------------------------------


def test_bom_crlf_tab_and_quoted_newlines(home: Path, tmp_path: Path) -> None:
    text = '\ufeffname\tnote\r\n"a"\t"line one\r\nline ""two"""\r\nb\tplain\r\n\r\n'
    lake = load(home, write(tmp_path, "f.tsv", text))
    assert rows(lake, "select * from t.data") == [("a", 'line one\r\nline "two"'), ("b", "plain")]


def test_cp1252_is_detected_and_a_stray_byte_never_crashes(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes("city,n\nSchwäbisch,1\n".encode("cp1252") + b"Caf\x81,2\n")
    lake = load(home, path)
    assert rows(lake, "select city from t.data order by n") == [("Schwäbisch",), ("Caf\ufffd",)]
    notes = lake.current("t.data").provenance.extra["conversion"]
    assert notes["encoding"] == "cp1252" and notes["replaced_bytes"] == 1


def test_cp1252_met_only_in_the_middle_of_a_large_file_is_still_transcoded(home: Path, tmp_path: Path) -> None:
    """Only the first and last megabyte are checked before DuckDB reads; the reader finds the rest."""
    path = tmp_path / "f.csv"
    plain = "".join(f"Town {i},{i}\n" for i in range(150_000)).encode("ascii")  # about 2 MB each side
    path.write_bytes(b"city,n\n" + plain + "Cañon City,-1\n".encode("cp1252") + plain)
    lake = load(home, path)
    assert rows(lake, "select city from t.data where n = -1") == [("Cañon City",)]
    assert rows(lake, "select count(*) from t.data") == [(300_001,)]
    extra = lake.current("t.data").provenance.extra
    assert extra["conversion"]["encoding"] == "cp1252" and "replaced_bytes" not in extra["conversion"]
    assert extra["rejects"] == 0  # the first read's rejected row is not kept


def test_bad_rows_go_to_rejects_and_a_truncated_last_row_is_not_a_crash(home: Path, tmp_path: Path) -> None:
    good = "".join(f"{i},x{i}\n" for i in range(300))
    lake = load(home, write(tmp_path, "f.csv", "a,b\n" + good + "1,2,3\n" + '5,"unterminated\n'))
    assert lake.current("t.data").rows == 300
    rejects = rows(lake, "select line_number, raw_text from t.data__rejects order by 1")
    assert len(rejects) == 2 and rejects[0][0] == 302 and rejects[0][1] == "1,2,3"
    # Without its line end, the open quote is where the file stops: cut short, refused (tests/test_truncated_files.py).
    refused(home, write(tmp_path, "e.csv", "a,b\n" + good + '5,"unterminated'), "truncated", table="t.e")
    refused(home, write(tmp_path, "g.csv", "a,b\n1,2\n1,2,3\n1,2,3\n"), "bad rows", table="t.g")
    lake = load(home, write(tmp_path, "h.csv", "a,b\n1,2\n1,2,3\n1,2,3\n"), table="t.h", max_bad_rows=5)
    assert lake.current("t.h").rows == 1 and len(rows(lake, "select * from t.h__rejects")) == 2


def test_fields_of_megabytes_convert_in_the_sample_and_after_it(home: Path, tmp_path: Path) -> None:
    """Quoted fields of megabytes (with newlines) among the sample's rows and far after them are
    kept whole and do not stop typing; a line over the 8 MiB limit is one bad row, not a failure."""
    long = "word \n" * (1_000_000)  # 6 MB, 1,000,000 lines inside one field
    short = "".join(f"{i},{i * 2},x\n" for i in range(3, 200_000))  # about 2.5 MB
    text = f'id,n,note\n1,5,"{long}"\n2,"7","a"\n{short}200000,1,"{long}"\n'
    text += f'200001,2,"{"y" * (9 << 20)}"\n200002,3,z\n'
    lake = load(home, write(tmp_path, "f.csv", text))
    assert column_types(lake)["n"] == "BIGINT"
    total = 5 + 7 + sum(i * 2 for i in range(3, 200_000)) + 1 + 3
    assert rows(lake, "select count(*), sum(n) from t.data") == [(200_001, total)]
    assert rows(lake, "select id, length(note) from t.data where length(note) > 1000 order by 1") == [
        ("1", len(long)),
        ("200000", len(long)),
    ]
    assert lake.current("t.data").provenance.extra["rejects"] == 1


def test_trailing_notes_block_is_excluded_and_kept(home: Path, tmp_path: Path) -> None:
    text = '"Notes","Year",Deaths\n,"1999",2391399\n,"2000",2403351\n'
    text += '"---"\n"Dataset: Underlying Cause of Death"\n"Query Date: Jan 1"\n'
    lake = load(home, write(tmp_path, "wonder.txt", text))
    assert rows(lake, "select year, deaths from t.data order by 1") == [(1999, 2391399), (2000, 2403351)]
    assert "Underlying Cause of Death" in lake.current("t.data").provenance.extra["conversion"]["wonder_notes"]
    text = "a,b\n1,2\n3,4\n---\nsource: a survey\n"  # not WONDER-shaped: kept as plain trailing notes
    lake = load(home, write(tmp_path, "other.csv", text), table="t.other")
    assert rows(lake, "select * from t.other order by a") == [(1, 2), (3, 4)]
    assert lake.current("t.other").provenance.extra["conversion"]["trailing_notes"] == "---\nsource: a survey"


# -- archives, JSON, Excel, XPT ------------------------------------------------------------------------


def test_zip_with_several_members_and_member_choice(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "pkg.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data/a.csv", "x\n1\n")
        zf.writestr("data/b.csv", "y\n2\n")
        zf.writestr("dictionary.pdf", "%PDF")
    lake = load(home, path)
    assert lake.names() == ["t.data__a", "t.data__b"]
    load(home, path, table="t.only", member="b.csv")
    assert rows(lake, "select * from t.only") == [(2,)]


def test_zip_member_escaping_the_directory_is_refused(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("../../etc/evil.csv", "x\n1\n")
    refused(home, path, "escape")


def test_gzip(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "f.csv.gz"
    path.write_bytes(gzip.compress(b"a\n1\n2\n"))
    assert rows(load(home, path), "select sum(a) from t.data") == [(3,)]


def test_json_array_jsonl_and_openfda(home: Path, tmp_path: Path) -> None:
    lake = load(
        home, write(tmp_path, "a.json", json.dumps([{"zip": "02115", "n": "12"}, {"zip": "10001", "n": "N/A"}]))
    )
    assert rows(lake, "select zip, n from t.data order by zip") == [("02115", 12), ("10001", None)]
    load(home, write(tmp_path, "b.jsonl", '{"a": 1, "b": {"c": [1, 2]}}\n{"a": 2, "b": {"c": []}}\n'), table="t.lines")
    assert rows(lake, "select a, len(b.c) from t.lines order by a") == [(1, 2), (2, 0)]
    fda = {
        "meta": {"results": {"skip": 0, "limit": 2, "total": 2}},
        "results": [{"id": "1", "drug": [{"name": "x"}]}, {"id": "2", "drug": []}],
    }
    load(home, write(tmp_path, "c.json", json.dumps(fda)), table="t.fda")
    assert rows(lake, "select id, drug[1].name from t.fda order by id") == [("1", "x"), ("2", None)]
    assert column_types(lake, "t.fda")["drug"].startswith("STRUCT")


def test_html_is_never_taken_for_data(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "DEMO_J.xpt", "<!DOCTYPE html><html><body>Page not found</body></html>")
    refused(home, path, "HTML page")


# -- real HHS files ---------------------------------------------------------------------------------


def test_real_cms_hospital_general_information(home: Path, realdata: Path) -> None:
    lake = load(home, realdata / "cms/hospital-cms-dashboard/Hospital_General_Information.csv")
    types = column_types(lake)
    assert types["facility_id"] == "VARCHAR" and types["hospital_overall_rating"] == "BIGINT"
    assert rows(lake, "select count(*) from t.data where facility_id = '010001'") == [(1,)]
    assert rows(lake, "select count(*) from t.data where hospital_overall_rating is null") == [(2509,)]
    assert lake.current("t.data").provenance.columns["hospital_overall_rating"]["markers"] == {"Not Available": 2509}


def test_real_nhanes_demo(home: Path, realdata: Path) -> None:
    lake = load(home, realdata / "nhanes/2018-sp-stats131/DEMO_I.XPT")
    snap = lake.current("t.data")
    assert snap.rows == 9971 and snap.schema[0].name == "seqn" and snap.schema[0].type == "BIGINT"
    assert snap.provenance.columns["seqn"]["description"] == "Respondent sequence number"
    assert rows(lake, "select min(seqn) from t.data") == [(83732,)]


def test_real_leading_causes_with_bom_and_thousands(home: Path, realdata: Path) -> None:
    lake = load(home, realdata / "cdc/ds4biomed/NCHS_-_Leading_Causes_of_Death__United_States.csv")
    assert column_types(lake)["deaths"] == "BIGINT" and lake.current("t.data").rows == 10868
    assert rows(lake, "select count(*) from t.data where deaths = 169936") == [(1,)]


def test_real_places_keeps_fips_zeros(home: Path, realdata: Path) -> None:
    lake = load(
        home, realdata / "cdc/HealthAnalyticsInterviewCase/PLACES__County_Data__GIS_Friendly_Format___2022_release.csv"
    )
    assert rows(lake, "select county_fips from t.data order by 1 limit 1") == [("01001",)]


def test_real_zips_and_workbook(home: Path, realdata: Path) -> None:
    lake = load(home, realdata / "cdc/Project_Files/child19csv.zip", table="t.child")
    assert lake.current("t.child").rows == 9193 and len(lake.current("t.child").schema) == 341
    load(home, realdata / "fda/openfda-tests/unfinished.zip", table="t.ndc")
    assert lake.names()[1:] == ["t.ndc__unfinished_package", "t.ndc__unfinished_product"]
    assert rows(lake, "select count(*) from t.ndc__unfinished_product where labelername like '%Schwäbisch%'")[0][0] > 0
    load(home, realdata / "cms/ds4biomed/State_Table_MCC_Utiliz_Spend_by_Sex_and_Age_2017.xlsx", table="t.mcc")
    assert {"t.mcc__females", "t.mcc__males"} <= set(lake.names())
    assert column_types(lake, "t.mcc__males")["state_fips_code"] == "VARCHAR"


def test_real_json_files(home: Path, realdata: Path) -> None:
    lake = load(home, realdata / "fda/Business-Intelligence-Coursework/animalandveterinary-event-0001-of-0001.json")
    assert lake.current("t.data").rows == 204
    load(home, realdata / "fda/openfda-tests/harmonized.small.json", table="t.h")
    assert lake.current("t.h").rows == 500
    load(home, realdata / "cdc/nchs-dqs/DeathRatesForSuicide.json", table="t.s")
    assert lake.current("t.s").rows == 5658


# -- properties ----------------------------------------------------------------------------------------

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(st.lists(st.integers(min_value=0, max_value=99_999), min_size=1, max_size=40))
def test_property_zero_padded_codes_stay_text(tmp_path: Path, codes: list[int]) -> None:
    values = [f"{c:05d}" for c in codes]
    if not any(v.startswith("0") for v in values):
        values[0] = "0" + values[0][1:]
    work = fresh(tmp_path)
    home, path = work / "home", write(work, "p.csv", "value\n" + "\n".join(values) + "\n")
    lake = load(home, path)
    assert column_types(lake)["value"] == "VARCHAR"
    assert [r[0] for r in rows(lake, "select value from t.data")] == values


@FAST
@given(
    st.lists(
        st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False, width=32)),
        min_size=1,
        max_size=30,
    )
)
def test_property_numbers_round_trip(tmp_path: Path, numbers: list[float]) -> None:
    work = fresh(tmp_path)
    home, path = work / "home", write(work, "n.csv", "x\n" + "\n".join(repr(n) for n in numbers) + "\n")
    lake = load(home, path)
    assert [r[0] for r in rows(lake, "select x from t.data")] == pytest.approx([float(n) for n in numbers], rel=1e-15)


@FAST
@given(
    st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
        min_size=1,
        max_size=20,
    )
)
def test_property_no_text_value_is_silently_changed(tmp_path: Path, texts: list[str]) -> None:
    work = fresh(tmp_path)
    home = work / "home"
    values = ["t:" + t for t in texts]  # never a number or a marker
    path = work / "x.csv"
    pq_rows = "\n".join('"' + v.replace('"', '""') + '"' for v in values)
    path.write_text("v\n" + pq_rows + "\n", encoding="utf-8")
    lake = load(home, path)
    assert [r[0] for r in rows(lake, "select v from t.data")] == values
    assert pq.read_table(lake.current("t.data").data_paths[0]).num_rows == len(values)


def test_info_shows_the_markers_a_column_had(cli, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    load(home, write(tmp_path, "f.csv", "rating,share\n3,41%\nNot Available,5%\n*,N/A\n"))
    out = cli("info", "t.data", "--format", "table").stdout
    assert "* ×1, Not Available ×1" in out and "N/A ×1; was a percent" in out


def _fetch_imports(home: Path, args: list[str], modules: tuple[str, ...]) -> list[str]:
    """Run ``liberacion fetch ARGS`` in a fresh interpreter: whether each of ``modules`` was imported
    by its end (after a pause in which a thread the fetch started would have begun its import),
    then the exit code, as printed words."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        "import sys, time\n"
        "from liberacion.cli import main\n"
        "try:\n    main()\nexcept SystemExit as done:\n    code = done.code\n"
        "time.sleep(0.3)\n"
        f"print(*(m in sys.modules for m in {modules!r}), code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    command = [sys.executable, "-c", code, "fetch", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    return done.stdout.split()[-len(modules) - 1 :] if done.stdout else [done.stderr]


def test_a_raw_fetch_does_not_import_numpy(home: Path, tmp_path: Path) -> None:
    """numpy is imported on a thread for the typed columns' exact slow paths (DuckDB's
    ``create_function`` needs it); ``--raw`` types nothing, so it never pays for it."""
    pytest.importorskip("numpy")  # installed with pyarrow: the import would happen
    csv = write(tmp_path, "p.csv", "n,paid\n" + "".join(f"{i},Not Available\n" for i in range(300)))
    assert _fetch_imports(home, [str(csv), "--as", "t.raw", "--raw", "--json"], ("numpy",)) == ["False", "0"]
    assert column_types(Lake(home), "t.raw") == {"n": "VARCHAR", "paid": "VARCHAR"}


@pytest.mark.parametrize("bad_row", [False, True, "long"], ids=["clean", "with-a-bad-row", "with-long-bad-rows"])
def test_fetching_a_csv_imports_neither_pandas_nor_pyarrow(home: Path, tmp_path: Path, bad_row: bool | str) -> None:
    """pyarrow imports pandas (0.16 s) whenever it turns a Python value into an Arrow one; pyarrow
    itself (with numpy, about 0.15 s and 70 MB) is not needed either: the sample is profiled and the
    staged files described in DuckDB, the rejects file's rows counted there too."""
    pytest.importorskip("pandas")  # installed with the test extras: the import would happen
    lines = [
        f"{i},{i % 12 + 1:02d}/{i % 28 + 1:02d}/2023,${i},Not Available,{i}%,2024-01-02T03:04:05" for i in range(1, 400)
    ]
    if bad_row:
        lines.insert(200, "1,2,3")  # too few fields: a rejected row
    if bad_row == "long":  # a quoted line end above it (its line number is mended) and a row DuckDB cuts
        lines.insert(100, '100,01/01/2023,$1,"Not\nAvailable",1%,2024-01-02T03:04:05')
        lines.insert(300, "1," + "x" * 20_000)
    csv = write(tmp_path, "p.csv", "n,day,paid,score,share,at\n" + "\n".join(lines) + "\n")
    imported = _fetch_imports(home, [str(csv), "--as", "t.data", "--json"], ("pandas", "pyarrow"))
    assert imported == ["False", "False", "0"]
    types = column_types(Lake(home))
    expected = {"n": "BIGINT", "day": "DATE", "paid": "DECIMAL(18,2)", "score": "VARCHAR", "share": "DOUBLE"}
    assert types == expected | {"at": "TIMESTAMP"}
    assert Lake(home).current("t.data").rejects == {False: 0, True: 1, "long": 2}[bad_row]


def test_unknown_is_an_answer_of_a_yes_no_column(home: Path, tmp_path: Path) -> None:
    # CDC's case surveillance: hosp_yn is Yes, No, Unknown or Missing. NULL would merge "Unknown"
    # with empty cells; a numeric column's "Unknown" is still a marker.
    lake = load(home, write(tmp_path, "f.csv", "hosp_yn,er,beds\nYes,Yes,1\nUnknown,No,Unknown\nNo,N/A,3\n"))
    assert column_types(lake) == {"hosp_yn": "VARCHAR", "er": "BOOLEAN", "beds": "BIGINT"}
    assert rows(lake, "select hosp_yn from t.data where hosp_yn = 'Unknown'") == [("Unknown",)]
    assert "'Unknown' answers" in lake.current("t.data").provenance.columns["hosp_yn"]["rule"]
    # The first "Unknown" past the sample: the column is decided again from all its values.
    text = "death_yn\n" + "Yes\nNo\n" * 30_000 + "Missing\n"
    lake = load(home, write(tmp_path, "g.csv", text), "t.later")
    assert column_types(lake, "t.later") == {"death_yn": "VARCHAR"}
    rule = lake.current("t.later").provenance.columns["death_yn"]["rule"]
    assert rule == "yes/no with 'Missing' answers: kept as text"
    assert rows(lake, "select count(*) from t.later where death_yn = 'Missing'") == [(1,)]


def test_yyyymmdd_numbers_are_dates_in_a_column_named_for_one(home: Path, tmp_path: Path) -> None:
    # openFDA's receivedate, an SPL's effective_time: BIGINT 20201231 could not be compared to a date.
    text = (
        "receivedate,effective_time,report_count,bad_date,receivedateformat\n"
        "20201231,20200101,20201231,20210231,102\n"
        "20040102,19991231,20040102,20210101,102\n"
    )
    lake = load(home, write(tmp_path, "f.csv", text))
    assert column_types(lake) == {
        "receivedate": "DATE",
        "effective_time": "DATE",
        "report_count": "BIGINT",  # eight digits under a name that is no date's: a number
        "bad_date": "VARCHAR",  # February 31st: kept as published
        "receivedateformat": "BIGINT",
    }
    assert rows(lake, "select strftime(receivedate, '%Y-%m-%d') from t.data order by 1") == [
        ("2004-01-02",),
        ("2020-12-31",),
    ]


def test_nested_json_fields_follow_the_top_level_rules(home: Path, tmp_path: Path) -> None:
    # A nested key holding strings and numbers was DuckDB's JSON type: '"00501"', quotes and all,
    # so addr.zip = '00501' matched nothing; a nested NPI was a number.
    records = [
        {"addr": {"zip": 2115, "npi": 1234567890, "beds": 5}, "drugs": [{"ndc": 12, "route": "oral"}], "o": {"a": 1}},
        {"addr": {"zip": "00501", "npi": 1234567891, "beds": 7}, "drugs": [{"ndc": "0002-3227", "route": "iv"}]},
    ]
    lake = load(home, write(tmp_path, "n.json", json.dumps(records)))
    assert column_types(lake) == {
        "addr": "STRUCT(zip VARCHAR, npi VARCHAR, beds BIGINT)",
        "drugs": "STRUCT(ndc VARCHAR, route VARCHAR)[]",
        "o": "STRUCT(a BIGINT)",  # nothing to make text: as read
    }
    assert rows(lake, "select addr.npi, addr.beds, drugs[1].ndc from t.data where addr.zip = '00501'") == [
        ("1234567891", 7, "0002-3227")
    ]
    assert rows(lake, "select addr.zip, drugs[1].ndc, o from t.data where addr.beds = 5") == [("2115", "12", {"a": 1})]
