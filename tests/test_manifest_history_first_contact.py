"""First contact with your own catalog manifest, and with history, time travel and diff: the
mistakes a new user makes, each a clear error or a right answer, never a silent one."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from liberacion.compare import diff
from liberacion.lake import Lake
from liberacion.snapshots import Provenance
from tests.manifests import write_catalog
from tests.server import LocalServer


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# -- manifests -------------------------------------------------------------------------------------


def test_a_source_id_in_a_manifest_without_any_source_is_a_manifest_error(cli: Any, manifests: Path) -> None:
    path = write_catalog(manifests, "pdc", body='\n[[dataset]]\nid = "beds"\nsource_id = "abcd-1234"\n')
    result = cli("catalogs")
    assert result.exit_code == 5
    (line,) = _errors(result.stderr)
    assert line.startswith(f"error: {path}: [[dataset]] #1 (beds): `source_id` points into a [[source]]")
    assert "give the file's `url` instead" in line


def test_two_sources_of_one_url_are_a_manifest_error(cli: Any, manifests: Path) -> None:
    url = "https://data.example.gov/data.json"
    path = write_catalog(manifests, "pdc", [("dcat-us", url), ("socrata", url + " ")])
    result = cli("catalogs")
    assert result.exit_code == 5
    (line,) = _errors(result.stderr)
    assert line.startswith(f"error: {path}: [[source]] #2: the same `url` as [[source]] #1 ({url})")


def test_a_corrected_source_kind_reads_the_listing_again_instead_of_keeping_the_old_parse(
    cli: Any, http_server: LocalServer, manifests: Path
) -> None:
    items = [
        {"identifier": f"id-{i}", "title": f"Set {i}", "distribution": [{"downloadURL": f"https://x.gov/{i}.csv"}]}
        for i in range(3)
    ]
    url = http_server.add("/items", json.dumps(items), content_type="application/json")  # answers 304 when unchanged
    write_catalog(manifests, "pdc", [("dkan", url)])
    assert cli("discover", "pdc").exit_code == 0
    write_catalog(manifests, "pdc", [("dcat-us", url)])  # the kind edited: a DKAN array is no DCAT catalog
    for _ in range(2):  # and the second run must not take a 304 for the first kind's datasets either
        result = cli("discover", "pdc")
        assert result.exit_code == 1, result.stderr
        assert any(
            "dcat-us listing" in line and "expected a DCAT-US catalog" in line for line in _errors(result.stderr)
        )
        assert "unchanged" not in result.stderr


# -- diff and time travel --------------------------------------------------------------------------


def test_a_column_retyped_from_integer_to_double_is_compared_as_numbers(home: Path) -> None:
    lake = Lake(home)
    keys = Provenance(extra={"keys": ["id"]})
    old = lake.publish("org.r", pa.table({"id": [1, 2, 3], "v": [10, 20, 30]}), keys)
    new = lake.publish("org.r", pa.table({"id": [1, 2, 3], "v": [10.0, 20.5, 30.0]}), keys)
    keyed = diff(old, new, keys=["id"])
    assert (keyed.added, keyed.removed, keyed.changed, keyed.changed_columns) == (0, 0, 1, {"v": 1})
    assert [row.key for row in keyed.changed_examples] == [{"id": 2}]
    whole_rows = diff(old, new)
    assert (whole_rows.added, whole_rows.removed) == (1, 1)


def test_a_key_retyped_from_date_to_timestamp_still_matches_its_rows(home: Path) -> None:
    lake = Lake(home)
    days = [date(2026, 1, 1), date(2026, 1, 2)]
    old = lake.publish("org.d", pa.table({"day": days, "n": [1, 2]}), Provenance())
    times = [datetime(2026, 1, 1), datetime(2026, 1, 2)]
    new = lake.publish("org.d", pa.table({"day": times, "n": [1, 5]}), Provenance())
    result = diff(old, new, keys=["day"])
    assert (result.added, result.removed, result.changed) == (0, 0, 1)


def test_as_of_a_snapshot_id_says_how_to_read_that_snapshot(cli: Any, home: Path) -> None:
    snap = Lake(home).publish("org.t", pa.table({"id": [1]}), Provenance())
    result = cli("sql", "--as-of", snap.id, "select count(*) from org.t")
    assert result.exit_code == 2
    (line,) = _errors(result.stderr)
    assert "that is a snapshot id, not a time" in line and f"liberacion.snapshot('CATALOG.TABLE', '{snap.id}')" in line


def test_as_of_the_start_of_a_snapshot_id_sends_to_history_for_the_whole_id(cli: Any, home: Path) -> None:
    # liberacion.snapshot() takes whole ids: suggesting it with the start of one was a dead end.
    snap = Lake(home).publish("org.t", pa.table({"id": [1]}), Provenance())
    result = cli("sql", "--as-of", snap.id[:15], "select count(*) from org.t")
    assert result.exit_code == 2
    (line,) = _errors(result.stderr)
    assert "the start of a snapshot id" in line and "liberacion history CATALOG.TABLE" in line
    assert f"liberacion.snapshot('CATALOG.TABLE', '{snap.id[:15]}')" not in line


def test_a_declared_key_the_old_snapshot_lacks_says_how_to_choose_keys(cli: Any, home: Path) -> None:
    lake = Lake(home)
    lake.publish("org.k", pa.table({"code": ["a", "b"], "v": [1, 2]}), Provenance())
    lake.publish("org.k", pa.table({"id": [1, 2], "code": ["a", "b"], "v": [1, 3]}), Provenance(extra={"keys": ["id"]}))
    result = cli("diff", "org.k")
    assert result.exit_code == 2
    assert "choose keys with --key COLUMN, or compare whole rows with --key ''" in result.stderr
    whole_rows = cli("diff", "org.k", "--key", "", "--format", "json")
    assert whole_rows.exit_code == 0
    counts = {r["change"]: r["count"] for r in json.loads(whole_rows.stdout) if r["change"].startswith("rows_")}
    assert counts == {"rows_added": 1, "rows_removed": 1}


def test_a_manifest_column_type_for_a_missing_column_blames_the_manifest_not_type(
    cli: Any, http_server: LocalServer, manifests: Path
) -> None:
    url = http_server.add("/beds.csv", "ccn,beds\n010001,12\n", content_type="text/csv")
    body = f'\n[[dataset]]\nid = "beds"\nurl = "{url}"\n\n[dataset.columns]\nbedz = "integer"\n'
    write_catalog(manifests, "pdc", body=body)
    result = cli("fetch", "pdc/beds")
    assert result.exit_code == 1
    (line,) = _errors(result.stderr)
    assert 'the pdc catalog\'s manifest, [dataset.columns] of beds: bedz = "integer"' in line, line
    assert 'no column "bedz" in the file' in line and "correct the manifest" in line and "--type" not in line
    given = cli("fetch", "pdc/beds", "--type", "bedz=integer")  # the user's own --type: named as such
    assert given.exit_code == 1 and '--type bedz=integer: no column "bedz"' in given.stderr


def test_where_an_override_was_declared_is_not_a_conversion_setting(
    cli: Any, http_server: LocalServer, manifests: Path, home: Path
) -> None:
    # Settings decide "convert again": a message's detail among them would re-download every table.
    url = http_server.add("/beds.csv", "ccn,beds\n010001,12\n", content_type="text/csv")
    write_catalog(
        manifests, "pdc", body=f'\n[[dataset]]\nid = "beds"\nurl = "{url}"\n\n[dataset.columns]\nccn = "string"\n'
    )
    assert cli("fetch", "pdc/beds").exit_code == 0
    settings = Lake(home).current("pdc.beds").provenance.settings
    assert settings["columns"] == {"ccn": "string"} and "declared_in" not in settings


def test_catalogs_does_not_show_another_manifests_discover_as_this_ones(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    from tests.test_discover import _listing

    url = http_server.add("/data.json", _listing("Flu Vaccinations", "Measles Cases", "Mumps"))
    path = write_catalog(manifests, "t", [("dcat-us", url)])
    assert cli("discover", "t").exit_code == 0
    before = {r["name"]: r for r in json.loads(cli("catalogs", "--format", "json").stdout)}["t"]
    assert before["status"] == "ok" and before["datasets"] == 3
    # A curated dataset added: that discover read these listings, but its count is not this manifest's.
    path.write_text(path.read_text() + '\n[[dataset]]\nid = "one"\nurl = "https://data.example.gov/one.csv"\n')
    edited = {r["name"]: r for r in json.loads(cli("catalogs", "--format", "json").stdout)}["t"]
    assert (edited["status"], edited["datasets"]) == ("ok", 4), edited
    # Its listing changed (or an override dropped): the last discover read another manifest.
    path.write_text(path.read_text().replace(url, http_server.add("/other.json", _listing("Rubella"))))
    after = {r["name"]: r for r in json.loads(cli("catalogs", "--format", "json").stdout)}["t"]
    assert after["status"] == "listings changed: run liberacion discover t", after
    assert after["datasets"] == 1 and after["last_discovered"] is None
