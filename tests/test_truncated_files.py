"""A text file cut short (a download stopped mid-row, a copy interrupted) is refused, never
published as a good snapshot of its first part; a file that merely lacks its last line end loads;
bad rows keep a short reason."""

from __future__ import annotations

import gzip
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from liberacion.lake import Lake
from tests.conftest import Cli

HEADER = ",".join(f"c{i}" for i in range(10))


def table_text(rows: int = 300) -> str:
    """A header and ``rows`` rows of ten fields, each line ending with LF."""
    return HEADER + "\n" + "".join(",".join(f"{r}-{i}" for i in range(10)) + "\n" for r in range(rows))


def fetch_json(cli: Cli, path: Path, table: str, *args: str) -> tuple[int, dict, str]:
    result = cli("fetch", str(path), "--as", table, "--json", *args)
    return result.exit_code, json.loads(result.stdout), result.stderr


def cut_before(text: str, mark: str) -> str:
    """``text`` up to and including ``mark``'s first occurrence: the file stops there."""
    return text[: text.index(mark) + len(mark)]


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda text: cut_before(text, "150-3"), id="fields-missing"),
        pytest.param(lambda text: cut_before(text.replace("150-4", '"150\n-4'), '"150\n-4,'), id="open-quote"),
        pytest.param(lambda text: cut_before(text.replace("\n", "\r\n"), "150-3"), id="crlf"),
    ],
)
def test_a_file_cut_off_mid_row_is_refused_and_the_table_keeps_its_rows(
    cli: Cli, tmp_path: Path, home: Path, cut: Callable[[str], str]
) -> None:
    full = tmp_path / "full.csv"
    full.write_text(table_text().rstrip("\n"))  # no line end after the last row, every field there: loads
    code, record, stderr = fetch_json(cli, full, "t.data")
    assert code == 0 and record["rows"] == 300 and record["rejects"] == 0, stderr

    cut_file = tmp_path / "cut.csv"
    cut_file.write_bytes(cut(table_text()).encode())  # one bad row in 151: under the 1% default limit
    code, record, stderr = fetch_json(cli, cut_file, "t.data")
    assert code == 1 and record["status"] == "failed" and record["stage"] == "convert"
    assert "ends inside a row (truncated?)" in record["error"] and "no line end" in record["error"]
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert Lake(home).current("t.data").rows == 300  # the previous snapshot stays


def test_the_message_says_where_the_row_stops(cli: Cli, tmp_path: Path, home: Path) -> None:
    cut_file = tmp_path / "cut.csv"
    cut_file.write_text(cut_before(table_text(), "150-3"))
    code, record, _stderr = fetch_json(cli, cut_file, "t.cut")
    assert code == 1
    assert "its last row, line 152, stops after 4 of 10 fields with no line end" in record["error"]
    assert not Lake(home).exists("t.cut")


def test_the_real_hospital_file_cut_short_keeps_the_full_table(
    cli: Cli, tmp_path: Path, home: Path, realdata: Path
) -> None:
    source = realdata / "cms" / "hospital-cms-dashboard" / "Hospital_General_Information.csv"
    if not source.exists():
        pytest.skip("Hospital_General_Information.csv is not in ../shared/realdata")
    cut_file = tmp_path / "t.csv"
    cut_file.write_bytes(source.read_bytes()[:724367])  # the last line: 4 of 38 fields, no line end
    assert fetch_json(cli, source, "cms.hgi")[0] == 0
    code, record, _stderr = fetch_json(cli, cut_file, "cms.hgi")
    assert code == 1 and "stops after 4 of 38 fields" in record["error"]
    assert Lake(home).current("cms.hgi").rows == 5381


def test_a_reject_reason_is_its_first_error_and_a_count_of_the_rest(cli: Cli, tmp_path: Path) -> None:
    """DuckDB reports a short last row once per field it lacks: the reason says the first one."""
    short = tmp_path / "short.csv"
    short.write_text(cut_before(table_text(), "150-3") + "\n")  # a line end: a bad row, not a cut file
    code, record, stderr = fetch_json(cli, short, "t.short")
    assert code == 0 and record["rows"] == 150 and record["rejects"] == 1, stderr
    result = cli("sql", "select line_number, reason from t.short__rejects", "--format", "json")
    [reject] = json.loads(result.stdout)
    assert reject["line_number"] == 152
    assert reject["reason"] == "MISSING COLUMNS: Expected Number of Columns: 10 Found: 4 (and 5 more)"


def ragged_text(rows: int = 300) -> str:
    """``table_text`` with short rows here and there (CDC files leave trailing empty fields out)."""
    lines = table_text(rows).splitlines(keepends=True)
    for r in (40, 100):
        lines[r + 1] = ",".join(f"{r}-{i}" for i in range(6)) + "\n"
    return "".join(lines)


def test_a_short_last_row_without_a_line_end_in_a_ragged_file_is_one_more_bad_row(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(cut_before(ragged_text(), "250-3"))  # short rows before it: not a file cut off
    code, record, stderr = fetch_json(cli, ragged, "t.ragged")
    assert code == 0 and record["rows"] == 248 and record["rejects"] == 3, stderr
    result = cli("sql", "select line_number from t.ragged__rejects order by 1", "--format", "json")
    assert [r["line_number"] for r in json.loads(result.stdout)] == [42, 102, 252]

    tiny = tmp_path / "tiny.csv"  # the same as the file with its last line end, 2 bad rows of 4
    tiny.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n9,10")
    code, record, stderr = fetch_json(cli, tiny, "t.tiny", "--max-bad-rows", "2")
    assert code == 0 and record["rows"] == 2 and record["rejects"] == 2, stderr

    # Inside a quote never closed, a ragged file is cut off all the same.
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(cut_before(ragged_text().replace("150-4", '"150\n-4'), '"150\n-4,'))
    code, record, _stderr = fetch_json(cli, quoted, "t.quoted")
    assert code == 1 and "ends inside a row (truncated?)" in record["error"]
    assert not Lake(home).exists("t.quoted")


@pytest.mark.parametrize("packing", ["zip", "gz"])
def test_a_short_last_row_from_an_archive_is_a_bad_row_its_checksum_proved_whole(
    cli: Cli, tmp_path: Path, packing: str
) -> None:
    """A zip member's or a gzip file's bytes pass a CRC as they are unpacked: the file is whole,
    so its short last row (no line end) is a bad row, as it would be with a line end."""
    text = cut_before(table_text(), "150-3").encode()
    if packing == "zip":
        packed = tmp_path / "short.zip"
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("short.csv", text)
    else:
        packed = tmp_path / "short.csv.gz"
        packed.write_bytes(gzip.compress(text))
    code, record, stderr = fetch_json(cli, packed, "t.packed")
    assert code == 0 and record["rows"] == 150 and record["rejects"] == 1, stderr
    result = cli("sql", "select line_number from t.packed__rejects", "--format", "json")
    assert json.loads(result.stdout) == [{"line_number": 152}]


@pytest.mark.parametrize(
    ("last", "said"),
    [("60,n60", "its last row, line 64, stops after 2 of 4 fields"), ('60,n60,"open\nmore', "from line 64, stops")],
)
def test_the_line_named_is_the_files_under_quoted_line_ends(cli: Cli, tmp_path: Path, last: str, said: str) -> None:
    # Two values above the cut spanning five lines: DuckDB's row number said line 61.
    rows = ["id,name,note,score", '1,a,"two\nlines",5', '2,b,"three\nmore\nlines",6']
    rows += [f"{i},n{i},plain,{i}" for i in range(3, 60)]
    source = tmp_path / "cut.csv"
    source.write_text("\n".join(rows) + "\n" + last, encoding="utf-8")
    code, report, _stderr = fetch_json(cli, source, "t.cut")
    assert code == 1 and said in report["error"], report["error"]
