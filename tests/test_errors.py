"""Every command, every failure: one ``error:`` line on stderr, no traceback, the documented exit code."""

from __future__ import annotations

import errno
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from liberacion.errors import one_line, shorten
from tests.conftest import ROOT, run_process
from tests.manifests import write_catalog

TABLE = "local.t"
LAKE_COMMANDS = ["sql", "tables", "info", "history", "diff", "prune"]
COMMANDS = [*LAKE_COMMANDS, "fetch", "refresh", "catalogs", "discover", "search", "show"]
# Commands that take --format FORMAT for their rows.
ROW_FORMAT_COMMANDS = ["sql", "tables", "history", "diff", "catalogs", "search"]
# A catalog whose one listing is on a host that never resolves (.invalid), so nothing leaves the machine.
OFFLINE_CATALOG = "mine"
CURATED = """
[[dataset]]
id = "one"
title = "One dataset"
url = "https://files.nonexistent.invalid/one.csv"
"""


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,x\n2,y\n", encoding="utf-8")
    return path


@pytest.fixture
def offline_catalog(manifests: Path) -> Path:
    return write_catalog(
        manifests, OFFLINE_CATALOG, [("dcat-us", "https://listing.nonexistent.invalid/data.json")], body=CURATED
    )


def command_args(command: str, csv_file: Path) -> list[str]:
    return {
        "sql": ["sql", f"select count(*) from {TABLE}"],
        "tables": ["tables"],
        "info": ["info", TABLE],
        "history": ["history", TABLE],
        "diff": ["diff", TABLE],
        "prune": ["prune"],
        "fetch": ["fetch", str(csv_file), "--as", TABLE],
        "refresh": ["refresh"],
        "catalogs": ["catalogs"],
        "discover": ["discover", OFFLINE_CATALOG],
        "search": ["search", "one"],
        "show": ["show", f"{OFFLINE_CATALOG}/one"],
    }[command]


def error_lines(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_one_error(result: Any, code: int, *words: str) -> str:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    errors = error_lines(result)
    assert len(errors) == 1, result.stderr
    assert result.exit_code == code, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


# -- the home ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_home_under_a_regular_file(
    cli: Any, command: str, csv_file: Path, offline_catalog: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    result = cli("--home", str(blocker / "home"), *command_args(command, csv_file))
    assert_one_error(result, 1, str(blocker), "not a directory", "--home")


@pytest.mark.parametrize("command", ["fetch", "refresh", "discover"])
def test_a_read_only_home(cli: Any, command: str, csv_file: Path, offline_catalog: Path, tmp_path: Path) -> None:
    home = tmp_path / "read-only"
    home.mkdir()
    home.chmod(0o500)
    try:
        if os.access(home, os.W_OK):
            pytest.skip("running as a user that can write anywhere (root)")
        result = cli("--home", str(home), *command_args(command, csv_file))
    finally:
        home.chmod(0o700)
    assert_one_error(result, 1, "Permission denied")


def _unprivileged() -> list[str] | None:
    """A command prefix that runs as a user file modes bind: none needed unless this is root, then
    setpriv as nobody (None when that user cannot run this checkout, e.g. a clone in a private
    directory)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import liberacion"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return prefix if probe.returncode == 0 else None


def test_a_home_that_cannot_be_written_fails_before_anything_is_published() -> None:
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("root, and no user that file modes bind can run this checkout")
    shared = Path(tempfile.mkdtemp(prefix="liberacion-ro-"))
    try:
        shared.chmod(0o777)
        source = shared / "t.csv"
        source.write_text("a,b\n1,x\n2,y\n", encoding="utf-8")
        home = shared / "home"
        (home / "lake").mkdir(parents=True)
        (home / "lake").chmod(0o777)  # the tables could be written, the home itself cannot
        home.chmod(0o555)
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "liberacion", "--home", str(home), "fetch", str(source), "--as", TABLE],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
        assert result.returncode == 1, result.stderr
        assert result.stderr.splitlines() == [
            f"error: cannot use {home}: Permission denied; check its permissions or choose another home with --home"
        ]
        assert list((home / "lake").iterdir()) == []  # nothing published
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@pytest.mark.parametrize("command", ["fetch", "refresh", "discover"])
def test_a_full_disk(
    cli: Any, command: str, csv_file: Path, offline_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0
    csv_file.write_text("a,b\n1,x\n3,z\n", encoding="utf-8")  # refresh has something to write

    def full(path: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("liberacion.files.fsync_file", full)
    result = cli(*command_args(command, csv_file))
    if command == "discover":  # the listing is offline: only the index write can meet the full disk
        assert "Traceback" not in result.stderr and result.exit_code == 1
        return
    assert_one_error(result, 1, "No space left on device")


# -- damaged files in the home -----------------------------------------------------------------


def baseline(cli: Any, command: str, csv_file: Path) -> Any:
    return cli(*command_args(command, csv_file))


@pytest.mark.parametrize("damaged", ["index/datasets.parquet", "lake.duckdb"])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_index_or_views_database(
    cli: Any, home: Path, command: str, damaged: str, csv_file: Path, offline_catalog: Path
) -> None:
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0
    healthy = baseline(cli, command, csv_file)
    target = home / damaged
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"garbage, not a database")
    result = cli(*command_args(command, csv_file))
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert result.exit_code == healthy.exit_code, result.stderr
    assert len(error_lines(result)) == len(error_lines(healthy))


def test_sql_rebuilds_a_damaged_index_and_views_database(cli: Any, home: Path, csv_file: Path) -> None:
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0
    (home / "index").mkdir(exist_ok=True)
    (home / "index" / "datasets.parquet").write_bytes(b"garbage")
    (home / "lake.duckdb").write_bytes(b"garbage")
    result = cli("sql", "select count(*) as n from liberacion.datasets")
    assert result.exit_code == 0, result.stderr
    assert "index was rebuilt" in result.stderr and "lake.duckdb" in result.stderr
    assert int(result.stdout.splitlines()[1]) > 0
    assert (home / "lake.duckdb").read_bytes()[8:12] == b"DUCK"
    assert not error_lines(result)


# -- SQL ---------------------------------------------------------------------------------------


FAILS_LATE = "select case when i < 1500000 then i::varchar else 'x' end::int as n from range(2000000) t(i)"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "markdown"])
def test_an_sql_error_mid_stream_exits_4_and_says_rows_were_written(fmt: str) -> None:
    # Into a pipe the rows stream out as they come (DuckDB writes CSV and JSON itself), so some
    # are out before the failing one, and the message says the output is incomplete.
    result = run_process("sql", FAILS_LATE, "--format", fmt)
    result.exit_code = result.returncode
    assert_one_error(result, 4, "Conversion Error", "been written", "incomplete")
    assert len(result.stdout.splitlines()) > 1  # rows did go out before the error


def test_an_sql_error_leaves_no_file_and_nothing_on_a_captured_stdout(cli: Any, tmp_path: Path) -> None:
    # A file, or a stdout that is not a pipe, gets the result only once it is complete.
    target = tmp_path / "out.csv"
    assert_one_error(cli("sql", FAILS_LATE, "--output", str(target)), 4, "Conversion Error")
    assert not target.exists()
    result = cli("sql", FAILS_LATE, "--format", "json")
    assert_one_error(result, 4, "Conversion Error")
    assert result.stdout == ""


def test_an_unknown_table_exits_3_with_a_hint(cli: Any, csv_file: Path) -> None:
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0
    for name in ("local.nope", "nope.t", "nope"):
        assert_one_error(cli("sql", f"select * from {name}"), 3, "no table", "see: liberacion tables")


def test_other_sql_errors_still_exit_4(cli: Any) -> None:
    assert_one_error(cli("sql", "select nope from range(3)"), 4, "Binder Error")


# -- usage and configuration -------------------------------------------------------------------


@pytest.mark.parametrize("command", ROW_FORMAT_COMMANDS)
def test_a_bad_format_is_one_plain_line(cli: Any, command: str, csv_file: Path, offline_catalog: Path) -> None:
    result = cli(*command_args(command, csv_file), "--format", "xml")
    line = assert_one_error(result, 2, "--format: 'xml' is not one of table, csv")
    assert "Value error" not in line and "Usage:" not in result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_option_is_a_usage_error(cli: Any, command: str, csv_file: Path, offline_catalog: Path) -> None:
    result = cli(*command_args(command, csv_file), "--no-such-option")
    assert_one_error(result, 2, "--no-such-option", f"liberacion {command} --help")


def test_bad_global_options_and_commands_are_usage_errors(cli: Any) -> None:
    assert_one_error(cli("--home"), 2, "--home")
    assert_one_error(cli("no-such-command"), 2, "no-such-command")
    assert_one_error(cli("refresh", "--jobs", "0"), 2, "--jobs must be at least 1")
    assert_one_error(cli("refresh", "--jobs", "two"), 2, "--jobs: not a whole number")
    assert_one_error(cli("sql", "select 1", "--max-rows", "1.5"), 2, "--max-rows: not a whole number")
    assert_one_error(cli("info", "local.t", "--format", "csv"), 2, "--format: 'csv' is not one of table, json")
    assert_one_error(cli("fetch", "x.csv", "--wait", "soon"), 2, "--wait: not a number")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_catalogs_path_is_a_config_error(
    cli: Any, command: str, csv_file: Path, offline_catalog: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-manifests"
    result = cli("--catalogs", str(missing), *command_args(command, csv_file))
    assert_one_error(result, 5, str(missing), "--catalogs")


def test_a_missing_liberacion_catalogs_entry_is_a_config_error(
    cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "gone.toml"
    monkeypatch.setenv("LIBERACION_CATALOGS", str(missing))
    assert_one_error(cli("search", "x"), 5, str(missing), "LIBERACION_CATALOGS")


# -- bugs and Ctrl-C ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unexpected_error_is_one_line_and_a_saved_traceback(
    cli: Any, home: Path, command: str, csv_file: Path, offline_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(_root: Path) -> None:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(importlib.import_module("liberacion.cli.app"), "check_home", bug)
    result = cli(*command_args(command, csv_file))
    log = home / "logs" / "last-error.txt"
    assert_one_error(result, 1, "internal error (RuntimeError: something nobody expected)", str(log))
    assert "Traceback" in log.read_text(encoding="utf-8")


@pytest.mark.parametrize("command", COMMANDS)
def test_ctrl_c_is_exit_130_and_one_line(
    cli: Any, command: str, csv_file: Path, offline_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(_root: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module("liberacion.cli.app"), "check_home", interrupted)
    assert_one_error(cli(*command_args(command, csv_file)), 130, "interrupted")


# -- messages ----------------------------------------------------------------------------------


def test_long_messages_are_shortened_at_a_word_boundary() -> None:
    text = "word " * 200
    short = shorten(text, 50)
    assert len(short) <= 50 and short.endswith("word…")
    assert one_line(ValueError("first line\nsecond line\nthird"), lines=2) == "first line second line"
    assert shorten("fits", 10) == "fits"


# -- refs and tables -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["info", "history", "diff"])
def test_a_ref_where_a_table_is_expected_names_its_table(cli: Any, command: str) -> None:
    line = assert_one_error(cli(command, "cms/hospital-general-information"), 2, "is a dataset ref")
    assert line.endswith(
        f"its table is cms.hospital_general_information: liberacion {command} cms.hospital_general_information"
    )


@pytest.mark.parametrize("command", ["show", "fetch"])
def test_a_table_where_a_ref_is_expected_names_its_ref(cli: Any, command: str) -> None:
    # A curated dataset of a shipped catalog: its ref comes from the manifest.
    line = assert_one_error(cli(command, "cms.hospital_general_information"), 2, "is a table name")
    assert line.endswith(
        f"its ref is cms/hospital-general-information: liberacion {command} cms/hospital-general-information"
    )
    # A table of a known catalog that no manifest or index names: no ref to give, but not a file either.
    assert_one_error(cli(command, "cms.nothing_like_it"), 2, "is a table name", "see: liberacion search")


def test_a_fetched_table_names_the_ref_it_came_from(cli: Any, csv_file: Path) -> None:
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0
    # A table fetched from a file has no ref; fetch then reads the name as a file, which is not there.
    assert_one_error(cli("show", TABLE), 2, "is a table name", "see: liberacion search")


def test_a_file_named_like_a_table_is_still_a_file(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cms.extra").write_text("a,b\n1,2\n", encoding="utf-8")
    result = cli("fetch", "cms.extra", "--as", "local.extra")
    assert result.exit_code == 0, result.stderr


def test_every_fetch_result_names_its_table_failed_ones_too(cli: Any, tmp_path: Path) -> None:
    missing = str(tmp_path / "deaths.csv")
    result = cli("fetch", missing, "cms/no-such-dataset", "--json")
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["status"], r["table"]) for r in records] == [
        ("failed", "local.deaths"),
        ("failed", "cms.no_such_dataset"),
    ]
    result = cli("fetch", missing, "--as", "cdc.deaths", "--json")
    assert json.loads(result.stdout)["table"] == "cdc.deaths"
    lines = cli("fetch", missing, "cms/no-such-dataset").stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["local.deaths", "failed"], ["cms.no_such_dataset", "failed"]]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["sql", "select 1", "--max-rows", "-1"], ["--max-rows", "at least 0"]),
        (["search", "hospital", "--limit", "-1"], ["--limit", "at least 0"]),
        (["diff", TABLE, "--show", "-2"], ["--show", "at least 0"]),
        (["--home", "", "tables"], ["--home", "must not be empty"]),
        (["sql", "select 1", "--output", ""], ["--output", "must not be empty"]),
    ],
)
def test_values_an_option_cannot_take_are_usage_errors(cli: Any, args: list[str], words: list[str]) -> None:
    assert_one_error(cli(*args), 2, *words)


def test_sql_from_a_file_that_is_not_utf8(cli: Any, tmp_path: Path) -> None:
    query = tmp_path / "report.sql"
    query.write_bytes(b"\xff\xfeselect 1")
    assert_one_error(cli("sql", "--file", str(query)), 2, "report.sql", "not UTF-8")


def test_member_of_a_file_that_has_none(cli: Any, csv_file: Path) -> None:
    assert_one_error(cli("fetch", str(csv_file), "--as", TABLE, "--member", "x.csv"), 1, "not a zip or a workbook")


@pytest.mark.parametrize(
    ("name", "value", "command"),
    [
        ("LIBERACION_KEEP", "abc", "prune"),
        ("LIBERACION_KEEP", "0", "prune"),  # once kept 1 and deleted the rest
        ("LIBERACION_KEEP", "0", "fetch"),
        ("LIBERACION_DOWNLOAD_SEGMENTS", "3", "fetch"),
        ("LIBERACION_MEMORY_LIMIT", "lots", "fetch"),
    ],
)
def test_environment_values_that_cannot_be_honoured(
    cli: Any, monkeypatch: pytest.MonkeyPatch, csv_file: Path, name: str, value: str, command: str
) -> None:
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0
    csv_file.write_text("a,b\n1,x\n2,y\n3,z\n", encoding="utf-8")
    monkeypatch.setenv(name, value)
    result = cli(*command_args(command, csv_file))
    assert result.exit_code in (1, 5), result.stderr
    assert_one_error(result, result.exit_code, name, repr(value))
    monkeypatch.delenv(name)
    assert [s["rows"] for s in json.loads(cli("history", TABLE, "--format", "json").stdout)] == [2]


def test_a_damaged_snapshot_record_names_itself_and_hides_no_other_table(
    cli: Any, home: Path, csv_file: Path, tmp_path: Path
) -> None:
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0
    other = tmp_path / "other.csv"
    other.write_text("x\n1\n2\n3\n", encoding="utf-8")
    assert cli("fetch", str(other), "--as", "t.other").exit_code == 0
    [record] = home.glob(f"lake/{TABLE.replace('.', '/')}/snapshots/*/snapshot.json")
    record.write_text("{oops", encoding="utf-8")
    listed = cli("tables", "--format", "json")
    rows = {t["table"]: t for t in json.loads(listed.stdout)}
    assert listed.exit_code == 0 and rows["other"]["rows"] == 3  # the damaged one is listed, not hidden
    assert rows[TABLE.split(".")[1]]["rows"] is None and str(record) in rows[TABLE.split(".")[1]]["error"]
    assert f"{record} is damaged" in listed.stderr and "note: table " in listed.stderr
    counted = cli("sql", "select count(*) n from t.other", "--format", "json")
    assert counted.exit_code == 0 and json.loads(counted.stdout) == [{"n": 3}]
    assert_one_error(cli("info", TABLE), 1, str(record), "damaged", "fetch the table again")


def test_output_paths_that_cannot_be_right(cli: Any, tmp_path: Path) -> None:
    assert_one_error(cli("sql", "select 1", "--output", str(tmp_path)), 2, "is a directory", "give a file name")
    typo = tmp_path / "reprots" / "2026" / "x.csv"
    assert_one_error(cli("sql", "select 1", "--output", str(typo)), 2, f"{typo.parent} does not exist")
    assert not (tmp_path / "reprots").exists()  # a typo creates no directories


def test_messages_for_a_first_day(cli: Any, home: Path) -> None:
    assert_one_error(cli("sql", "select * from liberacion.datasets"), 3, "run liberacion discover")
    assert_one_error(cli("--home", str(home)), 2, "Missing command; see: liberacion --help")


def test_a_curated_table_not_fetched_yet_says_how_to_fetch_it(cli: Any) -> None:
    result = cli("sql", "select count(*) from cms.hospital_general_information")
    assert_one_error(result, 3, "liberacion fetch cms/hospital-general-information")
