"""Scale and resource limits: memory stays bounded whatever the result or the input, and a full
disk is one clear line that leaves the lake as it was.

The inputs are scaled down so each test takes seconds: a low LIBERACION_MEMORY_LIMIT stands for
a big file, and RLIMIT_FSIZE in a subprocess for a full disk (no mount, no root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="resource limits are POSIX")


def _peak_rss_mb(args: list[str], env: dict[str, str]) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run ``liberacion ARGS`` in a child of a fresh interpreter: (the child's peak RSS in MB, the run).

    The fresh interpreter keeps the peaks of other tests' children out of RUSAGE_CHILDREN."""
    script = textwrap.dedent(
        """
        import json, resource, subprocess, sys
        done = subprocess.run([sys.executable, "-m", "liberacion", *sys.argv[1:]], capture_output=True, text=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(json.dumps([peak, done.returncode, done.stdout[-4000:], done.stderr[-4000:]]))
        """
    )
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    outer = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=full_env, timeout=300
    )
    peak, code, out, err = json.loads(outer.stdout)
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return peak * 1024 // scale // 1024, subprocess.CompletedProcess(args, code, out, err)


@posix_only
def test_a_terminal_table_of_millions_of_rows_keeps_memory_bounded(home: Path) -> None:
    # The terminal table shows 1,000 rows and counts the rest; counting must not hold the whole
    # result (4M rows of 40 bytes took 370 MB, 32M rows 4.2 GB, whatever LIBERACION_MEMORY_LIMIT said).
    query = "select range as i, md5(range::varchar) as h from range(4000000)"
    peak, done = _peak_rss_mb(["sql", "--format", "table", query], {"LIBERACION_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert "4,000,000 rows, 3,999,000 more rows not shown" in done.stdout
    assert peak < 250, f"peak RSS {peak} MB for a 1,000-row terminal table"


def test_a_terminal_table_counts_the_rows_of_a_query_after_others(cli) -> None:  # type: ignore[no-untyped-def]
    script = "create temp table t as select range as i from range(2500); select i from t where i % 2 = 0;"
    result = cli("sql", "--format", "table", "--max-rows", "3", script)
    assert result.exit_code == 0, result.stderr
    assert "1,250 rows, 1,247 more rows not shown" in result.stdout


def _fetch_with_file_size_limit(args: list[str], env: dict[str, str], limit: int) -> subprocess.CompletedProcess[str]:
    """``liberacion ARGS`` where no file may grow past ``limit`` bytes: a disk that fills up."""
    script = textwrap.dedent(
        """
        import resource, runpy, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
        sys.argv = ["liberacion", *sys.argv[2:]]
        runpy.run_module("liberacion", run_name="__main__")
        """
    )
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-c", script, str(limit), *args], capture_output=True, text=True, env=full_env, timeout=300
    )


def _random_csv(path: Path, rows: int, seed: int) -> Path:
    import random

    rnd = random.Random(seed)
    with open(path, "w") as fh:
        fh.write("id,a,b\n")
        for i in range(rows):
            fh.write(f"{i},{rnd.getrandbits(128):032x},{rnd.getrandbits(64):016x}\n")
    return path


@posix_only
def test_a_disk_that_fills_while_converting_is_one_clear_line_and_the_lake_stays(
    home: Path, tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    small = _random_csv(tmp_path / "small.csv", 2_000, seed=1)
    assert cli("fetch", str(small), "--as", "local.kept").exit_code == 0
    big = _random_csv(tmp_path / "big.csv", 200_000, seed=2)  # about 4 MB of Parquet that does not compress
    done = _fetch_with_file_size_limit(
        ["fetch", str(big), "--as", "local.kept"], {"LIBERACION_HOME": str(home)}, limit=2_000_000
    )
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr
    # What happened and what to do, in words: not DuckDB's JSON of an async write with a staging path.
    assert "File too large" in errors[0] and "the table is as it was" in errors[0], errors[0]
    assert "--home" in errors[0] and "free some disk space" in errors[0], errors[0]
    assert "exception_type" not in errors[0] and ".staging-" not in errors[0], errors[0]
    result = cli("sql", "select count(*) as n from local.kept")
    assert result.exit_code == 0 and result.stdout.split() == ["n", "2000"]
    leftovers = [p for p in (home / "lake").rglob("*") if p.name.startswith(".staging-")]
    assert leftovers == []
    assert not any(p.is_file() for p in (home / "work").rglob("*"))


def _wide_csv(path: Path, columns: int, rows: int) -> Path:
    header = ",".join(f"col{i}" for i in range(columns))
    row = ",".join(str(i % 997) if i % 3 else f"{i % 89}.25" for i in range(columns))
    path.write_text(header + "\n" + "\n".join([row] * rows) + "\n", encoding="utf-8")
    return path


def test_a_file_of_a_thousand_columns_converts_within_a_small_memory_limit(cli, tmp_path: Path, monkeypatch) -> None:
    # The sample's rows were cut after the repeated-header filter: DuckDB then held buffers for
    # every column and 1,000 columns did not fit in 200MB (3,000 did not fit in the default 700MB).
    monkeypatch.setenv("LIBERACION_MEMORY_LIMIT", "200MB")
    source = _wide_csv(tmp_path / "wide.csv", 1_000, 2_000)
    result = cli("fetch", str(source), "--as", "w.wide", "--json")
    assert result.exit_code == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["rows"] == 2_000
    types = cli("sql", "select column_type, count(*) n from (describe w.wide) group by 1 order by 1", "--format", "csv")
    assert types.stdout.splitlines() == ["column_type,n", "BIGINT,666", "DOUBLE,334"]


def test_only_a_header_of_more_than_a_thousand_fields_makes_a_file_wide(tmp_path: Path) -> None:
    from liberacion.convert.parts import WIDE_COLUMNS, text_fields

    assert text_fields(_wide_csv(tmp_path / "wide.tsv", WIDE_COLUMNS + 1, 3)) > WIDE_COLUMNS
    assert text_fields(_wide_csv(tmp_path / "tall.csv", 20, 50_000)) == 20  # many commas, few per line


@posix_only
def test_fields_of_megabytes_keep_the_sample_and_the_row_groups_small(home: Path, tmp_path: Path) -> None:
    # 40 rows of a 2 MB text field: the sample held every field whole in Python, several times over
    # (RSS 677 MB), and one row group held all 80 MB (at 400 MB the COPY ran out of memory).
    source = tmp_path / "long.csv"
    field = b"abcdefghij" * 200_000
    source.write_bytes(b"id,payload,n\n" + b"".join(b"%d,%d%s,%d\n" % (i, i, field, i) for i in range(40)))
    env = {"LIBERACION_HOME": str(home), "LIBERACION_MEMORY_LIMIT": "300MB"}
    peak, done = _peak_rss_mb(["fetch", str(source), "--as", "w.long"], env)
    assert done.returncode == 0, done.stderr
    assert peak < 500, f"peak RSS {peak} MB for an 80 MB file"
    (data,) = home.glob("lake/w/long/snapshots/*/data-*.parquet")
    groups = subprocess.run(
        [sys.executable, "-c", f"import pyarrow.parquet as pq; print(pq.ParquetFile({str(data)!r}).num_row_groups)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(groups.stdout) > 1  # about 64 MB a row group, not all 80 MB in one


@pytest.mark.parametrize(("columns", "rows", "unshared"), [(150, 20, True), (150, 3_000, False), (20, 20, False)])
def test_the_common_subexpression_pass_is_off_where_it_costs_more_than_it_saves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: int, rows: int, unshared: bool
) -> None:
    """DuckDB plans the typed COPY of many columns with that pass in a time growing with their
    square: a file of 150 columns smaller than 150² x PLAN_BYTES converts on a database of its own
    with the pass off (a database-wide setting), a larger one with it on, and a small narrow file
    on the shared database. (PLAN_BYTES is 1 here, so that a few MB are large.)"""
    from liberacion import engine
    from liberacion.convert import ConvertOptions, convert_part, inspect, parts

    monkeypatch.setattr(parts, "PLAN_BYTES", 1)

    opened: list[list[str]] = []
    real = engine.new_connection

    def recording(*args: object) -> object:
        con = real(*args)
        settings: list[str] = []
        opened.append(settings)

        class Recorded:
            def __getattr__(self, name: str) -> object:
                return getattr(con, name)

            def __enter__(self) -> Recorded:
                return self

            def __exit__(self, *exc: object) -> None:
                con.close()

            def execute(self, sql: str, *more: object) -> object:
                if sql.startswith("SET disabled_optimizers"):
                    settings.append(sql)
                return con.execute(sql, *more)

        return Recorded()

    monkeypatch.setattr(engine, "new_connection", recording)
    source = _wide_csv(tmp_path / "w.csv", columns, rows)
    part = inspect(source, ConvertOptions(), work=tmp_path / "work")[0]
    report = convert_part(part, tmp_path / "out", kv_metadata={}, options=ConvertOptions())
    assert report.rows == rows
    assert {c["type"] for c in report.columns.values()} == {"BIGINT", "DOUBLE"}
    off = [["SET disabled_optimizers = 'common_subexpressions'"]]
    assert (opened == off) if unshared else (off[0] not in opened)
