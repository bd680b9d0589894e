"""A run stopped (SIGTERM, Ctrl-C) while a table's publish is switching: the switch finishes, and
what the run says (its lines, --json, --log) names that table as published, with its snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

# The process stops itself at its commit point: ``HOOK_TARGET``'s method sends ``HOOK_SIGNAL`` and
# goes on only once the stop has given the workers their grace (then a commit that was not waited
# for would still be running while the run says what it published). Before leaving, the process
# lets the run's workers end, as the interpreter does after Ctrl-C: a commit cut by os._exit would
# make what the lake holds depend on the moment.
HOOK = """
import os, signal, sys, threading, importlib
import liberacion.fetching as fetching
stopped = threading.Event()
real_wait = fetching.wait_futures
def wait(*args, **kwargs):
    try:
        return real_wait(*args, **kwargs)
    finally:
        stopped.set()
fetching.wait_futures = wait
module, _, attribute = os.environ["HOOK_TARGET"].partition(":")
owner_name, method_name = attribute.split(".")
owner = getattr(importlib.import_module(module), owner_name)
real = getattr(owner, method_name)
sent = []
def at_commit(*args, **kwargs):
    if not sent:
        sent.append(True)
        os.kill(os.getpid(), getattr(signal, os.environ["HOOK_SIGNAL"]))
        stopped.wait(60)
    return real(*args, **kwargs)
setattr(owner, method_name, at_commit)
real_exit = os._exit
def exit_after_workers(code):
    for thread in threading.enumerate():
        if thread.name.startswith(("fetch", "refresh")):
            thread.join(60)
    real_exit(code)
os._exit = exit_after_workers
from liberacion.cli import run
run()
"""

HOME_LAKE = "liberacion.lake:Lake._point"
ICEBERG_LAKE = "liberacion.iceberg_lake:IcebergLake._commit"


def _liberacion(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "liberacion", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _stopped_at_commit(home: Path, target: str, sig: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LIBERACION_HOME": str(home),
        "HOOK_TARGET": target,
        "HOOK_SIGNAL": sig,
    }
    return subprocess.run([sys.executable, "-c", HOOK, *args], env=env, capture_output=True, text=True, timeout=120)


def _current(home: Path, lake: list[str], table: str) -> dict[str, Any]:
    listed = _liberacion(home, *lake, "history", table, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    [current] = [row for row in json.loads(listed.stdout) if row["current"]]
    return current


def _records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


EXITS = {"SIGTERM": (143, "terminated (SIGTERM)"), "SIGINT": (130, "interrupted")}


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("where", ["home", "lake"])
def test_a_fetch_stopped_while_its_commit_switches_reports_the_table_published(
    tmp_path: Path, where: str, sig: str
) -> None:
    if where == "lake":
        pytest.importorskip("pyiceberg")
    home = tmp_path / "home"
    lake = ["--lake", str(tmp_path / "lake")] if where == "lake" else []
    source = tmp_path / "beds.csv"
    source.write_text("zip,n\n01234,1\n02345,2\n", encoding="utf-8")
    target = ICEBERG_LAKE if where == "lake" else HOME_LAKE

    stopped = _stopped_at_commit(home, target, sig, *lake, "fetch", str(source), "--as", "x.t", "--json")

    code, said = EXITS[sig]
    assert stopped.returncode == code, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert said in stopped.stderr
    current = _current(home, lake, "x.t")  # the commit went through: the table is published
    [record] = _records(stopped.stdout)
    assert (record["table"], record["status"], record["snapshot"]) == ("x.t", "fetched", current["snapshot"])


def test_a_plain_fetch_stopped_while_its_commit_switches_prints_the_table_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = tmp_path / "beds.csv"
    source.write_text("zip,n\n01234,1\n", encoding="utf-8")

    stopped = _stopped_at_commit(home, HOME_LAKE, "SIGTERM", "fetch", str(source), "--as", "x.t")

    assert stopped.returncode == 143, stopped.stderr
    _current(home, [], "x.t")
    [line] = stopped.stdout.splitlines()
    assert line.split("\t")[:2] == ["x.t", "fetched"]


@pytest.mark.parametrize("where", ["home", "lake"])
def test_a_refresh_stopped_while_its_commit_switches_logs_the_table_published(tmp_path: Path, where: str) -> None:
    if where == "lake":
        pytest.importorskip("pyiceberg")
    home = tmp_path / "home"
    lake = ["--lake", str(tmp_path / "lake")] if where == "lake" else []
    source = tmp_path / "beds.csv"
    source.write_text("zip,n\n01234,1\n", encoding="utf-8")
    assert _liberacion(home, *lake, "fetch", str(source), "--as", "x.t").returncode == 0
    source.write_text("zip,n\n01234,1\n02345,2\n", encoding="utf-8")  # changed: the refresh publishes it
    log = tmp_path / "refresh.log"
    target = ICEBERG_LAKE if where == "lake" else HOME_LAKE

    stopped = _stopped_at_commit(home, target, "SIGTERM", *lake, "refresh", "--json", "--log", str(log))

    assert stopped.returncode == 143, stopped.stderr
    current = _current(home, lake, "x.t")
    assert current["rows"] == 2
    for said in (stopped.stdout, log.read_text(encoding="utf-8")):
        table, summary = _records(said)
        assert (table["table"], table["event"], table["snapshot"]) == ("x.t", "fetched", current["snapshot"])
        assert summary["event"] == "summary" and summary["exit_code"] == 143
