"""Reproducing an analysis months later: which snapshot was read then, after prunes removed it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pytest

from liberacion.lake import Lake
from liberacion.snapshots import Provenance, Snapshot
from tests.server import LocalServer


def _publish(lake: Lake, name: str, n: int, published_at: str, sha: str) -> Snapshot:
    """Publish ``n`` rows as if at ``published_at`` (the record's time is rewritten)."""
    snap = lake.publish(
        name, pa.table({"id": list(range(n))}), Provenance(sha256=sha, source_url="https://x.gov/d.csv")
    )
    record = json.loads((snap.path / "snapshot.json").read_text())
    record["published_at"] = published_at
    (snap.path / "snapshot.json").write_text(json.dumps(record))
    return Snapshot.load(snap.path)


def _three_months(home: Path) -> list[Snapshot]:
    lake = Lake(home)
    return [
        _publish(lake, "cdc.deaths", 2, "2026-10-01T06:00:00.000000Z", "a" * 64),
        _publish(lake, "cdc.deaths", 3, "2026-11-01T06:00:00.000000Z", "b" * 64),
        _publish(lake, "cdc.deaths", 4, "2026-12-01T06:00:00.000000Z", "c" * 64),
    ]


def test_prune_dry_run_lists_what_would_go_and_deletes_nothing(cli, home: Path) -> None:
    snaps = _three_months(home)
    result = cli("prune", "--keep", "1", "--dry-run", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    listed = [line.split(",")[1] for line in result.stdout.strip().splitlines()[1:]]
    assert listed == [snaps[0].id, snaps[1].id]
    assert "dry run: nothing deleted" in result.stderr
    history = cli("history", "cdc.deaths", "--format", "csv")
    assert len(history.stdout.strip().splitlines()) == 4  # the header and all three, still kept
    assert "pruned" not in history.stderr


def test_as_of_a_pruned_snapshot_names_it_and_when_it_went(cli, home: Path) -> None:
    snaps = _three_months(home)
    assert cli("prune", "--keep", "1").exit_code == 0
    query = "select count(*) from cdc.deaths"
    result = cli("sql", "--as-of", "2026-11-15", query)
    assert result.exit_code == 3
    said = result.stderr
    assert f"the snapshot current then, {snaps[1].id}" in said and "b" * 64 in said and "was pruned at" in said
    assert len(said.strip().splitlines()) == 1
    diff = cli("diff", "cdc.deaths", "--from", "2026-11-15")
    assert diff.exit_code == 3 and f"the snapshot current then, {snaps[1].id}" in diff.stderr
    # Before the first snapshot nothing was pruned: the table did not exist, or was pruned unrecorded.
    before = cli("sql", "--as-of", "2026-09-01", query)
    assert before.exit_code == 3 and "current then" not in before.stderr


def test_history_names_the_record_of_snapshots_retention_pruned(
    cli, http_server: LocalServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIBERACION_KEEP", "1")
    first = b"state,deaths\nAL,10\n"
    url = http_server.add("/deaths.csv", first)
    assert cli("fetch", url, "--as", "cdc.deaths").exit_code == 0
    http_server.add("/deaths.csv", b"state,deaths\nAL,11\n")
    assert cli("fetch", url, "--as", "cdc.deaths").exit_code == 0  # retention prunes the first
    result = cli("history", "cdc.deaths", "--format", "csv")
    assert result.exit_code == 0 and len(result.stdout.strip().splitlines()) == 2
    record_file = home / "lake" / "cdc" / "deaths" / "pruned.jsonl"
    assert "1 older snapshot(s) of cdc.deaths were pruned" in result.stderr and str(record_file) in result.stderr
    (gone,) = [json.loads(line) for line in record_file.read_text().splitlines()]
    assert gone["sha256"] == hashlib.sha256(first).hexdigest()
    assert gone["source_url"] == url and gone["rows"] == 1 and gone["fetched_at"] and gone["pruned_at"]
