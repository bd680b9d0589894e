"""Snapshots over time: `history`, `sql --as-of`, naming a snapshot in SQL, `prune`, stale locks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from liberacion.errors import Busy, Note, UsageError
from liberacion.home import file_lock
from liberacion.lake import Lake
from liberacion.query import run
from liberacion.snapshots import Provenance, Snapshot
from liberacion.timeline import resolve_snapshot
from liberacion.timestamps import parse_as_of, utc_now
from tests.conftest import ROOT


def _publish(lake: Lake, name: str, table: pa.Table, published_at: str | None = None, sha: str = "") -> Snapshot:
    """Publish, optionally pretending it happened at ``published_at`` (rewrites snapshot.json)."""
    snap = lake.publish(name, table, Provenance(sha256=sha or None))
    if published_at is not None:
        manifest = snap.path / "snapshot.json"
        record = json.loads(manifest.read_text())
        record["published_at"] = published_at
        manifest.write_text(json.dumps(record))
        snap = Snapshot.load(snap.path)
    return snap


def _scores(n: int, tag: str) -> pa.Table:
    return pa.table({"id": list(range(n)), "tag": [tag] * n})


def _csv_rows(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.strip().splitlines()]


# -- time travel -------------------------------------------------------------------------------


def test_as_of_a_timestamp_returns_the_earlier_data(cli, home: Path) -> None:
    lake = Lake(home)
    lake.publish("cms.t", _scores(2, "old"))
    between = utc_now()
    lake.publish("cms.t", _scores(5, "new"))
    query = "select count(*) as n, min(tag) as tag from cms.t"
    assert cli("sql", query).stdout == "n,tag\n5,new\n"
    assert cli("sql", "--as-of", between, query).stdout == "n,tag\n2,old\n"
    assert cli("sql", "--as-of", utc_now(), query).stdout == "n,tag\n5,new\n"


def test_as_of_a_date_means_the_end_of_that_day(cli, home: Path) -> None:
    lake = Lake(home)
    _publish(lake, "cms.t", _scores(2, "october"), "2026-10-31T22:00:00.000000Z")
    _publish(lake, "cms.t", _scores(3, "november"), "2026-11-02T06:30:00.000000Z")
    query = "select count(*) as n, min(tag) as tag from cms.t"
    assert cli("sql", "--as-of", "2026-11-01", query).stdout == "n,tag\n2,october\n"
    assert cli("sql", "--as-of", "2026-11-02", query).stdout == "n,tag\n3,november\n"
    assert cli("sql", "--as-of", "2026-11-02T06:29:59", query).stdout == "n,tag\n2,october\n"
    assert cli("sql", "--as-of", "2026-11-02T06:30:00Z", query).stdout == "n,tag\n3,november\n"
    assert cli("sql", "--as-of", "2026-11-02T08:30:00+02:00", query).stdout == "n,tag\n3,november\n"


def test_tables_that_did_not_exist_then_are_absent(cli, home: Path) -> None:
    lake = Lake(home)
    _publish(lake, "cms.early", _scores(1, "e"), "2026-10-01T00:00:00.000000Z")
    _publish(lake, "cms.late", _scores(1, "l"), "2026-12-01T00:00:00.000000Z")
    tables = "select table_name from information_schema.tables where table_schema = 'cms' order by 1"
    assert cli("sql", "--as-of", "2026-11-01", tables).stdout == "table_name\nearly\n"
    result = cli("sql", "--as-of", "2026-11-01", "select * from cms.late")
    assert result.exit_code == 3 and "late" in result.stderr, result.stderr
    result = cli("sql", "--as-of", "2026-09-01", "select * from cms.early")
    assert result.exit_code == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", "2026-11-01T23:59:59.999999Z"),
        (" 2026-11-01 ", "2026-11-01T23:59:59.999999Z"),
        ("2026-11-01T06:30:00", "2026-11-01T06:30:00.000000Z"),
        ("2026-11-01T06:30", "2026-11-01T06:30:00.000000Z"),
        ("2026-11-01 06:30:00", "2026-11-01T06:30:00.000000Z"),
        ("2026-11-01t06:30:00z", "2026-11-01T06:30:00.000000Z"),
        ("2026-11-01T06:30:00.123456Z", "2026-11-01T06:30:00.123456Z"),
        ("2026-11-01T01:30:00-05:00", "2026-11-01T06:30:00.000000Z"),
        ("2026-11-01T00:30:00+01:00", "2026-10-31T23:30:00.000000Z"),
    ],
)
def test_parse_as_of(text: str, expected: str) -> None:
    assert parse_as_of(text) == expected


@pytest.mark.parametrize(
    "bad",
    ["", "yesterday", "2026-11", "2026-13-01", "2026-02-30", "2026-11-01T25:00", "2026-11-01X06:30", "1730440200"],
)
def test_bad_as_of_is_a_usage_error(bad: str, cli, home: Path) -> None:
    with pytest.raises(UsageError, match="invalid time"):
        parse_as_of(bad)
    Lake(home).publish("cms.t", _scores(1, "x"))
    result = cli("sql", "--as-of", bad, "select 1")
    assert result.exit_code == 2 and result.stderr.startswith("error: --as-of: invalid time")


# -- naming one snapshot in SQL ----------------------------------------------------------------


def test_naming_one_snapshot_in_sql(cli, home: Path) -> None:
    lake = Lake(home)
    first = lake.publish("cms.t", _scores(2, "old"), Provenance(sha256="aa" * 32))
    second = lake.publish("cms.t", _scores(5, "new"), Provenance(sha256="bb" * 32))
    out = cli("sql", f"select count(*) as n, min(tag) as tag from liberacion.snapshot('cms.t', '{first.id}')")
    assert out.stdout == "n,tag\n2,old\n"
    listing = json.loads(
        cli(
            "sql", "select * from liberacion.snapshots where table_name = 'cms.t' order by published_at", "-f", "json"
        ).stdout
    )
    assert [r["snapshot"] for r in listing] == [first.id, second.id]
    assert [r["is_current"] for r in listing] == [False, True]
    assert [r["rows"] for r in listing] == [2, 5]
    assert listing[0]["sha256"] == "aa" * 32
    assert listing[0]["path"] == str(first.path)
    assert listing[1]["published_at"].startswith(second.published_at[:19])


def test_all_snapshots_union_by_name_and_never_drop_a_column(cli, home: Path) -> None:
    lake = Lake(home)
    first = lake.publish("cms.t", pa.table({"id": [1, 2], "old_col": ["a", "b"]}))
    second = lake.publish("cms.t", pa.table({"id": [3], "new_col": [1.5]}))
    result = cli("sql", "select * from liberacion.all_snapshots('cms.t') order by id", "-f", "json")
    rows = json.loads(result.stdout)
    assert rows == [
        {"_snapshot": first.id, "id": 1, "old_col": "a", "new_col": None},
        {"_snapshot": first.id, "id": 2, "old_col": "b", "new_col": None},
        {"_snapshot": second.id, "id": 3, "old_col": None, "new_col": 1.5},
    ]


def test_a_snapshot_never_switched_to_is_invisible(cli, home: Path) -> None:
    lake = Lake(home)
    first = lake.publish("cms.t", _scores(2, "first"))
    second = lake.publish("cms.t", _scores(3, "second"))
    lake.publish("cms.t", _scores(7, "orphan"))
    # The state a publish killed after renaming its snapshot into place, before its switch, leaves.
    (lake.table_dir("cms.t") / "current").write_text(second.id + "\n")
    count = "select count(*) as n from cms.t"
    assert cli("sql", count).stdout == "n\n3\n"
    assert cli("sql", "--as-of", utc_now(), count).stdout == "n\n3\n"
    assert [r["snapshot"] for r in json.loads(cli("history", "cms.t", "-f", "json").stdout)] == [first.id, second.id]
    listed = cli("sql", "select snapshot from liberacion.snapshots order by 1").stdout
    assert listed == f"snapshot\n{first.id}\n{second.id}\n"
    assert cli("sql", "select count(*) as n from liberacion.all_snapshots('cms.t')").stdout == "n\n5\n"
    record = json.loads(cli("diff", "cms.t", "-f", "json").stdout)[0]
    assert (record["old"], record["new"]) == (first.id, second.id)


def test_snapshot_macros_work_from_the_views_database(home: Path) -> None:
    lake = Lake(home)
    first = lake.publish("cms.t", _scores(2, "old"))
    lake.publish("cms.t", _scores(3, "new"))
    with duckdb.connect(str(lake.home.views_db), read_only=True) as con:
        assert con.execute(f"select count(*) from liberacion.snapshot('cms.t', '{first.id}')").fetchone() == (2,)
        assert con.execute("select count(*) from liberacion.snapshots").fetchone() == (2,)


def test_snapshot_views_on_an_empty_lake(home: Path) -> None:
    assert run(Lake(home), "select 1 as x").read_all().num_rows == 1


# -- history -----------------------------------------------------------------------------------


def test_history_rows_and_changes(cli, home: Path) -> None:
    lake = Lake(home)
    first = lake.publish("cms.t", pa.table({"id": [1, 2], "n": [1, 2]}), Provenance(sha256="11" * 32))
    second = lake.publish("cms.t", pa.table({"id": [1, 2, 3], "n": ["1", "2", "3"]}), Provenance(sha256="22" * 32))
    third = lake.publish("cms.t", pa.table({"id": [1], "n": ["1"], "extra": [True]}), Provenance(sha256="33" * 32))
    rows = json.loads(cli("history", "cms.t", "--format", "json").stdout)
    assert [r["snapshot"] for r in rows] == [first.id, second.id, third.id]
    assert [r["current"] for r in rows] == [False, False, True]
    assert [r["rows"] for r in rows] == [2, 3, 1]
    assert [r["rows_change"] for r in rows] == [None, 1, -2]
    assert [r["sha256"] for r in rows] == ["11" * 32, "22" * 32, "33" * 32]
    assert [r["bytes"] for r in rows] == [first.bytes, second.bytes, third.bytes]
    assert rows[0]["published_at"] == first.published_at
    assert rows[0]["schema_changes"] == "oldest kept snapshot"
    assert rows[1]["schema_changes"] == "retyped: n BIGINT→VARCHAR"
    assert rows[2]["schema_changes"] == "added: extra BOOLEAN"


def test_history_formats(cli, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: no cell is folded
    lake = Lake(home)
    lake.publish("cms.t", _scores(2, "a"), Provenance(sha256="ab" * 32))
    lake.publish("cms.t", _scores(3, "b"), Provenance(sha256="cd" * 32))
    csv_rows = _csv_rows(cli("history", "cms.t").stdout)
    assert csv_rows[0] == [
        "snapshot",
        "published_at",
        "current",
        "rows",
        "rows_change",
        "bytes",
        "sha256",
        "schema_changes",
        "stages",  # empty here: published through the API, not fetched
    ]
    assert csv_rows[2][2:5] == ["true", "3", "1"] and csv_rows[2][6] == "cd" * 32 and csv_rows[2][7] == "none"
    lines = cli("history", "cms.t", "-f", "jsonl").stdout.splitlines()
    assert [json.loads(line)["rows"] for line in lines] == [2, 3]
    table = cli("history", "cms.t", "-f", "table").stdout
    assert "history of cms.t" in table and "cdcdcdcdcdcd" in table and "cd" * 32 not in table
    target = tmp_path / "h.parquet"
    assert cli("history", "cms.t", "-f", "parquet", "-o", str(target)).exit_code == 0
    import pyarrow.parquet as pq

    assert pq.read_table(target).column("rows").to_pylist() == [2, 3]


def test_history_of_a_missing_table(cli) -> None:
    result = cli("history", "cms.nothing")
    assert result.exit_code == 3 and "no table cms.nothing" in result.stderr


def test_resolve_snapshot_forms(home: Path) -> None:
    lake = Lake(home)
    first = _publish(lake, "cms.t", _scores(1, "a"), "2026-10-31T22:00:00.000000Z")
    second = _publish(lake, "cms.t", _scores(2, "b"), "2026-11-02T06:30:00.000000Z")
    assert resolve_snapshot(lake, "cms.t", first.id).id == first.id
    assert resolve_snapshot(lake, "cms.t", first.id[:-3]).id == first.id
    assert resolve_snapshot(lake, "cms.t", "current").id == second.id
    assert resolve_snapshot(lake, "cms.t", "previous").id == first.id
    assert resolve_snapshot(lake, "cms.t", "2026-11-01").id == first.id
    assert resolve_snapshot(lake, "cms.t", "2026-11-02T07:00:00").id == second.id
    with pytest.raises(UsageError, match="ambiguous"):
        resolve_snapshot(lake, "cms.t", first.id[:8])  # both ids start with today's date
    from liberacion.errors import NotFound

    with pytest.raises(NotFound):
        resolve_snapshot(lake, "cms.t", "2026-10-01")
    with pytest.raises(NotFound):
        resolve_snapshot(lake, "cms.t", "19990101T000000")


def test_short_snapshot_id_prefixes_as_the_readme_shows(home: Path, cli) -> None:
    """``--from 20261101T06``: an hour, or just a day, names a snapshot when only one matches."""
    lake = Lake(home)
    for n, tag in ((1, "a"), (2, "b")):
        lake.publish("cms.t", _scores(n, tag))
    root = lake.table_dir("cms.t") / "snapshots"
    for snap, new_id in zip(lake.snapshots("cms.t"), ("20261101T063000123456Z", "20261102T063000123456Z")):
        snap.path.rename(root / new_id)
    (lake.table_dir("cms.t") / "current").write_text("20261102T063000123456Z\n")
    assert resolve_snapshot(lake, "cms.t", "20261101T06").id == "20261101T063000123456Z"
    assert resolve_snapshot(lake, "cms.t", "20261102").id == "20261102T063000123456Z"
    with pytest.raises(UsageError):  # shorter than a day: neither an id prefix nor a time
        resolve_snapshot(lake, "cms.t", "202611")
    result = cli("diff", "cms.t", "--from", "20261101T06", "--to", "20261102T", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0] == {**json.loads(result.stdout)[0], "old": "20261101T063000123456Z"}


# -- prune -------------------------------------------------------------------------------------


def test_prune_keep(cli, home: Path) -> None:
    lake = Lake(home)
    ids = [lake.publish("cms.t", _scores(i + 1, str(i))).id for i in range(3)]
    other = [lake.publish("cdc.u", _scores(i + 1, str(i))).id for i in range(2)]
    result = cli("prune", "cms.t", "--keep", "1")
    assert result.exit_code == 0, result.stderr
    rows = _csv_rows(result.stdout)
    assert rows[0] == ["table", "snapshot", "published_at", "rows", "bytes"]
    assert [r[1] for r in rows[1:]] == ids[:2]
    assert [s.id for s in lake.snapshots("cms.t")] == ids[2:]
    assert [s.id for s in lake.snapshots("cdc.u")] == other  # not named: untouched
    assert cli("sql", "select count(*) as n from cms.t").stdout == "n\n3\n"
    # every table when none is named
    rows = json.loads(cli("prune", "--keep", "1", "-f", "json").stdout)
    assert [(r["table"], r["snapshot"]) for r in rows] == [("cdc.u", other[0])]
    assert json.loads(cli("prune", "--keep", "1", "-f", "json").stdout) == []


def test_prune_default_keep_follows_the_environment(cli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(home)
    ids = [lake.publish("cms.t", _scores(1, str(i))).id for i in range(3)]
    monkeypatch.setenv("LIBERACION_KEEP", "2")
    assert cli("prune").exit_code == 0
    assert [s.id for s in lake.snapshots("cms.t")] == ids[1:]


def test_prune_rejects_keep_zero_and_unknown_tables(cli, home: Path) -> None:
    Lake(home).publish("cms.t", _scores(1, "a"))
    result = cli("prune", "--keep", "0")
    assert result.exit_code == 2 and "--keep" in result.stderr
    assert cli("prune", "cms.nothing").exit_code == 3


def test_prune_skips_a_table_being_published(cli, home: Path) -> None:
    lake = Lake(home)
    for i in range(2):
        lake.publish("cms.busy", _scores(1, str(i)))
        lake.publish("cms.free", _scores(1, str(i)))
    with lake.lock("cms.busy"):
        result = cli("prune", "--keep", "1")
    assert result.exit_code == 75
    assert "skipped cms.busy" in result.stderr
    assert len(lake.snapshots("cms.busy")) == 2 and len(lake.snapshots("cms.free")) == 1


# -- stale lock recovery -----------------------------------------------------------------------

_HOLDER = """
import sys, time
from pathlib import Path
from liberacion.home import file_lock
with file_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(300)
"""


def _hold_lock_in_a_process(path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_lock_held_by_a_process_killed_with_sigkill_is_recovered(home: Path) -> None:
    path = home / "locks" / "refresh.lock"
    proc = _hold_lock_in_a_process(path)
    try:
        with pytest.raises(Busy, match=f"pid {proc.pid}"), file_lock(path):
            pass  # pragma: no cover - the lock is held
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_text().strip() == str(proc.pid)  # the dead holder's file is still there
    with file_lock(path, wait=5):
        assert path.read_text().strip() == str(os.getpid())


def test_a_table_lock_of_a_killed_publisher_does_not_block_prune(cli, home: Path) -> None:
    lake = Lake(home)
    for i in range(3):
        lake.publish("cms.t", _scores(1, str(i)))
    proc = _hold_lock_in_a_process(home / "locks" / "cms.t.lock")
    try:
        assert cli("prune", "--keep", "1").exit_code == 75
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert cli("prune", "--keep", "1").exit_code == 0
    assert len(lake.snapshots("cms.t")) == 1


# -- queries and pruning -----------------------------------------------------------------------


def test_a_prune_while_sql_reads_the_lake_deletes_nothing(cli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process prunes just as the query starts: the snapshot the query reads stays."""
    import liberacion.query

    lake = Lake(home)
    old = lake.publish("cms.t", _scores(2, "old"))
    between = utc_now()
    lake.publish("cms.t", _scores(3, "new"))
    refused: list[str] = []
    export = liberacion.query.export

    def prune_then_export(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            lake.prune("cms.t", keep=1)
        except Busy as err:
            refused.append(str(err))
        return export(*args, **kwargs)

    monkeypatch.setattr(liberacion.query, "export", prune_then_export)
    result = cli("sql", "--as-of", between, "select min(tag) as tag, count(*) as n from cms.t")
    assert result.exit_code == 0 and result.stdout == "tag,n\nold,2\n", result.stderr
    assert refused and refused[0].startswith("a query is reading the lake") and old.path.is_dir()


def test_prune_waits_for_readers_then_exits_75(cli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(home)
    old = lake.publish("cms.t", _scores(2, "old"))
    lake.publish("cms.t", _scores(3, "new"))
    monkeypatch.setattr("liberacion.api.PRUNE_READERS_WAIT", 0.3)
    monkeypatch.setenv("LIBERACION_KEEP", "1")
    release = lake.hold_readers()  # a query has resolved its snapshots and reads them
    try:
        result = cli("prune", "--keep", "1")
        assert result.exit_code == 75 and "a query is reading the lake" in result.stderr.splitlines()[-1]
        with pytest.warns(Note, match="old snapshots of cms.t were kept"):  # retention after a publish
            lake.publish("cms.t", _scores(4, "newer"))
        assert lake.snapshots("cms.t")[0].id == old.id
        assert pq.read_table(old.data_paths[0]).num_rows == 2  # still readable
    finally:
        release()
    result = cli("prune", "--keep", "1")
    assert result.exit_code == 0 and old.id in result.stdout and not old.path.exists()
    assert len(lake.snapshots("cms.t")) == 1


# -- the snapshot listing under --as-of ----------------------------------------------------------


def test_as_of_lists_the_snapshots_kept_then_and_the_one_current_then(cli, home: Path) -> None:
    lake = Lake(home)
    october = _publish(lake, "cms.t", _scores(2, "october"), "2026-10-31T22:00:00.000000Z")
    _publish(lake, "cms.t", _scores(3, "november"), "2026-11-02T06:30:00.000000Z")
    listing = "select snapshot, is_current from liberacion.snapshots"
    result = cli("sql", "--as-of", "2026-11-01", listing, "--format", "json")
    assert json.loads(result.stdout) == [{"snapshot": october.id, "is_current": True}], result.stderr
    every = "select distinct _snapshot from liberacion.all_snapshots('cms.t')"
    assert cli("sql", "--as-of", "2026-11-01", every).stdout == f"_snapshot\n{october.id}\n"
    assert len(json.loads(cli("sql", listing, "--format", "json").stdout)) == 2  # without --as-of: both


def test_as_of_the_first_year_is_written_with_four_digits(cli, home: Path) -> None:
    assert parse_as_of("0001-01-01") == "0001-01-01T23:59:59.999999Z"
    _publish(Lake(home), "cms.t", _scores(1, "x"), "2026-10-31T22:00:00.000000Z")
    result = cli("sql", "--as-of", "0001-01-01", "select * from cms.t")
    assert result.exit_code == 3 and "as of 0001-01-01T23:59:59.999999Z" in result.stderr
    offset = cli("sql", "--as-of", "0001-01-01T00:30:00+02:00", "select 1")  # before year 1 in UTC
    assert offset.exit_code == 2 and offset.stderr.startswith("error: --as-of: invalid time")
