"""A server's plain-text message sent with 200 OK ("Too many requests, please slow down.") is
refused like an HTML page or a JSON error object, never published as a table of 0 rows whose
columns are its words; a real header without rows still loads."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from liberacion.lake import Lake
from tests.conftest import Cli
from tests.server import LocalServer


def fetch_json(cli: Cli, ref: str, *args: str) -> tuple[int, dict, str]:
    result = cli("fetch", ref, "--json", *args)
    return result.exit_code, json.loads(result.stdout), result.stderr


@pytest.mark.parametrize(
    "message",
    [
        "Too many requests, please slow down.\n",
        "Too many requests, please slow down.",
        "Service temporarily unavailable. Try again later!\r\n",
    ],
)
def test_a_one_line_message_from_a_server_is_not_a_table(
    cli: Cli, http_server: LocalServer, home: Path, message: str
) -> None:
    url = http_server.add("/textmsg.csv", message, content_type="text/csv")
    code, record, stderr = fetch_json(cli, url)
    assert code == 1 and record["status"] == "failed" and record["stage"] == "convert", stderr
    line = message.strip()
    assert f"textmsg.csv is not a data file: its only line reads {line!r}" in record["error"]
    assert not Lake(home).names()

    # A header of names without rows is still a table (0 rows), even one naming a question.
    for header in ("id,name,value\n", "id,Did you smoke?\n"):
        http_server.add("/textmsg.csv", header, content_type="text/csv")
        code, record, stderr = fetch_json(cli, url, "--force")
        assert code == 0 and record["rows"] == 0, stderr
    described = json.loads(cli("sql", "describe local.textmsg", "-f", "json").stdout)
    assert [c["column_name"] for c in described] == ["id", "did_you_smoke"]


def test_a_message_in_a_zip_beside_data_is_skipped_and_alone_is_refused(cli: Cli, tmp_path: Path, home: Path) -> None:
    message = "This file describes the data. It is not a table.\n"
    beside = tmp_path / "beside.zip"
    with zipfile.ZipFile(beside, "w") as archive:
        archive.writestr("data.csv", "id,n\n1,2\n")
        archive.writestr("notes.txt", message)
    code, record, stderr = fetch_json(cli, str(beside), "--as", "t.beside")
    assert code == 0 and record["rows"] == 1, stderr
    assert "skipped notes.txt: no data rows, beside members that have rows" in stderr

    alone = tmp_path / "alone.zip"
    with zipfile.ZipFile(alone, "w") as archive:
        archive.writestr("notes.txt", message)
    code, record, _stderr = fetch_json(cli, str(alone), "--as", "t.alone")
    assert code == 1 and "notes.txt is not a data file" in record["error"]
    assert not Lake(home).exists("t.alone")
