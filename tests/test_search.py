"""`liberacion search` ranking and filters, and `liberacion show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from liberacion.lake import Lake
from liberacion.snapshots import Provenance
from tests.manifests import write_catalog
from tests.server import LocalServer


def _item(i: int, title: str, *, keywords: list[str] | None = None, description: str = "", **extra: Any) -> dict:
    return {
        "identifier": f"id-{i}",
        "title": title,
        "description": description,
        "keyword": keywords or [],
        "publisher": {"name": extra.pop("publisher", "Example Agency")},
        "distribution": extra.pop("distribution", [{"downloadURL": f"https://x.gov/{i}.csv", "mediaType": "text/csv"}]),
        **extra,
    }


@pytest.fixture
def indexed(cli: Any, manifests: Path, http_server: LocalServer) -> Any:
    items = [
        _item(1, "Hospital General Information Archive"),
        _item(2, "Nursing homes", keywords=["hospital general information"]),
        _item(3, "Dialysis facilities", description="Linked to hospital general information records."),
        _item(4, "Hospital General Information"),
        _item(5, "General Information about Hospitals"),
        _item(6, "Information, general, for a hospital"),
        _item(7, "Unrelated", description="hospital only"),
    ]
    http_server.add("/a.json", json.dumps({"dataset": items}))
    other = [
        _item(8, "Hospital capacity", publisher="Centers for Medicare & Medicaid Services"),
        _item(9, "Hospital zip files", distribution=[{"downloadURL": "https://x.gov/h.zip"}]),
    ]
    http_server.add("/b.json", json.dumps({"dataset": other}))
    write_catalog(manifests, "a", [("dcat-us", http_server.url("/a.json"))])
    write_catalog(manifests, "b", [("dcat-us", http_server.url("/b.json"))])
    result = cli("discover", "a", "b")
    assert result.exit_code == 0, result.stderr
    return cli


def _refs(cli: Any, *args: str) -> list[str]:
    result = cli("search", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return [row["ref"] for row in json.loads(result.stdout)]


def test_exact_title_first_then_title_then_keywords_then_descriptions(indexed: Any) -> None:
    refs = _refs(indexed, "hospital", "general", "information", "--catalog", "a")
    assert refs == [
        "a/id-4",  # the exact title
        "a/id-1",  # the phrase in the title
        "a/id-5",  # every word in the title (shorter title first)
        "a/id-6",
        "a/id-2",  # keywords
        "a/id-3",  # description
    ]  # a/id-7 lacks "general" and "information": every word must match somewhere


def test_filters_and_limit(indexed: Any) -> None:
    assert _refs(indexed, "hospital", "--catalog", "b", "--publisher", "medicare") == ["b/id-8"]
    assert _refs(indexed, "hospital", "--catalog", "b", "--format-of-data", "zip") == ["b/id-9"]
    assert len(_refs(indexed, "hospital", "--limit", "2")) == 2
    assert len(_refs(indexed, "hospital", "--catalog", "a", "--limit", "0")) == 7
    result = indexed("search", "hospital", "--catalog", "nosuch")
    assert result.exit_code == 3


def test_search_prints_ref_title_publisher_modified_formats(indexed: Any) -> None:
    result = indexed("search", "hospital", "capacity", "--catalog", "b", "--format", "csv")
    assert result.stdout.splitlines() == [
        "ref,title,publisher,modified,formats",
        "b/id-8,Hospital capacity,Centers for Medicare & Medicaid Services,,csv",
    ]


def test_no_match_says_so_on_stderr(indexed: Any) -> None:
    result = indexed("search", "zebra", "--format", "csv")
    assert result.exit_code == 0
    assert result.stdout == "ref,title,publisher,modified,formats\n"
    assert "no datasets match" in result.stderr


def test_curated_datasets_are_searchable_before_any_discover(cli: Any) -> None:
    assert _refs(cli, "Hospital", "General", "Information")[0] == "cms/hospital-general-information"
    assert _refs(cli, "leading", "causes", "of", "death")[0] == "cdc/leading-causes-of-death"
    assert "nhanes/p_bmx" in _refs(cli, "body", "measures", "--catalog", "nhanes", "--format-of-data", "xpt")


# -- show --------------------------------------------------------------------------------------


def test_show_tells_metadata_files_choice_and_lake_state(indexed: Any, home: Path) -> None:
    result = indexed("show", "a/id-4")
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)  # JSON when stdout is not a terminal
    assert shown["title"] == "Hospital General Information" and shown["publisher"] == "Example Agency"
    assert shown["distributions"][0]["url"] == "https://x.gov/4.csv"
    assert shown["fetch"] == {"files": ["https://x.gov/4.csv"], "reason": "the CSV file"}
    assert shown["lake"] == {"table": "a.id_4", "present": False}
    snapshot = Lake(home).publish("a.id_4", pa.table({"x": [1, 2]}), Provenance(source_url="https://x.gov/4.csv"))
    shown = json.loads(indexed("show", "a/id-4", "--format", "json").stdout)
    assert shown["lake"] == {
        "table": "a.id_4",
        "present": True,
        "snapshot": snapshot.id,
        "published_at": snapshot.published_at,
        "rows": 2,
    }


def test_show_as_a_table_for_people(indexed: Any) -> None:
    result = indexed("show", "b/id-9", "--format", "table")
    assert result.exit_code == 0
    assert "b/id-9" in result.stdout and "no CSV: the zip file" in result.stdout and "not fetched yet" in result.stdout


def test_show_an_unknown_dataset_points_to_search(indexed: Any) -> None:
    result = indexed("show", "a/hospital-beds")
    assert result.exit_code == 3
    assert "see: liberacion search hospital beds --catalog a" in result.stderr


def test_show_works_offline_from_the_manifest(cli: Any, manifests: Path, http_server: Any) -> None:
    down = http_server.url("/provider-data/api/1/metastore/schemas/dataset/items")  # nothing served there
    body = '\n[[dataset]]\nid = "beds"\ntitle = "Hospital beds"\nsource = "dkan"\nsource_id = "ab12-cd34"\n'
    write_catalog(manifests, "pdc", [("dkan", down)], body=body)
    result = cli("show", "pdc/beds", "--format", "json")
    assert result.exit_code == 1, result.stderr  # the document is whole; the lookup failed all the same
    doc = json.loads(result.stdout)
    assert doc["title"] == "Hospital beds" and "could not be looked up" in doc["fetch"]["reason"]
