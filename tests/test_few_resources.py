"""A fetch where the process is short of something: few open files (``ulimit -n 64``), a warnings
filter that makes liberacion's notes errors, a current directory removed while in it."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

import liberacion
from liberacion import Note
from liberacion.errors import CWD_GONE
from tests.conftest import ROOT
from tests.server import LocalServer

# One row of four fields among rows of two: set aside as a reject, which says a note.
ONE_BAD_ROW = "a,b\n" + "".join(f"{i},x{i}\n" for i in range(300)) + "7,8,9,10\n" + "1,y\n" * 300


def _python(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(  # type: ignore[call-overload]
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, **kwargs
    )


def test_a_warnings_filter_that_makes_notes_errors_fails_the_dataset_saying_so_not_as_a_bug(
    home: Path, tmp_path: Path
) -> None:
    data = tmp_path / "one_bad.csv"
    data.write_text(ONE_BAD_ROW, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Note)  # as ``python -W error`` or pytest's ``filterwarnings = error``
        [result] = liberacion.fetch(data, as_table="t.one")
    assert result.status == "failed" and result.error_type == "Note", result
    assert result.error is not None and "internal error" not in result.error
    assert "1 bad row set aside" in result.error and "a warnings filter made this note an error" in result.error
    assert not (home / "logs" / "last-error.txt").exists()  # no traceback kept for a bug report
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default", Note)  # what the message says to do
        [result] = liberacion.fetch(data, as_table="t.one")
    assert result.status == "fetched", result
    assert [str(w.message) for w in seen] == ["t.one: 1 bad row set aside in t.one__rejects"]


def test_a_hard_limit_of_64_open_files_still_fetches_several_files_at_once(
    home: Path, tmp_path: Path, http_server: LocalServer
) -> None:
    resource = pytest.importorskip("resource")
    refs = []
    for i in range(6):
        rows = "".join(f"0{i}{n:03d},{n}\n" for n in range(200))
        refs.append(http_server.add(f"/f{i}.csv", f"zip,n\n{rows}", content_type="text/csv"))
    local = tmp_path / "local.csv"
    local.write_text("zip,n\n02115,1\n", encoding="utf-8")

    def few_files() -> None:  # as `ulimit -n 64` sets it: soft and hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    done = _python("-m", "liberacion", "fetch", "--jobs", "4", *refs, str(local), preexec_fn=few_files)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\tfetched\t") == 7, done.stdout + done.stderr
    again = _python("-m", "liberacion", "refresh", "--force", preexec_fn=few_files)
    assert again.returncode == 0, again.stderr


def test_a_local_file_named_from_a_removed_current_directory_is_said_as_such(home: Path, tmp_path: Path) -> None:
    gone = tmp_path / "gone"

    def in_a_removed_directory() -> None:
        os.mkdir(gone)
        os.chdir(gone)
        os.rmdir(gone)

    done = _python("-m", "liberacion", "fetch", "../a.csv", preexec_fn=in_a_removed_directory)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: ../a.csv: {CWD_GONE}"], done.stderr


def test_a_thread_the_system_refuses_is_said_as_such_not_as_a_bug(
    cli: Any, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under `ulimit -u` (or a low `ulimit -v`) `fetch --jobs 2` was an internal error with a traceback kept.
    import threading

    for name in ("a", "b"):
        (tmp_path / f"{name}.csv").write_text("x,y\n1,2\n")

    def refused(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refused)
    result = cli("fetch", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--jobs", "2")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: the system refused a new thread; raise the limit on processes or on address space"
        " (ulimit -u, ulimit -v, or the container's limits)"
    )
    assert not (home / "logs" / "last-error.txt").exists()
