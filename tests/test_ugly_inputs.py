"""Files a new user meets on the first day: each converts right, or fails with one line and keeps
the table as it was; nothing lost is kept quiet."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from liberacion.lake import Lake


def rows_of(home: Path, table: str) -> int:
    return Lake(home).current(table).rows


def column_types(cli, table: str) -> dict[str, str]:
    described = json.loads(cli("sql", f"describe {table}", "-f", "json").stdout)
    return {r["column_name"]: r["column_type"] for r in described}


def good_csv(path: Path, rows: int = 200) -> Path:
    path.write_text("Facility ID,Name,Rating\n" + "".join(f"{i:06d},Hosp {i},{i % 5}\n" for i in range(rows)))
    return path


def test_an_unclosed_quote_counts_every_line_it_swallows(cli, home: Path, tmp_path: Path) -> None:
    lines = ["Facility ID,Name,Rating"] + [f"{i:06d},Hosp {i},{i % 5}" for i in range(1, 100)]
    lines += ['000100,"Broken name,3'] + [f"{i:06d},Hosp {i},{i % 5}" for i in range(101, 201)]
    source = tmp_path / "broken.csv"
    source.write_text("\n".join(lines) + "\n")

    refused = cli("fetch", str(source), "--as", "t.broken")
    assert refused.exit_code == 1
    assert "1 bad row spanning 101 lines" in refused.stderr and "Traceback" not in refused.stderr
    assert not Lake(home).exists("t.broken")  # 101 of 200 rows lost is not a load that passes

    allowed = cli("fetch", str(source), "--as", "t.broken", "--max-bad-rows", "150", "--json")
    assert allowed.exit_code == 0, allowed.stderr
    record = json.loads(allowed.stdout)
    assert record["rows"] == 99 and record["rejects"] == 1
    assert "note: t.broken: 1 bad row (spanning 101 lines) set aside in t.broken__rejects" in allowed.stderr
    conversion = Lake(home).current("t.broken").provenance.extra["conversion"]
    assert conversion["rejected_lines"] == 101

    # A long quoted field left open at the end is one bad row, however many lines of it there
    # are: its lines are not rows. (Without a line end after it, the file was cut short: refused.)
    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join(lines[:51]) + '\n000051,"Notes, page one\nstill the notes\nand more\n')
    result = cli("fetch", str(cut), "--as", "t.cut", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 50 and json.loads(result.stdout)["rejects"] == 1
    cut.write_text("\n".join(lines[:51]) + '\n000051,"Notes, page one\nstill the notes\nand more')
    result = cli("fetch", str(cut), "--as", "t.cut", "--json")
    assert result.exit_code == 1 and "truncated?" in result.stderr
    assert Lake(home).current("t.cut").rows == 50  # the table keeps its snapshot


def test_rows_ending_with_a_delimiter_the_header_lacks_keep_the_header(cli, home: Path, tmp_path: Path) -> None:
    source = tmp_path / "trailing.csv"
    source.write_text("Facility ID,Name,Rating\n" + "".join(f"{i:06d},Hosp {i},{i % 5},\n" for i in range(1, 101)))
    assert cli("fetch", str(source), "--as", "t.trailing").exit_code == 0
    result = cli("sql", "select * from t.trailing order by facility_id limit 1", "--format", "json")
    assert json.loads(result.stdout) == [{"facility_id": "000001", "name": "Hosp 1", "rating": 1, "column_4": None}]
    assert rows_of(home, "t.trailing") == 100  # the first data row is data, not the header


def test_bad_rows_and_skipped_members_are_said_at_fetch(cli, tmp_path: Path) -> None:
    ragged = good_csv(tmp_path / "ragged.csv")
    lines = ragged.read_text().splitlines()
    lines[10] += ",extra"
    lines[20] = "19"
    ragged.write_text("\n".join(lines) + "\n")
    result = cli("fetch", str(ragged), "--as", "t.ragged")
    assert result.exit_code == 0
    assert "note: t.ragged: 2 bad rows set aside in t.ragged__rejects" in result.stderr

    bundle = tmp_path / "years.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("2023.csv", "a,b\n1,2\n3,4\n")
        zf.writestr("2024.csv", "<html><body>Internal Server Error</body></html>")
        zf.writestr("README.txt", "What the columns mean.\nSee the data dictionary.\n")
    result = cli("fetch", str(bundle), "--as", "t.years", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["rows"] == 2
    assert "note: t.years: skipped 2024.csv, README.txt: not a table liberacion can read" in result.stderr


def test_a_file_without_data_rows_never_empties_a_table(cli, home: Path, tmp_path: Path) -> None:
    source = good_csv(tmp_path / "hospitals.csv")
    assert cli("fetch", str(source), "--as", "t.h").exit_code == 0
    for content in ("Facility ID,Name,Rating\n", ""):  # a header alone; a file the server cut to nothing
        source.write_text(content)
        result = cli("fetch", str(source), "--as", "t.h")
        assert result.exit_code == 1
        assert rows_of(home, "t.h") == 200
    source.write_text("Facility ID,Name,Rating\n")
    result = cli("fetch", str(source), "--as", "t.h")
    assert "no data rows, and t.h has 200: the table was kept as it was" in result.stderr
    assert "--allow-empty" in result.stderr
    assert cli("fetch", str(source), "--as", "t.h", "--allow-empty").exit_code == 0
    assert rows_of(home, "t.h") == 0
    assert cli("fetch", str(source), "--as", "t.new").exit_code == 0  # a new table may start empty


def test_files_that_are_not_data_fail_with_one_line(cli, home: Path, tmp_path: Path) -> None:
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\n   \n")
    pdf = tmp_path / "report.csv"
    pdf.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n")
    answer = tmp_path / "answer.json"
    answer.write_text('{"error": {"code": "NOT_FOUND", "message": "No matches found!"}}')
    document = tmp_path / "letter.csv"  # a .docx under another name: a zip of XML parts
    with zipfile.ZipFile(document, "w") as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        zf.writestr("word/document.xml", '<?xml version="1.0"?><w:document/>')
    expected = {
        blank: "blank.csv is empty: no header row",
        pdf: "cannot read report.csv: it is not CSV",
        answer: "answer.json holds an error message, not data",
        document: "letter.csv contains no data files",
    }
    for path, message in expected.items():
        result = cli("fetch", str(path), "--as", "t.x")
        assert result.exit_code == 1, path.name
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], result.stderr
        assert "Traceback" not in result.stderr
    assert not Lake(home).exists("t.x")
    assert not (home / "lake" / "t" / "x").exists()  # no empty folder left behind either


def test_one_day_first_date_among_us_dates_does_not_flip_the_column(cli, tmp_path: Path) -> None:
    rows = ["id,report_date"] + [f"{i},{i % 12 + 1:02d}/{i * 7 % 12 + 1:02d}/2020" for i in range(3000)]
    rows[2500] = "2499,13/01/2020"  # a typo, or one row from another system
    source = tmp_path / "dates.csv"
    source.write_text("\n".join(rows) + "\n")
    assert cli("fetch", str(source), "--as", "t.dates").exit_code == 0
    got = json.loads(cli("sql", "select report_date from t.dates where id = '1'", "--format", "json").stdout)
    assert got == [{"report_date": "02/08/2020"}]  # as published: not read as 2 August, nor as 8 February
    rows = ["id,report_date"] + [f"{i},{i % 28 + 1:02d}/{i % 12 + 1:02d}/2020" for i in range(3000)]
    source.write_text("\n".join(rows) + "\n")  # day-first throughout: still read as day-first
    assert cli("fetch", str(source), "--as", "t.dates").exit_code == 0
    got = json.loads(cli("sql", "select report_date from t.dates where id = '13'", "--format", "json").stdout)
    assert got == [{"report_date": "2020-02-14"}]


def test_a_column_of_one_single_letter_flag_stays_text(cli, tmp_path: Path) -> None:
    rows = ["week,notifiable_flag,reported"] + [f"{i},N,{'Y' if i % 2 else 'N'}" for i in range(300)]
    rows[5] = "4,-,Y"
    source = tmp_path / "flags.csv"
    source.write_text("\n".join(rows) + "\n")
    assert cli("fetch", str(source), "--as", "t.flags").exit_code == 0
    types = column_types(cli, "t.flags")
    assert types["notifiable_flag"] == "VARCHAR" and types["reported"] == "BOOLEAN"
    got = cli("sql", "select notifiable_flag, count(*) n from t.flags group by 1 order by 1", "-f", "json")
    assert json.loads(got.stdout) == [{"notifiable_flag": "-", "n": 1}, {"notifiable_flag": "N", "n": 299}]


def test_a_json_key_holding_strings_and_numbers_is_typed_from_its_text(cli, tmp_path: Path) -> None:
    records = [{"zip": "02115", "npi": "1234567893", "amount": "12.5"} for _ in range(50)]
    records.append({"zip": 2115, "npi": 1234567893, "amount": 12.5})
    source = tmp_path / "providers.json"
    source.write_text(json.dumps(records))
    assert cli("fetch", str(source), "--as", "t.providers").exit_code == 0
    types = column_types(cli, "t.providers")
    assert types == {"zip": "VARCHAR", "npi": "VARCHAR", "amount": "DOUBLE"}
    got = cli("sql", "select count(*) n from t.providers where zip = '02115'", "-f", "json")
    assert json.loads(got.stdout) == [{"n": 50}]


def test_a_utf8_file_with_one_windows_1252_byte_keeps_its_utf8(cli, home: Path, tmp_path: Path) -> None:
    rows = "".join(f"{i},O\u2019NEIL CLINIC {i}\n" for i in range(3000) if i != 2500).encode("utf-8")
    source = tmp_path / "clinics.csv"
    source.write_bytes(b"id,name\n" + rows + b"2500,JOS\xc9 CLINIC\n")  # one row from another system
    assert cli("fetch", str(source), "--as", "t.clinics").exit_code == 0
    got = cli("sql", "select name from t.clinics where id in ('1', '2500') order by id", "-f", "json")
    assert json.loads(got.stdout) == [{"name": "O\u2019NEIL CLINIC 1"}, {"name": "JOS\u00c9 CLINIC"}]
    conversion = Lake(home).current("t.clinics").provenance.extra["conversion"]
    assert conversion["encoding"] == "utf-8+cp1252"


def test_utc_timestamps_and_accounting_negatives_are_typed(cli, tmp_path: Path) -> None:
    source = tmp_path / "payments.csv"
    source.write_text(
        "id,date_performed,total_payments\n"
        '1,2021-03-04T05:06:07Z,"$1,234.50"\n'
        '2,2021-03-04T05:06:07.250Z,"($1,234.00)"\n'
        "3, 2021-03-04T05:06:08Z,Not Available\n"  # a space before: the exact path, not the fast one
    )
    assert cli("fetch", str(source), "--as", "t.payments").exit_code == 0
    types = column_types(cli, "t.payments")
    assert types["date_performed"] == "TIMESTAMP" and types["total_payments"] == "DECIMAL(18,2)"
    got = cli(
        "sql", "select date_performed::VARCHAR d, total_payments::VARCHAR p from t.payments order by id", "-f", "json"
    )
    assert json.loads(got.stdout) == [
        {"d": "2021-03-04 05:06:07", "p": "1234.50"},
        {"d": "2021-03-04 05:06:07.25", "p": "-1234.00"},
        {"d": "2021-03-04 05:06:08", "p": None},
    ]


def test_openfda_and_nppes_ids_stay_text(cli, tmp_path: Path) -> None:
    source = tmp_path / "records.json"
    records = [{"number": 1234567893, "zip": 2115, "beds": 12, "safetyreportid": "10003301"} for _ in range(5)]
    source.write_text(json.dumps(records))
    assert cli("fetch", str(source), "--as", "t.records").exit_code == 0
    assert column_types(cli, "t.records") == {
        "number": "VARCHAR",  # NPPES's NPI
        "zip": "VARCHAR",
        "beds": "BIGINT",  # a count stays a number
        "safetyreportid": "VARCHAR",  # FAERS
    }
