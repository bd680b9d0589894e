"""Download throughput over loopback: liberacion's downloader vs ``curl -o``.

Usage: python benchmarks/download.py [--size-mb 1024] [--runs 3]
A file of random bytes (created once under benchmarks/data/) is served by a small sendfile HTTP
server in its own process; each round downloads it with curl and with ``HttpClient.download``
(which also hashes it with sha256 and checks its length), in alternating order because these
machines are noisy. The goal (issue 4) is at least 80% of curl's throughput.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = r"""
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = sys.argv[1]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
        size = os.path.getsize(PATH)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.send_header("ETag", '"bench"')
        self.end_headers()
        with open(PATH, "rb") as fh:
            self.connection.sendfile(fh)

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


def time_curl(url: str, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", str(out), url], check=True)
    elapsed = time.perf_counter() - start
    out.unlink()
    return elapsed


def time_liberacion(url: str, directory: Path) -> float:
    from liberacion.download import HttpClient, HttpConfig

    client = HttpClient(HttpConfig())
    start = time.perf_counter()
    result = client.download(url, directory)
    elapsed = time.perf_counter() - start
    assert result.path is not None and result.sha256
    shutil.rmtree(directory)
    client.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        sys.exit("curl is not installed")
    path = make_file(args.size_mb)
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/file.bin"
        times: dict[str, list[float]] = {"curl -o": [], "liberacion": []}
        with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks" / "data") as tmp:
            for run in range(args.runs):
                order = ["curl -o", "liberacion"] if run % 2 == 0 else ["liberacion", "curl -o"]
                for name in order:
                    if name == "curl -o":
                        times[name].append(time_curl(url, Path(tmp) / "curl.bin"))
                    else:
                        times[name].append(time_liberacion(url, Path(tmp) / "lib"))
        size_gb = path.stat().st_size / 1e9
        for name, values in times.items():
            best, median = min(values), statistics.median(values)
            print(f"{name:<12} median {median:6.2f} s  {size_gb / median:5.2f} GB/s   best {size_gb / best:5.2f} GB/s")
        ratio = statistics.median(times["curl -o"]) / statistics.median(times["liberacion"])
        print(f"liberacion / curl throughput (medians): {ratio:.0%}  (goal: at least 80%)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
