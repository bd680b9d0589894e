"""The tables of one download become current together or not at all, even under kill -9; a rerun
completes the set; killed runs' leftovers go; lake.duckdb is rebuilt once per run, and whenever it
is stale or cannot be read."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from liberacion.lake import Lake
from tests.conftest import ROOT, Cli

MEMBERS = 20


def _zip(path: Path, version: int, members: int = MEMBERS) -> Path:
    """A zip of small CSV members whose values say which version they belong to."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for i in range(members):
            rows = "".join(f"{i:03d}{k:02d},{version},{k * i}\n" for k in range(3))
            archive.writestr(f"m{i:02d}.csv", "code,version,value\n" + rows)
    os.replace(tmp, path)  # a kill never finds half a zip
    return path


def _records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _visible(home: Path) -> dict[str, str]:
    """Every member table a reader sees now, with the sha256 of the download it came from."""
    lake = Lake(home)
    return {snap.table: str(snap.provenance.sha256) for snap in lake.current_snapshots()}


def _pointers(home: Path) -> dict[str, str]:
    """What the ``current`` files say, read as any program would, without liberacion."""
    found = {}
    for pointer in (home / "lake" / "local").glob("set__*/current"):
        try:
            found[pointer.parent.name] = pointer.read_text()
        except OSError:
            continue
    return found


def _start(archive: Path, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    command = [sys.executable, "-m", "liberacion", "fetch", str(archive), "--json"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when_a_pointer_moves(proc: subprocess.Popen[str], home: Path, before: dict[str, str]) -> None:
    """kill -9 the moment the first table of the set switches (or at the end, if none does)."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if _pointers(home) != before:
            break
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)


def test_kill_9_at_random_points_of_a_multi_member_publish_leaves_all_tables_or_none(
    tmp_path: Path, home: Path
) -> None:
    archive = tmp_path / "set.zip"
    rng = random.Random(15)
    complete: str | None = None  # the sha256 of the last version seen whole
    kills = 0
    version = 0
    while kills < 20:
        version += 1
        _zip(archive, version)
        proc = _start(archive, home)
        if kills % 2:
            time.sleep(rng.uniform(0.0, 2.5))  # anywhere: start-up, conversion, publish, views
            proc.send_signal(signal.SIGKILL)
        else:
            _kill_when_a_pointer_moves(proc, home, _pointers(home))  # in the middle of the switch
        proc.communicate(timeout=60)
        kills += proc.returncode == -signal.SIGKILL
        seen = _visible(home)
        if seen:
            assert len(seen) == MEMBERS, f"after kill {kills}: {len(seen)} of {MEMBERS} tables are current"
            versions = set(seen.values())
            assert len(versions) == 1, f"after kill {kills}: tables of {len(versions)} downloads are current"
            complete = versions.pop()
        else:
            assert complete is None, f"after kill {kills}: the set that was current disappeared"

    _zip(archive, version)  # the last version, again: the rerun completes it
    proc = _start(archive, home)
    out, err = proc.communicate(timeout=120)
    (record,) = _records(out)
    assert proc.returncode == 0 and record["status"] in ("fetched", "unchanged"), err
    seen = _visible(home)
    assert len(seen) == MEMBERS and len(set(seen.values())) == 1
    assert set(_pointers(home)) == {f"set__m{i:02d}" for i in range(MEMBERS)}
    assert not list((home / "lake").glob("*/*/.staging-*")), "staging directories of killed runs remain"
    assert not list((home / "lake").glob(".commits/*.json"))
    assert not list(home.glob(".lake.duckdb.*.tmp*"))
    # and the views database agrees with the lake
    import duckdb

    with duckdb.connect(str(home / "lake.duckdb"), read_only=True) as con:
        versions = {con.execute(f"select max(version) from local.set__m{i:02d}").fetchone()[0] for i in range(MEMBERS)}
    assert versions == {version}


def test_a_failure_in_the_middle_of_the_switch_leaves_the_set_whole(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _zip(tmp_path / "set.zip", 1, members=3)
    real_point = Lake._point
    switched: list[str] = []

    def point_then_fail(self: Lake, table: str, *args: Any, **kwargs: Any) -> None:
        if switched:
            raise RuntimeError("power cut")
        switched.append(table)
        real_point(self, table, *args, **kwargs)

    monkeypatch.setattr(Lake, "_point", point_then_fail)
    result = cli("fetch", str(archive), "--json")
    assert result.exit_code == 1
    assert len(_pointers(home)) == 1  # one pointer moved before the failure ...
    assert len(_visible(home)) == 3  # ... and the commit record makes the whole set current
    rows = cli("sql", "select count(*) as n from local.set__m02", "--format", "json")
    assert rows.exit_code == 0 and json.loads(rows.stdout) == [{"n": 3}]

    monkeypatch.setattr(Lake, "_point", real_point)
    (record,) = _records(cli("fetch", str(archive), "--json").stdout)
    assert record["status"] == "unchanged"  # the next run finished the switch
    assert len(_pointers(home)) == 3
    assert not list((home / "lake" / ".commits").glob("*.json"))


def test_leftovers_of_killed_runs_are_removed_by_the_next_run(cli: Cli, tmp_path: Path, home: Path) -> None:
    archive = _zip(tmp_path / "set.zip", 1, members=2)
    assert cli("fetch", str(archive)).exit_code == 0
    lake = home / "lake" / "local"
    current = (lake / "set__m00" / "current").read_text().strip()
    debris = [
        lake / "set__m00" / ".staging-0123456789ab",  # a publish killed while converting
        lake / "set__m00" / "snapshots" / "29991231T235959000000Z",  # killed before its switch
        lake / "set__m07" / ".staging-ba9876543210",  # a member never published at all
    ]
    for path in debris:
        path.mkdir(parents=True)
        (path / "data-0000.parquet").write_bytes(b"PAR1")
    (home / ".lake.duckdb.0badf00d.tmp").write_bytes(b"half a database")
    (home / "lake" / "..generation.0badf00d.tmp").write_text("123")
    (home / "lake" / ".commits").mkdir(exist_ok=True)
    (home / "lake" / ".commits" / ".x.json.0badf00d.tmp").write_text("{")

    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n", encoding="utf-8")
    assert cli("fetch", str(other)).exit_code == 0
    assert [path for path in debris if path.exists()] == []
    assert not (lake / "set__m07").exists()
    assert (lake / "set__m00" / "current").read_text().strip() == current
    assert not list(home.glob(".lake.duckdb.*.tmp"))
    assert not list((home / "lake").glob("**/*.tmp"))


def test_the_views_database_is_built_once_per_run(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import liberacion.lake

    builds: list[int] = []
    real = liberacion.lake.write_views_db

    def counting(*args: Any, **kwargs: Any) -> Any:
        builds.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(liberacion.lake, "write_views_db", counting)
    archive = _zip(tmp_path / "set.zip", 1, members=6)
    assert cli("fetch", str(archive)).exit_code == 0
    assert len(builds) == 1
    assert cli("fetch", str(archive)).exit_code == 0  # unchanged: the views are fresh
    assert len(builds) == 1


def _views_db_count(home: Path, table: str) -> int:
    import duckdb

    with duckdb.connect(str(home / "lake.duckdb"), read_only=True) as con:
        return int(con.execute(f"select count(*) from {table}").fetchone()[0])


def test_a_stale_views_database_is_rebuilt(cli: Cli, tmp_path: Path, home: Path) -> None:
    import duckdb

    data = tmp_path / "beds.csv"
    data.write_text("a,b\n1,2\n", encoding="utf-8")
    assert cli("fetch", str(data)).exit_code == 0
    # A run killed right after its switch never rebuilds lake.duckdb ...
    data.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Lake, "update_views_db", lambda self: False)
        assert cli("fetch", str(data)).exit_code == 0
    # ... and a prune then removes the snapshot its view still reads.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Lake, "refresh_views_db", lambda self: None)
        assert cli("prune", "--keep", "1").exit_code == 0
    with pytest.raises(duckdb.Error, match=r"No files found|does not exist"):
        _views_db_count(home, "local.beds")

    result = cli("fetch", str(data), "--json")
    assert _records(result.stdout)[0]["status"] == "unchanged"
    assert _views_db_count(home, "local.beds") == 2


def test_a_views_database_that_cannot_be_opened_is_rebuilt(cli: Cli, tmp_path: Path, home: Path) -> None:
    data = tmp_path / "beds.csv"
    data.write_text("a,b\n1,2\n", encoding="utf-8")
    assert cli("fetch", str(data)).exit_code == 0
    views = home / "lake.duckdb"
    views.write_bytes(views.read_bytes()[:12] + b"\x00" * 5000)  # DuckDB's header, nothing behind it
    result = cli("fetch", str(data))
    assert result.exit_code == 0
    assert "note:" in result.stderr and "rebuilt" in result.stderr
    assert _views_db_count(home, "local.beds") == 1


def test_a_full_disk_while_refresh_takes_its_lock_is_one_error_line(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    data = tmp_path / "beds.csv"
    data.write_text("a,b\n1,2\n", encoding="utf-8")
    assert cli("fetch", str(data)).exit_code == 0

    real_open = os.open

    def full(path: Any, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith("refresh.lock"):  # a new file needs room; the pid written in it is optional
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", full)
    result = cli("refresh")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write"), result.stderr
    assert "refresh.lock" in lines[0] and "No space left" in lines[0]


def test_a_set_is_recorded_once_so_each_member_costs_the_same_whatever_the_set_size(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    sizes = {}
    for members in (4, 24):
        archive = _zip(tmp_path / f"set{members}.zip", 1, members=members)
        result = cli("fetch", str(archive), "--json")
        assert result.exit_code == 0, result.stderr
        (record,) = _records(result.stdout)
        assert len(record["tables"]) == members
        last = home / "lake" / "local" / f"set{members}__m{members - 1:02d}"
        sizes[members] = (last / "snapshots" / (last / "current").read_text().strip() / "snapshot.json").stat().st_size
    # a member's record does not list the whole set (2,000 members would write 2,000 lists)
    assert abs(sizes[24] - sizes[4]) < 100, sizes
    # and the set is still known as one: removing a member makes the next run publish them all again
    import shutil

    shutil.rmtree(home / "lake" / "local" / "set24__m17")
    (record,) = _records(cli("fetch", str(tmp_path / "set24.zip"), "--json").stdout)
    assert record["status"] == "fetched" and len(record["tables"]) == 24
    (record,) = _records(cli("fetch", str(tmp_path / "set24.zip"), "--json").stdout)
    assert record["status"] == "unchanged"
