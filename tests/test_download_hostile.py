"""Downloads against hostile servers made in the test (issue 15): nothing mixed, nothing hangs,
no decompression without a cap, no credentials to another origin, no secret stored or shown."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from liberacion.download import PARTIAL, url_key
from liberacion.download.session import sends_credentials
from tests.conftest import Cli
from tests.server import Handler, LocalServer, RequestHandler


def csv_rows(version: str, count: int) -> bytes:
    return b"id,version\n" + b"".join(f"{i},{version}\n".encode() for i in range(count))


def rows_of(cli: Cli, table: str) -> list[str]:
    result = cli("sql", f"select version, count(*) as n from {table} group by 1 order by 1", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip().splitlines()[1:]


@pytest.fixture
def other_server() -> Iterator[LocalServer]:
    server = LocalServer().start()
    try:
        yield server
    finally:
        server.stop()


# -- (2) a 206 of another version restarts from byte 0 -------------------------------------------


def test_a_206_of_another_version_is_never_joined_to_the_partial(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    """The server ignores If-Range and answers a 206 of its new version: the download restarts."""
    versions = {"A": csv_rows("A", 20_000), "B": csv_rows("B", 20_000)}
    current = {"version": "A", "drop": True}

    def serve(handler: RequestHandler) -> None:
        version = current["version"]
        if version == "A" and not current["drop"]:  # after the drop: down until version B is out
            handler.send_error_body(503, b"down for maintenance", "text/plain")
            return
        body = versions[version]
        start = 0
        wanted = handler.headers.get("Range")
        if wanted:  # hostile: a range of whatever it has now, whatever If-Range says
            start = int(wanted.removeprefix("bytes=").split("-")[0])
        handler.send_response(206 if start else 200)
        handler.send_header("Content-Type", "text/csv")
        handler.send_header("Content-Length", str(len(body) - start))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        handler.send_header("ETag", f'"{version}"')
        handler.send_header("Last-Modified", "Tue, 01 Dec 2026 00:00:00 GMT" if version == "A" else "")
        handler.end_headers()
        if current["drop"]:
            current["drop"] = False
            handler.wfile.write(body[start : start + 100_000])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        handler.wfile.write(body[start:])

    url = http_server.add("/rows.csv", handler=serve)
    monkeypatch.setenv("LIBERACION_RETRIES", "0")
    first = cli("fetch", url, "--as", "local.rows")
    assert first.exit_code == 1 and "partial download is kept" in first.stderr
    partial = home / "downloads" / url_key(url) / PARTIAL
    assert partial.stat().st_size == 100_000

    current["version"] = "B"
    second = cli("fetch", url, "--as", "local.rows")
    assert second.exit_code == 0, second.stderr
    assert rows_of(cli, "local.rows") == ["B,20000"]  # never 10,694 of A and 9,306 of B
    resumed, restarted = http_server.hits("/rows.csv")[-2:]
    assert resumed.headers["Range"] == "bytes=100000-" and resumed.headers["If-Range"] == '"A"'
    assert "Range" not in restarted.headers


# -- (12) a slow drip fails instead of holding the run ---------------------------------------------


def dripping(total: int, piece: bytes, every: float) -> Handler:
    """A server announcing ``total`` bytes and sending ``piece`` every ``every`` seconds."""

    def serve(handler: RequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/csv")
        handler.send_header("Content-Length", str(total))
        handler.send_header("ETag", '"drip"')
        handler.end_headers()
        handler.wfile.write(b"id,value\n")
        sent = 9
        try:
            while sent < total:
                handler.wfile.write(piece)
                handler.wfile.flush()
                sent += len(piece)
                time.sleep(every)
        except OSError:  # the client gave up: that is the point
            return

    return serve


def test_a_slow_drip_fails_below_the_minimum_rate(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    # One byte every 0.05 s: never silent long enough for the stall timeout, far below 1 KB/s.
    url = http_server.add("/drip.csv", handler=dripping(10_000_000, b"1", 0.05))
    monkeypatch.setenv("LIBERACION_MIN_RATE", "1024")
    monkeypatch.setenv("LIBERACION_MIN_RATE_SECONDS", "1")
    start = time.monotonic()
    result = cli("fetch", url, "--json")
    assert time.monotonic() - start < 30  # generous: the rule fires after about 1 s
    assert result.exit_code == 1
    line = json.loads(result.stdout.splitlines()[0])
    assert line["status"] == "failed"
    assert "bytes/s" in line["error"] and "LIBERACION_MIN_RATE" in line["error"]
    assert "partial download is kept" in line["error"]
    assert len(http_server.hits("/drip.csv")) == 1  # not retried: a drip does not heal in seconds
    assert (home / "downloads" / url_key(url) / PARTIAL).stat().st_size > 0


def test_a_download_slower_than_its_deadline_fails(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 64 KiB every 0.05 s is well above the minimum rate, but the file would take minutes.
    url = http_server.add("/long.csv", handler=dripping(1_000_000_000, b"1\n" * 32_768, 0.05))
    monkeypatch.setenv("LIBERACION_DOWNLOAD_DEADLINE", "1")
    start = time.monotonic()
    result = cli("fetch", url)
    assert time.monotonic() - start < 30
    assert result.exit_code == 1
    assert "took longer than 1 s (LIBERACION_DOWNLOAD_DEADLINE)" in result.stderr


def test_rate_settings_that_are_not_numbers_are_configuration_errors(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_server.add("/ok.csv", csv_rows("A", 3))
    monkeypatch.setenv("LIBERACION_MIN_RATE", "fast")
    result = cli("fetch", url)
    assert result.exit_code == 5 and "LIBERACION_MIN_RATE='fast' is not a number" in result.stderr


# -- (9) Content-Encoding obeys the decompression cap ----------------------------------------------


def test_a_gzip_content_encoding_bomb_is_refused(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    bomb = gzip.compress(b"id,value\n" + b"0" * 50_000_000)  # 50 MB from about 50 KB

    def serve(handler: RequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/csv")
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(bomb)))
        handler.end_headers()
        handler.wfile.write(bomb)

    url = http_server.add("/bomb.csv", handler=serve)
    small = http_server.add("/small.csv", gzip.compress(csv_rows("A", 100)), headers={"Content-Encoding": "gzip"})
    monkeypatch.setenv("LIBERACION_MAX_UNZIPPED_BYTES", "1000000")
    result = cli("fetch", url)
    assert result.exit_code == 1
    assert "expands to more than 1,000,000 bytes (see LIBERACION_MAX_UNZIPPED_BYTES)" in result.stderr
    leftovers = [p for p in (home / "downloads").rglob("*") if p.is_file() and p.stat().st_size > 1_000_000]
    assert not leftovers
    assert cli("fetch", small, "--as", "local.small").exit_code == 0  # under the cap: decoded as before
    assert rows_of(cli, "local.small") == ["A,100"]


# -- (14) credentials stay with their origin, secrets in URLs are never kept -----------------------


def test_tokens_never_follow_a_redirect_to_another_port(
    cli: Cli, http_server: LocalServer, other_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = other_server.add("/real.csv", csv_rows("A", 10))

    def moved(handler: RequestHandler) -> None:
        handler.send_error_body(302, b"", "text/plain", {"Location": target})

    url = http_server.add("/old.csv", handler=moved)
    monkeypatch.setenv("LIBERACION_SOCRATA_HOSTS", "127.0.0.1")
    monkeypatch.setenv("LIBERACION_SOCRATA_APP_TOKEN", "sekrit")
    result = cli("fetch", url, "--as", "local.moved")
    assert result.exit_code == 0, result.stderr
    assert http_server.hits("/old.csv")[0].headers.get("X-App-Token") == "sekrit"  # its own origin
    assert "X-App-Token" not in other_server.hits("/real.csv")[0].headers  # same host, another port


def test_credentials_only_to_the_same_origin_over_https() -> None:
    assert sends_credentials("https://data.cdc.gov/a.csv", "https://data.cdc.gov/b.csv")
    assert sends_credentials("https://data.cdc.gov/a.csv", "https://data.cdc.gov:443/b.csv")
    assert not sends_credentials("http://data.cdc.gov/a.csv", "http://data.cdc.gov/a.csv")  # plain http
    assert not sends_credentials("https://data.cdc.gov/a.csv", "http://data.cdc.gov/a.csv")  # a downgrade
    assert not sends_credentials("https://data.cdc.gov/a.csv", "https://data.cdc.gov:8443/a.csv")
    assert not sends_credentials("https://api.fda.gov/x.json", "https://evil.example/x.json")
    assert sends_credentials("http://127.0.0.1:8080/a.csv", "http://127.0.0.1:8080/b.csv")  # never leaves


SECRETS = ("SECRET123", "TOKEN456", "PASS789")


def test_a_secret_in_a_url_is_redacted_everywhere_it_is_kept_or_shown(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    http_server.add("/rows.csv", csv_rows("A", 50))
    url = http_server.url("/rows.csv?api_key=SECRET123&$$app_token=TOKEN456&limit=50")
    url = url.replace("http://", "http://user:PASS789@")
    fetched = cli("fetch", url, "--as", "local.rows", "--json")
    assert fetched.exit_code == 0, fetched.stderr
    assert "api_key=***" in fetched.stdout
    shown = [fetched.stdout, fetched.stderr]
    for command in (["tables"], ["tables", "--format", "json"], ["info", "local.rows"], ["history", "local.rows"]):
        result = cli(*command)
        assert result.exit_code == 0, (command, result.stderr)
        shown += [result.stdout, result.stderr]
    assert "api_key=***" in cli("info", "local.rows").stdout
    log = tmp_path / "refresh.log"
    refreshed = cli("refresh", "local.rows", "--json", "--log", str(log))
    assert refreshed.exit_code == 0, refreshed.stderr
    shown += [refreshed.stdout, refreshed.stderr, log.read_text()]
    failed = cli("fetch", http_server.url("/missing.csv?token=SECRET123"), "--json")
    assert failed.exit_code == 1 and "token=***" in failed.stdout + failed.stderr
    shown += [failed.stdout, failed.stderr]
    for text in shown:
        assert not any(secret in text for secret in SECRETS), text
    stored = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in stored) and any(p.name == "snapshot.json" for p in stored)
    for path in stored:  # snapshot.json, Parquet metadata, URL state, logs, the views database
        data = path.read_bytes()
        assert not any(secret.encode() in data for secret in SECRETS), path
    # The refresh replayed the URL without the secret it no longer knows (the environment's tokens
    # apply), never with "***" in place of it.
    replayed = http_server.hits("/rows.csv")[1:]
    assert replayed and all("%2A" not in r.path and "*" not in r.path for r in replayed)


def test_a_dripping_listing_fails_its_catalog_below_the_minimum_rate(
    cli: Cli, http_server: LocalServer, manifests: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """discover holds the index lock: a listing sent a byte at a time must not hold it for ever."""
    url = http_server.add("/data.json", handler=dripping(10_000_000, b" ", 0.05))
    (manifests / "slow.toml").write_text(f'name = "slow"\n[[source]]\nkind = "socrata"\nurl = "{url}"\n')
    monkeypatch.setenv("LIBERACION_MIN_RATE", "1024")
    monkeypatch.setenv("LIBERACION_MIN_RATE_SECONDS", "1")
    # Listings go through the process-wide client, configured when first used: make a new one.
    monkeypatch.setattr("liberacion.download.session._default", None)
    start = time.monotonic()
    result = cli("discover", "slow")
    assert time.monotonic() - start < 30
    assert result.exit_code == 1
    assert "below the minimum of 1,024 (LIBERACION_MIN_RATE" in result.stderr and "try again later" in result.stderr


def test_a_secret_in_a_manifest_url_is_redacted_in_the_queryable_index(
    cli: Cli, http_server: LocalServer, manifests: Path, home: Path
) -> None:
    url = http_server.add("/rows.csv", csv_rows("A", 5))
    (manifests / "keyed.toml").write_text(
        'name = "keyed"\n[[dataset]]\nid = "rows"\ntitle = "Rows"\n'
        f'url = "{url}?api_key=SECRET123"\nlanding_page = "https://example.org/rows?token=TOKEN456"\n'
    )
    assert cli("discover", "keyed").exit_code == 0
    shown = cli("sql", "--format", "json", "select fetch_url, landing_page, distributions from liberacion.datasets")
    assert shown.exit_code == 0, shown.stderr
    assert "api_key=***" in shown.stdout and "token=***" in shown.stdout
    assert not any(secret in shown.stdout for secret in SECRETS)
    assert not any(secret.encode() in home.joinpath("index", "datasets.parquet").read_bytes() for secret in SECRETS)
    # fetch still has the key it needs: the catalog's own part keeps the URL as the manifest says.
    assert cli("fetch", "keyed/rows").exit_code == 0
    assert any("api_key=SECRET123" in r.path for r in http_server.hits("/rows.csv"))


def test_progress_events_of_the_python_api_carry_no_secret(http_server: LocalServer, home: Path) -> None:
    import liberacion

    url = http_server.add("/rows.csv", csv_rows("A", 5)) + "?api_key=SECRET123"
    events: list[Any] = []
    [result] = liberacion.fetch([url], home=home, as_table="local.rows", progress=events.append)
    assert result.status == "fetched"
    assert {e.kind for e in events} >= {"start", "done"}
    assert not any("SECRET123" in f"{e.key} {e.name} {e.message}" for e in events)
