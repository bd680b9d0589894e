"""`liberacion sql` writing CSV and JSON with DuckDB itself, over the stored views database."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from liberacion.lake import Lake
from tests.conftest import ROOT, run_process

VALUES = (
    "select 1 as n, timestamp '2001-02-03 04:05:06' as whole, timestamp '2001-02-03 04:05:06.5' as part, "
    "timestamptz '2001-02-03 04:05:06+00' as tz, [1, 2] as list, {'a': 'x'} as rec, 'ab'::blob as raw, "
    "'nan'::double as nan, 'inf'::double as inf, 'a,\"b\"' as text, null as nothing"
)


@pytest.fixture
def lake(home: Path) -> Lake:
    lake = Lake(home)
    lake.publish("cms.hospitals", pa.table({"zip": ["02115", "10001"], "beds": [12, 300]}))
    return lake


def test_csv_values_as_liberacion_writes_them(cli) -> None:
    result = cli("sql", VALUES, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    row = next(csv.DictReader(io.StringIO(result.stdout)))
    assert row["whole"] == "2001-02-03T04:05:06" and row["part"] == "2001-02-03T04:05:06.500000"
    assert row["tz"] == "2001-02-03T04:05:06+00:00"
    assert json.loads(row["list"]) == [1, 2] and json.loads(row["rec"]) == {"a": "x"}
    assert row["raw"] == "6162" and row["text"] == 'a,"b"' and row["nothing"] == ""


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_values_as_liberacion_writes_them(cli, fmt: str) -> None:
    result = cli("sql", VALUES, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)[0] if fmt == "json" else json.loads(result.stdout.splitlines()[0])
    assert record["whole"] == "2001-02-03T04:05:06" and record["tz"] == "2001-02-03T04:05:06+00:00"
    assert record["list"] == [1, 2] and record["rec"] == {"a": "x"} and record["raw"] == "6162"
    assert record["nan"] is None and record["inf"] == "inf" and record["nothing"] is None


def test_a_pipe_and_a_file_get_the_same_bytes(lake, home: Path, tmp_path: Path) -> None:
    query = "select * from cms.hospitals order by zip"
    piped = run_process("sql", query, "--format", "csv")
    assert piped.returncode == 0, piped.stderr
    target = tmp_path / "out.csv"
    assert run_process("sql", query, "--output", str(target)).returncode == 0
    assert piped.stdout == target.read_text(encoding="utf-8") == "zip,beds\n02115,12\n10001,300\n"


def test_stdout_appended_to_a_file_keeps_what_was_there(lake, home: Path, tmp_path: Path) -> None:
    target = tmp_path / "log.csv"
    target.write_text("before\n", encoding="utf-8")
    with open(target, "a", encoding="utf-8") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "liberacion", "sql", "select 42 as answer"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    assert target.read_text(encoding="utf-8") == "before\nanswer\n42\n"


def test_output_through_a_link_writes_the_file_it_names(lake, home: Path, tmp_path: Path) -> None:
    (tmp_path / "target.csv").write_text("old\n", encoding="utf-8")
    (tmp_path / "link.csv").symlink_to("target.csv")
    for fmt in ("csv", "markdown"):  # DuckDB's COPY, and liberacion's own writer
        done = run_process("sql", "select 1 as a", "--format", fmt, "--output", str(tmp_path / "link.csv"))
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "link.csv").is_symlink()
        assert "1" in (tmp_path / "target.csv").read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["csv", "markdown", "parquet"])
def test_output_into_a_fifo_writes_into_it(lake, home: Path, tmp_path: Path, fmt: str) -> None:
    """``-o /dev/stdout``, ``-o >(gzip > x.gz)``: a special file is written, never replaced by a file."""
    fifo = tmp_path / "result.pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    done = run_process("sql", "select 'x' as answer", "--format", fmt, "--output", str(fifo))
    received = reader.communicate(timeout=60)[0]
    assert done.returncode == 0, done.stderr
    assert fifo.is_fifo()
    assert received.startswith(b"PAR1") if fmt == "parquet" else b"answer" in received


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("gzip") is None, reason="needs bash and gzip")
def test_output_into_a_process_substitution_as_the_readme_writes_it(lake, home: Path, tmp_path: Path) -> None:
    """README: ``-o >(gzip > out.csv.gz)``, no --format. Its name (``/dev/fd/63``) has no extension:
    it is a pipe and takes a pipe's format, CSV, where it had been refused as "the format of 63"."""
    script = 'set -e; "$PYTHON" -m liberacion sql "select zip from cms.hospitals order by zip" -o >(gzip > out.csv.gz)'
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHON": sys.executable}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    written = subprocess.run(["gzip", "-dc", "out.csv.gz"], cwd=tmp_path, capture_output=True, timeout=60)
    assert written.stdout == b"zip\n02115\n10001\n"


def test_a_fifo_with_an_unknown_extension_still_asks_for_format(lake, tmp_path: Path) -> None:
    """Only a special file with no extension at all takes a pipe's format: ``result.xyz`` asked for
    something the name does not say, and is a usage error naming the whole path."""
    fifo = tmp_path / "result.xyz"
    os.mkfifo(fifo)
    done = run_process("sql", "select 1 as a", "--output", str(fifo))
    assert done.returncode == 2
    assert str(fifo) in done.stderr and "--format" in done.stderr


def test_statements_that_are_not_one_query_still_work(cli, tmp_path: Path, lake) -> None:
    script = tmp_path / "report.sql"
    script.write_text(
        "create table big as select * from cms.hospitals where beds > 100;\nselect zip from big;\n", encoding="utf-8"
    )
    result = cli("sql", "--file", str(script), "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "zip\n10001\n"
    assert cli("sql", "select 1 as a, 2 as a", "--format", "json").exit_code == 0  # duplicate names
    assert "current_setting" in cli("sql", "pragma version; select 1 as current_setting", "--format", "csv").stdout


def test_a_new_table_and_a_stale_views_database(cli, lake, home: Path) -> None:
    assert cli("sql", "select count(*) as n from cms.hospitals").stdout == "n\n2\n"
    lake.publish("cdc.places", pa.table({"fips": ["01001"]}))
    assert cli("sql", "select fips from cdc.places").stdout == "fips\n01001\n"
    # A publish killed before lake.duckdb was rebuilt: the pointer is newer, the views are made anew.
    views = home / "lake.duckdb"
    os.utime(views, ns=(views.stat().st_atime_ns, views.stat().st_mtime_ns - 10**10))
    lake.publish("cdc.places", pa.table({"fips": ["01001", "01003"]}))
    os.utime(views, ns=(views.stat().st_atime_ns, views.stat().st_mtime_ns - 10**12))
    assert cli("sql", "select count(*) as n from cdc.places").stdout == "n\n2\n"
    # A table removed without lake.duckdb being rebuilt after it is not in the lake any more.
    shutil.rmtree(home / "lake" / "cms")
    os.utime(views)  # newer than every pointer left
    result = cli("sql", "select * from cms.hospitals")
    assert result.exit_code == 3 and "no table named cms.hospitals" in result.stderr
    # A views database whose files are elsewhere (a home moved) is not used either.
    moved = home.parent / "moved"
    home.rename(moved)
    result = cli("--home", str(moved), "sql", "select count(*) as n from cdc.places")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "n\n2\n"


def _views_read(home: Path) -> list[str]:
    import duckdb

    with duckdb.connect(str(home / "lake.duckdb"), read_only=True) as con:
        return [sql for (sql,) in con.execute("select sql from duckdb_views() where schema_name = 'cms'").fetchall()]


@pytest.mark.parametrize("how", ["copied", "moved"])
def test_a_copied_or_moved_home_rewrites_its_views_database_once(cli, lake, home: Path, how: str) -> None:
    # lake.duckdb names files by their absolute paths: a copy's would read the original's files,
    # a moved home's files that are gone, for anyone opening it with DuckDB directly.
    other = home.parent / "other"
    shutil.copytree(home, other) if how == "copied" else home.rename(other)
    result = cli("--home", str(other), "sql", "select count(*) as n from hospitals")
    assert (result.exit_code, result.stdout) == (0, "n\n2\n"), result.stderr
    assert f"copied or moved from {home}" in result.stderr
    assert all(str(other / "lake") in sql and str(home / "lake") not in sql for sql in _views_read(other))
    again = cli("--home", str(other), "sql", "select count(*) as n from hospitals")
    assert (again.stdout, again.stderr) == ("n\n2\n", "")
    if how == "copied":  # the original is left as it was
        assert all(str(home / "lake") in sql for sql in _views_read(home))
        assert cli("sql", "select count(*) as n from hospitals").stderr == ""


def test_a_name_without_its_catalog_resolves_in_views_built_for_the_query(cli, lake, home: Path) -> None:
    # --as-of and a lake.duckdb older than a table's pointer build the views in memory instead.
    assert cli("sql", "--as-of", "2099-01-01", "select count(*) as n from hospitals").stdout == "n\n2\n"
    lake.publish("cms.hospitals", pa.table({"zip": ["02115"], "beds": [1]}))
    views = home / "lake.duckdb"
    os.utime(views, ns=(views.stat().st_atime_ns, views.stat().st_mtime_ns - 10**12))
    (home / "lake.duckdb").with_name(".lake.duckdb.generation").write_text("older\n", encoding="utf-8")
    assert cli("sql", "select count(*) as n from hospitals").stdout == "n\n1\n"
    # Two catalogs holding the name: refused there too, as with lake.duckdb.
    lake.publish("cdc.hospitals", pa.table({"zip": ["1"]}))
    result = cli("sql", "--as-of", "2099-01-01", "select * from hospitals")
    assert result.exit_code != 0 and "more than one catalog (cdc.hospitals, cms.hospitals)" in result.stderr


def test_select_42_loads_neither_pyarrow_nor_pydantic(home: Path) -> None:
    # What a query costs before it starts: these two are a third of a small query's time.
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted(m for m in ('pyarrow', 'pydantic', 'numpy') if m in sys.modules), "
        "file=sys.stderr))\n"
        "sys.argv = ['liberacion', 'sql', 'select 42 as a', '--format', '{fmt}']\n"
        "from liberacion.cli import main\n"
        "main()\n"
    )
    for fmt in ("csv", "json", "table"):
        proc = subprocess.run(
            [sys.executable, "-c", probe.replace("{fmt}", fmt)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip() == "[]", proc.stderr


def test_rows_keep_the_order_of_the_query(cli) -> None:
    query = "select range as i, timestamp '2020-01-01' + to_seconds(range) as t from range(300000) order by hash(range)"
    result = cli("sql", query, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    got = [int(line.split(",")[0]) for line in result.stdout.splitlines()[1:]]
    assert len(got) == 300000 and got != sorted(got)
    expected = cli("sql", "select range as i from range(300000) order by hash(range)", "--format", "markdown")
    assert got == [int(line.strip("| ")) for line in expected.stdout.splitlines()[2:]]


def test_a_table_of_any_types_and_any_size(cli) -> None:
    # Plain columns come from DuckDB as Python values, others (lists, time zones) through Arrow.
    plain = cli("sql", "select 42 as answer, 'x' as letter, date '2001-02-03' as day", "--format", "table")
    assert plain.exit_code == 0, plain.stderr
    assert "42" in plain.stdout and "2001-02-03" in plain.stdout
    nested = cli("sql", "select [1, 2] as list, timestamptz '2001-02-03 04:05:06+00' as tz", "--format", "table")
    assert nested.exit_code == 0, nested.stderr
    assert "[1, 2]" in nested.stdout and "2001-02-03 04:05:06+00:00" in nested.stdout
    capped = cli("sql", "select * from range(250000)", "--format", "table", "--max-rows", "5")
    assert "250,000 rows, 249,995 more rows not shown" in capped.stdout
    exact = cli("sql", "select * from range(6)", "--format", "table", "--max-rows", "5")
    assert "6 rows, 1 more rows not shown" in exact.stdout
    script = cli("sql", "create temp table t as select 7 as seven; select * from t", "--format", "table")
    assert "seven" in script.stdout and "7" in script.stdout
    late = "select case when range < 1500 then range::varchar else 'x' end::int as n from range(2000)"
    result = cli("sql", late, "--format", "table", "--max-rows", "3")
    assert result.exit_code == 4 and "Conversion Error" in result.stderr


def test_a_bare_table_name_held_by_two_catalogs_is_refused(cli, lake: Lake) -> None:
    lake.publish("cdc.hospitals", pa.table({"state": ["NY"]}))
    ambiguous = cli("sql", "select count(*) from hospitals")
    assert ambiguous.exit_code == 2 and "cdc.hospitals, cms.hospitals" in ambiguous.stderr
    assert "name the catalog" in ambiguous.stderr and ambiguous.stdout == ""
    named = cli("sql", "select count(*) as n from cms.hospitals")
    assert named.exit_code == 0 and named.stdout == "n\n2\n"
    own = cli("sql", "create table hospitals as select 7 as n; select n from hospitals")
    assert own.exit_code == 0 and own.stdout == "n\n7\n", own.stderr  # the session's own table comes first


def test_options_that_cannot_be_honoured_are_refused(cli, lake: Lake, tmp_path: Path) -> None:
    expanded = cli("sql", "select 1 as a", "-x", "--output", str(tmp_path / "x.csv"))
    assert expanded.exit_code == 2 and "--output" in expanded.stderr and not (tmp_path / "x.csv").exists()
    capped = cli("sql", "select * from range(4)", "--max-rows", "2", "--format", "csv")
    assert capped.exit_code == 2 and "LIMIT" in capped.stderr and capped.stdout == ""
    assert cli("sql", "select * from range(4)", "--max-rows", "2", "--format", "table").exit_code == 0


def test_parquet_goes_to_a_pipe_and_sql_comes_from_file_dash(lake, home: Path) -> None:
    import pyarrow.parquet as pq

    done = subprocess.run(
        [sys.executable, "-m", "liberacion", "sql", "--file", "-", "--format", "PARQUET"],
        input=b"select zip from cms.hospitals order by zip",
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert pq.read_table(pa.BufferReader(done.stdout)).column("zip").to_pylist() == ["02115", "10001"]


def test_errors_quote_the_users_sql_not_liberacions(cli, lake: Lake) -> None:
    failed = cli("sql", "select 'a'::int as n", "--format", "csv")
    assert failed.exit_code == 4 and "Could not convert string 'a'" in failed.stderr
    assert "COPY" not in failed.stderr


def test_snapshot_functions_name_what_is_not_kept(cli, lake: Lake) -> None:
    unknown = cli("sql", "select count(*) from liberacion.snapshot('cms.hospitals', '2026')")
    assert unknown.exit_code == 3 and "cms.hospitals has no kept snapshot '2026'" in unknown.stderr
    assert "liberacion history cms.hospitals" in unknown.stderr and "IO Error" not in unknown.stderr
    missing = cli("sql", "select count(*) from liberacion.all_snapshots('cms.nosuch')")
    assert missing.exit_code == 3 and "no table named cms.nosuch" in missing.stderr
    # A table the lake does not hold: its history would not help either.
    absent = cli("sql", "select count(*) from liberacion.snapshot('cms.nosuch', '20261101T063000123456Z')")
    assert absent.exit_code == 3 and "no table named cms.nosuch in the lake" in absent.stderr
    assert "liberacion history" not in absent.stderr


def test_as_of_before_a_tables_first_snapshot_says_so(cli, lake: Lake) -> None:
    early = cli("sql", "--as-of", "2001-01-01", "select count(*) from cms.hospitals")
    assert early.exit_code == 3 and "cms.hospitals has no kept snapshot as of 2001-01-01" in early.stderr
    # prune leaves no trace of what it removed: the message cannot claim the table was not there
    assert "did not exist as of" not in early.stderr and "or its older snapshots were pruned" in early.stderr
    assert "liberacion history cms.hospitals" in early.stderr and "fetch" not in early.stderr


def test_a_global_option_after_the_command_says_where_it_goes(cli) -> None:
    misplaced = cli("tables", "--home", "/tmp/elsewhere")
    assert misplaced.exit_code == 2 and "put it before the command" in misplaced.stderr


def test_intervals_and_blobs_read_as_text_and_parquet_refuses_intervals(cli, tmp_path: Path) -> None:
    query = "select interval 3 day as span, interval '1 year 2 months 04:05:06.5' as long, 'abc'::blob as raw"
    markdown = cli("sql", query, "--format", "markdown")
    assert markdown.exit_code == 0, markdown.stderr
    assert "| 3 days | 1 year 2 months 04:05:06.5 | 616263 |" in markdown.stdout
    refused = cli("sql", query, "--output", str(tmp_path / "x.parquet"))
    assert refused.exit_code == 2 and "span::VARCHAR" in refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_sql_of_comments_alone_is_refused(cli) -> None:
    comments = cli("sql", "--", "-- a comment\n/* and another */")
    assert comments.exit_code == 2 and "no statement" in comments.stderr and comments.stdout == ""


def test_a_missing_table_is_named_with_its_catalog(cli, lake: Lake) -> None:
    missing = cli("sql", "select * from cms.hospital")
    assert missing.exit_code == 3 and "no table named cms.hospital in" in missing.stderr
    assert "did you mean cms.hospitals?" in missing.stderr


def test_ambiguous_names_are_refused_in_every_kind_of_statement(cli, lake: Lake) -> None:
    lake.publish("cdc.hospitals", pa.table({"state": ["NY"]}))
    for sql in (
        "select 1; select count(*) from hospitals",
        "create view v as select * from hospitals; select count(*) from v",
        "create table x as select * from hospitals; select count(*) from x",
        "pivot hospitals on state using count(*)",
        "select 'create table hospitals', count(*) from hospitals",
    ):
        refused = cli("sql", sql)
        assert refused.exit_code == 2 and "more than one catalog" in refused.stderr, sql
    assert cli("sql", "select count(*) from cms.hospitals -- not hospitals alone").exit_code == 0


def test_output_keeps_a_files_mode_and_refuses_what_it_cannot_honour(cli, lake: Lake, tmp_path: Path) -> None:
    private = tmp_path / "private.csv"
    private.write_text("old\n", encoding="utf-8")
    private.chmod(0o600)
    assert cli("sql", "select 1 as a", "--output", str(private)).exit_code == 0
    assert private.stat().st_mode & 0o777 == 0o600 and private.read_text(encoding="utf-8") == "a\n1\n"
    (tmp_path / "into.csv").symlink_to(tmp_path / "missing" / "out.csv")
    linked = cli("sql", "select 1 as a", "--output", str(tmp_path / "into.csv"))
    assert linked.exit_code == 2 and "does not exist" in linked.stderr and not (tmp_path / "missing").exists()
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    looped = cli("sql", "select 1 as a", "--format", "csv", "--output", str(tmp_path / "a"))
    assert looped.exit_code == 2 and "loop" in looped.stderr and (tmp_path / "a").is_symlink()
    private.chmod(0o400)
    assert cli("sql", "select 1 as a", "--output", str(private)).exit_code == 2


def test_output_to_dev_stdout_appends_to_a_redirected_file(lake, home: Path, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("before\n", encoding="utf-8")
    with open(log, "a", encoding="utf-8") as out:
        done = subprocess.run(
            [sys.executable, "-m", "liberacion", "sql", "select 1 as a", "-f", "csv", "-o", "/dev/stdout"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert log.read_text(encoding="utf-8") == "before\na\n1\n"


def test_intervals_inside_lists_and_structs(cli, tmp_path: Path) -> None:
    query = "select [interval 1 day] as l, {'a': interval 3 day} as s"
    shown = cli("sql", query, "--format", "markdown")
    assert '["1 day"]' in shown.stdout and '{"a": "3 days"}' in shown.stdout
    assert cli("sql", query, "--output", str(tmp_path / "x.parquet")).exit_code == 2


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/stdout").exists(), reason="POSIX only")
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_stdout_a_pipe_whose_dev_stdout_refuses_us(tmp_path: Path, fmt: str) -> None:
    """cron makes the output pipe as root, then runs the job as its user (``sudo -u`` in a pipeline
    too): the process may write to it, but opening /dev/stdout again is refused."""
    fifo = tmp_path / "out"
    os.mkfifo(fifo, 0o600)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(fifo, os.O_WRONLY)
    os.chmod(fifo, 0)  # nobody may open it again, its owner included
    command = [sys.executable, "-m", "liberacion", "sql", "select 42 as answer", "--format", fmt]
    if os.geteuid() == 0:  # root opens anything: without the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(command, stdout=writer, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
        os.close(writer)
        written = os.read(reader, 1 << 16).decode()
    finally:
        os.close(reader)
    assert done.returncode == 0, done.stderr
    assert written == ("answer\n42\n" if fmt == "csv" else '{"answer":42}\n')


def test_queries_into_dev_null_do_not_contend_for_its_lock(tmp_path: Path) -> None:
    """Cron jobs send output to /dev/null, several at once: DuckDB locks what it copies to, so a
    lock another process holds on /dev/null must not fail the query."""
    import fcntl

    with open(os.devnull, "w") as held:
        fcntl.lockf(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with open(os.devnull, "w") as sink:
            done = subprocess.run(
                [sys.executable, "-m", "liberacion", "--home", str(tmp_path / "h"), "sql", "-f", "csv", "select 42"],
                stdout=sink,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                timeout=60,
                check=False,
            )
    assert done.returncode == 0, done.stderr


FAILS_MIDWAY = "select i, 10 // (i - 2000000) as x from range(3000000) t(i)"


@pytest.mark.parametrize("fmt", ["parquet", "markdown"])
def test_a_query_failing_midway_leaves_a_redirected_stdout_empty(home: Path, tmp_path: Path, fmt: str) -> None:
    # `> out.parquet` kept the row groups written before the error: a file that read as whole.
    out = tmp_path / f"out.{fmt}"

    def into_file(query: str, mode: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(out, mode) as fh:
            if mode == "ab":  # what was there stays: >> appends
                fh.write(b"kept\n")
                fh.flush()
            command = [sys.executable, "-m", "liberacion", "sql", query, "--format", fmt]
            return subprocess.run(command, stdout=fh, stderr=subprocess.PIPE, text=True, env=env, timeout=120)

    done = into_file(FAILS_MIDWAY, "wb")
    assert done.returncode == 4
    assert out.stat().st_size == 0
    assert "Division by zero" in done.stderr and "nothing was written to the standard output" in done.stderr
    assert into_file("select 1 as a", "ab").returncode == 0
    assert out.read_bytes().startswith(b"kept\n") and out.stat().st_size > 5


def test_a_query_failing_midway_into_an_output_file_says_nothing_was_written(cli, tmp_path: Path) -> None:
    # It said "the output is incomplete", of a file written whole or not at all.
    out = tmp_path / "out.parquet"
    result = cli("sql", FAILS_MIDWAY, "-o", str(out))
    assert result.exit_code == 4 and not out.exists()
    assert f"nothing was written to {out}" in result.stderr and "incomplete" not in result.stderr


def test_an_unknown_table_is_offered_only_a_name_like_it(cli, lake) -> None:
    # DuckDB names its nearest table however far: "cms.nope: did you mean cms.hospitals?".
    far = cli("sql", "select * from cms.nope")
    assert far.exit_code == 3 and "did you mean" not in far.stderr
    near = cli("sql", "select * from cms.hospitls")
    assert "did you mean cms.hospitals?" in near.stderr


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "tsv"])
def test_a_scripts_last_query_is_written_as_the_same_query_alone(cli, fmt: str) -> None:
    # A script's result went through another writer: 100 for a double DuckDB writes 100.0,
    # [1, 2, null] for [1,2,null], every value quoted in a batch holding a comma.
    query = "select 100::double a, -0.0::double z, 1.5e-7::float c, [1, 2, null] l, 'x,y' t, date '2024-02-29' d"
    alone = cli("sql", query, "--format", fmt)
    script = cli("sql", f"create temp table n as select 1; select 42; {query}", "--format", fmt)
    assert alone.exit_code == script.exit_code == 0, script.stderr
    assert script.stdout == alone.stdout


def test_a_compressed_name_is_said_not_filled_with_plain_text(cli, tmp_path: Path) -> None:
    """``-o x.csv.gz`` advised ``add --format csv``, which then wrote plain CSV into x.csv.gz
    without a word: a file ``gzip -d`` refuses. Without a format it is refused, naming the pipe to
    use; with one, a note says the file is plain."""
    target = tmp_path / "x.csv.gz"
    refused = cli("sql", "select 1 as n", "-o", str(target))
    assert refused.exit_code == 2 and not target.exists()
    assert "does not compress what it writes" in refused.stderr and f"-o >(gzip > {target})" in refused.stderr
    assert "add --format" not in refused.stderr
    written = cli("sql", "select 1 as n", "-f", "csv", "-o", str(target))
    assert written.exit_code == 0 and target.read_text(encoding="utf-8") == "n\n1\n"
    assert f"note: {target} is written as plain csv, not compressed" in written.stderr
