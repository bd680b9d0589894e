"""Download throughput over loopback: liberacion's downloader against ``curl -o`` and ``aria2c -x2``.

Usage: python benchmarks/download.py [--size-mb 1024] [--runs 5] [--dir DIR] [--only-segments]

A file of random bytes (created once under benchmarks/data/) is served by a small sendfile HTTP
server (with ranges, for aria2c's two connections) in its own process. Each round downloads it with
every method, in a rotated order because these machines are noisy (2 cores shared with other work);
only the ratios of the medians count. liberacion is ``HttpClient.download``, in this process: it
also hashes the file with sha256 and checks its length, which curl and aria2c do not.
"liberacion" is one stream (LIBERACION_DOWNLOAD_SEGMENTS=1); "liberacion x2" is the default for a
file this large, two segments over two connections like aria2c -x2. ``--only-segments`` leaves out
single-stream liberacion (fewer runs, same ratios).
``--dir`` is where the downloads are written (default benchmarks/data, on disk; /dev/shm takes the
disk's writeback out of the comparison). Before every timed download the page cache is synced
(untimed), so no method pays for the dirty pages another one left. Goal (issue 13): liberacion at
least 0.95x curl's throughput.
The server ignores a client that hangs up early: two segments close the first connection at the
middle of the file.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = r"""
import contextlib, os, re, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = sys.argv[1]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_HEAD(self):
        self.answer(head=True)
    def do_GET(self):
        self.answer(head=False)
    def answer(self, head):
        size = os.path.getsize(PATH)
        start, end = 0, size - 1
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", '"bench"')
        self.end_headers()
        if not head:
            # liberacion x2 closes its first connection once it has the first half: not an error
            with open(PATH, "rb") as fh, contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.connection.sendfile(fh, start, end - start + 1)

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def make_file(size_mb: int) -> Path:
    path = ROOT / "benchmarks" / "data" / f"random-{size_mb}mb.bin"
    if path.exists() and path.stat().st_size == size_mb << 20:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for _ in range(size_mb):
            fh.write(os.urandom(1 << 20))
    return path


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def time_curl(url: str, work: Path) -> tuple[float, float]:
    out = work / "curl.bin"
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", str(out), url], check=True)
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - cpu
    out.unlink()
    return elapsed, cpu


def time_aria2c(url: str, work: Path) -> tuple[float, float]:
    # Two connections to the one host (liberacion's per-host rule), no preallocation, no console.
    out = work / "aria2"
    command = ["aria2c", "-q", "-x2", "-s2", "--file-allocation=none", "--allow-overwrite=true"]
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([*command, "-d", str(out), "-o", "aria2.bin", url], check=True)
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - cpu
    shutil.rmtree(out)
    return elapsed, cpu


def time_liberacion(url: str, work: Path, segments: int = 1) -> tuple[float, float]:
    from liberacion.download import HttpClient, HttpConfig

    directory = work / "lib"
    client = HttpClient(HttpConfig(segments=segments))
    ranged: list[int] = []  # the second segment's requests: proof that it did come in segments
    second = client._open_segment
    client._open_segment = lambda *a: (ranged.append(1), second(*a))[1]  # type: ignore[method-assign]
    cpu = cpu_seconds(resource.RUSAGE_SELF)  # this process: the receiving and the hashing thread
    start = time.perf_counter()
    result = client.download(url, directory)
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(resource.RUSAGE_SELF) - cpu
    assert result.path is not None and result.sha256
    assert bool(ranged) == (segments > 1), "two segments asked for, not two connections (or the other way)"
    shutil.rmtree(directory)
    client.close()
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--only-segments", action="store_true", help="leave out single-stream liberacion")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        sys.exit("curl is not installed")
    methods: dict[str, Callable[[str, Path], tuple[float, float]]] = {"curl -o": time_curl}
    if not args.only_segments:
        methods["liberacion"] = time_liberacion
    methods["liberacion x2"] = lambda url, work: time_liberacion(url, work, segments=2)
    if shutil.which("aria2c"):
        methods["aria2c -x2"] = time_aria2c
    else:
        print("aria2c is not installed (apt-get install aria2): measuring curl and liberacion only")
    path = make_file(args.size_mb)
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/file.bin"
        times: dict[str, list[float]] = {name: [] for name in methods}
        cpus: dict[str, list[float]] = {name: [] for name in methods}
        args.dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            names = list(methods)
            for run in range(args.runs):
                shift = run % len(names)
                for name in names[shift:] + names[:shift]:
                    os.sync()  # every method starts with no dirty pages waiting for the disk
                    elapsed, cpu = methods[name](url, Path(tmp))
                    times[name].append(elapsed)
                    cpus[name].append(cpu)
        size_gb = path.stat().st_size / 1e9
        print(f"{args.size_mb} MB over loopback into {args.dir}, {args.runs} rounds, rotated order")
        for name, values in times.items():
            median = statistics.median(values)
            print(
                f"{name:<14} median {median:6.2f} s  {size_gb / median:5.2f} GB/s  "
                f"CPU {statistics.median(cpus[name]):5.2f} s   runs {' '.join(f'{v:.2f}' for v in values)}"
            )
        curl = statistics.median(times["curl -o"])
        for name in names[1:]:
            ratio = curl / statistics.median(times[name])
            print(f"{name} / curl -o throughput (medians): {ratio:.2f}x")
        if "aria2c -x2" in times:
            ratio = statistics.median(times["aria2c -x2"]) / statistics.median(times["liberacion x2"])
            print(f"liberacion x2 / aria2c -x2 throughput (medians): {ratio:.2f}x")
        print("goal: liberacion at least 0.95x curl -o")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
