"""Which file fetch takes, beyond format and period: never a document about the data (whatever its
format or year), a file marked current over an archive, and a tie between two files of one period
broken by the later evidence each carries, never by the listing's order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from liberacion.catalogs.adapters import parse_listing
from liberacion.resolve import choose_distributions
from tests.manifests import write_catalog
from tests.server import LocalServer

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _item(identifier: str, *distributions: dict[str, Any], title: str | None = None) -> dict[str, Any]:
    return {
        "identifier": f"https://example.gov/dataset/{identifier}",
        "title": title or identifier.replace("-", " "),
        "description": "d",
        "publisher": {"name": "HHS"},
        "distribution": list(distributions),
    }


LISTING = [
    _item(
        "hosp-quality",
        {"title": "Hospital quality 2023", "downloadURL": "https://x.gov/files/hosp_quality_2023.csv"},
        {
            "title": "Data Dictionary (2024 edition)",
            "downloadURL": "https://x.gov/files/hosp_quality_data_dictionary_2024.xlsx",
            "mediaType": XLSX,
        },
    ),
    _item(
        "current-plus-archive",
        {"title": "Current data", "downloadURL": "https://x.gov/files/current.csv", "mediaType": "text/csv"},
        {"title": "Archive 2019", "downloadURL": "https://x.gov/files/archive_2019.csv", "mediaType": "text/csv"},
        {"title": "Archive 2018", "downloadURL": "https://x.gov/files/archive_2018.csv", "mediaType": "text/csv"},
        title="Provider files",  # current and archive are the files' words, not the dataset's
    ),
    _item(
        "undated-and-archive",
        {"title": "Archive 2019", "downloadURL": "https://x.gov/files/archive_2019.csv", "mediaType": "text/csv"},
        {"title": "Provider data", "downloadURL": "https://x.gov/files/providers.csv", "mediaType": "text/csv"},
        title="Provider files",
    ),
    _item(
        "xlsx-data",
        {"title": "Provider data", "downloadURL": "https://x.gov/files/providers.xlsx", "mediaType": XLSX},
        {"title": "Record layout", "downloadURL": "https://x.gov/files/record_layout.csv", "mediaType": "text/csv"},
    ),
    _item(
        "documents-only",
        {"title": "Codebook", "downloadURL": "https://x.gov/files/codebook_2024.csv", "mediaType": "text/csv"},
        {"downloadURL": "https://x.gov/files/DataDictionary.xlsx", "mediaType": XLSX},
        {"title": "Methodology", "downloadURL": "https://x.gov/files/methods.pdf"},
    ),
    _item("pdf-only", {"title": "Methodology", "downloadURL": "https://x.gov/files/methods.pdf"}),
    # data.cms.gov: the 2021 release re-published under the title of the year before.
    _item(
        "title-tie-file-name",
        {
            "title": "Measure Rates - 2019",
            "downloadURL": "https://x.gov/sites/default/files/2020-09/Measure_Rates_-_2019.csv",
            "mediaType": "text/csv",
        },
        {
            "title": "Measure Rates - 2020",
            "downloadURL": "https://x.gov/sites/default/files/2020-09/Measure_Rates_-_2020.csv",
            "mediaType": "text/csv",
        },
        {
            "title": "Measures 2020",
            "downloadURL": "https://x.gov/sites/default/files/2021-09/60484f55-da92-4172-b00d-d8b5582eea44/MEASURE_FILE.csv",
            "mediaType": "text/csv",
        },
    ),
    _item(
        "title-tie-modified",
        {"title": "Rates 2020", "downloadURL": "https://x.gov/files/rates_a.csv", "modified": "2020-10-01"},
        {"title": "Rates 2020", "downloadURL": "https://x.gov/files/rates_b.csv", "modified": "2021-03-01"},
        {"title": "Rates 2019", "downloadURL": "https://x.gov/files/rates_c.csv", "modified": "2021-06-01"},
    ),
]


@pytest.fixture
def indexed(cli: Any, manifests: Path, http_server: LocalServer) -> Any:
    url = http_server.add("/choice.json", json.dumps({"dataset": LISTING}), content_type="application/json")
    write_catalog(manifests, "ch", [("dcat-us", url)])
    result = cli("discover", "ch")
    assert result.exit_code == 0, result.stderr
    return cli


def _taken(cli: Any) -> dict[str, tuple[str | None, str | None]]:
    """Each dataset's file name fetch would take, and why not when none."""
    query = "select id, fetch_url, why_not from liberacion.datasets where catalog = 'ch'"
    result = cli("sql", query, "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    return {r["id"]: (r["fetch_url"].rsplit("/", 1)[-1] if r["fetch_url"] else None, r["why_not"]) for r in rows}


def _reason(cli: Any, ref: str) -> str:
    result = cli("show", ref, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["fetch"]["reason"]


def test_a_document_is_never_the_data_whatever_its_format_or_year(indexed: Any) -> None:
    taken = _taken(indexed)
    assert taken["hosp-quality"] == ("hosp_quality_2023.csv", None)  # not the "2024" data dictionary
    assert taken["xlsx-data"] == ("providers.xlsx", None)  # a CSV record layout does not outrank data
    # Only document-looking data files: they are the data all the same (a PDF alone stays a document).
    assert taken["documents-only"] == ("codebook_2024.csv", None)
    assert taken["pdf-only"] == (None, "only documents")
    reason = _reason(indexed, "ch/xlsx-data")
    assert reason == "no CSV: the xlsx file; set aside as documents: record_layout.csv"


def test_a_file_marked_current_beats_an_archive_and_an_archive_loses_to_any_other(indexed: Any) -> None:
    taken = _taken(indexed)
    assert taken["current-plus-archive"] == ("current.csv", None)
    assert taken["undated-and-archive"] == ("providers.csv", None)
    assert "marked current" in _reason(indexed, "ch/current-plus-archive")


def test_a_tie_of_data_periods_goes_to_the_later_file_never_to_the_listing_order(indexed: Any) -> None:
    taken = _taken(indexed)
    # Both say 2020 in their titles; the second was filed in the 2021-09 upload folder.
    assert taken["title-tie-file-name"] == ("MEASURE_FILE.csv", None)
    assert taken["title-tie-modified"] == ("rates_b.csv", None)  # modified 2021-03, over 2020-10
    reason = _reason(indexed, "ch/title-tie-modified")
    assert reason == (
        "the CSV file; latest of 2 releases by data period (2020); "
        "of 2 such files, the latest by its file name, folder or dates (2021-03-01)"
    )


def test_a_manifest_url_is_taken_even_when_its_name_says_layout(cli: Any, manifests: Path) -> None:
    """A person chose it: the document rule is for listings."""
    body = '\n[[dataset]]\nid = "layout"\nurl = "https://x.gov/files/record_layout.csv"\n'
    write_catalog(manifests, "m", body=body)
    result = cli("show", "m/layout", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["fetch"]["files"] == ["https://x.gov/files/record_layout.csv"]
    # ... while the same file in a listing beside a data file is a document.
    listing = {
        "dataset": [
            _item(
                "l",
                {"downloadURL": "https://x.gov/files/record_layout.csv"},
                {"downloadURL": "https://x.gov/files/providers.xlsx", "mediaType": XLSX},
            )
        ]
    }
    (dataset,) = parse_listing("dcat-us", json.dumps(listing).encode(), "t")
    assert [f.url for f in choose_distributions(dataset)[0]] == ["https://x.gov/files/providers.xlsx"]


def test_real_healthdata_gov_2021_takes_the_2021_release_of_the_hac_measures(realdata: Path) -> None:
    """The 2021 file is titled "... Measures 2020"; the 2020 file is older (the 2020-09 folder)."""
    body = (realdata / "catalogs/data-cdc-gov-json-quality/2021-12-12/hhs.gov.data.json").read_bytes()
    dataset = {d.id: d for d in parse_listing("socrata", body, "t")}["01edb62e-5c45-4f43-8c91-16cba21cbb74"]
    files, reason = choose_distributions(dataset)
    assert [f.url.rsplit("/", 1)[-1] for f in files] == ["HAC_MEASURE_PROVIDER_FILE_2021.csv"]
    assert "2021-09/" in files[0].url and reason.endswith("(2021-12-31)")


# -- a document word in the dataset's own title, or inside another word -------------------------------


def _cms_item(title: str, *files: tuple[str, str]) -> dict[str, Any]:
    """data.cms.gov's way: every file's title is the dataset's title and a year."""
    return {
        "identifier": f"https://example.gov/dataset/{title.lower().replace(' ', '-')}",
        "title": title,
        "distribution": [{"title": t, "downloadURL": u, "mediaType": "text/csv"} for t, u in files],
    }


def _chosen(item: dict[str, Any]) -> list[str]:
    (dataset,) = parse_listing("dcat-us", json.dumps({"dataset": [item]}).encode(), "t")
    return [f.url.rsplit("/", 1)[-1] for f in choose_distributions(dataset)[0]]


def test_a_document_word_from_the_dataset_title_does_not_make_its_files_documents() -> None:
    title = "Comprehensive Error Rate Testing: Insufficient Documentation Error Rates"
    only = _cms_item(title, (f"{title} 2023", "https://x.gov/files/2024-05/CERT_Insufficient_Documentation_2023.csv"))
    assert _chosen(only) == ["CERT_Insufficient_Documentation_2023.csv"]
    stars = _cms_item(
        "Star Ratings Methodology Scores",
        ("Star Ratings Methodology Scores 2024", "https://x.gov/files/2024-05/star_scores_2024.csv"),
        ("Star Ratings Methodology Scores 2023", "https://x.gov/files/2023-05/star_scores_2023.csv"),
    )
    assert _chosen(stars) == ["star_scores_2024.csv"]
    # A document word of the file's own is still one: the dictionary is set aside beside the data.
    stars["distribution"].append(
        {"title": "Star Ratings Data Dictionary 2025", "downloadURL": "https://x.gov/files/dictionary_2025.csv"}
    )
    assert _chosen(stars) == ["star_scores_2024.csv"]


def test_a_document_word_inside_another_word_of_a_file_name_is_not_one() -> None:
    item = _item(
        "page-metrics",
        {"downloadURL": "https://x.gov/files/PageLayoutMetrics.csv", "mediaType": "text/csv"},
        {"downloadURL": "https://x.gov/files/PageLayoutMetrics.xlsx", "mediaType": XLSX},
        {"downloadURL": "https://x.gov/files/record_layout.csv", "mediaType": "text/csv"},
    )
    assert _chosen(item) == ["PageLayoutMetrics.csv"]  # the CSV of the data, not the record layout


# -- "current" and "latest" mark a release only as the file's own word ------------------------------


def test_current_in_the_dataset_title_marks_no_file_and_a_newer_dated_release_wins() -> None:
    title = "Medicare Current Beneficiary Survey - Survey File"
    item = _cms_item(
        title,
        (f"{title} : 2022-10-01", "https://x.gov/files/2024-10/SFPUF2022_Data.csv"),
        (title, "https://x.gov/files/2019-01/SFPUF_Data.csv"),
    )
    assert _chosen(item) == ["SFPUF2022_Data.csv"]
    item["distribution"].reverse()
    assert _chosen(item) == ["SFPUF2022_Data.csv"]


def test_latest_as_part_of_a_name_is_no_marker_of_the_release() -> None:
    item = _item(
        "changes",
        {"title": "Latest changes", "downloadURL": "https://x.gov/files/latest_changes.csv", "mediaType": "text/csv"},
        {"title": "2024", "downloadURL": "https://x.gov/files/2024.csv", "mediaType": "text/csv"},
        title="Provider enrollment",
    )
    assert _chosen(item) == ["2024.csv"]


def test_a_file_marked_current_loses_to_a_dated_release_newer_than_itself() -> None:
    def item(current_folder: str) -> dict[str, Any]:
        return _item(
            "current-upload",
            {"title": "Current data", "downloadURL": f"https://x.gov/files/{current_folder}/current.csv"},
            {"title": "Data 2022", "downloadURL": "https://x.gov/files/2024-10/data_2022.csv"},
            title="Provider enrollment",
        )

    assert _chosen(item("2019-01")) == ["data_2022.csv"]  # uploaded in 2019: older than the 2022 data
    assert _chosen(item("2025-02")) == ["current.csv"]  # uploaded after every dated release
