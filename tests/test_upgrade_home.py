"""A home written by an older liberacion, read by today's after ``pip install -U``.

Each test writes the older version's files itself, shaped exactly as that version wrote them (no
git history is needed), then runs today's commands on them: nothing the old home holds may be
lost, and a table the old version left due must not look recently checked.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from liberacion.lake import Lake
from tests.conftest import Cli
from tests.server import LocalServer

CSV_V1 = "facility_id,beds\n010001,12\n010005,40\n"
CSV_V2 = "facility_id,beds\n010001,12\n010005,41\n010012,7\n"


def write_refresh_state(home: Path, records: Any) -> None:
    """``state/refresh.json`` as older versions wrote it (``indent=1``, one record per table)."""
    (home / "state").mkdir(parents=True, exist_ok=True)
    (home / "state" / "refresh.json").write_text(json.dumps(records, indent=1), encoding="utf-8")


def old_record(event: str, *, seconds_ago: float = 60) -> dict[str, Any]:
    """A table's record as versions before 2026-12-06 18:00 wrote it: every event, a failure or a
    ``refresh --check`` included, stamped ``checked`` and ``checked_at``."""
    when = time.time() - seconds_ago
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(when))
    return {"checked": when, "checked_at": stamp, "last_event": event}


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()][:-1]  # without the summary


def tables_rows(cli: Cli) -> dict[str, dict[str, str]]:
    result = cli("tables")
    assert result.exit_code == 0, result.stderr
    return {f"{r['catalog']}.{r['table']}": r for r in csv.DictReader(io.StringIO(result.stdout))}


def test_a_table_an_old_refresh_check_found_changed_is_refreshed_by_the_next_older_than_run(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    url = http_server.add("/beds.csv", CSV_V1, content_type="text/csv")
    assert cli("fetch", url, "--as", "cms.beds").exit_code == 0
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")
    # Up to 2026-12-06 12:35 `refresh --check` recorded what it found, "changed" stamped as a check.
    write_refresh_state(home, {"cms.beds": old_record("changed")})
    result = cli("refresh", "--older-than", "1d", "--json")
    assert result.exit_code == 0, result.stderr
    [event] = events(result.stdout)
    assert event["event"] == "fetched" and event["rows"] == 3
    assert Lake(home).current("cms.beds").rows == 3


def test_a_table_whose_last_old_refresh_failed_is_tried_again_and_not_shown_as_checked(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    url = http_server.add("/beds.csv", CSV_V1, content_type="text/csv")
    assert cli("fetch", url, "--as", "cms.beds").exit_code == 0
    # Up to 2026-12-06 17:57 a failed refresh stamped the table as checked, and no failed_at.
    failed = old_record("failed")
    write_refresh_state(home, {"cms.beds": failed})
    row = tables_rows(cli)["cms.beds"]
    assert row["last_refresh"] == "failed"
    assert row["checked_at"] == ""  # the failure was no check that got an answer
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")  # the server is back, with news
    result = cli("refresh", "--older-than", "1d", "--json")
    assert result.exit_code == 0, result.stderr
    [event] = events(result.stdout)
    assert event["event"] == "fetched" and event["rows"] == 3
    state = json.loads((home / "state" / "refresh.json").read_text())["cms.beds"]
    assert state["last_event"] == "fetched" and "failed_at" not in state


def test_an_old_failure_keeps_its_time_as_failed_at_while_it_keeps_failing(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    url = http_server.add("/beds.csv", CSV_V1, content_type="text/csv")
    assert cli("fetch", url, "--as", "cms.beds").exit_code == 0
    failed = old_record("failed", seconds_ago=3600)
    ok = old_record("unchanged")
    write_refresh_state(home, {"cms.beds": failed, "cms.other": ok})
    http_server.add("/beds.csv", "", status=500)
    result = cli("refresh", "--older-than", "1d", "--json")
    assert [e["event"] for e in events(result.stdout)] == ["failed"]
    state = json.loads((home / "state" / "refresh.json").read_text())
    assert state["cms.beds"]["failed_at"] > failed["checked_at"]  # this run's failure
    assert "checked" not in state["cms.beds"]
    assert state["cms.other"] == ok  # a record of a plain check is kept as it was


def test_damaged_refresh_records_do_not_hide_the_tables(cli: Cli, http_server: LocalServer, home: Path) -> None:
    url = http_server.add("/beds.csv", CSV_V1, content_type="text/csv")
    assert cli("fetch", url, "--as", "cms.beds").exit_code == 0
    for damaged in ({"cms.beds": None}, ["cms.beds"], {"cms.beds": "fetched"}):
        write_refresh_state(home, damaged)
        assert list(tables_rows(cli)) == ["cms.beds"]
        result = cli("refresh", "--json")
        assert result.exit_code == 0, result.stderr
        assert [e["event"] for e in events(result.stdout)] == ["unchanged"]


def move_to_reserved_catalog(home: Path, table: str, catalog: str) -> Path:
    """Make ``table`` (fetched by today's code with ``--as``) a table of ``catalog``, as versions
    before 2026-12-04 18:19 published ``fetch URL --as lake.codes``: its folder under that catalog
    and every record naming it (the snapshot's format is the same since 2026-12-02)."""
    old_catalog, name = table.split(".")
    target = home / "lake" / catalog / name
    target.parent.mkdir(parents=True)
    (home / "lake" / old_catalog / name).rename(target)
    for record in target.glob("snapshots/*/snapshot.json"):
        data = json.loads(record.read_text(encoding="utf-8"))
        data["table"] = data["provenance"]["target"] = data["provenance"]["recipe"]["table"] = f"{catalog}.{name}"
        record.write_text(json.dumps(data, indent=2), encoding="utf-8")
    (home / "lake.duckdb").unlink()  # the old version's views database had no view of it either
    return target


def test_a_table_an_old_version_put_in_a_catalog_now_reserved_hides_no_other_table(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    codes = http_server.add("/codes.csv", "code,label\nA,alpha\n", content_type="text/csv")
    beds = http_server.add("/beds.csv", CSV_V1, content_type="text/csv")
    assert cli("fetch", codes, "--as", "old.codes").exit_code == 0
    assert cli("fetch", beds, "--as", "cms.beds").exit_code == 0
    folder = move_to_reserved_catalog(home, "old.codes", "lake")
    advice = f"fetch it again under another catalog name (liberacion fetch {codes} --as OTHER.codes)"

    rows = tables_rows(cli)
    assert list(rows) == ["cms.beds", "lake.codes"]
    assert rows["cms.beds"]["rows"] == "2" and not rows["cms.beds"]["error"]
    assert "catalog name 'lake' is reserved" in rows["lake.codes"]["error"]
    assert advice in rows["lake.codes"]["error"] and str(folder) in rows["lake.codes"]["error"]

    query = cli("sql", "select count(*) as n from cms.beds")
    assert query.exit_code == 0, query.stderr
    assert query.stdout.splitlines() == ["n", "2"]

    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")
    result = cli("refresh", "--json")
    assert result.exit_code == 1  # the table needs its owner: each run says so
    by_table = {e["table"]: e for e in events(result.stdout)}
    assert by_table["cms.beds"]["event"] == "fetched"
    assert by_table["lake.codes"]["event"] == "failed" and advice in by_table["lake.codes"]["error"]

    pruned = cli("prune", "--keep", "1")
    assert "cms.beds" in pruned.stdout and "skipped lake.codes" in pruned.stderr
    assert len(Lake(home).snapshots("cms.beds")) == 1
    assert len(list(folder.glob("snapshots/*/snapshot.json"))) == 1  # its snapshot is kept as it was


def test_an_index_a_newer_version_wrote_with_more_fields_is_still_read(
    cli: Cli, home: Path, manifests: Path, http_server: LocalServer
) -> None:
    """After a downgrade, keys a newer version added to the index's datasets and distributions
    are left aside, as the snapshots' provenance does, instead of failing every catalog command."""
    from tests.manifests import small_listing, write_catalog

    url = http_server.add("/list.json", small_listing("Births", "Deaths"), content_type="application/json")
    write_catalog(manifests, "quick", [("dcat-us", url)])
    assert cli("discover", "quick").exit_code == 0
    part = home / "index" / "parts" / "quick.json"
    data = json.loads(part.read_text())
    for records in data["sources"].values():
        for record in records:
            record["temporal_coverage"] = "2020/2024"
            for distribution in record["distributions"]:
                distribution["checksum"] = "sha256:0a1b"
    part.write_text(json.dumps(data))
    other = http_server.add("/other.json", small_listing("Cancer"), content_type="application/json")
    write_catalog(manifests, "other", [("dcat-us", other)])
    again = cli("discover", "other")  # the index is rebuilt from every catalog's part
    assert again.exit_code == 0, again.stderr
    for ref in ("quick/deaths", "other/cancer"):
        shown = cli("show", ref, "--format", "json")
        assert shown.exit_code == 0, shown.stderr


def test_a_snapshot_record_a_newer_version_wrote_with_more_column_keys_is_read(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    """A downgrade: the column entries of a newer version's records may hold keys this one does
    not know; the table is read, not called damaged."""
    source = tmp_path / "beds.csv"
    source.write_text("facility_id,beds\n010001,12\n")
    assert cli("fetch", str(source), "--as", "cms.beds").exit_code == 0
    (record,) = (home / "lake" / "cms" / "beds" / "snapshots").glob("*/snapshot.json")
    data = json.loads(record.read_text())
    for column in data["schema"]:
        column["semantic_type"] = "identifier"
    record.write_text(json.dumps(data))
    shown = cli("history", "cms.beds", "--format", "json")
    assert shown.exit_code == 0, shown.stderr
    assert "damaged" not in shown.stderr and len(json.loads(shown.stdout)) == 1
