"""Many liberacion processes on one home: a process killed while it holds the home's files, and
one stopped while it waits for another's lock.

Real processes throughout; a kill at an exact moment comes from a small launcher that wraps one
os call of the child (``_launcher``), never from a sleep that hopes to land at the right time.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_process
from tests.manifests import small_listing, write_catalog
from tests.server import LocalServer

# Kills the child with SIGKILL at the os call named by KILL_AT on a path whose last part starts
# with KILL_NAME: before the call or after it (KILL_WHEN), the moment a kill -9 would be worst.
LAUNCHER = """
import os, signal, sys

call, name, when = os.environ["KILL_AT"], os.environ["KILL_NAME"], os.environ["KILL_WHEN"]
real = getattr(os, call)

def killing(*args, **kwargs):
    hit = os.path.basename(os.fsdecode(args[0])).startswith(name)
    if hit and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = real(*args, **kwargs)
    if hit:
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(os, call, killing)
sys.argv = ["liberacion", *sys.argv[1:]]
from liberacion.cli import main
main()
"""


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home), **extra}


def _killed(tmp_path: Path, home: Path, at: tuple[str, str, str], *args: str, **env: str) -> int:
    """Run ``liberacion ARGS`` and SIGKILL it ``at`` (call, name, before or after): its exit code."""
    launcher = tmp_path / "killed_at.py"
    launcher.write_text(LAUNCHER, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(launcher), *args],
        env=_env(home, KILL_AT=at[0], KILL_NAME=at[1], KILL_WHEN=at[2], **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode


def _csv(tmp_path: Path, name: str, rows: int) -> Path:
    path = tmp_path / name
    path.write_text("id,name\n" + "".join(f"{i},row {i}\n" for i in range(rows)), encoding="utf-8")
    return path


def _three_snapshots(tmp_path: Path, home: Path) -> list[dict[str, object]]:
    """``demo.t`` with three snapshots of 10, 20 and 30 rows; its history."""
    env = {"LIBERACION_HOME": str(home)}
    for rows in (10, 20, 30):
        done = run_process("fetch", str(_csv(tmp_path, f"v{rows}.csv", rows)), "--as", "demo.t", env=env)
        assert done.returncode == 0, done.stderr
    return _history(home)


def _history(home: Path) -> list[dict[str, object]]:
    done = run_process("history", "demo.t", "--format", "json", env={"LIBERACION_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _sql(home: Path, query: str) -> subprocess.CompletedProcess[str]:
    return run_process("sql", query, "--format", "json", env={"LIBERACION_HOME": str(home)})


# -- prune killed while it deletes a snapshot ----------------------------------------------------


def test_a_prune_killed_while_deleting_leaves_no_half_deleted_snapshot(tmp_path: Path, home: Path) -> None:
    before = _three_snapshots(tmp_path, home)
    oldest = str(before[0]["snapshot"])

    # Killed right after the first file of the oldest snapshot is deleted, whichever file that is.
    code = _killed(tmp_path, home, ("unlink", "", "after"), "prune", "demo.t", "--keep", "2")
    assert code == -signal.SIGKILL

    # Every snapshot history lists can be read whole, and every snapshot a query sees is listed.
    listed = {str(entry["snapshot"]): entry["rows"] for entry in _history(home)}
    for snapshot_id, rows in listed.items():
        done = _sql(home, f"select count(*) as n from liberacion.snapshot('demo.t', '{snapshot_id}')")
        assert done.returncode == 0, f"snapshot {snapshot_id} listed by history cannot be read: {done.stderr}"
        assert json.loads(done.stdout) == [{"n": rows}]
    seen = _sql(home, "select _snapshot, count(*) as n from liberacion.all_snapshots('demo.t') group by 1")
    assert seen.returncode == 0, seen.stderr
    assert {row["_snapshot"]: row["n"] for row in json.loads(seen.stdout)} == listed
    assert oldest not in listed or listed[oldest] == before[0]["rows"]

    # The next prune finishes the job and leaves nothing of the killed one behind.
    again = run_process("prune", "demo.t", "--keep", "2", env={"LIBERACION_HOME": str(home)})
    assert again.returncode == 0, again.stderr
    table = home / "lake" / "demo" / "t"
    assert sorted(p.name for p in table.iterdir()) == ["current", "pruned.jsonl", "snapshots"]
    assert [str(e["snapshot"]) for e in _history(home)] == [str(e["snapshot"]) for e in before[1:]]
    from liberacion.lake import Lake

    assert [r["snapshot"] for r in Lake(home).pruned("demo.t")] == [oldest]  # cited once, though recorded twice


# -- discover killed while it writes the index ---------------------------------------------------


@pytest.mark.parametrize("written", ["datasets.parquet", "search.json", "coverage.json"])
def test_a_discover_killed_while_writing_the_index_leaves_no_temporary_files(
    tmp_path: Path, home: Path, manifests: Path, http_server: LocalServer, written: str
) -> None:
    url = http_server.add("/list.json", small_listing("Births", "Deaths"), content_type="application/json")
    write_catalog(manifests, "quick", [("dcat-us", url)])
    env = {"LIBERACION_CATALOGS": str(manifests)}

    # Killed once the file is whole under its temporary name, just before its rename.
    code = _killed(tmp_path, home, ("replace", f".{written}.", "before"), "discover", "quick", **env)
    assert code == -signal.SIGKILL
    index = home / "index"
    assert [p.name for p in index.rglob(".*.tmp")], "the kill came before any temporary file"

    done = run_process("discover", "quick", env={"LIBERACION_HOME": str(home), **env})
    assert done.returncode == 0, done.stderr
    assert [p.name for p in index.rglob(".*.tmp")] == []
    found = run_process(
        "search", "deaths", "--catalog", "quick", "--format", "json", env={"LIBERACION_HOME": str(home), **env}
    )
    assert [hit["ref"] for hit in json.loads(found.stdout)] == ["quick/deaths"]


# -- Ctrl-C and SIGTERM of a process waiting for a lock ------------------------------------------


@contextmanager
def _held(path: Path) -> Iterator[None]:
    """Hold ``path`` locked exclusively, as prune holds the readers' lock while it deletes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _wait_until_open(process: subprocess.Popen[str], path: Path) -> None:
    """Until ``process`` has ``path`` open (it is then trying to lock it)."""
    deadline = time.monotonic() + 30
    fds = Path(f"/proc/{process.pid}/fd")
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if any(os.readlink(fd) == str(path) for fd in fds.iterdir()):
                return
        except OSError:  # an fd closed while we looked
            pass
        time.sleep(0.02)
    raise AssertionError(f"the process never opened {path}")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the lock being waited for")
@pytest.mark.parametrize(
    ("sent", "code", "said"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_a_query_waiting_for_prune_stops_at_once_on_a_signal(
    tmp_path: Path, home: Path, sent: int, code: int, said: str
) -> None:
    _three_snapshots(tmp_path, home)
    readers = home / "locks" / "readers.lock"
    with _held(readers):
        process = subprocess.Popen(
            [sys.executable, "-m", "liberacion", "sql", "select count(*) from demo.t"],
            env=_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_until_open(process, readers)
            sent_at = time.monotonic()
            process.send_signal(sent)
            out, err = process.communicate(timeout=30)
            seconds = time.monotonic() - sent_at
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == code, err
    assert seconds < 3, f"took {seconds:.1f} s to stop"
    assert said in err and err.startswith("error:") and "Traceback" not in err
    assert out == ""
