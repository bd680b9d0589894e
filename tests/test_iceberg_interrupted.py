"""A shared (Iceberg) lake stopped at its commit points (Ctrl-C, SIGTERM, a catalog that fails):
the next runs read, prune and cite the lake as if the stopped run had never happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli

pytest.importorskip("pyiceberg")

VERSIONS = [
    "zip,n\n01234,1\n",
    "zip,n\n01234,1\n02345,2\n",
    "zip,n\n01234,1\n02345,2\n03456,3\n",
]


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return result


def _lake_of_versions(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int) -> list[str]:
    """A directory lake whose x.t has the first ``count`` versions, none pruned."""
    lake = ["--lake", str(tmp_path / "lake")]
    monkeypatch.setenv("LIBERACION_KEEP", "10")
    for i, text in enumerate(VERSIONS[:count]):
        (tmp_path / f"v{i}.csv").write_text(text)
        _ok(cli(*lake, "fetch", str(tmp_path / f"v{i}.csv"), "--as", "x.t"))
    return lake


def _interrupted_after_writing_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (SIGTERM takes the same path) once the catalog has written the new metadata file,
    before it switches to it."""
    from pyiceberg.catalog import MetastoreCatalog

    write = MetastoreCatalog._write_metadata

    def written_then_stopped(*args: Any, **kwargs: Any) -> None:
        write(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(MetastoreCatalog, "_write_metadata", staticmethod(written_then_stopped))


@pytest.mark.parametrize("stopped", ["fetch", "prune"])
def test_a_commit_stopped_after_its_metadata_is_written_leaves_prune_working(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopped: str
) -> None:
    # pyiceberg writes the new metadata file, then switches the catalog to it. A run stopped between
    # the two left that file behind, newer than the catalog's: every later prune of the table said
    # "not pruned: the table's folder holds newer metadata ... is its catalog an old copy?".
    lake = _lake_of_versions(cli, tmp_path, monkeypatch, 2)
    (tmp_path / "v2.csv").write_text(VERSIONS[2])
    with monkeypatch.context() as patched:
        _interrupted_after_writing_metadata(patched)
        if stopped == "fetch":
            result = cli(*lake, "fetch", str(tmp_path / "v2.csv"), "--as", "x.t")
        else:
            result = cli(*lake, "prune", "x.t", "--keep", "1")
    assert result.exit_code == 130, result.stderr
    assert len(json.loads(_ok(cli(*lake, "history", "x.t", "--format", "json")).stdout)) == 2

    pruned = _ok(cli(*lake, "prune", "x.t", "--keep", "1"))
    assert "not pruned" not in pruned.stderr
    assert len(json.loads(_ok(cli(*lake, "history", "x.t", "--format", "json")).stdout)) == 1


@pytest.mark.parametrize("where", ["home", "directory"])
def test_a_snapshot_a_stopped_prune_recorded_is_cited_as_pruned_when_it_went(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # A prune records what it deletes first; stopped before deleting, its record stays while the
    # snapshot is still kept. history then said the kept snapshot "was pruned" (the home's lake),
    # and once the next prune recorded it again the first record counted: diff --from and --as-of
    # said the snapshot was pruned minutes (or months) before it went.
    from liberacion import iceberg
    from liberacion import lake as home_lake
    from liberacion.timestamps import utc_now

    lake = _lake_of_versions(cli, tmp_path, monkeypatch, 2)
    if where == "home":
        lake = []
        for i in range(2):
            _ok(cli("fetch", str(tmp_path / f"v{i}.csv"), "--as", "x.t"))
    first = json.loads(_ok(cli(*lake, "history", "x.t", "--format", "json")).stdout)[0]

    def stopped(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        if where == "home":
            patched.setattr(home_lake, "_delete_snapshot", stopped)
        else:
            patched.setattr(iceberg, "expire", stopped)
        assert cli(*lake, "prune", "x.t", "--keep", "1").exit_code == 130
    still = _ok(cli(*lake, "history", "x.t", "--format", "json"))
    assert len(json.loads(still.stdout)) == 2 and "pruned" not in still.stderr

    before = utc_now()
    _ok(cli(*lake, "prune", "x.t", "--keep", "1"))
    said = cli(*lake, "diff", "x.t", "--from", first["snapshot"])
    assert said.exit_code == 3, said.stderr
    pruned_at = said.stderr.split(" was pruned at ", 1)[1].split()[0]
    assert pruned_at >= before, said.stderr


def test_a_publish_killed_at_its_commit_is_named_by_the_prune_it_stops(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kill -9 between pyiceberg's metadata file and the catalog's switch leaves the file, which
    # cannot be told from another catalog's commit: prune named only an old or foreign catalog, and
    # a user of the team's catalog had nothing to do. The next publish outdates the file.
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    lake = _lake_of_versions(cli, tmp_path, monkeypatch, 2)
    killed_at_commit = (
        "import os, signal\n"
        "from pyiceberg.catalog import MetastoreCatalog\n"
        "write = MetastoreCatalog._write_metadata\n"
        "def written_then_killed(*args, **kwargs):\n"
        "    write(*args, **kwargs)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "MetastoreCatalog._write_metadata = staticmethod(written_then_killed)\n"
        "from liberacion.cli import run\n"
        "run()\n"
    )
    (tmp_path / "v2.csv").write_text(VERSIONS[2])
    args = [*lake, "fetch", str(tmp_path / "v2.csv"), "--as", "x.t"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-c", killed_at_commit, *args], env=env, capture_output=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert len(json.loads(_ok(cli(*lake, "history", "x.t", "--format", "json")).stdout)) == 2

    refused = _ok(cli(*lake, "prune", "x.t", "--keep", "1"))
    assert "not pruned" in refused.stderr and "A publish killed at its commit leaves such a file too" in refused.stderr
    _ok(cli(*args))
    assert "not pruned" not in _ok(cli(*lake, "prune", "x.t", "--keep", "1")).stderr
    assert len(json.loads(_ok(cli(*lake, "history", "x.t", "--format", "json")).stdout)) == 1
