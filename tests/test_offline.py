"""Without a network, or with a dead host: fail fast, say why in one line, never retry for long."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from liberacion.download import Credentials, HttpClient, HttpConfig, ProgressEvent
from liberacion.download.session import _connection_reason
from liberacion.errors import SourceError, Unreachable
from tests.manifests import write_catalog
from tests.server import LocalServer

# Seconds the whole of an offline command may take: a behaviour bound (no long retrying), not a benchmark.
OFFLINE_BOUND = 5.0
# The README's first command, with its catalog's listings on hosts that never resolve.
CMS = """
[[dataset]]
id = "hospital-general-information"
title = "Hospital General Information"
source_id = "xubh-q36u"
source = "dkan"
format = "csv"
"""


def refused_url(path: str = "/x.csv") -> str:
    """A URL on a local port nothing listens on: the connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def errors_of(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def offline_cms(manifests: Path) -> Path:
    return write_catalog(
        manifests,
        "cms",
        [("dkan", "https://data.cms.nonexistent.invalid/provider-data/api/1/metastore/schemas/dataset/items")],
        body=CMS,
    )


def timed(cli: Any, *args: str) -> tuple[Any, float]:
    started = time.monotonic()
    result = cli(*args)
    return result, time.monotonic() - started


def test_fetch_of_an_unresolvable_url_fails_fast_in_one_line(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIBERACION_BACKOFF", "1")  # the real default: the bound must hold without test speed-ups
    result, seconds = timed(cli, "fetch", "https://nonexistent.invalid/x.csv")
    assert seconds < OFFLINE_BOUND
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    [line] = errors_of(result)
    assert "cannot reach nonexistent.invalid (name not resolved)" in line
    assert "HTTPSConnection" not in line and "NameResolutionError" not in line


def test_the_readme_first_command_offline_ends_fast(
    cli: Any, offline_cms: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIBERACION_BACKOFF", "1")
    result, seconds = timed(cli, "fetch", "cms/hospital-general-information")
    assert seconds < OFFLINE_BOUND
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    [line] = errors_of(result)
    assert "cannot reach data.cms.nonexistent.invalid (name not resolved)" in line
    assert line.rstrip().endswith("?")  # the message ends with its hint, not cut mid-word


def test_show_answers_from_the_manifest_when_the_source_is_unreachable(
    cli: Any, offline_cms: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIBERACION_BACKOFF", "1")
    result, seconds = timed(cli, "show", "cms/hospital-general-information", "--format", "json")
    assert seconds < OFFLINE_BOUND
    # What the manifest says is shown; the lookup failed all the same, and the exit code says so.
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    assert document["title"] == "Hospital General Information"
    assert "could not be looked up" in document["fetch"]["reason"] and "cannot reach" in document["fetch"]["reason"]
    table = cli("show", "cms/hospital-general-information", "--format", "table")
    assert table.exit_code == 1
    assert "misspelt host name?" in table.stdout  # the reason whole, wrapped, not cut at the edge
    assert "distributions" not in table.stdout  # no empty box of files


def test_a_refused_connection_is_tried_twice_at_most(cli: Any) -> None:
    url = refused_url()
    result, seconds = timed(cli, "fetch", url)
    assert seconds < OFFLINE_BOUND
    [line] = errors_of(result)
    assert "connection refused" in line and result.exit_code == 1


def test_unreachable_hosts_are_retried_once_and_then_remembered() -> None:
    client = HttpClient(HttpConfig(backoff=0.01, retries=5), credentials=Credentials())
    url = refused_url()
    events: list[ProgressEvent] = []
    started = time.monotonic()
    with pytest.raises(Unreachable) as first:
        client.fetch_document(url, progress=events.append)
    assert [e.kind for e in events] == ["retry"]  # one retry, shown on the progress line
    assert str(events[0].message).startswith("retry 2/6 in ")
    assert "connection refused" in str(first.value) and isinstance(first.value, SourceError)
    with pytest.raises(Unreachable):  # the same host again: no more waiting
        client.fetch_document(url.replace("/x.csv", "/y.csv"), progress=events.append)
    assert len(events) == 1
    assert time.monotonic() - started < OFFLINE_BOUND


def test_retries_that_happen_show_on_the_progress_line(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("/flaky.csv", b"a,b\n1,2\n", fail_times=2, fail_status=503)
    client = HttpClient(HttpConfig(backoff=0.01, retries=5), credentials=Credentials())
    events: list[ProgressEvent] = []
    client.download(url, tmp_path / "downloads", progress=events.append)
    messages = [str(e.message) for e in events if e.kind == "retry"]
    assert messages[0].startswith("retry 2/6 in ") and messages[0].endswith(": HTTP 503 Service Unavailable")
    assert messages[1].startswith("retry 3/6 in ")


def test_connection_reasons_summarise_the_exception_instead_of_quoting_it() -> None:
    import requests
    import urllib3

    unresolved = socket.gaierror(-2, "Name or service not known")
    inner = urllib3.exceptions.NameResolutionError("nonexistent.invalid", None, unresolved)  # type: ignore[arg-type]
    wrapped = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/x.csv", inner))  # type: ignore[arg-type]
    assert _connection_reason(wrapped) == "name not resolved"
    reset = requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))
    assert _connection_reason(reset) == "the connection was reset by the server"
    odd = requests.exceptions.ConnectionError("HTTPSConnectionPool(host='x', port=443): something (Caused by ...)")
    assert _connection_reason(odd) == "connection failed (ConnectionError)"


def test_discover_offline_says_each_listing_once_and_why_nothing_is_fetchable(cli: Any, manifests: Path) -> None:
    write_catalog(
        manifests,
        "cms",
        [
            ("dcat-us", "https://data.cms.nonexistent.invalid/data.json"),
            ("dkan", "https://data.cms.nonexistent.invalid/provider-data/api/1/metastore/schemas/dataset/items"),
        ],
        body=CMS,
    )
    result, seconds = timed(cli, "discover", "cms")
    assert seconds < OFFLINE_BOUND and result.exit_code == 1
    lines = result.stderr.splitlines()
    reading = [line for line in lines if "reading the" in line]
    assert len(reading) == 2 and all(line.startswith("cms: reading the ") for line in reading)
    errors = errors_of(result)
    assert [e.split(":")[2].strip() for e in errors] == ["dcat-us listing", "dkan listing"]  # which one, once each
    assert all(e.endswith("(no earlier listing to keep)") for e in errors)
    assert "cms: 1 dataset, 0 fetchable (not: 1 listing not read)" in lines
    query = "select fetchable, why_not from liberacion.datasets where ref = 'cms/hospital-general-information'"
    found = cli("sql", query, "--format", "json")
    assert json.loads(found.stdout) == [{"fetchable": False, "why_not": "listing not read"}]


def test_show_on_a_narrow_screen_wraps_what_people_copy(
    cli: Any, offline_cms: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    out = cli("show", "cms/hospital-general-information", "--format", "table").stdout
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("lake"))
    pieces = [lines[start].split(None, 1)[1]]
    pieces += [line.strip() for line in lines[start + 1 :] if line.startswith(" " * 19) and line.strip()][:2]
    assert "".join(pieces).startswith("cms.hospital_general_information:")  # whole, not cut with "…"
    assert all(len(line) <= 40 for line in lines)
