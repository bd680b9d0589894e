"""``sql --safe`` (and LIBERACION_SQL_SAFE=1): the SQL reads the lake and nothing else; every query,
safe or not, has a memory limit and spills inside the home."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import Cli


@pytest.fixture
def lake(cli: Cli, tmp_path: Path) -> Path:
    data = tmp_path / "beds.csv"
    data.write_text("state,beds\nMA,5\nAL,3\n", encoding="utf-8")
    assert cli("fetch", str(data)).exit_code == 0
    return tmp_path


def _refused(result: object) -> str:
    assert result.exit_code == 4, (result.exit_code, result.stdout, result.stderr)  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr  # type: ignore[attr-defined]
    return lines[0]


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT 42) TO '{out}'",
        "COPY (SELECT * FROM local.beds) TO '{lake}/evil.csv'",
        "EXPORT DATABASE '{out}'",
        "ATTACH '{out}.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
    ],
)
def test_safe_refuses_statements_that_write_attach_or_load(cli: Cli, lake: Path, home: Path, statement: str) -> None:
    out = lake / "out.csv"
    sql = statement.format(out=out, lake=home / "lake")
    line = _refused(cli("sql", "--safe", sql))
    assert "--safe" in line
    assert not out.exists() and not (home / "lake" / "evil.csv").exists()
    assert not (lake / "out.csv.duckdb").exists()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('{data}')",
        "SELECT * FROM read_text('{home}/lake/../lake.duckdb')",
        "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
        "SET enable_external_access = true",
    ],
)
def test_safe_reads_nothing_outside_the_lake(cli: Cli, lake: Path, home: Path, sql: str) -> None:
    line = _refused(cli("sql", "--safe", sql.format(data=lake / "beds.csv", home=home)))
    assert "passwd" not in line or "root:" not in line


def test_the_environment_variable_turns_safe_on(cli: Cli, lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("sql", "SELECT count(*) AS n FROM read_text('/etc/hostname')", "--format", "json").exit_code == 0
    monkeypatch.setenv("LIBERACION_SQL_SAFE", "1")
    _refused(cli("sql", "SELECT * FROM read_text('/etc/hostname')"))
    monkeypatch.setenv("LIBERACION_SQL_SAFE", "maybe")
    result = cli("sql", "SELECT 1")
    assert result.exit_code == 5 and "LIBERACION_SQL_SAFE" in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "table"])
def test_lake_queries_work_under_safe(cli: Cli, lake: Path, fmt: str) -> None:
    result = cli("sql", "--safe", "SELECT state, beds FROM local.beds ORDER BY beds", "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert "MA" in result.stdout and "AL" in result.stdout


def test_safe_keeps_snapshots_the_index_and_output_files(cli: Cli, lake: Path) -> None:
    out = lake / "result.json"
    sql = "SELECT table_name, rows FROM liberacion.snapshots"
    result = cli("sql", "--safe", sql, "--output", str(out))
    assert result.exit_code == 0, result.stderr
    assert json.loads(out.read_text()) == [{"table_name": "local.beds", "rows": 2}]
    all_rows = cli("sql", "--safe", "SELECT count(*) AS n FROM liberacion.all_snapshots('local.beds')", "-f", "json")
    assert json.loads(all_rows.stdout) == [{"n": 2}]
    # the session's own tables are fine: they live in memory
    temp = cli("sql", "--safe", "CREATE TABLE t AS SELECT 1 AS x; SELECT x FROM t", "--format", "json")
    assert temp.exit_code == 0 and json.loads(temp.stdout) == [{"x": 1}]


def test_without_safe_user_sql_may_write_files(cli: Cli, lake: Path) -> None:
    out = lake / "copy.csv"
    assert cli("sql", f"COPY (SELECT * FROM local.beds) TO '{out}'").exit_code == 0
    assert out.read_text().startswith("state,beds")


def test_every_query_has_a_memory_limit_and_spills_inside_the_home(
    cli: Cli, lake: Path, home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    sql = (
        "SELECT current_setting('memory_limit') AS memory, current_setting('temp_directory') AS spill, "
        "current_setting('enable_external_access') AS external"
    )
    for safe in ([], ["--safe"]):
        [row] = json.loads(cli("sql", *safe, sql, "--format", "json").stdout)
        assert row["memory"].startswith(("667", "700"))  # 700MB, as DuckDB prints it
        assert Path(row["spill"]).is_relative_to(home)
        assert row["external"] is (not safe)
    monkeypatch.setenv("LIBERACION_MEMORY_LIMIT", "200MB")
    # a sort bigger than the limit spills into the home and still finishes
    big = "SELECT count(*) AS n FROM (SELECT i, md5(i::VARCHAR) AS h FROM range(3000000) t(i) ORDER BY h)"
    result = cli("sql", "--safe", big, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 3000000}]
    assert not (tmp_path / ".tmp").exists()  # never in the current directory
    monkeypatch.setenv("LIBERACION_MEMORY_LIMIT", "lots")
    result = cli("sql", "SELECT 1")
    assert result.exit_code == 5 and "LIBERACION_MEMORY_LIMIT" in result.stderr
    assert os.environ["LIBERACION_MEMORY_LIMIT"] == "lots"


def test_running_out_of_memory_points_at_liberacion_memory_limit(tmp_path: Path, home: Path) -> None:
    from tests.conftest import run_process

    wide = tmp_path / "wide.csv"
    columns = 5000
    with open(wide, "w", encoding="utf-8") as fh:
        fh.write(",".join(f"c{i}" for i in range(columns)) + "\n")
        for row in range(50):
            fh.write(",".join(str(row * i) for i in range(columns)) + "\n")
    env = {"LIBERACION_HOME": str(home), "LIBERACION_MEMORY_LIMIT": "40MB"}
    result = run_process("fetch", str(wide), env=env)
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "Out of Memory" in line and "LIBERACION_MEMORY_LIMIT" in line
    assert "SET threads" not in line and "Traceback" not in result.stderr

    big = "SELECT list(md5(i::VARCHAR)) AS l FROM range(5000000) t(i)"
    result = run_process("sql", big, "--format", "csv", env=env)
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1 and "LIBERACION_MEMORY_LIMIT" in result.stderr, result.stderr


def test_safe_reads_the_dataset_index_and_the_python_api_takes_safe(cli: Cli, lake: Path, home: Path) -> None:
    import duckdb

    import liberacion

    (home / "index").mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 'cms' AS catalog, 'x' AS id) TO '{home / 'index' / 'datasets.parquet'}'")
    result = cli("sql", "--safe", "SELECT catalog, id FROM liberacion.datasets", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [{"catalog": "cms", "id": "x"}]

    assert liberacion.sql("SELECT sum(beds) FROM local.beds", safe=True).fetchall() == [(8,)]
    with pytest.raises(liberacion.LiberacionError, match="--safe"):
        liberacion.sql(f"COPY (SELECT 1) TO '{lake / 'api.csv'}'", safe=True)
    assert not (lake / "api.csv").exists()
