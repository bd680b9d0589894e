"""Ctrl-C during `discover`: it stops at once even while a host stalls, exits 130, keeps the index
as it was, and a listing read meanwhile is indexed by the next discover."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_process
from tests.manifests import small_listing, write_catalog
from tests.server import LocalServer, RequestHandler


@pytest.fixture
def stalled(http_server: LocalServer) -> Iterator[str]:
    """A listing whose host accepts the request and then says nothing until the test ends."""
    release = threading.Event()

    def stall(handler: RequestHandler) -> None:
        release.wait(120)

    http_server.add("/stalled.json", handler=stall)
    yield http_server.url("/stalled.json")
    release.set()


def _interrupted_discover(env: dict[str, str], *names: str) -> tuple[int, float, str]:
    """Start ``discover``, Ctrl-C it once the stalled listing is being read; (exit code, seconds, stderr)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "liberacion", "discover", *names],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )
    assert process.stderr is not None
    for line in process.stderr:  # wait until the stalled listing is being read
        if "reading the" in line and "stalled" in line:
            break
    time.sleep(0.5)
    assert process.poll() is None, "discover ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return process.returncode, time.monotonic() - sent, process.stderr.read()


def test_ctrl_c_stops_discover_at_once_while_a_listing_stalls(
    manifests: Path, http_server: LocalServer, stalled: str, home: Path
) -> None:
    write_catalog(manifests, "quick", [("dcat-us", http_server.add("/quick.json", small_listing("Births")))])
    write_catalog(manifests, "slow", [("dcat-us", stalled)])
    env = {"LIBERACION_HOME": str(home), "LIBERACION_CATALOGS": str(manifests), "LIBERACION_TIMEOUT": "60"}
    assert run_process("discover", "quick", env=env).returncode == 0
    index = home / "index" / "datasets.parquet"
    before = index.read_bytes()

    code, seconds, stderr = _interrupted_discover(env, "quick", "slow")
    assert code == 130, stderr
    assert seconds < 5, f"took {seconds:.1f} s to stop"  # a behaviour bound: the stalled read is not waited for
    assert "error: interrupted" in stderr and "Traceback" not in stderr
    assert index.read_bytes() == before  # the index is as it was


def test_a_listing_read_before_ctrl_c_is_indexed_by_the_next_discover(
    manifests: Path, http_server: LocalServer, stalled: str, home: Path
) -> None:
    quick = http_server.add("/quick.json", small_listing("Births"), content_type="application/json")
    write_catalog(manifests, "quick", [("dcat-us", quick)])
    write_catalog(manifests, "slow", [("dcat-us", stalled)])
    env = {"LIBERACION_HOME": str(home), "LIBERACION_CATALOGS": str(manifests), "LIBERACION_TIMEOUT": "60"}
    assert run_process("discover", "quick", env=env).returncode == 0
    http_server.add("/quick.json", small_listing("Births", "Deaths"), content_type="application/json")

    code, _, stderr = _interrupted_discover(env, "quick", "slow")  # quick's new listing is read, then Ctrl-C
    assert code == 130, stderr
    again = run_process("discover", "quick", env=env)  # quick answers 304 now: nothing new to read
    assert again.returncode == 0, again.stderr
    found = run_process("search", "deaths", "--catalog", "quick", "--format", "json", env=env)
    assert [hit["ref"] for hit in json.loads(found.stdout)] == ["quick/deaths"], again.stderr
