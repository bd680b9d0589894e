"""`liberacion refresh` of N unchanged tables over loopback (goal: 200 tables in under 5 s).

Serves N small CSV files from a local HTTP server (with ETag and Last-Modified), fetches each
into its own table, then times whole `liberacion refresh` processes, which must publish nothing.
With ``--iceberg`` the same tables are also fetched into a lake of Iceberg tables in a directory
(``--lake``), and refreshes of the two homes alternate, so their medians can be compared. With
``--baseline DIR`` (a folder holding another version's ``liberacion/`` package, e.g. from ``git
archive HEAD~1 liberacion | tar -x -C DIR``) each home is refreshed by both versions, alternately.

Usage: python benchmarks/refresh.py [--tables 200] [--runs 3] [--jobs 4] [--iceberg] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compiled import NEUTRAL, package_env

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from liberacion.fetching import FetchOptions, fetch  # noqa: E402
from liberacion.home import Home  # noqa: E402
from tests.server import LocalServer  # noqa: E402


def _fill(home: Home, urls: list[str]) -> None:
    start = time.perf_counter()
    for i, url in enumerate(urls):
        [result] = fetch([url], home, FetchOptions(table=f"bench.t{i}"))
        assert result.status == "fetched", result.error
    where = home.lake_uri or home.lake
    print(f"set-up: {len(urls)} tables fetched into {where} in {time.perf_counter() - start:.1f} s")


def _refresh(home: Home, tables: int, jobs: int, package: Path = ROOT) -> float:
    env = {**package_env(package), "LIBERACION_HOME": str(home.root)}
    if home.lake_uri:
        env["LIBERACION_LAKE"] = home.lake_uri
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "liberacion", "refresh", "--json", "--jobs", str(jobs)],
        capture_output=True,
        text=True,
        env=env,
        cwd=NEUTRAL,
        check=False,
    )
    took = time.perf_counter() - start
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert proc.returncode == 0 and summary.get("unchanged") == tables, summary
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--iceberg", action="store_true", help="also an Iceberg lake, refreshes alternating")
    parser.add_argument("--baseline", type=Path, help="a folder holding another version's liberacion/ package")
    args = parser.parse_args()
    versions = {"": ROOT, **({" (baseline)": args.baseline} if args.baseline else {})}
    server = LocalServer().start()
    with tempfile.TemporaryDirectory() as tmp:
        urls = []
        for i in range(args.tables):
            body = "facility_id,beds\n" + "".join(f"{i:03d}{k:03d},{k}\n" for k in range(50))
            urls.append(server.add(f"/t{i}.csv", body, content_type="text/csv"))
        homes = {"home lake": Home(Path(tmp) / "home")}
        if args.iceberg:
            homes["iceberg lake"] = Home(Path(tmp) / "home-iceberg", lake_uri=str(Path(tmp) / "iceberg-lake"))
        for home in homes.values():
            _fill(home, urls)
        runs = [(home, version) for home in homes for version in versions]
        times: dict[str, list[float]] = {home + version: [] for home, version in runs}
        for run in range(args.runs):
            order = runs if run % 2 == 0 else list(reversed(runs))  # alternate who goes first
            for home, version in order:
                times[home + version].append(_refresh(homes[home], args.tables, args.jobs, versions[version]))
        for name, taken in times.items():
            print(
                f"{name}: refresh of {args.tables} unchanged tables (--jobs {args.jobs}): "
                f"min {min(taken):.2f} s, median {statistics.median(taken):.2f} s, max {max(taken):.2f} s"
            )
        if args.iceberg:
            ratio = statistics.median(times["iceberg lake"]) / statistics.median(times["home lake"])
            print(f"iceberg lake / home lake: {ratio:.2f}x")
        for home in homes if args.baseline else ():
            ratio = statistics.median(times[home]) / statistics.median(times[home + " (baseline)"])
            print(f"{home}: this tree / baseline: {ratio:.2f}x")
    server.stop()


if __name__ == "__main__":
    main()
