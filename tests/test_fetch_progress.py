"""What `fetch` shows on a terminal while it works (a pseudo-terminal, as a person sees it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

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
