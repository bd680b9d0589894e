"""`liberacion fetch` of a zip of many small members (goal: 2,000 members in under 60 s).

Every member becomes its own table, and all of them are published as one transaction. Makes zips
of N small CSV members (3 columns, 5 rows each), then times whole `liberacion fetch` processes into
fresh homes, the sizes in rotated order, and reports the median of the rounds and the cost per
member. A cost per member that stays flat as N grows means the publish is linear in N (it was
quadratic when every member rebuilt every view: 100 members 14 s, 300 members 149 s).

The machine is shared and noisy: compare the per-member costs of one run with each other, not with
another day's figures.

With ``--iceberg`` each round also fetches the zip into a lake of Iceberg tables in a directory
(``--lake``), where every member is its own catalog commit, and prints those rows as ``N ice``.

Usage: python benchmarks/members.py [--members 250,2000] [--rounds 3] [--iceberg]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_zip(path: Path, members: int) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(members):
            rows = "".join(f"{k},name {k},{k * i}\n" for k in range(5))
            archive.writestr(f"m{i:05d}.csv", "id,name,value\n" + rows)
    return path


def fetch_seconds(archive: Path, home: Path, members: int, lake: Path | None) -> tuple[float, dict[str, float]]:
    """Wall seconds of one `liberacion fetch` process, and the seconds of each stage it reports."""
    env = {**os.environ, "LIBERACION_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("LIBERACION_LAKE", None)
    if lake is not None:
        env["LIBERACION_LAKE"] = str(lake)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "liberacion", "fetch", str(archive), "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - start
    [record] = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 0 and record["status"] == "fetched", (record, proc.stderr[-500:])
    assert len(record.get("tables", [])) == members, len(record.get("tables", []))
    return seconds, record["stages"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", default="250,2000", help="comma-separated zip sizes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iceberg", action="store_true", help="also into an Iceberg lake, alternating")
    args = parser.parse_args()
    sizes = [int(n) for n in args.members.split(",")]
    kinds = ["home", "ice"] if args.iceberg else ["home"]
    runs_of = [(n, kind) for n in sizes for kind in kinds]
    times: dict[tuple[int, str], list[float]] = {key: [] for key in runs_of}
    stages: dict[tuple[int, str], list[dict[str, float]]] = {key: [] for key in runs_of}
    with tempfile.TemporaryDirectory() as tmp:
        zips = {n: make_zip(Path(tmp) / f"z{n}.zip", n) for n in sizes}
        for round_ in range(args.rounds):
            order = runs_of[round_ % len(runs_of) :] + runs_of[: round_ % len(runs_of)]  # rotated order
            for n, kind in order:
                home = Path(tmp) / f"home-{n}-{kind}-{round_}"
                lake = home / "iceberg-lake" if kind == "ice" else None
                seconds, stage = fetch_seconds(zips[n], home, n, lake)
                times[n, kind].append(seconds)
                stages[n, kind].append(stage)
                shutil.rmtree(home)
    print(f"{'members':>8} {'median s':>9} {'ms/member':>10} {'convert':>8} {'publish':>8}  runs")
    for n, kind in runs_of:
        median = statistics.median(times[n, kind])
        runs = " ".join(f"{t:.1f}" for t in times[n, kind])
        convert = statistics.median(s.get("convert", 0.0) for s in stages[n, kind])
        publish = statistics.median(s.get("publish", 0.0) for s in stages[n, kind])
        label = f"{n}" if kind == "home" else f"{n} ice"
        print(f"{label:>8} {median:>9.1f} {median / n * 1000:>10.1f} {convert:>8.1f} {publish:>8.1f}  {runs}")
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        ratio = (statistics.median(times[large, "home"]) / large) / (statistics.median(times[small, "home"]) / small)
        print(f"cost per member at {large} vs {small}: {ratio:.2f}x (1.0 = linear)")


if __name__ == "__main__":
    main()
