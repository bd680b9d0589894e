"""A large DCAT-US listing parsed whole (``json.loads``) against one dataset at a time (ijson).

Generates a deterministic data.json of about --mb megabytes, then parses it in fresh
subprocesses, the two ways alternating, --rounds times each: wall time of the parse and the peak
RSS it adds over the process that already holds the body. Reports medians and the ratios; only
the ratios mean anything on a shared machine.

Usage: python benchmarks/listing_parse.py [--mb 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
from pathlib import Path
import liberacion.catalogs.adapters as adapters
body = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if sys.argv[2] == "whole":
    found = adapters.parse_dcat(adapters.load_json(body, url="x"), "c")
else:
    adapters.STREAM_BYTES = 0
    found = adapters._stream_dcat(body, "c", url="x")
seconds = time.perf_counter() - start
added = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"seconds": seconds, "mb": added, "datasets": len(found)}))
"""


def listing(path: Path, megabytes: int) -> int:
    datasets, size = [], 0
    while size < megabytes * 1024 * 1024:
        i = len(datasets)
        item = {
            "identifier": f"https://data.example.gov/api/views/{i:08d}",
            "title": f"Dataset {i} of hospital capacity by state",
            "description": "Weekly counts of beds, admissions and staff reported by hospitals. " * 6,
            "keyword": ["hospital", "capacity", f"k{i % 97}"],
            "publisher": {"@type": "org:Organization", "name": "Example Agency"},
            "modified": "2025-01-15",
            "accessLevel": "public",
            "distribution": [
                {"downloadURL": f"https://data.example.gov/{i}.csv", "mediaType": "text/csv"},
                {"accessURL": f"https://data.example.gov/view/{i}", "format": "HTML"},
            ],
        }
        datasets.append(item)
        size += len(json.dumps(item)) + 2
    path.write_text(json.dumps({"conformsTo": "https://project-open-data.cio.gov/v1.1/schema", "dataset": datasets}))
    return len(datasets)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "data.json"
        count = listing(path, args.mb)
        print(f"listing: {path.stat().st_size / 1e6:.0f} MB, {count:,} datasets")
        runs: dict[str, list[dict[str, float]]] = {"whole": [], "stream": []}
        for _ in range(args.rounds):
            for way in runs:
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, str(path), way],
                    capture_output=True, text=True, check=True, cwd=ROOT,
                )  # fmt: skip
                runs[way].append(json.loads(out.stdout))
        for way, results in runs.items():
            seconds = statistics.median(r["seconds"] for r in results)
            added = statistics.median(r["mb"] for r in results)
            print(f"{way:>6}: {seconds:6.2f} s, +{added:6.0f} MB peak RSS over the body ({results[0]['datasets']:,})")
        ratio_time = statistics.median(r["seconds"] for r in runs["stream"]) / statistics.median(
            r["seconds"] for r in runs["whole"]
        )
        ratio_mb = max(1.0, statistics.median(r["mb"] for r in runs["stream"])) / max(
            1.0, statistics.median(r["mb"] for r in runs["whole"])
        )
        print(f"stream / whole: time {ratio_time:.2f}x, added memory {ratio_mb:.2f}x")


if __name__ == "__main__":
    main()
