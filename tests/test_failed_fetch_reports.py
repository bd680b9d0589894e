"""What a failed fetch reports: the table a ref would land in when it failed before its table was
known (a path is a path, named as fetch names files), and the bytes this run downloaded when the
conversion, not the download, failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.server import LocalServer

GOOD = "id,n\n1,2\n3,4\n"
BAD = "id,n\n1,2\n3,4,5\n"  # a row of three fields in a file of two: a bad row


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_ref_that_fails_before_its_table_is_known_shows_the_table_fetch_would_name(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loc").mkdir()  # loc/f.csv is a path (with a typo), not the dataset f.csv of a catalog loc
    (tmp_path / "odd").mkdir()
    refs = {
        "loc/f.csv": "local.f",
        "odd/": "local.odd",
        "deaths.2023.csv": "local.deaths_2023",
        "nosuch/bi63-dtpu": "nosuch.bi63_dtpu",  # a CATALOG/ID ref: the catalog's table
    }
    result = cli("fetch", *refs, "--json")
    assert result.exit_code != 0
    got = {r["ref"]: r["table"] for r in records(result.stdout)}
    assert got == refs
    assert all(r["status"] == "failed" for r in records(result.stdout))
    # The summary for people (tab-separated lines in a pipe) names the same tables.
    plain = cli("fetch", *refs)
    assert [line.split("\t", 1)[0] for line in plain.stdout.splitlines()] == list(refs.values())


def _failed(cli: Cli, stage: str, *args: str) -> dict[str, Any]:
    """The ``fetch --json`` record of one ref that failed at ``stage``."""
    result = cli("fetch", *args, "--json")
    (record,) = records(result.stdout)
    assert record["status"] == "failed" and record["stage"] == stage, result.stderr
    return record


def test_a_conversion_failure_reports_the_bytes_it_downloaded(cli: Cli, http_server: LocalServer) -> None:
    url = http_server.add("/counts.csv", BAD, content_type="text/csv")
    assert _failed(cli, "convert", url, "--max-bad-rows", "0")["bytes"] == len(BAD)


def test_a_table_of_several_files_counts_every_file_it_received(
    cli: Cli, http_server: LocalServer, manifests: Path
) -> None:
    good = http_server.add("/part-0.csv", GOOD, content_type="text/csv")
    bad = http_server.add("/part-1.csv", BAD, content_type="text/csv")
    gone = http_server.url("/part-2.csv")  # 404: the download fails, after the others arrived
    (manifests / "fda.toml").write_text(
        f'name = "fda"\n[[dataset]]\nid = "parts"\nurls = {json.dumps([good, bad])}\n'
        f'[[dataset]]\nid = "broken"\nurls = {json.dumps([good, gone])}\n',
        encoding="utf-8",
    )
    assert _failed(cli, "convert", "fda/parts", "--max-bad-rows", "0")["bytes"] == len(GOOD) + len(BAD)
    assert _failed(cli, "download", "fda/broken")["bytes"] == len(GOOD)


def test_refresh_logs_the_bytes_of_a_download_it_could_not_convert(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    url = http_server.add("/counts.csv", GOOD, content_type="text/csv")
    assert cli("fetch", url, "--max-bad-rows", "0").exit_code == 0
    http_server.add("/counts.csv", BAD, content_type="text/csv")
    result = cli("refresh", "--json")
    events = [r for r in records(result.stdout) if r.get("table") == "local.counts"]
    assert events and events[0]["event"] == "failed", result.stdout + result.stderr
    assert events[0]["bytes"] == len(BAD)
