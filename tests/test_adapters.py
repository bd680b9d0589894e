"""Each listing adapter against the real HHS files (when present) and small files of our own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from liberacion.catalogs.adapters import dataset_from_socrata_view, discover_source, load_json, parse_listing
from liberacion.catalogs.model import Source
from liberacion.errors import SourceError
from liberacion.resolve import choose_distributions
from tests.server import LocalServer


def _by_id(datasets: list[Any]) -> dict[str, Any]:
    return {d.id: d for d in datasets}


def _dcat(*datasets: dict[str, Any]) -> bytes:
    return json.dumps(
        {"conformsTo": "https://project-open-data.cio.gov/v1.1/schema", "dataset": list(datasets)}
    ).encode()


# -- DCAT-US 1.1 -------------------------------------------------------------------------------


def test_healthdata_gov_listing_is_parsed_with_socrata_ids_and_non_public_skipped(realdata: Path) -> None:
    path = realdata / "catalogs/data-cdc-gov-json-quality/2021-12-12/hhs.gov.data.json"
    raw = json.loads(path.read_bytes())["dataset"]
    public = [d for d in raw if d.get("accessLevel") == "public"]
    datasets = parse_listing("socrata", path.read_bytes(), "hhs")
    assert len(datasets) == len(public) == 1786  # 22 non-public / restricted records are skipped
    found = _by_id(datasets)
    deaths = found["bi63-dtpu"]  # NCHS leading causes of death, federated from data.cdc.gov
    assert deaths.title == "NCHS - Leading Causes of Death: United States"
    assert deaths.source_kind == "socrata"
    assert deaths.extra["socrata_domain"] == "https://data.cdc.gov"
    files, reason = choose_distributions(deaths)
    assert files[0].url == "https://data.cdc.gov/api/views/bi63-dtpu/rows.csv?accessType=DOWNLOAD"
    assert "bulk" in reason.lower()
    assert len({d.id for d in datasets}) == len(datasets)
    # HHS writes "&amp;" in names: display text is unescaped.
    assert not any("&amp;" in (d.publisher or "") + d.title for d in datasets)
    assert "U.S. Department of Health & Human Services" in {d.publisher for d in datasets}


def test_cms_data_json_groups_releases_and_picks_the_latest(realdata: Path) -> None:
    datasets = parse_listing("dcat-us", (realdata / "catalogs/gov-datajson-diff/cms.json").read_bytes(), "cms")
    assert len(datasets) == 139
    aco = _by_id(datasets)["9767cb68-8ea9-4f0b-8179-9431abc89f11"]  # the dataset UUID, not ".../data-viewer"
    assert aco.title == "Accountable Care Organization Participants"
    assert len({d.modified for d in aco.distributions if d.kind == "download"}) > 1  # many releases
    files, reason = choose_distributions(aco)
    assert [f.url.rsplit("/", 1)[1] for f in files] == ["PY2025_Medicare_Shared_Savings_Program_Participants.csv"]
    assert reason == "the CSV file; latest of 12 releases by data period (2025)"
    assert all(d.id != "data-viewer" for d in datasets)


def test_fda_data_json_with_odd_formats_parses(realdata: Path) -> None:
    datasets = parse_listing("dcat-us", (realdata / "catalogs/open.fda.gov/data.json").read_bytes(), "fda")
    assert len(datasets) == 86
    urls = [dist.url for d in datasets for dist in d.distributions]
    assert urls and all(u.startswith(("http://", "https://")) for u in urls)


def test_dcat_accepts_single_values_where_arrays_are_specified_and_drops_unsafe_urls() -> None:
    body = _dcat(
        {
            "identifier": "https://data.example.gov/datasets/asthma-prevalence",
            "title": "Asthma &amp; COPD prevalence",
            "keyword": "asthma",  # one string instead of an array
            "publisher": "State Health &amp; Human Services",  # a string instead of an object
            "accessLevel": "public",
            "distribution": {"downloadURL": "https://files.example.gov/asthma.csv", "mediaType": "text/csv"},
        },
        {
            "identifier": "evil",
            "title": "Evil links",
            "distribution": [
                {"downloadURL": "file:///etc/passwd", "mediaType": "text/csv"},
                {"downloadURL": "javascript:alert(1)"},
                {"accessURL": "https://example.gov/landing", "mediaType": "text/html"},
            ],
        },
        {"identifier": "secret", "title": "Restricted", "accessLevel": "non-public"},
        {"identifier": "../../../etc/Pass Wd", "title": "Odd id"},
    )
    found = _by_id(parse_listing("dcat-us", body, "t"))
    asthma = found["asthma-prevalence"]
    assert asthma.title == "Asthma & COPD prevalence"
    assert asthma.keywords == ["asthma"]
    assert asthma.publisher == "State Health & Human Services"
    assert asthma.distributions[0].format == "csv"
    evil = found["evil"]
    assert [d.url for d in evil.distributions] == ["https://example.gov/landing"]
    with pytest.raises(Exception, match="no downloadable data file"):
        choose_distributions(evil)  # a landing page is never a data file
    assert "secret" not in found
    assert "etc-pass-wd" in found  # no "/" or ".." survive in an id


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        ("dcatus3_0.json", {"one", "two", "three", "ncdc-climate-obs-2024"}),
        ("dcatus3_0_series_with_members.json", {"annual-report-2023", "annual-report-2024"}),
        ("dcatus3_0_nested_catalog.json", {"nested-parent", "nested-child", "nested-grandchild"}),
        ("dcatus3_0_service_serves_dataset.json", {"served-by-service-one"}),
    ],
)
def test_dcat_us_3_0_examples(realdata: Path, name: str, ids: set[str]) -> None:
    body = (realdata / "catalogs/dcat-us-3.0-examples" / name).read_bytes()
    datasets = parse_listing("dcat-us", body, "ex")
    assert {d.id for d in datasets} == ids
    assert all(d.publisher == "Test Agency" for d in datasets)


def test_dcat_us_3_0_distribution_fields() -> None:
    body = json.dumps(
        {
            "conformsTo": {"@type": "Standard", "identifier": "https://resources.data.gov/dcat-us/3.0.0"},
            "dataset": [
                {
                    "identifier": {"@type": "Identifier", "@id": "https://example.gov/datasets/flu"},
                    "title": "Flu",
                    "landingPage": {"@type": "Document", "accessURL": "https://example.gov/flu"},
                    "distribution": [
                        {"downloadURL": "https://example.gov/flu.zip", "mediaType": "application/zip", "byteSize": 1234}
                    ],
                }
            ],
        }
    ).encode()
    (flu,) = parse_listing("dcat-us", body, "ex")
    assert flu.id == "flu" and flu.landing_page == "https://example.gov/flu"
    assert flu.distributions[0].byte_size == 1234 and flu.distributions[0].format == "zip"


# -- DKAN --------------------------------------------------------------------------------------


def test_dkan_metastore_array(realdata: Path) -> None:
    datasets = parse_listing("dkan", (realdata / "catalogs/providertwo/provider.json").read_bytes(), "cms")
    assert len(datasets) == 228
    hospital = _by_id(datasets)["xubh-q36u"]
    assert hospital.title == "Hospital General Information"
    assert hospital.source_kind == "dkan"
    assert hospital.change_token == "893c372430d9d71a1c52737d01239d47_1753409109"  # changes every refresh
    assert hospital.extra["released"] == "2025-08-06"
    assert choose_distributions(hospital)[0][0].url.endswith("/Hospital_General_Information.csv")


def test_dkan_refuses_an_object() -> None:
    with pytest.raises(SourceError, match="JSON array"):
        parse_listing("dkan", _dcat({"identifier": "x", "title": "x"}), "cms")


# -- openFDA -----------------------------------------------------------------------------------

OPENFDA = {
    "meta": {"disclaimer": "...", "last_updated": "2026-08-10"},
    "results": {
        "drug": {
            "enforcement": {
                "total_records": 17000,
                "export_date": "2026-08-10",
                "partitions": [
                    {
                        "display_name": "All (part 1 of 1)",
                        "file": "https://download.example.gov/drug/enforcement/drug-enforcement-0001-of-0001.json.zip",
                        "size_mb": "9.78",
                        "records": 17000,
                    }
                ],
            },
            "event": {
                "total_records": 3,
                "export_date": "2026-08-09",
                "partitions": [
                    {
                        "display_name": "2004 Q1 (part 1 of 2)",
                        "file": "https://d.example.gov/drug/event/2004q1/drug-event-0001-of-0002.json.zip",
                        "size_mb": 197.4,
                        "records": 2,
                    },
                    {
                        "display_name": "2004 Q1 (part 2 of 2)",
                        "file": "https://d.example.gov/drug/event/2004q1/drug-event-0002-of-0002.json.zip",
                        "size_mb": "1.5",
                        "records": 1,
                    },
                    {"display_name": "bad", "file": "ftp://d.example.gov/x.json.zip"},
                ],
            },
        },
        "device": {"classification": {"export_date": "2026-08-01", "partitions": []}},
    },
}


def test_openfda_download_json_one_dataset_per_endpoint_partitions_as_files() -> None:
    found = _by_id(parse_listing("openfda", json.dumps(OPENFDA).encode(), "openfda"))
    assert set(found) == {"drug-enforcement", "drug-event"}  # an endpoint without partitions has no files
    event = found["drug-event"]
    assert event.change_token == event.modified == "2026-08-09"
    assert [d.byte_size for d in event.distributions] == [197_400_000, 1_500_000]
    files, reason = choose_distributions(event)
    assert len(files) == 2 and "2 partition" in reason and "2026-08-09" in reason
    assert found["drug-enforcement"].extra["endpoint"] == "drug/enforcement"


def test_openfda_documented_excerpt(realdata: Path) -> None:
    (event,) = parse_listing("openfda", (realdata / "fda/open.fda.gov/_examples.json").read_bytes(), "openfda")
    assert event.id == "device-event"
    assert len(event.distributions) == 2  # the {"…": "…"} placeholder is skipped
    assert event.change_token == "2015-12-19"


# -- Socrata view metadata ---------------------------------------------------------------------


def test_socrata_view_metadata(realdata: Path) -> None:
    view = json.loads((realdata / "socrata/is477-fa24-PHS/cdc.json").read_bytes())["meta"]["view"]
    dataset = dataset_from_socrata_view(view, "cdc", "https://data.example.gov")
    assert dataset.id == "pwn4-m3yp"
    assert dataset.change_token == "1685653111"  # rowsUpdatedAt
    assert dataset.modified == "2023-06-01T20:58:31Z"
    fields = [c["field_name"] for c in dataset.extra["columns"]]
    assert "state" in fields and not any(f.startswith(":") for f in fields)  # hidden system columns dropped
    assert dataset.distributions[0].url == "https://data.example.gov/api/views/pwn4-m3yp/rows.csv?accessType=DOWNLOAD"


# -- CKAN --------------------------------------------------------------------------------------


def _package(i: int) -> dict[str, Any]:
    return {
        "id": f"uuid-{i}",
        "name": f"package-{i}",
        "title": f"Package {i}",
        "notes": "Notes &amp; more",
        "organization": {"name": "hhs-gov", "title": "U.S. Department of Health & Human Services"},
        "tags": [{"name": "health"}],
        "extras": [{"key": "modified", "value": "2025-01-15"}, {"key": "accessLevel", "value": "public"}],
        "resources": [
            {"url": f"https://files.example.gov/{i}.csv", "format": "CSV", "mimetype": "text/csv"},
            {"url": f"https://api.example.gov/{i}", "format": "API"},
        ],
    }


def _ckan_server(server: LocalServer, total: int) -> str:
    def handler(request: Any) -> None:
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(request.path).query)
        rows, start = int(query["rows"][0]), int(query["start"][0])
        packages = [_package(i) for i in range(start, min(start + rows, total))]
        body = json.dumps({"success": True, "result": {"count": total, "results": packages}}).encode()
        request.send_error_body(200, body, "application/json")

    return server.add("/api/3/action/package_search", handler=handler) + "?fq=organization%3Ahhs-gov"


def test_ckan_package_search_pages_until_done(http_server: LocalServer) -> None:
    url = _ckan_server(http_server, total=25)
    listing = discover_source(Source("ckan", url, {"rows": 10}), "datagov")
    assert len(listing.datasets) == 25 and not listing.notes
    starts = [r.path.split("start=")[1].split("&")[0] for r in http_server.hits("/api/3/action/package_search")]
    assert starts == ["0", "10", "20"]
    assert all("fq=organization" in r.path for r in http_server.requests)  # the manifest's query is kept
    package = _by_id(listing.datasets)["package-3"]
    assert package.description == "Notes & more" and package.modified == "2025-01-15"
    assert [(d.format, d.kind) for d in package.distributions] == [("csv", "download"), ("api", "access")]


def test_ckan_stops_at_the_page_cap(http_server: LocalServer) -> None:
    url = _ckan_server(http_server, total=1000)
    listing = discover_source(Source("ckan", url, {"rows": 10, "max_pages": 3}), "datagov")
    assert len(listing.datasets) == 30
    assert len(http_server.hits("/api/3/action/package_search")) == 3
    assert "page cap" in listing.notes[0]


def test_ckan_real_package_from_healthdata_gov(realdata: Path) -> None:
    show = json.loads((realdata / "socrata/delphi-epidata-covid_hosp/common/metadata.json").read_bytes())
    answer = {"success": True, "result": {"count": 1, "results": show["result"]}}
    (dataset,) = parse_listing("ckan", json.dumps(answer).encode(), "healthdata")
    assert dataset.id == "covid-19-estimated-patient-impact-and-hospital-capacity-state"
    assert dataset.publisher == "U.S. Department of Health & Human Services"
    assert dataset.keywords == ["Covid", "Covid-19", "Covid19"]
    assert choose_distributions(dataset)[0][0].url.endswith("estimated_inpatient_all_20201213_1757.csv")
    # Its notes are HTML and its date Drupal's "Sun, 12/13/2020 - 22:40": plain text, and an ISO
    # time the index sorts by (the change token stays as published).
    assert dataset.description is not None and "<" not in dataset.description
    assert dataset.description.startswith("The following dataset provides")
    assert dataset.modified == "2020-12-13T22:40:00"
    assert dataset.change_token == "Sun, 12/13/2020 - 22:40"


# -- bodies that are not listings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<!DOCTYPE html><html><body>Access Denied</body></html>", "HTML page"),
        (b'{"error": true, "message": "Dataset not found"}', "error: Dataset not found"),
        (b'{"error": {"code": "NOT_FOUND", "message": "No matches found!"}}', "No matches found!"),
        (b'{"dataset": [', "invalid JSON"),
        (b"", "empty response"),
        (b'{"conformsTo": "x", "dataset": []}', "no public datasets"),
        (b'{"hello": "world"}', "no public datasets"),
        (b"[1, 2, 3]", "expected a DCAT-US catalog"),
    ],
)
def test_bodies_that_are_not_listings_fail_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_listing("dcat-us", body, "x", url="http://127.0.0.1/data.json")


def test_bom_and_cp1252_bodies_decode() -> None:
    listing = _dcat({"identifier": "a", "title": "Caf\u00e9"})
    assert parse_listing("dcat-us", b"\xef\xbb\xbf" + listing, "x")[0].title == "Café"
    assert load_json('{"t": "Caf\u00e9"}'.encode("cp1252"), url="x") == {"t": "Café"}


def test_display_text_has_no_tags_and_no_invisible_characters() -> None:
    item = {
        "identifier": "a",
        "title": "Severe acute respiratory\u200b\u200b syndrome",
        "description": "Counts for children <5 years; see <a href='x'>the notes</a>.",
        "modified": "12/13/2020",
    }
    (dataset,) = parse_listing("dcat-us", _dcat(item), "x")
    assert dataset.title == "Severe acute respiratory syndrome"
    assert dataset.description == "Counts for children <5 years; see the notes."
    assert (dataset.modified, dataset.change_token) == ("2020-12-13", "12/13/2020")
