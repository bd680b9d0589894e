"""The file fetch takes depends on the files alone, never on where the listing puts them.

Every tie of format and data period is broken by what the files carry (the date each was made,
its data period, a date in its title) and at last by the URL's text; a year read from a file name
never invents a date later than the file's own, and a placeholder date (9999-12-31) is no date.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from liberacion.catalogs.adapters import parse_listing
from liberacion.catalogs.model import Dataset, Distribution, choose_files

# (kind, listing under realdata/catalogs)
REAL_LISTINGS = [
    ("socrata", "data-cdc-gov-json-quality/2020-04-24/cdc.gov.data.json"),
    ("dcat-us", "gov-datajson-diff/cms.json"),
    ("dkan", "providertwo/provider.json"),
    ("dcat-us", "open.fda.gov/data.json"),
    ("socrata", "data-cdc-gov-json-quality/2021-12-12/hhs.gov.data.json"),
]


def _reversed(doc: Any) -> Any:
    """The same listing with its datasets, and each dataset's files, in reverse order."""
    items = doc["dataset"] if isinstance(doc, dict) and isinstance(doc.get("dataset"), list) else doc
    if isinstance(items, list):
        items.reverse()
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("distribution"), list):
                item["distribution"].reverse()
    return doc


def _choices(kind: str, path: Path) -> dict[str, list[str]]:
    return {d.id: sorted(f.url for f in choose_files(d).files) for d in parse_listing(kind, path.read_bytes(), "t")}


@pytest.mark.parametrize(("kind", "listing"), REAL_LISTINGS)
def test_every_real_dataset_takes_the_same_file_from_its_reversed_listing(
    realdata: Path, tmp_path: Path, kind: str, listing: str
) -> None:
    source = realdata / "catalogs" / listing
    backward = tmp_path / "reversed.json"
    backward.write_text(json.dumps(_reversed(json.loads(source.read_bytes()))), encoding="utf-8")
    forward, reverse = _choices(kind, source), _choices(kind, backward)
    differing = {ref: (files, reverse.get(ref)) for ref, files in forward.items() if reverse.get(ref) != files}
    assert not differing


def _real(realdata: Path, kind: str, listing: str, dataset_id: str) -> Dataset:
    body = (realdata / "catalogs" / listing).read_bytes()
    return next(d for d in parse_listing(kind, body, "t") if d.id == dataset_id)


def test_cms_2024_starters_tie_goes_to_the_later_date_in_the_titles(realdata: Path) -> None:
    """Both files say "2024" in their names and were modified 2024-12-16: the year is not a later
    date than that; the titles' 2023-12-03oc2 and 2023-12-02oc1 tell them apart."""
    dataset = _real(realdata, "dcat-us", "gov-datajson-diff/cms.json", "5f9f1216-6fd9-455d-bfbc-0efade687a4e")
    choice = choose_files(dataset)
    assert [f.url.rsplit("/", 1)[-1] for f in choice.files] == [
        "County_Level_FFS_Data_for_Shared_Savings_Program_Benchmark_PUF_2023_Offest_Assignable_2024_Starters.csv"
    ]
    assert choice.reason.endswith("of 3 such files, the latest date in its title (2023-12-03)")


def test_healthdata_psi_11_undated_and_dated_files_of_one_folder_are_weighed(realdata: Path) -> None:
    listing = "data-cdc-gov-json-quality/2021-12-12/hhs.gov.data.json"
    dataset = _real(realdata, "socrata", listing, "7cf9662e-7c5c-4fe0-a8c6-828edf81a23c")
    forward = choose_files(dataset)
    dataset.distributions.reverse()
    assert choose_files(dataset).files == forward.files
    assert "of 2 such files" in forward.reason


def _dataset(*files: Distribution) -> Dataset:
    return Dataset("t", "d", "Rates", list(files), source_kind="dcat-us")


def test_a_placeholder_date_is_no_date() -> None:
    files = [
        Distribution("https://x.gov/a.csv", format="csv", modified="9999-12-31"),
        Distribution("https://x.gov/b.csv", format="csv", modified="2021-03-01"),
        Distribution("https://x.gov/c.csv", format="csv", modified="2020-03-01"),
    ]
    for order in (files, files[::-1]):
        choice = choose_files(_dataset(*order))
        assert [f.url for f in choice.files] == ["https://x.gov/b.csv"]
        assert "by modified date (2021-03-01)" in choice.reason
