"""`show` tells a dataset's files apart: each file's title, and URLs cut in the middle so the part
that differs (openFDA's partitions differ only in a folder) stays on screen; counts read as words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from liberacion.render import cut_middle
from tests.manifests import write_catalog
from tests.server import LocalServer

OPENFDA = {
    "meta": {},
    "results": {
        "device": {
            "event": {
                "export_date": "2024-06-01",
                "partitions": [
                    {
                        "display_name": f"{year} q{quarter} (part 1 of 1)",
                        "file": f"https://download.open.fda.gov/device/event/{year}q{quarter}/device-event-0001-of-0001.json.zip",
                    }
                    for year, quarter in ((2023, 4), (2024, 1))
                ],
            }
        }
    },
}


@pytest.mark.parametrize("width", [80, 100, 200])
def test_show_tells_files_apart_by_title_and_the_end_of_the_url(
    cli: Any, manifests: Path, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    write_catalog(manifests, "fda", [("openfda", http_server.add("/download.json", json.dumps(OPENFDA)))])
    assert cli("discover", "fda").exit_code == 0
    monkeypatch.setenv("COLUMNS", str(width))
    out = cli("show", "fda/device-event", "--format", "table").stdout
    rows = [line for line in out.splitlines() if line.startswith("│ * │")]
    assert len(rows) == 2 and rows[0] != rows[1], out  # never two identical-looking lines
    assert all(len(line) <= width for line in out.splitlines()), out
    assert "2023 q4" in rows[0] and "2024 q1" in rows[1], out  # each file's title
    if width >= 200:  # room for the whole URL: the folder that tells the partitions apart
        assert "download.open.fda.gov/device/event/2023q4/device-event-0001-of-0001.json.zip" in rows[0], out
    elif width >= 80:  # the URL cut in the middle: its host and its file name
        assert "download" in rows[0] and rows[0].split("│")[-2].strip().endswith(".json.zip"), out


def test_cut_middle_keeps_the_start_and_the_longer_end() -> None:
    url = "download.open.fda.gov/device/event/2024q1/device-event-0001-of-0001.json.zip"
    cut = cut_middle(url, 40)
    assert len(cut) == 40 and cut.startswith("download.") and cut.endswith("0001-of-0001.json.zip") and "…" in cut
    assert cut_middle("short", 40) == "short"


def test_one_dataset_indexed_is_singular(cli: Any, manifests: Path, http_server: LocalServer) -> None:
    one = {"dataset": [{"identifier": "a", "title": "A", "distribution": [{"downloadURL": "https://x.gov/a.csv"}]}]}
    write_catalog(manifests, "t", [("dcat-us", http_server.add("/t.json", json.dumps(one)))])
    result = cli("discover", "t")
    assert "t: 1 dataset indexed" in result.stderr and "t: 1 dataset, 1 fetchable" in result.stderr


CMS_TITLE = "County-level Aggregate Expenditure and Risk Score Data on Assignable Beneficiaries"


@pytest.mark.parametrize("width", [80, 120, 200])
def test_show_drops_the_title_every_file_repeats_and_gives_the_url_its_share(
    cli: Any, manifests: Path, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """data.cms.gov repeats the dataset's title in each file's: only the end tells them apart."""
    files = [
        (f"{CMS_TITLE} : 2023-12-03oc2", "2024-12/61bd/PUF_2023_Offest_Assignable_2024_Starters.csv"),
        (f"{CMS_TITLE} : 2023-12-02oc1", "2024-12/f283/PUF_2023_Cal_Year_Assignable_2024_Starters.csv"),
        (f"{CMS_TITLE} : 2023-12-01", "2024-11/a038/PUF_2023_01_01_Cal_Year_Assignable_2019_2023_Starters.csv"),
    ]
    item = {
        "identifier": "https://data.cms.gov/data-api/v1/dataset/5f9f1216-6fd9-455d-bfbc-0efade687a4e/data-viewer",
        "title": CMS_TITLE,
        "distribution": [
            {
                "title": title,
                "downloadURL": f"https://data.cms.gov/sites/default/files/{path}",
                "mediaType": "text/csv",
                "modified": "2024-12-16",
                "temporal": "2023-01-01/2023-12-31",
            }
            for title, path in files
        ],
    }
    write_catalog(manifests, "cm", [("dcat-us", http_server.add("/cm.json", json.dumps({"dataset": [item]})))])
    assert cli("discover", "cm").exit_code == 0
    monkeypatch.setenv("COLUMNS", str(width))
    out = cli("show", "cm/5f9f1216-6fd9-455d-bfbc-0efade687a4e", "--format", "table").stdout
    rows = [line for line in out.splitlines() if line.startswith("│") and "2024-12-16" in line]
    assert len(rows) == 3 and len(set(rows)) == 3, out
    assert all(len(line) <= width for line in out.splitlines()), out
    for row, tail in zip(rows, ("2023-12-03oc2", "2023-12-02oc1", "2023-12-01")):
        cells = [c.strip() for c in row.split("│")]
        assert cells[2] == f"…{tail}", out  # the title without the words every file repeats
        assert len(cells[-2]) >= width // 3 - 2 and cells[-2].startswith("data.cms."), out
        assert cells[-2].endswith("Starters.csv"), out
