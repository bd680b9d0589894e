"""Which file of a dataset is its data: the newest release by data period, never a document or a
page, files named in accessURL, URLs joined by a comma. Small inline listings for each rule, then
the examples from the real HHS listings (skipped when ../shared/realdata is absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from liberacion.catalogs.adapters import parse_listing
from liberacion.catalogs.model import Dataset, Distribution, choose_files, data_period, period_in_text
from liberacion.errors import NotFound
from liberacion.resolve import choose_distributions


def _dataset(*distributions: dict[str, Any], **fields: Any) -> Dataset:
    """One DCAT-US dataset with these distributions, through the real parser."""
    item = {"identifier": "https://data.example.gov/id/d1", "title": "D", "distribution": list(distributions)}
    body = json.dumps({"dataset": [{**item, **fields}]}).encode()
    (dataset,) = parse_listing("dcat-us", body, "t")
    return dataset


def _names(files: list[Distribution]) -> list[str]:
    return [f.url.rsplit("/", 1)[-1] for f in files]


# -- the newest data period --------------------------------------------------------------------


def test_the_data_period_beats_a_newer_modified_date() -> None:
    """data.cms.gov re-publishes old years: their ``modified`` is newer than the latest year's."""
    dataset = _dataset(
        {
            "downloadURL": "https://data.example.gov/files/2024-06/a1/D22.csv",
            "mediaType": "text/csv",
            "modified": "2024-06-04",
            "temporal": "2022-01-01/2022-12-31",
        },
        {
            "downloadURL": "https://data.example.gov/files/2024-06/b2/D19.csv",
            "mediaType": "text/csv",
            "modified": "2024-06-07",
            "temporal": "2019-01-01/2019-12-31",
        },
    )
    files, reason = choose_distributions(dataset)
    assert _names(files) == ["D22.csv"]
    assert reason == "the CSV file; latest of 2 releases by data period (2022)"


def test_the_date_in_a_data_cms_gov_title() -> None:
    dataset = _dataset(
        {"downloadURL": "https://x.gov/a.csv", "title": "Dialysis : 2022-12-31", "modified": "2024-09-06"},
        {"downloadURL": "https://x.gov/b.csv", "title": "Dialysis : 2023-12-31", "modified": "2023-03-06"},
    )
    files, reason = choose_distributions(dataset)
    assert _names(files) == ["b.csv"] and reason.endswith("by data period (2023-12-31)")


def test_modified_decides_only_when_no_data_period_does() -> None:
    dataset = _dataset(
        {"downloadURL": "https://x.gov/old.csv", "modified": "2020-01-01"},
        {"downloadURL": "https://x.gov/new.csv", "modified": "2021-05-01"},
    )
    files, reason = choose_distributions(dataset)
    assert _names(files) == ["new.csv"] and reason.endswith("latest of 2 releases by modified date (2021-05-01)")


def test_a_tie_that_no_date_breaks_goes_by_url_text_never_by_listing_order() -> None:
    files = [
        {"downloadURL": "https://x.gov/first_2021.csv"},
        {"downloadURL": "https://x.gov/second_2021.csv"},
        {"downloadURL": "https://x.gov/older_2019.csv"},
    ]
    for order in (files, files[::-1]):
        chosen, reason = choose_distributions(_dataset(*order))
        assert _names(chosen) == ["second_2021.csv"]
        assert reason.endswith("of 2 such files, the last by URL (no date tells them apart)")


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("SSP_ACO_Participants_2016_01_01", ((2016, 1, 1), "2016-01-01")),
        ("COVID-19 Nursing Home Data 11.28.2021", ((2021, 11, 28), "2021-11-28")),
        ("COVID-19 Nursing Home Data Dec 29 2024", ((2024, 12, 29), "2024-12-29")),
        ("Provider of Services File - Clinical Laboratories Dataset 2021 Q3", ((2021, 9, 30), "2021 Q3")),
        ("Provider of Services - Clinical Labs - Q4 2019", ((2019, 12, 31), "2019 Q4")),
        ("Provider of Services File CLIA Data June 2020", ((2020, 6, 30), "2020-06")),
        ("POS Clinical Labs Data MAR20", ((2020, 3, 31), "2020-03")),
        ("dfr_facility_socrata_fy2024", ((2024, 12, 31), "FY2024")),
        ("PY2025_Medicare_Shared_Savings_Program_Participants", ((2025, 12, 31), "PY2025")),
        ("Receipts by Fiscal Year 2009-2010", ((2010, 12, 31), "2010")),
        ("CPS_MDCR_SNF_1-5 2019", ((2019, 12, 31), "2019")),  # "1-5" is a range of tables, not a date
        ("2007 STATE WDDSE_20200819", ((2007, 12, 31), "2007")),  # 20200819 is when the file was made
        ("2087df69-afb4-43ed-b50a-cd13c7a46d9a", None),  # a UUID
        ("f7fefddf238c49eaafa507cb0e0a0d2c2019", None),  # a hash
        ("COVID-19 Nursing Home Data 06 27 21", None),  # "%2027%2021" once decoded
        ("Data 1989", None),  # before 1990
        ("Data 2999", None),  # after next year
        ("Report2019A", None),  # not a whole token
    ],
)
def test_periods_are_read_from_whole_tokens_only(text: str, period: Any) -> None:
    assert period_in_text(text) == period


def test_never_a_year_from_an_upload_folder_a_uuid_or_url_encoding() -> None:
    folder = Distribution("https://data.cms.gov/sites/default/files/2021-01/POS_CLIA_DEC10.csv", format="csv")
    assert data_period(folder) == ((2010, 12, 31), "2010-12")
    uuid = Distribution("https://data.cms.gov/files/2021-11/2087df69-afb4-43ed-b50a-cd13c7a46d9a/SSP.csv")
    assert data_period(uuid) is None
    encoded = Distribution("https://data.cms.gov/files/2021-07/COVID-19%20Nursing%20Home%20Data%2006%2027%2021.zip")
    assert data_period(encoded) is None


# -- what is data ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("distribution", "why_not"),
    [
        ({"downloadURL": "https://x.gov/dictionary.pdf"}, "only documents"),
        (
            {
                "downloadURL": "https://data.cdc.gov/download/dkmg-ggf9/application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "mediaType": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            },
            "only documents",
        ),
        ({"downloadURL": "https://x.gov/slides.pptx"}, "only documents"),
        ({"downloadURL": "https://x.gov/chart.png", "mediaType": "image/png"}, "only documents"),
        (
            {"downloadURL": "https://x.gov/scripts/search.cfm", "mediaType": "application/vnd.ms-excel"},
            "only a landing page",
        ),
        ({"downloadURL": "https://x.gov/page", "mediaType": "application/html"}, "only a landing page"),
        ({"downloadURL": "https://x.gov/default.aspx"}, "only a landing page"),
        ({"downloadURL": "https://x.gov/tool.php", "mediaType": "text/csv"}, "only a landing page"),
        ({"downloadURL": "https://x.gov/feeds/rss.xml", "mediaType": "application/rss+xml"}, "only a landing page"),
        (
            {"downloadURL": "https://findahealthcenter.example.gov", "mediaType": "application/unknown"},
            "only a landing page",
        ),
        ({"downloadURL": "http://open.example.gov/data.json", "mediaType": "application/json"}, "only a landing page"),
        ({"accessURL": "https://x.gov/landing"}, "only a landing page"),
        ({"accessURL": "https://x.gov/services/registration", "format": "API"}, "API only"),
        ({"downloadURL": "https://x.gov/places.kml"}, "unsupported format"),
        ({"downloadURL": "https://x.gov/recalls.xml", "mediaType": "application/xml"}, "unsupported format"),
        ({"downloadURL": "javascript:alert(1)"}, "no distribution"),
    ],
)
def test_documents_pages_feeds_and_catalogs_are_never_data(distribution: dict[str, Any], why_not: str) -> None:
    dataset = _dataset(distribution)
    choice = choose_files(dataset)
    assert not choice.fetchable and choice.why_not == why_not
    with pytest.raises(NotFound, match=why_not):
        choose_distributions(dataset)


def test_a_data_file_is_taken_over_documents_and_pages() -> None:
    dataset = _dataset(
        {"downloadURL": "https://x.gov/deck.pptx"},
        {"downloadURL": "https://x.gov/feed/rss.xml", "mediaType": "application/rss+xml"},
        {"downloadURL": "https://x.gov/index.cfm"},
        {"downloadURL": "https://x.gov/data.zip", "mediaType": "application/zip"},
    )
    files, reason = choose_distributions(dataset)
    assert _names(files) == ["data.zip"] and reason == "no CSV: the zip file"


def test_two_urls_joined_by_a_comma_are_split_and_judged_apart() -> None:
    dataset = _dataset(
        {
            "downloadURL": "https://dash.example.gov/data/REC_KPI_State.csv,https://dash.example.gov/pages/FIG-REC.php",
            "mediaType": "text/csv",
        }
    )
    assert [(d.url, d.format) for d in dataset.distributions] == [
        ("https://dash.example.gov/data/REC_KPI_State.csv", "csv"),
        ("https://dash.example.gov/pages/FIG-REC.php", "html"),
    ]
    assert _names(choose_distributions(dataset)[0]) == ["REC_KPI_State.csv"]
    spaced = _dataset({"downloadURL": "https://x.gov/a.csv  https://x.gov/b.pdf"})
    assert [d.format for d in spaced.distributions] == ["csv", "pdf"]


def test_a_file_in_access_url_is_a_candidate_when_no_better_download_is_listed() -> None:
    """Old DKAN-era HealthData.gov listings put the file itself in accessURL."""
    dkan = _dataset(
        {"accessURL": "https://healthdata.example.gov/sites/default/files/beds.csv", "mediaType": "text/csv"}
    )
    files, reason = choose_distributions(dkan)
    assert _names(files) == ["beds.csv"] and "accessURL" in reason
    both = _dataset(
        {"downloadURL": "https://x.gov/list.xml", "accessURL": "https://x.gov/list.xls", "mediaType": "application/xml"}
    )
    assert _names(choose_distributions(both)[0]) == ["list.xls"]  # XML is no data format; XLS is
    better = _dataset({"downloadURL": "https://x.gov/beds.csv"}, {"accessURL": "https://x.gov/beds.xlsx"})
    assert _names(choose_distributions(better)[0]) == ["beds.csv"]
    page = _dataset({"accessURL": "https://x.gov/beds", "mediaType": "text/csv"})  # no file name: a page
    assert choose_files(page).why_not == "only a landing page"


@pytest.mark.parametrize("extension", ["xls", "ods", "sas7bdat", "dta", "sav", "parquet"])
def test_legacy_and_binary_formats_are_data_after_csv_like_text(extension: str) -> None:
    alone = _dataset({"downloadURL": f"https://x.gov/table.{extension}"})
    assert _names(choose_distributions(alone)[0]) == [f"table.{extension}"]
    with_text = _dataset(
        {"downloadURL": f"https://x.gov/table.{extension}"}, {"downloadURL": "https://x.gov/table.txt"}
    )
    assert _names(choose_distributions(with_text)[0]) == ["table.txt"]


# -- the real listings -------------------------------------------------------------------------

CMS = "catalogs/gov-datajson-diff/cms.json"
HHS_2021 = "catalogs/data-cdc-gov-json-quality/2021-12-12/hhs.gov.data.json"
FDA = "catalogs/open.fda.gov/data.json"


def _listing(realdata: Path, path: str, kind: str = "dcat-us") -> dict[str, Dataset]:
    return {d.id: d for d in parse_listing(kind, (realdata / path).read_bytes(), "t")}


@pytest.mark.parametrize(
    ("dataset_id", "file_name", "period"),
    [
        ("8889d81e-2ee7-448f-8713-f071038289b5", "MUP_PHY_R24_P07_V10_D22_Prov.csv", "2022"),  # not 2019
        ("f8610e87-ba25-43a3-a49e-927dbc8701ae", "dfr_facility_socrata_fy2024.csv", "2024"),  # not FY2021
        ("c3e8e9c3-5193-47fb-a5bb-d3ddb00e7197", "Value_Modifier_PUF_Performance_Year_2016.csv", "2016"),
        ("9767cb68-8ea9-4f0b-8179-9431abc89f11", "PY2025_Medicare_Shared_Savings_Program_Participants.csv", "2025"),
    ],
)
def test_cms_data_json_takes_the_newest_data_year(realdata: Path, dataset_id: str, file_name: str, period: str) -> None:
    files, reason = choose_distributions(_listing(realdata, CMS)[dataset_id])
    assert _names(files) == [file_name]
    assert reason.endswith(f"by data period ({period})")


def test_cms_durable_medical_equipment_takes_2022_not_2021(realdata: Path) -> None:
    dme = [d for d in _listing(realdata, CMS).values() if d.title.startswith("Medicare Durable Medical Equipment")]
    assert len(dme) >= 2
    for dataset in dme:
        files, reason = choose_distributions(dataset)
        assert "_dy22_" in files[0].url.lower() and reason.endswith("(2022)"), dataset.title


@pytest.mark.parametrize(
    ("dataset_id", "file_name"),
    [
        # The UUID folder 2087df69-... is not the year 2087.
        ("9767cb68-8ea9-4f0b-8179-9431abc89f11", "SSP_ACO_Participants_2021_01_01.csv"),
        # "%2027%2021" is not 2027: the newest weekly file.
        ("137f90cb-ac53-4b3d-8358-e65cf64e03d3", "COVID-19%20Nursing%20Home%20Data%2011.28.2021.csv"),
        # The upload folder /2021-01/ is not the data year of POS_CLIA_DEC10.csv.
        ("d3eb38ac-d8e9-40d3-b7b7-6205d3d1dc16", "POS_CLIA_SEP21.csv"),
        ("f8610e87-ba25-43a3-a49e-927dbc8701ae", "FY_2021_Facility_Level_Dialysis_Facility_Reports.csv"),
    ],
)
def test_healthdata_gov_2021_takes_the_newest_release(realdata: Path, dataset_id: str, file_name: str) -> None:
    files, _ = choose_distributions(_listing(realdata, HHS_2021, "socrata")[dataset_id])
    assert _names(files) == [file_name]


@pytest.mark.parametrize(
    ("path", "dataset_id", "why_not"),
    [
        (HHS_2021, "6wg8-s245", "only documents"),  # PowerPoint slides
        (HHS_2021, "dkmg-ggf9", "only documents"),  # the "Codebook Word"
        (HHS_2021, "82319f7a-9d6e-4b9e-b67f-cf8ff1a4980e", "only a landing page"),  # rss.xml
        (FDA, "82319f7a-9d6e-4b9e-b67f-cf8ff1a4980e", "only a landing page"),
        (HHS_2021, "518e9015-b51d-40d1-9fe5-dd1befdb8d8c", "API only"),  # a bare domain and an API
        (HHS_2021, "38fda70b-9734-4df0-ada6-897455bb7f7b", "only a landing page"),  # the catalog's data.json
        (FDA, "38fda70b-9734-4df0-ada6-897455bb7f7b", "only a landing page"),
    ],
)
def test_real_documents_pages_and_catalogs_are_not_data(
    realdata: Path, path: str, dataset_id: str, why_not: str
) -> None:
    kind = "socrata" if path == HHS_2021 else "dcat-us"
    choice = choose_files(_listing(realdata, path, kind)[dataset_id])
    assert not choice.fetchable and choice.why_not == why_not


def test_real_comma_joined_download_url_is_split(realdata: Path) -> None:
    dataset = _listing(realdata, HHS_2021, "socrata")["zyaifc3t-i181-2wnr-j3fu-j6qo40bbttxx"]
    assert [d.format for d in dataset.distributions] == ["csv", "html"]
    files, reason = choose_distributions(dataset)
    assert [f.url for f in files] == ["https://dashboard.healthit.gov/datadashboard/data/REC_KPI_State.csv"]
    assert reason == "the CSV file"


def test_real_file_named_in_access_url(realdata: Path) -> None:
    """FDA lists an XML download and names the XLS of the same list in accessURL."""
    dataset = _listing(realdata, FDA)["8b366073-48df-4c87-9120-9878f4875373"]
    files, reason = choose_distributions(dataset)
    assert _names(files) == ["FraudulentH1N1ProductsList2009.xls"] and "accessURL" in reason
