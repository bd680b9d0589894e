"""`search` ranks a whole word above a piece of one; `show` of an unreachable pointer says so on stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.manifests import write_catalog
from tests.server import LocalServer


def _item(i: int, title: str, keywords: list[str] | None = None) -> dict[str, Any]:
    return {
        "identifier": f"id-{i}",
        "title": title,
        "description": "d",
        "keyword": keywords or [],
        "distribution": [{"downloadURL": f"https://x.gov/{i}.csv", "mediaType": "text/csv"}],
    }


@pytest.fixture
def indexed(cli: Any, manifests: Path, http_server: LocalServer) -> Any:
    items = [
        _item(1, "Influenza Vaccination Coverage"),  # "flu" inside a word, shortest title
        _item(2, "Vaccines.gov: Flu Vaccinating Provider Locations"),  # "flu" as a word
        _item(3, "Medicaid Enrollments by State"),  # "men" inside a word
        _item(4, "Men's Health Survey by State"),
        _item(5, "Nursing homes", keywords=["influenza"]),  # a keyword: below any title hit
    ]
    write_catalog(manifests, "r", [("dcat-us", http_server.add("/r.json", json.dumps({"dataset": items})))])
    result = cli("discover", "r")
    assert result.exit_code == 0, result.stderr
    return cli


def _refs(cli: Any, *terms: str) -> list[str]:
    result = cli("search", *terms, "--catalog", "r", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return [row["ref"] for row in json.loads(result.stdout)]


def test_a_whole_word_ranks_above_a_piece_of_a_word(indexed: Any) -> None:
    assert _refs(indexed, "flu") == ["r/id-2", "r/id-1", "r/id-5"]
    assert _refs(indexed, "men") == ["r/id-4", "r/id-3"]
    assert _refs(indexed, "men", "state") == ["r/id-4", "r/id-3"]


def test_show_as_json_of_an_unreachable_pointer_says_why_on_stderr(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    down = http_server.url("/provider-data/api/1/metastore/schemas/dataset/items")  # nothing served there
    body = '\n[[dataset]]\nid = "beds"\ntitle = "Hospital beds"\nsource = "dkan"\nsource_id = "ab12-cd34"\n'
    write_catalog(manifests, "pdc", [("dkan", down)], body=body)
    for fmt in ("json", "table"):
        result = cli("show", "pdc/beds", "--format", fmt)
        assert result.exit_code == 1
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "404" in errors[0], result.stderr  # one line: what failed
    assert json.loads(cli("show", "pdc/beds", "--format", "json").stdout)["title"] == "Hospital beds"


def test_a_quoted_phrase_is_searched_as_a_phrase(cli: Any, manifests: Path, http_server: LocalServer) -> None:
    items = [
        _item(1, "Hospital Readmissions Reduction Program"),
        _item(2, "Readmissions after a hospital stay"),  # both words, not the phrase
        _item(3, "Unplanned Hospital Visits", keywords=["hospital readmissions"]),
    ]
    write_catalog(manifests, "q", [("dcat-us", http_server.add("/q.json", json.dumps({"dataset": items})))])
    assert cli("discover", "q").exit_code == 0
    result = cli("search", '"hospital readmissions"', "--catalog", "q", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [row["ref"] for row in json.loads(result.stdout)] == ["q/id-1", "q/id-3"]
    result = cli("search", '"hospital readmissions" program', "--catalog", "q", "--format", "json")
    assert [row["ref"] for row in json.loads(result.stdout)] == ["q/id-1"]
