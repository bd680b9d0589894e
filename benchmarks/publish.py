"""A write and a query in a home of many tables: what the size of the lake adds to them.

Usage: python benchmarks/publish.py [--tables 1000] [--snapshots 3] [--runs 9] [--baseline DIR]
       python benchmarks/publish.py --s3 [--tables 200] [--runs 5] [--baseline DIR]

Builds a home of --tables tables (each of --snapshots snapshots, spread over four catalogs) by
publishing one small table and copying its snapshot folders, as the lake lays them out, then has
one version write ``lake.duckdb``. Then, alternating round by round (the machine is shared and
noisy: compare the medians of one run):
- ``fetch small.csv --as cms.new_N``: one small table published, ``lake.duckdb`` brought up to
  date at the end of the run;
- ``sql "select 42"``, which attaches ``lake.duckdb``;
- the same two in a home of one table (and one more each round), for the fixed part.
With --baseline DIR (a directory holding another version's liberacion/ package, e.g. ``git
archive HEAD~1 liberacion | tar -x -C DIR``) the same commands also run with that version, each
in a copy of the homes of its own (a version may change ``lake.duckdb``'s contents).

With --s3 the tables are instead published (one run of ``fetch`` of --tables small files) into a
shared lake of Iceberg tables on an S3 server (moto, on loopback, started as ``upload.py`` starts
it), and each round's ``fetch`` (with ``--lake``) publishes one more table there; each version
keeps its views database in a home of its own. There a view's creation reads its file's footer
from the store.
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

from compiled import NEUTRAL, package_env

ROOT = Path(__file__).resolve().parent.parent


def run(command: list[str], home: Path, package: Path | None) -> float:
    env = {**package_env(package or ROOT), "LIBERACION_HOME": str(home)}
    start = time.perf_counter()
    command = [sys.executable, "-m", "liberacion", *command]
    subprocess.run(command, env=env, cwd=NEUTRAL, check=True, capture_output=True)
    return time.perf_counter() - start


def grow(home: Path, tables: int, snapshots: int) -> None:
    """``tables`` tables of ``snapshots`` snapshots, copies of one published snapshot, as the tests
    of a home at scale build theirs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.test_home_scale import grow as grow_home

    grow_home(home, tables, snapshots)


def shared(args: argparse.Namespace, versions: dict[str, Path | None]) -> dict[str, list[float]]:
    """The rounds over a shared lake on a loopback S3 server (see --s3)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from upload import fresh_bucket, s3_server

    os.environ.setdefault("AWS_REGION", "us-east-1")
    times: dict[str, list[float]] = {}
    with s3_server(None) as (endpoint, _pid), tempfile.TemporaryDirectory(prefix="liberacion-publish-") as tmp:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        with fresh_bucket("publish-bench") as bucket:
            work, lake = Path(tmp), ["--lake", f"s3://{bucket}/lake"]
            sources = work / "sources"
            sources.mkdir()
            for number in range(args.tables):
                (sources / f"t_{number:04d}.csv").write_text(f"code,n\n01,{number}\n", encoding="utf-8")
            run([*lake, "fetch", *map(str, sorted(sources.iterdir())), "--jobs", "4"], work / "setup", None)
            small = work / "small.csv"
            small.write_text("code,name\n01,one\n02,two\n", encoding="utf-8")
            homes = {version: work / f"{version}-home" for version in versions}
            for version, package in versions.items():
                run([*lake, "sql", "select 42"], homes[version], package)  # this version's views database
            names = list(versions)
            for round_ in range(args.runs):
                for version in names[round_ % len(names) :] + names[: round_ % len(names)]:
                    home, package = homes[version], versions[version]
                    table = f"cms.new_{version}_{round_}"
                    times.setdefault(f"{version:<10} fetch", []).append(
                        run([*lake, "fetch", str(small), "--as", table], home, package)
                    )
                    times.setdefault(f"{version:<10} sql 'select 42'", []).append(
                        run([*lake, "sql", "select 42"], home, package)
                    )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--snapshots", type=int, default=3)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--baseline", type=Path, help="a directory holding another version's liberacion/ package")
    parser.add_argument("--s3", action="store_true", help="a shared lake on a loopback S3 server (moto)")
    args = parser.parse_args()
    versions: dict[str, Path | None] = {"liberacion": None}
    if args.baseline:
        versions["baseline"] = args.baseline.resolve()
    if args.s3:
        times = shared(args, versions)
        print(f"a shared lake on S3 of {args.tables} tables and more; {args.runs} rounds, medians (ms)")
        for name, values in times.items():
            print(f"  {name:<46} {statistics.median(values) * 1000:7.0f}")
        return
    with tempfile.TemporaryDirectory(prefix="liberacion-publish-") as tmp:
        work = Path(tmp)
        small = work / "small.csv"
        small.write_text("code,name\n01,one\n02,two\n", encoding="utf-8")
        big, one = work / "big", work / "one"
        grow(big, args.tables, args.snapshots)
        grow(one, 1, args.snapshots)
        homes: dict[tuple[str, str], Path] = {}
        for version, package in versions.items():
            for label, source in ((f"{args.tables} tables", big), ("1 table", one)):
                home = work / f"{version}-{source.name}"
                shutil.copytree(source, home)
                run(["fetch", str(small), "--as", "cms.first"], home, package)  # this version's lake.duckdb
                homes[version, label] = home
        times: dict[str, list[float]] = {}
        steps = [(v, label) for v in versions for label in (f"{args.tables} tables", "1 table")]
        for round_ in range(args.runs):
            for version, label in steps[round_ % len(steps) :] + steps[: round_ % len(steps)]:
                home, package = homes[version, label], versions[version]
                fetched = run(["fetch", str(small), "--as", f"cms.new_{round_}"], home, package)
                queried = run(["sql", "select 42"], home, package)
                times.setdefault(f"{version:<10} fetch, {label}", []).append(fetched)
                times.setdefault(f"{version:<10} sql 'select 42', {label}", []).append(queried)
    print(f"{args.tables} tables of {args.snapshots} snapshots; {args.runs} rounds, medians (ms)")
    for name, values in times.items():
        print(f"  {name:<46} {statistics.median(values) * 1000:7.0f}")


if __name__ == "__main__":
    main()
