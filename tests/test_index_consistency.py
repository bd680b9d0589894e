"""The index agrees with the manifests loaded now: a catalog loaded again is found again without a
discover, one not loaded is not shown, and a curated pointer its listing does not list says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.manifests import write_catalog
from tests.server import LocalServer


def _listing(*titles: str) -> str:
    return json.dumps(
        {
            "dataset": [
                {
                    "identifier": f"https://example.gov/dataset/{title.lower().replace(' ', '-')}",
                    "title": title,
                    "description": "d",
                    "publisher": {"name": "HHS"},
                    "distribution": [{"downloadURL": f"https://x.gov/{i}.csv", "mediaType": "text/csv"}],
                }
                for i, title in enumerate(titles)
            ]
        }
    )


def _json(cli: Any, *args: str) -> Any:
    result = cli(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else []


def test_a_pointer_a_listing_read_fine_does_not_list_is_not_in_the_listing(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    url = http_server.add("/a.json", _listing("Hospital beds"), content_type="application/json")
    body = '\n[[dataset]]\nid = "typo"\nsource_id = "no-such-dataset"\n'
    write_catalog(manifests, "a", [("dcat-us", url)], body=body)
    result = cli("discover", "a")
    assert result.exit_code == 0, result.stderr
    assert "a: 2 datasets, 1 fetchable (not: 1 not in the listing)" in result.stderr.splitlines()
    rows = _json(cli, "sql", "select why_not from liberacion.datasets where ref = 'a/typo'")
    assert rows == [{"why_not": "not in the listing"}]  # the listing was read: not "listing not read"


def test_a_catalog_loaded_again_is_found_again_and_one_not_loaded_is_not(
    cli: Any, http_server: LocalServer, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    write_catalog(first, "a", [("dcat-us", http_server.add("/a.json", _listing("Hospital beds")))])
    write_catalog(second, "b", [("dcat-us", http_server.add("/b.json", _listing("Zebrafish sightings")))])
    both = ("--catalogs", str(first), "--catalogs", str(second))
    assert cli(*both, "discover", "a", "b").exit_code == 0
    # A discover under fewer manifests: b is not loaded, so it is not shown ...
    assert cli("--catalogs", str(first), "discover", "a").exit_code == 0
    assert _json(cli, "--catalogs", str(first), "search", "zebrafish") == []
    assert cli("--catalogs", str(first), "show", "b/zebrafish-sightings").exit_code == 3
    # ... and loaded again, b is found at once, as `catalogs` counts it: no discover needed.
    statuses = {r["name"]: r["datasets"] for r in _json(cli, *both, "catalogs")}
    assert statuses["b"] == 1
    assert [h["ref"] for h in _json(cli, *both, "search", "zebrafish")] == ["b/zebrafish-sightings"]
    rows = _json(cli, *both, "sql", "select ref from liberacion.datasets where catalog = 'b'")
    assert rows == [{"ref": "b/zebrafish-sightings"}]
    assert cli(*both, "show", "b/zebrafish-sightings").exit_code == 0


def test_a_catalog_not_loaded_keeps_its_curated_datasets_in_the_index(
    cli: Any, http_server: LocalServer, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    write_catalog(first, "a", [("dcat-us", http_server.add("/a.json", _listing("Hospital beds")))])
    body = '\n[[dataset]]\nid = "picked"\ntitle = "Picked by hand"\nurl = "https://x.gov/picked.csv"\n'
    write_catalog(second, "b", [("dcat-us", http_server.add("/b.json", _listing("Nursing homes")))], body=body)
    both = ("--catalogs", str(first), "--catalogs", str(second))
    assert cli(*both, "discover", "a", "b").exit_code == 0
    assert cli("--catalogs", str(first), "discover", "a").exit_code == 0  # rebuilt without b's manifest
    rows = _json(cli, *both, "sql", "select ref, curated, fetch_url from liberacion.datasets where catalog = 'b'")
    assert {r["ref"]: (r["curated"], r["fetch_url"]) for r in rows} == {
        "b/picked": (True, "https://x.gov/picked.csv"),
        "b/nursing-homes": (False, "https://x.gov/0.csv"),
    }
