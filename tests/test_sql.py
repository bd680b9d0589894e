"""`liberacion sql`, `tables` and `info` through the command line."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from liberacion.lake import Lake
from liberacion.snapshots import Provenance
from tests.conftest import ROOT, run_process

ANSI = "\x1b["


@pytest.fixture
def lake(home: Path) -> Lake:
    lake = Lake(home)
    table = pa.table(
        {
            "zip": ["02115", "10001", None],
            "beds": pa.array([12, None, 300], pa.int64()),
            "rate": [Decimal("1.50"), Decimal("2.25"), None],
            "opened": [date(2001, 2, 3), None, date(1999, 12, 31)],
            "name": ['Mercy "General", Inc.', "line\nbreak", "Ñandú"],
        }
    )
    lake.publish("cms.hospitals", table, Provenance(source_url="http://127.0.0.1/h.csv"))
    return lake


def test_csv_is_the_default_in_a_pipe_and_parses_back(cli, lake) -> None:
    result = cli("sql", "select * from cms.hospitals order by beds nulls first")
    assert result.exit_code == 0, result.stderr
    assert ANSI not in result.stdout
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["zip"] for r in rows] == ["10001", "02115", ""]
    assert rows[1]["name"] == 'Mercy "General", Inc.'
    assert rows[0]["name"] == "line\nbreak"
    assert rows[1]["opened"] == "2001-02-03" and rows[1]["rate"] == "1.50"


def test_tsv(cli, lake) -> None:
    result = cli("sql", "select zip, beds from cms.hospitals where beds = 12", "--format", "tsv")
    assert result.stdout == "zip\tbeds\n02115\t12\n"


def test_json_and_jsonl_parse_back(cli, lake) -> None:
    as_json = json.loads(
        cli("sql", "select zip, beds, rate, opened from cms.hospitals order by zip", "-f", "json").stdout
    )
    assert as_json[0] == {"zip": "02115", "beds": 12, "rate": 1.5, "opened": "2001-02-03"}
    assert as_json[2]["zip"] is None
    lines = cli("sql", "select zip, name from cms.hospitals order by zip", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["name"] for line in lines] == ['Mercy "General", Inc.', "line\nbreak", "Ñandú"]


def test_empty_json_result_is_an_empty_array(cli, lake) -> None:
    assert json.loads(cli("sql", "select * from cms.hospitals where false", "-f", "json").stdout) == []


def test_markdown(cli, lake) -> None:
    out = cli("sql", "select zip, beds from cms.hospitals where beds = 12", "--format", "markdown").stdout
    assert out.splitlines() == ["| zip | beds |", "|---|---|", "| 02115 | 12 |"]


def test_table_format_caps_rows_with_a_note(cli, lake) -> None:
    result = cli("sql", "select * from range(50)", "--format", "table", "--max-rows", "10")
    assert result.exit_code == 0
    assert "40 more rows not shown" in result.stdout


def test_parquet_needs_output_and_writes_atomically(cli, lake, tmp_path: Path) -> None:
    result = cli("sql", "select * from cms.hospitals", "--format", "parquet")  # to a pipe: written
    assert result.exit_code == 0 and result.stdout_bytes.startswith(b"PAR1")
    target = tmp_path / "out" / "h.parquet"
    result = cli("sql", "select zip, beds from cms.hospitals", "--format", "parquet", "--output", str(target))
    assert result.exit_code == 2 and "does not exist" in result.stderr  # a typo makes no directories
    target.parent.mkdir()
    result = cli("sql", "select zip, beds from cms.hospitals", "--format", "parquet", "--output", str(target))
    assert result.exit_code == 0
    assert pq.read_table(target).column("zip").to_pylist() == ["02115", "10001", None]
    assert [p.name for p in target.parent.iterdir()] == ["h.parquet"]


def test_stdin_and_file(cli, lake, tmp_path: Path) -> None:
    assert cli("sql", "-", input="select count(*) as n from cms.hospitals").stdout == "n\n3\n"
    query = tmp_path / "q.sql"
    query.write_text("select count(*) as n from cms.hospitals where beds > 100")
    assert cli("sql", "--file", str(query)).stdout == "n\n1\n"


def test_sql_error_is_one_line_and_nonzero(cli, lake) -> None:
    result = cli("sql", "select * from cms.no_such_table")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "no_such_table" in result.stderr
    assert result.stdout == ""


def test_error_found_mid_stream_is_an_sql_error(cli, lake) -> None:
    result = cli("sql", "select cast(name as integer) from cms.hospitals")
    assert result.exit_code == 4 and "error:" in result.stderr


def test_missing_sql_is_a_usage_error(cli) -> None:
    result = cli("sql")
    assert result.exit_code == 2 and "no SQL given" in result.stderr


def test_closed_pipe_ends_quietly(lake, home: Path) -> None:
    script = f"{sys.executable} -m liberacion sql 'select * from range(3000000)' | head -n 2"
    env = {"PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout == "range\n0\n"
    assert proc.stderr == ""


def test_home_option_and_environment(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other-home"
    Lake(other).publish("cdc.x", pa.table({"a": [1]}))
    assert "cdc" not in cli("tables").stdout  # LIBERACION_HOME points elsewhere
    assert "cdc,x,1," in cli("--home", str(other), "tables").stdout
    monkeypatch.setenv("LIBERACION_HOME", str(other))
    assert "cdc,x,1," in cli("tables").stdout


def test_tables_lists_provenance(cli, lake) -> None:
    rows = json.loads(cli("tables", "--format", "json").stdout)
    assert rows[0]["catalog"] == "cms" and rows[0]["table"] == "hospitals"
    assert rows[0]["rows"] == 3 and rows[0]["snapshots"] == 1
    assert rows[0]["source_url"] == "http://127.0.0.1/h.csv" and rows[0]["bytes"] > 0


def test_tables_on_an_empty_home(cli, home: Path) -> None:
    result = cli("tables")
    assert result.exit_code == 0 and result.stdout.startswith("catalog,table,rows")
    assert not home.exists()  # reading never creates the home


def test_info_shows_schema_and_snapshots(cli, lake) -> None:
    doc = json.loads(cli("info", "cms.hospitals", "--format", "json").stdout)
    columns = {c["name"]: c for c in doc["current"]["schema"]}
    assert columns["zip"]["type"] == "VARCHAR" and columns["zip"]["null_count"] == 1
    assert columns["beds"]["type"] == "BIGINT"
    assert len(doc["snapshots"]) == 1
    table = cli("info", "cms.hospitals", "--format", "table").stdout
    assert "schema" in table and "zip" in table and "http://127.0.0.1/h.csv" in table


def test_info_on_a_missing_table(cli) -> None:
    result = cli("info", "cms.nothing")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: no table cms.nothing") and "liberacion tables" in result.stderr


def test_info_with_a_bad_name_is_a_usage_error(cli) -> None:
    result = cli("info", "not a table")
    assert result.exit_code == 2 and result.stderr.startswith("error: invalid table name")


def test_version_and_help_from_a_real_process() -> None:
    assert run_process("--version").stdout.startswith("liberacion ")
    proc = run_process("--help")
    assert proc.returncode == 0
    assert all(command in proc.stdout for command in ("sql", "tables", "info"))


def test_a_memory_limit_too_small_for_the_views_is_one_line_exit_4(cli, lake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIBERACION_MEMORY_LIMIT", "1KB")
    result = cli("sql", "select 1")
    assert result.exit_code == 4, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: Out of Memory Error") and "LIBERACION_MEMORY_LIMIT" in line
    assert "internal error" not in line


def test_the_snapshot_listing_of_an_empty_lake_has_no_rows(cli, home: Path) -> None:
    result = cli("sql", "select count(*) as n from liberacion.snapshots", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == [{"n": 0}], result.stderr
    columns = cli("sql", "select * from liberacion.snapshots").stdout.strip()
    assert columns == "table_name,snapshot,published_at,rows,bytes,sha256,source_url,is_current,path"
    assert not home.exists()  # reading never creates the home
