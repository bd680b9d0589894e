"""A refresh waiting (``--wait``) for another refresh of the same home: said at a terminal, once,
while it waits; silent in cron."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import at_terminal

pexpect = pytest.importorskip("pexpect")


def test_a_refresh_waiting_for_another_says_so_at_a_terminal_and_not_in_cron(
    home: Path, tmp_path: Path, cli: Any
) -> None:
    from liberacion.home import Home, file_lock
    from liberacion.refreshing import LOCK_FILE

    source = tmp_path / "beds.csv"
    source.write_text("facility_id,beds\n010001,12\n", encoding="utf-8")
    assert cli("fetch", str(source), "--as", "local.beds").exit_code == 0
    with file_lock(Home(home).locks / LOCK_FILE, what="refresh"):  # another refresh is running
        status, raw = at_terminal(home, "refresh", "--wait", "1", columns=200)
        assert status == 75, raw
        assert "(waited 1 s); try again later or wait longer" in raw and "use --wait" not in raw
        said = f"waiting up to 1 s (--wait): another refresh is running on {home} (pid {os.getpid()})"
        assert raw.count(said) == 1 and raw.index(said) < raw.index("error:"), raw
        cron = cli("refresh", "--wait", "1")
        assert cron.exit_code == 75 and "waiting up to" not in cron.stderr and "error:" in cron.stderr
        said_to: list[str] = []
        from liberacion import api

        with pytest.raises(Exception, match="another refresh is running"):
            api.refresh(home=home, wait=0.2, on_waiting=said_to.append)
        assert said_to == [f"waiting up to 0.2 s (--wait): another refresh is running on {home} (pid {os.getpid()})"]
