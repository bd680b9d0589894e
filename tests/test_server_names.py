"""A URL that names no dataset (``…/download?format=csv``, ``/export``, ``/file?id=7``) takes its
table's name from the file name the server gives (``Content-Disposition``) on its first fetch; the
URL keeps that table in later fetches and refreshes, which ask "has it changed?" as usual; and two
processes fetching it for the first time at once publish to one table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from liberacion.lake import Lake
from tests.conftest import ROOT, Cli
from tests.server import LocalServer, RequestHandler

CSV = "Facility ID,State\n010001,AL\n220071,MA\n"


def attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def fetch_one(cli: Cli, *args: str) -> tuple[dict[str, Any], str]:
    result = cli("fetch", *args, "--json")
    (record,) = records(result.stdout)
    return record, result.stderr


@pytest.mark.parametrize("path", ["/download?format=csv", "/export", "/file?id=7", "/api/files/12345"])
def test_a_url_that_names_no_dataset_takes_the_servers_file_name(
    cli: Cli, http_server: LocalServer, home: Path, path: str
) -> None:
    url = http_server.add(path, CSV, content_type="text/csv", headers=attachment("Hospital_General_Information.csv"))
    record, stderr = fetch_one(cli, url)
    assert record["status"] == "fetched", stderr
    assert record["table"] == "local.hospital_general_information"
    assert "named from the server's file name Hospital_General_Information.csv" in stderr
    assert Lake(home).names() == ["local.hospital_general_information"]


def test_later_fetches_and_refreshes_keep_the_table_and_ask_before_downloading(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    url = http_server.add("/download", CSV, content_type="text/csv", headers=attachment("Beds.csv"))
    assert fetch_one(cli, url + "?format=csv")[0]["table"] == "local.beds"
    again, stderr = fetch_one(cli, url + "?format=csv")
    assert again["table"] == "local.beds" and again["status"] == "unchanged", stderr
    assert "If-None-Match" in http_server.hits("/download")[-1].headers  # the name was not asked again
    assert "named from" not in stderr

    http_server.add("/download", CSV + "330101,NY\n", content_type="text/csv", headers=attachment("Beds.csv"))
    result = cli("refresh", "--json")
    events = [r for r in records(result.stdout) if "table" in r]
    assert [(e["table"], e["event"]) for e in events] == [("local.beds", "fetched")], result.stderr
    assert "If-None-Match" in http_server.hits("/download")[-1].headers
    assert Lake(home).names() == ["local.beds"] and Lake(home).current("local.beds").rows == 3
    # --as still names the table, and the URL's own table stays its own.
    assert fetch_one(cli, url + "?format=csv", "--as", "cms.beds")[0]["table"] == "cms.beds"
    assert fetch_one(cli, url + "?format=csv")[0]["table"] == "local.beds"


def test_a_table_made_before_keeps_its_name_beside_a_new_one_named_by_the_server(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    old = http_server.add("/export?id=1", CSV, content_type="text/csv")  # no file name from the server
    assert fetch_one(cli, old)[0]["table"] == "local.export"
    http_server.add("/export?id=1", CSV + "330101,NY\n", content_type="text/csv", headers=attachment("Beds.csv"))
    new = http_server.add("/export?id=2", CSV, content_type="text/csv", headers=attachment("Beds.csv"))
    result = cli("fetch", old, new, "--json")
    got = [(r["table"], r["status"]) for r in records(result.stdout)]
    assert got == [("local.export", "fetched"), ("local.beds", "fetched")], result.stderr
    assert Lake(home).names() == ["local.beds", "local.export"]


def test_only_a_url_that_names_no_dataset_takes_the_servers_name(cli: Cli, http_server: LocalServer) -> None:
    headers = {"/files/deaths.csv": "Other.csv", "/download": "rows.csv", "/export": "Beds.csv"}
    refs = [http_server.add(p, CSV, content_type="text/csv", headers=attachment(n)) for p, n in headers.items()]
    result = cli("fetch", *refs, "--json")
    assert [r["table"] for r in records(result.stdout)] == ["local.deaths", "local.download", "local.beds"]
    assert result.stderr.count("named from") == 1
    # A server name that is a bare id names nothing either: the URL's name.
    bare = http_server.add("/file?id=3", CSV, content_type="text/csv", headers=attachment("12345.csv"))
    assert fetch_one(cli, bare)[0]["table"] == "local.file"


def test_a_server_name_another_ref_holds_is_refused(cli: Cli, http_server: LocalServer, tmp_path: Path) -> None:
    local = tmp_path / "Beds.csv"
    local.write_text(CSV, encoding="utf-8")
    assert fetch_one(cli, str(local))[0]["table"] == "local.beds"
    url = http_server.add("/download", CSV, content_type="text/csv", headers=attachment("Beds.csv"))
    record, _stderr = fetch_one(cli, url)
    assert record["status"] == "failed" and record["table"] == "local.beds"
    assert f"table local.beds holds {local}" in record["error"] and "--as" in record["error"]


def test_two_urls_of_one_run_named_alike_are_told_to_use_as(cli: Cli, http_server: LocalServer, home: Path) -> None:
    first = http_server.add("/export?id=1", CSV, content_type="text/csv", headers=attachment("Beds.csv"))
    second = http_server.add("/export?id=2", CSV, content_type="text/csv", headers=attachment("Beds.csv"))
    result = cli("fetch", first, second, "--json")
    statuses = sorted(r["status"] for r in records(result.stdout))
    assert statuses == ["failed", "fetched"] and "both fetch into local.beds" in result.stderr
    assert Lake(home).names() == ["local.beds"]


def test_two_first_fetches_at_once_publish_to_one_table(http_server: LocalServer, home: Path) -> None:
    """The second process waits for the first to choose the name, then asks "has it changed?"
    under that name, even when the server would give it another file name."""
    served: list[str] = []

    def answer(handler: RequestHandler) -> None:
        if handler.headers.get("If-None-Match") == '"v1"':
            handler.send_response(304)
            handler.send_header("ETag", '"v1"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        name = "First.csv" if not served else "Second.csv"
        served.append(name)
        if name == "First.csv":
            time.sleep(1.5)  # the second process starts meanwhile
        body = CSV.encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/csv")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("ETag", '"v1"')
        handler.send_header("Content-Disposition", f'attachment; filename="{name}"')
        handler.end_headers()
        handler.wfile.write(body)

    url = http_server.add("/export", handler=answer)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # LIBERACION_HOME is the test's home
    command = [sys.executable, "-m", "liberacion", "fetch", url, "--json"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not http_server.hits("/export") and time.monotonic() < deadline:
        time.sleep(0.02)
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, err + second.stderr
    (one,), (two,) = records(out), records(second.stdout)
    assert (one["table"], one["status"]) == ("local.first", "fetched")
    assert (two["table"], two["status"]) == ("local.first", "unchanged")
    assert Lake(home).names() == ["local.first"]
