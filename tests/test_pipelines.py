"""liberacion wired into pipelines: the machine output a script or a monitoring job reads, the same
in every outcome and across commands."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

CSV = "id,name,val\n1,a,10\n2,b,20\n3,c,30\n"


def fetched(cli: Any, tmp_path: Path, *tables: str) -> None:
    for table in tables:
        path = tmp_path / f"{table.replace('.', '_')}.csv"
        path.write_text(CSV, encoding="utf-8")
        result = cli("fetch", str(path), "--as", table)
        assert result.exit_code == 0, result.stderr


def test_tables_writes_every_time_in_one_format_the_refresh_report_joins_on(
    cli: Any, home: Path, tmp_path: Path
) -> None:
    """A monitoring job joins ``tables``' ``checked_at`` with the refresh report's ``at``: one
    format (``fetched_at``'s, ``...ffffffZ``), one instant. ``checked_at`` was ``+00:00`` with whole
    seconds; a home written so shows its times in the one format too."""
    fetched(cli, tmp_path, "local.a")
    refreshed = cli("refresh", "--json")
    assert refreshed.exit_code == 0, refreshed.stderr
    [line, _summary] = [json.loads(text) for text in refreshed.stdout.splitlines()]
    [record] = json.loads(cli("tables", "--format", "json").stdout)
    assert record["checked_at"] == line["at"] and line["event"] == "unchanged"
    for key in ("checked_at", "fetched_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record[key]), record

    state = home / "state" / "refresh.json"
    old = {"local.a": {"checked": 1.0, "checked_at": "2026-11-24T11:30:00+00:00", "last_event": "unchanged"}}
    state.write_text(json.dumps(old), encoding="utf-8")
    csv_rows = cli("tables", "--format", "csv").stdout.splitlines()
    assert csv_rows[1].endswith(",2026-11-24T11:30:00.000000Z,unchanged"), csv_rows
