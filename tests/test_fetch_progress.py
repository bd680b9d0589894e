"""What `fetch` shows on a terminal while it works (a pseudo-terminal, as a person sees it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, at_terminal

pexpect = pytest.importorskip("pexpect")


def test_a_local_file_shows_no_download_bar(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "beds.csv"
    source.write_text("facility_id,beds\n010001,12\n010005,40\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update(PYTHONPATH=str(ROOT), LIBERACION_HOME=str(home), TERM="xterm-256color")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "liberacion", "fetch", str(source), "--as", "local.beds"],
        env=env,
        dimensions=(40, 100),
        encoding="utf-8",
        timeout=120,
    )
    child.expect(pexpect.EOF)
    raw = child.before
    child.close()
    assert child.exitstatus == 0, raw
    assert "converting" in raw and "local.beds" in raw  # progress is shown ...
    assert "all downloads" not in raw  # ... but no download bar: nothing was downloaded


def test_a_fetch_waiting_for_another_writer_says_so_at_a_terminal_and_not_in_cron(
    home: Path, tmp_path: Path, cli: Any
) -> None:
    from liberacion.lake import Lake

    source = tmp_path / "beds.csv"
    source.write_text("facility_id,beds\n010001,12\n", encoding="utf-8")
    with Lake(home).lock("local.beds"):  # another writer holds the table
        status, raw = at_terminal(home, "fetch", str(source), "--as", "local.beds", "--wait", "1")
        assert status == 75, raw
        said = "waiting up to 1 s (--wait): table local.beds is being written by another liberacion process"
        said += f" (pid {os.getpid()})"
        assert said in raw  # said while it waits, not only when the wait ran out
        assert raw.index(said) < raw.index("error:")
        cron = cli("fetch", str(source), "--as", "local.beds", "--wait", "1", "--quiet")
        assert cron.exit_code == 75 and "waiting up to" not in cron.stderr and "error:" in cron.stderr
