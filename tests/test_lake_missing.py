"""A shared lake (``--lake``) that is missing, unreachable or changed under a query: one ``error:``
line that says what to do and the README's exit code, never a traceback, an internal error or an
empty answer. Loopback only: the S3 server of ``conftest`` (moto), local files, and a local port
bound but not listening for a host that does not answer."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.server import LocalServer

pytest.importorskip("pyiceberg")

CSV = "id,n\n01,1\n02,2\n"


def _error_line(result: Any) -> str:
    """The one ``error:`` line of a failed command (and no internal error, no traceback)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nothing else takes it) but not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def team_catalog(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Name a shared catalog ``team`` configured by pyiceberg's environment variables."""

    def configure(**settings: str) -> None:
        monkeypatch.setenv("LIBERACION_ICEBERG_CATALOG", "team")
        for key, value in settings.items():
            monkeypatch.setenv(f"PYICEBERG_CATALOG__TEAM__{key.upper()}", value)

    return configure


# -- 1. a shared catalog that cannot be reached or opened ------------------------------------------


def test_a_shared_sql_catalog_whose_file_cannot_be_opened_is_a_configuration_error(
    cli: Cli, tmp_path: Path, team_catalog: Any
) -> None:
    team_catalog(type="sql", uri=f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'team.db'}")
    result: Any = cli("--lake", str(tmp_path / "lake"), "tables")
    assert result.exit_code == 5
    line = _error_line(result)
    assert "catalog 'team'" in line and str(tmp_path / "no" / "such" / "dir" / "team.db") in line
    assert "PYICEBERG_CATALOG__TEAM__URI" in line


def test_a_shared_catalog_that_does_not_answer_is_a_host_that_cannot_be_reached(
    cli: Cli, tmp_path: Path, team_catalog: Any, refused_port: int
) -> None:
    team_catalog(type="rest", uri=f"http://alice:s3cret@127.0.0.1:{refused_port}/catalog")
    result: Any = cli("--lake", str(tmp_path / "lake"), "tables")
    assert result.exit_code == 1, result.stderr
    line = _error_line(result)
    assert line.startswith(f"error: cannot reach the Iceberg catalog 'team' at http://127.0.0.1:{refused_port}/catalog")
    assert "s3cret" not in result.stderr and "alice" not in result.stderr


def test_a_sql_catalog_database_is_probed_to_tell_unreachable_from_misconfigured(
    team_catalog: Any, refused_port: int
) -> None:
    """A PostgreSQL catalog (no driver is installed here, so the driver's failure is built): a
    server that does not answer is exit 1, one that answers but refuses us is exit 5; the
    password never shows."""
    from sqlalchemy.exc import OperationalError

    from liberacion.errors import ConfigError, ExitCode, Unreachable
    from liberacion.iceberg import catalog_failure

    team_catalog(type="sql")
    failed = OperationalError("SELECT 1", {}, Exception('password authentication failed for user "bob"'))
    down = catalog_failure(failed, {"uri": f"postgresql://bob:s3cret@127.0.0.1:{refused_port}/iceberg"})
    assert isinstance(down, Unreachable) and down.exit_code == ExitCode.FAILED
    assert str(down).startswith(f"cannot reach the Iceberg catalog 'team' at postgresql://127.0.0.1:{refused_port}")
    assert "s3cret" not in str(down)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        refused = catalog_failure(failed, {"uri": f"postgresql://bob:s3cret@127.0.0.1:{port}/iceberg"})
    assert isinstance(refused, ConfigError) and refused.exit_code == ExitCode.CONFIG
    assert "password authentication failed" in str(refused) and "s3cret" not in str(refused)


def test_a_sql_catalog_whose_driver_is_not_installed_says_what_to_install(
    cli: Cli, tmp_path: Path, team_catalog: Any, refused_port: int
) -> None:
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the PostgreSQL driver is installed here")
    team_catalog(type="sql", uri=f"postgresql+psycopg2://bob:s3cret@127.0.0.1:{refused_port}/iceberg")
    result: Any = cli("--lake", str(tmp_path / "lake"), "tables")
    assert result.exit_code == 5
    line = _error_line(result)
    assert "catalog 'team'" in line and "pip install" in line and "psycopg2" in line
    assert "s3cret" not in result.stderr


# -- 2. a missing bucket, an unreachable store ------------------------------------------------------


READS = [["tables"], ["sql", "select 1"], ["history", "x.t"], ["info", "x.t"], ["diff", "x.t"]]


@pytest.mark.parametrize("command", READS, ids=lambda c: c[0])
def test_read_commands_on_a_missing_bucket_say_it_does_not_exist(cli: Cli, bucket: str, command: list[str]) -> None:
    missing = f"{bucket}-gone"
    result: Any = cli("--lake", f"s3://{missing}/lake", *command)
    assert result.exit_code == 3
    assert f"the bucket {missing} of the lake s3://{missing}/lake does not exist" in _error_line(result)


@pytest.mark.parametrize("command", [["tables"], ["history", "x.t"]], ids=lambda c: c[0])
def test_read_commands_on_a_store_that_cannot_be_reached_say_so(
    cli: Cli, bucket: str, monkeypatch: pytest.MonkeyPatch, refused_port: int, command: list[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{refused_port}")
    result: Any = cli("--lake", f"s3://{bucket}/lake", *command)
    assert result.exit_code == 1
    assert f"cannot reach the store http://127.0.0.1:{refused_port}" in _error_line(result)


def test_a_fetch_into_a_missing_bucket_fails_before_downloading(
    cli: Cli, bucket: str, http_server: LocalServer
) -> None:
    url = http_server.add("/t.csv", CSV)
    missing = f"{bucket}-gone"
    result: Any = cli("--lake", f"s3://{missing}/lake", "fetch", url, "--as", "x.t")
    assert result.exit_code == 1  # fetch is a batch command: 1 when its datasets failed
    assert f"the bucket {missing} of the lake s3://{missing}/lake does not exist" in _error_line(result)
    assert http_server.hits("/t.csv") == []
    # --json: one object per dataset all the same (it printed nothing), the failure's reason in it.
    result = cli("--lake", f"s3://{missing}/lake", "fetch", url, "--as", "x.t", "--json")
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (record["ref"], record["table"], record["status"], record["stage"]) == (url, "x.t", "failed", "publish")
    assert f"the bucket {missing}" in record["error"] and result.exit_code == 1


# -- 3. a location that holds no lake ----------------------------------------------------------------


@pytest.mark.parametrize("command", READS, ids=lambda c: c[0])
def test_read_commands_on_a_path_that_holds_no_lake_say_so(cli: Cli, tmp_path: Path, command: list[str]) -> None:
    typo = tmp_path / "no" / "such" / "dir"
    result: Any = cli("--lake", str(typo), *command)
    assert result.exit_code == 3
    assert _error_line(result).startswith(f"error: no lake at {typo}")
    assert f"'liberacion --lake {typo} fetch REF' creates one" in result.stderr
    assert not (tmp_path / "no").exists()  # reading creates nothing


def test_a_directory_or_a_bucket_prefix_without_a_lake_is_no_lake(cli: Cli, tmp_path: Path, bucket: str) -> None:
    (tmp_path / "elsewhere" / "notes").mkdir(parents=True)
    for lake in (str(tmp_path / "elsewhere"), f"s3://{bucket}/nothing-here"):
        result: Any = cli("--lake", lake, "tables")
        assert result.exit_code == 3, result.stderr
        assert _error_line(result).startswith(f"error: no lake at {lake}")


def test_a_new_path_becomes_a_lake_with_its_first_fetch_and_a_lake_without_tables_lists_empty(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    from liberacion.home import Home
    from liberacion.iceberg_lake import IcebergLake
    from liberacion.storage import parse_lake

    source, lake = tmp_path / "t.csv", tmp_path / "new" / "lake"
    source.write_text(CSV, encoding="utf-8")
    fetched: Any = cli("--lake", str(lake), "fetch", str(source), "--as", "x.t")
    assert fetched.exit_code == 0, fetched.stderr
    listed: Any = cli("--lake", str(lake), "tables", "--format", "json")
    assert [row["table"] for row in json.loads(listed.stdout)] == ["t"]

    IcebergLake(Home(home), parse_lake(str(lake))).drop("x.t")  # the lake stays, without tables
    emptied: Any = cli("--lake", str(lake), "tables", "--format", "json")
    assert emptied.exit_code == 0, emptied.stderr
    assert json.loads(emptied.stdout) == []
    queried: Any = cli("--lake", str(lake), "sql", "--format", "csv", "select 42 as n")
    assert queried.exit_code == 0 and queried.stdout == "n\n42\n", queried.stderr
    missing: Any = cli("--lake", str(lake), "history", "x.t")
    assert missing.exit_code == 3 and _error_line(missing).startswith("error: no table x.t in the lake")


# -- 4. a snapshot pruned under a query on S3 ---------------------------------------------------------


def test_a_query_whose_snapshot_prune_removed_on_s3_is_told_to_run_again(
    cli: Cli, bucket: str, tmp_path: Path, home: Path
) -> None:
    import duckdb

    from liberacion.errors import ExitCode, SQLError
    from liberacion.home import Home
    from liberacion.iceberg_lake import IcebergLake
    from liberacion.query import relation, sql_error
    from liberacion.storage import parse_lake

    lake, source = f"s3://{bucket}/lake", tmp_path / "t.csv"
    source.write_text(CSV, encoding="utf-8")
    assert cli("--lake", lake, "fetch", str(source), "--as", "x.t").exit_code == 0
    query = relation(IcebergLake(Home(home), parse_lake(lake)), "select sum(n) from x.t")  # bound, not yet read
    assert query is not None
    time.sleep(0.01)
    source.write_text(CSV + "03,3\n", encoding="utf-8")
    assert cli("--lake", lake, "fetch", str(source), "--as", "x.t").exit_code == 0
    pruned: Any = cli("--lake", lake, "prune", "x.t", "--keep", "1")  # on another machine, say
    assert pruned.exit_code == 0, pruned.stderr
    with pytest.raises(duckdb.Error) as raised:
        query.fetchall()
    told = sql_error(raised.value)
    assert isinstance(told, SQLError) and told.exit_code == ExitCode.SQL
    assert str(told).startswith("the snapshot of x.t this query read was removed while it ran")
    assert str(told).endswith("run the query again")


# -- 5. refresh and prune over every table of a location that holds no lake ------------------------

EVERY_TABLE = [["refresh"], ["refresh", "--check"], ["prune"]]


@pytest.mark.parametrize("home_exists", [False, True], ids=["new-home", "used-home"])
@pytest.mark.parametrize("command", EVERY_TABLE, ids="-".join)
def test_refresh_and_prune_on_a_location_that_holds_no_lake_say_so(
    cli: Cli, tmp_path: Path, bucket: str, home: Path, command: list[str], home_exists: bool
) -> None:
    """Not "nothing to refresh" with exit 0: a crontab whose --lake has a typo would do nothing,
    night after night, and say all was well."""
    if home_exists:  # a home that fetched before takes the refresh lock, then finds nothing
        home.mkdir(parents=True)
    typo = tmp_path / "no" / "such" / "dir"
    for lake in (str(typo), f"s3://{bucket}/nothing-here"):
        result: Any = cli("--lake", lake, *command)
        assert result.exit_code == 3, result.stderr
        assert _error_line(result).startswith(f"error: no lake at {lake}")
    assert not (tmp_path / "no").exists()  # creates nothing


def _summaries(result: Any, log: Path) -> list[dict[str, Any]]:
    """The last line of ``--json`` on stdout and of ``--log FILE``: the run's summaries."""
    return [json.loads(text.splitlines()[-1]) for text in (result.stdout, log.read_text(encoding="utf-8"))]


def test_a_refresh_of_no_lake_still_writes_its_summary_line(cli: Cli, tmp_path: Path) -> None:
    typo, log = tmp_path / "no" / "such" / "dir", tmp_path / "refresh.jsonl"
    result: Any = cli("--lake", str(typo), "refresh", "--json", "--log", str(log))
    assert result.exit_code == 3, result.stderr
    assert _error_line(result).startswith(f"error: no lake at {typo}")
    for summary in _summaries(result, log):
        assert summary["event"] == "summary" and summary["tables"] is None and summary["exit_code"] == 3
        assert summary["error"].startswith(f"no lake at {typo}")


def test_a_lake_without_tables_has_nothing_to_refresh_and_a_table_it_lacks_is_not_found(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    from liberacion.home import Home
    from liberacion.iceberg_lake import IcebergLake
    from liberacion.storage import parse_lake

    source, lake = tmp_path / "t.csv", tmp_path / "lake"
    source.write_text(CSV, encoding="utf-8")
    assert cli("--lake", str(lake), "fetch", str(source), "--as", "x.t").exit_code == 0
    missing: Any = cli("--lake", str(lake), "refresh", "x.nope")
    assert missing.exit_code == 3 and _error_line(missing).startswith("error: no table x.nope in the lake")

    IcebergLake(Home(home), parse_lake(str(lake))).drop("x.t")  # the lake stays, without tables
    for command in EVERY_TABLE:
        result: Any = cli("--lake", str(lake), *command)
        assert result.exit_code == 0, result.stderr
        assert "error:" not in result.stderr
    assert "nothing to refresh" in cli("--lake", str(lake), "refresh").stderr  # type: ignore[attr-defined]
    dropped: Any = cli("--lake", str(lake), "refresh", "x.t")
    assert dropped.exit_code == 3 and _error_line(dropped).startswith("error: no table x.t in the lake")


# -- 6. fetch and refresh on a store that cannot be reached or lost its bucket -----------------------


def _delete_bucket(name: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for found in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=found["Key"])
    s3.delete_bucket(Bucket=name)


def test_a_store_that_cannot_be_reached_fails_fetch_and_refresh_with_one_line_and_a_summary(
    cli: Cli, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused_port: int
) -> None:
    lake, source, log = f"s3://{bucket}/lake", tmp_path / "t.csv", tmp_path / "refresh.jsonl"
    source.write_text(CSV, encoding="utf-8")
    assert cli("--lake", lake, "fetch", str(source), "--as", "x.t").exit_code == 0
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{refused_port}")
    said = f"cannot reach the store http://127.0.0.1:{refused_port}"

    fetched: Any = cli("--lake", lake, "fetch", str(source), "--as", "x.t")
    assert fetched.exit_code == 1 and said in _error_line(fetched)
    for command in (["refresh"], ["refresh", "--check"]):
        log.unlink(missing_ok=True)
        result: Any = cli("--lake", lake, *command, "--json", "--log", str(log))
        assert result.exit_code == 1, result.stderr
        assert said in _error_line(result)
        for summary in _summaries(result, log):
            assert summary["tables"] is None and summary["exit_code"] == 1 and said in summary["error"]


def test_a_bucket_deleted_under_a_lake_is_said_not_taken_for_damaged_tables(
    cli: Cli, bucket: str, tmp_path: Path
) -> None:
    """The catalog still lists the lake's tables; their metadata files went with the bucket."""
    lake, source, log = f"s3://{bucket}/lake", tmp_path / "t.csv", tmp_path / "refresh.jsonl"
    source.write_text(CSV, encoding="utf-8")
    assert cli("--lake", lake, "fetch", str(source), "--as", "x.t").exit_code == 0
    _delete_bucket(bucket)
    said = f"the bucket {bucket} of the lake {lake} does not exist"

    for command in (["refresh"], ["refresh", "--check"]):  # writers' check: exit 1, as fetch's
        log.unlink(missing_ok=True)
        result: Any = cli("--lake", lake, *command, "--json", "--log", str(log))
        assert result.exit_code == 1, result.stderr
        assert said in _error_line(result) and "damaged" not in result.stdout + result.stderr
        for summary in _summaries(result, log):
            assert summary["tables"] is None and summary["exit_code"] == 1 and said in summary["error"]
    for command in (["history", "x.t"], ["info", "x.t"], ["tables"]):  # reads: not found, exit 3
        read: Any = cli("--lake", lake, *command)
        assert read.exit_code == 3, read.stderr
        assert said in _error_line(read) and "damaged" not in read.stderr


# -- 7. a store that goes away while a command runs --------------------------------------------------


def test_reads_of_a_lake_whose_store_went_away_are_one_line(
    cli: Cli, stoppable_store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store answered earlier in this process (the fetch, as the start of a command would),
    then stops: each read retries it, then says so on one line, exit 1 (a host that cannot be reached)."""
    from liberacion import storage

    source = tmp_path / "t.csv"
    source.write_text(CSV, encoding="utf-8")
    assert cli("--lake", "s3://team/lake", "fetch", str(source), "--as", "x.t").exit_code == 0
    stoppable_store.stop()
    monkeypatch.setattr(storage, "REPROBE_SECONDS", 0.0)  # probed again at once, not after a second
    for command in (["history", "x.t"], ["info", "x.t"], ["tables"], ["sql", "select count(*) from x.t"]):
        result: Any = cli("--lake", "s3://team/lake", *command)
        assert result.exit_code == 1, result.stderr
        assert f"cannot reach the store {stoppable_store.endpoint} any more" in _error_line(result)
