"""A host that fails every attempt for one file is down for the others too: during an outage a
refresh of many tables spends one request on each, not the whole backoff, and says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liberacion.errors import SourceError
from tests.conftest import Cli
from tests.server import LocalServer
from tests.test_download import client

BODY = b"id,value\n" + b"".join(f"{i},{i * 3}\n".encode() for i in range(2_000))


def test_a_second_file_of_a_host_that_failed_every_attempt_is_tried_once(
    http_server: LocalServer, tmp_path: Path
) -> None:
    first = http_server.add("/a.csv", BODY, fail_times=100)
    second = http_server.add("/b.csv", BODY, fail_times=100)
    session = client(retries=3)
    with pytest.raises(SourceError, match="failed after 4 attempts"):
        session.download(first, tmp_path / "a")
    with pytest.raises(SourceError, match=r"failed: .*503.*not retried: 127\.0\.0\.1:\d+ failed every attempt"):
        session.download(second, tmp_path / "b")
    assert len(http_server.hits("/a.csv")) == 4
    assert len(http_server.hits("/b.csv")) == 1


def test_a_success_on_the_host_brings_back_its_retries(http_server: LocalServer, tmp_path: Path) -> None:
    down = http_server.add("/down.csv", BODY, fail_times=100)
    up = http_server.add("/up.csv", BODY)
    flaky = http_server.add("/flaky.csv", BODY, fail_times=2)
    session = client(retries=3)
    with pytest.raises(SourceError):
        session.download(down, tmp_path / "down")
    session.download(up, tmp_path / "up")  # one attempt, and it answers: the host is back
    session.download(flaky, tmp_path / "flaky")
    assert len(http_server.hits("/flaky.csv")) == 3


def test_a_host_that_sent_part_of_a_file_is_flaky_not_down(http_server: LocalServer, tmp_path: Path) -> None:
    """Bytes arrived before each drop: the next file still gets its retries."""
    dropping = http_server.add("/drops.csv", BODY, drop_after=100, drop_times=100, etag="")
    flaky = http_server.add("/flaky.csv", BODY, fail_times=2)
    session = client(retries=2)
    with pytest.raises(SourceError):
        session.download(dropping, tmp_path / "drops")
    session.download(flaky, tmp_path / "flaky")
    assert len(http_server.hits("/flaky.csv")) == 3


def test_refresh_during_an_outage_spends_one_request_on_most_tables(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIBERACION_RETRIES", "3")
    names = [f"t{i}" for i in range(6)]
    for name in names:
        url = http_server.add(f"/{name}.csv", BODY, content_type="text/csv")
        assert cli("fetch", url, "--as", f"cms.{name}", "--json").exit_code == 0
    before = {name: len(http_server.hits(f"/{name}.csv")) for name in names}
    for name in names:
        http_server.routes[f"/{name}.csv"].fail_times = 100
    result = cli("refresh", "--json")
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    failed = [line for line in lines if line.get("event") == "failed"]
    assert sorted(line["table"] for line in failed) == [f"cms.{name}" for name in names]
    asked = sorted(len(http_server.hits(f"/{name}.csv")) - before[name] for name in names)
    # The tables under way when the host went down (at most --jobs, 4) each spend their whole
    # backoff; every later one, one request.
    assert set(asked) <= {1, 4} and asked.count(4) <= 4 and asked.count(1) >= 2
    assert sum("not retried" in line["error"] for line in failed) == asked.count(1)
