"""A table's ref that comes to name another dataset is never refreshed from it.

A record alone in its listing keeps the id it derives (healthdata.gov's ``<uuid>_1`` is named by
the bare ``<uuid>``): users' refs stay. When that record leaves and a sibling ``<uuid>_2`` comes
alone, the bare ref names the sibling; ``refresh`` must then fail the table, keep its rows and say
so, not load the sibling's rows with exit 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from liberacion.lake import Lake
from tests.conftest import Cli
from tests.manifests import write_catalog
from tests.server import LocalServer

UUID = "6820d1cb-0e93-4870-b6e0-4a33d84122c1"
REF = f"evo/{UUID}"
TABLE = "evo.child_file"


def _listing(records: list[tuple[str, str, str]]) -> bytes:
    datasets = [
        {
            "identifier": identifier,
            "title": title,
            "accessLevel": "public",
            "modified": "2021-03-12",
            "distribution": [{"downloadURL": url, "mediaType": "text/csv"}],
        }
        for identifier, title, url in records
    ]
    return json.dumps({"dataset": datasets}).encode()


def _setup(cli: Cli, manifests: Path, server: LocalServer) -> tuple[str, str]:
    a = server.add("/a.csv", "state,children\nAL,10\nAK,3\n", content_type="text/csv")
    b = server.add("/b.csv", "link\nhttps://example.org/research\n", content_type="text/csv")
    server.add("/evo.json", _listing([(f"{UUID}_1", "Child File data tables FY2015", a)]))
    write_catalog(manifests, "evo", [("dcat-us", server.url("/evo.json"))])
    assert cli("discover", "evo").exit_code == 0
    fetched = cli("fetch", REF, "--as", TABLE)
    assert fetched.exit_code == 0, fetched.stderr
    return a, b


def _switch(cli: Cli, server: LocalServer, b: str, title_b: str) -> None:
    server.add("/evo.json", _listing([(f"{UUID}_2", title_b, b)]))
    assert cli("discover", "evo").exit_code == 0


def _events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_refresh_refuses_a_ref_that_now_names_a_sibling_record(
    cli: Cli, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    _, b = _setup(cli, manifests, http_server)
    _switch(cli, http_server, b, "Child File research link")
    result = cli("refresh", "--json")
    assert result.exit_code == 1
    event = _events(result.stdout)[0]
    assert event["event"] == "failed" and event["stage"] == "resolve"
    assert f"{REF} now names another dataset in the listing" in event["error"]
    assert f"{UUID}_2" in event["error"] and "--as" in event["error"]
    assert Lake(home).current(TABLE).rows == 2  # still the child file's rows
    assert not http_server.hits("/b.csv")  # the other dataset's file is not even downloaded
    check = cli("refresh", "--check", "--json")
    assert check.exit_code == 1 and "now names another dataset" in _events(check.stdout)[0]["error"]


def test_a_refresh_records_the_identifier_and_catches_a_sibling_of_the_same_title(
    cli: Cli, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    _, b = _setup(cli, manifests, http_server)
    http_server.add("/a.csv", "state,children\nAL,10\nAK,3\nAZ,8\n", content_type="text/csv")
    refreshed = cli("refresh", "--json")
    assert refreshed.exit_code == 0 and _events(refreshed.stdout)[0]["event"] == "fetched"
    assert Lake(home).current(TABLE).provenance.extra["identifier"] == f"{UUID}_1"
    _switch(cli, http_server, b, "Child File data tables FY2015")  # the same title: only the identifier tells
    result = cli("refresh", "--json")
    assert result.exit_code == 1
    assert f"(identifier {UUID}_2, was {UUID}_1)" in _events(result.stdout)[0]["error"]
    assert Lake(home).current(TABLE).rows == 3


def test_a_fetch_records_the_identifier_and_a_fetch_of_the_switched_ref_is_refused(
    cli: Cli, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    _, b = _setup(cli, manifests, http_server)
    assert Lake(home).current(TABLE).provenance.extra["identifier"] == f"{UUID}_1"
    _switch(cli, http_server, b, "Child File data tables FY2015")
    result = cli("fetch", REF, "--as", TABLE, "--force")
    assert result.exit_code != 0
    assert f"(identifier {UUID}_2, was {UUID}_1)" in result.stderr
    assert Lake(home).current(TABLE).rows == 2
    assert not http_server.hits("/b.csv")
    assert cli("fetch", REF, "--as", "evo.research_link").exit_code == 0  # under a new table it is fine
