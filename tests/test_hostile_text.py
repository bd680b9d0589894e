"""Text from catalogs, servers and files that would command a terminal (escape sequences, other
control characters, bidi overrides) reaches people inert, and machines exactly as it was sent.

A listing's title or a server's reason phrase holding ``ESC [2J`` must not clear the screen,
``ESC ]0;...BEL`` must not retitle the window, ``ESC ]8;;URL`` must not plant a hyperlink, and
U+202E must not reverse what follows; in CSV and JSON the same values stay byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.manifests import write_catalog
from tests.server import LocalServer

ESC = "\x1b"
CLEAR = f"{ESC}[2J{ESC}[H"
LINK = f"{ESC}]8;;http://evil.example/\x07click{ESC}]8;;\x07"
RETITLE = f"{ESC}]0;pwned\x07"
C1_CSI = "\x9b31m"  # the one-character (C1) spelling of ESC [
RLO = "\u202e"
HOSTILE = f"a{CLEAR}b{LINK}c{RETITLE}d{C1_CSI}e{RLO}f\x00g"
# What a terminal would act on; none of it may reach a person's screen.
COMMANDS = (ESC, "\x07", "\x9b", "\x00", RLO)


def _inert(text: str) -> None:
    found = [c for c in COMMANDS if c in text]
    assert not found, (found, text)


def _item(identifier: str, title: str, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "title": title,
        "distribution": [{"downloadURL": url, "mediaType": "text/csv", **extra.pop("file", {})}],
        **extra,
    }


@pytest.fixture
def hostile_listing(cli: Any, manifests: Path, http_server: LocalServer) -> Any:
    file_url = http_server.add("/f.csv", "a,b\n1,2\n", content_type="text/csv")
    items = [
        _item(
            "h1",
            f"Hospitals {HOSTILE} end",
            file_url,
            description=f"First {HOSTILE}\nsecond line {RETITLE}",
            publisher={"name": f"P {HOSTILE}"},
            modified=f"2024{HOSTILE}",
            keyword=[f"kw {HOSTILE}"],
            landingPage=f"http://x.gov/{HOSTILE}",
            file={"title": f"file {HOSTILE}", "modified": f"2023{HOSTILE}"},
        ),
        _item("h2", "Hospitals safe\rEVIL end", file_url, publisher={"name": "carriage\r\nreturn"}),
    ]
    http_server.add("/data.json", json.dumps({"dataset": items}))
    write_catalog(manifests, "ev", [("dcat-us", http_server.url("/data.json"))])
    result = cli("discover", "ev")
    assert result.exit_code == 0, result.stderr
    return cli


def test_search_at_a_terminal_never_passes_escape_sequences_on(hostile_listing: Any) -> None:
    result = hostile_listing("search", "hospitals", "--catalog", "ev", "--format", "table")
    assert result.exit_code == 0 and "ev/h1" in result.stdout and "modified" in result.stdout
    _inert(result.stdout)


def test_show_never_passes_escape_sequences_on(hostile_listing: Any) -> None:
    result = hostile_listing("show", "ev/h1", "--format", "table")
    assert result.exit_code == 0, result.stderr
    assert "Hospitals" in result.stdout and "second line" in result.stdout  # the description keeps its lines
    _inert(result.stdout)


def test_search_csv_and_json_keep_hostile_values_exact(hostile_listing: Any) -> None:
    # The bytes: click's ``Result.stdout`` turns every \\r\\n into \\n.
    out = hostile_listing("search", "hospitals", "--catalog", "ev", "--format", "csv").stdout_bytes.decode()
    rows = list(csv.reader(io.StringIO(out, newline="")))
    assert len(rows) == 3, rows  # a bare carriage return inside a value does not end its row
    titles = {row[0]: row[1] for row in rows[1:]}
    assert titles == {"ev/h1": f"Hospitals {HOSTILE} end", "ev/h2": "Hospitals safe\rEVIL end"}
    document = json.loads(hostile_listing("search", "hospitals", "--catalog", "ev", "--format", "json").stdout_bytes)
    assert {r["ref"]: r["title"] for r in document} == titles
    assert {r["ref"]: r["publisher"] for r in document}["ev/h2"] == "carriage\r\nreturn"


def _hostile_reason(status: int) -> Any:
    def answer(handler: Any) -> None:
        reason = f"Not {RETITLE}Found {CLEAR}{RLO} gone".encode()
        handler.wfile.write(b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % (status, reason))

    return answer


def test_a_servers_reason_phrase_and_a_listings_url_reach_error_lines_inert(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    http_server.add("/gone.csv", handler=_hostile_reason(404))
    items = [
        _item("r", "reason", http_server.url("/gone.csv")),
        _item("u", "url", http_server.url(f"/x{RETITLE}{RLO}y.csv")),
    ]
    http_server.add("/data.json", json.dumps({"dataset": items}))
    write_catalog(manifests, "ev", [("dcat-us", http_server.url("/data.json"))])
    assert cli("discover", "ev").exit_code == 0
    result = cli("fetch", "ev/r", "ev/u")
    assert result.exit_code == 1
    assert result.stderr.count("error:") == 2 and "HTTP 404" in result.stderr, result.stderr
    _inert(result.stderr)


def _file_after(pending: list[Any]) -> Any:
    """A handler that answers with each of ``pending`` (taken off the list) first, then the file."""

    def flaky(handler: Any) -> None:
        if pending:
            pending.pop(0)(handler)
            return
        handler.send_error_body(200, b"a,b\n1,2\n", "text/csv")

    return flaky


def test_a_retry_said_on_stderr_is_inert(cli: Any, http_server: LocalServer) -> None:
    url = http_server.add("/flaky.csv", handler=_file_after([_hostile_reason(503)]))
    result = cli("fetch", "--progress", url)
    assert result.exit_code == 0, result.stderr
    assert "retry" in result.stderr and "503" in result.stderr, result.stderr
    _inert(result.stderr)


def test_a_retry_on_a_terminals_progress_bar_is_inert(home: Path, http_server: LocalServer) -> None:
    from tests.test_terminal import terminal

    pending: list[Any] = []  # each run's: one hostile 503, then the file
    url = http_server.add("/flaky.csv", handler=_file_after(pending))
    for width in (40, 80):
        pending[:] = [_hostile_reason(503)]
        _, raw, code = terminal(home, "fetch", "--force", url, width=width, LIBERACION_BACKOFF="0.5")
        assert code == 0, raw
        # Rich moves the cursor and styles text with its own sequences; these are the server's.
        assert f"{ESC}]0;" not in raw and f"{ESC}[2J" not in raw and RLO not in raw, raw


def test_a_listing_with_lone_surrogates_is_indexed(cli: Any, manifests: Path, http_server: LocalServer) -> None:
    # JSON may escape half of a UTF-16 pair alone; Python decodes it to a str that no UTF-8 file,
    # pipe or terminal can hold.
    body = (
        '{"dataset": [{"identifier": "s1", "title": "lone \\ud800 half \\udfff x", "description": "d \\ud83d",'
        ' "publisher": {"name": "P \\udc80"}, "keyword": ["k\\ud800"], "distribution":'
        ' [{"downloadURL": "http://127.0.0.1:9/x\\ud800.csv", "mediaType": "text/csv", "title": "t\\ud800"}]},'
        ' {"identifier": "s2", "title": "a pair \\ud83d\\ude37 kept", "distribution":'
        ' [{"downloadURL": "http://127.0.0.1:9/y.csv", "mediaType": "text/csv"}]}]}'
    )
    http_server.add("/data.json", body)
    write_catalog(manifests, "sur", [("dcat-us", http_server.url("/data.json"))])
    result = cli("discover", "sur")
    assert result.exit_code == 0, result.stderr
    found = json.loads(cli("search", "lone", "--format", "json").stdout)
    assert [r["title"] for r in found] == ["lone \ufffd half \ufffd x"]
    assert [r["title"] for r in json.loads(cli("search", "pair", "--format", "json").stdout)] == ["a pair 😷 kept"]
    shown = cli("show", "sur/s1", "--format", "table")
    assert shown.exit_code == 0 and "lone" in shown.stdout, shown.stderr


def test_info_shows_a_files_trailing_notes_inert(cli: Any, tmp_path: Path) -> None:
    rows = "".join(f"{i},name{i},{i * 3}\n" for i in range(400))
    notes = f'"---"\n"Source: {RETITLE} CDC {CLEAR} WONDER {RLO}evil"\n"Suppressed values"\n'
    path = tmp_path / "notes.csv"
    path.write_text(f"id,name,count\n{rows}{notes}", encoding="utf-8")
    assert cli("fetch", str(path)).exit_code == 0
    result = cli("info", "local.notes", "--format", "table")
    assert result.exit_code == 0 and "Suppressed values" in result.stdout and "WONDER" in result.stdout
    _inert(result.stdout)


def test_a_note_naming_a_zip_member_is_inert(cli: Any, tmp_path: Path) -> None:
    import zipfile

    rows = "id,v\n" + "".join(f"{i},{i}\n" for i in range(300))
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data.csv", rows)
        archive.writestr(f"read{RLO}me.txt", "This is a readme about the data, prose only.\n")
    result = cli("fetch", str(path))
    assert result.exit_code == 0, result.stderr
    assert "note:" in result.stderr and "skipped read" in result.stderr, result.stderr
    _inert(result.stderr)


def test_a_short_file_with_an_escape_in_a_value_is_read_and_shown_inert(cli: Any, tmp_path: Path) -> None:
    source = tmp_path / "short.csv"
    source.write_text(f"id,label\n1,red{ESC}[2Jalert\n2,plain\n", encoding="utf-8")
    fetched = cli("fetch", str(source), "--as", "t.short")
    assert fetched.exit_code == 0, fetched.stderr  # not refused as "not CSV"
    exact = cli("sql", "select label from t.short order by id", "--format", "json")
    assert json.loads(exact.stdout)[0]["label"] == f"red{ESC}[2Jalert"
    shown = cli("sql", "select label from t.short order by id", "--format", "table")
    _inert(shown.stdout)
    assert "red" in shown.stdout and "alert" in shown.stdout
