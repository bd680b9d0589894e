"""liberacion wired into pipelines: the machine output a script or a monitoring job reads, the same
in every outcome and across commands."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.server import LocalServer

CSV = "id,name,val\n1,a,10\n2,b,20\n3,c,30\n"
SLOW = "id,v\n" + "1,2\n" * 200_000  # 800 kB, sent slowly: seconds


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


def test_a_fetch_stopped_by_sigterm_has_printed_the_json_lines_of_what_it_published(
    http_server: LocalServer, home: Path
) -> None:
    """``timeout 1h liberacion fetch ... --json >> runs.jsonl``: a run stopped (exit 143) printed
    nothing, though the tables done before the stop were published. Each line now goes out as its
    dataset is done, in the order given: the one after a slow download at the stop."""
    a = http_server.add("/a.csv", CSV, content_type="text/csv")
    slow = http_server.add("/slow.csv", SLOW, content_type="text/csv", rate=64 * 1024)
    b = http_server.add("/b.csv", CSV.replace("a,10", "x,11"), content_type="text/csv")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    command = [sys.executable, "-m", "liberacion", "fetch", a, slow, b, "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    published = [home / "lake" / "local" / name / "current" for name in ("a", "b")]
    deadline = time.monotonic() + 60
    while not all(p.is_file() for p in published) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    time.sleep(0.3)  # a table's switch comes just before its result
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["table"], r["status"]) for r in records] == [("local.a", "fetched"), ("local.b", "fetched")]
    assert [r["snapshot"] for r in records] == [p.read_text().strip() for p in published]
    assert err.splitlines()[-1].startswith("error: terminated (SIGTERM)")
    assert not (home / "lake" / "local" / "slow" / "current").exists()  # stopped mid-run


def test_fetch_json_lines_come_out_as_each_dataset_is_done_and_a_reader_may_leave(
    http_server: LocalServer, home: Path
) -> None:
    """An Airflow task reads each dataset's line while the others still download (they all came at
    the end); a reader that leaves (``| head -1``) stops the printing, not the run."""
    a = http_server.add("/a.csv", CSV, content_type="text/csv")
    slow = http_server.add("/slow.csv", SLOW, content_type="text/csv", rate=200 * 1024)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    command = [sys.executable, "-m", "liberacion", "fetch", a, slow, "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None and process.stderr is not None
    first = json.loads(process.stdout.readline())
    slow_table = home / "lake" / "local" / "slow" / "current"
    assert not slow_table.exists(), "the line came only once the run had ended"
    assert (first["table"], first["status"]) == ("local.a", "fetched")
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=60) == 0, err
    assert "Traceback" not in err and slow_table.is_file()


def test_refresh_lines_keep_error_for_failures_and_name_the_current_snapshot(
    cli: Any, home: Path, tmp_path: Path
) -> None:
    """A monitor alerting on ``select(.error != null)`` was told of every table skipped as checked
    recently (the reason was in ``error``); ``refresh --check``'s unchanged lines had no snapshot or
    rows, a refresh's unchanged lines had them; refresh's lines had no ``rejects``, fetch's did."""
    path = tmp_path / "a.csv"
    path.write_text(CSV + "4,d\n", encoding="utf-8")  # one row short: a bad row set aside
    assert cli("fetch", str(path), "--as", "local.a").exit_code == 0
    [current] = json.loads(cli("tables", "--format", "json").stdout)

    def lines(*args: str) -> list[dict[str, Any]]:
        result = cli("refresh", "--json", *args)
        assert result.exit_code == 0, result.stderr
        return [json.loads(text) for text in result.stdout.splitlines()][:-1]

    [refreshed] = lines()
    [checked] = lines("--check")
    [skipped] = lines("--older-than", "1h")
    assert refreshed["event"] == checked["event"] == "unchanged" and skipped["event"] == "skipped"
    assert refreshed["rejects"] == 1 and refreshed["rows"] == 3
    for line in (refreshed, checked, skipped):
        assert (line["snapshot"], line["rows"]) == (refreshed["snapshot"], 3), line
        assert line["error"] is None and set(line) == set(refreshed), line
    assert skipped["reason"] == "checked recently" and refreshed["reason"] is None
    assert current["rows"] == 3
