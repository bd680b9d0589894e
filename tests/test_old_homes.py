"""Homes written by older liberacion versions, used by today's.

Each test builds the old home's files itself (the formats older versions wrote, as fixtures
below), then runs today's commands on them.
"""

from __future__ import annotations

import json
from pathlib import Path

from liberacion.lake import Lake
from tests.conftest import Cli
from tests.manifests import write_catalog
from tests.server import LocalServer

CSV_V1 = "facility_id,beds\n010001,12\n010005,40\n"
CSV_V2 = "facility_id,beds\n010001,12\n010005,41\n010012,7\n"


def legacy_retired(home: Path, *tables: str) -> None:
    """``state/refresh.json`` as versions up to 2026-12-02 wrote it after a refresh whose fetch ended in
    NOT_FOUND: a file answering 404, a local file gone or a dataset its catalog dropped were all
    marked retired alike, and every later refresh skipped the table."""
    record = {
        "checked": 1796571456.17,
        "checked_at": "2026-11-24T11:30:00+00:00",
        "last_event": "retired",
        "retired": "2026-11-24T11:30:00.000000Z",
    }
    (home / "state").mkdir(parents=True, exist_ok=True)
    (home / "state" / "refresh.json").write_text(json.dumps({t: record for t in tables}, indent=1))


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()][:-1]  # without the summary


def test_a_url_an_old_home_marked_retired_after_a_404_is_refreshed_again(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    url = http_server.add("/beds.csv", CSV_V1, content_type="text/csv")
    assert cli("fetch", url, "--as", "cms.beds").exit_code == 0
    legacy_retired(home, "cms.beds")
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")  # the file is back, with news
    result = cli("refresh", "--json")
    assert result.exit_code == 0, result.stderr
    [event] = events(result.stdout)
    assert event["event"] == "fetched" and event["rows"] == 3
    assert Lake(home).current("cms.beds").rows == 3
    state = json.loads((home / "state" / "refresh.json").read_text())
    assert "retired" not in state["cms.beds"]


def test_a_local_file_an_old_home_marked_retired_while_missing_is_refreshed_again(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    source = tmp_path / "beds.csv"
    source.write_text(CSV_V1)
    assert cli("fetch", str(source), "--as", "loc.beds").exit_code == 0
    legacy_retired(home, "loc.beds")
    source.write_text(CSV_V2)
    result = cli("refresh", "--json")
    assert result.exit_code == 0, result.stderr
    assert [e["event"] for e in events(result.stdout)] == ["fetched"]
    assert Lake(home).current("loc.beds").rows == 3


def test_an_old_retired_mark_of_a_dataset_its_catalog_dropped_is_checked_once_then_kept(
    cli: Cli, http_server: LocalServer, home: Path, manifests: Path
) -> None:
    url = http_server.add("/beds.csv", CSV_V1, content_type="text/csv")
    write_catalog(manifests, "hhs", body=f'\n[[dataset]]\nid = "beds"\nurl = "{url}"\n')
    assert cli("fetch", "hhs/beds").exit_code == 0
    write_catalog(manifests, "hhs", body='\n[[dataset]]\nid = "other"\nurl = "https://example.org/o.csv"\n')
    legacy_retired(home, "hhs.beds")
    first = cli("refresh", "--json")
    assert first.exit_code == 0, first.stderr
    assert [e["event"] for e in events(first.stdout)] == ["retired"]  # checked: the catalog's decision
    again = cli("refresh", "--json")
    assert [(e["event"], e["reason"]) for e in events(again.stdout)] == [("skipped", "retired")]
    assert Lake(home).current("hhs.beds").rows == 2  # its data stays
