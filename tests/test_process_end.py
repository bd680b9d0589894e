"""How a run of ``liberacion`` ends: the process leaves without the interpreter's teardown, so what
that teardown did that matters is checked here (exit handlers, threads, output, spill files), and
the help and version texts fail on stdout as the commands' output does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

FULL_STDOUT = (
    "error: cannot write the standard output: No space left on device; free some disk space there or write the"
    " output elsewhere"
)


def _env(home: Path, **more: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home), **more}


def _python(code: str, home: Path, **more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(home, **more), timeout=120, cwd=ROOT
    )


def _liberacion(home: Path, *args: str, stdout: Any = subprocess.PIPE, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m liberacion ARGS`` as users run it; stderr captured, stdout to ``stdout``."""
    return subprocess.run(
        [sys.executable, "-m", "liberacion", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(home, **env),
        timeout=300,
    )


def test_exit_handlers_run_and_the_exit_code_is_kept(home: Path) -> None:
    code = (
        "import atexit, sys\n"
        "from liberacion.cli import run\n"
        "atexit.register(lambda: print('handler ran', file=sys.stderr))\n"
        "sys.argv = ['liberacion', 'sql', 'select nothing_here']\n"
        "run()\n"
    )
    done = _python(code, home)
    assert done.returncode == 4, done.stderr
    assert done.stderr.splitlines()[-1] == "handler ran", done.stderr


def test_a_thread_still_running_is_waited_for(home: Path) -> None:
    """An embedding program's thread (not a daemon) finishes its work before the process ends."""
    code = (
        "import sys, threading, time\n"
        "from liberacion.cli import run\n"
        "def late() -> None:\n"
        "    time.sleep(0.5)\n"
        "    print('thread done', flush=True)\n"
        "threading.Thread(target=late).start()\n"
        "sys.argv = ['liberacion', 'sql', 'select 42 as n']\n"
        "run()\n"
    )
    done = _python(code, home)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "n\n42\nthread done\n"


def test_all_output_reaches_a_pipe_before_the_process_ends(cli: Any, home: Path) -> None:
    """Rows DuckDB writes itself, and text Python holds in its buffer until the end."""
    rows = _liberacion(home, "sql", "select range as i from range(200000)", "-f", "jsonl")
    assert rows.returncode == 0, rows.stderr
    lines = rows.stdout.splitlines()
    assert len(lines) == 200000 and lines[-1] == '{"i":199999}'
    listing = _liberacion(home, "catalogs", "-f", "json")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout == cli("catalogs", "-f", "json").stdout and json.loads(listing.stdout)


def test_a_query_that_spilled_leaves_no_spill_files(home: Path, tmp_path: Path) -> None:
    spill = tmp_path / "tmp"
    spill.mkdir()
    (home / "work").mkdir(parents=True)
    query = "select count(*) as n from (select range, random() as r from range(3000000) order by r)"
    for where in ("home", "tmp"):
        if where == "tmp":  # a home without a work area spills into the system's temporary directory
            (home / "work").rmdir()
        done = _liberacion(home, "sql", query, LIBERACION_MEMORY_LIMIT="40MB", TMPDIR=str(spill))
        assert done.returncode == 0 and done.stdout == "n\n3000000\n", done.stderr
        assert list(spill.iterdir()) == []
        assert not (home / "work").exists() or list((home / "work").iterdir()) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["--help"], ["--version"], ["sql", "--help"], ["fetch", "-h"], ["tables"]])
def test_help_and_version_into_a_full_disk_say_so_in_one_line(home: Path, args: list[str]) -> None:
    with open("/dev/full", "w") as full:
        done = _liberacion(home, *args, stdout=full)
    assert (done.returncode, done.stderr) == (1, FULL_STDOUT + "\n")


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["sql", "--help"], ["tables"]])
def test_help_and_version_into_a_closed_pipe_end_quietly(home: Path, args: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte (| head -c0)
    try:
        done = _liberacion(home, *args, stdout=write)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (0, "")
