"""A broken manifest takes its catalog away: a manifest of that name from a lower level (the shipped
one, the team's LIBERACION_CATALOGS) never stands in for it in discover, catalogs or search."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from liberacion.catalogs.manifests import TOP_KEYS
from tests.manifests import write_catalog
from tests.server import LocalServer

LISTING = json.dumps(
    {
        "dataset": [
            {
                "identifier": "https://example.gov/dataset/zebrafish",
                "title": "Zebrafish sightings",
                "description": "d",
                "distribution": [{"downloadURL": "https://x.gov/z.csv", "mediaType": "text/csv"}],
            }
        ]
    }
)


def _broken(directory: Path, name: str, url: str) -> Path:
    """A manifest with a typo (``kyes``): broken, its name still readable."""
    path = directory / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\nkyes = ["id"]\n\n[[source]]\nkind = "dcat-us"\nurl = "{url}"\n', encoding="utf-8"
    )
    return path


def _errors(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_broken_override_is_absent_from_discover_catalogs_and_search(
    cli: Any, manifests: Path, http_server: LocalServer, tmp_path: Path
) -> None:
    team = write_catalog(manifests, "zoo", [("dcat-us", http_server.add("/team.json", LISTING))])  # the environment
    mine = tmp_path / "mine"
    mine.mkdir()
    override = _broken(mine, "zoo", http_server.url("/mine.json"))
    assert cli("discover", "zoo").exit_code == 0  # the team's manifest alone: indexed
    http_server.requests.clear()

    mine_first = ("--catalogs", str(mine))
    result = cli(*mine_first, "discover", "zoo")
    assert result.exit_code == 5
    typo = f"error: {override}: unknown key 'kyes' (known keys: {', '.join(TOP_KEYS)})"
    assert _errors(result) == [typo]
    assert http_server.requests == []  # the team's listing was not read in its place
    listed = cli(*mine_first, "catalogs", "--format", "json")
    assert listed.exit_code == 5 and "zoo" not in {r["name"] for r in json.loads(listed.stdout)}
    found = cli(*mine_first, "search", "zebrafish", "--format", "json")
    assert found.exit_code == 5 and json.loads(found.stdout or "[]") == []  # not the team's datasets
    narrowed = cli(*mine_first, "search", "zebrafish", "--catalog", "zoo")
    assert narrowed.exit_code == 5 and _errors(narrowed) == [typo]
    assert team.is_file()  # the team's manifest is fine: without the override it is used again
    assert {r["name"] for r in json.loads(cli("catalogs", "--format", "json").stdout)} >= {"zoo"}


def test_a_broken_cms_toml_takes_the_shipped_cms_away(cli: Any, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    _broken(mine, "cms", "https://data.cms.gov/data.json")
    listed = cli("--catalogs", str(mine), "catalogs", "--format", "json")
    assert listed.exit_code == 5 and "cms" not in {r["name"] for r in json.loads(listed.stdout)}
    result = cli("--catalogs", str(mine), "discover", "cms")  # refused before any listing is read
    assert result.exit_code == 5 and "cms.toml: unknown key 'kyes'" in result.stderr


def test_a_manifest_with_a_syntax_error_hides_the_catalog_its_name_line_declares(cli: Any, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "mirror.toml").write_text('name = "cms"\ntitle = "unterminated\n', encoding="utf-8")
    listed = cli("--catalogs", str(mine), "catalogs", "--format", "json")
    assert listed.exit_code == 5 and "invalid TOML" in listed.stderr
    assert "cms" not in {r["name"] for r in json.loads(listed.stdout)}
    assert "cdc" in {r["name"] for r in json.loads(listed.stdout)}  # the others still load
