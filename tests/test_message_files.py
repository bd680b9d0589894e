"""A server's plain-text message sent with 200 OK ("Too many requests, please slow down.") is
refused like an HTML page or a JSON error object, never published as a table of 0 rows whose
columns are its words; a real header without rows still loads."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from liberacion.errors import ConversionError
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


@pytest.mark.parametrize(
    ("header", "names"),
    [
        ("State, County, Deaths per 100 pop.\n", ["state", "county", "deaths_per_100_pop"]),
        ("id, name, deaths per 100 pop.\n", ["id", "name", "deaths_per_100_pop"]),
    ],
)
def test_a_header_of_names_after_commas_and_spaces_is_not_prose(
    cli: Cli, tmp_path: Path, header: str, names: list[str]
) -> None:
    """Names after ", " start with a capital, or the line does not: a sentence going on past its
    comma (``Too many requests, please slow down.``) does both."""
    path = tmp_path / "rates.csv"
    path.write_text(header)
    code, record, stderr = fetch_json(cli, str(path), "--as", "t.rates")
    assert code == 0 and record["rows"] == 0, stderr
    described = json.loads(cli("sql", "describe t.rates", "-f", "json").stdout)
    assert [c["column_name"] for c in described] == names


def test_a_one_line_question_is_refused_saying_how_to_load_it(cli: Cli, tmp_path: Path, home: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("What is your age?\n")
    code, record, _stderr = fetch_json(cli, str(path))
    assert code == 1 and "is not a data file" in record["error"] and "--allow-empty" in record["error"]
    assert not Lake(home).names()


def test_allow_empty_converts_a_one_line_question_as_a_header_but_never_a_page(tmp_path: Path) -> None:
    """``convert_part(..., allow_empty=True)``, as ``fetch --allow-empty`` asks: a genuine CSV of 0 rows
    headed with a question; an HTML page or a JSON error object is refused all the same."""
    from liberacion.convert import ConvertOptions, convert_part, inspect

    def convert(name: str, text: str) -> int:
        path = tmp_path / name
        path.write_text(text)
        work = tmp_path / f"work-{name}"
        work.mkdir()
        [part] = inspect(path, ConvertOptions(), work=work)
        out = tmp_path / f"out-{name}"
        return convert_part(part, out, kv_metadata={}, options=ConvertOptions(), allow_empty=True).rows

    assert convert("q.csv", "What is your age?\n") == 0
    for name, text in [
        ("page.csv", "<!DOCTYPE html><html><body><p>Too many requests.</p></body></html>\n"),
        ("error.csv", '{"error": "Too many requests, please slow down."}\n'),
    ]:
        with pytest.raises(ConversionError):
            convert(name, text)


def test_fetch_allow_empty_loads_a_one_line_question_as_a_header(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("What is your age?\n")
    code, record, stderr = fetch_json(cli, str(path), "--allow-empty")
    assert code == 0 and record["rows"] == 0, stderr
    described = json.loads(cli("sql", "describe local.q", "-f", "json").stdout)
    assert [c["column_name"] for c in described] == ["what_is_your_age"]


@pytest.mark.parametrize(
    "message",
    [
        "Service Unavailable\nThe server is temporarily unable to service your request. Please try again later.\n",
        "Error 503 Backend fetch failed\nBackend fetch failed\nGuru Meditation:\nXID: 123456\nVarnish cache server\n",
        "429 Too Many Requests\nYou have sent too many requests in a given amount of time.\n",
        "Access Denied\r\nYou don't have permission to access this server.\r\n",
        "Sorry, we are down for maintenance.\nPlease try again later.\n",
    ],
    ids=["unavailable", "varnish", "too-many", "denied-crlf", "maintenance-comma"],
)
def test_a_message_of_several_lines_is_refused_and_the_table_kept(
    cli: Cli, tmp_path: Path, home: Path, message: str
) -> None:
    path = tmp_path / "srv.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n")
    code, record, stderr = fetch_json(cli, str(path), "--as", "s.srv")
    assert code == 0 and record["rows"] == 2, stderr
    path.write_bytes(message.encode())
    code, record, stderr = fetch_json(cli, str(path), "--as", "s.srv")
    assert code == 1 and record["status"] == "failed" and record["stage"] == "convert", stderr
    assert "srv.csv is not a data file: its lines read as a message, not rows" in record["error"]
    assert "fetch it again later" in record["error"]
    lake = Lake(home)
    assert len(lake.snapshots("s.srv")) == 1 and lake.current("s.srv").rows == 2
    assert [c.name for c in lake.current("s.srv").schema] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("County\nAutauga County\nBaldwin County\n", 2),
        ("name\nMaria Lopez\nJohn Smith\nAnn Lee\n", 3),
        ("code\nA01\nB20.1\nU07.1\n", 3),
        ("Status\nNot found\nForbidden\nService unavailable\n", 3),  # a list of statuses, under a name
        ("Comment\nThe clinic was closed. We will try again later.\nGood service.\n", 2),
    ],
    ids=["counties", "names", "codes", "statuses", "comments"],
)
def test_a_column_of_values_is_data_not_a_message(cli: Cli, tmp_path: Path, text: str, count: int) -> None:
    path = tmp_path / "list.csv"
    path.write_text(text)
    code, record, stderr = fetch_json(cli, str(path), "--as", "s.list")
    assert code == 0 and record["rows"] == count, stderr
