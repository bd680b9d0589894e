"""`liberacion refresh` of N unchanged tables over loopback (goal: 200 tables in under 5 s).

Serves N small CSV files from a local HTTP server (with ETag and Last-Modified), fetches each
into its own table, then times whole `liberacion refresh` processes, which must publish nothing.

Usage: python benchmarks/refresh.py [--tables 200] [--runs 3] [--jobs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from liberacion.fetching import FetchOptions, fetch  # noqa: E402
from liberacion.home import Home  # noqa: E402
from tests.server import LocalServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    server = LocalServer().start()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        start = time.perf_counter()
        for i in range(args.tables):
            body = "facility_id,beds\n" + "".join(f"{i:03d}{k:03d},{k}\n" for k in range(50))
            url = server.add(f"/t{i}.csv", body, content_type="text/csv")
            [result] = fetch([url], home, FetchOptions(table=f"bench.t{i}"))
            assert result.status == "fetched", result.error
        print(f"set-up: {args.tables} tables fetched in {time.perf_counter() - start:.1f} s")
        env = {**os.environ, "LIBERACION_HOME": str(home.root), "PYTHONPATH": str(ROOT)}
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "liberacion", "refresh", "--json", "--jobs", str(args.jobs)],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            times.append(time.perf_counter() - start)
            summary = json.loads(proc.stdout.splitlines()[-1])
            assert proc.returncode == 0 and summary.get("unchanged") == args.tables, summary
        print(
            f"refresh of {args.tables} unchanged tables (--jobs {args.jobs}): "
            f"min {min(times):.2f} s, median {statistics.median(times):.2f} s, max {max(times):.2f} s"
        )
    server.stop()


if __name__ == "__main__":
    main()
