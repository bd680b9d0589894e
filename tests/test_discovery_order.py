"""A listing's order never decides which dataset a ref names, and a capped search is read whole.

Publishers reorder their listings between runs; when two records of one listing reduce to the same
id, a ref that went to "the first one" would switch datasets and `refresh` would put another
dataset's data into a table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from liberacion.catalogs.adapters import discover_source, parse_listing
from liberacion.catalogs.model import Dataset, Source
from liberacion.errors import SourceError
from tests.manifests import write_catalog
from tests.server import LocalServer

UUID = "c5acee93-1748-4fcf-8fcb-5c35f0336526"  # healthdata.gov 2021: _1, _2, _5_0... of one UUID


def _dcat(datasets: list[dict[str, Any]]) -> bytes:
    return json.dumps({"conformsTo": "https://project-open-data.cio.gov/v1.1/schema", "dataset": datasets}).encode()


def _item(identifier: Any, title: str, url: str) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "title": title,
        "accessLevel": "public",
        "modified": "2021-03-12",
        "distribution": [{"downloadURL": url, "mediaType": "text/csv"}],
    }


def _mapping(datasets: list[Dataset]) -> dict[str, tuple[str, list[str]]]:
    """id → (title, file URLs): what a ref means."""
    mapping = {d.id: (d.title, [f.url for f in d.distributions]) for d in datasets}
    assert len(mapping) == len(datasets), "two datasets share an id"
    return mapping


def _both_orders(kind: str, records: list[Any], wrap: Any) -> dict[str, tuple[str, list[str]]]:
    forward = _mapping(parse_listing(kind, wrap(records), "x"))
    backward = _mapping(parse_listing(kind, wrap(records[::-1]), "x"))
    assert forward == backward
    return forward


# -- ids -----------------------------------------------------------------------------------------


def test_suffixed_identifiers_of_one_uuid_keep_their_suffix_in_either_order() -> None:
    records = [
        _item(f"{UUID}_1", "Nursing staffing 2015", "https://files.example.gov/nursing.csv"),
        _item(f"{UUID}_2", "City population 2016", "https://files.example.gov/cities.csv"),
        _item(f"{UUID}_5_0", "Hospital beds 2019", "https://files.example.gov/beds.csv"),
        _item("0a1b2c3d-1111-2222-3333-444455556666", "Alone", "https://files.example.gov/alone.csv"),
    ]
    mapping = _both_orders("dcat-us", records, _dcat)
    assert mapping[f"{UUID}_1"][0] == "Nursing staffing 2015"
    assert mapping[f"{UUID}_2"][0] == "City population 2016"
    assert mapping[f"{UUID}_5_0"][0] == "Hospital beds 2019"
    assert UUID not in mapping  # the bare id is retired: no record has a better claim to it than another
    assert mapping["0a1b2c3d-1111-2222-3333-444455556666"][0] == "Alone"  # a unique id stays as it was


@pytest.mark.parametrize(
    ("kind", "records", "wrap"),
    [
        pytest.param(  # identifier URLs whose last meaningful segment is the same
            "dcat-us",
            [
                _item("https://a.example.gov/reports/data", "Reports of A", "https://a.example.gov/r.csv"),
                _item("https://b.example.gov/reports", "Reports of B", "https://b.example.gov/r.csv"),
            ],
            _dcat,
            id="url-slugs",
        ),
        pytest.param(  # one identifier, two titles: a publisher's mistake, still two datasets
            "dcat-us",
            [
                _item("report-7", "Report seven (counties)", "https://files.example.gov/7c.csv"),
                _item("report-7", "Report seven (states)", "https://files.example.gov/7s.csv"),
            ],
            _dcat,
            id="same-identifier",
        ),
        pytest.param(  # identifiers that differ only in what an id may not hold
            "dcat-us",
            [
                _item("Report 7", "Report seven A", "https://files.example.gov/a.csv"),
                _item("report-7", "Report seven B", "https://files.example.gov/b.csv"),
            ],
            _dcat,
            id="same-after-cleaning",
        ),
        pytest.param(  # two records on one Socrata view
            "socrata",
            [
                _item("https://data.example.gov/api/views/abcd-1234", "View", "https://x.gov/a.csv"),
                _item("https://data.example.gov/api/views/abcd-1234/rows", "View rows", "https://x.gov/b.csv"),
            ],
            _dcat,
            id="socrata-4x4",
        ),
        pytest.param(
            "dkan",
            [
                _item(f"{UUID}_1", "First", "https://files.example.gov/1.csv"),
                _item(f"{UUID}_2", "Second", "https://files.example.gov/2.csv"),
            ],
            lambda items: json.dumps(items).encode(),
            id="dkan",
        ),
        pytest.param(  # two slugs CKAN keeps apart and a safe id does not
            "ckan",
            [
                {"id": "p1", "name": "beds--2020", "title": "Beds A", "resources": [{"url": "https://f.gov/a.csv"}]},
                {"id": "p2", "name": "beds-2020", "title": "Beds B", "resources": [{"url": "https://f.gov/b.csv"}]},
            ],
            lambda packages: json.dumps({"result": {"count": 2, "results": packages}}).encode(),
            id="ckan-slugs",
        ),
    ],
)
def test_colliding_ids_are_resolved_from_the_records_not_their_order(kind: str, records: list[Any], wrap: Any) -> None:
    mapping = _both_orders(kind, records, wrap)
    assert len(mapping) == 2


def test_one_record_repeated_with_different_files_is_read_the_same_in_either_order() -> None:
    records = [
        _item("report-9", "Report nine", "https://files.example.gov/9-old.csv"),
        _item("report-9", "Report nine", "https://files.example.gov/9-new.csv"),
    ]
    records[1]["modified"] = "2024-01-01"  # the newer description of the one dataset
    mapping = _both_orders("dcat-us", records, _dcat)
    assert mapping == {"report-9": ("Report nine", ["https://files.example.gov/9-new.csv"])}


def test_the_real_healthdata_gov_listing_names_the_same_datasets_in_reverse(realdata: Path) -> None:
    path = realdata / "catalogs/data-cdc-gov-json-quality/2021-12-12/hhs.gov.data.json"
    doc = json.loads(path.read_bytes())
    forward = _mapping(parse_listing("socrata", json.dumps(doc).encode(), "hhs"))
    doc["dataset"].reverse()
    backward = _mapping(parse_listing("socrata", json.dumps(doc).encode(), "hhs"))
    assert forward == backward and len(forward) == 1786
    assert forward[f"{UUID}_2"][0] == "HHS Enterprise Data Inventory: 2015-11 HHS EDI JSON"  # hhs.json's first
    # Ids only one record derives are untouched: a Socrata 4x4, a bare UUID.
    assert forward["23cf-8ity"][0] == "COVID-19 State Profile Report - North Carolina"
    assert forward["f8610e87-ba25-43a3-a49e-927dbc8701ae"][0] == "Medicare Dialysis Facilities"


# -- through the front door ----------------------------------------------------------------------


def _refs(cli: Any) -> dict[str, str]:
    result = cli("sql", "select ref, title from liberacion.datasets where catalog = 'ord'", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return {row["ref"]: row["title"] for row in json.loads(result.stdout)}


def test_refresh_after_the_publisher_reorders_keeps_each_table_on_its_dataset(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    nursing = http_server.add("/nursing.csv", "state,nurses\nAL,10\n", content_type="text/csv")
    cities = http_server.add("/cities.csv", "city,population\nMobile,187000\n", content_type="text/csv")
    records = [_item(f"{UUID}_1", "Nursing staffing 2015", nursing), _item(f"{UUID}_2", "City population", cities)]
    url = http_server.add("/data.json", _dcat(records), content_type="application/json")
    write_catalog(manifests, "ord", [("dcat-us", url)])
    assert cli("discover", "ord").exit_code == 0
    before = _refs(cli)
    ref = next(ref for ref, title in before.items() if title == "Nursing staffing 2015")
    fetched = cli("fetch", ref, "--as", "ord.nursing")
    assert fetched.exit_code == 0, fetched.stderr

    http_server.add("/data.json", _dcat(records[::-1]), content_type="application/json")
    assert cli("discover", "ord").exit_code == 0
    refreshed = cli("refresh", "ord.nursing")
    assert refreshed.exit_code == 0, refreshed.stderr
    rows = cli("sql", "select * from ord.nursing", "--format", "json")
    assert json.loads(rows.stdout) == [{"state": "AL", "nurses": 10}]  # not the city populations
    assert _refs(cli) == before


# -- CKAN paging ---------------------------------------------------------------------------------


def _capped_ckan(
    server: LocalServer, total: int, cap: int, *, empty_from: int | None = None, ignore_start: bool = False
) -> str:
    """A package_search that answers at most ``cap`` rows whatever ``rows`` asks (as CKAN's rows_max
    does), and, from ``empty_from`` on, no packages although its count says more."""

    def handler(request: Any) -> None:
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(request.path).query)
        rows, start = min(int(query["rows"][0]), cap), 0 if ignore_start else int(query["start"][0])
        end = min(start + rows, total if empty_from is None or start < empty_from else start)
        packages = [
            {
                "id": f"uuid-{i}",
                "name": f"package-{i}",
                "title": f"Package {i}",
                "metadata_modified": f"2025-01-{1 + i % 28:02d}T00:00:00",
                "resources": [{"url": f"https://files.example.gov/{i}.csv", "format": "CSV"}],
            }
            for i in range(start, end)
        ]
        body = json.dumps({"success": True, "result": {"count": total, "results": packages}}).encode()
        request.send_error_body(200, body, "application/json")

    return server.add("/api/3/action/package_search", handler=handler)


def test_ckan_keeps_paging_when_the_server_caps_rows(http_server: LocalServer) -> None:
    url = _capped_ckan(http_server, total=250, cap=100)
    listing = discover_source(Source("ckan", url, {}), "datagov")  # asks for 1,000 a page
    assert len(listing.datasets) == 250 and not listing.notes and listing.etag
    starts = [r.path.split("start=")[1].split("&")[0] for r in http_server.hits("/api/3/action/package_search")]
    assert starts == ["0", "100", "200"]


def test_ckan_discover_through_the_cli_indexes_every_package_of_a_capped_search(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    write_catalog(manifests, "dg", [("ckan", _capped_ckan(http_server, total=250, cap=100))])
    result = cli("discover", "dg")
    assert result.exit_code == 0, result.stderr
    assert "250 datasets indexed" in result.stderr


def test_ckan_an_empty_page_before_the_count_ends_paging_and_says_so(http_server: LocalServer) -> None:
    url = _capped_ckan(http_server, total=250, cap=100, empty_from=200)
    listing = discover_source(Source("ckan", url, {}), "datagov")
    assert len(listing.datasets) == 200
    assert len(http_server.hits("/api/3/action/package_search")) == 3  # no loop on the empty page
    assert listing.notes and "200 of 250" in listing.notes[0]
    assert listing.etag is None  # not read whole: the next discover reads it again


def test_ckan_a_server_that_ignores_start_stops_paging_with_a_note_and_no_token(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    url = _capped_ckan(http_server, total=300, cap=100, ignore_start=True)
    listing = discover_source(Source("ckan", url, {}), "datagov")
    assert len(listing.datasets) == 100
    assert len(http_server.hits("/api/3/action/package_search")) == 2  # the repeat ends it
    assert listing.notes and "100 of 300 packages read" in listing.notes[0]
    assert listing.etag is None  # not read whole: the next discover reads it again
    write_catalog(manifests, "rep", [("ckan", url)])
    result = cli("discover", "rep")
    assert "100 datasets indexed" in result.stderr and "already sent" in result.stderr


# -- messages ------------------------------------------------------------------------------------


def test_invalid_json_message_reads_as_one_sentence() -> None:
    with pytest.raises(SourceError) as caught:
        parse_listing("dcat-us", b'{"dataset": [{"title": "unterminated', "x", url="http://127.0.0.1/data.json")
    message = str(caught.value)
    assert "invalid JSON (Unterminated string starting at line 1 column 24)" in message
    assert "at at" not in message
