"""Two-segment downloads (the default; LIBERACION_DOWNLOAD_SEGMENTS=1 turns them off): the same
bytes and sha256 as one stream, each segment resumable, one stream whenever the server cannot do
ranges, a new version from zero."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from liberacion.download import PARTIAL, Credentials, HttpClient, HttpConfig, ProgressEvent, url_key
from liberacion.errors import ConfigError, Interrupted
from tests.server import Handler, LocalServer, RequestHandler, Route

SIZE = 3 << 20
MIDDLE = SIZE // 2
BODY = os.urandom(SIZE)
SHA = hashlib.sha256(BODY).hexdigest()


def client(**config: object) -> HttpClient:
    """The default number of segments; segments from 1 MiB up (the default threshold is 256 MiB), fast backoff."""
    settings: dict[str, object] = {"backoff": 0.01, "timeout": 5.0, "retries": 3}
    settings.update(segment_min=1 << 20, **config)
    return HttpClient(HttpConfig(**settings), credentials=Credentials())  # type: ignore[arg-type]


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    return tmp_path / "downloads"


def _ranges(server: LocalServer, path: str) -> list[str | None]:
    return [r.headers.get("Range") for r in server.hits(path)]


def _interrupt_after(url: str, downloads: Path, received: int) -> None:
    """Start downloading ``url`` and stop it (as Ctrl-C does) once ``received`` bytes are in."""
    first = client()

    def stop(event: ProgressEvent) -> None:
        if event.kind == "advance" and event.done >= received:
            first.cancel.set()

    with pytest.raises(Interrupted):
        first.download(url, downloads, progress=stop)


def test_two_segments_give_the_same_file_and_sha256_as_one_stream(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/big.bin", BODY)
    events: list[ProgressEvent] = []
    result = client().download(url, downloads, progress=events.append)
    assert result.path is not None and result.path.read_bytes() == BODY
    assert result.sha256 == SHA and result.size == SIZE and result.transferred == SIZE
    assert not (result.path.parent / PARTIAL).exists() and not (result.path.parent / "download.json").exists()
    hits = http_server.hits("/big.bin")
    assert [h.headers.get("Range") for h in hits] == [None, f"bytes={MIDDLE}-{SIZE - 1}"]
    assert hits[1].headers.get("If-Range") == result.etag  # the second half of the same version only
    assert events[-1].kind == "done" and events[-1].done == SIZE
    assert max(e.done for e in events if e.kind == "advance") == SIZE
    # The same file with segments turned off (LIBERACION_DOWNLOAD_SEGMENTS=1): one request.
    one = client(segments=1).download(url, downloads / "one")
    assert one.sha256 == SHA and _ranges(http_server, "/big.bin")[2:] == [None]


def test_a_dropped_connection_resumes_each_segment_where_it_stopped(http_server: LocalServer, downloads: Path) -> None:
    url = http_server.add("/big.bin", BODY, drop_after=200_000, drop_times=2)  # both first connections
    result = client().download(url, downloads)
    assert result.path is not None and result.path.read_bytes() == BODY and result.sha256 == SHA
    ranges = _ranges(http_server, "/big.bin")
    assert ranges[:2] == [None, f"bytes={MIDDLE}-{SIZE - 1}"]
    assert sorted(ranges[2:]) == sorted([f"bytes=200000-{MIDDLE - 1}", f"bytes={MIDDLE + 200_000}-{SIZE - 1}"])
    assert result.transferred == SIZE  # nothing received twice


def test_an_interrupted_download_resumes_both_segments_in_a_later_run(
    http_server: LocalServer, downloads: Path
) -> None:
    url = http_server.add("/big.bin", BODY, rate=1 << 20)  # about 1.5 s per segment
    _interrupt_after(url, downloads, SIZE // 3)
    meta = json.loads((downloads / url_key(url) / "download.json").read_text())
    done = [s["done"] for s in meta["segments"]]
    assert all(0 < d < MIDDLE for d in done), done  # both segments had started, neither had finished
    http_server.routes["/big.bin"].rate = None
    before = len(http_server.requests)
    result = client().download(url, downloads)
    assert result.path is not None and result.path.read_bytes() == BODY and result.sha256 == SHA
    # Each segment asked for from at most what the interrupted run recorded: nothing from zero.
    assert len(http_server.requests) - before == 2
    starts = sorted(int(str(r).removeprefix("bytes=").split("-")[0]) for r in _ranges(http_server, "/big.bin")[-2:])
    assert starts == [done[0], MIDDLE + done[1]]
    assert result.resumed_from == sum(done) and result.transferred == SIZE - sum(done)


def test_a_killed_download_resumes_each_segment_from_what_it_recorded(
    http_server: LocalServer, downloads: Path
) -> None:
    """kill -9 mid-way: the segments' progress was saved every half second, so neither starts over."""
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    url = http_server.add("/big.bin", BODY, rate=512 << 10)  # 3 s per segment
    code = (
        "import sys, threading\n"
        "from liberacion.download import Credentials, HttpClient, HttpConfig\n"
        "client = HttpClient(HttpConfig(segments=2, segment_min=1 << 20), credentials=Credentials())\n"
        "lock = threading.Lock()  # both segments report: one whole line at a time\n"
        "def show(event):\n"
        "    if event.kind == 'advance':\n"
        "        with lock:\n"
        "            print(event.done, flush=True)\n"
        "client.download(sys.argv[1], __import__('pathlib').Path(sys.argv[2]), progress=show)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, url, str(downloads)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    for line in child.stdout:
        if int(line) >= SIZE // 2:  # about 1.5 s in: both segments' progress was saved since
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    meta = json.loads((downloads / url_key(url) / "download.json").read_text())
    done = [s["done"] for s in meta["segments"]]
    assert all(0 < d < MIDDLE for d in done), done
    http_server.routes["/big.bin"].rate = None
    result = client().download(url, downloads)
    assert result.path is not None and result.path.read_bytes() == BODY and result.sha256 == SHA
    starts = sorted(int(str(r).removeprefix("bytes=").split("-")[0]) for r in _ranges(http_server, "/big.bin")[-2:])
    assert starts == [done[0], MIDDLE + done[1]]


@pytest.mark.parametrize(
    ("route", "requests"),
    [
        (Route(body=BODY, ranges=False), 1),  # no Accept-Ranges: not even asked
        (Route(body=BODY, ranges=False, headers={"Accept-Ranges": "bytes"}), 2),  # says so, answers 200
        (Route(body=BODY, chunked=True), 1),  # no Content-Length
    ],
    ids=["no-ranges", "ignores-range", "no-length"],
)
def test_a_server_without_ranges_or_a_length_gives_one_stream(
    http_server: LocalServer, downloads: Path, route: Route, requests: int
) -> None:
    http_server.routes["/big.bin"] = route
    result = client().download(http_server.url("/big.bin"), downloads)
    assert result.path is not None and result.path.read_bytes() == BODY and result.sha256 == SHA
    assert len(http_server.hits("/big.bin")) == requests


def test_a_file_changed_between_attempts_is_downloaded_again_from_zero(
    http_server: LocalServer, downloads: Path
) -> None:
    new = os.urandom(SIZE)
    url = http_server.add("/big.bin", BODY, drop_after=200_000, drop_times=2)

    def change_on_retry(event: ProgressEvent) -> None:
        if event.kind == "retry":  # the server's file changes while the download waits to resume
            http_server.routes["/big.bin"].body = new

    result = client().download(url, downloads, progress=change_on_retry)
    assert result.path is not None and result.path.read_bytes() == new
    assert result.sha256 == hashlib.sha256(new).hexdigest()
    assert result.etag == '"' + hashlib.sha256(new).hexdigest()[:16] + '"'
    assert _ranges(http_server, "/big.bin")[-2:] == [None, f"bytes={MIDDLE}-{SIZE - 1}"]  # from zero again


def _ignoring_if_range(body: bytes) -> Handler:
    """A server that answers every range with the bytes it has now, whatever If-Range says."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    def handle(request: RequestHandler) -> None:
        match = re.fullmatch(r"bytes=(\d+)-\d*", request.headers.get("Range", ""))
        start = int(match.group(1)) if match else 0
        request.send_response(206 if match else 200)
        request.send_header("Content-Length", str(len(body) - start))
        if match:
            request.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        request.send_header("Accept-Ranges", "bytes")
        request.send_header("ETag", etag)
        request.end_headers()
        request.wfile.write(body[start:])

    return handle


def test_a_206_of_another_version_is_never_joined_to_the_partial_file(
    http_server: LocalServer, downloads: Path
) -> None:
    url = http_server.add("/big.bin", BODY, rate=2 << 20)
    _interrupt_after(url, downloads, SIZE // 4)
    new = os.urandom(SIZE)
    http_server.routes["/big.bin"] = Route(handler=_ignoring_if_range(new))
    result = client().download(url, downloads)
    assert result.path is not None and result.path.read_bytes() == new
    assert result.sha256 == hashlib.sha256(new).hexdigest()


def test_the_number_of_segments_comes_from_the_environment() -> None:
    assert HttpConfig.from_env({}).segments == 2
    assert HttpConfig.from_env({"LIBERACION_DOWNLOAD_SEGMENTS": "1"}).segments == 1
    with pytest.raises(ConfigError, match="LIBERACION_DOWNLOAD_SEGMENTS"):
        HttpConfig.from_env({"LIBERACION_DOWNLOAD_SEGMENTS": "0"})


def test_a_full_disk_during_two_segments_is_one_error_and_the_next_run_finishes(
    http_server: LocalServer, downloads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both segments write at once: the disk filling under one stops the download with the disk's
    error (not a thread's traceback, not a wait), and the file is whole and right once there is room."""
    import errno

    from liberacion.download import files
    from liberacion.errors import SourceError

    url = http_server.add("/big.bin", BODY)
    room = {"left": 1 << 20}  # bytes the disk takes, both segments together

    class FullDisk:
        def __init__(self, out: object) -> None:
            self._out = out

        def write(self, data: memoryview) -> int:
            if room["left"] < len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            room["left"] -= len(data)
            return self._out.write(data)  # type: ignore[attr-defined]

    real_init = files._HashingWriter.__init__

    def on_a_small_disk(self: object, out: object, hasher: object, path: Path) -> None:
        real_init(self, FullDisk(out), hasher, path)  # type: ignore[arg-type]

    monkeypatch.setattr(files._HashingWriter, "__init__", on_a_small_disk)
    with pytest.raises(SourceError, match="No space left on device; free some disk space"):
        client().download(url, downloads)
    assert len(http_server.hits("/big.bin")) == 2  # it did come in two segments
    monkeypatch.undo()
    result = client().download(url, downloads)
    assert result.path is not None and result.path.read_bytes() == BODY and result.sha256 == SHA
