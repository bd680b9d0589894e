"""A curated dataset edited in a manifest after `discover` is what every command uses at once:
`search` reads the manifest as it is now (without reading the listings), `show` and `fetch` too,
and `sql` says that liberacion.datasets still holds what the last discover saw."""

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
                    "keyword": ["listed"],
                    "publisher": {"name": "HHS"},
                    "distribution": [{"downloadURL": f"https://x.gov/{i}.csv", "mediaType": "text/csv"}],
                }
                for i, title in enumerate(titles)
            ]
        }
    )


def _curated(dataset_id: str, **fields: Any) -> str:
    lines = ["", "[[dataset]]", f'id = "{dataset_id}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def _search(cli: Any, *args: str) -> list[dict[str, Any]]:
    result = cli("search", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else []


def _discovered(cli: Any, manifests: Path, http_server: LocalServer, body: str) -> str:
    url = http_server.add("/a.json", _listing("Hospital beds", "Nursing homes"), content_type="application/json")
    write_catalog(manifests, "a", [("dcat-us", url)], body=body)
    result = cli("discover", "a")
    assert result.exit_code == 0, result.stderr
    return url


def test_every_field_of_a_curated_dataset_edited_after_discover_is_searched_as_edited(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    before = _curated(
        "picked", title="Picked by hand", description="Counts of ambulances", keywords=["paramedics"],
        url="https://x.gov/picked.csv",
    ) + _curated("beds", title="Beds counted", source_id="hospital-beds")  # fmt: skip
    url = _discovered(cli, manifests, http_server, before)
    assert [h["ref"] for h in _search(cli, "ambulances")] == ["a/picked"]
    after = _curated(
        "picked", title="Chosen with care", description="Counts of ferries", keywords=["boatmen"],
        url="https://x.gov/chosen.xlsx", format="xlsx",
    ) + _curated("beds", title="Bed census", keywords=["wards"], source_id="hospital-beds")  # fmt: skip
    after += _curated("added", title="Added later", url="https://x.gov/added.csv")
    write_catalog(manifests, "a", [("dcat-us", url)], body=after)

    for old in ("ambulances", "paramedics", "picked by hand", "beds counted"):
        assert _search(cli, old) == [], old
    for new in ("ferries", "boatmen", "chosen with care"):
        assert [(h["ref"], h["title"]) for h in _search(cli, new)] == [("a/picked", "Chosen with care")], new
    assert [h["formats"] for h in _search(cli, "chosen")] == ["xlsx"]
    # A pointer keeps what its listing says of the rest (publisher, files), as discover merges it.
    hits = _search(cli, "wards")
    assert [(h["ref"], h["title"], h["publisher"], h["formats"]) for h in hits] == [
        ("a/beds", "Bed census", "HHS", "csv")
    ]
    assert [h["ref"] for h in _search(cli, "added later")] == ["a/added"]
    shown = json.loads(cli("show", "a/picked", "--format", "json").stdout)
    assert (shown["title"], shown["fetch"]["files"]) == ("Chosen with care", ["https://x.gov/chosen.xlsx"])


def test_liberacion_datasets_holds_curated_datasets_as_the_manifest_has_them_now(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    before = _curated("hospital-beds", title="Beds by hand", url="https://x.gov/mine.csv")
    before += _curated("picked", title="Picked", url="https://x.gov/p.csv")
    before += _curated("beds", title="Beds", source_id="hospital-beds")
    url = _discovered(cli, manifests, http_server, before)
    after = _curated("chosen", title="Chosen with care", description="Ferries", url="https://x.gov/c.xlsx")
    after += _curated("beds", title="Bed census", source_id="nursing-homes")  # another of the listing's
    write_catalog(manifests, "a", [("dcat-us", url)], body=after)
    query = "select ref, title, curated, fetch_url, fetch_format from liberacion.datasets where catalog = 'a'"
    result = cli("sql", query, "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = {r.pop("ref"): r for r in json.loads(result.stdout)}
    assert rows == {
        "a/beds": {"title": "Bed census", "curated": True, "fetch_url": "https://x.gov/1.csv", "fetch_format": "csv"},
        "a/chosen": {
            "title": "Chosen with care", "curated": True, "fetch_url": "https://x.gov/c.xlsx", "fetch_format": "xlsx"
        },
        # No longer hidden by a curated dataset of its id: the listing's, as a discover would index it.
        "a/hospital-beds": {
            "title": "Hospital beds", "curated": False, "fetch_url": "https://x.gov/0.csv", "fetch_format": "csv"
        },
        "a/nursing-homes": {
            "title": "Nursing homes", "curated": False, "fetch_url": "https://x.gov/1.csv", "fetch_format": "csv"
        },
    }  # fmt: skip
    assert "discover" not in result.stderr
    # So in the sandbox, and in a home whose lake.duckdb holds the views of its tables.
    csv_file = manifests.parent / "t.csv"
    csv_file.write_text("a\n1\n", encoding="utf-8")
    assert cli("fetch", str(csv_file), "--as", "loc.t").exit_code == 0
    assert (manifests.parent / "home" / "lake.duckdb").is_file()
    result = cli("sql", "--safe", query, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert {r.pop("ref"): r for r in json.loads(result.stdout)} == rows
    # The same rows a discover writes.
    assert cli("discover", "a").exit_code == 0
    assert {r.pop("ref"): r for r in json.loads(cli("sql", query, "--format", "json").stdout)} == rows


def test_sql_says_listings_changed_since_the_last_discover(cli: Any, manifests: Path, http_server: LocalServer) -> None:
    _discovered(cli, manifests, http_server, "")
    other = http_server.add("/b.json", _listing("Zebrafish sightings"), content_type="application/json")
    write_catalog(manifests, "a", [("dcat-us", other)])
    result = cli("sql", "select ref from liberacion.datasets where catalog = 'a' order by 1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [r["ref"] for r in json.loads(result.stdout)] == ["a/hospital-beds", "a/nursing-homes"]
    assert "the manifest of a names other listings than its last discover read" in result.stderr
    assert "run: liberacion discover a" in result.stderr


def test_a_curated_dataset_removed_or_renamed_after_discover_is_gone_at_once(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    # `hospital-beds` shares its id with the listing's dataset: the curated one hides it.
    before = _curated("hospital-beds", title="Beds by hand", url="https://x.gov/mine.csv")
    before += _curated("picked", title="Picked by hand", url="https://x.gov/picked.csv")
    url = _discovered(cli, manifests, http_server, before)
    assert [h["title"] for h in _search(cli, "beds")] == ["Beds by hand"]
    renamed = _curated("chosen", title="Picked by hand", url="https://x.gov/picked.csv")
    write_catalog(manifests, "a", [("dcat-us", url)], body=renamed)

    assert [h["ref"] for h in _search(cli, "picked", "by", "hand")] == ["a/chosen"]
    assert "a/picked" not in [h["ref"] for h in _search(cli)]
    # The listing's own dataset of that id is offered again, as the listing has it.
    hits = _search(cli, "hospital", "beds")
    assert [(h["ref"], h["title"], h["formats"]) for h in hits] == [("a/hospital-beds", "Hospital beds", "csv")]
    result = cli("fetch", "a/picked")
    assert result.exit_code != 0, result.stderr
    assert f"a/picked is no longer a dataset of the manifest {manifests / 'a.toml'}" in result.stderr
    assert "no longer" in cli("show", "a/picked").stderr


def test_a_manifest_deleted_after_discover_takes_its_datasets_from_search(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    write_catalog(manifests, "z", body=_curated("other", url="https://x.gov/o.csv"))
    _discovered(cli, manifests, http_server, _curated("picked", title="Picked by hand", url="https://x.gov/p.csv"))
    (manifests / "a.toml").unlink()
    assert _search(cli, "picked") == []
    assert [h["ref"] for h in _search(cli, "nursing") if h["ref"].startswith("a/")] == []


def test_listings_edited_after_discover_are_said_at_search(cli: Any, manifests: Path, http_server: LocalServer) -> None:
    _discovered(cli, manifests, http_server, "")
    other = http_server.add("/b.json", _listing("Zebrafish sightings"), content_type="application/json")
    write_catalog(manifests, "a", [("dcat-us", other)])
    result = cli("search", "nursing", "--catalog", "a", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [h["ref"] for h in json.loads(result.stdout)] == ["a/nursing-homes"]  # the last discover's
    assert "the manifest of a names other listings than its last discover read" in result.stderr
    assert "run: liberacion discover a" in result.stderr
    # Another catalog's discover rebuilds the index without reading a's listings: still said.
    write_catalog(manifests, "z", body=_curated("other", url="https://x.gov/o.csv"))
    assert cli("discover", "z").exit_code == 0
    assert "names other listings" in cli("search", "nursing", "--catalog", "a").stderr


def test_completion_offers_a_curated_dataset_as_the_manifest_names_it_now(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    from tests.test_completion import complete

    before = _curated("hospital-beds", title="Beds by hand", url="https://x.gov/mine.csv")
    before += _curated("picked", title="Picked by hand", url="https://x.gov/picked.csv")
    url = _discovered(cli, manifests, http_server, before)
    assert complete("bash", "liberacion show a/p") == ["a/picked"]
    renamed = _curated("plucked", title="Picked by hand", url="https://x.gov/picked.csv")
    write_catalog(manifests, "a", [("dcat-us", url)], body=renamed)
    assert complete("bash", "liberacion show a/p") == ["a/plucked"]
    # The listing's dataset the removed curated one hid is offered, as search offers it.
    assert complete("bash", "liberacion fetch a/h") == ["a/hospital-beds"]
