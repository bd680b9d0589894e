"""``liberacion.datasets`` shows the catalogs loaded for the invocation, as ``search`` and ``show``
do: not one whose manifest was taken away, nor one named only by another ``--catalogs``; the
``lake.duckdb`` a writer leaves holds the catalogs loaded without ``--catalogs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from liberacion import api
from tests.manifests import write_catalog
from tests.server import LocalServer
from tests.test_completion import complete

OURS = "select distinct catalog from liberacion.datasets where catalog in ('a', 'b') order by 1"


def _listing(title: str) -> str:
    dataset = {
        "identifier": f"https://example.gov/dataset/{title.lower().replace(' ', '-')}",
        "title": title,
        "publisher": {"name": "HHS"},
        "distribution": [{"downloadURL": "https://x.gov/0.csv", "mediaType": "text/csv"}],
    }
    return json.dumps({"dataset": [dataset]})


def _catalogs(cli: Any, *args: str, sql_options: list[str] | None = None) -> list[str]:
    result = cli(*args, "sql", OURS, "--format", "json", *(sql_options or []))
    assert result.exit_code == 0, result.stderr
    return [row["catalog"] for row in json.loads(result.stdout or "[]")]


@pytest.fixture
def two_dirs(cli: Any, http_server: LocalServer, tmp_path: Path, home: Path) -> tuple[Path, Path]:
    """Catalog a in one directory, b in another, both discovered; then a table fetched with
    neither, so ``lake.duckdb`` is newer than the index and ``sql`` attaches it."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    write_catalog(first, "a", [("dcat-us", http_server.add("/a.json", _listing("Hospital beds")))])
    write_catalog(second, "b", [("dcat-us", http_server.add("/b.json", _listing("Zebrafish sightings")))])
    assert cli("--catalogs", str(first), "--catalogs", str(second), "discover", "a", "b").exit_code == 0
    data = tmp_path / "x.csv"
    data.write_text("id,name\n1,one\n", encoding="utf-8")
    assert cli("fetch", str(data), "--as", "t.x").exit_code == 0
    assert (home / "lake.duckdb").stat().st_mtime_ns > (home / "index" / "datasets.parquet").stat().st_mtime_ns
    return first, second


@pytest.mark.parametrize("as_of", [[], ["--as-of", "2999-01-01"]], ids=["lake.duckdb", "views in memory"])
def test_the_index_view_shows_the_catalogs_loaded_now(cli: Any, two_dirs: tuple[Path, Path], as_of: list[str]) -> None:
    first, second = two_dirs
    both = ["--catalogs", str(first), "--catalogs", str(second)]
    assert _catalogs(cli, *both, sql_options=as_of) == ["a", "b"]
    assert _catalogs(cli, "--catalogs", str(first), sql_options=as_of) == ["a"]
    assert _catalogs(cli, "--catalogs", str(second), sql_options=as_of) == ["b"]
    assert _catalogs(cli, sql_options=as_of) == []  # neither is loaded without them
    # As search says: b is not there under the first directory alone.
    hits = cli("--catalogs", str(first), "search", "zebrafish", "--format", "json")
    assert hits.exit_code == 0 and json.loads(hits.stdout or "[]") == []


def test_a_manifest_taken_away_takes_its_rows_out_of_the_view(
    cli: Any, http_server: LocalServer, manifests: Path, tmp_path: Path
) -> None:
    write_catalog(manifests, "a", [("dcat-us", http_server.add("/a.json", _listing("Hospital beds")))])
    b = write_catalog(manifests, "b", [("dcat-us", http_server.add("/b.json", _listing("Zebrafish sightings")))])
    assert cli("discover", "a", "b").exit_code == 0
    data = tmp_path / "x.csv"
    data.write_text("id,name\n1,one\n", encoding="utf-8")
    assert cli("fetch", str(data), "--as", "t.x").exit_code == 0  # lake.duckdb written with a and b loaded
    assert _catalogs(cli) == ["a", "b"]
    b.unlink()
    assert _catalogs(cli) == ["a"]
    rows = api.sql(OURS).fetchall()  # the Python API says the same
    assert rows == [("a",)]


def test_lake_duckdb_holds_the_catalogs_loaded_without_catalogs_option(
    cli: Any, two_dirs: tuple[Path, Path], home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, second = two_dirs
    monkeypatch.setenv("LIBERACION_CATALOGS", str(first))
    data = tmp_path / "y.csv"
    data.write_text("id\n2\n", encoding="utf-8")
    # A writer run with --catalogs still writes the view of the catalogs loaded without it.
    assert cli("--catalogs", str(second), "fetch", str(data), "--as", "t.y").exit_code == 0
    with duckdb.connect(str(home / "lake.duckdb"), read_only=True) as con:
        assert con.sql(OURS).fetchall() == [("a",)]
    assert _catalogs(cli, "--catalogs", str(second)) == ["a", "b"]


def test_a_broken_manifest_is_said_and_its_catalog_left_out(cli: Any, two_dirs: tuple[Path, Path]) -> None:
    first, second = two_dirs
    (second / "b.toml").write_text('name = "b"\n[[source]]\nkind = "nosuch"\n', encoding="utf-8")
    result = cli("--catalogs", str(first), "--catalogs", str(second), "sql", OURS, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [row["catalog"] for row in json.loads(result.stdout)] == ["a"]
    assert "b.toml" in result.stderr and "left out of liberacion.datasets" in result.stderr


def test_refs_are_completed_from_the_catalogs_loaded_only(two_dirs: tuple[Path, Path]) -> None:
    first, second = two_dirs
    assert complete("bash", f"liberacion --catalogs {second} show b/") == ["b/zebrafish-sightings"]
    assert complete("bash", f"liberacion --catalogs {first} show b/") == []
    assert complete("bash", f"liberacion --catalogs {first} fetch a/") == ["a/hospital-beds"]
