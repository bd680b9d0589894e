"""Answers a download must not believe blindly: a 206 nobody asked for, a range other than the one
asked for, a body that is not the gzip it claims, a Retry-After of a day, a partial file that cannot
resume; and the bytes a failed download moved still count."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from liberacion.download import PARTIAL, Credentials, HttpConfig, HttpSession, url_key
from liberacion.errors import SourceError
from tests.conftest import Cli
from tests.server import Handler, LocalServer, RequestHandler
from tests.test_download import client

BODY = b"id,value\n" + b"".join(f"{i},{i * 7 % 1000}\n".encode() for i in range(40_000))
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    return tmp_path / "downloads"


def answer(
    handler: RequestHandler, status: int, body: bytes, headers: dict[str, str], *, cut_after: int | None = None
) -> None:
    """Send ``body`` with ``headers``; ``cut_after``: close the connection after that many bytes."""
    handler.send_response(status)
    handler.send_header("Content-Type", "text/csv")
    handler.send_header("Content-Length", str(len(body)))
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    if cut_after is None:
        handler.wfile.write(body)
        return
    handler.wfile.write(body[:cut_after])
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.shutdown(2)


def asked_from(handler: RequestHandler) -> int | None:
    wanted = handler.headers.get("Range")
    return int(wanted.removeprefix("bytes=").split("-")[0]) if wanted else None


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- (1) a 206 to a GET that asked for no range ----------------------------------------------------


def test_a_206_carrying_the_whole_file_to_a_plain_get_is_the_file(http_server: LocalServer, downloads: Path) -> None:
    """Some CDNs answer every GET with 206 and ``Content-Range: bytes 0-(n-1)/n``: curl saves it."""

    def serve(handler: RequestHandler) -> None:
        headers = {"ETag": '"v1"', "Content-Range": f"bytes 0-{len(BODY) - 1}/{len(BODY)}"}
        answer(handler, 206, BODY, headers)

    url = http_server.add("/cdn.csv", handler=serve)
    result = client().download(url, downloads)
    assert result.sha256 == SHA and result.size == len(BODY) and result.transferred == len(BODY)
    assert len(http_server.hits("/cdn.csv")) == 1


def test_a_206_with_the_first_piece_to_a_plain_get_is_completed_with_a_range(
    http_server: LocalServer, downloads: Path
) -> None:
    def serve(handler: RequestHandler) -> None:
        start = asked_from(handler) or 0
        end = len(BODY) if start else 100_000  # unasked, it sends the first 100 kB only
        headers = {"ETag": '"p"', "Content-Range": f"bytes {start}-{end - 1}/{len(BODY)}"}
        answer(handler, 206, BODY[start:end], headers)

    url = http_server.add("/pieces.csv", handler=serve)
    result = client().download(url, downloads)
    assert result.sha256 == SHA and result.transferred == len(BODY)
    first, second = http_server.hits("/pieces.csv")
    assert "Range" not in first.headers and second.headers["Range"] == "bytes=100000-"


@pytest.mark.parametrize(
    ("content_range", "said"),
    [(None, "without a Content-Range"), ("bytes 5000-9999/400000", "starting at byte 5,000")],
)
def test_a_206_to_a_plain_get_that_cannot_be_placed_fails_at_once(
    http_server: LocalServer, downloads: Path, content_range: str | None, said: str
) -> None:
    def serve(handler: RequestHandler) -> None:
        headers = {"ETag": '"p"', **({"Content-Range": content_range} if content_range else {})}
        answer(handler, 206, BODY[:5000], headers)

    url = http_server.add("/nowhere.csv", handler=serve)
    with pytest.raises(SourceError, match=f"206 Partial Content {said}; the server is misconfigured"):
        client().download(url, downloads)
    assert len(http_server.hits("/nowhere.csv")) == 1


def test_a_206_to_a_plain_get_through_fetch_is_published(cli: Cli, http_server: LocalServer) -> None:
    def serve(handler: RequestHandler) -> None:
        headers = {"ETag": '"v1"', "Content-Range": f"bytes 0-{len(BODY) - 1}/{len(BODY)}"}
        answer(handler, 206, BODY, headers)

    url = http_server.add("/cdn.csv", handler=serve)
    result = cli("fetch", url, "--as", "local.cdn", "--json")
    line = json_lines(result.stdout)[0]
    assert result.exit_code == 0, result.stderr
    assert line["status"] == "fetched" and line["rows"] == 40_000 and line["bytes"] == len(BODY)


# -- (2) a resume answered with another range --------------------------------------------------------


def wrong_range_after_a_drop() -> Handler:
    """Drops the first download half-way; then answers any range from 1,000 bytes before the one
    asked for, and a plain GET with the whole file."""
    calls: list[int] = []

    def serve(handler: RequestHandler) -> None:
        calls.append(1)
        start = asked_from(handler)
        if start is not None:
            begin = max(0, start - 1000)
            headers = {"ETag": '"w"', "Content-Range": f"bytes {begin}-{len(BODY) - 1}/{len(BODY)}"}
            answer(handler, 206, BODY[begin:], headers)
            return
        answer(handler, 200, BODY, {"ETag": '"w"', "Accept-Ranges": "bytes"}, cut_after=None if calls[1:] else 300_000)

    return serve


def test_a_resume_answered_with_another_range_starts_again_from_zero_in_the_same_run(
    http_server: LocalServer, downloads: Path
) -> None:
    url = http_server.add("/wrong.csv", handler=wrong_range_after_a_drop())
    result = client().download(url, downloads)
    assert result.sha256 == SHA and result.resumed_from == 0
    dropped, resumed, restarted = http_server.hits("/wrong.csv")
    assert "Range" not in dropped.headers and resumed.headers["Range"] == "bytes=300000-"
    assert "Range" not in restarted.headers


def test_a_partial_left_by_an_earlier_run_is_not_stuck_on_a_wrong_range(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    """The next run (cron) gets the file: it does not fail forever asking for the same range."""
    serve = wrong_range_after_a_drop()
    calls: list[int] = []

    def down_after_the_drop(handler: RequestHandler) -> None:
        calls.append(1)
        if len(calls) == 2:
            handler.send_error_body(503, b"busy", "text/plain")
            return
        serve(handler)

    url = http_server.add("/wrong.csv", handler=down_after_the_drop)
    monkeypatch.setenv("LIBERACION_RETRIES", "0")
    first = cli("fetch", url, "--as", "local.wrong")
    assert first.exit_code == 1 and "partial download is kept" in first.stderr
    assert (home / "downloads" / url_key(url) / PARTIAL).stat().st_size == 300_000
    second = cli("fetch", url, "--as", "local.wrong", "--json")
    assert second.exit_code == 0, second.stderr
    assert json_lines(second.stdout)[0]["rows"] == 40_000
    resumed, restarted = http_server.hits("/wrong.csv")[-2:]
    assert resumed.headers["Range"] == "bytes=300000-" and "Range" not in restarted.headers


# -- (3) a body that is not the encoding it claims -----------------------------------------------------


def test_a_body_that_is_not_the_gzip_it_claims_fails_at_once(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/notgzip.csv", BODY, headers={"Content-Encoding": "gzip"})
    with pytest.raises(SourceError, match=r"does not decode as its Content-Encoding \(gzip\) says") as failure:
        client().download(url, downloads)
    assert "connection failed" not in str(failure.value) and "\n" not in str(failure.value)
    assert len(http_server.hits("/notgzip.csv")) == 1


def test_a_listing_that_is_not_the_gzip_it_claims_fails_at_once(http_server: LocalServer) -> None:
    url = http_server.add("/data.json", b'{"dataset": []}', headers={"Content-Encoding": "gzip"})
    session = HttpSession(HttpConfig(backoff=0.01, retries=3), credentials=Credentials())
    with pytest.raises(SourceError, match=r"does not decode as its Content-Encoding \(gzip\) says"):
        session.fetch_document(url)
    assert len(http_server.hits("/data.json")) == 1


# -- (4) a Retry-After beyond what liberacion waits ---------------------------------------------------


def test_a_retry_after_beyond_the_cap_fails_at_once(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/later.csv", BODY, fail_times=100, fail_status=503, fail_headers={"Retry-After": "100000"})
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"HTTP 503.*asks to retry after about 28 h \(Retry-After\)"):
        client(retry_after_max=0.5).download(url, downloads)
    assert time.monotonic() - start < 0.5  # not even the capped wait
    assert len(http_server.hits("/later.csv")) == 1


def test_a_retry_after_beyond_the_deadline_fails_at_once(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/later.csv", BODY, fail_times=100, fail_status=429, fail_headers={"Retry-After": "30"})
    slow = client(deadline=2.0)
    stop = threading.Timer(5.0, slow.cancel.set)  # before the fix it would wait 30 s: stop it early
    stop.start()
    try:
        with pytest.raises(SourceError, match=r"retry after about 30 s .*LIBERACION_DOWNLOAD_DEADLINE"):
            slow.download(url, downloads)
    finally:
        stop.cancel()
    assert len(http_server.hits("/later.csv")) == 1


# -- (5) what becomes of a partial file ---------------------------------------------------------------


def chunked_then_cut(handler: RequestHandler) -> None:
    """A chunked body cut off before its last chunk, with neither ETag nor Last-Modified."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/csv")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    half = BODY[: len(BODY) // 2]
    for start in range(0, len(half), 65536):
        piece = half[start : start + 65536]
        handler.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.shutdown(2)


def test_a_partial_without_validators_is_not_promised_to_resume(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_server.add("/chunks.csv", handler=chunked_then_cut)
    monkeypatch.setenv("LIBERACION_RETRIES", "0")
    first = cli("fetch", url, "--as", "local.chunks")
    assert first.exit_code == 1
    assert "resumes it" not in first.stderr
    assert "no ETag or Last-Modified to resume by, so the next run starts again" in first.stderr
    cli("fetch", url, "--as", "local.chunks")
    assert "Range" not in http_server.hits("/chunks.csv")[-1].headers  # indeed it started again


def test_a_deadline_without_validators_is_not_promised_to_resume(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/slow.csv", BODY, etag="", last_modified="", rate=64 * 1024)
    with pytest.raises(SourceError, match=r"LIBERACION_DOWNLOAD_DEADLINE.*so the next run starts again"):
        client(deadline=0.5).download(url, downloads)
    http_server.routes["/slow.csv"].rate = None  # let the server thread finish at once


# -- (6) a failed download still counts its bytes ----------------------------------------------------


def test_a_failed_download_reports_the_bytes_it_received(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def short(handler: RequestHandler) -> None:  # promises 1,000 bytes more than it sends
        handler.send_response(200)
        handler.send_header("Content-Type", "text/csv")
        handler.send_header("Content-Length", str(len(BODY) + 1000))
        handler.end_headers()
        handler.wfile.write(BODY)
        handler.close_connection = True

    url = http_server.add("/short.csv", handler=short)
    monkeypatch.setenv("LIBERACION_RETRIES", "1")
    result = cli("fetch", url, "--as", "local.short", "--json")
    line = json_lines(result.stdout)[0]
    assert result.exit_code == 1 and line["status"] == "failed" and line["stage"] == "download"
    attempts = len(http_server.hits("/short.csv"))
    assert attempts >= 2 and line["bytes"] == attempts * len(BODY)


def test_a_retry_after_of_zero_still_backs_off(http_server: LocalServer, downloads: Path) -> None:
    """Retry-After: 0 (or a date already past) is no reason to hammer a struggling server."""
    url = http_server.add("/busy.csv", BODY, fail_times=2, fail_status=503, fail_headers={"Retry-After": "0"})
    start = time.monotonic()
    client(backoff=0.3).download(url, downloads)
    assert time.monotonic() - start >= 0.3  # two waits of at least half the 0.3 s and 0.6 s backoffs
    assert len(http_server.hits("/busy.csv")) == 3


def test_an_absurd_retry_after_is_said_in_years(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/never.csv", BODY, fail_times=100, fail_status=503, fail_headers={"Retry-After": "9" * 40})
    with pytest.raises(SourceError, match=r"asks to retry after years \(Retry-After\)"):
        client().download(url, downloads)
