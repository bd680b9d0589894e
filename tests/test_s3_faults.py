"""An object store that misbehaves, through the CLI: throttling (503 SlowDown) is retried on the
upload, on the Iceberg metadata writes and on reads; a missing bucket, refused credentials and an
unreachable endpoint are one ``error:`` line with the documented exit code.

The faults come from a small HTTP proxy the tests own, placed between liberacion and the loopback
S3 server (moto): it answers chosen requests with a real S3 error document and forwards every other
request unchanged, so the AWS SDK under pyarrow sees exactly what a store under load sends.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from liberacion.errors import ExitCode
from tests.conftest import ROOT, run_process

pytest.importorskip("moto.server")
pytest.importorskip("pyiceberg")

SLOW_DOWN = (503, "SlowDown", "Please reduce your request rate.")
BAD_KEY = (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
# Headers that belong to one hop, never forwarded as they are.
HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "expect", "te", "upgrade"}


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it."""

    method: str
    path: str
    range: str = ""  # a ranged GET's Range header: each range is a request of its own

    @property
    def key(self) -> str:
        """The path without the query: which object it was."""
        return self.path.split("?", 1)[0]


Fault = tuple[int, str, str]
Rule = Callable[[Seen, int], Fault | None]  # the request and how often this exact request was seen


@dataclass
class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream``: ``rule`` picks the requests answered
    with an S3 error; ``sent`` counts the errors by code, ``faulted`` lists the requests they
    answered, ``attempts`` counts how often each exact request came."""

    upstream: str
    rule: Rule = lambda seen, attempt: None
    sent: Counter[str] = field(default_factory=Counter)
    faulted: list[Seen] = field(default_factory=list)
    attempts: Counter[Seen] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(ProxyHandler):
            owner = proxy

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, rule: Rule) -> None:
        """From now on, answer by ``rule``; every request counts as new again."""
        with self.lock:
            self.rule = rule
            self.attempts.clear()

    def decide(self, seen: Seen) -> Fault | None:
        with self.lock:
            self.attempts[seen] += 1
            fault = self.rule(seen, self.attempts[seen])
            if fault is not None:
                self.sent[fault[1]] += 1
                self.faulted.append(seen)
            return fault


class ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        pass

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def _handle(self) -> None:
        body = self._read_body()  # read whatever the answer: the connection is reused
        fault = self.owner.decide(Seen(self.command, self.path, self.headers.get("Range", "")))
        if fault is not None:
            self._send_error(*fault)
        else:
            self._forward(body)

    def _read_body(self) -> bytes:
        """The request body as sent: raw chunked framing is kept, for the upstream to decode."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raw = bytearray()
            while True:
                line = self.rfile.readline()
                raw += line
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, then the blank line
                        trailer = self.rfile.readline()
                        raw += trailer
                        if trailer in (b"\r\n", b"\n", b""):
                            return bytes(raw)
                raw += self.rfile.read(size + 2)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_error(self, status: int, code: str, message: str) -> None:
        document = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Resource>{self.path.split('?', 1)[0]}</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-amz-request-id", "4442587FB7D0A2F9")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(document)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(document)

    def _forward(self, body: bytes) -> None:
        """The request to the upstream as it came (the signed Host header included), and its
        answer back with status and headers, the body streamed in pieces."""
        target = urlsplit(self.owner.upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_HEADERS or name.lower() == "transfer-encoding":
                    conn.putheader(name, value)
            conn.endheaders(body or None)
            answer = conn.getresponse()
            self.send_response(answer.status, answer.reason)
            length = answer.getheader("Content-Length")
            for name, value in answer.getheaders():
                if name.lower() not in HOP_HEADERS and name.lower() != "content-length":
                    self.send_header(name, value)
            if self.command == "HEAD" or answer.status in (204, 304):
                self.send_header("Content-Length", length or "0")
                self.end_headers()
                return
            if length is None:  # the upstream chunked it: measure it here
                data = answer.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_header("Content-Length", length)
            self.end_headers()
            while piece := answer.read(64 * 1024):
                self.wfile.write(piece)
        finally:
            conn.close()


@pytest.fixture
def proxy(s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The fault proxy in front of the loopback S3 server; AWS_ENDPOINT_URL names the proxy."""
    server = FaultProxy(s3_endpoint).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "clinics.csv"
    lines = ["ccn,state,beds"] + [f"{10000 + i:06d},{'MA' if i % 3 else 'NY'},{i}" for i in range(500)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


EXPECTED = [("MA", 333, 83_167), ("NY", 167, 41_583)]
QUERY = "select state, count(*), sum(beds) from x.clinics group by state order by state"


def _throttle_new_objects(seen: Seen, attempt: int) -> Fault | None:
    """The first try at writing each object (a PutObject, or the CreateMultipartUpload that starts
    one) is answered SlowDown."""
    query = seen.path.partition("?")[2]
    starts = (seen.method == "PUT" and "uploadId=" not in query) or (seen.method == "POST" and query == "uploads")
    return SLOW_DOWN if starts and attempt == 1 else None


def _throttle_reads(seen: Seen, attempt: int) -> Fault | None:
    """Every distinct read (a HEAD, a GET of an object or of a byte range, a listing) is refused
    on its first try."""
    return SLOW_DOWN if seen.method in ("GET", "HEAD") and attempt == 1 else None


def _rows(result: Any) -> list[tuple[str, int, int]]:
    lines = result.stdout.strip().splitlines()[1:]  # the CSV header first
    return [(s, int(n), int(b)) for s, n, b in (line.split(",") for line in lines)]


def _sql(lake: str) -> subprocess.CompletedProcess[str]:
    return run_process("--lake", lake, "sql", QUERY, "--format", "csv")


# -- throttling is retried -----------------------------------------------------------------------------


def test_a_throttled_publish_is_retried_until_it_lands(proxy: FaultProxy, bucket: str, csv_file: Path) -> None:
    """The first try at writing each object, liberacion's upload of the data files and pyiceberg's
    metadata files and manifests alike, is answered 503 SlowDown; the publish still ends committed,
    every row in it."""
    proxy.answer(_throttle_new_objects)
    lake = f"s3://{bucket}/lake"
    fetched = run_process("--lake", lake, "fetch", str(csv_file), "--as", "x.clinics")
    assert fetched.returncode == 0, fetched.stderr
    assert "Traceback" not in fetched.stderr

    kinds = {Path(seen.key).suffix for seen in proxy.faulted}
    # Really throttled (so the test can fail): the data file, _writer, snapshot.json, three table
    # metadata files, a manifest and a manifest list.
    assert proxy.sent["SlowDown"] >= 8, proxy.sent
    assert {".parquet", ".json", ".avro"} <= kinds, kinds  # data, table metadata, manifests
    proxy.answer(lambda seen, attempt: None)
    read = _sql(lake)
    assert read.returncode == 0, read.stderr
    assert _rows(read) == EXPECTED


def test_a_throttled_read_still_gives_the_right_answer(proxy: FaultProxy, bucket: str, csv_file: Path) -> None:
    """DuckDB's reads of the data files and pyiceberg's reads of the table metadata are each
    refused once with 503 SlowDown, and retried."""
    lake = f"s3://{bucket}/lake"
    assert run_process("--lake", lake, "fetch", str(csv_file), "--as", "x.clinics").returncode == 0
    proxy.answer(_throttle_reads)
    read = _sql(lake)
    assert read.returncode == 0, read.stderr
    assert _rows(read) == EXPECTED
    history = run_process("--lake", lake, "history", "x.clinics", "--format", "csv")
    assert history.returncode == 0, history.stderr
    assert history.stdout.splitlines()[1].split(",")[2:4] == ["true", "500"]  # current, rows
    throttled = {(seen.method, Path(seen.key).suffix) for seen in proxy.faulted}
    assert {("HEAD", ".parquet"), ("GET", ".parquet"), ("GET", ".json")} <= throttled, throttled


# -- what cannot be retried is one clear line ----------------------------------------------------------


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _lake_files(home: Path) -> list[str]:
    lake = home / "lake"
    return sorted(str(p.relative_to(lake)) for p in lake.rglob("*")) if lake.exists() else []


def test_a_missing_bucket_is_one_error_line(bucket: str, csv_file: Path, home: Path) -> None:
    assert run_process("fetch", str(csv_file), "--as", "x.clinics").returncode == 0  # the home's own lake
    before = _lake_files(home)
    failed = run_process("--lake", "s3://no-such-bucket/lake", "fetch", str(csv_file), "--as", "x.clinics")
    line = _one_error_line(failed)
    assert "the bucket no-such-bucket of the lake s3://no-such-bucket/lake does not exist" in line
    assert failed.returncode == ExitCode.FAILED  # fetch is a batch command: one item failed
    assert _lake_files(home) == before
    assert _rows(run_process("sql", QUERY, "--format", "csv")) == EXPECTED
    listed = run_process("--lake", "s3://no-such-bucket/lake", "tables")
    assert "x.clinics" not in listed.stdout  # no commit was made for the missing bucket


@pytest.mark.parametrize(
    ("command", "code"),
    [
        pytest.param(["fetch", "CSV", "--as", "x.new"], ExitCode.FAILED, id="first-fetch"),
        pytest.param(["fetch", "CSV", "--as", "x.clinics"], ExitCode.FAILED, id="fetch-again"),
        pytest.param(["tables"], ExitCode.CONFIG, id="tables"),
        pytest.param(["history", "x.clinics"], ExitCode.CONFIG, id="history"),
        pytest.param(["sql", QUERY], ExitCode.CONFIG, id="sql"),
    ],
)
def test_refused_credentials_are_one_error_line(
    proxy: FaultProxy, bucket: str, csv_file: Path, command: list[str], code: ExitCode
) -> None:
    """Every request answered 403 InvalidAccessKeyId: the line says to check the credentials, and
    nothing is retried (a refusal does not go away by asking again). The first publish of a table
    meets the refusal on its upload; the others on a read of the table's metadata."""
    lake = f"s3://{bucket}/lake"
    assert run_process("--lake", lake, "fetch", str(csv_file), "--as", "x.clinics").returncode == 0
    proxy.answer(lambda seen, attempt: BAD_KEY)
    failed = run_process("--lake", lake, *[str(csv_file) if arg == "CSV" else arg for arg in command])
    line = _one_error_line(failed)
    assert "refused our credentials" in line and "AWS_ACCESS_KEY_ID" in line, line
    assert failed.returncode == code  # fetch is a batch command: 1 when an item failed
    assert max(proxy.attempts.values()) == 1, proxy.attempts


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_store_is_one_error_line_in_bounded_time(bucket: str, csv_file: Path) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ENDPOINT_URL": endpoint}
    command = [sys.executable, "-m", "liberacion", "--lake", f"s3://{bucket}/lake", "fetch", str(csv_file)]
    failed = subprocess.run([*command, "--as", "x.clinics"], capture_output=True, text=True, env=env, timeout=30)
    line = _one_error_line(failed)
    assert f"cannot reach the store {endpoint}" in line, line
    assert failed.returncode == ExitCode.FAILED  # Unreachable's code; fetch's for a failed item too


def test_no_credentials_at_all_is_one_error_line(
    bucket: str, csv_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No key in the environment, no credentials file, no instance metadata: the upload says which
    settings to give (the loopback server lets the anonymous reads before it through)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    failed = run_process("--lake", f"s3://{bucket}/lake", "fetch", str(csv_file), "--as", "x.clinics")
    line = _one_error_line(failed)
    assert "found no credentials for the store" in line and "AWS_ACCESS_KEY_ID" in line, line
    assert failed.returncode == ExitCode.FAILED  # fetch is a batch command: one item failed
