"""One shared lake, several versions of liberacion: one analyst upgrades, another does not, and both
fetch, refresh and query the same Iceberg tables. What each version wrote is built here by hand (no
git history): a snapshot record with keys a newer version added, snapshots an older version
registered without marking them, table properties set by a team or another version."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli

pytest.importorskip("pyiceberg")

V1 = "zip,name,amount\n01234,a,1\n02345,b,2\n"
V2 = "zip,name,amount\n01234,a,1\n02345,b,5\n03456,c,7\n"


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return result


def _lake(home: Path, lake: Path) -> Any:
    from liberacion.home import Home
    from liberacion.iceberg_lake import open_lake

    return open_lake(Home(home, str(lake)))


def _commit_record(home: Path, lake: Path, name: str, change: Any, *, adopted_mark: bool = True) -> None:
    """Commit the current snapshot's files again with its record changed by ``change`` (what
    another version would have written in the summary)."""
    from liberacion.iceberg import commit_files
    from liberacion.iceberg_lake import _summary

    shared = _lake(home, lake)
    snap = shared.current(name)
    summary = _summary(snap)
    record = json.loads(summary["snapshot"])
    change(record)
    summary["snapshot"] = json.dumps(record)
    files = [f"{snap.path}/{file}" for file in snap.files]
    commit_files(shared.catalog, shared.location, name, shared.table_uri(name), files, summary, wait=5)


def _fetched(cli: Cli, tmp_path: Path) -> tuple[Path, Path]:
    """``x.t`` published from ``t.csv`` (V1) into a lake in a directory: the file and the lake."""
    source, lake = tmp_path / "t.csv", tmp_path / "lake"
    source.write_text(V1)
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "x.t"))
    return source, lake


def test_a_snapshot_a_newer_version_wrote_with_keys_this_one_does_not_know_is_read(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    source, lake = _fetched(cli, tmp_path)

    def newer(record: dict[str, Any]) -> None:  # a newer version's record: a key in a column, and others
        record["schema"][0]["semantic_type"] = "postal_code"
        record["provenance"]["license"] = "public domain"
        record["lineage"] = {"from": "x.s"}

    _commit_record(home, lake, "x.t", newer)
    # Every command answered "internal error (TypeError: Column.__init__() got an unexpected keyword
    # argument ...)", exit 1: an upgraded analyst's publish broke the lake for everyone else.
    history = json.loads(_ok(cli("--lake", str(lake), "history", "x.t", "--format", "json")).stdout)
    assert [h["rows"] for h in history] == [2, 2]
    tables = json.loads(_ok(cli("--lake", str(lake), "tables", "--format", "json")).stdout)
    assert [(t["catalog"], t["table"], t["rows"]) for t in tables] == [("x", "t", 2)]
    out = _ok(cli("--lake", str(lake), "sql", "--format", "csv", "select count(*) as n from x.t")).stdout
    assert list(csv.DictReader(io.StringIO(out))) == [{"n": "2"}]
    source.write_text(V2)  # and this version still publishes on top of it
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "x.t"))
    assert _lake(home, lake).current("x.t").rows == 3


def test_a_record_no_version_can_read_makes_its_table_damaged_not_an_internal_error(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    _source, lake = _fetched(cli, tmp_path)
    _commit_record(home, lake, "x.t", lambda record: record.pop("schema"))
    result: Any = cli("--lake", str(lake), "history", "x.t")
    assert result.exit_code == 1 and result.stderr.startswith("error: table x.t is damaged"), result.stderr
    assert "KeyError: 'schema'" in result.stderr and "internal error" not in result.stderr
    listed = json.loads(_ok(cli("--lake", str(lake), "tables", "--format", "json")).stdout)
    assert "damaged" in listed[0]["error"]  # listed, not the whole lake failing


def test_table_properties_set_by_a_team_or_another_version_are_kept_by_a_publish(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    source, lake = _fetched(cli, tmp_path)
    table = _lake(home, lake)._table("x.t")
    chosen = {"write.metadata.previous-versions-max": "100", "team.owner": "ana"}
    with table.transaction() as tx:
        tx.set_properties(**chosen)
    source.write_text(V2)  # a new column set: the publish evolves the schema and sets properties
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "x.t"))
    properties = _lake(home, lake)._table("x.t").properties
    # The publish set the team's 100 back to liberacion's 20, at every commit.
    assert {key: properties.get(key) for key in chosen} == chosen
    assert properties["write.metadata.delete-after-commit.enabled"] == "true"


def test_snapshots_an_older_version_registered_unmarked_keep_their_publish_times(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Versions before 2026-12-04 21:57 registered a home-format lake's snapshots without the
    ``liberacion.adopted`` mark; today's code gave them all the moment of registration."""
    from liberacion.snapshots import SNAPSHOT_FILE, Snapshot

    source = tmp_path / "t.csv"
    source.write_text(V1)
    _ok(cli("fetch", str(source), "--as", "x.t"))  # the home's own lake
    source.write_text(V2)
    _ok(cli("fetch", str(source), "--as", "x.t"))
    folders = sorted((home / "lake" / "x" / "t" / "snapshots").glob(f"*/{SNAPSHOT_FILE}"))
    published = ["2026-11-02T08:00:00.000000Z", "2026-11-20T08:00:00.000000Z"]
    for record_file, when in zip(folders, published):  # published weeks before they were registered
        record = json.loads(record_file.read_text())
        record["published_at"] = when
        record_file.write_text(json.dumps(record))
    # Registered as an older version did: each kept snapshot committed, oldest first, unmarked.
    monkeypatch.setenv("LIBERACION_HOME", str(tmp_path / "other-home"))
    shared = _lake(tmp_path / "other-home", home / "lake")
    for record_file in folders:
        shared._commit(Snapshot.load(record_file.parent))

    lake = str(home / "lake")
    history = json.loads(_ok(cli("--lake", lake, "history", "x.t", "--format", "json")).stdout)
    assert [h["published_at"] for h in history] == published
    out = _ok(cli("--lake", lake, "sql", "--as-of", "2026-11-10", "--format", "csv", "select count(*) as n from x.t"))
    assert list(csv.DictReader(io.StringIO(out.stdout))) == [{"n": "2"}]


def test_tables_counts_a_shared_lakes_snapshots_and_bytes(cli: Cli, tmp_path: Path) -> None:
    source, lake = _fetched(cli, tmp_path)
    source.write_text(V2)
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "x.t"))
    history = json.loads(_ok(cli("--lake", str(lake), "history", "x.t", "--format", "json")).stdout)
    tables = json.loads(_ok(cli("--lake", str(lake), "tables", "--format", "json")).stdout)
    assert [(t["snapshots"], t["bytes"]) for t in tables] == [(2, sum(h["bytes"] for h in history))]
    assert tables[0]["bytes"] > 0
