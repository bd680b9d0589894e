"""A full disk or a read-only file system at each stage: one clear line naming the file or place
that could not be written and what to do, and the lake exactly as it says it is.

CI cannot mount file systems, so the failures are injected where the system would report them
(a write or a rename raising ENOSPC / EROFS), or made real without root: a file size limit
(``ulimit -f``) makes every write past it fail with EFBIG, DuckDB's included.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

TABLE = "t.a"


def _full(path: object = None) -> OSError:
    if path is None:  # a write into an open file names none
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def _errors(result: Any) -> list[str]:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def _csv(tmp_path: Path, name: str, rows: int) -> Path:
    path = tmp_path / name
    path.write_text("id,name\n" + "".join(f"{i:05d},name {i}\n" for i in range(rows)), encoding="utf-8")
    return path


def _history(cli: Any, table: str = TABLE) -> list[dict[str, Any]]:
    result = cli("history", table, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# -- sql --output, and where stdout goes ---------------------------------------------------------


def _file_size_limit(limit: int) -> Any:
    def apply() -> None:  # in the child: writes past ``limit`` bytes fail with EFBIG, never a signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_output_that_cannot_grow_names_the_output_not_a_temporary_file(
    cli: Any, home: Path, tmp_path: Path, fmt: str
) -> None:
    """csv is written by DuckDB's COPY, parquet by liberacion: both said as the --output's failure
    (exit 1, as for any disk that cannot be written), never DuckDB's JSON about a hidden file."""
    assert cli("fetch", str(_csv(tmp_path, "a.csv", 20_000)), "--as", TABLE).exit_code == 0
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / f"result.{fmt}"
    result = subprocess.run(
        [sys.executable, "-m", "liberacion", "sql", f"select * from {TABLE}", "-o", str(target)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)},
        preexec_fn=_file_size_limit(64 * 1024),
        timeout=120,
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"error: cannot write {target}: File too large; the file grew past the largest size allowed there:"
        " write the output elsewhere"
    ]
    assert list(out_dir.iterdir()) == []  # neither the output nor its temporary file


def test_a_temporary_directory_that_cannot_hold_the_result_says_so(cli: Any, home: Path, tmp_path: Path) -> None:
    """``liberacion sql ... > file``: DuckDB writes the result into the system's temporary
    directory first (a file the shell opened cannot be reopened); when that fails, the line
    names the directory and TMPDIR, not DuckDB's JSON about a file the user never named."""
    assert cli("fetch", str(_csv(tmp_path, "a.csv", 20_000)), "--as", TABLE).exit_code == 0
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with open(tmp_path / "result.csv", "w", encoding="utf-8") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "liberacion", "sql", f"select * from {TABLE}"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home), "TMPDIR": str(scratch)},
            preexec_fn=_file_size_limit(64 * 1024),
            timeout=120,
        )
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: cannot write the result into the temporary directory {scratch}/"), line
    assert line.endswith(": File too large; free some disk space there or set TMPDIR to another directory"), line
    assert list(scratch.iterdir()) == []


def test_a_full_disk_under_the_output_says_so_of_the_output(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("fetch", str(_csv(tmp_path, "a.csv", 10)), "--as", TABLE).exit_code == 0

    def full(*_args: Any, **_kwargs: Any) -> None:
        raise _full()

    monkeypatch.setattr("liberacion.render._write_parquet", full)
    target = tmp_path / "result.parquet"
    result = cli("sql", f"select * from {TABLE}", "-o", str(target))
    assert result.exit_code == 1
    assert _errors(result) == [
        f"error: cannot write {target}: No space left on device; free some disk space there or write the output"
        " elsewhere"
    ]
    assert _leftovers(tmp_path) == []


def test_a_read_only_output_directory_names_the_output_and_not_the_home(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("fetch", str(_csv(tmp_path, "a.csv", 10)), "--as", TABLE).exit_code == 0
    out_dir = tmp_path / "mounted-read-only"
    out_dir.mkdir()
    real_replace = os.replace

    def read_only(source: Any, target: Any, **kwargs: Any) -> None:
        if Path(target).parent == out_dir:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(source), str(target))
        real_replace(source, target, **kwargs)

    monkeypatch.setattr(os, "replace", read_only)
    for fmt in ("csv", "table"):  # DuckDB's COPY, then render
        target = out_dir / f"result.{fmt}"
        result = cli("sql", f"select * from {TABLE}", "-o", str(target), "--format", fmt)
        assert result.exit_code == 1
        assert _errors(result) == [
            f"error: cannot write {target}: Read-only file system; the file system is read-only: write the output"
            " elsewhere"
        ]
    assert list(out_dir.iterdir()) == []


def test_a_full_disk_under_standard_output_is_not_blamed_on_the_home(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``liberacion sql ... > /full/disk/file``: the result goes through a temporary file, then
    to stdout, which fails: the home has nothing to do with it."""
    assert cli("fetch", str(_csv(tmp_path, "a.csv", 10)), "--as", TABLE).exit_code == 0

    def full(*_args: Any, **_kwargs: Any) -> None:
        raise _full()

    monkeypatch.setattr("liberacion.query.shutil.copyfileobj", full)
    result = cli("sql", f"select * from {TABLE}", "--format", "csv")
    assert result.exit_code == 1
    assert _errors(result) == [
        "error: cannot write the standard output: No space left on device; free some disk space there or write"
        " the output elsewhere"
    ]


# -- sql spilling -------------------------------------------------------------------------------

SPILLING_QUERY = "select count(*) as n from (select range, random() as r from range(3000000) order by r)"


def test_sql_on_a_read_only_home_spills_into_the_temporary_directory(
    cli: Any, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A home on a read-only file system (a mounted copy) answers a query that spills: DuckDB
    cannot make its spill folder there, so it spills into the system's temporary directory."""
    assert cli("fetch", str(_csv(tmp_path, "a.csv", 10)), "--as", TABLE).exit_code == 0
    work = home / "work"
    work.mkdir(exist_ok=True)
    # What a read-only file system does to DuckDB's spill folder: it cannot be made.
    (work / f"{os.getpid()}-sql").write_text("not a directory", encoding="utf-8")
    real_access = os.access

    def access(path: Any, mode: int, **kwargs: Any) -> bool:  # as on a read-only mount, root or not
        return False if Path(path) == work else real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setenv("LIBERACION_MEMORY_LIMIT", "60MB")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    result = cli("sql", SPILLING_QUERY, "--format", "json")
    assert _errors(result) == []
    assert result.exit_code == 0 and json.loads(result.stdout) == [{"n": 3000000}]


def test_a_full_spill_disk_is_not_called_a_lack_of_memory(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB stops spilling when the disk has no room left and calls that running out of memory;
    the line says the disk is full, and where."""
    import liberacion.engine

    real_limit = liberacion.engine.set_memory_limit

    def little_room(con: Any) -> None:  # DuckDB's own bound on its spill files: the disk's free space
        real_limit(con)
        con.execute("SET max_temp_directory_size = '1MB'")

    monkeypatch.setattr("liberacion.query.set_memory_limit", little_room)
    monkeypatch.setenv("LIBERACION_MEMORY_LIMIT", "60MB")
    result = cli("sql", SPILLING_QUERY)
    assert result.exit_code == 4
    (line,) = _errors(result)
    assert "failed to offload" in line and "the disk it spills to" in line and "is full" in line, line


# -- fetch into a named lake (a directory) ------------------------------------------------------


@pytest.fixture
def iceberg_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("pyiceberg")
    lake = tmp_path / "shared-lake"
    monkeypatch.setenv("LIBERACION_LAKE", str(lake))
    return lake


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "the disk is full (No space left on device) writing under {lake}; the table is as it was:"
         " free some disk space or name another lake with --lake"),
        (errno.EROFS, "cannot write to the lake {lake}: Read-only file system ({lake}/"),
    ],
)  # fmt: skip
def test_a_full_or_read_only_lake_directory_is_named_not_the_home(
    cli: Any, tmp_path: Path, iceberg_lake: Path, monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:
    from pyarrow import fs

    assert cli("fetch", str(_csv(tmp_path, "a.csv", 3)), "--as", TABLE).exit_code == 0
    before = _history(cli)

    def refused(source: str, destination: str, **_kwargs: Any) -> None:
        raise OSError(code, os.strerror(code), destination)

    monkeypatch.setattr(fs, "copy_files", refused)
    result = cli("fetch", str(_csv(tmp_path, "b.csv", 5)), "--as", TABLE)
    assert result.exit_code == 1
    (line,) = _errors(result)
    assert words.format(lake=iceberg_lake) in line, line
    assert "--home" not in line
    assert _history(cli) == before


# -- fetch: a failure after the commit point ----------------------------------------------------


def test_a_write_failing_after_the_switch_does_not_say_the_table_is_as_it_was(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pointer switched, then the lake's generation file could not be written: the new
    snapshot is what every reader sees, so the fetch says it published it (with a note)."""
    from liberacion.lake import Lake

    assert cli("fetch", str(_csv(tmp_path, "a.csv", 3)), "--as", TABLE).exit_code == 0

    def full(self: Lake) -> None:
        raise _full(self.home.lake / ".generation")

    monkeypatch.setattr(Lake, "_new_generation", full)
    result = cli("fetch", str(_csv(tmp_path, "a.csv", 5)), "--as", TABLE, "--json")
    assert _errors(result) == []
    assert result.exit_code == 0
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["status"] == "fetched" and record["rows"] == 5
    assert "published, but then: No space left on device" in result.stderr
    history = _history(cli)
    assert [s["current"] for s in history] == [False, True] and history[-1]["rows"] == 5


def test_a_set_whose_pointers_cannot_be_written_after_its_record_is_published(
    cli: Any, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zip's tables: the commit record is the commit point; a full disk while the pointers
    switch leaves the whole new set current, and the fetch says so."""
    from liberacion.lake import Lake

    archive = tmp_path / "set.zip"

    def write_zip(rows: int) -> None:
        with zipfile.ZipFile(archive, "w") as zipped:
            for member in ("x", "y"):
                zipped.writestr(f"{member}.csv", "id,v\n" + "".join(f"{i},{member}\n" for i in range(rows)))

    write_zip(2)
    assert cli("fetch", str(archive)).exit_code == 0
    write_zip(4)

    def full(self: Lake, table: str, *_args: Any, **_kwargs: Any) -> None:
        raise _full(self.table_dir(table) / "current")

    monkeypatch.setattr(Lake, "_point", full)
    result = cli("fetch", str(archive), "--json")
    assert _errors(result) == []
    assert result.exit_code == 0
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["status"] == "fetched"
    for table in ("local.set__x", "local.set__y"):
        rows = cli("sql", f"select count(*) as n from {table}", "--format", "json")
        assert json.loads(rows.stdout) == [{"n": 4}]


def test_a_single_table_whose_pointer_cannot_be_written_is_as_it_was(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from liberacion.lake import Lake

    assert cli("fetch", str(_csv(tmp_path, "a.csv", 3)), "--as", TABLE).exit_code == 0
    before = _history(cli)

    def full(self: Lake, table: str, *_args: Any, **_kwargs: Any) -> None:
        raise _full(self.table_dir(table) / "current")

    monkeypatch.setattr(Lake, "_point", full)
    result = cli("fetch", str(_csv(tmp_path, "a.csv", 5)), "--as", TABLE)
    assert result.exit_code == 1
    (line,) = _errors(result)
    assert "the disk is full (No space left on device)" in line and "the table is as it was" in line
    assert _history(cli) == before


def test_validators_that_cannot_be_recorded_after_a_publish_are_a_note(
    cli: Any, http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_server.add("/a.csv", "id,name\n1,x\n", content_type="text/csv")
    assert cli("fetch", url, "--as", TABLE).exit_code == 0
    http_server.add("/a.csv", "id,name\n1,x\n2,y\n", content_type="text/csv")

    def full(home: Any, url: str, record: Any) -> None:
        raise _full(Path(home.state) / "urls" / "x.json")

    monkeypatch.setattr("liberacion.fetching.save_url_state", full)
    result = cli("fetch", url, "--as", TABLE, "--json")
    assert _errors(result) == []
    assert result.exit_code == 0
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["status"] == "fetched" and record["rows"] == 2
    assert "published, but the download's validators could not be recorded" in result.stderr
    assert _history(cli)[-1]["rows"] == 2


# -- discover -----------------------------------------------------------------------------------


def test_a_discover_that_cannot_write_its_index_names_the_file_and_catalogs_says_so(
    cli: Any, home: Path, http_server: Any, manifests: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.manifests import small_listing, write_catalog

    url = http_server.add("/data.json", small_listing("Alpha"), content_type="application/json")
    write_catalog(manifests, "loc", [("dcat-us", url)])
    assert cli("discover", "loc").exit_code == 0
    http_server.add("/data.json", small_listing("Alpha", "Beta", "Gamma"), content_type="application/json")

    import liberacion.catalogs.index as index

    real_write = index._write_parquet

    def full(*_args: Any, **_kwargs: Any) -> None:
        raise _full()

    monkeypatch.setattr(index, "_write_parquet", full)
    result = cli("discover", "loc")
    assert result.exit_code == 1
    assert _errors(result) == [
        f"error: cannot write {home / 'index' / 'datasets.parquet'}: No space left on device; free some disk space"
        " or choose another home with --home"
    ]
    assert _leftovers(home / "index") == []
    monkeypatch.setattr(index, "_write_parquet", real_write)
    listed = cli("catalogs", "--format", "json")
    (loc,) = [c for c in json.loads(listed.stdout) if c["name"] == "loc"]
    # What the index holds (one dataset, as search and liberacion.datasets show), not the listing's three.
    assert loc["datasets"] == 1
    assert loc["status"] == "listing read, but the index was not rebuilt: run liberacion discover loc"
    # Its advice names the home typed, as an error's does (it named none: another home was rebuilt).
    typed = cli("--home", str(home), "catalogs", "--format", "json")
    (loc,) = [c for c in json.loads(typed.stdout) if c["name"] == "loc"]
    assert loc["status"].endswith(f"run liberacion --home {shlex.quote(str(home))} discover loc")
    assert cli("discover", "loc").exit_code == 0
    (loc,) = [c for c in json.loads(cli("catalogs", "--format", "json").stdout) if c["name"] == "loc"]
    assert (loc["datasets"], loc["status"]) == (3, "ok")


def test_an_unchanged_table_needs_no_disk_for_its_url(
    cli: Any, http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A "not modified" writes nothing of the URL (its validators stay as they were), so a full
    disk there cannot fail an unchanged table; the refresh's own record is tested below."""
    url = http_server.add("/a.csv", "id,name\n1,x\n", content_type="text/csv")
    assert cli("fetch", url, "--as", TABLE).exit_code == 0
    before = _history(cli)

    def full(home: Any, url: str, record: Any) -> None:
        raise _full(Path(home.state) / "urls" / "x.json")

    monkeypatch.setattr("liberacion.fetching.save_url_state", full)
    result = cli("refresh", "--json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout.splitlines()[0])["event"] == "unchanged"
    assert _history(cli) == before


def test_prune_frees_space_on_a_full_disk(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock's pid needs a block of disk: on a full disk prune, the command that frees space,
    failed writing it."""
    for rows in (3, 4, 5):
        assert cli("fetch", str(_csv(tmp_path, "a.csv", rows)), "--as", TABLE).exit_code == 0

    def full(fd: int, data: bytes, offset: int) -> int:
        raise _full()

    monkeypatch.setattr(os, "pwrite", full)
    result = cli("prune", TABLE, "--keep", "1")
    assert _errors(result) == [] and result.exit_code == 0
    assert [s["rows"] for s in _history(cli)] == [5]


def test_a_refresh_whose_state_cannot_be_saved_still_reports_its_run(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a full home the run's state could not be saved: the tables' lines and the summary still
    go to --json and --log (they are cron's record of the run), with one error line and exit 1."""
    from liberacion.refresh_state import State

    assert cli("fetch", str(_csv(tmp_path, "a.csv", 3)), "--as", TABLE).exit_code == 0

    def full(self: State) -> None:
        raise _full(self.path)

    monkeypatch.setattr(State, "save", full)
    log = tmp_path / "refresh.jsonl"
    result = cli("refresh", "--json", "--log", str(log))
    assert result.exit_code == 1
    (error,) = _errors(result)
    assert "refresh.json" in error and "No space left on device" in error
    for lines in (result.stdout.splitlines(), log.read_text().splitlines()):
        table, summary = (json.loads(line) for line in lines)
        assert table["table"] == TABLE and table["event"] == "unchanged"
        assert summary["event"] == "summary" and summary["exit_code"] == 1
        assert "No space left on device" in summary["error"]


def test_a_publish_that_cannot_switch_leaves_no_snapshot_behind(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pointer could not be written: the new snapshot, never current, is removed at once, not
    left to fill the disk and to count in `tables` until the table's next writer."""
    from liberacion.lake import Lake

    assert cli("fetch", str(_csv(tmp_path, "a.csv", 3)), "--as", TABLE).exit_code == 0

    def full(self: Lake, table: str, snapshot_id: str, *, durable: bool = True) -> None:
        raise _full(self.table_dir(table) / "current")

    monkeypatch.setattr(Lake, "_point", full)
    assert cli("fetch", str(_csv(tmp_path, "a.csv", 5)), "--as", TABLE).exit_code == 1
    (table,) = json.loads(cli("tables", "--format", "json").stdout)
    assert table["snapshots"] == 1 and table["rows"] == 3
    assert [s["rows"] for s in _history(cli)] == [3]


def test_prune_frees_space_when_its_citations_cannot_be_recorded(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prune appends each pruned snapshot's citation to ``pruned.jsonl`` first: on a full disk that
    append failed the prune, the one command that frees space. It is a note now."""
    import builtins

    import liberacion.lake as lake_module

    for rows in (3, 4, 5):
        assert cli("fetch", str(_csv(tmp_path, "a.csv", rows)), "--as", TABLE).exit_code == 0

    def full_for_citations(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path).endswith(lake_module.PRUNED_FILE):
            raise _full(Path(path))
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(lake_module, "open", full_for_citations, raising=False)
    result = cli("prune", TABLE, "--keep", "1")
    assert _errors(result) == [] and result.exit_code == 0, result.stderr
    assert "citations were not recorded in pruned.jsonl: No space left on device" in result.stderr
    assert [s["rows"] for s in _history(cli)] == [5]
