"""A dataset whose listing changes while its bytes do not (data.cms.gov moves every release to a
new folder and dates it anew): one full download proves the bytes the same, and from then on each
refresh and each `refresh --check` costs one conditional request and says `unchanged`."""

from __future__ import annotations

import json
from pathlib import Path

from liberacion.lake import Lake
from tests.conftest import Cli
from tests.manifests import dkan_pointer, write_catalog
from tests.server import LocalServer

CSV = "facility_id,beds\n010001,12\n010005,40\n"


def lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def listed(cli: Cli, server: LocalServer, manifests: Path, path: str, modified: str = "2026-01-05") -> None:
    """The audit catalog lists hosp-info at ``path``, last modified on ``modified``; discover reads it."""
    entry = {
        "identifier": "hosp-info",
        "title": "Hospital info",
        "description": "d",
        "modified": modified,
        "distribution": [{"downloadURL": server.url(path), "mediaType": "text/csv"}],
    }
    server.add("/data.json", json.dumps({"dataset": [entry]}), content_type="application/json")
    write_catalog(manifests, "audit", [("dcat-us", server.url("/data.json"))])
    assert cli("discover", "audit").exit_code == 0


def fetched_hospitals(cli: Cli, server: LocalServer, manifests: Path) -> None:
    """audit/hosp-info listed at /hospitals.csv, and fetched."""
    server.add("/hospitals.csv", CSV, content_type="text/csv")
    listed(cli, server, manifests, "/hospitals.csv")
    assert cli("fetch", "audit/hosp-info").exit_code == 0


def refreshed(cli: Cli, *args: str) -> dict:
    result = cli("refresh", "audit.hosp_info", "--json", *args)
    table, summary = lines(result.stdout)
    assert summary["exit_code"] == result.exit_code
    return table


def test_a_moved_file_with_the_same_bytes_is_downloaded_once_then_asked_with_its_validators(
    cli: Cli, http_server: LocalServer, manifests: Path, home: Path
) -> None:
    fetched_hospitals(cli, http_server, manifests)
    http_server.add("/hospitals2.csv", CSV, content_type="text/csv")  # the publisher moved it
    listed(cli, http_server, manifests, "/hospitals2.csv")
    first = refreshed(cli)
    assert first["event"] == "unchanged" and first["bytes"] == len(CSV)  # read once, to compare
    for _ in range(3):  # every night after: one small request, answered 304
        before = len(http_server.hits("/hospitals2.csv"))
        event = refreshed(cli)
        asked = http_server.hits("/hospitals2.csv")[before:]
        assert event["event"] == "unchanged" and event["bytes"] == 0, event
        assert len(asked) == 1 and asked[0].headers.get("If-None-Match"), asked
    assert len(Lake(home).snapshots("audit.hosp_info")) == 1
    # Replaced at its new place: the server says so, and the refresh publishes it.
    http_server.add("/hospitals2.csv", CSV + "010012,7\n", content_type="text/csv")
    assert refreshed(cli)["event"] == "fetched" and Lake(home).current("audit.hosp_info").rows == 3


def test_check_agrees_with_a_refresh_that_found_a_redated_listing_unchanged(
    cli: Cli, http_server: LocalServer, manifests: Path
) -> None:
    fetched_hospitals(cli, http_server, manifests)
    listed(cli, http_server, manifests, "/hospitals.csv", modified="2026-02-05")  # dated anew, same file
    assert refreshed(cli, "--check")["event"] == "changed"  # only the server can tell
    assert refreshed(cli)["event"] == "unchanged"
    for _ in range(2):  # the refresh found the same bytes under the new date: so does every check
        check = cli("refresh", "--check", "--json")
        assert check.exit_code == 0 and lines(check.stdout)[0]["event"] == "unchanged", check.stdout
    http_server.add("/hospitals.csv", CSV + "010012,7\n", content_type="text/csv")  # replaced in place
    assert refreshed(cli, "--check")["event"] == "changed"
    http_server.add("/hospitals.csv", CSV, content_type="text/csv")
    listed(cli, http_server, manifests, "/hospitals.csv", modified="2026-03-05")  # the listing changes again
    assert refreshed(cli, "--check")["event"] == "changed"


def test_check_agrees_with_a_refresh_that_found_a_moved_and_redated_file_unchanged(
    cli: Cli, http_server: LocalServer, manifests: Path
) -> None:
    fetched_hospitals(cli, http_server, manifests)
    http_server.add("/hospitals2.csv", CSV, content_type="text/csv")
    listed(cli, http_server, manifests, "/hospitals2.csv", modified="2026-02-05")
    assert refreshed(cli, "--check")["event"] == "changed"
    assert refreshed(cli)["event"] == "unchanged"
    before = len(http_server.hits("/hospitals2.csv"))
    assert refreshed(cli, "--check")["event"] == "unchanged"
    asked = http_server.hits("/hospitals2.csv")[before:]
    assert len(asked) == 1 and asked[0].method == "GET" and asked[0].headers.get("If-None-Match")
    assert refreshed(cli)["event"] == "unchanged"
    assert refreshed(cli, "--check")["event"] == "unchanged"


def test_check_agrees_with_a_refresh_of_a_manifest_pointer_whose_item_was_redated(
    cli: Cli, http_server: LocalServer, manifests: Path
) -> None:
    """data.cms.gov's way: the manifest points at a DKAN item, read at each fetch and check."""
    file_url = http_server.add("/files/beds.csv", CSV, content_type="text/csv")
    item = dkan_pointer(http_server, manifests, "xubh-q36u", file_url)
    assert cli("fetch", "pdc/beds").exit_code == 0
    redated = {**item, "modified": "2026-12-01"}
    http_server.add("/pdc/items/xubh-q36u", json.dumps(redated), content_type="application/json")
    assert cli("refresh", "--check").exit_code == 10
    assert lines(cli("refresh", "--json").stdout)[0]["event"] == "unchanged"
    check = cli("refresh", "--check", "--json")
    assert check.exit_code == 0 and lines(check.stdout)[0]["event"] == "unchanged", check.stdout


def test_a_listing_that_drops_one_of_its_files_rebuilds_the_table_from_the_others(
    cli: Cli, http_server: LocalServer, manifests: Path, home: Path
) -> None:
    """The files still listed answer 304, but the table was built from one more: it is rebuilt."""
    first = http_server.add("/2025.csv", CSV, content_type="text/csv")
    second = http_server.add("/2026.csv", "facility_id,beds\n010012,7\n", content_type="text/csv")

    def manifest(*urls: str) -> None:
        listed = ", ".join(f'"{url}"' for url in urls)
        write_catalog(manifests, "hhs", body=f'\n[[dataset]]\nid = "beds"\nurls = [{listed}]\n')

    manifest(first, second)
    assert cli("fetch", "hhs/beds").exit_code == 0 and Lake(home).current("hhs.beds").rows == 3
    manifest(first)
    assert lines(cli("refresh", "--check", "--json").stdout)[0]["event"] == "changed"
    assert lines(cli("refresh", "--json").stdout)[0]["event"] == "fetched"
    assert Lake(home).current("hhs.beds").rows == 2
    assert lines(cli("refresh", "--json").stdout)[0]["event"] == "unchanged"
