"""`liberacion catalogs` after a manifest edit since the last discover: an edit of curated datasets
only is taken at once (as search and liberacion.datasets take it), so no discover is asked for;
listings changed since still need one, and the advice names the catalog and the options typed."""

from __future__ import annotations

import csv
import io
import json
import shlex
from pathlib import Path
from typing import Any

from liberacion import api
from tests.manifests import write_catalog
from tests.server import LocalServer
from tests.test_discover import _listing

CURATED = '\n[[dataset]]\nid = "one"\nurl = "https://data.example.gov/one.csv"\n'


def _status(cli: Any, *args: str) -> dict[str, Any]:
    result = cli(*args, "catalogs", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return {r["name"]: r for r in json.loads(result.stdout)}["t"]


def _indexed(cli: Any) -> int:
    result = cli("sql", "select count(*) as n from liberacion.datasets where catalog = 't'", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return int(json.loads(result.stdout)[0]["n"])


def test_catalogs_takes_a_curated_edit_since_discover_without_asking_for_one(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    url = http_server.add("/data.json", _listing("Flu Vaccinations", "Measles Cases", "Mumps"))
    path = write_catalog(manifests, "t", [("dcat-us", url)])
    assert cli("discover", "t").exit_code == 0
    before = _status(cli)
    assert (before["status"], before["datasets"]) == ("ok", 3)
    path.write_text(path.read_text() + CURATED)  # added: search and liberacion.datasets take it at once
    after = _status(cli)
    assert after["status"] == "ok", after
    # The same listings as the last discover read: its time and outcome are this manifest's, and
    # the count is what search and liberacion.datasets hold now.
    assert after["last_discovered"] == before["last_discovered"]
    assert after["datasets"] == 4 == _indexed(cli)
    path.write_text(path.read_text().replace('id = "one"', 'id = "two"'))  # renamed
    assert _status(cli)["datasets"] == 4 == _indexed(cli)
    path.write_text(path.read_text().replace(CURATED.replace('"one"', '"two"'), ""))  # removed
    assert _status(cli)["datasets"] == 3 == _indexed(cli)
    path.write_text(path.read_text() + CURATED)
    for args in (("--format", "csv"), ("--format", "table")):
        shown = cli("catalogs", *args)
        assert shown.exit_code == 0 and "discover t" not in shown.stdout and "changed" not in shown.stdout, shown.stdout
    (row,) = [r for r in csv.DictReader(io.StringIO(cli("catalogs", "--format", "csv").stdout)) if r["name"] == "t"]
    assert (row["status"], row["datasets"]) == ("ok", "4")
    (status,) = [c for c in api.catalogs(home=home, catalog_paths=[manifests]) if c.name == "t"]
    assert (status.status, status.datasets, status.last_discovered) == ("ok", 4, before["last_discovered"])


def test_catalogs_asks_for_the_discover_of_a_catalog_whose_listings_changed(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    url = http_server.add("/data.json", _listing("Flu Vaccinations", "Measles Cases", "Mumps"))
    other = http_server.add("/other.json", _listing("Rubella"))
    path = write_catalog(manifests, "t", [("dcat-us", url)], body=CURATED)
    assert cli("discover", "t").exit_code == 0
    path.write_text(path.read_text().replace(url, other))
    after = _status(cli)
    assert after["status"] == "listings changed: run liberacion discover t", after
    # What that discover read is not this manifest's: neither its time nor its counts are shown.
    assert after["datasets"] == 1 and after["last_discovered"] is None
    typed = _status(cli, "--home", str(home))
    assert typed["status"].endswith(f"run liberacion --home {shlex.quote(str(home))} discover t"), typed
    (status,) = [c for c in api.catalogs(home=home, catalog_paths=[manifests]) if c.name == "t"]
    assert status.status == after["status"]
    assert cli("discover", "t").exit_code == 0
    assert (_status(cli)["status"], _status(cli)["datasets"]) == ("ok", 2)
