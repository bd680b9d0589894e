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
