"""The HTTP layer against a local server that injects faults: retries, resume, verification."""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from liberacion.download import (
    PARTIAL,
    Credentials,
    HttpClient,
    HttpConfig,
    ProgressEvent,
    Validators,
    fetch_document,
    redact,
    url_key,
)
from liberacion.download.session import _retry_after
from liberacion.errors import ConfigError, Interrupted, SourceError
from tests.server import Handler, LocalServer, RequestHandler, Route

BODY = os.urandom(300_000)
SHA = hashlib.sha256(BODY).hexdigest()


def client(**config: object) -> HttpClient:
    """A client with fast backoff, so fault tests take milliseconds, not minutes."""
    settings: dict[str, object] = {"backoff": 0.01, "timeout": 2.0, "retries": 3}
    settings.update(config)
    return HttpClient(HttpConfig(**settings), credentials=Credentials())  # type: ignore[arg-type]


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    return tmp_path / "downloads"


def test_plain_download_is_hashed_and_named_after_the_url(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/files/data.csv", BODY)
    events: list[ProgressEvent] = []
    result = client().download(url, downloads, progress=events.append)
    assert result.status == 200 and result.sha256 == SHA and result.size == len(BODY)
    assert result.path is not None and result.path.name == "data.csv" and result.path.read_bytes() == BODY
    assert result.transferred == len(BODY) and result.resumed_from == 0
    assert result.etag and result.last_modified
    assert not (result.path.parent / PARTIAL).exists()
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "advance" in kinds
    assert events[-1].done == len(BODY)
    request = http_server.hits("/files/data.csv")[0]
    assert request.headers["User-Agent"].startswith("liberacion/")


def test_503_twice_then_200(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/flaky.csv", BODY, fail_times=2, fail_status=503)
    events: list[ProgressEvent] = []
    result = client().download(url, downloads, progress=events.append)
    assert result.sha256 == SHA
    assert len(http_server.hits("/flaky.csv")) == 3
    retries = [e for e in events if e.kind == "retry"]
    assert len(retries) == 2 and "HTTP 503" in str(retries[0].message)


def test_429_waits_as_long_as_retry_after_says(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/limited.csv", BODY, fail_times=1, fail_status=429, fail_headers={"Retry-After": "1"})
    start = time.monotonic()
    result = client().download(url, downloads)
    assert result.sha256 == SHA
    assert time.monotonic() - start >= 0.9  # the backoff alone would be 10 ms
    assert len(http_server.hits("/limited.csv")) == 2


def test_retry_after_forms_and_cap() -> None:
    assert _retry_after("7") == 7.0
    soon = _retry_after(formatdate(time.time() + 30, usegmt=True))
    assert soon is not None and 25 < soon <= 31
    assert _retry_after(formatdate(time.time() - 30, usegmt=True)) == 0.0
    assert _retry_after("soon") is None and _retry_after(None) is None
    assert client(retry_after_max=5.0)._delay(1, 3600.0) == 5.0


def test_permanent_500_fails_after_bounded_attempts(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/broken.csv", BODY, fail_times=100, fail_status=500)
    with pytest.raises(SourceError, match=r"failed after 3 attempts: HTTP 500.*try again later"):
        client(retries=2).download(url, downloads)
    assert len(http_server.hits("/broken.csv")) == 3


def test_404_fails_at_once_with_a_hint(http_server: LocalServer, downloads: Path) -> None:
    with pytest.raises(SourceError, match=r"HTTP 404.*Not Found.*check the URL"):
        client().download(http_server.url("/missing.csv"), downloads)
    assert len(http_server.hits("/missing.csv")) == 1


def test_dropped_connection_resumes_from_the_byte_where_it_stopped(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/big.bin", BODY, drop_after=100_000, drop_times=1)
    events: list[ProgressEvent] = []
    result = client().download(url, downloads, progress=events.append)
    assert result.sha256 == SHA and result.path is not None and result.path.read_bytes() == BODY
    first, second = http_server.hits("/big.bin")
    assert "Range" not in first.headers
    assert second.headers["Range"] == "bytes=100000-"
    assert second.headers["If-Range"] == first_etag(http_server, "/big.bin")
    assert second.headers["Accept-Encoding"] == "identity"
    assert result.transferred == len(BODY)  # 100,000 before the drop + the rest after it
    starts = [e for e in events if e.kind == "start"]
    assert [s.done for s in starts] == [0, 100_000]


def first_etag(server: LocalServer, path: str) -> str:
    return '"' + hashlib.sha256(server.routes[path].body).hexdigest()[:16] + '"'


def drops_then_fails(body: bytes, drop_after: int) -> Handler:
    """A route that drops the connection mid-body once, then answers 503: the run gives up."""
    calls: list[int] = []

    def serve(handler: RequestHandler) -> None:
        calls.append(1)
        if len(calls) == 1:
            handler._serve_static(Route(body=body, drop_after=drop_after, drop_times=1), head=False)
        else:
            handler.send_error_body(503, b"down for maintenance", "text/plain")

    return serve


def test_a_later_run_resumes_the_partial_file(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/big.bin", handler=drops_then_fails(BODY, 120_000))
    with pytest.raises(SourceError, match=r"HTTP 503.*partial download is kept and the next run resumes it"):
        client(retries=0).download(url, downloads)
    partial = downloads / url_key(url) / PARTIAL
    assert partial.stat().st_size == 120_000
    http_server.add("/big.bin", BODY)
    result = client().download(url, downloads)  # a new process, in effect
    assert result.sha256 == SHA
    assert result.resumed_from == 120_000 and result.transferred == len(BODY) - 120_000
    assert http_server.hits("/big.bin")[-1].headers["Range"] == "bytes=120000-"
    assert not partial.exists()


def test_server_without_ranges_restarts_from_zero(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/noranges.bin", BODY, ranges=False, drop_after=100_000, drop_times=1)
    result = client().download(url, downloads)
    assert result.sha256 == SHA and result.resumed_from == 0
    second = http_server.hits("/noranges.bin")[1]
    assert second.headers.get("Range") == "bytes=100000-"  # asked, but the server sent it all (200)


def test_file_changed_between_runs_restarts_instead_of_splicing(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/moving.bin", handler=drops_then_fails(BODY, 100_000))
    with pytest.raises(SourceError):
        client(retries=0).download(url, downloads)
    new_body = os.urandom(250_000)
    http_server.add("/moving.bin", new_body)  # a new version: new ETag, so If-Range fails
    result = client().download(url, downloads)
    assert result.sha256 == hashlib.sha256(new_body).hexdigest() and result.resumed_from == 0


def test_truncated_body_fails_with_what_arrived(http_server: LocalServer, downloads: Path) -> None:
    def short(handler: RequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.send_header("ETag", '"short"')
        handler.end_headers()
        handler.wfile.write(b"a,b\n" * 125)  # 500 of the 1000 bytes announced
        handler.close_connection = True

    url = http_server.add("/short.csv", handler=short)
    # The first attempt got further than nothing, so it does not count against the 2 retries.
    with pytest.raises(SourceError, match=r"failed after 4 attempts: the connection closed before the whole body"):
        client(retries=2).download(url, downloads)
    assert len(http_server.hits("/short.csv")) == 4


def test_html_page_with_200_is_refused_and_quoted(http_server: LocalServer, downloads: Path) -> None:
    page = "<!DOCTYPE html>\n<html><head><title>Access Denied</title></head><body>You don't have permission</body>"
    url = http_server.add("/data.csv", page, content_type="text/html")
    with pytest.raises(SourceError, match=r"HTML page instead of data \(HTTP 200, text/html\).*Access Denied"):
        client().download(url, downloads)
    assert not (downloads / url_key(url) / PARTIAL).exists()
    assert len(http_server.hits("/data.csv")) == 1  # not retried: it will not get better


def test_json_error_object_is_refused(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/drug.json", '{"error": {"code": "NOT_FOUND", "message": "No matches found!"}}')
    with pytest.raises(SourceError, match=r"sent an error instead of data: .*NOT_FOUND"):
        client().download(url, downloads)
    data = http_server.add("/ok.json", '{"meta": {"results": {"total": 1}}, "results": [{"error": 1}]}')
    assert client().download(data, downloads).size > 0


def test_redirect_is_followed_and_credentials_stay_on_their_host(
    http_server: LocalServer, downloads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = http_server.server_address[1]
    target = f"http://localhost:{port}/real.csv"

    def moved(handler: RequestHandler) -> None:
        handler.send_error_body(302, b"", "text/plain", {"Location": target})

    http_server.add("/real.csv", BODY)
    url = http_server.add("/old.csv", handler=moved)
    monkeypatch.setenv("LIBERACION_SOCRATA_HOSTS", "127.0.0.1")
    config = HttpConfig.from_env()
    socrata = HttpClient(config, credentials=Credentials(socrata_token="sekrit"))
    result = socrata.download(url, downloads)
    assert result.final_url == target and result.sha256 == SHA
    assert http_server.hits("/old.csv")[0].headers.get("X-App-Token") == "sekrit"
    assert "X-App-Token" not in http_server.hits("/real.csv")[0].headers
    assert result.path is not None and result.path.name == "real.csv"


def test_redirect_to_a_local_file_is_refused(http_server: LocalServer, downloads: Path) -> None:
    def sneaky(handler: RequestHandler) -> None:
        handler.send_error_body(302, b"", "text/plain", {"Location": "file:///etc/passwd"})

    url = http_server.add("/sneaky.csv", handler=sneaky)
    with pytest.raises(SourceError, match=r"only http:// and https:// URLs"):
        client().download(url, downloads)


def test_too_many_redirects(http_server: LocalServer, downloads: Path) -> None:
    def loop(handler: RequestHandler) -> None:
        handler.send_error_body(301, b"", "text/plain", {"Location": "/loop"})

    url = http_server.add("/loop", handler=loop)
    with pytest.raises(SourceError, match="redirected more than 3 times"):
        client(max_redirects=3).download(url, downloads)


def test_304_when_the_validators_match(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/v.csv", BODY)
    first = client().download(url, downloads)
    again = client().download(url, downloads, validators=Validators(first.etag, first.last_modified))
    assert again.not_modified and again.path is None and again.transferred == 0
    request = http_server.hits("/v.csv")[-1]
    assert request.headers["If-None-Match"] == first.etag
    assert request.headers["If-Modified-Since"] == first.last_modified


def test_slow_server_beyond_the_read_timeout_fails(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/slow.csv", BODY, delay=1.5)
    start = time.monotonic()
    with pytest.raises(SourceError, match="the connection stalled"):
        client(timeout=0.2, retries=1).download(url, downloads)
    assert time.monotonic() - start < 1.5 * 2  # two attempts, each cut short by the timeout


def test_stall_mid_body_fails_and_keeps_the_partial(http_server: LocalServer, downloads: Path) -> None:
    def stall(handler: RequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(BODY)))
        handler.send_header("ETag", '"stall"')
        handler.end_headers()
        handler.wfile.write(BODY[:50_000])
        handler.wfile.flush()
        time.sleep(1.0)

    url = http_server.add("/stall.bin", handler=stall)
    with pytest.raises(SourceError, match=r"stalled.*partial download is kept"):
        client(timeout=0.2, retries=0).download(url, downloads)
    assert (downloads / url_key(url) / PARTIAL).stat().st_size == 50_000


def test_gzip_transfer_encoding_is_decoded(http_server: LocalServer, downloads: Path) -> None:
    text = b"state,count\n" + b"MA,1\n" * 10_000

    def gzipped(handler: RequestHandler) -> None:
        assert "gzip" in handler.headers.get("Accept-Encoding", "")
        packed = gzip.compress(text)
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(packed)))
        handler.end_headers()
        handler.wfile.write(packed)

    url = http_server.add("/rows.csv", handler=gzipped)
    result = client().download(url, downloads)
    assert result.path is not None and result.path.read_bytes() == text
    assert result.sha256 == hashlib.sha256(text).hexdigest()


def test_at_most_two_connections_per_host(http_server: LocalServer, downloads: Path) -> None:
    active = [0, 0]  # now, most
    lock = threading.Lock()

    def counted(handler: RequestHandler) -> None:
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1
        handler.send_error_body(200, b"x,y\n1,2\n", "text/csv", {"ETag": '"c"'})

    shared = client()
    urls = [http_server.add(f"/f{i}.csv", handler=counted) for i in range(5)]
    threads = [threading.Thread(target=shared.download, args=(u, downloads)) for u in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert active[1] == 2


def test_cancel_stops_a_transfer_and_keeps_the_partial(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/crawl.bin", BODY, rate=200_000)
    crawler = client()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            crawler.download(url, downloads)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    partial = downloads / url_key(url) / PARTIAL
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not partial.exists() or partial.stat().st_size == 0):
        time.sleep(0.02)
    crawler.cancel.set()
    thread.join(5)
    assert errors and isinstance(errors[0], Interrupted)
    assert 0 < partial.stat().st_size < len(BODY)


def test_fetch_document_with_validators_and_gzip(http_server: LocalServer) -> None:
    url = http_server.add("/data.json", '{"dataset": []}', content_type="application/json")
    first = fetch_document(url)
    assert first.status == 200 and first.content == b'{"dataset": []}' and first.url == url
    assert first.content_type == "application/json" and first.etag
    again = fetch_document(url, etag=first.etag, last_modified=first.last_modified, headers={"Accept": "x/y"})
    assert again.status == 304 and again.content == b""
    assert http_server.hits("/data.json")[-1].headers["Accept"] == "x/y"


def test_fetch_document_fails_on_client_errors(http_server: LocalServer) -> None:
    with pytest.raises(SourceError, match="HTTP 404"):
        fetch_document(http_server.url("/nothing.json"))


def test_tokens_go_only_to_their_hosts_and_never_print() -> None:
    config = HttpConfig()
    creds = Credentials(socrata_token="tok", openfda_key="key")
    assert creds.headers_for("data.cdc.gov", config) == {"X-App-Token": "tok"}
    assert creds.headers_for("odn.data.socrata.com", config) == {"X-App-Token": "tok"}
    assert creds.headers_for("data.cms.gov", config) == {}
    assert creds.auth_for("api.fda.gov") == ("key", "")
    assert creds.auth_for("download.open.fda.gov") is None
    assert "tok" not in repr(creds) and "key" not in repr(creds).lower().replace("redacted", "")
    assert redact("https://u:p@api.fda.gov/drug/event.json?api_key=abc&limit=1") == (
        "https://api.fda.gov/drug/event.json?api_key=***&limit=1"
    )


def test_settings_from_the_environment() -> None:
    config = HttpConfig.from_env({"LIBERACION_TIMEOUT": "5", "LIBERACION_RETRIES": "1", "LIBERACION_BACKOFF": "0"})
    assert (config.timeout, config.connect_timeout, config.retries, config.backoff) == (5.0, 5.0, 1, 0.0)
    with pytest.raises(ConfigError, match="LIBERACION_TIMEOUT='soon' is not a number"):
        HttpConfig.from_env({"LIBERACION_TIMEOUT": "soon"})
