"""A shared (Iceberg) lake stopped at its commit points (Ctrl-C, SIGTERM, a catalog that fails):
the next runs read, prune and cite the lake as if the stopped run had never happened."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Cli

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


def _killed_at_commit(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    """``liberacion ARGS`` killed (SIGKILL) once the catalog has written its first new metadata
    file, before it names it."""
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
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", killed_at_commit, *args], env=env, capture_output=True, timeout=120)


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
    lake = _lake_of_versions(cli, tmp_path, monkeypatch, 2)
    (tmp_path / "v2.csv").write_text(VERSIONS[2])
    args = [*lake, "fetch", str(tmp_path / "v2.csv"), "--as", "x.t"]
    killed = _killed_at_commit(args)
    assert killed.returncode == -9, killed.stderr
    assert len(json.loads(_ok(cli(*lake, "history", "x.t", "--format", "json")).stdout)) == 2

    refused = _ok(cli(*lake, "prune", "x.t", "--keep", "1"))
    assert "not pruned" in refused.stderr and "A publish killed at its commit leaves such a file too" in refused.stderr
    _ok(cli(*args))
    assert "not pruned" not in _ok(cli(*lake, "prune", "x.t", "--keep", "1")).stderr
    assert len(json.loads(_ok(cli(*lake, "history", "x.t", "--format", "json")).stdout)) == 1


@pytest.mark.parametrize("where", ["directory", "s3"])
def test_a_first_publish_killed_at_its_commit_does_not_block_the_next_fetch(
    cli: Cli, tmp_path: Path, request: pytest.FixtureRequest, where: str
) -> None:
    # The new table's first metadata file was left in its folder, named by no catalog: every later
    # fetch of the table was refused as "already holds the table x.t, written through another
    # Iceberg catalog", for good.
    root = str(tmp_path / "lake") if where == "directory" else f"s3://{request.getfixturevalue('bucket')}/lake"
    lake = ["--lake", root]
    (tmp_path / "v0.csv").write_text(VERSIONS[0])
    args = [*lake, "fetch", str(tmp_path / "v0.csv"), "--as", "x.t"]
    assert _killed_at_commit(args).returncode == -9
    assert cli(*lake, "sql", "select count(*) from x.t").exit_code == 3

    _ok(cli(*args))
    assert json.loads(_ok(cli(*lake, "sql", "--format", "json", "select count(*) as n from x.t")).stdout) == [{"n": 1}]
    (kept,) = json.loads(_ok(cli(*lake, "history", "x.t", "--format", "json")).stdout)
    assert _snapshot_folders(root) == [kept["snapshot"]]  # the killed run's upload is gone


def _snapshot_folders(root: str) -> list[str]:
    """The names of x.t's snapshot folders in the lake at ``root``."""
    from pyarrow import fs

    from liberacion.storage import parse_lake

    location = parse_lake(root)
    selector = fs.FileSelector(location.path_of("x", "t", "snapshots"), allow_not_found=True)
    entries = location.filesystem().get_file_info(selector)
    return sorted(e.base_name for e in entries if e.type == fs.FileType.Directory)


def test_prune_of_every_table_passes_a_table_whose_first_publish_stopped_after_its_create(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The catalog names the new table, which has no snapshot yet: a prune of the whole lake stopped
    # there with "no table x.t in the lake" (exit 3), and pruned none of the others.
    from liberacion import iceberg

    lake = _lake_of_versions(cli, tmp_path, monkeypatch, 2)

    def stopped(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("stopped before the first snapshot")

    with monkeypatch.context() as patched:
        patched.setattr(iceberg, "_overwrite", stopped)
        assert cli(*lake, "fetch", str(tmp_path / "v0.csv"), "--as", "x.new").exit_code == 1
    pruned = _ok(cli(*lake, "prune", "--keep", "1"))
    assert "x.t," in pruned.stdout
    assert len(json.loads(_ok(cli(*lake, "history", "x.t", "--format", "json")).stdout)) == 1


class _KillingProxy:
    """An HTTP proxy in front of an S3 server that kills its client (SIGKILL) once the server has
    answered the first request whose path holds ``marker``: a run killed at that point of a write."""

    def __init__(self, upstream: str, marker: str) -> None:
        self.victim: int | None = None
        self.known = threading.Event()
        self.fired = False
        proxy = self
        host, port = upstream.split("//", 1)[1].split(":")

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                skipped = ("connection", "expect", "content-length")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skipped}
                connection = http.client.HTTPConnection(host, int(port), timeout=30)
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                head = self.command == "HEAD"
                self.send_header("Content-Length", answer.getheader("Content-Length", "0") if head else str(len(data)))
                self.end_headers()
                if not head:
                    self.wfile.write(data)
                self.wfile.flush()
                if marker in self.path and not proxy.fired and proxy.known.wait(30) and proxy.victim:
                    proxy.fired = True
                    os.kill(proxy.victim, signal.SIGKILL)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kill(self, pid: int) -> None:
        self.victim = pid
        self.known.set()


def test_a_prune_killed_while_it_records_on_s3_leaves_no_unfinished_upload(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bucket: str, s3_endpoint: str
) -> None:
    # The record was written through pyarrow's stream, a multipart upload even of a few bytes: a
    # prune killed before completing it left the upload in the store, unseen and billed, and
    # nothing ever aborted it (only snapshot folders' uploads are).
    import boto3

    root = f"s3://{bucket}/lake"
    lake = ["--lake", root]
    monkeypatch.setenv("LIBERACION_KEEP", "10")
    for i, text in enumerate(VERSIONS[:2]):
        (tmp_path / f"v{i}.csv").write_text(text)
        _ok(cli(*lake, "fetch", str(tmp_path / f"v{i}.csv"), "--as", "x.t"))
    proxy = _KillingProxy(s3_endpoint, "/x/t/pruned/")
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ENDPOINT_URL": proxy.url}
        args = [sys.executable, "-m", "liberacion", *lake, "prune", "x.t", "--keep", "1"]
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proxy.kill(process.pid)
        assert process.wait(timeout=120) == -signal.SIGKILL
    finally:
        proxy.server.shutdown()
    uploads = boto3.client("s3").list_multipart_uploads(Bucket=bucket, Prefix="lake/").get("Uploads", [])
    assert [upload["Key"] for upload in uploads] == []
    _ok(cli(*lake, "prune", "x.t", "--keep", "1"))
    assert len(json.loads(_ok(cli(*lake, "history", "x.t", "--format", "json")).stdout)) == 1
